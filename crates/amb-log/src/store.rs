//! The embedded store: blocks, events and their indexes in one redb file.
//!
//! Events are opaque bytes here: the caller hands each one over with the metadata the
//! indexes need ([`NewEvent`]: CID, log, seq, refs). What the store guarantees:
//!
//! - **Content addressing.** A block or event is stored under the CID its bytes hash to;
//!   bytes that do not hash to the CID given are refused.
//! - **Immutability.** Nothing stored is ever changed or deleted. Writing a block or an
//!   event that is already stored (same CID) is a no-op.
//! - **No forks.** A different event at a `(log, seq)` that is taken is refused
//!   ([`StoreError::Fork`]) and nothing of its batch is written.
//! - **Closed under refs.** An event is written only after every event it refers to
//!   (stored before, or earlier in the same batch), so the `children` index is complete.
//! - **Atomic, durable batches.** [`Store::write_batch`] writes all its events in one
//!   transaction and returns once it has committed durably (`spec/events.md` §8).
//!
//! # Layout
//!
//! The plain layout (one row per event keyed by its 32-byte digest, index rows keyed by
//! digests and `(log, seq)`) took about 680 bytes on disk per 250-byte event: a redb
//! leaf split leaves pages half full, and every row costs its keys. So rows are few
//! and small, and event bytes go in page-sized values:
//!
//! | table | key → value | what |
//! |---|---|---|
//! | `meta` | text → u64 | `format` (version), `next_event`, `next_log` |
//! | `blocks` | digest `[u8; 32]` → bytes | bytecode blocks, manifests, value blocks |
//! | `logs` | log digest → log number | every log id gets a compact u64, in order of first sight |
//! | `log_ids` | log number → log digest | the way back |
//! | `segments` | first event number → entries | event bytes, packed (below) |
//! | `event_digests` | (first 8 digest bytes, event number) → () | CID → event |
//! | `log_events` | (log number, seq / 64) → row | the event numbers of 64 seqs of a log |
//! | `children` | event number / 64 → row | who refers to each of 64 events |
//! | `program_logs` | (program's log number, log number) → () | the logs of a program |
//!
//! Every event gets the next **event number**, in write order. A **segment** holds the
//! entries of consecutive event numbers, up to [`SEGMENT_TARGET`] bytes (one page);
//! the last segment is extended by later batches until full, keeping its bytes. An
//! entry is `flags u8, log number, seq, len, [cut], body` (LEB128 varints); when the
//! event bytes contain the 32-byte digest of their own log, the body omits it and
//! `cut` says where it goes back. Event CIDs are not stored: they are the BLAKE3 of
//! the rebuilt bytes, which also checks them on every read.
//!
//! `event_digests` keys only 8 bytes of the digest: a lookup rebuilds each candidate
//! and compares its CID with the one asked for, so a collision of prefixes costs a
//! second read, never a wrong answer.
//!
//! A `log_events` row is a 64-bit mask of the seqs present and their event numbers as
//! varint differences; a `children` row lists `(parent offset, child - parent)` pairs.
//! A batch rewrites each row it touches once. The head of a log is the highest seq
//! of its last row.
//!
//! The ref from an event to its predecessor in its own log (`(log, seq - 1)`, which
//! every event but the first has, `spec/events.md` §4) is not in `children`: the
//! entry's `PREV` flag records it, and [`Store::children`] adds the successor when its
//! flag is set.
//!
//! Measured (`tests/store.rs`, `bytes_per_event`): 10^6 synthetic events of 250 bytes
//! with 2 refs, in batches of 10^4, take 321 bytes each on disk: 245 in segments, 23
//! in `event_digests`, 4 each in `log_events` and `children`, the rest pages freed
//! by copy-on-write that the file keeps for reuse.

use std::{
    collections::HashMap,
    fmt,
    fs::OpenOptions,
    path::{Path, PathBuf},
};

use amb_bytecode::Cid;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, TableError,
    TableHandle, WriteTransaction,
};

/// The store's format version, kept in `meta` under `format`.
pub const STORE_FORMAT: u64 = 1;

/// Largest block or event the store accepts, in bytes (the block and event formats
/// have smaller limits of their own).
pub const MAX_STORED_BYTES: usize = 16 << 20;

/// Segments are closed once they hold this many bytes, so a segment fills one 4 KiB
/// page (an event larger than this gets a segment of its own).
pub const SEGMENT_TARGET: usize = 4000;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("blocks");
const LOGS: TableDefinition<[u8; 32], u64> = TableDefinition::new("logs");
const LOG_IDS: TableDefinition<u64, [u8; 32]> = TableDefinition::new("log_ids");
const SEGMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("segments");
const EVENT_DIGESTS: TableDefinition<(u64, u64), ()> = TableDefinition::new("event_digests");
const LOG_EVENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log_events");
const CHILDREN: TableDefinition<u64, &[u8]> = TableDefinition::new("children");
const PROGRAM_LOGS: TableDefinition<(u64, u64), ()> = TableDefinition::new("program_logs");

const FORMAT_KEY: &str = "format";
const NEXT_EVENT_KEY: &str = "next_event";
const NEXT_LOG_KEY: &str = "next_log";

/// Index rows of `log_events` and `children` cover this many seqs or events.
const CHUNK: u64 = 64;

/// Entry flag: the body lacks the log's digest, which goes back at `cut`.
const FLAG_CUT: u8 = 1;
/// Entry flag: the event refers to its predecessor in its log.
const FLAG_PREV: u8 = 2;

/// An event to write: its bytes and what the indexes need to know of them.
#[derive(Clone, Copy, Debug)]
pub struct NewEvent<'a> {
    /// The CID of `bytes`.
    pub cid: Cid,
    /// The log it belongs to (the log's manifest CID).
    pub log: Cid,
    /// Its position in the log.
    pub seq: u64,
    /// The events it refers to.
    pub refs: &'a [Cid],
    /// Its encoding.
    pub bytes: &'a [u8],
}

