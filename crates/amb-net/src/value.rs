//! Reading a program's value from the network (`spec/network.md` §5): fetch what
//! this node lacks, follow the topic until the run is over (complete, synced
//! whole from a peer that knows it to be over, or, for a run this node walks, its
//! walk at its end: `finished.rs`; syncing again from a holder meanwhile, which
//! also recovers what gossip lost), then verify every event
//! exactly as `amb verify` does and evaluate the replayed term.

use std::time::{Duration, Instant};

use amb_bytecode::Cid;
use amb_vm::verify::VerifyError;
use serde::Serialize;

use crate::{
    changes::Changes,
    error::{NetError, PeerError},
    handle::NodeHandle,
    slice,
    sync::{fetch, find_holder, sync_from},
};

/// A program's value, as `amb value --json` prints it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProgramValue {
    /// `/amb/<cid>`.
    pub address: String,
    /// The replayed final term (compact text).
    pub normal_form: String,
    /// Its value, or null.
    pub value: serde_json::Value,
}

/// How often a node that waits for a run re-syncs from a holder.
const RESYNC: Duration = Duration::from_millis(250);

/// The value of `program`, waiting at most `wait` for it to be fetched and complete.
pub async fn value(
    node: &NodeHandle,
    program: Cid,
    wait: Duration,
) -> Result<ProgramValue, NetError> {
    let deadline = Instant::now() + wait;
    let address = format!("/amb/{program}");
    if let Some(owners) = slice::held_by(node, program).await? {
        let slice = slice::slice_value(node, program, owners, wait).await?;
        return Ok(ProgramValue {
            address,
            normal_form: slice.normal_form,
            value: slice.value,
        });
    }
    loop {
        if node.status(program).await?.held {
            break;
        }
        match fetch(node, program).await {
            Ok(_) => break,
            Err(e @ NetError::Refused(_)) => return Err(e),
            Err(NetError::Peer { problem, .. })
                if matches!(*problem, PeerError::NotAProgram(_)) =>
            {
                return Err(NetError::NotFound(format!(
                    "{address} is a slice's address, and this node holds none of its events: a slice's value is read on a node that holds it (its host, or a holder of the program's address)"
                )));
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(NetError::NotFound(format!(
                    "{address} could not be fetched within {} s: {e}",
                    wait.as_secs()
                )));
            }
            Err(_) => tokio::time::sleep(RESYNC).await,
        }
    }
    let mut changes = Changes::new(node);
    let verified = loop {
        wait_until_over(node, program, &address, wait, deadline, &mut changes).await?;
        let store = node.store().clone();
        let verified = tokio::task::spawn_blocking(move || amb_vm::verify::verify(&store, program))
            .await
            .map_err(NetError::task("the verification task"))?;
        match verified {
            Ok(verified) => break verified,
            // Over by what a peer said, but not all of it synced yet: sync again.
            Err(e) if e.wants_more_events() && Instant::now() < deadline => {
                resync(node, program).await?;
                changes.next(program, Instant::now() + RESYNC).await?;
            }
            Err(e) if e.wants_more_events() => {
                return Err(NetError::Timeout(format!(
                    "{address} is not whole after {} s: {e}",
                    wait.as_secs()
                )));
            }
            Err(VerifyError::Violation(v)) => return Err(NetError::Refused(v.into())),
            Err(VerifyError::Store(e)) => return Err(e.into()),
            Err(source) => {
                return Err(NetError::Verify {
                    program,
                    source: Box::new(source),
                });
            }
        }
    };
    Ok(ProgramValue {
        address,
        normal_form: amb_syntax::to_compact_string(&verified.term),
        value: amb_vm::value_of(&verified.term).map_or(serde_json::Value::Null, |v| v.to_json()),
    })
}

/// Waits until `program`'s run is over here (complete, or known to be over,
/// `finished.rs`), syncing again from a holder meanwhile.
async fn wait_until_over(
    node: &NodeHandle,
    program: Cid,
    address: &str,
    wait: Duration,
    deadline: Instant,
    changes: &mut Changes,
) -> Result<(), NetError> {
    // When this wait last synced from a holder (not yet: at once).
    let mut synced: Option<Instant> = None;
    loop {
        let status = node.status(program).await?;
        // Over: complete, or known so (`finished.rs`: a run this node walks is over
        // when its walk is at its end, whatever its root log shows).
        if node.is_finished(&program) {
            return Ok(());
        }
        let failed = status.execution.as_ref().and_then(|e| e.failed.as_ref());
        if let Some(failed) = failed.or(status.failed.as_ref()) {
            return Err(NetError::RunFailed {
                program,
                reason: failed.clone(),
            });
        }
        if Instant::now() >= deadline {
            return Err(NetError::Timeout(format!(
                "{address} is not complete after {} s ({} events so far): its run has not finished, or the peers writing it are gone",
                wait.as_secs(),
                status.events
            )));
        }
        // Anti-entropy: a re-sync from a holder every RESYNC at most; between
        // them, woken by what may end the wait.
        let last = match synced {
            Some(last) if last.elapsed() < RESYNC => last,
            _ => {
                resync(node, program).await?;
                *synced.insert(Instant::now())
            }
        };
        changes.next(program, last + RESYNC).await?;
    }
}

/// Syncs `program` from a holder, if one is found; only a refusal is an error.
async fn resync(node: &NodeHandle, program: Cid) -> Result<(), NetError> {
    if let Ok((peer, heads)) = find_holder(node, program).await {
        if let Err(e @ NetError::Refused(_)) = sync_from(node, peer, program, &heads).await {
            return Err(e);
        }
    }
    Ok(())
}
