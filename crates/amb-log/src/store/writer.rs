//! The write half of a batch: checks each event against what is stored (refs first,
//! no forks, no-ops for events stored already), packs it into the open segment and
//! updates the index rows, which are written once when the batch finishes.

use std::collections::hash_map;

use amb_bytecode::Cid;
use redb::{ReadableTable, Table, WriteTransaction};

use super::{
    CHILDREN, MANIFESTS, META, NEXT_EVENT_KEY, NEXT_LOG_KEY, NewEvent, PROGRAM_LOGS, Result,
    SEGMENT_TARGET, StoreError, db_error, digest_index,
    entry::{self, Compact, Dictionary, EventRef, FLAG_PREV},
    fast_hash::{FastMap, FastSet},
    manifests, meta_value,
    rows::{CHUNK, ChildChunk, LogChunk},
    tables::{WriteTables, prefix, write_table},
};
use crate::{Event, Manifest};

/// What the store keeps from one batch to the next (behind its write lock): what
/// recent commits wrote, and the collections a batch fills, kept to be reused.
#[derive(Debug, Default)]
pub(super) struct WriteState {
    recent: Recent,
    scratch: Scratch,
    /// Commits made without `fsync` since the last durable one, and when that was.
    deferred: Deferred,
}

/// Commits of received events made without `fsync` ([`crate::store::Commit::Deferred`]).
#[derive(Debug)]
pub(super) struct Deferred {
    /// How many since the last durable commit.
    count: u32,
    /// When the last durable commit was (or the store was opened).
    last_durable: std::time::Instant,
}

impl Default for Deferred {
    fn default() -> Deferred {
        Deferred {
            count: 0,
            last_durable: std::time::Instant::now(),
        }
    }
}

/// The most commits a store defers before it makes one durable.
pub const MAX_DEFERRED_COMMITS: u32 = 64;

/// The longest a deferred commit stays without a durable one after it, when the
/// store goes on writing (`Store::flush` bounds it when it does not).
pub const MAX_DEFERRED_AGE: std::time::Duration = std::time::Duration::from_millis(100);

impl WriteState {
    /// Whether the next commit asked to be deferred must be durable all the same.
    pub(super) fn must_be_durable(&self) -> bool {
        self.deferred.count >= MAX_DEFERRED_COMMITS
            || self.deferred.last_durable.elapsed() >= MAX_DEFERRED_AGE
    }

    /// Whether commits were deferred since the last durable one.
    pub(super) fn has_deferred(&self) -> bool {
        self.deferred.count > 0
    }

    /// Notes a commit made: durable, or deferred.
    pub(super) fn note_commit(&mut self, durable: bool) {
        if durable {
            self.deferred = Deferred::default();
        } else {
            self.deferred.count += 1;
        }
    }

    /// A writer for a batch in `tx`.
    pub(super) fn writer<'t>(&'t mut self, tx: &'t WriteTransaction) -> Result<Writer<'t>> {
        Writer::new(tx, &self.recent, &mut self.scratch)
    }

    /// Once the batch of the last [`WriteState::writer`] has committed: what it wrote
    /// and found joins the recent commits.
    pub(super) fn committed(&mut self) {
        let scratch = &mut self.scratch;
        self.recent.events.extend(scratch.batch.drain());
        self.recent.events.extend(scratch.found.drain());
        self.recent.logs.extend(scratch.log_numbers.drain());
        self.recent
            .registered
            .extend(scratch.registered.drain().map(|pair| (pair, ())));
        self.recent.counters = scratch.counters.take();
    }
}

/// What recently committed batches wrote, so the next batches (whose refs, logs and
/// programs are mostly recent ones) need no index lookup: event numbers, log numbers,
/// and the logs registered under their programs. Only what has committed.
#[derive(Debug)]
struct Recent {
    events: Generations<Cid, u64>,
    logs: Generations<Cid, u64>,
    registered: Generations<(u64, u64), ()>,
    /// `meta`'s counters as the last commit left them: while they are still there,
    /// they were checked against the tables (`Tables::check_counters`).
    counters: Option<(u64, u64)>,
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            events: Generations::new(RECENT_EVENTS),
            logs: Generations::new(RECENT_LOGS),
            registered: Generations::new(RECENT_LOGS),
            counters: None,
        }
    }
}