/// An event read back from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The CID of `bytes`.
    pub cid: Cid,
    /// The log it belongs to.
    pub log: Cid,
    /// Its position in the log.
    pub seq: u64,
    /// Its encoding, exactly as written.
    pub bytes: Vec<u8>,
}

/// What a [`Store::write_batch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Events newly stored.
    pub new: usize,
    /// Events that were already stored (no-ops).
    pub existing: usize,
}

/// Why the store refused an operation or could not do it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`Store::open`] found no file.
    #[error("no store at {}", path.display())]
    NotFound {
        /// Where it looked.
        path: PathBuf,
    },
    /// [`Store::create`] found a file already there.
    #[error("{} already exists; not creating a store over it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Another process has the store open.
    #[error("the store {} is in use by another process", path.display())]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The file is a redb database, but not an amb store, or not a database at all.
    #[error("{} is not an amb store: {reason}", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The store was written by a version of amb with another format.
    #[error(
        "the store {} has format version {found}; this amb reads version {supported}",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u64,
        /// The version this code reads.
        supported: u64,
    },
    /// The database failed (I/O, a corrupt file).
    #[error("store: {context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// redb's error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The store's own records are inconsistent.
    #[error("the store is corrupt: {0}")]
    Corrupt(String),
    /// Bytes handed over under a CID they do not hash to.
    #[error("bytes given as {cid} hash to {actual}")]
    CidMismatch {
        /// The CID given.
        cid: Cid,
        /// The CID of the bytes.
        actual: Cid,
    },
    /// A block or event above [`MAX_STORED_BYTES`].
    #[error("{what} {cid} is {len} bytes; the store takes at most {max}")]
    TooLarge {
        /// `block` or `event`.
        what: &'static str,
        /// Its CID.
        cid: Cid,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A different event at a `(log, seq)` that is taken. Nothing of the batch was written.
    #[error("fork in log {log} at seq {seq}: {existing} is stored there, {new} refused")]
    Fork {
        /// The log.
        log: Cid,
        /// The position.
        seq: u64,
        /// The event stored there.
        existing: Cid,
        /// The event refused.
        new: Cid,
    },
    /// An event refers to one that is neither stored nor earlier in its batch.
    #[error("event {event} refers to {missing}, which is not stored (write it first)")]
    MissingRef {
        /// The event refused.
        event: Cid,
        /// The event it refers to.
        missing: Cid,
    },
    /// An event already stored, given again with another log or seq.
    #[error(
        "event {cid} is stored at log {stored_log} seq {stored_seq}, \
         but was given as log {log} seq {seq}"
    )]
    Misplaced {
        /// The event.
        cid: Cid,
        /// Its log as stored.
        stored_log: Cid,
        /// Its seq as stored.
        stored_seq: u64,
        /// The log given.
        log: Cid,
        /// The seq given.
        seq: u64,
    },
}

fn db_error<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Database {
        context,
        source: Box::new(e.into()),
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The store: one redb file. Many readers and one writer at a time; `&self` methods
/// are safe to call from several threads.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Where recently committed events are, so the refs of the next batches (mostly
    /// to recent events) need no index lookup. Bounded; only committed events.
    recent: std::sync::Mutex<HashMap<Cid, Placed>>,
}

