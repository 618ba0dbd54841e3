//! The embedded store: blocks, events and their indexes in one redb file.
//!
//! What the store guarantees:
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
//! - **A damaged file is an error, never a panic** ([`StoreError::Damaged`]). Every
//!   public read and write, of the store and of its snapshots and iterators, runs
//!   through one guard (`guard.rs`): a panic inside redb on a damaged page is caught
//!   and reported, and from then on the store refuses everything until the process
//!   ends and never writes to the file (redb's state may be half updated; when the
//!   store is dropped, the writes that closing a database makes are refused under
//!   redb, `disk.rs`). A truncated or empty file is refused on opening.
//!   Reads check what they return (see the layout below), so a changed record is an
//!   error, not other content; redb does not check page checksums on reads, so a
//!   changed B-tree page can hide a key (a read says "not stored").
//! - **A failed write is recovered.** After a write fails on I/O (a full disk), redb
//!   refuses every write until its database is reopened. The store reopens it on the
//!   same file (`disk.rs`: opened and locked once) at once, and before each later
//!   write while that fails; redb recovers the file as after a crash, rolling back the
//!   failed commit. Reads already running keep the old database, which no longer
//!   writes. [`Store::health`] says whether the last write failed and why;
//!   [`Store::retry_failed_write`] tries an empty write to learn whether writes work
//!   again.
//!
//! **Injecting a full disk** (tests): [`Store::set_disk_full`] in the process; for an
//! `amb node` process, start it with [`DISK_FULL_WHILE_ENV`]
//! (`AMB_STORE_DISK_FULL_WHILE`) naming a file: while that file exists, every write,
//! resize and sync of the store's file fails with `StorageFull` (errno 28's kind), as
//! on a full disk; reads go on. Remove the file and the next write recovers.
//!
//! Events are handed over decoded ([`Store::write_events`], what a writer that signs
//! them has) or as bytes with what the indexes need ([`NewEvent`]), which the store
//! decodes; bytes that are not an event (the store's own tests use such) are kept as
//! they are.
//!
//! # Layout
//!
//! One row per event keyed by its digest, with index rows keyed by digests and
//! `(log, seq)`, took about 680 bytes on disk per 250-byte event: a redb leaf split
//! leaves pages half full, and every row costs its keys. So rows are few and small,
//! and events go in page-sized values, in a compact form (`entry.rs`):
//!
//! | table | key → value | what |
//! |---|---|---|
//! | `meta` | text → u64 | `format` (version), `next_event`, `next_log` |
//! | `blocks` | digest `[u8; 32]` → bytes | bytecode blocks, manifests, value blocks |
//! | `logs` | log digest → log number | every log id gets a compact u64, in order of first sight |
//! | `log_ids` | log number → log digest | the way back |
//! | `segments` | first event number → entries | events, packed (`entry.rs`) |
//! | `digest_runs`, `digest_rows` | sorted runs of (first 8 digest bytes, event number) | CID → event (`digest_index.rs`) |
//! | `log_events` | (log number, seq / 64) → row | the event numbers of 64 seqs of a log |
//! | `children` | event number / 64 → row | who refers to each of 64 events |
//! | `program_logs` | (program's log number, log number) → () | the logs of a program |
//! | `manifests` | log number → compact slice manifest | slice manifests (`manifests.rs`) |
//! | `deployments` | program digest → bytes | the deployments a node walks, to resume them (`programs.rs`) |
//! | `runs_over` | program digest → () | runs a node knows to be over (`programs.rs`) |
//!
//! Every event gets the next **event number**, in write order. A **segment** holds the
//! entries of consecutive event numbers, up to [`SEGMENT_TARGET`] bytes (one page);
//! the last segment is extended by later batches until full, keeping its bytes. An
//! event's entry keeps its CID, its log as a log number, its refs and `at` as event
//! numbers, and its keys and blocks once per segment: about 120 bytes for an event
//! that encodes to 260. Reading rebuilds the canonical bytes and checks them against
//! the CID (`entry.rs`, `tables.rs`). Reads also check blocks and manifests against
//! their CIDs, the events of a log against their `(log, seq)`, children against their
//! refs, a log's id against its number (`logs` and `log_ids` agree), the CID index
//! (its rows sorted, each candidate's CID of the prefix looked up), and `meta`'s
//! counters against the last segment and the last log number (before writing too: a
//! write that trusted a damaged counter would overwrite events).
//!
//! The CID index keys only 8 bytes of the digest: a lookup compares the CID of each
//! candidate with the one asked for, so a collision of prefixes costs a second look,
//! never a wrong answer. It is a set of sorted runs written whole, not a B-tree of
//! random keys, whose every insert lands on a random page (`digest_index.rs`).
//!
//! A `log_events` row is a 64-bit mask of the seqs present and their event numbers as
//! varint differences; a `children` row lists `(parent offset, child - parent)` pairs
//! (`rows.rs`). A batch rewrites each row it touches once. The head of a log is the
//! highest seq of its last row.
//!
//! The ref from an event to its predecessor in its own log (`(log, seq - 1)`, which
//! every event but the first has, `spec/events.md` §4) is not in `children`: the
//! entry's `PREV` flag records it, and [`Store::children`] adds the successor when its
//! flag is set.

mod digest_index;
mod disk;
mod entry;
mod fast_hash;
mod guard;
mod manifests;
mod programs;
mod rows;
mod snapshot;
mod tables;
mod writer;

