//! Synthetic event-shaped byte strings for the store's tests and its size bench
//! (shared by `tests/store.rs` and `benches/store_size.rs` through `#[path]`; each uses
//! a different part, hence the `dead_code` allowance).
#![allow(dead_code)]

use std::time::Instant;

use amb_bytecode::Cid;
use amb_log::{NewEvent, Store};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// A deterministic stream of event-shaped byte strings: `logs` logs written round
/// robin; every event refers to its predecessor in its log and to the event written
/// just before it (in another log), like a capability and its co-capability.
pub(crate) struct Synthetic {
    pub(crate) logs: Vec<Cid>,
    pub(crate) events: Vec<Event>,
    pub(crate) size: usize,
}

pub(crate) struct Event {
    pub(crate) cid: Cid,
    pub(crate) log: Cid,
    pub(crate) seq: u64,
    pub(crate) refs: Vec<Cid>,
    pub(crate) bytes: Vec<u8>,
}

impl Event {
    /// A hand-made event: its bytes name its log and refs, as real events do.
    pub(crate) fn new(log: Cid, seq: u64, refs: &[Cid], tag: &str) -> Event {
        let mut bytes = b"event".to_vec();
        link(&mut bytes, log);
        bytes.extend_from_slice(&seq.to_be_bytes());
        for r in refs {
            link(&mut bytes, *r);
        }
        bytes.extend_from_slice(tag.as_bytes());
        Event {
            cid: Cid::of(&bytes),
            log,
            seq,
            refs: refs.to_vec(),
            bytes,
        }
    }

    pub(crate) fn new_event(&self) -> NewEvent<'_> {
        NewEvent {
            cid: self.cid,
            log: self.log,
            seq: self.seq,
            refs: &self.refs,
            bytes: &self.bytes,
        }
    }
}

/// A CID as a DAG-CBOR link: tag 42, a 37-byte string, `00` then the binary CID.
pub(crate) fn link(out: &mut Vec<u8>, cid: Cid) {
    out.extend_from_slice(&[0xd8, 0x2a, 0x58, 0x25, 0x00]);
    out.extend_from_slice(&cid.to_bytes());
}

impl Synthetic {
    pub(crate) fn new(logs: usize, size: usize) -> Synthetic {
        Synthetic {
            logs: (0..logs as u64)
                .map(|i| Cid::of(&i.to_be_bytes()))
                .collect(),
            events: Vec::new(),
            size,
        }
    }

    /// Makes the next event: shaped like `spec/events.md` §3 (log link, seq, op, two
    /// ref links, creator, signature), padded with pseudo-random bytes to `size`.
    pub(crate) fn next(&mut self) -> &Event {
        let n = self.events.len();
        let log_index = n % self.logs.len();
        let log = self.logs[log_index];
        let seq = (n / self.logs.len()) as u64;
        let mut refs = Vec::new();
        if seq > 0 {
            refs.push(self.events[n - self.logs.len()].cid);
        }
        if n > 0 && !refs.contains(&self.events[n - 1].cid) {
            refs.push(self.events[n - 1].cid);
        }
        refs.sort_by_key(|c| c.to_bytes());
        let mut bytes = vec![0x89, 0x01];
        link(&mut bytes, log);
        bytes.push(0x1b);
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.extend_from_slice(&[0x82, 0x02, 0x61, b'x', 0xf6, 0x80 + refs.len() as u8]);
        for r in &refs {
            link(&mut bytes, *r);
        }
        bytes.push(0xf6);
        let mut filler = StdRng::seed_from_u64(n as u64);
        bytes.extend_from_slice(&[0x58, 0x20]);
        bytes.extend((0..32).map(|_| (log_index as u8).wrapping_mul(7)));
        bytes.extend_from_slice(&[0x58, 0x40]);
        while bytes.len() < self.size {
            bytes.push(filler.r#gen());
        }
        self.events.push(Event {
            cid: Cid::of(&bytes),
            log,
            seq,
            refs,
            bytes,
        });
        &self.events[n]
    }

    /// Generates events up to `count`.
    pub(crate) fn extend_to(&mut self, count: usize) {
        while self.events.len() < count {
            self.next();
        }
    }
}

/// Writes `events` synthetic events in batches of `batch` to a new store; returns the
/// bytes on disk per event and a line of details.
pub(crate) fn measure(events: usize, batch: usize) -> (f64, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::create(dir.path().join("size.redb")).expect("create");
    let program = Cid::of(b"size");
    let mut synthetic = Synthetic::new(1_000, 250);
    synthetic.extend_to(events);
    let started = Instant::now();
    for chunk in synthetic.events.chunks(batch) {
        let batch: Vec<NewEvent<'_>> = chunk.iter().map(Event::new_event).collect();
        store.write_batch(program, &batch).expect("write");
    }
    let elapsed = started.elapsed();
    let raw: usize = synthetic.events.iter().map(|e| e.bytes.len()).sum();
    let disk = store.size_on_disk().expect("size");
    let len = store.file_len().expect("size");
    let per_event = disk as f64 / events as f64;
    (
        per_event,
        format!(
            "event bytes {:.1}/event, file length {:.1}/event, {:.0} events/s",
            raw as f64 / events as f64,
            len as f64 / events as f64,
            events as f64 / elapsed.as_secs_f64()
        ),
    )
}