/// Events the recent-events cache holds at most.
const RECENT_EVENTS: usize = 1 << 17;

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Creates a new, empty store; refuses if a file exists at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => StoreError::Exists { path: path.into() },
                _ => StoreError::Database {
                    context: "creating the file",
                    source: Box::new(redb::Error::Io(e)),
                },
            })?;
        let created = Database::builder()
            .create_file(file)
            .map_err(|e| open_error(path, e))
            .and_then(|db| Store::init(db, path));
        if created.is_err() {
            // The file is new and ours: leave nothing half made.
            let _ = std::fs::remove_file(path);
        }
        created
    }

    /// Opens an existing store.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::NotFound { path: path.into() });
        }
        let db = Database::open(path).map_err(|e| open_error(path, e))?;
        Store::init(db, path)
    }

    /// Opens the store at `path`, creating it if there is no file.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        match Store::create(path) {
            Err(StoreError::Exists { .. }) => Store::open(path),
            other => other,
        }
    }

    /// Checks the format of an opened database, writing it (and every table) into a new one.
    fn init(db: Database, path: &Path) -> Result<Store> {
        let not_a_store = |reason: String| StoreError::NotAStore {
            path: path.into(),
            reason,
        };
        let read = db.begin_read().map_err(db_error("reading the format"))?;
        let format = match read.open_table(META) {
            Ok(meta) => Some(
                meta.get(FORMAT_KEY)
                    .map_err(db_error("reading the format"))?
                    .map(|v| v.value())
                    .ok_or_else(|| not_a_store("no format version".into()))?,
            ),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e @ TableError::TableTypeMismatch { .. }) => {
                return Err(not_a_store(e.to_string()));
            }
            Err(e) => return Err(db_error("reading the format")(e)),
        };
        drop(read);
        match format {
            Some(STORE_FORMAT) => {}
            Some(found) => {
                return Err(StoreError::Version {
                    path: path.into(),
                    found,
                    supported: STORE_FORMAT,
                });
            }
            None => {
                // A new database, or a redb file of someone else's.
                let read = db.begin_read().map_err(db_error("reading the tables"))?;
                let tables = read.list_tables().map_err(db_error("reading the tables"))?;
                if let Some(table) = tables.into_iter().next() {
                    return Err(not_a_store(format!("it has a table `{}`", table.name())));
                }
                drop(read);
                let tx = db.begin_write().map_err(db_error("creating the tables"))?;
                {
                    let mut meta = tx.open_table(META).map_err(db_error("creating meta"))?;
                    for (key, value) in [
                        (FORMAT_KEY, STORE_FORMAT),
                        (NEXT_EVENT_KEY, 0),
                        (NEXT_LOG_KEY, 0),
                    ] {
                        meta.insert(key, value).map_err(db_error("creating meta"))?;
                    }
                    drop(WriteTables::open_write(&tx)?);
                    write_table(&tx, BLOCKS)?;
                    write_table(&tx, CHILDREN)?;
                    write_table(&tx, PROGRAM_LOGS)?;
                }
                tx.commit().map_err(db_error("creating the tables"))?;
            }
        }
        Ok(Store {
            recent: std::sync::Mutex::default(),
            db,
            path: path.into(),
        })
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the store occupies on disk: the file's allocated blocks (redb grows the
    /// file ahead of use, and the part not yet written takes no room in a sparse
    /// file). Falls back to the file's length where the platform does not tell.
    pub fn size_on_disk(&self) -> std::io::Result<u64> {
        let meta = std::fs::metadata(&self.path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok((meta.blocks() * 512).min(meta.len()))
        }
        #[cfg(not(unix))]
        {
            Ok(meta.len())
        }
    }

    /// The file's length, including space redb has reserved but not used yet.
    pub fn file_len(&self) -> std::io::Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }

    fn read(&self) -> Result<ReadTransaction> {
        self.db
            .begin_read()
            .map_err(db_error("starting a read transaction"))
    }

    fn begin_write(&self) -> Result<WriteTransaction> {
        // redb's defaults: `Durability::Immediate` (commit returns after fsync) and no
        // quick-repair, which would save the allocator state at every commit (about 20
        // bytes more per event on disk) to make reopening after a crash instant instead
        // of a checksum walk over the file (0.5 s for a 300 MB store here).
        self.db
            .begin_write()
            .map_err(db_error("starting a write transaction"))
    }

    // ----- blocks -----

    /// Stores a block under its CID. A block already stored is left as it is.
    pub fn put_block(&self, cid: Cid, bytes: &[u8]) -> Result<()> {
        self.put_blocks([(cid, bytes)])
    }

    /// Stores several blocks in one transaction.
    pub fn put_blocks<'b>(&self, blocks: impl IntoIterator<Item = (Cid, &'b [u8])>) -> Result<()> {
        let tx = self.begin_write()?;
        insert_blocks(&tx, blocks)?;
        tx.commit().map_err(db_error("committing blocks"))
    }

    /// The `blocks` table, for reading.
    fn blocks(&self) -> Result<ReadOnlyTable<[u8; 32], &'static [u8]>> {
        read_table(&self.read()?, BLOCKS)
    }

    /// A block's bytes.
    pub fn get_block(&self, cid: Cid) -> Result<Option<Vec<u8>>> {
        let value = self
            .blocks()?
            .get(cid.digest())
            .map_err(db_error("reading a block"))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// Whether a block is stored.
    pub fn has_block(&self, cid: Cid) -> Result<bool> {
        let value = self
            .blocks()?
            .get(cid.digest())
            .map_err(db_error("reading a block"))?;
        Ok(value.is_some())
    }

    // ----- events -----

    /// Writes a batch of events of `program` in one transaction, and commits it durably.
    ///
    /// Events are written in order; each must refer only to events stored before or
    /// earlier in the batch. An event already stored (same CID) is a no-op. Any refusal
    /// (a fork, a missing ref, bytes that do not match their CID) writes nothing of the
    /// batch. Every event's log is registered under `program`.
    pub fn write_batch(&self, program: Cid, events: &[NewEvent<'_>]) -> Result<Written> {
        self.write(program, &[], events)
    }

    /// [`Store::write_batch`] with blocks (for example the manifests the events need)
    /// written in the same transaction.
    pub fn write(
        &self,
        program: Cid,
        blocks: &[(Cid, &[u8])],
        events: &[NewEvent<'_>],
    ) -> Result<Written> {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = self.begin_write()?;
        insert_blocks(&tx, blocks.iter().copied())?;
        let (written, placed) = {
            let mut writer = Writer::new(&tx, &recent)?;
            let program_no = writer.log_number(program)?;
            let mut written = Written::default();
            for event in events {
                if writer.add(program_no, event)? {
                    written.new += 1;
                } else {
                    written.existing += 1;
                }
            }
            (written, writer.finish()?)
        };
        tx.commit().map_err(db_error("committing a batch"))?;
        if recent.len() + placed.len() > RECENT_EVENTS {
            recent.clear();
        }
        recent.extend(placed);
        Ok(written)
    }

    /// Records `log` as a log of `program` (idempotent).
    pub fn register_log(&self, program: Cid, log: Cid) -> Result<()> {
        let no_recent = HashMap::new();
        let tx = self.begin_write()?;
        {
            let mut writer = Writer::new(&tx, &no_recent)?;
            let program_no = writer.log_number(program)?;
            let log_no = writer.log_number(log)?;
            writer
                .program_logs
                .insert((program_no, log_no), ())
                .map_err(db_error("registering a log"))?;
            writer.finish()?;
        }
        tx.commit().map_err(db_error("registering a log"))
    }

    /// An event by CID.
    pub fn get_event(&self, cid: Cid) -> Result<Option<StoredEvent>> {
        let tables = ReadTables::open_read(&self.read()?)?;
        tables
            .find(cid)?
            .map(|found| tables.stored_event(found))
            .transpose()
    }

    /// Whether an event is stored.
    pub fn has_event(&self, cid: Cid) -> Result<bool> {
        Ok(ReadTables::open_read(&self.read()?)?.find(cid)?.is_some())
    }

    /// The events of a log in seq order (a snapshot: events written after this call
    /// are not seen).
    pub fn log_events(&self, log: Cid) -> Result<LogEvents> {
        let read = self.read()?;
        let tables = ReadTables::open_read(&read)?;
        let range = match tables.log_number(log)? {
            Some(log_no) => Some(
                tables
                    .log_events
                    .range((log_no, 0)..=(log_no, u64::MAX))
                    .map_err(db_error("reading a log"))?,
            ),
            None => None,
        };
        Ok(LogEvents {
            tables,
            range,
            chunk: Vec::new(),
        })
    }

    /// The seq and CID of the highest event of a log.
    pub fn log_head(&self, log: Cid) -> Result<Option<(u64, Cid)>> {
        let tables = ReadTables::open_read(&self.read()?)?;
        let Some(log_no) = tables.log_number(log)? else {
            return Ok(None);
        };
        let last = tables
            .log_events
            .range((log_no, 0)..=(log_no, u64::MAX))
            .map_err(db_error("reading a log"))?
            .next_back()
            .transpose()
            .map_err(db_error("reading a log"))?;
        let Some((key, chunk)) = last else {
            return Ok(None);
        };
        let chunk_no = key.value().1;
        let chunk = LogChunk::decode(chunk.value())
            .ok_or_else(|| StoreError::Corrupt(format!("log number {log_no}: bad index row")))?;
        match chunk.seqs(chunk_no).last() {
            Some((seq, number)) => Ok(Some((seq, Cid::of(&tables.entry(number)?.bytes)))),
            None => Ok(None),
        }
    }

    /// The events that refer to an event, in the order they were written.
    pub fn children(&self, cid: Cid) -> Result<Vec<Cid>> {
        let read = self.read()?;
        let tables = ReadTables::open_read(&read)?;
        let Some(parent) = tables.find(cid)? else {
            return Ok(Vec::new());
        };
        let children = read_table(&read, CHILDREN)?;
        let mut numbers: Vec<u64> = match children
            .get(parent.number / CHUNK)
            .map_err(db_error("reading children"))?
        {
            Some(row) => ChildChunk::decode(parent.number / CHUNK, row.value())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("children of event number {}", parent.number))
                })?
                .of(parent.number)
                .collect(),
            None => Vec::new(),
        };
        if let Some(next) = parent
            .seq
            .checked_add(1)
            .map(|seq| tables.at(parent.log, seq))
            .transpose()?
            .flatten()
        {
            if next != parent.number && tables.entry(next)?.flags & FLAG_PREV != 0 {
                numbers.push(next);
            }
        }
        numbers.sort_unstable();
        numbers.dedup();
        numbers
            .into_iter()
            .map(|n| Ok(Cid::of(&tables.entry(n)?.bytes)))
            .collect()
    }

    /// The logs registered under a program, in order of first sight.
    pub fn program_logs(&self, program: Cid) -> Result<Vec<Cid>> {
        let read = self.read()?;
        let tables = ReadTables::open_read(&read)?;
        let Some(program_no) = tables.log_number(program)? else {
            return Ok(Vec::new());
        };
        let table = read_table(&read, PROGRAM_LOGS)?;
        let mut logs = Vec::new();
        for row in table
            .range((program_no, 0)..=(program_no, u64::MAX))
            .map_err(db_error("reading program logs"))?
        {
            let (key, _) = row.map_err(db_error("reading program logs"))?;
            logs.push(tables.log_id(key.value().1)?);
        }
        Ok(logs)
    }

    /// How many events are stored.
    pub fn event_count(&self) -> Result<u64> {
        let read = self.read()?;
        let meta = read_table(&read, META)?;
        meta_value(&meta, NEXT_EVENT_KEY)
    }
}

