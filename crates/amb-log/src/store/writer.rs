//! The write half of a batch: checks each event against what is stored (refs first,
//! no forks, no-ops for events stored already), packs it into the open segment and
//! updates the index rows, which are written once when the batch finishes.

use std::collections::hash_map;

use amb_bytecode::Cid;
use redb::{ReadableTable, Table, WriteTransaction};

use super::{
    CHILDREN, MANIFESTS, META, NEXT_EVENT_KEY, NEXT_LOG_KEY, NewEvent, PROGRAM_LOGS, Result,
    SEGMENT_TARGET, StoreError, check_bytes, db_error, digest_index,
    entry::{self, Compact, Dictionary, EventRef, FLAG_PREV, parse_segment},
    fast_hash::{FastMap, FastSet},
    manifests, meta_value,
    rows::{CHUNK, ChildChunk, LogChunk},
    tables::{WriteTables, prefix, write_table},
};
use crate::{Event, Manifest};

/// Where an event landed.
#[derive(Clone, Copy, Debug)]
pub(super) struct Placed {
    pub(super) number: u64,
    pub(super) log: u64,
    pub(super) seq: u64,
}

/// Where recently committed events are, so the refs of the next batches (mostly to
/// recent events) need no index lookup: two generations of at most [`RECENT_EVENTS`]
/// each, the older dropped when the newer fills. Only committed events.
#[derive(Debug, Default)]
pub(super) struct Recent {
    newer: FastMap<Cid, Placed>,
    older: FastMap<Cid, Placed>,
}

/// Events one generation of [`Recent`] holds at most.
const RECENT_EVENTS: usize = 1 << 17;

impl Recent {
    fn get(&self, cid: &Cid) -> Option<Placed> {
        self.newer.get(cid).or_else(|| self.older.get(cid)).copied()
    }

    /// Adds the events a batch committed.
    pub(super) fn extend(&mut self, placed: FastMap<Cid, Placed>) {
        if self.newer.len() + placed.len() > RECENT_EVENTS {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.extend(placed);
    }
}

/// An event handed to [`Writer::add`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Incoming<'a> {
    /// Decoded by the caller (its bytes were checked to be its encoding).
    Decoded(Cid, &'a Event),
    /// Bytes and what the caller says of them.
    Raw(NewEvent<'a>),
}

pub(super) struct Writer<'t> {
    recent: &'t Recent,
    pub(super) tables: WriteTables<'t>,
    meta: Table<'t, &'static str, u64>,
    children: Table<'t, u64, &'static [u8]>,
    pub(super) program_logs: Table<'t, (u64, u64), ()>,
    manifests: Table<'t, u64, &'static [u8]>,
    next_event: u64,
    next_log: u64,
    /// The number of the batch's first event.
    batch_first: u64,
    /// The first event number of the open segment, its bytes so far and the
    /// dictionary they built.
    segment_start: u64,
    segment: Vec<u8>,
    dictionary: Dictionary,
    /// Whether `segment` holds entries not yet in the table.
    segment_dirty: bool,
    /// Events of this batch by CID, and by place.
    batch: FastMap<Cid, Placed>,
    batch_at: FastMap<(u64, u64), Cid>,
    /// Stored events this batch found through the CID index.
    found: FastMap<Cid, Placed>,
    /// Index rows changed by the batch, written once at the end.
    log_chunks: FastMap<(u64, u64), LogChunk>,
    child_chunks: FastMap<u64, ChildChunk>,
    /// Log numbers looked up or given by this batch.
    log_numbers: FastMap<Cid, u64>,
    /// Logs this batch registered under their program.
    registered: FastSet<(u64, u64)>,
    /// The CID index entries of the batch's events: a new run (`digest_index.rs`).
    digests: Vec<(u64, u64)>,
    /// A buffer for one entry.
    entry: Vec<u8>,
}

impl<'t> Writer<'t> {
    pub(super) fn new(tx: &'t WriteTransaction, recent: &'t Recent) -> Result<Writer<'t>> {
        let tables = WriteTables::open_write(tx)?;
        let meta = write_table(tx, META)?;
        let next_event = meta_value(&meta, NEXT_EVENT_KEY)?;
        let next_log = meta_value(&meta, NEXT_LOG_KEY)?;
        // Reopen the last segment while it has room.
        let (segment_start, segment, dictionary) = match tables
            .segments
            .last()
            .map_err(db_error("reading a segment"))?
        {
            Some((start, bytes)) if bytes.value().len() < SEGMENT_TARGET => {
                let (start, bytes) = (start.value(), bytes.value().to_vec());
                let parsed = parse_segment(start, &bytes).ok_or_else(|| {
                    StoreError::Corrupt(format!("the segment of event number {start}"))
                })?;
                (start, bytes, parsed.dictionary)
            }
            _ => (next_event, Vec::new(), Dictionary::default()),
        };
        Ok(Writer {
            recent,
            tables,
            meta,
            children: write_table(tx, CHILDREN)?,
            program_logs: write_table(tx, PROGRAM_LOGS)?,
            manifests: write_table(tx, MANIFESTS)?,
            next_event,
            next_log,
            batch_first: next_event,
            segment_start,
            segment,
            dictionary,
            segment_dirty: false,
            batch: FastMap::default(),
            batch_at: FastMap::default(),
            found: FastMap::default(),
            log_chunks: FastMap::default(),
            child_chunks: FastMap::default(),
            log_numbers: FastMap::default(),
            registered: FastSet::default(),
            digests: Vec::new(),
            entry: Vec::with_capacity(512),
        })
    }