use std::{
    borrow::Cow,
    fmt,
    fs::OpenOptions,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use amb_bytecode::Cid;
use disk::Disk;
use entry::FLAG_PREV;
use guard::Guard;
use redb::{
    Database, ReadTransaction, ReadableTable, TableDefinition, TableError, TableHandle,
    WriteTransaction,
};
use rows::{CHUNK, ChildChunk, LogChunk};
use tables::{ReadTables, Segments, WriteTables, read_table, write_table};
use writer::{Incoming, WriteState};
pub use writer::{MAX_DEFERRED_AGE, MAX_DEFERRED_COMMITS};

pub use disk::DISK_FULL_WHILE_ENV;
pub use snapshot::{ProgramEvents, Snapshot};

use crate::{Event, EventError, Manifest, SigningKey, UnsignedEvent};

/// The store's format version, kept in `meta` under `format`.
pub const STORE_FORMAT: u64 = 3;

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
const DIGEST_RUNS: TableDefinition<u64, u64> = TableDefinition::new("digest_runs");
const DIGEST_ROWS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("digest_rows");
const LOG_EVENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log_events");
const CHILDREN: TableDefinition<u64, &[u8]> = TableDefinition::new("children");
const PROGRAM_LOGS: TableDefinition<(u64, u64), ()> = TableDefinition::new("program_logs");
const MANIFESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("manifests");

const FORMAT_KEY: &str = "format";
const NEXT_EVENT_KEY: &str = "next_event";
const NEXT_LOG_KEY: &str = "next_log";

/// An event to write: its bytes and what the indexes need to know of them. Bytes that
/// decode as an event are stored in the compact form, with the refs they hold (the
/// log and seq given must be theirs); other bytes are stored as they are, indexed by
/// the fields given.
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

/// An event the store can take as it is: the event and its CID, made by signing
/// ([`DecodedEvent::sign`]) or decoding ([`DecodedEvent::decode`]), so the CID is
/// always that of the event's encoding. See [`Store::write_events`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedEvent {
    cid: Cid,
    event: Event,
}

impl DecodedEvent {
    /// Signs `body` with `key` as [`Event::sign`] does, and hashes the encoding, which
    /// it leaves in `encoding` (cleared first: a buffer reused from event to event).
    pub fn sign(body: UnsignedEvent, key: &SigningKey, encoding: &mut Vec<u8>) -> DecodedEvent {
        let event = Event::sign_into(body, key, encoding);
        DecodedEvent {
            cid: Cid::of(encoding),
            event,
        }
    }

    /// Decodes untrusted bytes ([`Event::decode`]; the signature is not checked) and
    /// hashes them.
    pub fn decode(bytes: &[u8]) -> std::result::Result<DecodedEvent, EventError> {
        Ok(DecodedEvent {
            event: Event::decode(bytes)?,
            cid: Cid::of(bytes),
        })
    }

    /// The event's CID.
    pub fn cid(&self) -> Cid {
        self.cid
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The event, given up.
    pub fn into_event(self) -> Event {
        self.event
    }
}

/// An `effect` event with its position in a batch, its CID and its bytes.
type EncodedEffect<'e> = (usize, Cid, &'e crate::EffectEvent, Vec<u8>);

/// An effect event written as a raw entry (`Store::write_events_and_effects`).
fn raw<'a>((_, cid, effect, bytes): &'a EncodedEffect<'_>) -> Incoming<'a> {
    Incoming::Raw(NewEvent {
        cid: *cid,
        log: effect.log(),
        seq: effect.seq(),
        refs: effect.refs(),
        bytes,
    })
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
    /// The database failed: I/O (a full disk: [`StoreError::is_disk_full`]), or
    /// another error of redb's that is not damage.
    #[error("store: {context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// redb's error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The file is damaged: truncated, or changed so that redb or the store finds a
    /// page or record that cannot be what was written, or an internal check of redb
    /// failed on it (after which the store refuses everything; see the module
    /// documentation). Nothing is written to a damaged store.
    #[error("the store at {} is damaged: {detail}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        detail: String,
    },
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
    /// Bytes that decode as an event of another log or seq than the one given.
    #[error(
        "event {cid} is at log {log} seq {seq}, but was given as log {given_log} seq {given_seq}"
    )]
    Mislabeled {
        /// The event.
        cid: Cid,
        /// Its log.
        log: Cid,
        /// Its seq.
        seq: u64,
        /// The log given.
        given_log: Cid,
        /// The seq given.
        given_seq: u64,
    },
    /// A decoded event handed over with bytes that are not its encoding.
    #[error("event {cid}: the bytes given are not the encoding of the event given")]
    NotItsEncoding {
        /// The CID given.
        cid: Cid,
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

impl StoreError {
    /// Whether the store failed because its disk is full (the node's own
    /// failure, which passes once space returns; `spec/network.md` §7).
    pub fn is_disk_full(&self) -> bool {
        let StoreError::Database { source, .. } = self else {
            return false;
        };
        let io = match source.as_ref() {
            redb::Error::Io(io) => Some(io),
            _ => std::error::Error::source(source.as_ref())
                .and_then(|s| s.downcast_ref::<std::io::Error>()),
        };
        io.is_some_and(|e| {
            e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
        })
    }
}

impl StoreError {
    /// Damage found inside the store's records (the boundary, `guard.rs`, gives it the
    /// store's path).
    pub(super) fn corrupt(detail: String) -> StoreError {
        StoreError::Damaged {
            path: PathBuf::new(),
            detail,
        }
    }

    /// Whether the error is an I/O failure after which redb refuses to write until
    /// its database is reopened.
    fn needs_reopen(&self) -> bool {
        matches!(
            self,
            StoreError::Database { source, .. }
                if matches!(**source, redb::Error::Io(_) | redb::Error::PreviousIo)
        )
    }
}

fn db_error<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Database {
        context,
        source: Box::new(e.into()),
    }
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Blocks to store as they are.
type Blocks<'b> = Vec<(Cid, &'b [u8])>;

