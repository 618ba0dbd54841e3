//! Checking a recorded effect without performing it again (`spec/system.md` §7):
//! the signature and the writer, the result's block and size, and for a
//! deterministic service the result computed again; the result of an untrusted
//! service is accepted as signed and reported as such.

use amb_bytecode::Cid;
use amb_log::{EffectEvent, Manifest, PublicKey};

use super::{
    local::{hash, verify},
    perform::EffectLimits,
    service::Service,
    term::{canonical_encoding, value_of_block},
};
use crate::{
    replay::{Broken, Violation},
    value::Value,
};

/// How a verifier came to accept an effect's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Computed again and found equal (a deterministic service).
    Recomputed,
    /// Accepted as signed by its creator: an untrusted service, or a failure value,
    /// which a verifier cannot reproduce.
    Signed {
        /// Who vouched for it.
        creator: PublicKey,
    },
}

/// A recorded effect as a verifier accepted it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedEffect {
    /// The service.
    pub service: Service,
    /// The argument.
    pub argument: Value,
    /// The result as recorded.
    pub result: Value,
    /// How it was accepted.
    pub trust: Trust,
}

/// Checks the effect event `cid` of a log whose manifest is `log_manifest`, reading
/// value blocks with `get`: rules `signature`, `key`, and `effect` (the service is
/// reserved; the argument and result blocks are stored value blocks; the result is
/// within `limits.max_result_bytes`; a deterministic service's result is the one it
/// gives). Performs no effect.
pub fn check_effect(
    cid: Cid,
    effect: &EffectEvent,
    log_manifest: &Manifest,
    mut get: impl FnMut(&Cid) -> Option<Vec<u8>>,
    limits: EffectLimits,
) -> Result<CheckedEffect, Violation> {
    effect.verify_signature().map_err(|e| Violation {
        event: cid,
        rule: e.rule(),
        detail: e.to_string(),
    })?;
    if !log_manifest.allows(effect.creator()) {
        return Err(Broken::Key(format!(
            "the effect is signed by {}, which the log's manifest does not list",
            effect.creator()
        ))
        .at(cid));
    }
    let broken = |detail: String| Broken::Effect(detail).at(cid);
    let service = Service::from_name(effect.service())
        .ok_or_else(|| broken(format!("{} is not a service", effect.service())))?;
    let argument = value_of_block(effect.args(), &mut get).ok_or_else(|| {
        broken(format!(
            "the argument {} is not a stored value block",
            effect.args()
        ))
    })?;
    let result = value_of_block(effect.result(), &mut get).ok_or_else(|| {
        broken(format!(
            "the result {} is not a stored value block",
            effect.result()
        ))
    })?;
    let size = canonical_encoding(&result).len();
    if size > limits.max_result_bytes {
        return Err(broken(format!(
            "the result is {size} bytes, over max_result_bytes ({})",
            limits.max_result_bytes
        )));
    }
    let signed = Trust::Signed {
        creator: *effect.creator(),
    };
    let trust = match (&result, service.is_deterministic()) {
        (Value::Failure(_), _) | (_, false) => signed,
        (_, true) => {
            let expected = match service {
                Service::Hash => hash(&argument),
                Service::Verify => verify(&argument).map_err(|f| {
                    broken(format!("{}: the argument is refused ({f})", service.name()))
                })?,
                // A put answers the CID of its argument's value block.
                Service::Put => Value::String(effect.args().to_string()),
                // A get answers the value whose block is the CID asked for: its
                // result's block is that CID.
                Service::Get => match &argument {
                    Value::String(asked) if *asked == effect.result().to_string() => result.clone(),
                    Value::String(asked) => {
                        return Err(broken(format!(
                            "sys_get of {asked} answered the value of block {}, whose bytes do not hash to the CID asked for",
                            effect.result()
                        )));
                    }
                    _ => return Err(broken("sys_get of an argument that is not a CID".into())),
                },
                // Untrusted: not recomputed (accepted as signed above).
                Service::Time | Service::Random | Service::HttpGet => result.clone(),
            };
            if expected != result {
                return Err(broken(format!(
                    "{} of {argument} is {expected}, the event records {result}",
                    service.name()
                )));
            }
            Trust::Recomputed
        }
    };
    Ok(CheckedEffect {
        service,
        argument,
        result,
        trust,
    })
}
