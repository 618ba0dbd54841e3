//! A consistent view of the store for many reads: one read transaction and its
//! tables, opened once. Verifying a program reads every event and manifest it has;
//! each [`Store`](super::Store) read on its own opens a transaction and its tables.

use std::{fmt, sync::Arc};

use amb_bytecode::Cid;
use redb::{ReadOnlyTable, ReadTransaction};

use super::{
    BLOCKS, LogEvents, MANIFESTS, PROGRAM_LOGS, ReadEvent, Result, StoreError, db_error,
    entry::EventRef,
    guard::Guard,
    manifests,
    tables::{ReadTables, Segments, read_table},
};
use crate::Manifest;

/// A read-only view of the store as it was when [`Store::snapshot`](super::Store::snapshot)
/// was called. Clones share it.
#[derive(Clone)]
pub struct Snapshot(Arc<Opened>);

/// The tables of a snapshot.
struct Opened {
    guard: Arc<Guard>,
    tables: Arc<ReadTables>,
    blocks: ReadOnlyTable<[u8; 32], &'static [u8]>,
    manifests: ReadOnlyTable<u64, &'static [u8]>,
    program_logs: ReadOnlyTable<(u64, u64), ()>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    pub(super) fn open(
        read: &ReadTransaction,
        parsed: &Segments,
        guard: &Arc<Guard>,
    ) -> Result<Snapshot> {
        Ok(Snapshot(Arc::new(Opened {
            guard: Arc::clone(guard),
            tables: Arc::new(ReadTables::open_read(read, parsed)?),
            blocks: read_table(read, BLOCKS)?,
            manifests: read_table(read, MANIFESTS)?,
            program_logs: read_table(read, PROGRAM_LOGS)?,
        })))
    }

    /// A block's bytes (a slice manifest's rebuilt from its compact form), checked
    /// against its CID.
    pub fn get_block(&self, cid: Cid) -> Result<Option<Vec<u8>>> {
        self.0.guard.run(|| {
            if let Some(bytes) = self.stored_block(cid)? {
                return Ok(Some(bytes));
            }
            Ok(self.slice_manifest(cid)?.map(|manifest| manifest.encode()))
        })
    }

    /// Whether a block is stored.
    pub fn has_block(&self, cid: Cid) -> Result<bool> {
        self.0.guard.run(|| {
            let value = self
                .0
                .blocks
                .get(cid.digest())
                .map_err(db_error("reading a block"))?;
            Ok(value.is_some() || self.stored_manifest(cid)?.is_some())
        })
    }

    /// A manifest, decoded: a slice manifest from its compact form, any other from its
    /// bytes (`None` if they are not a manifest), both checked against the CID.
    /// Signatures are not checked.
    pub fn get_manifest(&self, cid: Cid) -> Result<Option<Manifest>> {
        self.0.guard.run(|| match self.stored_block(cid)? {
            Some(bytes) => Ok(Manifest::decode(&bytes).ok()),
            None => self.slice_manifest(cid),
        })
    }

    /// The bytes stored in `blocks` under `cid`, checked against it.
    fn stored_block(&self, cid: Cid) -> Result<Option<Vec<u8>>> {
        let value = self
            .0
            .blocks
            .get(cid.digest())
            .map_err(db_error("reading a block"))?;
        let Some(value) = value else {
            return Ok(None);
        };
        let bytes = value.value();
        let actual = Cid::of(bytes);
        if actual != cid {
            return Err(StoreError::corrupt(format!(
                "the block stored as {cid} hashes to {actual}"
            )));
        }
        Ok(Some(bytes.to_vec()))
    }

    /// The slice manifest stored compact for log `cid`, its CID checked.
    fn slice_manifest(&self, cid: Cid) -> Result<Option<Manifest>> {
        let Some(stored) = self.stored_manifest(cid)? else {
            return Ok(None);
        };
        let parent = match stored.parent {
            EventRef::Number(n) => self.0.tables.cid_of(n)?,
            EventRef::Cid(cid) => cid,
        };
        let manifest = stored.manifest(parent);
        let actual = manifest.cid();
        if actual != cid {
            return Err(StoreError::corrupt(format!(
                "the manifest stored for log {cid} hashes to {actual}"
            )));
        }
        Ok(Some(manifest))
    }

