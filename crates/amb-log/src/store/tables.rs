//! Reading the store's tables, from a read or a write transaction: log numbers and
//! ids, segments (parsed once each and kept while the tables are open), events by
//! number, by CID and by `(log, seq)`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use amb_bytecode::Cid;
use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction,
};

use super::{
    DIGEST_ROWS, DIGEST_RUNS, LOG_EVENTS, LOG_IDS, LOGS, ReadEvent, Result, SEGMENTS, StoreError,
    StoredEvent, db_error, digest_index,
    entry::{Body, Entry, EventRef, Parsed, parse_segment},
    rows::{CHUNK, LogChunk},
};
use crate::Event;

/// Parsed segments kept at most (about 30 events each).
const CACHED_SEGMENTS: usize = 1024;

/// Parsed segments by first event number. Readers share one (a store's): a segment's
/// entries never change, and a segment that grew is parsed again when a reader asks
/// for an entry past what was parsed (readers ask only for events their snapshot
/// holds). A write transaction has its own, since what it writes may be rolled back.
#[derive(Clone, Debug, Default)]
pub(super) struct Segments(Arc<Mutex<BTreeMap<u64, Arc<Vec<Entry>>>>>);

impl Segments {
    fn get(&self, number: u64) -> Option<(u64, Arc<Vec<Entry>>)> {
        let segments = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        segments
            .range(..=number)
            .next_back()
            .filter(|(start, entries)| number - **start < entries.len() as u64)
            .map(|(start, entries)| (*start, Arc::clone(entries)))
    }

    fn insert(&self, start: u64, entries: Arc<Vec<Entry>>) {
        let mut segments = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if segments.len() >= CACHED_SEGMENTS {
            segments.clear();
        }
        segments.insert(start, entries);
    }
}

/// The tables every event lookup needs.
pub(super) struct Tables<Logs, Ids, Seg, Runs, Evs> {
    pub(super) logs: Logs,
    pub(super) log_ids: Ids,
    pub(super) segments: Seg,
    /// The CID index (`digest_index.rs`): its runs, and its rows (of the same type
    /// as `log_events`).
    pub(super) digest_runs: Runs,
    pub(super) digest_rows: Evs,
    pub(super) log_events: Evs,
    parsed: Segments,
    log_ids_read: Mutex<HashMap<u64, Cid>>,
}

pub(super) type ReadTables = Tables<
    ReadOnlyTable<[u8; 32], u64>,
    ReadOnlyTable<u64, [u8; 32]>,
    ReadOnlyTable<u64, &'static [u8]>,
    ReadOnlyTable<u64, u64>,
    ReadOnlyTable<(u64, u64), &'static [u8]>,
>;

pub(super) type WriteTables<'t> = Tables<
    Table<'t, [u8; 32], u64>,
    Table<'t, u64, [u8; 32]>,
    Table<'t, u64, &'static [u8]>,
    Table<'t, u64, u64>,
    Table<'t, (u64, u64), &'static [u8]>,
>;

pub(super) fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<ReadOnlyTable<K, V>> {
    read.open_table(table).map_err(db_error("opening a table"))
}

pub(super) fn write_table<'t, K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &'t WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<Table<'t, K, V>> {
    tx.open_table(table).map_err(db_error("opening a table"))
}

/// The tables, each opened by `$open` (`read_table` or `write_table`) from `$tx`.
macro_rules! open_tables {
    ($open:ident, $tx:expr, $parsed:expr) => {
        Tables {
            logs: $open($tx, LOGS)?,
            log_ids: $open($tx, LOG_IDS)?,
            segments: $open($tx, SEGMENTS)?,
            digest_runs: $open($tx, DIGEST_RUNS)?,
            digest_rows: $open($tx, DIGEST_ROWS)?,
            log_events: $open($tx, LOG_EVENTS)?,
            parsed: $parsed,
            log_ids_read: Mutex::default(),
        }
    };
}

impl ReadTables {
    /// The tables of a read transaction; `parsed`: the store's parsed segments.
    pub(super) fn open_read(read: &ReadTransaction, parsed: &Segments) -> Result<ReadTables> {
        Ok(open_tables!(read_table, read, parsed.clone()))
    }
}