/// Slice manifests to store compact, with their CIDs.
type Slices<'m> = Vec<(Cid, Cow<'m, Manifest>)>;

/// The store: one redb file. Many readers and one writer at a time; `&self` methods
/// are safe to call from several threads.
pub struct Store {
    /// The database; reopened after a failed write (see the module documentation).
    /// `None` only while the store is dropped.
    db: RwLock<Option<Database>>,
    /// The file under every database the store opens, and its lock.
    disk: Disk,
    path: PathBuf,
    /// Panics caught and damage found (`guard.rs`), shared with the store's views.
    guard: Arc<Guard>,
    /// What the writer keeps between batches (`writer.rs`); also the write lock.
    write_state: Mutex<WriteState>,
    /// Segments parsed by readers (`tables.rs`).
    parsed: Segments,
    /// How the last write went.
    health: Mutex<Health>,
    /// Whether the database must be reopened before the next write.
    reopen: AtomicBool,
    /// The most bytes of pages the database caches in memory.
    cache_bytes: usize,
}

/// Whether the store can write: see [`Store::health`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// The last write committed, or was refused for what it held (a fork, a missing
    /// ref: the caller's error), or none was tried since the store was opened.
    Ok,
    /// The last write failed for a reason of the store's own: I/O, most often a full
    /// disk. Every later write first reopens the database, so writes succeed again
    /// once the cause is gone.
    WriteFailed {
        /// The error's message.
        message: String,
        /// Whether the disk is full ([`StoreError::is_disk_full`]).
        disk_full: bool,
    },
    /// The file is damaged (an internal check of redb failed on it): every read and
    /// write is refused until the process ends ([`StoreError::Damaged`]).
    Damaged {
        /// What is wrong, and where.
        detail: String,
    },
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let db = self
            .db
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if self.guard.damage().is_some() {
            // Closing writes (redb saves its allocator state): never into a damaged
            // file. redb's attempts fail, and it closes the file.
            self.disk.freeze();
        }
        // Closing reads the database: a panic there must not escape a drop.
        let _ = guard::catch_quietly(|| drop(db));
    }
}

/// The page cache of a store opened by [`Store::open`] or [`Store::create`]: redb's
/// own default, which suits a one-off command reading a large run. A long-running
/// node sets its own ([`Store::open_or_create_with_cache`]), so its memory is bounded
/// by its settings (`spec/network.md` §1, `store_cache_mib`).
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

