//! An append-only map that copies of a replay share.
//!
//! Time travel keeps copies of the replay state every few thousand events. The maps
//! that only grow with the history (events applied, capabilities consumed, block
//! instances started) would make every copy as large as the whole history, so the
//! copies share the journal of the complete replay: each entry is stamped with the
//! ordinal of the event that added it, and a copy sees only the entries older than the
//! number of events it has applied. A copy that replays the same events again finds
//! its entries already there and keeps sharing; one that writes a different entry
//! gets its own map (copy on write).

use std::{collections::HashMap, hash::Hash, sync::Arc};

type Entries<K, V> = HashMap<K, (V, u64), foldhash::fast::RandomState>;

/// An append-only map whose entries are visible from the ordinal that added them.
#[derive(Debug)]
pub(crate) struct Journal<K, V> {
    map: Arc<Entries<K, V>>,
}

impl<K, V> Clone for Journal<K, V> {
    fn clone(&self) -> Self {
        Journal {
            map: Arc::clone(&self.map),
        }
    }
}

impl<K, V> Default for Journal<K, V> {
    fn default() -> Self {
        Journal {
            map: Arc::new(Entries::default()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Journal<K, V> {
    /// The value of `key`, if an event before ordinal `now` added it.
    pub(crate) fn get(&self, key: &K, now: u64) -> Option<&V> {
        self.map
            .get(key)
            .filter(|(_, added)| *added < now)
            .map(|(value, _)| value)
    }

    /// Whether an event before ordinal `now` added `key`.
    pub(crate) fn contains(&self, key: &K, now: u64) -> bool {
        self.get(key, now).is_some()
    }

    /// Adds `key` as the event of ordinal `now` does. A key that the same ordinal
    /// added is kept as it is: replaying the same event gives the same value.
    pub(crate) fn insert(&mut self, key: K, value: V, now: u64) {
        if self.map.get(&key).is_some_and(|(_, added)| *added == now) {
            return;
        }
        Arc::make_mut(&mut self.map).insert(key, (value, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_visible_from_their_ordinal_and_replaying_them_shares_the_map() {
        let mut journal: Journal<u32, &str> = Journal::default();
        journal.insert(1, "one", 0);
        journal.insert(2, "two", 1);
        assert_eq!(journal.get(&1, 1), Some(&"one"));
        assert_eq!(journal.get(&2, 1), None, "not before its ordinal");
        assert_eq!(journal.get(&2, 2), Some(&"two"));
        // A copy that replays the same events shares the map.
        let mut again = journal.clone();
        again.insert(2, "two", 1);
        assert!(Arc::ptr_eq(&again.map, &journal.map), "same entry: shared");
        again.insert(3, "three", 2);
        assert!(!Arc::ptr_eq(&again.map, &journal.map), "new entry: copied");
        assert!(!journal.contains(&3, 10));
        assert!(again.contains(&3, 3));
    }
}