impl<'t> WriteTables<'t> {
    /// The tables of a write transaction, with segments parsed for it alone.
    pub(super) fn open_write(tx: &'t WriteTransaction) -> Result<WriteTables<'t>> {
        Ok(open_tables!(write_table, tx, Segments::default()))
    }
}

/// An event located in the store: its segment and place there.
pub(super) struct Located {
    segment: Arc<Vec<Entry>>,
    index: usize,
}

impl Located {
    pub(super) fn entry(&self) -> &Entry {
        &self.segment[self.index]
    }
}

/// An event read back: its CID, place, bytes, and fields when it is compact.
pub(super) struct Read {
    pub(super) cid: Cid,
    pub(super) log: u64,
    pub(super) seq: u64,
    pub(super) bytes: Vec<u8>,
    pub(super) event: Option<Event>,
}

impl<Logs, Ids, Seg, Runs, Evs> Tables<Logs, Ids, Seg, Runs, Evs>
where
    Logs: ReadableTable<[u8; 32], u64>,
    Ids: ReadableTable<u64, [u8; 32]>,
    Seg: ReadableTable<u64, &'static [u8]>,
    Runs: ReadableTable<u64, u64>,
    Evs: ReadableTable<(u64, u64), &'static [u8]>,
{
    /// A log's number, if the log is known.
    pub(super) fn log_number(&self, log: Cid) -> Result<Option<u64>> {
        Ok(self
            .logs
            .get(log.digest())
            .map_err(db_error("reading a log number"))?
            .map(|v| v.value()))
    }

    /// A log's id from its number.
    pub(super) fn log_id(&self, number: u64) -> Result<Cid> {
        let read = || {
            self.log_ids_read
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(cid) = read().get(&number) {
            return Ok(*cid);
        }
        let digest = self
            .log_ids
            .get(number)
            .map_err(db_error("reading a log id"))?
            .ok_or_else(|| StoreError::corrupt(format!("log number {number} has no id")))?;
        let cid = Cid::from_digest(digest.value());
        // The two tables must agree: a damaged id would name another log.
        if self.log_number(cid)? != Some(number) {
            return Err(StoreError::corrupt(format!(
                "log number {number} has the id {cid}, whose number is another"
            )));
        }
        read().insert(number, cid);
        Ok(cid)
    }

    /// The last segment, parsed (its first event number, bytes and entries), after
    /// checking the counters of `meta` against the tables: `next_event` must follow
    /// the last segment's last entry, `next_log` the last log number. A write that
    /// trusted a damaged counter would write over stored events.
    pub(super) fn check_counters(
        &self,
        next_event: u64,
        next_log: u64,
    ) -> Result<Option<(u64, Vec<u8>, Parsed)>> {
        let last = self.last_segment(usize::MAX)?;
        let events = match &last {
            Some((start, _, parsed)) => start.checked_add(parsed.entries.len() as u64),
            None => Some(0),
        };
        let logs = match self.log_ids.last().map_err(db_error("reading a log id"))? {
            Some((number, _)) => number.value().checked_add(1),
            None => Some(0),
        };
        if events != Some(next_event) || logs != Some(next_log) {
            let show = |n: Option<u64>| n.map_or("too many".into(), |n| n.to_string());
            return Err(StoreError::corrupt(format!(
                "meta counts {next_event} events and {next_log} logs; the tables hold {} and {}",
                show(events),
                show(logs)
            )));
        }
        Ok(last)
    }

    /// The last segment (its first event number and bytes), parsed if it is shorter
    /// than `parse_below` bytes (else with no bytes or entries).
    pub(super) fn last_segment(
        &self,
        parse_below: usize,
    ) -> Result<Option<(u64, Vec<u8>, Parsed)>> {
        let Some((start, bytes)) = self
            .segments
            .last()
            .map_err(db_error("reading a segment"))?
        else {
            return Ok(None);
        };
        let (start, bytes) = (start.value(), bytes.value());
        if bytes.len() >= parse_below {
            return Ok(Some((start, Vec::new(), Parsed::default())));
        }
        let parsed = parse_segment(start, bytes)
            .ok_or_else(|| StoreError::corrupt(format!("the segment of event number {start}")))?;
        Ok(Some((start, bytes.to_vec(), parsed)))
    }

    /// The event with a given number.
    pub(super) fn locate(&self, number: u64) -> Result<Located> {
        let (start, segment) = match self.parsed.get(number) {
            Some(found) => found,
            None => self.load_segment(number)?,
        };
        Ok(Located {
            index: (number - start) as usize,
            segment,
        })
    }

    /// Reads and parses the segment that holds event `number`, and keeps it.
    fn load_segment(&self, number: u64) -> Result<(u64, Arc<Vec<Entry>>)> {
        let corrupt = |what: &str| StoreError::corrupt(format!("event number {number}: {what}"));
        let (start, segment) = self
            .segments
            .range(..=number)
            .map_err(db_error("reading a segment"))?
            .next_back()
            .ok_or_else(|| corrupt("no segment holds it"))?
            .map_err(db_error("reading a segment"))?;
        let start = start.value();
        let entries = parse_segment(start, segment.value())
            .ok_or_else(|| corrupt("its segment is not well formed"))?
            .entries;
        if number - start >= entries.len() as u64 {
            return Err(corrupt("no segment holds it"));
        }
        let entries = Arc::new(entries);
        self.parsed.insert(start, Arc::clone(&entries));
        Ok((start, entries))
    }

    /// The CID of event `number` (a compact entry keeps it; a raw one is hashed).
    pub(super) fn cid_of(&self, number: u64) -> Result<Cid> {
        let located = self.locate(number)?;
        let entry = located.entry();
        match &entry.body {
            Body::Compact(compact) => Ok(compact.cid),
            Body::Raw { cut, body } => Ok(Cid::of(&Entry::raw_bytes(
                *cut,
                body,
                &self.log_id(entry.log)?,
            ))),
        }
    }

    /// Reads event `number`: rebuilds its bytes and checks them against its CID.
    pub(super) fn read(&self, number: u64) -> Result<Read> {
        let located = self.locate(number)?;
        let entry = located.entry();
        let log = self.log_id(entry.log)?;
        let (cid, bytes, event) = match &entry.body {
            Body::Raw { cut, body } => {
                let bytes = Entry::raw_bytes(*cut, body, &log);
                (Cid::of(&bytes), bytes, None)
            }
            Body::Compact(compact) => {
                let event = compact.event(log, entry.seq, |r| match r {
                    EventRef::Number(n) => self.cid_of(n),
                    EventRef::Cid(cid) => Ok(cid),
                })?;
                let bytes = event.encode();
                let actual = Cid::of(&bytes);
                if actual != compact.cid {
                    return Err(StoreError::corrupt(format!(
                        "event number {number} is stored as {} but its bytes hash to {actual}",
                        compact.cid
                    )));
                }
                (actual, bytes, Some(event))
            }
        };
        Ok(Read {
            cid,
            log: entry.log,
            seq: entry.seq,
            bytes,
            event,
        })
    }

    /// Event `number` with its fields, as the public API returns it.
    pub(super) fn read_event(&self, number: u64) -> Result<ReadEvent> {
        let read = self.read(number)?;
        Ok(ReadEvent {
            stored: StoredEvent {
                cid: read.cid,
                log: self.log_id(read.log)?,
                seq: read.seq,
                bytes: read.bytes,
            },
            event: read.event,
        })
    }

    /// Event `number` as the public API returns it.
    pub(super) fn stored_event(&self, number: u64) -> Result<StoredEvent> {
        let read = self.read(number)?;
        Ok(StoredEvent {
            cid: read.cid,
            log: self.log_id(read.log)?,
            seq: read.seq,
            bytes: read.bytes,
        })
    }

    /// The number of the event with a given CID among the events numbered below
    /// `limit`: each candidate of the prefix index is checked against its CID.
    pub(super) fn find_below(&self, cid: Cid, limit: u64) -> Result<Option<u64>> {
        let wanted = prefix(cid);
        for number in digest_index::candidates(&self.digest_runs, &self.digest_rows, wanted)? {
            if number >= limit {
                continue;
            }
            let found = self.cid_of(number)?;
            if found == cid {
                return Ok(Some(number));
            }
            // Another CID with the same prefix is a collision; another prefix is damage
            // (an entry naming the wrong event, which would hide the right one).
            if prefix(found) != wanted {
                return Err(StoreError::corrupt(format!(
                    "the event index names event number {number} for the prefix of {cid}"
                )));
            }
        }
        Ok(None)
    }

    /// The index row of a log's seqs `chunk * CHUNK ..`.
    pub(super) fn log_chunk(&self, log: u64, chunk: u64) -> Result<Option<LogChunk>> {
        match self
            .log_events
            .get((log, chunk))
            .map_err(db_error("reading a log"))?
        {
            Some(row) => LogChunk::decode(row.value())
                .map(Some)
                .ok_or_else(|| StoreError::corrupt(format!("log number {log}: bad index row"))),
            None => Ok(None),
        }
    }

    /// The number of the event at `(log, seq)`.
    pub(super) fn at(&self, log: u64, seq: u64) -> Result<Option<u64>> {
        Ok(self
            .log_chunk(log, seq / CHUNK)?
            .and_then(|chunk| chunk.get(seq)))
    }
}

/// The first 8 bytes of a digest, the key of the CID index.
pub(super) fn prefix(cid: Cid) -> u64 {
    let digest = cid.digest();
    u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
}