/// Events one generation of [`Recent`] holds at most (about 10 MB each). An event is
/// named again long after it was written: the `deploy` that started a long-lived
/// block instance, the heads of the logs nested in an ambient that moves or opens.
const RECENT_EVENTS: usize = 1 << 18;

/// Logs (and registrations) one generation of [`Recent`] holds at most.
const RECENT_LOGS: usize = 1 << 16;

/// A map of bounded size: two generations of at most `limit` entries each, the older
/// dropped when the newer fills.
#[derive(Debug)]
struct Generations<K, V> {
    newer: FastMap<K, V>,
    older: FastMap<K, V>,
    limit: usize,
}

impl<K: Eq + std::hash::Hash, V: Copy> Generations<K, V> {
    fn new(limit: usize) -> Generations<K, V> {
        Generations {
            newer: FastMap::default(),
            older: FastMap::default(),
            limit,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.newer.get(key).or_else(|| self.older.get(key)).copied()
    }

    fn extend(&mut self, entries: impl ExactSizeIterator<Item = (K, V)>) {
        if self.newer.len() + entries.len() > self.limit {
            // The older generation's room is reused: the maps keep their capacity.
            std::mem::swap(&mut self.newer, &mut self.older);
            self.newer.clear();
        }
        self.newer.extend(entries);
    }
}

/// The collections a batch fills (see [`Writer`]), emptied when a batch starts.
#[derive(Debug, Default)]
struct Scratch {
    batch: FastMap<Cid, u64>,
    batch_events: Vec<(Cid, u64, u64)>,
    found: FastMap<Cid, u64>,
    log_chunks: FastMap<(u64, u64), LogChunk>,
    child_chunks: FastMap<u64, ChildChunk>,
    log_numbers: FastMap<Cid, u64>,
    registered: FastSet<(u64, u64)>,
    digests: Vec<(u64, u64)>,
    refs: Vec<EventRef>,
    entry: Vec<u8>,
    row: Vec<u8>,
    /// The counters the batch wrote to `meta`.
    counters: Option<(u64, u64)>,
}

impl Scratch {
    fn clear(&mut self) {
        self.batch.clear();
        self.batch_events.clear();
        self.found.clear();
        self.log_chunks.clear();
        self.child_chunks.clear();
        self.log_numbers.clear();
        self.registered.clear();
        self.digests.clear();
        self.counters = None;
    }
}

/// An event handed to [`Writer::add`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Incoming<'a> {
    /// Decoded by the caller, with its CID (known to be its encoding's).
    Decoded(Cid, &'a Event),
    /// Bytes and what the caller says of them.
    Raw(NewEvent<'a>),
}

/// One batch being written in a write transaction. The collections it fills live in
/// [`WriteState`]'s scratch:
///
/// - `batch`, `batch_events`: the batch's event numbers by CID, and by number (from
///   the batch's first) their CIDs, log numbers and seqs;
/// - `found`: stored events the batch found through the CID index;
/// - `log_chunks`, `child_chunks`: index rows changed by the batch, written once at
///   the end;
/// - `log_numbers`: log numbers looked up or given by the batch;
/// - `registered`: logs the batch registered under their program;
/// - `digests`: the CID index entries of the batch's events (a new run,
///   `digest_index.rs`).
pub(super) struct Writer<'t> {
    recent: &'t Recent,
    scratch: &'t mut Scratch,
    tables: WriteTables<'t>,
    meta: Table<'t, &'static str, u64>,
    children: Table<'t, u64, &'static [u8]>,
    program_logs: Table<'t, (u64, u64), ()>,
    manifests: Table<'t, u64, &'static [u8]>,
    next_event: u64,
    next_log: u64,
    /// The number of the batch's first event, and of the first log it numbers.
    batch_first: u64,
    first_log: u64,
    /// The first event number of the open segment, its bytes so far and the
    /// dictionary they built.
    segment_start: u64,
    segment: Vec<u8>,
    dictionary: Dictionary,
    /// Whether `segment` holds entries not yet in the table.
    segment_dirty: bool,
    /// Whether an event may refer to events this store does not hold (a host's
    /// part of a program: its bare refs, kept as CIDs).
    pub(super) bare_refs: bool,
}

impl<'t> Writer<'t> {
    fn new(
        tx: &'t WriteTransaction,
        recent: &'t Recent,
        scratch: &'t mut Scratch,
    ) -> Result<Writer<'t>> {
        scratch.clear();
        let tables = WriteTables::open_write(tx)?;
        let meta = write_table(tx, META)?;
        let next_event = meta_value(&meta, NEXT_EVENT_KEY)?;
        let next_log = meta_value(&meta, NEXT_LOG_KEY)?;
        // Reopen the last segment while it has room. The counters are checked once
        // in a process, and again whenever another process could have written.
        let last = if recent.counters == Some((next_event, next_log)) {
            tables.last_segment(SEGMENT_TARGET)?
        } else {
            tables.check_counters(next_event, next_log)?
        };
        let (segment_start, segment, dictionary) = match last {
            Some((start, bytes, parsed)) if bytes.len() < SEGMENT_TARGET => {
                (start, bytes, parsed.dictionary)
            }
            _ => (next_event, Vec::new(), Dictionary::default()),
        };
        Ok(Writer {
            recent,
            scratch,
            tables,
            meta,
            children: write_table(tx, CHILDREN)?,
            program_logs: write_table(tx, PROGRAM_LOGS)?,
            manifests: write_table(tx, MANIFESTS)?,
            next_event,
            next_log,
            batch_first: next_event,
            first_log: next_log,
            segment_start,
            segment,
            dictionary,
            segment_dirty: false,
            bare_refs: false,
        })
    }

