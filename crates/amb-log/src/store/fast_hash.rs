//! A hasher for the store's in-memory maps, whose keys are digests (already uniform)
//! and small integers: a multiply-rotate over 8-byte words, much cheaper than the
//! default SipHash. Nothing outside the process chooses these keys' hashes.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, Hasher},
};

/// A map with [`FastHasher`].
pub(super) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A set with [`FastHasher`].
pub(super) type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

/// See the module documentation.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.word(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.word(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use amb_bytecode::Cid;

    use super::*;

    #[test]
    fn maps_work_and_spread_digests() {
        let mut map: FastMap<Cid, u64> = FastMap::default();
        for i in 0..10_000u64 {
            map.insert(Cid::of(&i.to_le_bytes()), i);
        }
        assert!((0..10_000u64).all(|i| map[&Cid::of(&i.to_le_bytes())] == i));
        let mut set: FastSet<(u64, u64)> = FastSet::default();
        assert!(set.insert((1, 2)) && !set.insert((1, 2)) && set.insert((2, 1)));
    }
}