fn open_error(path: &Path, error: redb::DatabaseError) -> StoreError {
    match error {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.into() },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(reason)) => {
            StoreError::NotAStore {
                path: path.into(),
                reason,
            }
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::NotAStore {
                path: path.into(),
                reason: "not a redb database file".into(),
            }
        }
        other => StoreError::Database {
            context: "opening",
            source: Box::new(other.into()),
        },
    }
}

/// Stores blocks not stored yet.
fn insert_blocks<'b>(
    tx: &WriteTransaction,
    blocks: impl IntoIterator<Item = (Cid, &'b [u8])>,
) -> Result<()> {
    let mut table = write_table(tx, BLOCKS)?;
    for (cid, bytes) in blocks {
        check_bytes("block", cid, bytes)?;
        let present = table
            .get(cid.digest())
            .map_err(db_error("reading a block"))?
            .is_some();
        if !present {
            table
                .insert(cid.digest(), bytes)
                .map_err(db_error("writing a block"))?;
        }
    }
    Ok(())
}

fn check_bytes(what: &'static str, cid: Cid, bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_STORED_BYTES {
        return Err(StoreError::TooLarge {
            what,
            cid,
            len: bytes.len(),
            max: MAX_STORED_BYTES,
        });
    }
    let actual = Cid::of(bytes);
    if actual != cid {
        return Err(StoreError::CidMismatch { cid, actual });
    }
    Ok(())
}