    /// A log's number, given one now if the log is new.
    pub(super) fn log_number(&mut self, log: Cid) -> Result<u64> {
        if let Some(&number) = self.scratch.log_numbers.get(&log) {
            return Ok(number);
        }
        let number = match self.recent.logs.get(&log) {
            Some(number) => number,
            None => match self.tables.log_number(log)? {
                Some(number) => number,
                None => self.new_log(log)?,
            },
        };
        self.scratch.log_numbers.insert(log, number);
        Ok(number)
    }

    /// Gives a new log its number.
    fn new_log(&mut self, log: Cid) -> Result<u64> {
        let number = self.next_log;
        self.next_log = number
            .checked_add(1)
            .ok_or_else(|| StoreError::corrupt("meta: `next_log` is at its maximum".into()))?;
        self.tables
            .logs
            .insert(log.digest(), number)
            .map_err(db_error("writing a log number"))?;
        self.tables
            .log_ids
            .insert(number, log.digest())
            .map_err(db_error("writing a log id"))?;
        Ok(number)
    }

    /// Registers log number `log` under program number `program` (idempotent).
    pub(super) fn register(&mut self, program: u64, log: u64) -> Result<()> {
        let pair = (program, log);
        if self.recent.registered.get(&pair).is_none() && self.scratch.registered.insert(pair) {
            self.program_logs
                .insert(pair, ())
                .map_err(db_error("registering a log"))?;
        }
        Ok(())
    }

    /// Stores a slice manifest (whose CID is `cid`, whose parent is `parent`) under
    /// its log's number, unless it is stored.
    pub(super) fn put_manifest(
        &mut self,
        cid: Cid,
        manifest: &Manifest,
        parent: Cid,
    ) -> Result<()> {
        let log = self.log_number(cid)?;
        // A log numbered by this batch has no manifest stored.
        let stored = log < self.first_log
            && self
                .manifests
                .get(log)
                .map_err(db_error("reading a manifest"))?
                .is_some();
        if stored {
            return Ok(());
        }
        let parent = match self.locate(parent)? {
            Some(number) => EventRef::Number(number),
            None => EventRef::Cid(parent),
        };
        let entry = &mut self.scratch.entry;
        entry.clear();
        manifests::put(entry, manifest, parent);
        self.manifests
            .insert(log, &entry[..])
            .map_err(db_error("writing a manifest"))?;
        Ok(())
    }

