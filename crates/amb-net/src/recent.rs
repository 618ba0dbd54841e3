//! A map that keeps only its most recent entries (`Recent`): what a node tells
//! callers for a while about programs it is done with (the status of a walk that
//! is over, the failure of a program's check), then forgets, so that it does not
//! grow with every program the node ever ran.

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
};

/// At most `cap` entries; inserting past that forgets the oldest.
#[derive(Debug)]
pub(crate) struct Recent<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    cap: usize,
}

impl<K: Copy + Eq + Hash, V> Recent<K, V> {
    pub(crate) fn new(cap: usize) -> Recent<K, V> {
        Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Sets the entry of `key` (a key already there keeps its age).
    pub(crate) fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key, value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_are_forgotten_past_the_cap() {
        let mut recent = Recent::new(3);
        for k in 0..10u32 {
            recent.insert(k, k * 2);
            recent.insert(k, k * 3);
        }
        assert_eq!(recent.len(), 3);
        assert_eq!(recent.get(&9), Some(&27));
        assert_eq!(recent.get(&7), Some(&21));
        assert_eq!(recent.get(&6), None);
    }
}