fn meta_value(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64> {
    meta.get(key)
        .map_err(db_error("reading meta"))?
        .map(|v| v.value())
        .ok_or_else(|| StoreError::Corrupt(format!("meta has no `{key}`")))
}

/// The first 8 bytes of a digest, the key of `event_digests`.
fn prefix(cid: Cid) -> u64 {
    let digest = cid.digest();
    u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
}

/// An event located in the store.
struct Found {
    number: u64,
    log: u64,
    seq: u64,
    flags: u8,
    bytes: Vec<u8>,
}

/// The tables every event lookup needs, from a read or a write transaction.
struct Tables<Logs, Ids, Seg, Dig, Evs> {
    logs: Logs,
    log_ids: Ids,
    segments: Seg,
    digests: Dig,
    log_events: Evs,
}

type ReadTables = Tables<
    ReadOnlyTable<[u8; 32], u64>,
    ReadOnlyTable<u64, [u8; 32]>,
    ReadOnlyTable<u64, &'static [u8]>,
    ReadOnlyTable<(u64, u64), ()>,
    ReadOnlyTable<(u64, u64), &'static [u8]>,
>;

type WriteTables<'t> = Tables<
    Table<'t, [u8; 32], u64>,
    Table<'t, u64, [u8; 32]>,
    Table<'t, u64, &'static [u8]>,
    Table<'t, (u64, u64), ()>,
    Table<'t, (u64, u64), &'static [u8]>,
>;

fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<ReadOnlyTable<K, V>> {
    read.open_table(table).map_err(db_error("opening a table"))
}

fn write_table<'t, K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &'t WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<Table<'t, K, V>> {
    tx.open_table(table).map_err(db_error("opening a table"))
}

impl ReadTables {
    fn open_read(read: &ReadTransaction) -> Result<ReadTables> {
        Ok(Tables {
            logs: read_table(read, LOGS)?,
            log_ids: read_table(read, LOG_IDS)?,
            segments: read_table(read, SEGMENTS)?,
            digests: read_table(read, EVENT_DIGESTS)?,
            log_events: read_table(read, LOG_EVENTS)?,
        })
    }
}

impl<'t> WriteTables<'t> {
    fn open_write(tx: &'t WriteTransaction) -> Result<WriteTables<'t>> {
        Ok(Tables {
            logs: write_table(tx, LOGS)?,
            log_ids: write_table(tx, LOG_IDS)?,
            segments: write_table(tx, SEGMENTS)?,
            digests: write_table(tx, EVENT_DIGESTS)?,
            log_events: write_table(tx, LOG_EVENTS)?,
        })
    }
}

impl<Logs, Ids, Seg, Dig, Evs> Tables<Logs, Ids, Seg, Dig, Evs>
where
    Logs: ReadableTable<[u8; 32], u64>,
    Ids: ReadableTable<u64, [u8; 32]>,
    Seg: ReadableTable<u64, &'static [u8]>,
    Dig: ReadableTable<(u64, u64), ()>,
    Evs: ReadableTable<(u64, u64), &'static [u8]>,
{
    /// A log's number, if the log is known.
    fn log_number(&self, log: Cid) -> Result<Option<u64>> {
        Ok(self
            .logs
            .get(log.digest())
            .map_err(db_error("reading a log number"))?
            .map(|v| v.value()))
    }

    /// A log's id from its number.
    fn log_id(&self, number: u64) -> Result<Cid> {
        let digest = self
            .log_ids
            .get(number)
            .map_err(db_error("reading a log id"))?
            .ok_or_else(|| StoreError::Corrupt(format!("log number {number} has no id")))?;
        Ok(Cid::from_digest(digest.value()))
    }

    /// The event with a given number, its bytes rebuilt.
    fn entry(&self, number: u64) -> Result<Found> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("event number {number}: {what}"));
        let (start, segment) = self
            .segments
            .range(..=number)
            .map_err(db_error("reading a segment"))?
            .next_back()
            .ok_or_else(|| corrupt("no segment holds it"))?
            .map_err(db_error("reading a segment"))?;
        let segment = segment.value();
        let mut pos = 0;
        let mut entry = None;
        for _ in start.value()..=number {
            entry = Some(Entry::parse(segment, &mut pos).ok_or_else(|| corrupt("bad entry"))?);
        }
        let entry = entry.ok_or_else(|| corrupt("no segment holds it"))?;
        let log_digest = self.log_id(entry.log)?;
        Ok(Found {
            number,
            log: entry.log,
            seq: entry.seq,
            flags: entry.flags,
            bytes: entry.rebuild(log_digest.digest()),
        })
    }

    /// The event with a given CID: each candidate of the prefix index is checked by
    /// hashing its bytes.
    fn find(&self, cid: Cid) -> Result<Option<Found>> {
        self.find_below(cid, u64::MAX)
    }

    /// [`Tables::find`] among the events numbered below `limit`.
    fn find_below(&self, cid: Cid, limit: u64) -> Result<Option<Found>> {
        let p = prefix(cid);
        for row in self
            .digests
            .range((p, 0)..=(p, u64::MAX))
            .map_err(db_error("reading the event index"))?
        {
            let (key, _) = row.map_err(db_error("reading the event index"))?;
            let number = key.value().1;
            if number >= limit {
                break;
            }
            let found = self.entry(number)?;
            if Cid::of(&found.bytes) == cid {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The index row of a log's seqs `chunk * CHUNK ..`.
    fn log_chunk(&self, log: u64, chunk: u64) -> Result<Option<LogChunk>> {
        match self
            .log_events
            .get((log, chunk))
            .map_err(db_error("reading a log"))?
        {
            Some(row) => LogChunk::decode(row.value())
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("log number {log}: bad index row"))),
            None => Ok(None),
        }
    }

    /// The number of the event at `(log, seq)`.
    fn at(&self, log: u64, seq: u64) -> Result<Option<u64>> {
        Ok(self
            .log_chunk(log, seq / CHUNK)?
            .and_then(|chunk| chunk.get(seq)))
    }

    fn stored_event(&self, found: Found) -> Result<StoredEvent> {
        Ok(StoredEvent {
            cid: Cid::of(&found.bytes),
            log: self.log_id(found.log)?,
            seq: found.seq,
            bytes: found.bytes,
        })
    }
}