    /// Where an event is: earlier in this batch, or stored. What the CID index finds
    /// joins the recent events when the batch commits (an old event named once, such
    /// as the `deploy` that started a long-lived block instance, is often named again).
    fn locate(&mut self, cid: Cid) -> Result<Option<u64>> {
        if let Some(number) = self
            .scratch
            .batch
            .get(&cid)
            .or_else(|| self.scratch.found.get(&cid))
            .copied()
            .or_else(|| self.recent.events.get(&cid))
        {
            return Ok(Some(number));
        }
        // Events of this batch are all in `batch`, and their segment may not be written yet.
        let found = self.tables.find_below(cid, self.batch_first)?;
        if let Some(number) = found {
            self.scratch.found.insert(cid, number);
        }
        Ok(found)
    }

    /// The CID, log number and seq of event `number`, of this batch or stored.
    fn event_at(&self, number: u64) -> Result<(Cid, u64, u64)> {
        match number.checked_sub(self.batch_first) {
            Some(index) => usize::try_from(index)
                .ok()
                .and_then(|index| self.scratch.batch_events.get(index))
                .copied()
                .ok_or_else(|| {
                    StoreError::corrupt(format!(
                        "event number {number} is indexed but not written (`next_event` is {})",
                        self.batch_first
                    ))
                }),
            None => {
                let located = self.tables.locate(number)?;
                let entry = located.entry();
                Ok((self.tables.cid_of(number)?, entry.log, entry.seq))
            }
        }
    }

