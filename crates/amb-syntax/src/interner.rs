//! The name table: each distinct name stored once, identified by a dense index.
//!
//! Parsing a large program interns millions of names, so a lookup must touch as little
//! memory as possible: a hash-table slot holds the name's length and first 15 bytes, and
//! names that short (nearly all) are compared inside the slot without reading the text.
//! All texts live in one string.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// How many bytes of a name a slot holds.
const INLINE: usize = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// `len` (or 255 when longer than [`INLINE`]), then the first bytes, zero padded.
    key: [u8; INLINE + 1],
    index: u32,
}

fn key_of(text: &str) -> [u8; INLINE + 1] {
    let bytes = text.as_bytes();
    let mut key = [0u8; INLINE + 1];
    let shown = bytes.len().min(INLINE);
    key[0] = if bytes.len() <= INLINE {
        bytes.len() as u8
    } else {
        u8::MAX
    };
    key[1..=shown].copy_from_slice(&bytes[..shown]);
    key
}

#[derive(Clone, Default)]
pub(crate) struct Interner {
    table: HashTable<Slot>,
    hasher: foldhash::fast::RandomState,
    text: String,
    /// Start and end of each name in `text` (4 bytes each: half the memory a
    /// printer's lookups touch).
    spans: Vec<(u32, u32)>,
}

impl Interner {
    fn text_of<'t>(text: &'t str, spans: &[(u32, u32)], index: u32) -> &'t str {
        let (start, end) = spans[index as usize];
        &text[start as usize..end as usize]
    }

    fn find(&self, text: &str, hash: u64) -> Option<u32> {
        let key = key_of(text);
        let long = text.len() > INLINE;
        self.table
            .find(hash, |slot| {
                slot.key == key
                    && (!long || Self::text_of(&self.text, &self.spans, slot.index) == text)
            })
            .map(|slot| slot.index)
    }

    /// The index of a name, adding it when new; `true` when it was added.
    pub(crate) fn intern(&mut self, text: &str) -> (u32, bool) {
        let hash = self.hasher.hash_one(text);
        if let Some(index) = self.find(text, hash) {
            return (index, false);
        }
        let index = u32::try_from(self.spans.len()).expect("fewer than 2^32 names");
        let offset = |len: usize| u32::try_from(len).expect("names of fewer than 4 GiB in all");
        let start = offset(self.text.len());
        self.text.push_str(text);
        self.spans.push((start, offset(self.text.len())));
        let (hasher, all, spans) = (&self.hasher, &self.text, &self.spans);
        self.table.insert_unique(
            hash,
            Slot {
                key: key_of(text),
                index,
            },
            |slot| hasher.hash_one(Self::text_of(all, spans, slot.index)),
        );
        (index, true)
    }

    /// The index of a name, if present.
    pub(crate) fn lookup(&self, text: &str) -> Option<u32> {
        self.find(text, self.hasher.hash_one(text))
    }

    /// The text of a name.
    pub(crate) fn get(&self, index: u32) -> &str {
        Self::text_of(&self.text, &self.spans, index)
    }

    /// Number of distinct names.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_intern_once() {
        let mut names = Interner::default();
        let long_a = "a_name_longer_than_fifteen_bytes_1";
        let long_b = "a_name_longer_than_fifteen_bytes_2";
        let (a, new_a) = names.intern("a");
        let (la, _) = names.intern(long_a);
        let (lb, _) = names.intern(long_b);
        assert!(new_a && la != lb);
        assert_eq!(names.intern("a"), (a, false));
        assert_eq!(names.intern(long_b), (lb, false));
        assert_eq!(names.lookup(long_a), Some(la));
        assert_eq!(names.lookup("b"), None);
        assert_eq!(names.lookup(""), None);
        assert!(names.intern("").1);
        assert_eq!((names.get(la), names.get(a)), (long_a, "a"));
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn many_names_survive_growth() {
        let mut names = Interner::default();
        let texts: Vec<String> = (0..10_000).map(|i| format!("name_{i}_{}", i * 7)).collect();
        let ids: Vec<u32> = texts.iter().map(|t| names.intern(t).0).collect();
        for (text, id) in texts.iter().zip(ids) {
            assert_eq!(names.lookup(text), Some(id));
            assert_eq!(names.get(id), text);
        }
    }
}
