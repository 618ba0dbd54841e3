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
//! the CID (`entry.rs`, `tables.rs`).
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
mod entry;
mod fast_hash;
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
};

use amb_bytecode::Cid;
use entry::FLAG_PREV;
use redb::{
    Database, ReadTransaction, ReadableTable, TableDefinition, TableError, TableHandle,
    WriteTransaction,
};
use rows::{CHUNK, ChildChunk, LogChunk};
use tables::{ReadTables, Segments, WriteTables, read_table, write_table};
use writer::{Incoming, WriteState};

pub use snapshot::{ProgramEvents, Snapshot};

use crate::{Event, EventError, Manifest, SigningKey, UnsignedEvent};

/// The store's format version, kept in `meta` under `format`.
pub const STORE_FORMAT: u64 = 2;

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
    db: Database,
    path: PathBuf,
    /// What the writer keeps between batches (`writer.rs`); also the write lock.
    write_state: std::sync::Mutex<WriteState>,
    /// Segments parsed by readers (`tables.rs`).
    parsed: Segments,
}

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
                    write_table(&tx, MANIFESTS)?;
                }
                tx.commit().map_err(db_error("creating the tables"))?;
            }
        }
        Ok(Store {
            write_state: std::sync::Mutex::default(),
            parsed: Segments::default(),
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
        let blocks: Vec<(Cid, &[u8])> = blocks.into_iter().collect();
        let (others, slices) = Store::sort_blocks(&blocks)?;
        self.write_incoming(None, others, slices, std::iter::empty())?;
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
        Snapshot::open(&self.read()?, &self.parsed)
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
        let slices = slices
            .iter()
            .map(|manifest| (manifest.cid(), Cow::Borrowed(manifest)))
            .collect();
        self.write_incoming(
            Some(program),
            Vec::new(),
            slices,
            events
                .iter()
                .map(|event| Incoming::Decoded(event.cid, &event.event)),
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
        others: Blocks<'_>,
        slices: Slices<'_>,
        events: impl Iterator<Item = Incoming<'e>>,
    ) -> Result<Written> {
        let mut state = self.lock_writer();
        let tx = self.begin_write()?;
        insert_blocks(&tx, others)?;
        let written = {
            let mut writer = state.writer(&tx)?;
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
                writer.put_manifest(*cid, manifest)?;
            }
            writer.finish()?;
            written
        };
        tx.commit().map_err(db_error("committing a batch"))?;
        state.committed();
        Ok(written)
    }

    /// Records `log` as a log of `program` (idempotent).
    pub fn register_log(&self, program: Cid, log: Cid) -> Result<()> {
        let mut state = self.lock_writer();
        let tx = self.begin_write()?;
        {
            let mut writer = state.writer(&tx)?;
            let program_no = writer.log_number(program)?;
            let log_no = writer.log_number(log)?;
            writer.register(program_no, log_no)?;
            writer.finish()?;
        }
        tx.commit().map_err(db_error("registering a log"))?;
        state.committed();
        Ok(())
    }

    /// The writer's state, which is also the lock that makes this process's writes
    /// one at a time.
    fn lock_writer(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.write_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An event by CID.
    pub fn get_event(&self, cid: Cid) -> Result<Option<StoredEvent>> {
        let tables = ReadTables::open_read(&self.read()?, &self.parsed)?;
        tables
            .find_below(cid, u64::MAX)?
            .map(|number| tables.stored_event(number))
            .transpose()
    }

    /// Whether an event is stored.
    pub fn has_event(&self, cid: Cid) -> Result<bool> {
        Ok(ReadTables::open_read(&self.read()?, &self.parsed)?
            .find_below(cid, u64::MAX)?
            .is_some())
    }

    /// The events of a log in seq order (a snapshot: events written after this call
    /// are not seen).
    pub fn log_events(&self, log: Cid) -> Result<LogEvents> {
        self.snapshot()?.log_events(log)
    }

    /// The seq and CID of the highest event of a log.
    pub fn log_head(&self, log: Cid) -> Result<Option<(u64, Cid)>> {
        let tables = ReadTables::open_read(&self.read()?, &self.parsed)?;
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
            Some((seq, number)) => Ok(Some((seq, tables.read(number)?.cid))),
            None => Ok(None),
        }
    }

    /// The events that refer to an event, in the order they were written.
    pub fn children(&self, cid: Cid) -> Result<Vec<Cid>> {
        let read = self.read()?;
        let tables = ReadTables::open_read(&read, &self.parsed)?;
        let Some(parent) = tables.find_below(cid, u64::MAX)? else {
            return Ok(Vec::new());
        };
        let children = read_table(&read, CHILDREN)?;
        let mut numbers: Vec<u64> = match children
            .get(parent / CHUNK)
            .map_err(db_error("reading children"))?
        {
            Some(row) => ChildChunk::decode(parent / CHUNK, row.value())
                .ok_or_else(|| StoreError::Corrupt(format!("children of event number {parent}")))?
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
        numbers
            .into_iter()
            .map(|n| tables.read(n).map(|r| r.cid))
            .collect()
    }

    /// The logs registered under a program, in order of first sight.
    pub fn program_logs(&self, program: Cid) -> Result<Vec<Cid>> {
        self.snapshot()?.program_logs(program)
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
        .ok_or_else(|| StoreError::Corrupt(format!("meta has no `{key}`")))
}

/// The events of one log, in seq order: see [`Store::log_events`].
pub struct LogEvents {
    tables: std::sync::Arc<ReadTables>,
    range: Option<redb::Range<'static, (u64, u64), &'static [u8]>>,
    /// The rest of the current index row, highest seq first.
    chunk: Vec<(u64, u64)>,
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
        self.chunk.pop().map(|(_, number)| Ok(number))
    }

    /// The same events with their fields, as the store holds them: no CBOR to parse
    /// (each event's bytes are still rebuilt and checked against its CID).
    pub fn decoded(self) -> impl Iterator<Item = Result<ReadEvent>> {
        let mut events = self;
        std::iter::from_fn(move || {
            let number = match events.next_number()? {
                Ok(number) => number,
                Err(e) => return Some(Err(e)),
            };
            Some(events.tables.read_event(number))
        })
    }
}

impl Iterator for LogEvents {
    type Item = Result<StoredEvent>;

    fn next(&mut self) -> Option<Result<StoredEvent>> {
        Some(
            self.next_number()?
                .and_then(|number| self.tables.stored_event(number)),
        )
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
}
