//! A host's part of a program as its store holds it (`spec/network.md` §8): the
//! events a delegate walked for its order, stored under the order's name, without
//! the program manifest, so they cannot be replayed. They are listed as they are,
//! log by log: each was checked, when the walk reached it, against the order.

use amb_bytecode::Cid;
use amb_log::{AnyEvent, Kind, Manifest, Store, StoreError};

use crate::verify::{VerifyError, decode_any_event};

/// The name a part's log is listed under when its manifest is not stored (the
/// root log, whose id the order gives).
pub const ROOT_LOG_NAME: &str = "<root>";

/// Whether `cid` names a part this store holds: logs are registered under it, and
/// no manifest is stored at it (a program's address names its manifest).
pub fn is_part(store: &Store, cid: Cid) -> Result<bool, StoreError> {
    Ok(store.get_block(cid)?.is_none() && !store.program_logs(cid)?.is_empty())
}

/// One stored event of a part.
#[derive(Clone, Debug)]
pub struct PartEvent {
    pub cid: Cid,
    /// An operation's event, or an effect's.
    pub event: AnyEvent,
    /// Its log's ambient name (its slice manifest's), or [`ROOT_LOG_NAME`].
    pub log_name: String,
}

/// The events of the part `part`, log by log (in the order the logs were first
/// stored), each log in seq order; each event's bytes checked against its CID.
pub fn part_events(store: &Store, part: Cid) -> Result<Vec<PartEvent>, VerifyError> {
    let mut events = Vec::new();
    for log in store.program_logs(part)? {
        let log_name = store
            .get_block(log)?
            .and_then(|b| Manifest::decode(&b).ok())
            .filter(|m| m.kind() == Kind::Slice)
            .and_then(|m| m.name().map(str::to_string))
            .unwrap_or_else(|| ROOT_LOG_NAME.to_string());
        for stored in store.log_events(log)? {
            let stored = stored?;
            let event = decode_any_event(stored.cid, &stored.bytes)?;
            events.push(PartEvent {
                cid: stored.cid,
                event,
                log_name: log_name.clone(),
            });
        }
    }
    Ok(events)
}
