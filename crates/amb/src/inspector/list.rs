//! The program list (`GET /v1/programs`): each program a store holds, with its
//! name, status, event and step counts and the peers that wrote its events, read
//! from the store without replaying: one pass over each listed program's events,
//! kept while the program's stored events stay the same (`fresh`). Paged by program address.

use std::collections::BTreeSet;

use amb_bytecode::Cid;
use amb_log::{Manifest, Store};
use serde_json::{Value, json};

use super::cache::CacheError;

/// What the store alone cannot say of a program: known to the node.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Known {
    /// The run is over (the node's walk ended, or a peer said so).
    pub(crate) over: bool,
    /// Checking or walking it failed here.
    pub(crate) failed: bool,
}

/// One page of the store's programs: those after `after` (in the store's order),
/// at most `limit`, and the cursor of the next page (the page's last address), if
/// there is one.
pub(crate) fn window(
    store: &Store,
    after: Option<Cid>,
    limit: usize,
) -> Result<(Vec<Cid>, Option<String>), CacheError> {
    let all = store.programs()?;
    let start = match after {
        None => 0,
        Some(after) => all
            .iter()
            .position(|p| *p == after)
            .map_or(all.len(), |i| i + 1),
    };
    let end = start.saturating_add(limit).min(all.len());
    let next = (end < all.len() && end > start).then(|| format!("/amb/{}", all[end - 1]));
    Ok((all[start..end].to_vec(), next))
}

/// What one pass over a program's events counts.
#[derive(Clone, Debug)]
pub(crate) struct Counts {
    events: u64,
    steps: u64,
    hosts: Vec<String>,
    /// The program log ends with a payload.
    complete: bool,
}

/// The counts of the programs listed lately (a program of 10^6 events takes
/// seconds to count), kept while they are fresh.
pub(crate) type Counted = super::fresh::PerProgram<Counts>;

/// One pass over the stored events of `program`.
fn count(store: &Store, program: Cid) -> Result<Counts, CacheError> {
    let mut events = 0u64;
    let mut steps = 0u64;
    let mut writers: BTreeSet<[u8; 32]> = BTreeSet::new();
    let mut keys = Vec::new();
    let mut root_payload = None::<(u64, bool)>;
    let root_log = amb_vm::record::stored_root_log(store, program)?;
    for read in store.snapshot()?.program_events(program)? {
        let read = read?;
        let Some(event) = read.event else { continue };
        events += 1;
        if amb_vm::travel::is_second_half(event.op().opcode()) {
            steps += 1;
        }
        if writers.insert(*event.creator().as_bytes()) {
            keys.push(*event.creator());
        }
        if Some(event.log()) == root_log && root_payload.is_none_or(|(seq, _)| event.seq() > seq) {
            root_payload = Some((event.seq(), event.payload().is_some()));
        }
    }
    let hosts: BTreeSet<String> = keys.iter().map(super::views::peer).collect();
    Ok(Counts {
        events,
        steps,
        hosts: hosts.into_iter().collect(),
        complete: root_payload.is_some_and(|(_, payload)| payload),
    })
}

/// `{"address", "name", "status", "events", "steps", "hosts", "created"?}`; the
/// status is `failed` (checking or walking it failed here), `complete` (the
/// program's log ends with its value), `stuck` (the run is over without one: a
/// normal form with capabilities left) or `running`.
pub(crate) fn entry(
    store: &Store,
    counted: &Counted,
    program: Cid,
    known: Known,
) -> Result<Value, CacheError> {
    let manifest = store
        .get_block(program)?
        .and_then(|bytes| Manifest::decode(&bytes).ok());
    let counts = counted.get_or(store, program, || count(store, program))?;
    let over = known.over || store.is_run_over(program)?;
    let status = if known.failed {
        "failed"
    } else if counts.complete {
        "complete"
    } else if over {
        "stuck"
    } else {
        "running"
    };
    let mut json = json!({
        "address": format!("/amb/{program}"),
        "name": manifest.as_ref().and_then(|m| m.name()),
        "status": status,
        "events": counts.events,
        "steps": counts.steps,
        "hosts": counts.hosts,
    });
    if let Some(time) = manifest.as_ref().and_then(Manifest::time) {
        json["created"] = json!(time);
    }
    Ok(json)
}