    /// A log's number, given one now if the log is new.
    pub(super) fn log_number(&mut self, log: Cid) -> Result<u64> {
        if let Some(&number) = self.log_numbers.get(&log) {
            return Ok(number);
        }
        if let Some(number) = self.tables.log_number(log)? {
            self.log_numbers.insert(log, number);
            return Ok(number);
        }
        let number = self.next_log;
        self.next_log += 1;
        self.tables
            .logs
            .insert(log.digest(), number)
            .map_err(db_error("writing a log number"))?;
        self.tables
            .log_ids
            .insert(number, log.digest())
            .map_err(db_error("writing a log id"))?;
        self.log_numbers.insert(log, number);
        Ok(number)
    }

    /// Stores a slice manifest (whose CID is `cid`) under its log's number, unless it
    /// is stored.
    pub(super) fn put_manifest(&mut self, cid: Cid, manifest: &Manifest) -> Result<()> {
        let log = self.log_number(cid)?;
        let stored = self
            .manifests
            .get(log)
            .map_err(db_error("reading a manifest"))?
            .is_some();
        if stored {
            return Ok(());
        }
        let parent = manifest.parent().expect("a slice manifest has a parent");
        let parent = match self.locate(parent)? {
            Some(placed) => EventRef::Number(placed.number),
            None => EventRef::Cid(parent),
        };
        self.entry.clear();
        manifests::put(&mut self.entry, manifest, parent);
        self.manifests
            .insert(log, &self.entry[..])
            .map_err(db_error("writing a manifest"))?;
        Ok(())
    }

    /// Where an event is: earlier in this batch, or stored. What the CID index finds
    /// joins the recent events when the batch commits (an old event named once, such
    /// as the `deploy` that started a long-lived block instance, is often named again).
    fn locate(&mut self, cid: Cid) -> Result<Option<Placed>> {
        if let Some(placed) = self
            .batch
            .get(&cid)
            .or_else(|| self.found.get(&cid))
            .copied()
            .or_else(|| self.recent.get(&cid))
        {
            return Ok(Some(placed));
        }
        // Events of this batch are all in `batch`, and their segment may not be written yet.
        let Some(number) = self.tables.find_below(cid, self.batch_first)? else {
            return Ok(None);
        };
        let located = self.tables.locate(number)?;
        let entry = located.entry();
        let placed = Placed {
            number,
            log: entry.log,
            seq: entry.seq,
        };
        self.found.insert(cid, placed);
        Ok(Some(placed))
    }

