//! The hasher of the replay's maps, whose keys are CIDs (alone or with an index).
//!
//! A CID is a BLAKE3 digest: its bytes are already uniform, so hashing its first 16
//! bytes (one folded multiply with foldhash's per-map random seed) spreads keys as
//! well as hashing all 32, at a fraction of the cost. The seed keeps the buckets
//! unpredictable to whoever chooses the events, as foldhash's own does.

use std::hash::{BuildHasher, Hasher};

/// Builds [`CidHasher`]s (a random seed per map, as [`foldhash::fast::RandomState`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct CidHash(foldhash::fast::RandomState);

impl BuildHasher for CidHash {
    type Hasher = CidHasher;

    #[inline]
    fn build_hasher(&self) -> CidHasher {
        CidHasher(self.0.build_hasher())
    }
}

/// foldhash, reading at most the first 16 bytes of each byte string it is given (a
/// CID's digest; numbers are hashed in full).
#[derive(Clone)]
pub(crate) struct CidHasher(foldhash::fast::FoldHasher<'static>);

impl Hasher for CidHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        match bytes.first_chunk::<16>() {
            Some(head) => self.0.write_u128(u128::from_le_bytes(*head)),
            None => self.0.write(bytes),
        }
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_differing_in_their_first_bytes_hash_apart() {
        let build = CidHash::default();
        let a = build.hash_one([1u8; 32]);
        let mut other = [1u8; 32];
        other[15] = 2;
        assert_ne!(a, build.hash_one(other));
        assert_eq!(a, build.hash_one([1u8; 32]));
    }
}
