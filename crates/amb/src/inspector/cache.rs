//! The timelines the inspector keeps (`timeline_cache_mb`): loading a program's
//! timeline replays it once (seconds for 10^6 events), after which any step is a
//! seek (`amb-vm`'s `travel`). Timelines are kept, least recently used first out,
//! while their estimated sizes fit the budget; one larger than the budget is
//! served and dropped. A kept timeline is a snapshot of the store: for a run not
//! over when it was loaded, it is loaded again when the program's stored event
//! count has changed. Loads run one at a time, so two requests never replay one program twice
//! at once.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use amb_bytecode::Cid;
use amb_log::Store;
use amb_vm::{travel::Timeline, verify::VerifyError};

/// What one event of a timeline costs in memory, about: the decoded event, its
/// place in the order and in the step index, and its share of the snapshots
/// (3,862 MB for the 1,018,529 events of the seek bench's program,
/// `BENCHMARKS.md`, rounded up).
const BYTES_PER_EVENT: usize = 4096;

/// A timeline, shared by the requests that read it.
pub(crate) type Shared = Arc<Mutex<Timeline<'static>>>;

/// A timeline and whether this request loaded it.
pub(crate) struct Loaded {
    pub(crate) timeline: Shared,
    /// How long loading took, in ms, when this request loaded it.
    pub(crate) load_ms: Option<u64>,
}

struct Entry {
    program: Cid,
    events: usize,
    /// The store's event count (all programs) when `events` was last found to be
    /// the program's: while the store has no more, the program has no more either.
    store_events: u64,
    /// The run was over when loaded: the store adds no event to it.
    settled: bool,
    bytes: usize,
    timeline: Shared,
}