impl Store {
    /// Creates a new, empty store; refuses if a file exists at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Store> {
        Store::create_with_cache(path.as_ref(), DEFAULT_CACHE_BYTES)
    }

    fn create_with_cache(path: &Path, cache_bytes: usize) -> Result<Store> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => StoreError::Exists { path: path.into() },
                _ => io_error("creating the file", e),
            })?;
        let guard = Arc::new(Guard::new(path));
        let created = guard.run(|| {
            let disk = Disk::new(file).map_err(|e| open_error(path, e))?;
            let db = open_database(&disk, cache_bytes).map_err(|e| open_error(path, e))?;
            Store::init(db, disk, Arc::clone(&guard), cache_bytes)
        });
        if created.is_err() {
            // The file is new and ours: leave nothing half made.
            let _ = std::fs::remove_file(path);
        }
        created
    }

    /// Opens an existing store. A damaged file (truncated, changed) is refused with
    /// [`StoreError::Damaged`]; a store left open by a process that died is
    /// recovered by redb (an unfinished last commit, which never returned, is rolled
    /// back).
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with_cache(path.as_ref(), DEFAULT_CACHE_BYTES)
    }

    fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::NotFound { path: path.into() });
        }
        let guard = Arc::new(Guard::new(path));
        guard.run(|| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| io_error("opening the file", e))?;
            let mut head = [0; REDB_MAGIC.len()];
            let read = read_head(&file, &mut head).map_err(|e| io_error("opening the file", e))?;
            if read == 0 {
                return Err(StoreError::corrupt("the file is empty".into()));
            }
            if head[..read] != REDB_MAGIC[..read] {
                return Err(StoreError::NotAStore {
                    path: path.into(),
                    reason: "not a redb database file".into(),
                });
            }
            let disk = Disk::new(file).map_err(|e| open_error(path, e))?;
            let db = open_database(&disk, cache_bytes).map_err(|e| open_error(path, e))?;
            Store::init(db, disk, Arc::clone(&guard), cache_bytes)
        })
    }

    /// Opens the store at `path`, creating it if there is no file.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_or_create_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open_or_create`] with a page cache of at most `cache_bytes`.
    pub fn open_or_create_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Store> {
        let path = path.as_ref();
        match Store::create_with_cache(path, cache_bytes) {
            Err(StoreError::Exists { .. }) => Store::open_with_cache(path, cache_bytes),
            other => other,
        }
    }

    /// Checks the format of an opened database, writing it (and every table) into a new one.
    fn init(db: Database, disk: Disk, guard: Arc<Guard>, cache_bytes: usize) -> Result<Store> {
        let path = guard.path();
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
                    write_table(&tx, MANIFESTS)?;
                }
                tx.commit().map_err(db_error("creating the tables"))?;
            }
        }
        Ok(Store {
            write_state: Mutex::default(),
            parsed: Segments::default(),
            db: RwLock::new(Some(db)),
            disk,
            path: path.into(),
            guard,
            health: Mutex::new(Health::Ok),
            reopen: AtomicBool::new(false),
            cache_bytes,
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

    /// Whether the store can write: whether the last write failed, and why, or the
    /// file is damaged.
    pub fn health(&self) -> Health {
        match self.guard.damage() {
            Some(detail) => Health::Damaged {
                detail: detail.into(),
            },
            None => self
                .health
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// If the last write failed, tries an empty one (which first reopens the database,
    /// as every write does), so that the health says whether writes work again
    /// without waiting for a real write: for a node's health check. Returns the health.
    pub fn retry_failed_write(&self) -> Health {
        if matches!(self.health(), Health::WriteFailed { .. }) {
            let _ = self.writing("checking that writes work again", |tx, state| {
                state.writer(tx)?.finish()
            });
        }
        self.health()
    }

    /// For tests of a full disk: while `full` is set, every write to the file fails
    /// with `StorageFull` as on a full disk; reads go on. See the module documentation.
    #[doc(hidden)]
    pub fn set_disk_full(&self, full: bool) {
        self.disk.set_full(full);
    }

    /// `f` on the database (which the lock keeps from being reopened meanwhile).
    fn with_db<T>(&self, f: impl FnOnce(&Database) -> T) -> Result<T> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        // `None` only while the store is dropped, when no thread can use it.
        Ok(f(db.as_ref().ok_or_else(closed)?))
    }

    /// Runs a read on a new read transaction, through the guard.
    fn reading<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        self.guard.run(|| {
            let read = self
                .with_db(Database::begin_read)?
                .map_err(db_error("starting a read transaction"))?;
            f(&read)
        })
    }

    /// Runs `write` in a write transaction and commits it, through the guard: one
    /// writer at a time, the database reopened first if a write failed on I/O, and
    /// the store's health set from the outcome.
    fn writing<T>(
        &self,
        context: &'static str,
        write: impl FnOnce(&WriteTransaction, &mut WriteState) -> Result<T>,
    ) -> Result<T> {
        self.writing_with(context, Commit::Durable, write)
    }

    /// [`Store::writing`], committed as `commit` says.
    fn writing_with<T>(
        &self,
        context: &'static str,
        commit: Commit,
        write: impl FnOnce(&WriteTransaction, &mut WriteState) -> Result<T>,
    ) -> Result<T> {
        self.guard.run(|| {
            let mut state = self.lock_writer();
            let result = self.reopen_if_needed(&mut state).and_then(|()| {
                // redb's defaults: `Durability::Immediate` (commit returns after
                // fsync) and no quick-repair, which would save the allocator state at
                // every commit (about 20 bytes more per event on disk) to make
                // reopening after a crash instant instead of a checksum walk over the
                // file (0.5 s for a 300 MB store here).
                let mut tx = self
                    .with_db(Database::begin_write)?
                    .map_err(db_error("starting a write transaction"))?;
                let durable = commit == Commit::Durable || state.must_be_durable();
                if !durable {
                    tx.set_durability(redb::Durability::None);
                }
                let done = write(&tx, &mut state)?;
                tx.commit().map_err(db_error(context))?;
                state.committed();
                state.note_commit(durable);
                Ok(done)
            });
            let result = result.map_err(|e| self.guard.classify(e));
            let health = match &result {
                Err(e @ (StoreError::Database { .. } | StoreError::Damaged { .. })) => {
                    if e.needs_reopen() {
                        self.reopen.store(true, Ordering::Release);
                        // At once, so that reads (which the failed database refuses
                        // where its cache misses) work again; if this fails too, the
                        // next write tries again.
                        let _ = self.reopen_if_needed(&mut state);
                    }
                    Health::WriteFailed {
                        message: e.to_string(),
                        disk_full: e.is_disk_full(),
                    }
                }
                _ => Health::Ok,
            };
            *self.health.lock().unwrap_or_else(PoisonError::into_inner) = health;
            result
        })
    }

    /// Reopens the database if a write failed on I/O: redb refuses every write after
    /// one (`PreviousIo`) until then. Reopening recovers the file as after a crash
    /// (the failed commit is rolled back). Reads already running keep the old
    /// database, which has stopped writing.
    fn reopen_if_needed(&self, state: &mut WriteState) -> Result<()> {
        if !self.reopen.load(Ordering::Acquire) {
            return Ok(());
        }
        let db = open_database(&self.disk, self.cache_bytes)
            .map_err(db_error("reopening after a failed write"))?;
        let old = self
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(db);
        drop(old);
        *state = WriteState::default();
        self.reopen.store(false, Ordering::Release);
        Ok(())
    }

    // ----- blocks -----

    /// Stores a block under its CID. A block already stored is left as it is.
    pub fn put_block(&self, cid: Cid, bytes: &[u8]) -> Result<()> {
        self.put_blocks([(cid, bytes)])
    }

    /// Stores several blocks in one transaction.
    pub fn put_blocks<'b>(&self, blocks: impl IntoIterator<Item = (Cid, &'b [u8])>) -> Result<()> {
        let blocks: Vec<(Cid, &[u8])> = blocks.into_iter().collect();
        let (others, slices) = Store::sort_blocks(&blocks)?;
        self.write_incoming(
            None,
            false,
            Commit::Durable,
            others,
            slices,
            std::iter::empty(),
        )?;
        Ok(())
    }

    /// A block's bytes (a slice manifest's rebuilt from its compact form).
    pub fn get_block(&self, cid: Cid) -> Result<Option<Vec<u8>>> {
        self.snapshot()?.get_block(cid)
    }

    /// Whether a block is stored.
    pub fn has_block(&self, cid: Cid) -> Result<bool> {
        self.snapshot()?.has_block(cid)
    }

    /// A consistent view of the store for many reads (one read transaction; events
    /// written after this call are not seen).
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.reading(|read| Snapshot::open(read, &self.parsed, &self.guard))
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
    /// written in the same transaction. Bytes that decode as an event must name the
    /// log and seq given ([`StoreError::Mislabeled`]).
    pub fn write(
        &self,
        program: Cid,
        blocks: &[(Cid, &[u8])],
        events: &[NewEvent<'_>],
    ) -> Result<Written> {
        self.write_checked(program, blocks, events, false, Commit::Durable)
    }

    /// [`Store::write`] for a host's part of a program (`spec/network.md` §8): its
    /// events may refer to events outside it, which stay CIDs (bare refs).
    pub fn write_part(
        &self,
        part: Cid,
        blocks: &[(Cid, &[u8])],
        events: &[NewEvent<'_>],
    ) -> Result<Written> {
        self.write_checked(part, blocks, events, true, Commit::Durable)
    }

    /// [`Store::write`] (or, `part`, [`Store::write_part`]) for events received
    /// from other writers, committed as [`Commit::Deferred`]: without waiting for
    /// `fsync`, durable with the next durable commit (at most
    /// [`MAX_DEFERRED_COMMITS`] commits or [`MAX_DEFERRED_AGE`] later while the
    /// store goes on writing, else at [`Store::flush`]). A crash may lose them; their
    /// writers signed and hold them, so they are fetched again (`spec/events.md`
    /// §8). A node's own events are never written this way.
    pub fn write_received(
        &self,
        program: Cid,
        blocks: &[(Cid, &[u8])],
        events: &[NewEvent<'_>],
        part: bool,
    ) -> Result<Written> {
        self.write_checked(program, blocks, events, part, Commit::Deferred)
    }

    /// Makes every deferred commit durable (a durable commit of nothing) if there
    /// is one: a node calls it when it is idle and when it stops.
    pub fn flush(&self) -> Result<()> {
        if !self.lock_writer().has_deferred() {
            return Ok(());
        }
        self.writing("making deferred commits durable", |_, _| Ok(()))
    }

    /// [`Store::flush`] once the deferred commits are [`MAX_DEFERRED_AGE`] old: a
    /// busy node calls it between jobs.
    pub fn flush_due(&self) -> Result<()> {
        let due = {
            let state = self.lock_writer();
            state.has_deferred() && state.must_be_durable()
        };
        if due { self.flush() } else { Ok(()) }
    }

    fn write_checked(
        &self,
        program: Cid,
        blocks: &[(Cid, &[u8])],
        events: &[NewEvent<'_>],
        bare_refs: bool,
        commit: Commit,
    ) -> Result<Written> {
        let mut decoded = Vec::with_capacity(events.len());
        for event in events {
            check_bytes("event", event.cid, event.bytes)?;
            let found = Event::decode(event.bytes).ok();
            if let Some(found) = &found {
                if (found.log(), found.seq()) != (event.log, event.seq) {
                    return Err(StoreError::Mislabeled {
                        cid: event.cid,
                        log: found.log(),
                        seq: found.seq(),
                        given_log: event.log,
                        given_seq: event.seq,
                    });
                }
            }
            decoded.push(found);
        }
        let (others, slices) = Store::sort_blocks(blocks)?;
        self.write_incoming(
            Some(program),
            bare_refs,
            commit,
            others,
            slices,
            events.iter().zip(&decoded).map(|(new, found)| match found {
                Some(event) => Incoming::Decoded(new.cid, event),
                None => Incoming::Raw(*new),
            }),
        )
    }

    /// [`Store::write`] for events the caller has signed or decoded, with the slice
    /// manifests they need. Their CIDs are known to be their encodings', so they are
    /// not hashed again.
    pub fn write_events(
        &self,
        program: Cid,
        slices: &[Manifest],
        events: &[DecodedEvent],
    ) -> Result<Written> {
        self.write_events_and_effects(program, slices, events, &[])
    }

    /// [`Store::write_events`] with `effect` events (`spec/system.md` §6), each
    /// `(i, effect)` written right before `events[i]` (or after the last event when
    /// `i` is `events.len()`), kept as raw entries: their bytes as they are,
    /// indexed by their log, seq and refs.
    pub fn write_events_and_effects(
        &self,
        program: Cid,
        slices: &[Manifest],
        events: &[DecodedEvent],
        effects: &[(usize, crate::EffectEvent)],
    ) -> Result<Written> {
        let effects: Vec<EncodedEffect<'_>> = effects
            .iter()
            .map(|(at, effect)| {
                let bytes = effect.encode();
                (*at, Cid::of(&bytes), effect, bytes)
            })
            .collect();
        let mut pending = effects.iter().peekable();
        let mut incoming = Vec::with_capacity(events.len() + effects.len());
        for (at, event) in events.iter().enumerate() {
            while let Some(effect) = pending.next_if(|e| e.0 <= at) {
                incoming.push(raw(effect));
            }
            incoming.push(Incoming::Decoded(event.cid, &event.event));
        }
        incoming.extend(pending.map(raw));
        // A root manifest given with the slices is kept as a block, as it is.
        let roots: Vec<(Cid, Vec<u8>)> = slices
            .iter()
            .filter(|manifest| manifest.is_root())
            .map(|manifest| (manifest.cid(), manifest.encode()))
            .collect();
        let slices = slices
            .iter()
            .filter(|manifest| !manifest.is_root())
            .map(|manifest| (manifest.cid(), Cow::Borrowed(manifest)))
            .collect();
        self.write_incoming(
            Some(program),
            false,
            Commit::Durable,
            roots
                .iter()
                .map(|(cid, bytes)| (*cid, &bytes[..]))
                .collect(),
            slices,
            incoming.into_iter(),
        )
    }

    /// Sorts blocks into slice manifests (kept compact by log number, once their
    /// parents are placed) and the others (kept as they are).
    fn sort_blocks<'b>(blocks: &[(Cid, &'b [u8])]) -> Result<(Blocks<'b>, Slices<'static>)> {
        let mut slices = Vec::new();
        let mut others = Vec::new();
        for &(cid, bytes) in blocks {
            check_bytes("block", cid, bytes)?;
            let slice = manifests::may_be_slice(bytes)
                .then(|| Manifest::decode(bytes).ok())
                .flatten()
                .filter(|manifest| !manifest.is_root());
            match slice {
                Some(manifest) => slices.push((cid, Cow::Owned(manifest))),
                None => others.push((cid, bytes)),
            }
        }
        Ok((others, slices))
    }

    /// Writes blocks, slice manifests and the events of `program` in one transaction.
    fn write_incoming<'e>(
        &self,
        program: Option<Cid>,
        bare_refs: bool,
        commit: Commit,
        others: Blocks<'_>,
        slices: Slices<'_>,
        events: impl Iterator<Item = Incoming<'e>>,
    ) -> Result<Written> {
        self.writing_with("committing a batch", commit, |tx, state| {
            insert_blocks(tx, others)?;
            let mut writer = state.writer(tx)?;
            writer.bare_refs = bare_refs;
            let mut written = Written::default();
            if let Some(program) = program {
                let program_no = writer.log_number(program)?;
                for event in events {
                    if writer.add(program_no, event)? {
                        written.new += 1;
                    } else {
                        written.existing += 1;
                    }
                }
            }
            for (cid, manifest) in &slices {
                // Slices are never roots (`sort_blocks`, `write_events`).
                if let Some(parent) = manifest.parent() {
                    writer.put_manifest(*cid, manifest, parent)?;
                }
            }
            writer.finish()?;
            Ok(written)
        })
    }

    /// Records `log` as a log of `program` (idempotent).
    pub fn register_log(&self, program: Cid, log: Cid) -> Result<()> {
        self.writing("registering a log", |tx, state| {
            let mut writer = state.writer(tx)?;
            let program_no = writer.log_number(program)?;
            let log_no = writer.log_number(log)?;
            writer.register(program_no, log_no)?;
            writer.finish()
        })
    }

    /// The writer's state, which is also the lock that makes this process's writes
    /// one at a time.
    fn lock_writer(&self) -> MutexGuard<'_, WriteState> {
        self.write_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// An event by CID.
    pub fn get_event(&self, cid: Cid) -> Result<Option<StoredEvent>> {
        self.reading(|read| {
            let tables = ReadTables::open_read(read, &self.parsed)?;
            tables
                .find_below(cid, u64::MAX)?
                .map(|number| tables.stored_event(number))
                .transpose()
        })
    }

    /// Whether an event is stored.
    pub fn has_event(&self, cid: Cid) -> Result<bool> {
        self.reading(|read| {
            Ok(ReadTables::open_read(read, &self.parsed)?
                .find_below(cid, u64::MAX)?
                .is_some())
        })
    }

    /// The events of a log in seq order (a snapshot: events written after this call
    /// are not seen).
    pub fn log_events(&self, log: Cid) -> Result<LogEvents> {
        self.snapshot()?.log_events(log)
    }

    /// How many events of `log` are stored (the index alone is read). Fewer than
    /// its head's seq + 1 when the log has gaps (a host's part of a program holds
    /// only some events of its path's logs).
    pub fn log_count(&self, log: Cid) -> Result<u64> {
        let mut events = self.log_events(log)?;
        let mut count = 0;
        while let Some(number) = events.next_number() {
            number?;
            count += 1;
        }
        Ok(count)
    }

    /// The seq and CID of the highest event of a log.
    pub fn log_head(&self, log: Cid) -> Result<Option<(u64, Cid)>> {
        self.reading(|read| {
            let tables = ReadTables::open_read(read, &self.parsed)?;
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
            let chunk = LogChunk::decode(chunk.value()).ok_or_else(|| bad_log_row(log_no))?;
            let seqs = chunk
                .seqs(key.value().1)
                .ok_or_else(|| bad_log_row(log_no))?;
            let Some((seq, number)) = seqs.last() else {
                return Ok(None);
            };
            let stored = tables.stored_event(number)?;
            check_place(&stored, log, seq)?;
            Ok(Some((seq, stored.cid)))
        })
    }

    /// The events that refer to an event, in the order they were written.
    pub fn children(&self, cid: Cid) -> Result<Vec<Cid>> {
        self.reading(|read| {
            let tables = ReadTables::open_read(read, &self.parsed)?;
            let Some(parent) = tables.find_below(cid, u64::MAX)? else {
                return Ok(Vec::new());
            };
            let children = read_table(read, CHILDREN)?;
            let mut numbers: Vec<u64> = match children
                .get(parent / CHUNK)
                .map_err(db_error("reading children"))?
            {
                Some(row) => ChildChunk::decode(parent / CHUNK, row.value())
                    .ok_or_else(|| {
                        StoreError::corrupt(format!("children of event number {parent}"))
                    })?
                    .of(parent)
                    .collect(),
                None => Vec::new(),
            };
            let (log, seq) = {
                let located = tables.locate(parent)?;
                (located.entry().log, located.entry().seq)
            };
            if let Some(next) = seq
                .checked_add(1)
                .map(|seq| tables.at(log, seq))
                .transpose()?
                .flatten()
            {
                if next != parent && tables.locate(next)?.entry().flags & FLAG_PREV != 0 {
                    numbers.push(next);
                }
            }
            numbers.sort_unstable();
            numbers.dedup();
            // Each child is checked to refer to the parent (a damaged row could name
            // another event), where the store holds its fields.
            numbers
                .into_iter()
                .map(|n| {
                    let child = tables.read(n)?;
                    match &child.event {
                        Some(event) if !event.refs().contains(&cid) => {
                            Err(StoreError::corrupt(format!(
                                "event {} is indexed as a child of {cid}, but does not refer to it",
                                child.cid
                            )))
                        }
                        _ => Ok(child.cid),
                    }
                })
                .collect()
        })
    }

    /// The logs registered under a program, in order of first sight.
    pub fn program_logs(&self, program: Cid) -> Result<Vec<Cid>> {
        self.snapshot()?.program_logs(program)
    }

    /// How many events are stored.
    pub fn event_count(&self) -> Result<u64> {
        self.reading(|read| {
            let meta = read_table(read, META)?;
            let count = meta_value(&meta, NEXT_EVENT_KEY)?;
            ReadTables::open_read(read, &self.parsed)?
                .check_counters(count, meta_value(&meta, NEXT_LOG_KEY)?)?;
            Ok(count)
        })
    }
}