    /// Adds one event; `false` when it was already stored.
    pub(super) fn add(&mut self, program: u64, incoming: Incoming<'_>) -> Result<bool> {
        let (cid, log_id, seq, refs) = match incoming {
            Incoming::Decoded(cid, event) => (cid, event.log(), event.seq(), event.refs()),
            Incoming::Raw(event) => {
                // Bytes say nothing of their place: the CID index does.
                if let Some(placed) = self.locate(event.cid)? {
                    let stored_log = self.tables.log_id(placed.log)?;
                    if stored_log != event.log || placed.seq != event.seq {
                        return Err(StoreError::Misplaced {
                            cid: event.cid,
                            stored_log,
                            stored_seq: placed.seq,
                            log: event.log,
                            seq: event.seq,
                        });
                    }
                    return Ok(false);
                }
                (event.cid, event.log, event.seq, event.refs)
            }
        };
        let log = self.log_number(log_id)?;
        // A decoded event's CID fixes its place, so its place tells whether it is
        // stored; any other event there is a fork.
        let existing = match self.batch_at.get(&(log, seq)) {
            Some(cid) => Some(*cid),
            None => match self.chunk(log, seq / CHUNK)?.get(seq) {
                Some(number) => Some(self.tables.cid_of(number)?),
                None => None,
            },
        };
        match existing {
            Some(existing) if existing == cid => return Ok(false),
            Some(existing) => {
                return Err(StoreError::Fork {
                    log: log_id,
                    seq,
                    existing,
                    new: cid,
                });
            }
            None => {}
        }
        let number = self.next_event;
        let mut flags = 0;
        let mut numbered = Vec::with_capacity(refs.len());
        for &r in refs {
            let parent = self.locate(r)?.ok_or(StoreError::MissingRef {
                event: cid,
                missing: r,
            })?;
            numbered.push(EventRef::Number(parent.number));
            if parent.log == log && parent.seq.checked_add(1) == Some(seq) {
                flags |= FLAG_PREV;
            } else {
                self.add_child(parent.number, number)?;
            }
        }
        if self.registered.insert((program, log)) {
            self.program_logs
                .insert((program, log), ())
                .map_err(db_error("registering a log"))?;
        }
        self.digests.push((prefix(cid), number));
        self.chunk(log, seq / CHUNK)?.set(seq, number);
        let head = (flags, log, seq);
        match incoming {
            Incoming::Decoded(_, event) => {
                let at = match event.at() {
                    Some((deploy, index)) => {
                        let deploy = match self.locate(deploy)? {
                            Some(placed) => EventRef::Number(placed.number),
                            None => EventRef::Cid(deploy),
                        };
                        Some((deploy, index))
                    }
                    None => None,
                };
                let compact = Compact {
                    cid,
                    op: event.op().clone(),
                    at,
                    refs: numbered,
                    payload: event.payload(),
                    creator: *event.creator(),
                    sig: *event.signature(),
                };
                self.push_entry(number, |out, dictionary| {
                    entry::put_compact(out, dictionary, number, head, &compact);
                })?;
            }
            Incoming::Raw(event) => {
                let cut = find_digest(event.bytes, log_id.digest());
                let body = match cut {
                    Some(at) => [&event.bytes[..at], &event.bytes[at + 32..]].concat(),
                    None => event.bytes.to_vec(),
                };
                self.push_entry(number, |out, _| entry::put_raw(out, head, cut, &body))?;
            }
        }
        self.next_event += 1;
        self.batch.insert(cid, Placed { number, log, seq });
        self.batch_at.insert((log, seq), cid);
        Ok(true)
    }

    /// Appends the entry of event `number` to the open segment, closing the segment
    /// first if the entry does not fit (a new segment starts a new dictionary, so the
    /// entry is written again for it).
    fn push_entry(
        &mut self,
        number: u64,
        write: impl Fn(&mut Vec<u8>, &mut Dictionary),
    ) -> Result<()> {
        let mut entry = std::mem::take(&mut self.entry);
        entry.clear();
        write(&mut entry, &mut self.dictionary);
        if !self.segment.is_empty() && self.segment.len() + entry.len() > SEGMENT_TARGET {
            self.flush_segment(true)?;
            entry.clear();
            write(&mut entry, &mut self.dictionary);
        }
        if self.segment.is_empty() {
            self.segment_start = number;
        }
        self.segment.extend_from_slice(&entry);
        self.entry = entry;
        self.segment_dirty = true;
        if self.segment.len() >= SEGMENT_TARGET {
            self.flush_segment(true)?;
        }
        Ok(())
    }