/// The events of one log, in seq order: see [`Store::log_events`].
pub struct LogEvents {
    tables: ReadTables,
    range: Option<redb::Range<'static, (u64, u64), &'static [u8]>>,
    /// The rest of the current index row, highest seq first.
    chunk: Vec<(u64, u64)>,
}

impl fmt::Debug for LogEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogEvents").finish_non_exhaustive()
    }
}

impl Iterator for LogEvents {
    type Item = Result<StoredEvent>;

    fn next(&mut self) -> Option<Result<StoredEvent>> {
        while self.chunk.is_empty() {
            let row = match self.range.as_mut()?.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(db_error("reading a log")(e))),
            };
            let (log, chunk_no) = row.0.value();
            let Some(chunk) = LogChunk::decode(row.1.value()) else {
                self.range = None;
                return Some(Err(StoreError::Corrupt(format!(
                    "log number {log}: bad index row"
                ))));
            };
            self.chunk = chunk.seqs(chunk_no).collect();
            self.chunk.reverse();
        }
        let (_, number) = self.chunk.pop()?;
        Some(
            self.tables
                .entry(number)
                .and_then(|found| self.tables.stored_event(found)),
        )
    }
}

/// Where a new event of a batch landed, for the refs of later events of the batch.
#[derive(Clone, Copy)]
struct Placed {
    number: u64,
    log: u64,
    seq: u64,
}

/// The write half of a batch: the tables, the counters, and the open segment.
struct Writer<'t> {
    /// Where recently committed events are (see [`Store`]).
    recent: &'t HashMap<Cid, Placed>,
    tables: WriteTables<'t>,
    meta: Table<'t, &'static str, u64>,
    children: Table<'t, u64, &'static [u8]>,
    program_logs: Table<'t, (u64, u64), ()>,
    next_event: u64,
    next_log: u64,
    /// The number of the batch's first event.
    batch_first: u64,
    /// The first event number of the open segment and its bytes so far.
    segment_start: u64,
    segment: Vec<u8>,
    /// Whether `segment` holds entries not yet in the table.
    segment_dirty: bool,
    /// Events of this batch by digest, and by place.
    batch: HashMap<Cid, Placed>,
    batch_at: HashMap<(u64, u64), Cid>,
    /// Index rows changed by the batch, written once at the end.
    log_chunks: HashMap<(u64, u64), LogChunk>,
    child_chunks: HashMap<u64, ChildChunk>,
    /// Log numbers looked up or given by this batch.
    log_numbers: HashMap<Cid, u64>,
    /// Logs this batch registered under their program.
    registered: std::collections::HashSet<(u64, u64)>,
}

impl<'t> Writer<'t> {
    fn new(tx: &'t WriteTransaction, recent: &'t HashMap<Cid, Placed>) -> Result<Writer<'t>> {
        let tables = WriteTables::open_write(tx)?;
        let meta = write_table(tx, META)?;
        let next_event = meta_value(&meta, NEXT_EVENT_KEY)?;
        let next_log = meta_value(&meta, NEXT_LOG_KEY)?;
        // Reopen the last segment while it has room.
        let (segment_start, segment) = match tables
            .segments
            .last()
            .map_err(db_error("reading a segment"))?
        {
            Some((start, bytes)) if bytes.value().len() < SEGMENT_TARGET => {
                (start.value(), bytes.value().to_vec())
            }
            _ => (next_event, Vec::new()),
        };
        Ok(Writer {
            recent,
            tables,
            meta,
            children: write_table(tx, CHILDREN)?,
            program_logs: write_table(tx, PROGRAM_LOGS)?,
            next_event,
            next_log,
            batch_first: next_event,
            segment_start,
            segment,
            segment_dirty: false,
            batch: HashMap::new(),
            batch_at: HashMap::new(),
            log_chunks: HashMap::new(),
            child_chunks: HashMap::new(),
            log_numbers: HashMap::new(),
            registered: std::collections::HashSet::new(),
        })
    }

    /// A log's number, given one now if the log is new.
    fn log_number(&mut self, log: Cid) -> Result<u64> {
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

    /// Where an event is: earlier in this batch, or stored.
    fn locate(&self, cid: Cid) -> Result<Option<Placed>> {
        if let Some(placed) = self.batch.get(&cid).or_else(|| self.recent.get(&cid)) {
            return Ok(Some(*placed));
        }
        // Events of this batch are all in `batch`, and their segment may not be written yet.
        let stored = self.tables.find_below(cid, self.batch_first)?;
        Ok(stored.map(|found| Placed {
            number: found.number,
            log: found.log,
            seq: found.seq,
        }))
    }

    /// Adds one event; `false` when it was already stored.
    fn add(&mut self, program: u64, event: &NewEvent<'_>) -> Result<bool> {
        check_bytes("event", event.cid, event.bytes)?;
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
        let log = self.log_number(event.log)?;
        let chunk_no = event.seq / CHUNK;
        let existing = match self.batch_at.get(&(log, event.seq)) {
            Some(cid) => Some(*cid),
            None => match self.chunk(log, chunk_no)?.get(event.seq) {
                Some(number) => Some(Cid::of(&self.tables.entry(number)?.bytes)),
                None => None,
            },
        };
        if let Some(existing) = existing {
            return Err(StoreError::Fork {
                log: event.log,
                seq: event.seq,
                existing,
                new: event.cid,
            });
        }
        let number = self.next_event;
        let mut flags = 0;
        for &r in event.refs {
            let parent = self.locate(r)?.ok_or(StoreError::MissingRef {
                event: event.cid,
                missing: r,
            })?;
            if parent.log == log && parent.seq.checked_add(1) == Some(event.seq) {
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
        self.tables
            .digests
            .insert((prefix(event.cid), number), ())
            .map_err(db_error("writing the event index"))?;
        self.chunk(log, chunk_no)?.set(event.seq, number);
        let log_digest = event.log.digest();
        let cut = find_digest(event.bytes, log_digest);
        let body_owned;
        let body = match cut {
            Some(at) => {
                flags |= FLAG_CUT;
                body_owned = [&event.bytes[..at], &event.bytes[at + 32..]].concat();
                &body_owned[..]
            }
            None => event.bytes,
        };
        let mut encoded = Vec::with_capacity(body.len() + 24);
        Entry {
            flags,
            log,
            seq: event.seq,
            cut,
            body,
        }
        .encode(&mut encoded);
        if !self.segment.is_empty() && self.segment.len() + encoded.len() > SEGMENT_TARGET {
            self.flush_segment(true)?;
        }
        if self.segment.is_empty() {
            self.segment_start = number;
        }
        self.segment.extend_from_slice(&encoded);
        self.segment_dirty = true;
        if self.segment.len() >= SEGMENT_TARGET {
            self.flush_segment(true)?;
        }
        self.next_event += 1;
        self.batch.insert(
            event.cid,
            Placed {
                number,
                log,
                seq: event.seq,
            },
        );
        self.batch_at.insert((log, event.seq), event.cid);
        Ok(true)
    }

    /// The index row of a log's seqs `chunk_no * CHUNK ..`, as this batch leaves it.
    fn chunk(&mut self, log: u64, chunk_no: u64) -> Result<&mut LogChunk> {
        Ok(match self.log_chunks.entry((log, chunk_no)) {
            std::collections::hash_map::Entry::Occupied(chunk) => chunk.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let chunk = self.tables.log_chunk(log, chunk_no)?.unwrap_or_default();
                slot.insert(chunk)
            }
        })
    }

    /// Records that event `child` refers to event `parent`.
    fn add_child(&mut self, parent: u64, child: u64) -> Result<()> {
        let chunk_no = parent / CHUNK;
        let chunk = match self.child_chunks.entry(chunk_no) {
            std::collections::hash_map::Entry::Occupied(chunk) => chunk.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
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
        }
        Ok(())
    }

    /// Writes what is pending: the open segment and the counters.
    fn finish(mut self) -> Result<HashMap<Cid, Placed>> {
        self.flush_segment(false)?;
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
        Ok(self.batch)
    }
}

/// One event in a segment.
struct Entry<'a> {
    flags: u8,
    log: u64,
    seq: u64,
    cut: Option<usize>,
    body: &'a [u8],
}