/// The first bytes of every redb file (`redb` 2's `MAGICNUMBER`): a file that starts
/// with them, or with a part of them, is a redb file, damaged if redb refuses it.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Reads the start of a file into `head`; how many bytes it has there.
fn read_head(mut file: &std::fs::File, head: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    Ok(read)
}

/// Opens the database on the store's file: a new one in an empty file, else the one
/// there, which redb recovers if it was not closed (a crash, a failed write).
fn open_database(
    disk: &Disk,
    cache_bytes: usize,
) -> std::result::Result<Database, redb::DatabaseError> {
    Database::builder()
        .set_cache_size(cache_bytes)
        .create_with_backend(disk.clone())
}

fn io_error(context: &'static str, error: std::io::Error) -> StoreError {
    StoreError::Database {
        context,
        source: Box::new(redb::Error::Io(error)),
    }
}

/// The error of a store that is being dropped (no thread can still use it).
fn closed() -> StoreError {
    StoreError::corrupt("the store is closed".into())
}

/// Checks that an event read for `(log, seq)` is there: a damaged index row could
/// name another, well-formed event.
fn check_place(stored: &StoredEvent, log: Cid, seq: u64) -> Result<()> {
    if (stored.log, stored.seq) != (log, seq) {
        return Err(StoreError::corrupt(format!(
            "the index of log {log} names event {} at seq {seq}, which is at log {} seq {}",
            stored.cid, stored.log, stored.seq
        )));
    }
    Ok(())
}

