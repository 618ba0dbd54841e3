//! Effect events (`spec/system.md` §6): what a system service answered a program,
//! signed by the host that vouches for it.
//!
//! ```text
//! effect = [3, log, seq, service, args, result, refs, creator, sig]
//! ```
//!
//! Event format version 3 marks an effect event; events of the other kinds stay
//! version 2 ([`crate::Event`]), so an effect event never decodes as one of them nor
//! the reverse. The signing input is `amb-event-v3`, a zero byte, then the canonical
//! CBOR of the first eight items (header `0x88`); the encoding appends the signature
//! (header `0x89`), and its CID is the event's.

use amb_bytecode::{BlockLimits, Cid, cbor};
use ciborium::Value;

use crate::{
    EventError,
    keys::{BatchVerifier, Domain, PublicKey, Signature, SigningKey},
};

/// The effect event format version, the first item of every effect event.
pub const EFFECT_VERSION: u64 = 3;

/// The longest service name, in bytes (a reserved name is much shorter).
const MAX_SERVICE_BYTES: usize = 64;

/// The fields of an effect event that its writer chooses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnsignedEffect {
    /// The service ambient's log.
    pub log: Cid,
    /// Its position in that log.
    pub seq: u64,
    /// The reserved name called, e.g. `sys_hash`.
    pub service: String,
    /// The value block of the argument.
    pub args: Cid,
    /// The value block of the result (or of the failure value).
    pub result: Cid,
    /// The events it refers to, as a set: [`EffectEvent::sign`] sorts them and drops
    /// duplicates.
    pub refs: Vec<Cid>,
}

/// A signed effect event, made by [`EffectEvent::sign`] or [`EffectEvent::decode`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EffectEvent {
    body: UnsignedEffect,
    creator: PublicKey,
    sig: Signature,
}

fn write_unsigned(out: &mut Vec<u8>, body: &UnsignedEffect, creator: &PublicKey) {
    use crate::cbor_write as w;
    w::array(out, 8);
    w::uint(out, EFFECT_VERSION);
    w::link(out, &body.log);
    w::uint(out, body.seq);
    w::text(out, &body.service);
    w::link(out, &body.args);
    w::link(out, &body.result);
    w::array(out, body.refs.len());
    for r in &body.refs {
        w::link(out, r);
    }
    w::bytes(out, creator.as_bytes());
}

impl EffectEvent {
    /// Signs `body` with `key`: sorts the refs and drops duplicates, records the
    /// key's public key as the creator, and signs the signing input.
    pub fn sign(mut body: UnsignedEffect, key: &SigningKey) -> EffectEvent {
        body.refs.sort_unstable();
        body.refs.dedup();
        let creator = key.public_key();
        let sig = key.sign(Domain::Effect, &unsigned_cbor(&body, &creator));
        EffectEvent { body, creator, sig }
    }

    /// The fields.
    pub fn body(&self) -> &UnsignedEffect {
        &self.body
    }

    /// The log.
    pub fn log(&self) -> Cid {
        self.body.log
    }

    /// The position in the log.
    pub fn seq(&self) -> u64 {
        self.body.seq
    }

    /// The service's reserved name.
    pub fn service(&self) -> &str {
        &self.body.service
    }

    /// The argument's value block.
    pub fn args(&self) -> Cid {
        self.body.args
    }

    /// The result's value block.
    pub fn result(&self) -> Cid {
        self.body.result
    }

    /// The events it refers to, strictly increasing.
    pub fn refs(&self) -> &[Cid] {
        &self.body.refs
    }

    /// Who vouches for the result.
    pub fn creator(&self) -> &PublicKey {
        &self.creator
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.sig
    }

    /// The canonical encoding, signature included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = unsigned_cbor(&self.body, &self.creator);
        out[0] = 0x89;
        crate::cbor_write::bytes(&mut out, self.sig.as_bytes());
        out
    }

    /// The CID of [`EffectEvent::encode`].
    pub fn cid(&self) -> Cid {
        Cid::of(&self.encode())
    }

    /// The bytes that are signed: `amb-event-v3`, a zero byte, and the canonical
    /// CBOR of the event without its signature.
    pub fn signing_input(&self) -> Vec<u8> {
        crate::keys::signing_input(Domain::Effect, &unsigned_cbor(&self.body, &self.creator))
    }

    /// Queues the signature in a batch.
    pub fn queue_signature(&self, batch: &mut BatchVerifier) {
        batch.queue(
            &self.creator,
            Domain::Effect,
            &unsigned_cbor(&self.body, &self.creator),
            &self.sig,
        );
    }

    /// Checks the signature with the validity rule of `spec/events.md` §1 (rule
    /// `signature`).
    pub fn verify_signature(&self) -> Result<(), EventError> {
        self.creator
            .verify(
                Domain::Effect,
                &unsigned_cbor(&self.body, &self.creator),
                &self.sig,
            )
            .map_err(EventError::Signature)
    }

    /// Decodes an effect event from untrusted bytes: at most
    /// [`crate::MAX_EVENT_BYTES`], the shape above, refs strictly increasing, the
    /// creator a curve point, exactly the canonical bytes. Does not check the
    /// signature.
    pub fn decode(bytes: &[u8]) -> Result<EffectEvent, EventError> {
        cbor::decode_canonical(
            bytes,
            crate::MAX_EVENT_BYTES,
            effect_from_value,
            EffectEvent::encode,
        )
    }

    /// Whether `bytes` start like an effect event (an array of 9 whose first item is
    /// version 3), so a reader knows which decoder to use.
    pub fn looks_like(bytes: &[u8]) -> bool {
        bytes.starts_with(&[0x89, EFFECT_VERSION as u8])
    }
}

