//! A vector that copies share by chunks.
//!
//! The replay's ambients are numbered densely; copies of the replay state (time
//! travel) share them. A [`Chunked`] vector is a flat list of shared chunks of
//! [`CHUNK`] elements: reading an element is two dependent reads, a copy copies the
//! list of chunks (one pointer per [`CHUNK`] elements), and changing an element of a
//! shared chunk copies that chunk alone.

use std::{
    ops::{Index, IndexMut},
    sync::Arc,
};

/// Elements per chunk.
const CHUNK: usize = 256;

/// A vector of shared chunks (copy on write).
#[derive(Clone, Debug)]
pub(crate) struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Chunked<T> {
    /// Elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends an element.
    pub(crate) fn push(&mut self, value: T) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        let last = self.chunks.last_mut().expect("a chunk with room");
        Arc::make_mut(last).push(value);
        self.len += 1;
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        &self.chunks[index / CHUNK][index % CHUNK]
    }
}

impl<T: Clone> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[index / CHUNK])[index % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_its_elements_while_the_original_changes() {
        let mut vector = Chunked::default();
        for i in 0..CHUNK * 2 + 3 {
            vector.push(i);
        }
        let copy = vector.clone();
        vector[1] = 100;
        vector.push(7);
        assert_eq!(
            (vector[1], vector[CHUNK * 2 + 3], vector.len()),
            (100, 7, CHUNK * 2 + 4)
        );
        assert_eq!((copy[1], copy.len()), (1, CHUNK * 2 + 3));
        assert!(
            Arc::ptr_eq(&copy.chunks[1], &vector.chunks[1]),
            "unchanged: shared"
        );
    }
}