/// A bad `log_events` row.
fn bad_log_row(log_no: u64) -> StoreError {
    StoreError::corrupt(format!("log number {log_no}: bad index row"))
}

/// What an error of redb's opening a file that starts as a redb file does says of it.
fn open_error(path: &Path, error: redb::DatabaseError) -> StoreError {
    use redb::{DatabaseError, StorageError};
    match error {
        DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.into() },
        DatabaseError::Storage(StorageError::Io(e))
            if e.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            io_error("opening", e)
        }
        DatabaseError::Storage(StorageError::Io(_)) => {
            StoreError::corrupt("the file ends before its last page (truncated?)".into())
        }
        other => StoreError::corrupt(format!("redb refuses to open it: {other}")),
    }
}

/// Stores blocks not stored yet.
fn insert_blocks(tx: &WriteTransaction, blocks: Vec<(Cid, &[u8])>) -> Result<()> {
    let mut table = write_table(tx, BLOCKS)?;
    for (cid, bytes) in blocks {
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
        .ok_or_else(|| StoreError::corrupt(format!("meta has no `{key}`")))
}

/// How a write transaction commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Commit {
    /// With `fsync` before the call returns (redb's `Durability::Immediate`).
    Durable,
    /// Without it (redb's `Durability::None`), durable with a later durable commit:
    /// for events received from their writers ([`Store::write_received`]).
    Deferred,
}