impl<'a> Entry<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.flags);
        put_varint(out, self.log);
        put_varint(out, self.seq);
        put_varint(out, self.body.len() as u64);
        if let Some(cut) = self.cut {
            put_varint(out, cut as u64);
        }
        out.extend_from_slice(self.body);
    }

    fn parse(segment: &'a [u8], pos: &mut usize) -> Option<Entry<'a>> {
        let flags = *segment.get(*pos)?;
        *pos += 1;
        if flags & !(FLAG_CUT | FLAG_PREV) != 0 {
            return None;
        }
        let log = get_varint(segment, pos)?;
        let seq = get_varint(segment, pos)?;
        let len = usize::try_from(get_varint(segment, pos)?).ok()?;
        let cut = if flags & FLAG_CUT != 0 {
            let cut = usize::try_from(get_varint(segment, pos)?).ok()?;
            (cut <= len).then_some(cut)?.into()
        } else {
            None
        };
        let end = pos.checked_add(len)?;
        let body = segment.get(*pos..end)?;
        *pos = end;
        Some(Entry {
            flags,
            log,
            seq,
            cut,
            body,
        })
    }

    fn rebuild(&self, log_digest: &[u8; 32]) -> Vec<u8> {
        match self.cut {
            None => self.body.to_vec(),
            Some(cut) => {
                let mut bytes = Vec::with_capacity(self.body.len() + 32);
                bytes.extend_from_slice(&self.body[..cut]);
                bytes.extend_from_slice(log_digest);
                bytes.extend_from_slice(&self.body[cut..]);
                bytes
            }
        }
    }
}

/// A row of `log_events`: the event numbers of seqs `chunk * CHUNK ..` of one log.
/// Encoded as a 64-bit mask of the seqs present (little-endian), then each present
/// event number as a zigzag varint of its difference from the one before (from 0).
#[derive(Clone)]
struct LogChunk {
    present: u64,
    numbers: [u64; CHUNK as usize],
}

impl Default for LogChunk {
    fn default() -> LogChunk {
        LogChunk {
            present: 0,
            numbers: [0; CHUNK as usize],
        }
    }
}

impl LogChunk {
    fn get(&self, seq: u64) -> Option<u64> {
        let bit = seq % CHUNK;
        (self.present >> bit & 1 == 1).then(|| self.numbers[bit as usize])
    }

    fn set(&mut self, seq: u64, number: u64) {
        let bit = seq % CHUNK;
        self.present |= 1 << bit;
        self.numbers[bit as usize] = number;
    }

    /// `(seq, event number)` in seq order.
    fn seqs(&self, chunk_no: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        (0..CHUNK)
            .filter(|bit| self.present >> bit & 1 == 1)
            .map(move |bit| (chunk_no * CHUNK + bit, self.numbers[bit as usize]))
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.present.to_le_bytes());
        let mut previous = 0u64;
        for (_, number) in self.seqs(0) {
            let delta = number.wrapping_sub(previous) as i64;
            put_varint(out, ((delta << 1) ^ (delta >> 63)) as u64);
            previous = number;
        }
    }

    fn decode(row: &[u8]) -> Option<LogChunk> {
        let mask = row.get(..8)?;
        let present = u64::from_le_bytes(mask.try_into().ok()?);
        let mut chunk = LogChunk {
            present,
            numbers: [0; CHUNK as usize],
        };
        let mut pos = 8;
        let mut previous = 0u64;
        for bit in 0..CHUNK {
            if present >> bit & 1 == 1 {
                let zigzag = get_varint(row, &mut pos)?;
                let delta = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
                previous = previous.wrapping_add(delta as u64);
                chunk.numbers[bit as usize] = previous;
            }
        }
        (pos == row.len()).then_some(chunk)
    }
}

