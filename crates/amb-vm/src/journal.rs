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
//!
//! The entries are stored in the order they were added, in chunks that never move,
//! and found through a table of their positions: the replay state of a long program
//! is mostly these journals, and growing them copies and touches only the small
//! table, never the entries (past the first chunk, which starts small and grows).

use std::{
    hash::{BuildHasher, Hash},
    sync::Arc,
};

use hashbrown::HashTable;

use crate::hash::CidHash;

/// Entries per chunk.
const CHUNK: usize = 4096;

/// Room for entries the first chunk starts with; it doubles up to [`CHUNK`].
const FIRST_CHUNK: usize = 64;

/// The entries of a journal, with the table that finds them.
#[derive(Clone, Debug, Default)]
struct Entries<K, V> {
    /// (key, value, ordinal that added it), in the order added.
    chunks: Vec<Vec<(K, V, u64)>>,
    /// Entries in `chunks`.
    len: u32,
    /// Each entry's position in `chunks`, with 32 bits of its key's hash (so the
    /// table grows without reading the entries).
    index: HashTable<(u32, u32)>,
    hasher: CidHash,
}

/// The entry at `position` of `chunks`.
fn at<K, V>(chunks: &[Vec<(K, V, u64)>], position: u32) -> &(K, V, u64) {
    let position = position as usize;
    &chunks[position / CHUNK][position % CHUNK]
}

/// The table's hash of a key's 32 bits: spread over 64 bits, since the table reads
/// both ends.
fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl<K: Hash + Eq, V> Entries<K, V> {
    fn hash(&self, key: &K) -> u32 {
        // The low half (foldhash's output is uniform).
        self.hasher.hash_one(key) as u32
    }

    fn get(&self, key: &K) -> Option<&(K, V, u64)> {
        let hash = self.hash(key);
        self.index
            .find(spread(hash), |&(p, h)| {
                h == hash && at(&self.chunks, p).0 == *key
            })
            .map(|&(p, _)| at(&self.chunks, p))
    }

    /// Adds an entry as ordinal `now` does, or replaces the value of `key` if
    /// another ordinal added it.
    fn insert(&mut self, key: K, value: V, now: u64) {
        let hash = self.hash(&key);
        let Entries {
            chunks, len, index, ..
        } = self;
        let found = index.entry(
            spread(hash),
            |&(p, h)| h == hash && at(chunks, p).0 == key,
            |&(_, h)| spread(h),
        );
        match found {
            hashbrown::hash_table::Entry::Occupied(entry) => {
                let p = entry.get().0 as usize;
                let old = &mut chunks[p / CHUNK][p % CHUNK];
                if old.2 != now {
                    *old = (key, value, now);
                }
            }
            hashbrown::hash_table::Entry::Vacant(entry) => {
                entry.insert((*len, hash));
                *len = len.checked_add(1).expect("fewer than 2^32 entries");
                if chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
                    // The first chunk starts small (most programs are): fresh
                    // memory costs its pages' zeroing, for every replay made.
                    let first = if chunks.is_empty() {
                        FIRST_CHUNK
                    } else {
                        CHUNK
                    };
                    chunks.push(Vec::with_capacity(first));
                }
                let chunk = chunks.last_mut().expect("a chunk with room");
                if chunk.len() == chunk.capacity() {
                    // Only the first chunk grows: doubling, up to `CHUNK`.
                    chunk.reserve_exact((chunk.len() * 2).min(CHUNK) - chunk.len());
                }
                chunk.push((key, value, now));
            }
        }
    }
}

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
            map: Arc::new(Entries {
                chunks: Vec::new(),
                len: 0,
                index: HashTable::new(),
                hasher: CidHash::default(),
            }),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Journal<K, V> {
    /// The value of `key`, if an event before ordinal `now` added it.
    pub(crate) fn get(&self, key: &K, now: u64) -> Option<&V> {
        self.map
            .get(key)
            .filter(|(_, _, added)| *added < now)
            .map(|(_, value, _)| value)
    }

    /// Whether an event before ordinal `now` added `key`.
    pub(crate) fn contains(&self, key: &K, now: u64) -> bool {
        self.get(key, now).is_some()
    }

    /// Adds `key` as the event of ordinal `now` does. A key that the same ordinal
    /// added is kept as it is: replaying the same event gives the same value.
    pub(crate) fn insert(&mut self, key: K, value: V, now: u64) {
        // Unshared (the replay that writes the history), the entries are written in
        // place; shared, they are copied only for an entry that differs.
        if let Some(map) = Arc::get_mut(&mut self.map) {
            return map.insert(key, value, now);
        }
        if self
            .map
            .get(&key)
            .is_some_and(|(_, _, added)| *added == now)
        {
            return;
        }
        Arc::make_mut(&mut self.map).insert(key, value, now);
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
