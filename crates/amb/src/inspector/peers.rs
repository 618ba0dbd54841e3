//! The slices each peer hosts (`GET /v1/peers`): a log's host is the key that
//! writes its next event, read from the program's replayed state at its last step
//! (its timeline, from the cache): its manifest's creator, then, after its ambient
//! moved `in` or `out`, the host of the log it moved into (`spec/network.md` §8).
//! Worked out once per program and kept while its stored events stay the same
//! (`fresh`), so listing the peers does not replay every program each time.

use amb_bytecode::Cid;
use amb_log::Store;
use amb_vm::travel::Moment;
use serde_json::{Value, json};

use super::{
    cache::{CacheError, TimelineCache},
    fresh::PerProgram,
    views,
};

/// Each slice of a program with the peer id of its host, in log order.
pub(crate) type Hosted = Vec<(String, Value)>;

/// The hosted slices of the programs seen lately.
pub(crate) type HostedCache = PerProgram<Hosted>;

/// The slices of `program` with their hosts: `(peer id, {"program", "log",
/// "name", "creator"})`.
pub(crate) fn hosted(
    store: &Store,
    timelines: &TimelineCache,
    kept: &HostedCache,
    program: Cid,
) -> Result<Hosted, CacheError> {
    kept.get_or(store, program, || {
        let loaded = timelines.get(store, program)?;
        let timeline = loaded.timeline.lock().unwrap_or_else(|e| e.into_inner());
        let last = Moment::Step(timeline.total_steps());
        let replay = timeline.replay_at(last)?;
        let mut logs = replay.log_hosts();
        logs.sort_by_key(|(log, _)| *log);
        let mut peers = views::Peers::default();
        let mut slices = Vec::new();
        for (log, host) in logs {
            let Some(host) = host else { continue };
            // The root log's manifest is derived from the program's, by its creator.
            let manifest = if log == replay.root_log() {
                program
            } else {
                log
            };
            let creator = timeline
                .source()
                .manifest(&manifest)
                .map(|m| peers.of(m.creator()));
            slices.push((
                peers.of(&host),
                json!({
                    "program": format!("/amb/{program}"),
                    "log": log.to_string(),
                    "name": views::log_name(&timeline, &log),
                    "creator": creator,
                }),
            ));
        }
        Ok(slices)
    })
}