    /// The compact slice manifest of log `cid`, if it is stored.
    fn stored_manifest(&self, cid: Cid) -> Result<Option<manifests::Stored>> {
        let Some(log) = self.0.tables.log_number(cid)? else {
            return Ok(None);
        };
        let Some(row) = self
            .0
            .manifests
            .get(log)
            .map_err(db_error("reading a manifest"))?
        else {
            return Ok(None);
        };
        manifests::parse(row.value())
            .map(Some)
            .ok_or_else(|| StoreError::corrupt(format!("the manifest of log number {log}")))
    }

    /// The events of a log in seq order.
    pub fn log_events(&self, log: Cid) -> Result<LogEvents> {
        self.0.guard.run(|| self.open_log_events(log))
    }

    fn open_log_events(&self, log: Cid) -> Result<LogEvents> {
        let range = match self.0.tables.log_number(log)? {
            Some(log_no) => Some(
                self.0
                    .tables
                    .log_events
                    .range((log_no, 0)..=(log_no, u64::MAX))
                    .map_err(db_error("reading a log"))?,
            ),
            None => None,
        };
        Ok(LogEvents {
            log,
            tables: Arc::clone(&self.0.tables),
            range,
            chunk: Vec::new(),
            guard: Arc::clone(&self.0.guard),
            done: false,
        })
    }

    /// The logs registered under a program, in order of first sight.
    pub fn program_logs(&self, program: Cid) -> Result<Vec<Cid>> {
        self.0.guard.run(|| self.read_program_logs(program))
    }

    fn read_program_logs(&self, program: Cid) -> Result<Vec<Cid>> {
        let Some(program_no) = self.0.tables.log_number(program)? else {
            return Ok(Vec::new());
        };
        let mut logs = Vec::new();
        for row in self
            .0
            .program_logs
            .range((program_no, 0)..=(program_no, u64::MAX))
            .map_err(db_error("reading program logs"))?
        {
            let (key, _) = row.map_err(db_error("reading program logs"))?;
            logs.push(self.0.tables.log_id(key.value().1)?);
        }
        Ok(logs)
    }
}

/// The events of a program's logs in the order they were written: see
/// [`Snapshot::program_events`].
pub struct ProgramEvents {
    tables: Arc<ReadTables>,
    numbers: std::vec::IntoIter<u64>,
    guard: Arc<Guard>,
    /// Set once the store is found damaged: the iterator ends.
    done: bool,
}

impl fmt::Debug for ProgramEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramEvents").finish_non_exhaustive()
    }
}

impl ProgramEvents {
    /// How many events are left.
    pub fn remaining(&self) -> usize {
        self.numbers.len()
    }
}

impl Iterator for ProgramEvents {
    type Item = Result<ReadEvent>;

    fn next(&mut self) -> Option<Result<ReadEvent>> {
        let guard = Arc::clone(&self.guard);
        let mut done = self.done;
        let item = guard.step(&mut done, || {
            let number = self.numbers.next()?;
            Some(self.tables.read_event(number))
        });
        self.done = done;
        item
    }
}

impl Snapshot {
    /// Every event of the logs of `program`, with its fields (see
    /// [`LogEvents::decoded`]), in the order they were written: each segment is read
    /// once, and the events an event names are mostly in the segments just read.
    pub fn program_events(&self, program: Cid) -> Result<ProgramEvents> {
        self.0.guard.run(|| {
            let mut numbers = Vec::new();
            for log in self.read_program_logs(program)? {
                let mut events = self.open_log_events(log)?;
                while let Some(number) = events.next_number() {
                    numbers.push(number?);
                }
            }
            numbers.sort_unstable();
            numbers.dedup();
            Ok(ProgramEvents {
                tables: Arc::clone(&self.0.tables),
                numbers: numbers.into_iter(),
                guard: Arc::clone(&self.0.guard),
                done: false,
            })
        })
    }
}
