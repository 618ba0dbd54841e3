//! Which runs this node knows to be over (`spec/network.md` §8, "When a run is
//! over"), across restarts. A run this node walks (its deployment is kept in the
//! store) is over only when its walk says so, or a peer that knows it over gave
//! every event; those are written to the store's `runs_over` table when learned.
//! Any other run is also over once its root log, as stored, ends with a payload.
//! Shared by the intake (which learns it), the sync server (which tells peers), the
//! value service (which waits for it) and the start (which resumes the rest).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use amb_bytecode::Cid;
use amb_log::{Store, StoreError};
use tokio::sync::watch;

/// The runs known to be over: those seen so far, and the rest read from the store
/// when asked.
#[derive(Clone, Debug)]
pub struct Finished {
    store: Arc<Store>,
    known: Arc<Mutex<HashSet<Cid>>>,
    /// Bumped whenever a run is learned to be over ([`Finished::changes`]).
    learned: Arc<watch::Sender<u64>>,
}

impl Finished {
    /// What `store` says of the runs it holds.
    pub fn new(store: Arc<Store>) -> Finished {
        Finished {
            store,
            known: Arc::default(),
            learned: Arc::new(watch::Sender::new(0)),
        }
    }

    /// A receiver told each time a run is learned to be over from now on.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.learned.subscribe()
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<Cid>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `program` is over (this node's walk is at its end, or it synced
    /// every event of a peer that knows the run to be over), in the store too.
    pub fn insert(&self, program: Cid) {
        if !self.known().insert(program) {
            return;
        }
        self.learned.send_modify(|n| *n += 1);
        let noted = match self.store.is_run_over(program) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => self.store.mark_run_over(program),
        };
        if let Err(e) = noted {
            // The next start walks the run again or asks the peers; nothing is lost.
            tracing::warn!(%program, "noting the run as over in the store: {e}");
        }
    }

    /// Whether `program` is known to be over.
    pub fn contains(&self, program: &Cid) -> bool {
        if self.known().contains(program) {
            return true;
        }
        let over = over_in_store(&self.store, *program).unwrap_or(false);
        if over {
            self.known().insert(*program);
        }
        over
    }
}

/// Whether the store shows the run of `program` to be over: noted so, or not
/// walked here and its root log ends with a payload.
fn over_in_store(store: &Store, program: Cid) -> Result<bool, StoreError> {
    if store.is_run_over(program)? {
        return Ok(true);
    }
    if store.deployment(program)?.is_some() {
        // This node's walk says when its run is over (a root log may end early).
        return Ok(false);
    }
    amb_vm::record::stored_run_complete(store, program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_noted_over_stays_over_and_a_walked_run_waits_for_its_walk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let (program, walked) = (Cid::of(b"a program"), Cid::of(b"walked here"));
        {
            let store = Arc::new(Store::create(&path).unwrap());
            store.put_deployment(walked, b"its deployment").unwrap();
            let finished = Finished::new(store);
            assert!(!finished.contains(&program));
            finished.insert(program);
            assert!(finished.contains(&program));
            assert!(!finished.contains(&walked));
        }
        let reopened = || Finished::new(Arc::new(Store::open(&path).unwrap()));
        let finished = reopened();
        assert!(finished.contains(&program));
        assert!(!finished.contains(&walked));
        finished.insert(walked);
        drop(finished);
        let finished = reopened();
        assert!(finished.contains(&walked));
        assert!(!finished.contains(&Cid::of(b"another")));
    }
}