/// The events of one log, in seq order: see [`Store::log_events`].
pub struct LogEvents {
    /// The log.
    log: Cid,
    tables: Arc<ReadTables>,
    range: Option<redb::Range<'static, (u64, u64), &'static [u8]>>,
    /// The rest of the current index row, highest seq first.
    chunk: Vec<(u64, u64)>,
    guard: Arc<Guard>,
    /// Set once the store is found damaged: the iterator ends.
    done: bool,
}

impl fmt::Debug for LogEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogEvents").finish_non_exhaustive()
    }
}

/// An event read back with its fields: see [`LogEvents::decoded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadEvent {
    /// The event's CID, place and bytes.
    pub stored: StoredEvent,
    /// The event, when the store holds it decoded (always, for bytes that decoded as
    /// an event when they were written; `None` for other bytes).
    pub event: Option<Event>,
}

impl LogEvents {
    /// The next event number of the log.
    pub(super) fn next_number(&mut self) -> Option<Result<u64>> {
        Some(self.next_entry()?.map(|(_, number)| number))
    }

    /// The next event of the log, read, checked to be at its place.
    fn next_event(&mut self) -> Option<Result<ReadEvent>> {
        Some(self.next_entry()?.and_then(|(seq, number)| {
            let read = self.tables.read_event(number)?;
            check_place(&read.stored, self.log, seq)?;
            Ok(read)
        }))
    }

