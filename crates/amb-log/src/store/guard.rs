//! The store's boundary against a damaged file: every public read and write runs
//! through [`Guard::run`], which catches a panic inside redb (or inside the store's own
//! code) and turns it into [`StoreError::Damaged`], and turns the store's own findings
//! of bad records and redb's `Corrupted` errors into the same error, with the path.
//!
//! After a caught panic the store is **damaged for the rest of the process**: redb may
//! have been stopped halfway through an update of its in-memory state (a cache, a lock
//! it then poisons), so every later operation through the same guard is refused with
//! the first panic's message, and the store never writes to the file again (not even
//! to close it: see `Drop for Store`).
//!
//! A caught panic does not print: a panic hook, installed once per process, stays
//! silent while the panicking thread is inside a guard and keeps the message and its
//! place for the error; other panics go to the hook that was installed before.

use std::{
    any::Any,
    cell::{Cell, RefCell},
    panic::{self, AssertUnwindSafe, PanicHookInfo},
    path::{Path, PathBuf},
    sync::{Once, OnceLock},
};

use super::{Result, StoreError};

/// The damage state of one store, shared by the store and every view of it
/// (snapshots, iterators).
#[derive(Debug)]
pub(super) struct Guard {
    path: PathBuf,
    /// What broke, once a panic was caught.
    damaged: OnceLock<String>,
}

thread_local! {
    /// How many guards this thread is inside (guards nest: a store read opens a snapshot).
    static INSIDE: Cell<u32> = const { Cell::new(0) };
    /// The message and place of the last panic caught on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

impl Guard {
    pub(super) fn new(path: &Path) -> Guard {
        Guard {
            path: path.into(),
            damaged: OnceLock::new(),
        }
    }

    /// What broke, if the store is damaged.
    pub(super) fn damage(&self) -> Option<&str> {
        self.damaged.get().map(String::as_str)
    }

    /// Runs `f`; a panic in it marks the store damaged. Refuses at once if it is.
    pub(super) fn catch<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        if let Some(detail) = self.damage() {
            return Err(self.damaged(detail.to_string()));
        }
        match catch_quietly(f) {
            Ok(value) => Ok(value),
            Err(detail) => {
                let detail = self.damaged.get_or_init(|| detail);
                Err(self.damaged(detail.clone()))
            }
        }
    }

    /// [`Guard::catch`] for an operation that can fail, its error given the store's
    /// path where it says the store is damaged ([`Guard::classify`]).
    pub(super) fn run<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.catch(f)?.map_err(|e| self.classify(e))
    }

    /// One step of an iterator over the store, through the guard. The iterator ends
    /// once `done` is set, which happens when the store is found damaged, so a caller
    /// that goes on after an error does not loop.
    pub(super) fn step<T>(
        &self,
        done: &mut bool,
        next: impl FnOnce() -> Option<Result<T>>,
    ) -> Option<Result<T>> {
        if *done {
            return None;
        }
        let item = match self.catch(next) {
            Ok(item) => item?.map_err(|e| self.classify(e)),
            Err(e) => Err(e),
        };
        *done = item.is_err() && self.damage().is_some();
        Some(item)
    }

    /// The store's file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The error as the store's caller sees it: a bad record found by the store, or a
    /// page redb finds corrupt, is [`StoreError::Damaged`] with this store's path.
    pub(super) fn classify(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::Damaged { path, detail } if path.as_os_str().is_empty() => {
                self.damaged(detail)
            }
            StoreError::Database { context, source } => match *source {
                redb::Error::Corrupted(detail) => self.damaged(format!("{context}: {detail}")),
                redb::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.damaged(format!("{context}: the file ends before a page it needs"))
                }
                redb::Error::LockPoisoned(at) => {
                    self.damaged(format!("{context}: a lock of redb was poisoned at {at}"))
                }
                source => StoreError::Database {
                    context,
                    source: Box::new(source),
                },
            },
            other => other,
        }
    }

    fn damaged(&self, detail: String) -> StoreError {
        StoreError::Damaged {
            path: self.path.clone(),
            detail,
        }
    }
}

/// Runs `f`, catching a panic without printing it; the error is the panic's message
/// and place.
pub(super) fn catch_quietly<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if INSIDE.with(Cell::get) > 0 {
                CAUGHT.with(|caught| *caught.borrow_mut() = Some(describe(info)));
            } else {
                previous(info);
            }
        }));
    });
    INSIDE.with(|inside| inside.set(inside.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    INSIDE.with(|inside| inside.set(inside.get() - 1));
    result.map_err(|payload| {
        CAUGHT
            .with(|caught| caught.borrow_mut().take())
            .unwrap_or_else(|| format!("an internal check failed: {}", message(payload.as_ref())))
    })
}

/// A panic's message and place, as the error says it.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let what = message(info.payload());
    match info.location() {
        Some(at) => format!(
            "an internal check failed at {}:{}: {what}",
            short_path(at.file()),
            at.line()
        ),
        None => format!("an internal check failed: {what}"),
    }
}

fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// A source path from the crate's directory on (`redb-2.6.4/src/…`), not the
/// registry's absolute path.
fn short_path(file: &str) -> &str {
    file.rfind("/src/")
        .and_then(|src| file[..src].rfind('/').map(|start| &file[start + 1..]))
        .unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_damages_the_store_for_good() {
        let guard = Guard::new(Path::new("/tmp/x.redb"));
        assert_eq!(guard.run(|| Ok(3)).expect("runs"), 3);
        let err = guard
            .run::<()>(|| {
                let v: Vec<u8> = Vec::new();
                let i = v.len() + 2;
                assert!(v.get(i).is_some(), "index {i} out of range");
                Ok(())
            })
            .expect_err("panics");
        let text = err.to_string();
        assert!(
            text.starts_with("the store at /tmp/x.redb is damaged: an internal check failed at"),
            "{text}"
        );
        assert!(text.contains("index 2 out of range"), "{text}");
        assert!(text.contains("guard.rs"), "{text}");
        // For good: even what would work is refused, with the first panic's message.
        let again = guard.run(|| Ok(1)).expect_err("damaged");
        assert_eq!(again.to_string(), text);
        assert!(guard.damage().is_some());
    }

    #[test]
    fn bad_records_and_corrupt_pages_are_damage_with_the_path() {
        let guard = Guard::new(Path::new("s.redb"));
        let err = guard
            .run::<()>(|| Err(StoreError::corrupt("event number 3: bad".into())))
            .expect_err("corrupt");
        assert_eq!(
            err.to_string(),
            "the store at s.redb is damaged: event number 3: bad"
        );
        let err = guard.classify(StoreError::Database {
            context: "reading a log",
            source: Box::new(redb::Error::Corrupted("bad page".into())),
        });
        assert!(
            matches!(&err, StoreError::Damaged { detail, .. } if detail == "reading a log: bad page"),
            "{err}"
        );
        // Not sticky: only a panic is.
        assert!(guard.damage().is_none());
        assert_eq!(
            short_path("/x/registry/redb-2.6.4/src/db.rs"),
            "redb-2.6.4/src/db.rs"
        );
    }
}
