//! The one gossip batcher (`spec/network.md` §2): every publisher (a walk
//! announcing what it signed, `deploy::publish_events` re-announcing stored
//! events) packs its events, in order, with the blocks they need, into batches of
//! at most [`MAX_BATCH_EVENTS`] events and at most [`MAX_GOSSIP_BYTES`] encoded
//! bytes. An event and its blocks are never split across batches; one that alone
//! is over the byte bound goes alone (a receiver refuses it as `malformed`).

use amb_bytecode::Cid;
use rand::Rng;
use serde_bytes::ByteBuf;

use crate::wire::{GossipBatch, MAX_BATCH_EVENTS, MAX_GOSSIP_BYTES};

/// Bytes of a batch besides its items: the map, its keys, the program's CID, the
/// nonce and the two arrays' heads, with room to spare.
const BATCH_OVERHEAD: usize = 128;
/// Most bytes of one item's CBOR head (a byte string's length).
const ITEM_OVERHEAD: usize = 9;

/// Packs one program's events into bounded batches.
#[derive(Debug)]
pub struct Batcher {
    program: Cid,
    batch: GossipBatch,
    size: usize,
}

impl Batcher {
    /// A batcher of `program`'s events.
    pub fn new(program: Cid) -> Batcher {
        Batcher {
            program,
            batch: empty(program),
            size: BATCH_OVERHEAD,
        }
    }

    /// Adds `event` (its canonical bytes) with the `blocks` it needs; returns the
    /// batch it closes when the event does not fit in the current one.
    pub fn push(&mut self, blocks: Vec<Vec<u8>>, event: Vec<u8>) -> Option<GossipBatch> {
        let adds: usize = blocks
            .iter()
            .chain(std::iter::once(&event))
            .map(|b| b.len() + ITEM_OVERHEAD)
            .sum();
        let full =
            self.batch.events.len() == MAX_BATCH_EVENTS || self.size + adds > MAX_GOSSIP_BYTES;
        let closed = if full && !self.batch.events.is_empty() {
            self.size = BATCH_OVERHEAD;
            Some(std::mem::replace(&mut self.batch, empty(self.program)))
        } else {
            None
        };
        self.size += adds;
        self.batch
            .blocks
            .extend(blocks.into_iter().map(ByteBuf::from));
        self.batch.events.push(ByteBuf::from(event));
        closed
    }

    /// The last batch, if it has an event.
    pub fn finish(self) -> Option<GossipBatch> {
        (!self.batch.events.is_empty()).then_some(self.batch)
    }

    /// Every batch of `items` (each an event and the blocks it needs), in order.
    pub fn all(
        program: Cid,
        items: impl IntoIterator<Item = (Vec<Vec<u8>>, Vec<u8>)>,
    ) -> Vec<GossipBatch> {
        let mut batcher = Batcher::new(program);
        let mut batches: Vec<GossipBatch> = items
            .into_iter()
            .filter_map(|(blocks, event)| batcher.push(blocks, event))
            .collect();
        batches.extend(batcher.finish());
        batches
    }
}

/// An empty batch with a fresh nonce (a re-announcement is a new message).
pub(crate) fn empty(program: Cid) -> GossipBatch {
    GossipBatch {
        program,
        nonce: rand::thread_rng().r#gen(),
        blocks: Vec::new(),
        events: Vec::new(),
        told: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_by_events_and_by_bytes_and_keep_the_order() {
        let program = Cid::of(b"p");
        // Small events: the count bounds.
        let small: Vec<_> = (0..1200u32)
            .map(|i| (Vec::new(), i.to_be_bytes().to_vec()))
            .collect();
        let batches = Batcher::all(program, small);
        let sizes: Vec<usize> = batches.iter().map(|b| b.events.len()).collect();
        assert_eq!(
            sizes,
            vec![
                MAX_BATCH_EVENTS,
                MAX_BATCH_EVENTS,
                1200 - 2 * MAX_BATCH_EVENTS
            ]
        );
        let order: Vec<u32> = batches
            .iter()
            .flat_map(|b| &b.events)
            .map(|e| u32::from_be_bytes(e.as_slice().try_into().unwrap()))
            .collect();
        assert_eq!(order, (0..1200).collect::<Vec<_>>());
        // Large events with blocks: the bytes bound, and every batch decodes.
        let large: Vec<_> = (0..40u8)
            .map(|i| (vec![vec![i; 30_000]], vec![i; 60_000]))
            .collect();
        let batches = Batcher::all(program, large);
        assert!(batches.len() > 1);
        for batch in &batches {
            let bytes = batch.encode();
            assert!(bytes.len() <= MAX_GOSSIP_BYTES, "{} bytes", bytes.len());
            GossipBatch::decode(&bytes).expect("a batch within the bounds");
            // An event's blocks travel with it.
            assert_eq!(batch.blocks.len(), batch.events.len());
            for (block, event) in batch.blocks.iter().zip(&batch.events) {
                assert_eq!(block[0], event[0]);
            }
        }
        assert_eq!(batches.iter().map(|b| b.events.len()).sum::<usize>(), 40);
        assert!(Batcher::new(program).finish().is_none());
    }
}