fn unsigned_cbor(body: &UnsignedEffect, creator: &PublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_unsigned(&mut out, body, creator);
    out
}

fn effect_from_value(value: Value) -> Result<EffectEvent, EventError> {
    let [version, log, seq, service, args, result, refs, creator, sig] =
        cbor::expect_array(value, &"effect")?;
    let version = cbor::expect_uint(&version, &"effect version")?;
    if version != EFFECT_VERSION {
        return Err(cbor::shape(
            "effect version",
            format!("expected {EFFECT_VERSION}, found {version}"),
        )
        .into());
    }
    let log = cbor::expect_link(&log, &"effect log")?;
    let seq = cbor::expect_uint(&seq, &"effect seq")?;
    let service = cbor::expect_text(service, &"effect service")?;
    if service.len() > MAX_SERVICE_BYTES.min(BlockLimits::default().max_name_bytes) {
        return Err(cbor::shape("effect service", "a service name is at most 64 bytes").into());
    }
    let args = cbor::expect_link(&args, &"effect args")?;
    let result = cbor::expect_link(&result, &"effect result")?;
    let refs = crate::event::refs_from_value(refs, "effect")?;
    let (creator, sig) = crate::event::signer_from_values(&creator, &sig, "effect")?;
    Ok(EffectEvent {
        body: UnsignedEffect {
            log,
            seq,
            service,
            args,
            result,
            refs,
        },
        creator,
        sig,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        // RFC 8032's test key 1, as in spec/events.md §9.
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        SigningKey::from_seed(&seed.try_into().unwrap())
    }

    fn vector() -> EffectEvent {
        let cid = |text: &str| text.parse::<Cid>().unwrap();
        EffectEvent::sign(
            UnsignedEffect {
                log: cid("bafyr4ifwlrzeq5flrtszaxqdfn6obxhtvjz5my7vov6rbw4idj7tu6lmt4"),
                seq: 4,
                service: "sys_hash".into(),
                args: Cid::of(b"args"),
                result: Cid::of(b"result"),
                refs: vec![cid(
                    "bafyr4ihbqdrm42cl5ujeuzlq54s2znx62sl76wv3kv3fb4g6ofc2jtnc5q",
                )],
            },
            &key(),
        )
    }

    #[test]
    fn an_effect_event_round_trips_and_is_the_spec_vector() {
        let event = vector();
        let bytes = event.encode();
        assert!(EffectEvent::looks_like(&bytes));
        assert_eq!(EffectEvent::decode(&bytes).unwrap(), event);
        event.verify_signature().unwrap();
        // Not an event of the other kinds, and they are not effects.
        assert!(crate::Event::decode(&bytes).is_err());
        let spec = include_str!("../../../spec/events.md");
        let block = spec
            .split("```vector-effect\n")
            .nth(1)
            .expect("spec/events.md §9 has a vector-effect block");
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("the vector has {name}"))
                .to_string()
        };
        assert_eq!(field("signing-input"), hex::encode(event.signing_input()));
        assert_eq!(field("sig"), hex::encode(event.signature().as_bytes()));
        assert_eq!(field("encoding"), hex::encode(&bytes));
        assert_eq!(field("cid"), event.cid().to_string());
        assert_eq!(field("args"), Cid::of(b"args").to_string());
        assert_eq!(field("result"), Cid::of(b"result").to_string());
    }

    #[test]
    fn a_changed_effect_event_is_refused() {
        let event = vector();
        let mut bytes = event.encode();
        // The service's first letter: another service, the same length.
        let at = bytes.windows(8).position(|w| w == b"sys_hash").unwrap();
        bytes[at + 4] = b'c';
        let changed = EffectEvent::decode(&bytes).unwrap();
        assert_eq!(changed.service(), "sys_cash");
        assert_eq!(changed.verify_signature().unwrap_err().rule(), "signature");
        // Version 2 is not an effect.
        let mut v2 = event.encode();
        v2[1] = 2;
        assert_eq!(EffectEvent::decode(&v2).unwrap_err().rule(), "cbor");
        assert!(EffectEvent::decode(&[0x89]).is_err());
    }
}