    /// Adds one event; `false` when it was already stored.
    pub(super) fn add(&mut self, program: u64, incoming: Incoming<'_>) -> Result<bool> {
        let (cid, log_id, seq, refs) = match incoming {
            Incoming::Decoded(cid, event) => (cid, event.log(), event.seq(), event.refs()),
            Incoming::Raw(event) => {
                // Bytes say nothing of their place: the CID index does.
                if let Some(number) = self.locate(event.cid)? {
                    let (_, stored_log, stored_seq) = self.event_at(number)?;
                    let stored_log = self.tables.log_id(stored_log)?;
                    if stored_log != event.log || stored_seq != event.seq {
                        return Err(StoreError::Misplaced {
                            cid: event.cid,
                            stored_log,
                            stored_seq,
                            log: event.log,
                            seq: event.seq,
                        });
                    }
                    let log = self.log_number(stored_log)?;
                    self.register(program, log)?;
                    return Ok(false);
                }
                (event.cid, event.log, event.seq, event.refs)
            }
        };
        let log = self.log_number(log_id)?;
        // Registered even when the event is stored already: a host's part of a
        // program (kept under its order's name) joins the program once the host
        // holds the program itself.
        self.register(program, log)?;
        // A decoded event's CID fixes its place, so its place tells whether it is
        // stored; any other event there is a fork.
        let existing = match self.chunk(log, seq / CHUNK)?.get(seq) {
            Some(number) => Some(self.event_at(number)?.0),
            None => None,
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
        let flags = self.number_refs(cid, (number, log, seq), refs)?;
        self.scratch.digests.push((prefix(cid), number));
        self.chunk(log, seq / CHUNK)?.set(seq, number);
        let head = (flags, log, seq);
        match incoming {
            Incoming::Decoded(_, event) => {
                let at = match event.at() {
                    Some((deploy, index)) => {
                        let deploy = match self.locate(deploy)? {
                            Some(found) => EventRef::Number(earlier(found, number)?),
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
                    // Lent by the scratch, and given back below.
                    refs: std::mem::take(&mut self.scratch.refs),
                    payload: event.payload(),
                    creator: *event.creator(),
                    sig: *event.signature(),
                };
                let pushed = self.push_entry(number, |out, dictionary| {
                    entry::put_compact(out, dictionary, number, head, &compact);
                });
                self.scratch.refs = compact.refs;
                pushed?;
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
        self.next_event = number
            .checked_add(1)
            .ok_or_else(|| StoreError::corrupt("meta: `next_event` is at its maximum".into()))?;
        self.scratch.batch.insert(cid, number);
        self.scratch.batch_events.push((cid, log, seq));
        Ok(true)
    }

    /// Numbers the refs of event `cid` (to be event `number` at `(log, seq)`) into the
    /// scratch `refs`, records it as a child of each but its predecessor in its log,
    /// and returns its entry flags ([`FLAG_PREV`] when it refers to that predecessor).
    fn number_refs(
        &mut self,
        cid: Cid,
        (number, log, seq): (u64, u64, u64),
        refs: &[Cid],
    ) -> Result<u8> {
        let previous = match seq.checked_sub(1) {
            Some(seq) => self.chunk(log, seq / CHUNK)?.get(seq),
            None => None,
        };
        let mut flags = 0;
        self.scratch.refs.clear();
        for &r in refs {
            let parent = match self.locate(r)? {
                Some(parent) => parent,
                None if self.bare_refs => {
                    self.scratch.refs.push(EventRef::Cid(r));
                    continue;
                }
                None => {
                    return Err(StoreError::MissingRef {
                        event: cid,
                        missing: r,
                    });
                }
            };
            let parent = earlier(parent, number)?;
            self.scratch.refs.push(EventRef::Number(parent));
            if Some(parent) == previous {
                flags |= FLAG_PREV;
            } else {
                self.add_child(parent, number)?;
            }
        }
        Ok(flags)
    }

    /// Appends the entry of event `number` to the open segment, closing the segment
    /// first if the entry does not fit (a new segment starts a new dictionary, so the
    /// entry is written again for it).
    fn push_entry(
        &mut self,
        number: u64,
        write: impl Fn(&mut Vec<u8>, &mut Dictionary),
    ) -> Result<()> {
        let mut entry = std::mem::take(&mut self.scratch.entry);
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
        self.scratch.entry = entry;
        self.segment_dirty = true;
        if self.segment.len() >= SEGMENT_TARGET {
            self.flush_segment(true)?;
        }
        Ok(())
    }

    /// The index row of a log's seqs `chunk_no * CHUNK ..`, as this batch leaves it.
    fn chunk(&mut self, log: u64, chunk_no: u64) -> Result<&mut LogChunk> {
        Ok(match self.scratch.log_chunks.entry((log, chunk_no)) {
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
        let chunk = match self.scratch.child_chunks.entry(chunk_no) {
            hash_map::Entry::Occupied(chunk) => chunk.into_mut(),
            hash_map::Entry::Vacant(slot) => {
                let row = self
                    .children
                    .get(chunk_no)
                    .map_err(db_error("reading children"))?;
                let chunk = match row {
                    Some(row) => ChildChunk::decode(chunk_no, row.value()).ok_or_else(|| {
                        StoreError::corrupt(format!("children of event number {parent}"))
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
    /// Once the transaction commits, [`WriteState::committed`] must follow.
    pub(super) fn finish(mut self) -> Result<()> {
        self.flush_segment(false)?;
        let scratch = &mut *self.scratch;
        digest_index::add_run(
            &mut self.tables.digest_runs,
            &mut self.tables.digest_rows,
            &mut scratch.digests,
        )?;
        let row = &mut scratch.row;
        for ((log, chunk_no), chunk) in &scratch.log_chunks {
            row.clear();
            chunk.encode(row);
            self.tables
                .log_events
                .insert((*log, *chunk_no), &row[..])
                .map_err(db_error("writing a log"))?;
        }
        for (chunk_no, chunk) in &mut scratch.child_chunks {
            row.clear();
            chunk.encode(*chunk_no, row);
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
        scratch.counters = Some((self.next_event, self.next_log));
        Ok(())
    }
}

/// `found`, the number of an event that event `number` names, which must be earlier
/// (a damaged index or `next_event` could say otherwise).
fn earlier(found: u64, number: u64) -> Result<u64> {
    if found < number {
        Ok(found)
    } else {
        Err(StoreError::corrupt(format!(
            "event number {found} is found for a ref of event number {number}, which is not later"
        )))
    }
}

/// Where a log's digest occurs in an event's bytes, if it does.
fn find_digest(bytes: &[u8], digest: &[u8; 32]) -> Option<usize> {
    bytes.windows(32).position(|window| window == digest)
}