    /// The index row of a log's seqs `chunk_no * CHUNK ..`, as this batch leaves it.
    fn chunk(&mut self, log: u64, chunk_no: u64) -> Result<&mut LogChunk> {
        Ok(match self.log_chunks.entry((log, chunk_no)) {
            hash_map::Entry::Occupied(chunk) => chunk.into_mut(),
            hash_map::Entry::Vacant(slot) => {
                let chunk = self.tables.log_chunk(log, chunk_no)?.unwrap_or_default();
                slot.insert(chunk)
            }
        })
    }

    /// Records that event `child` refers to event `parent`.
    fn add_child(&mut self, parent: u64, child: u64) -> Result<()> {
        let chunk_no = parent / CHUNK;
        let chunk = match self.child_chunks.entry(chunk_no) {
            hash_map::Entry::Occupied(chunk) => chunk.into_mut(),
            hash_map::Entry::Vacant(slot) => {
                let row = self
                    .children
                    .get(chunk_no)
                    .map_err(db_error("reading children"))?;
                let chunk = match row {
                    Some(row) => ChildChunk::decode(chunk_no, row.value()).ok_or_else(|| {
                        StoreError::Corrupt(format!("children of event number {parent}"))
                    })?,
                    None => ChildChunk::default(),
                };
                slot.insert(chunk)
            }
        };
        chunk.pairs.push((parent, child));
        Ok(())
    }

    /// Writes the open segment to its table; `close` starts a new one.
    fn flush_segment(&mut self, close: bool) -> Result<()> {
        if self.segment_dirty {
            self.tables
                .segments
                .insert(self.segment_start, &self.segment[..])
                .map_err(db_error("writing a segment"))?;
            self.segment_dirty = false;
        }
        if close {
            self.segment.clear();
            self.dictionary = Dictionary::default();
        }
        Ok(())
    }

    /// Writes what is pending: the open segment, the index rows and the counters.
    /// Returns where the batch's events landed, and the stored events it found.
    pub(super) fn finish(mut self) -> Result<FastMap<Cid, Placed>> {
        self.flush_segment(false)?;
        digest_index::add_run(
            &mut self.tables.digest_runs,
            &mut self.tables.digest_rows,
            std::mem::take(&mut self.digests),
        )?;
        let mut row = Vec::new();
        for ((log, chunk_no), chunk) in &self.log_chunks {
            row.clear();
            chunk.encode(&mut row);
            self.tables
                .log_events
                .insert((*log, *chunk_no), &row[..])
                .map_err(db_error("writing a log"))?;
        }
        for (chunk_no, chunk) in &mut self.child_chunks {
            row.clear();
            chunk.encode(*chunk_no, &mut row);
            self.children
                .insert(*chunk_no, &row[..])
                .map_err(db_error("writing children"))?;
        }
        self.meta
            .insert(NEXT_EVENT_KEY, self.next_event)
            .map_err(db_error("writing meta"))?;
        self.meta
            .insert(NEXT_LOG_KEY, self.next_log)
            .map_err(db_error("writing meta"))?;
        self.batch.extend(self.found);
        Ok(self.batch)
    }
}

/// Checks that `bytes` are `event`'s encoding and hash to `cid`.
pub(super) fn check_decoded(
    cid: Cid,
    event: &Event,
    bytes: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<()> {
    check_bytes("event", cid, bytes)?;
    buffer.clear();
    event.encode_into(buffer);
    if buffer[..] != *bytes {
        return Err(StoreError::NotItsEncoding { cid });
    }
    Ok(())
}

/// Where a log's digest occurs in an event's bytes, if it does.
fn find_digest(bytes: &[u8], digest: &[u8; 32]) -> Option<usize> {
    bytes.windows(32).position(|window| window == digest)
}