/// A row of `children`: `(parent, child)` event number pairs for the parents
/// `chunk * CHUNK ..`. Encoded, sorted, as the parent's offset in the chunk (a byte)
/// then `child - parent - 1` as a varint (a child is always written after its parent).
#[derive(Clone, Default)]
struct ChildChunk {
    pairs: Vec<(u64, u64)>,
}

impl ChildChunk {
    /// The children of one parent, in write order.
    fn of(&self, parent: u64) -> impl Iterator<Item = u64> + '_ {
        self.pairs
            .iter()
            .filter(move |(p, _)| *p == parent)
            .map(|(_, child)| *child)
    }

    fn encode(&mut self, chunk_no: u64, out: &mut Vec<u8>) {
        self.pairs.sort_unstable();
        self.pairs.dedup();
        for &(parent, child) in &self.pairs {
            out.push((parent - chunk_no * CHUNK) as u8);
            put_varint(out, child - parent - 1);
        }
    }

    fn decode(chunk_no: u64, row: &[u8]) -> Option<ChildChunk> {
        let base = chunk_no.checked_mul(CHUNK)?;
        let mut pairs = Vec::new();
        let mut pos = 0;
        while pos < row.len() {
            let offset = u64::from(row[pos]);
            pos += 1;
            if offset >= CHUNK {
                return None;
            }
            let parent = base + offset;
            let child = parent
                .checked_add(1)?
                .checked_add(get_varint(row, &mut pos)?)?;
            pairs.push((parent, child));
        }
        Some(ChildChunk { pairs })
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Where a log's digest occurs in an event's bytes, if it does.
fn find_digest(bytes: &[u8], digest: &[u8; 32]) -> Option<usize> {
    bytes.windows(32).position(|window| window == digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_refuses_what_is_not_a_store() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let missing = dir.path().join("missing.redb");
        assert!(matches!(
            Store::open(&missing),
            Err(StoreError::NotFound { .. })
        ));
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![7u8; 10_000]).expect("write");
        let err = Store::open(&junk).expect_err("junk");
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
        assert!(matches!(
            Store::create(&junk),
            Err(StoreError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&junk).expect("read"), vec![7u8; 10_000]);

        // Someone else's redb file.
        let foreign = dir.path().join("foreign.redb");
        {
            let db = Database::create(&foreign).expect("create");
            let tx = db.begin_write().expect("tx");
            tx.open_table(TableDefinition::<u64, u64>::new("theirs"))
                .expect("table");
            tx.commit().expect("commit");
        }
        let err = Store::open(&foreign).expect_err("foreign");
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");

        // A store of a newer format.
        let newer = dir.path().join("newer.redb");
        drop(Store::create(&newer).expect("create"));
        {
            let db = Database::open(&newer).expect("open");
            let tx = db.begin_write().expect("tx");
            tx.open_table(META)
                .expect("meta")
                .insert(FORMAT_KEY, 99)
                .expect("insert");
            tx.commit().expect("commit");
        }
        let err = Store::open(&newer).expect_err("newer");
        assert!(
            matches!(err, StoreError::Version { found: 99, .. }),
            "{err}"
        );

        // One process at a time.
        let path = dir.path().join("s.redb");
        let store = Store::create(&path).expect("create");
        assert!(matches!(Store::open(&path), Err(StoreError::InUse { .. })));
        drop(store);
        Store::open(&path).expect("open after close");
    }

    #[test]
    fn index_rows_round_trip_and_refuse_garbage() {
        let mut chunk = LogChunk::default();
        for (seq, number) in [(130, 9_000_000), (128, 5), (191, 6), (160, u64::MAX)] {
            chunk.set(seq, number);
        }
        let mut row = Vec::new();
        chunk.encode(&mut row);
        let back = LogChunk::decode(&row).expect("decodes");
        let seqs: Vec<_> = back.seqs(2).collect();
        assert_eq!(
            seqs,
            [(128, 5), (130, 9_000_000), (160, u64::MAX), (191, 6)]
        );
        assert_eq!(back.get(130), Some(9_000_000));
        assert_eq!(back.get(131), None);
        for bad in [
            &row[..row.len() - 1],
            &[row.clone(), vec![0]].concat()[..],
            &[1, 2],
        ] {
            assert!(LogChunk::decode(bad).is_none(), "{bad:?}");
        }

        let mut children = ChildChunk {
            pairs: vec![(70, 1000), (64, 65), (70, 71), (64, 65)],
        };
        row.clear();
        children.encode(1, &mut row);
        let back = ChildChunk::decode(1, &row).expect("decodes");
        assert_eq!(back.of(70).collect::<Vec<_>>(), [71, 1000]);
        assert_eq!(back.of(64).collect::<Vec<_>>(), [65]);
        assert!(ChildChunk::decode(1, &[64, 0]).is_none());
        assert!(ChildChunk::decode(1, &[3]).is_none());
        assert!(ChildChunk::decode(u64::MAX, &[0, 0]).is_none());
    }

    #[test]
    fn varints_and_entries_round_trip_and_refuse_garbage() {
        let mut out = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            out.clear();
            put_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80], &mut pos), None);
        for garbage in [&[][..], &[4], &[1, 0, 0, 5, 9, 1, 2], &[0, 0, 0, 200, 1]] {
            let mut pos = 0;
            assert!(Entry::parse(garbage, &mut pos).is_none(), "{garbage:?}");
        }
    }
}
