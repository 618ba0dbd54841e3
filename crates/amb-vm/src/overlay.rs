//! A hash map with a persistent base and a flat layer of recent changes.
//!
//! The replay state must be cheap to copy (time travel keeps hundreds of copies that
//! share structure), but a persistent map (a hash array mapped trie) costs several
//! dependent memory reads per lookup, which dominates a long replay. An [`Overlay`]
//! keeps both: the changes since the last [`Overlay::settle`] in a flat hash map (one
//! probe), over a persistent map that copies share. A replay that is never copied
//! never settles, so it only ever touches the flat layer; one that is copied settles
//! first, so the copy shares everything and its own flat layer starts empty.

use std::{
    borrow::Borrow,
    collections::{HashMap, hash_map::Entry},
    hash::Hash,
    ops::Index,
};

use crate::hash::CidHash;

/// A map: recent changes (`None`: removed) over a persistent base.
#[derive(Debug)]
pub(crate) struct Overlay<K, V> {
    /// Changes since the last settle; `None` removes the base's entry.
    top: HashMap<K, Option<V>, CidHash>,
    base: imbl::GenericHashMap<K, V, CidHash, imbl::shared_ptr::DefaultSharedPtr>,
}

impl<K: Clone, V: Clone> Clone for Overlay<K, V> {
    /// A copy; of a settled map, one that shares it all (the flat layer keeps its
    /// room when it settles, for the next changes: a copy does not take that room).
    fn clone(&self) -> Self {
        let top = if self.top.is_empty() {
            HashMap::with_hasher(self.top.hasher().clone())
        } else {
            self.top.clone()
        };
        Overlay {
            top,
            base: self.base.clone(),
        }
    }
}

impl<K, V> Default for Overlay<K, V> {
    fn default() -> Self {
        Overlay {
            top: HashMap::default(),
            base: imbl::GenericHashMap::default(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Overlay<K, V> {
    /// The value of `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.top.get(key) {
            Some(value) => value.as_ref(),
            None => self.base.get(key),
        }
    }

    /// Whether `key` has a value.
    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// The value of `key`, to change (moved up from the base first).
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self.top.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut().as_mut(),
            Entry::Vacant(entry) => {
                let value = self.base.get(key)?.clone();
                entry.insert(Some(value)).as_mut()
            }
        }
    }

    /// Sets the value of `key`.
    pub(crate) fn insert(&mut self, key: K, value: V) {
        self.top.insert(key, Some(value));
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        if self.base.contains_key(key) {
            match self.top.insert(key.clone(), None) {
                Some(value) => value,
                None => self.base.get(key).cloned(),
            }
        } else {
            self.top.remove(key).flatten()
        }
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let recent = self
            .top
            .iter()
            .filter_map(|(key, value)| Some((key, value.as_ref()?)));
        let older = self
            .base
            .iter()
            .filter(|(key, _)| !self.top.contains_key(*key));
        recent.chain(older)
    }

    /// Moves the recent changes into the persistent base, so that a copy shares
    /// them.
    pub(crate) fn settle(&mut self) {
        for (key, value) in self.top.drain() {
            match value {
                Some(value) => {
                    self.base.insert(key, value);
                }
                None => {
                    self.base.remove(&key);
                }
            }
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone, Q> Index<&Q> for Overlay<K, V>
where
    K: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("a key of the map")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_over_a_settled_base_read_as_one_map() {
        let mut map: Overlay<u32, &str> = Overlay::default();
        map.insert(1, "one");
        map.insert(2, "two");
        map.settle();
        let copy = map.clone();
        assert_eq!(copy.top.capacity(), 0, "a settled map's copy shares it all");
        map.insert(3, "three");
        *map.get_mut(&1).expect("settled") = "uno";
        assert_eq!(map.remove(&2), Some("two"));
        assert_eq!(map.remove(&2), None);
        assert_eq!(map.remove(&3), Some("three"));
        map.insert(4, "four");
        let mut entries: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
        entries.sort();
        assert_eq!(entries, [(1, "uno"), (4, "four")]);
        map.settle();
        assert_eq!(map[&1], "uno");
        assert!(!map.contains_key(&2));
        // The copy taken before kept its state.
        assert_eq!((copy[&1], copy[&2]), ("one", "two"));
        assert!(!copy.contains_key(&4));
    }
}
