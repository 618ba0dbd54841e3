//! The file under the store's database: redb's own file backend, shared by the
//! databases a store opens in turn (it reopens its database after a failed write,
//! `mod.rs`), so the file is opened and locked once, from the store's opening to its
//! drop; the switch that stops every write to a damaged store (`Drop for Store`:
//! closing a database writes to it); and the switch that makes the disk look full,
//! for tests of that failure.
//!
//! While the disk looks full, every write, resize and sync of the file fails with
//! `ErrorKind::StorageFull`, as a full disk fails them; reads go on. Two ways to turn
//! it on:
//!
//! - in the process: [`Store::set_disk_full`](super::Store::set_disk_full);
//! - from outside (a test of an `amb node` process): start the process with
//!   [`DISK_FULL_WHILE_ENV`] naming a file; the disk looks full while that file
//!   exists (checked at each write, only when the variable is set).

use std::{
    fs::File,
    io,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use redb::{StorageBackend, backends::FileBackend};

/// The environment variable that names a file whose existence makes every store of
/// the process look as if its disk were full (see the module documentation).
pub const DISK_FULL_WHILE_ENV: &str = "AMB_STORE_DISK_FULL_WHILE";

/// The store's file, as redb's storage backend. Clones share the file and its lock.
#[derive(Clone, Debug)]
pub(super) struct Disk {
    file: Arc<FileBackend>,
    switches: Arc<Switches>,
}

/// When writes fail.
#[derive(Debug)]
struct Switches {
    /// The disk looks full.
    full: AtomicBool,
    /// The disk looks full while this file exists.
    full_while: Option<PathBuf>,
    /// The store is damaged: nothing is written to it any more.
    frozen: AtomicBool,
}

impl Disk {
    /// Locks `file` (redb's lock: one process at a time) and wraps it.
    pub(super) fn new(file: File) -> Result<Disk, redb::DatabaseError> {
        Ok(Disk {
            file: Arc::new(FileBackend::new(file)?),
            switches: Arc::new(Switches {
                full: AtomicBool::new(false),
                full_while: std::env::var_os(DISK_FULL_WHILE_ENV).map(PathBuf::from),
                frozen: AtomicBool::new(false),
            }),
        })
    }

    /// Makes the disk look full, or not.
    pub(super) fn set_full(&self, on: bool) {
        self.switches.full.store(on, Ordering::Relaxed);
    }

    /// Refuses every later write, resize and sync of the file, for good.
    pub(super) fn freeze(&self) {
        self.switches.frozen.store(true, Ordering::Release);
    }

    fn check_room(&self) -> io::Result<()> {
        let switches = &self.switches;
        if switches.frozen.load(Ordering::Acquire) {
            return Err(io::Error::other("the store is damaged: it is not written"));
        }
        if switches.full.load(Ordering::Relaxed)
            || switches
                .full_while
                .as_ref()
                .is_some_and(|path| path.exists())
        {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (the store's disk-full switch is on)",
            ));
        }
        Ok(())
    }
}

impl StorageBackend for Disk {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.file.read(offset, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_room()?;
        self.file.set_len(len)
    }

    fn sync_data(&self, eventual: bool) -> io::Result<()> {
        self.check_room()?;
        self.file.sync_data(eventual)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_room()?;
        self.file.write(offset, data)
    }
}