/// Why a timeline could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CacheError {
    /// The store holds no event of the program.
    #[error("{}", crate::address::AddressError::NotFound(format!("/amb/{}", .0)))]
    Unknown(Cid),
    /// The address is a bytecode block's CID (`amb compile`'s), not a program's.
    #[error("{}", crate::address::AddressError::Bytecode(*.0))]
    Bytecode(Cid),
    /// The store could not be read.
    #[error("reading the store: {0}")]
    Store(#[from] amb_log::StoreError),
    /// Replaying the stored events failed.
    #[error(transparent)]
    Replay(#[from] VerifyError),
}

/// The kept timelines, most recently used last.
pub(crate) struct TimelineCache {
    budget: usize,
    /// The store cannot change while the cache reads it (`amb ui` opens it alone):
    /// every timeline is settled, and no request counts the stored events.
    frozen: bool,
    kept: Mutex<Vec<Entry>>,
    loading: Mutex<()>,
}

impl std::fmt::Debug for TimelineCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimelineCache")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl TimelineCache {
    /// A cache of at most `budget_bytes` of timelines (estimated) of a store that
    /// others may write, unless `frozen`.
    pub(crate) fn new(budget_bytes: usize, frozen: bool) -> TimelineCache {
        TimelineCache {
            budget: budget_bytes,
            frozen,
            kept: Mutex::new(Vec::new()),
            loading: Mutex::new(()),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The timeline of `program` as the store holds it now (blocking: it may
    /// replay the program).
    pub(crate) fn get(&self, store: &Store, program: Cid) -> Result<Loaded, CacheError> {
        // A run over cannot change: its timeline is used without counting events.
        if let Some(timeline) = self.hit(program, None) {
            return Ok(Loaded {
                timeline,
                load_ms: None,
            });
        }
        // Nothing stored since the timeline was loaded or last found fresh: the
        // program's events are not counted (a quarter of a second at 10^6).
        let store_events = store.event_count()?;
        if let Some(timeline) = self.unchanged(program, store_events) {
            return Ok(Loaded {
                timeline,
                load_ms: None,
            });
        }
        let events = stored_events(store, program)?;
        if let Some(timeline) = self.hit(program, Some(events)) {
            self.unchanged_since(program, store_events);
            return Ok(Loaded {
                timeline,
                load_ms: None,
            });
        }
        let _one_at_a_time = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        // Another request may have loaded it meanwhile.
        if let Some(timeline) = self.hit(program, Some(events)) {
            return Ok(Loaded {
                timeline,
                load_ms: None,
            });
        }
        let settled = self.frozen || is_over(store, program)?;
        let started = Instant::now();
        let timeline = Timeline::load_owned(store, program, &())?;
        let load_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let loaded = timeline.events().len();
        tracing::info!(%program, events = loaded, load_ms, "timeline loaded");
        let timeline = Arc::new(Mutex::new(timeline));
        self.keep(Entry {
            program,
            events: loaded,
            store_events,
            settled,
            bytes: loaded.saturating_mul(BYTES_PER_EVENT),
            timeline: Arc::clone(&timeline),
        });
        Ok(Loaded {
            timeline,
            load_ms: Some(load_ms),
        })
    }

    /// The kept timeline of `program`: one whose run was over when it was loaded,
    /// or (with `events`) one loaded from that many events; a kept one that no
    /// longer matches is dropped.
    fn hit(&self, program: Cid, events: Option<usize>) -> Option<Shared> {
        let mut kept = self.kept();
        let i = kept.iter().position(|e| e.program == program)?;
        let fresh = match events {
            None => kept[i].settled,
            Some(n) => kept[i].settled || kept[i].events == n,
        };
        if !fresh {
            if events.is_some() {
                kept.remove(i);
            }
            return None;
        }
        let entry = kept.remove(i);
        let timeline = Arc::clone(&entry.timeline);
        kept.push(entry);
        Some(timeline)
    }

    /// The kept timeline of `program` if the store held `store_events` events when
    /// it was last found fresh.
    fn unchanged(&self, program: Cid, store_events: u64) -> Option<Shared> {
        let kept = self.kept();
        kept.iter()
            .find(|e| e.program == program && e.store_events == store_events)
            .map(|e| Arc::clone(&e.timeline))
    }

    /// Notes that the kept timeline of `program` was fresh when the store held
    /// `store_events` events.
    fn unchanged_since(&self, program: Cid, store_events: u64) {
        if let Some(entry) = self.kept().iter_mut().find(|e| e.program == program) {
            entry.store_events = store_events;
        }
    }

    fn keep(&self, entry: Entry) {
        if entry.bytes > self.budget {
            return;
        }
        let mut kept = self.kept();
        kept.retain(|e| e.program != entry.program);
        while kept.iter().map(|e| e.bytes).sum::<usize>() + entry.bytes > self.budget {
            kept.remove(0);
        }
        kept.push(entry);
    }

    /// The programs kept and their estimated bytes (for tests and `/v1/info`).
    #[cfg(test)]
    fn kept_programs(&self) -> Vec<(Cid, usize)> {
        self.kept().iter().map(|e| (e.program, e.bytes)).collect()
    }
}

/// Whether the run of `program` is over as the store says: the node wrote it so
/// (`runs_over`), or the root log ends with its payload (`spec/network.md` §1).
fn is_over(store: &Store, program: Cid) -> Result<bool, CacheError> {
    if store.is_run_over(program)? {
        return Ok(true);
    }
    Ok(amb_vm::record::stored_run_complete(store, program)?)
}

/// How many events of `program` the store holds (an error when none).
pub(crate) fn stored_events(store: &Store, program: Cid) -> Result<usize, CacheError> {
    let count = store.snapshot()?.program_events(program)?.remaining();
    if count == 0 {
        return Err(match crate::address::stored_kind(store, program)? {
            crate::address::Stored::Bytecode => CacheError::Bytecode(program),
            _ => CacheError::Unknown(program),
        });
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::inspector::testing::recorded;

    #[test]
    fn timelines_are_kept_within_the_budget_and_reloaded_when_the_store_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("store.redb")).unwrap();
        let a = recorded(&store, "a[in b] | b[in_ a]");
        let b = recorded(&store, "c[out d] | d[]");
        let per = |p| stored_events(&store, p).unwrap() * BYTES_PER_EVENT;
        // Room for the larger of the two only.
        let cache = TimelineCache::new(per(a).max(per(b)), false);
        assert!(cache.get(&store, a).unwrap().load_ms.is_some());
        assert!(cache.get(&store, a).unwrap().load_ms.is_none(), "kept");
        assert!(cache.get(&store, b).unwrap().load_ms.is_some());
        assert_eq!(
            cache.kept_programs().len(),
            1,
            "{:?}",
            cache.kept_programs()
        );
        assert_eq!(cache.kept_programs()[0].0, b);
        let unknown: Cid = Cid::of(b"nothing");
        assert!(matches!(
            cache.get(&store, unknown),
            Err(CacheError::Unknown(_))
        ));
    }
}