    /// The seq and number of the next event of the log.
    fn next_entry(&mut self) -> Option<Result<(u64, u64)>> {
        while self.chunk.is_empty() {
            let row = match self.range.as_mut()?.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(db_error("reading a log")(e))),
            };
            let (log, chunk_no) = row.0.value();
            let Some(seqs) = LogChunk::decode(row.1.value())
                .and_then(|chunk| Some(chunk.seqs(chunk_no)?.collect::<Vec<_>>()))
            else {
                self.range = None;
                return Some(Err(bad_log_row(log)));
            };
            self.chunk = seqs;
            self.chunk.reverse();
        }
        self.chunk.pop().map(Ok)
    }

    /// The same events with their fields, as the store holds them: no CBOR to parse
    /// (each event's bytes are still rebuilt and checked against its CID).
    pub fn decoded(self) -> impl Iterator<Item = Result<ReadEvent>> {
        let mut events = self;
        std::iter::from_fn(move || {
            let guard = Arc::clone(&events.guard);
            let mut done = events.done;
            let item = guard.step(&mut done, || events.next_event());
            events.done = done;
            item
        })
    }
}

impl Iterator for LogEvents {
    type Item = Result<StoredEvent>;

    fn next(&mut self) -> Option<Result<StoredEvent>> {
        let guard = Arc::clone(&self.guard);
        let mut done = self.done;
        let item = guard.step(&mut done, || {
            Some(self.next_event()?.map(|read| read.stored))
        });
        self.done = done;
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_events_carry_their_encodings_cid() {
        let key = SigningKey::from_seed(&[3; 32]);
        let body = UnsignedEvent {
            log: Cid::of(b"log"),
            seq: 0,
            op: crate::Op::new(amb_bytecode::Opcode::Create, amb_bytecode::Target::None)
                .expect("an op"),
            at: None,
            refs: vec![],
            payload: None,
        };
        let mut encoding = vec![1, 2, 3];
        let signed = DecodedEvent::sign(body.clone(), &key, &mut encoding);
        assert_eq!(encoding, Event::sign(body, &key).encode());
        assert_eq!(signed.cid(), Cid::of(&encoding));
        assert_eq!(DecodedEvent::decode(&encoding), Ok(signed.clone()));
        assert_eq!(signed.into_event().encode(), encoding);
        assert!(DecodedEvent::decode(&encoding[1..]).is_err());
    }

    /// Received events committed without `fsync` are read at once; a copy of the
    /// file made before the next durable commit (what a crash would leave) lacks
    /// them, one made after [`Store::flush`] holds them; and after
    /// [`MAX_DEFERRED_COMMITS`] deferred commits in a row the next is durable.
    #[test]
    fn received_events_are_durable_with_the_next_durable_commit() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("s.redb");
        let (log, program) = (Cid::of(b"log"), Cid::of(b"program"));
        let count = MAX_DEFERRED_COMMITS as usize + 3;
        let bytes: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8; 40]).collect();
        let event = |seq: usize| NewEvent {
            cid: Cid::of(&bytes[seq]),
            log,
            seq: seq as u64,
            refs: &[],
            bytes: &bytes[seq],
        };
        let copy_has = |name: &str, seq: usize| {
            let copy = dir.path().join(name);
            std::fs::copy(&path, &copy).expect("a copy");
            let store = Store::open(&copy).expect("the copy opens");
            store.has_event(Cid::of(&bytes[seq])).expect("read")
        };
        let store = Store::create(&path).expect("create");
        store.write_batch(program, &[event(0)]).expect("written");
        store
            .write_received(program, &[], &[event(1)], false)
            .expect("written");
        assert!(store.has_event(Cid::of(&bytes[1])).unwrap(), "read at once");
        assert!(
            copy_has("before.redb", 0),
            "the durable commit is in a copy"
        );
        assert!(!copy_has("deferred.redb", 1), "not durable yet");
        store.flush().expect("flushed");
        assert!(copy_has("flushed.redb", 1), "durable after flush");
        // A long run of deferred commits is made durable without a flush.
        for seq in 2..count {
            store
                .write_received(program, &[], &[event(seq)], false)
                .expect("written");
        }
        assert!(copy_has("bounded.redb", MAX_DEFERRED_COMMITS as usize + 2));
    }

    /// Changes a value of `meta` under the store's back, with redb alone.
    fn set_meta(path: &Path, key: &str, value: u64) {
        let db = Database::open(path).expect("open");
        let tx = db.begin_write().expect("tx");
        tx.open_table(META)
            .expect("meta")
            .insert(key, value)
            .expect("insert");
        tx.commit().expect("commit");
    }

    #[test]
    fn a_damaged_counter_is_refused_before_it_can_overwrite_events() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("s.redb");
        let (log, program) = (Cid::of(b"log"), Cid::of(b"program"));
        let bytes: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 40]).collect();
        let event = |seq: usize| NewEvent {
            cid: Cid::of(&bytes[seq]),
            log,
            seq: seq as u64,
            refs: &[],
            bytes: &bytes[seq],
        };
        let store = Store::create(&path).expect("create");
        store
            .write_batch(program, &[event(0), event(1)])
            .expect("written");
        drop(store);
        set_meta(&path, NEXT_EVENT_KEY, 1);
        let store = Store::open(&path).expect("open");
        let err = store
            .write_batch(program, &[event(2)])
            .expect_err("the counter is damaged");
        assert!(
            err.to_string().starts_with(&format!(
                "the store at {} is damaged: meta counts 1 events",
                path.display()
            )),
            "{err}"
        );
        assert!(matches!(
            store.event_count(),
            Err(StoreError::Damaged { .. })
        ));
        for (seq, want) in bytes.iter().enumerate().take(2) {
            let got = store
                .get_event(event(seq).cid)
                .expect("read")
                .expect("kept");
            assert_eq!(&got.bytes, want);
        }
        assert!(matches!(
            store.health(),
            Health::WriteFailed {
                disk_full: false,
                ..
            }
        ));
    }

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
        set_meta(&newer, FORMAT_KEY, 99);
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
}
