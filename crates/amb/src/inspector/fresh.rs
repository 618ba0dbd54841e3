//! Figures worked out from a program's stored events (the program list's counts,
//! the slices each peer hosts), kept per program while they are fresh: while the
//! store holds no new event at all (one read of its counter), or else while the
//! program's stored event count is the same as when they were worked out. At most
//! [`PerProgram::MAX`] programs, forgotten all at once past that.

use std::{collections::HashMap, sync::Mutex};

use amb_bytecode::Cid;
use amb_log::Store;

use super::cache::CacheError;

struct Kept<T> {
    /// The program's stored events when `value` was worked out.
    events: usize,
    /// The store's event count (all programs) when `value` was last found fresh.
    store_events: u64,
    value: T,
}

/// Values of type `T` per program, each kept while its program's events stay the same.
pub(crate) struct PerProgram<T>(Mutex<HashMap<Cid, Kept<T>>>);

impl<T> Default for PerProgram<T> {
    fn default() -> Self {
        PerProgram(Mutex::default())
    }
}

impl<T> std::fmt::Debug for PerProgram<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerProgram").finish_non_exhaustive()
    }
}

impl<T: Clone> PerProgram<T> {
    const MAX: usize = 4096;

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, Kept<T>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value kept for `program` if it is fresh, else `make`'s (then kept).
    pub(crate) fn get_or(
        &self,
        store: &Store,
        program: Cid,
        make: impl FnOnce() -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let store_events = store.event_count()?;
        if let Some(kept) = self.kept().get(&program)
            && kept.store_events == store_events
        {
            return Ok(kept.value.clone());
        }
        let events = store.snapshot()?.program_events(program)?.remaining();
        if let Some(kept) = self.kept().get_mut(&program)
            && kept.events == events
        {
            kept.store_events = store_events;
            return Ok(kept.value.clone());
        }
        let value = make()?;
        let mut kept = self.kept();
        if kept.len() >= Self::MAX {
            kept.clear();
        }
        kept.insert(
            program,
            Kept {
                events,
                store_events,
                value: value.clone(),
            },
        );
        Ok(value)
    }

    /// How many programs are kept (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.kept().len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::inspector::testing::recorded;

    #[test]
    fn a_value_is_kept_while_its_programs_events_stay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("store.redb")).unwrap();
        let a = recorded(&store, "a[in b] | b[in_ a]");
        let kept = PerProgram::<u32>::default();
        let made = Cell::new(0);
        let get = |program| {
            kept.get_or(&store, program, || {
                made.set(made.get() + 1);
                Ok(made.get())
            })
            .unwrap()
        };
        assert_eq!(get(a), 1);
        assert_eq!(get(a), 1, "kept while nothing is stored");
        // Another program stored: the store's count moved, not `a`'s events.
        let b = recorded(&store, "c[out d] | d[]");
        assert_eq!(get(a), 1, "kept: the events of `a` are the same");
        assert_eq!(get(b), 2);
        assert_eq!(kept.len(), 2);
        // A program the store does not hold has no events: made, not an error.
        let unknown = Cid::of(b"nothing");
        assert_eq!(get(unknown), 3);
    }
}
