//! What a node needs from the store to pick up where it stopped
//! (`spec/network.md` §1, "A restart"): the programs the store holds, the
//! deployments whose walks it started, and the runs it knows to be over.
//!
//! - **Programs** are listed from `program_logs` (no table of their own): a program
//!   is held once a log is registered under it, which every recorded or received
//!   run does, and a node does for a program it holds before any event
//!   ([`Store::register_log`] of the root log). Listing jumps from one program number
//!   to the next, one B-tree lookup per program, however many logs each has.
//! - **Deployments** (`deployments`: program digest → bytes) are opaque to the
//!   store: the node keeps the canonical encoding of each deployment it walks.
//! - **Runs over** (`runs_over`: program digest → ()) are the runs a node learned
//!   to be over in a way the logs alone do not show (a walk at its end, a run that
//!   ends stuck, a peer that said so); a complete root log shows it by itself.
//!
//! Stores written before these tables existed read them as empty.

use amb_bytecode::Cid;
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};

use super::{
    PROGRAM_LOGS, Result, Store, db_error,
    tables::{ReadTables, write_table},
};

/// The deployments a node walks: program digest → the deployment's encoding.
pub(super) const DEPLOYMENTS: TableDefinition<[u8; 32], &[u8]> =
    TableDefinition::new("deployments");
/// Runs known to be over: program digest → ().
pub(super) const RUNS_OVER: TableDefinition<[u8; 32], ()> = TableDefinition::new("runs_over");

/// Opens a table of a read transaction; `None` when the store has never written it.
fn optional_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    read: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>> {
    match read.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(db_error("opening a table")(e)),
    }
}

impl Store {
    /// The programs the store holds (every program with a registered log), in order
    /// of first sight.
    pub fn programs(&self) -> Result<Vec<Cid>> {
        self.reading(|read| {
            let tables = ReadTables::open_read(read, &self.parsed)?;
            program_numbers(read)?
                .into_iter()
                .map(|number| tables.log_id(number))
                .collect()
        })
    }

    /// How many programs the store holds ([`Store::programs`]), without reading
    /// their ids.
    pub fn program_count(&self) -> Result<u64> {
        self.reading(|read| Ok(program_numbers(read)?.len() as u64))
    }

    /// Keeps the encoding of the deployment of `program` that this node walks (a
    /// deployment kept already is replaced: it is the same).
    pub fn put_deployment(&self, program: Cid, deployment: &[u8]) -> Result<()> {
        self.put_row(DEPLOYMENTS, program, deployment)
    }

    /// The deployment of `program` kept, if there is one.
    pub fn deployment(&self, program: Cid) -> Result<Option<Vec<u8>>> {
        self.get_row(DEPLOYMENTS, program, |bytes| bytes.to_vec())
    }

    /// Every deployment kept, by program.
    pub fn deployments(&self) -> Result<Vec<(Cid, Vec<u8>)>> {
        self.reading(|read| {
            let Some(table) = optional_table(read, DEPLOYMENTS)? else {
                return Ok(Vec::new());
            };
            let mut deployments = Vec::with_capacity(table.len().unwrap_or(0) as usize);
            for row in table.iter().map_err(db_error("reading deployments"))? {
                let (program, bytes) = row.map_err(db_error("reading deployments"))?;
                deployments.push((Cid::from_digest(program.value()), bytes.value().to_vec()));
            }
            Ok(deployments)
        })
    }

    /// Notes that the run of `program` is over (idempotent).
    pub fn mark_run_over(&self, program: Cid) -> Result<()> {
        self.put_row(RUNS_OVER, program, ())
    }

    /// Whether [`Store::mark_run_over`] noted the run of `program` as over.
    pub fn is_run_over(&self, program: Cid) -> Result<bool> {
        Ok(self.get_row(RUNS_OVER, program, |()| ())?.is_some())
    }

    /// Reads one row keyed by a program, through `read`.
    fn get_row<V: redb::Value + 'static, T>(
        &self,
        table: TableDefinition<[u8; 32], V>,
        program: Cid,
        read: impl FnOnce(V::SelfType<'_>) -> T,
    ) -> Result<Option<T>> {
        self.reading(|tx| {
            let Some(table) = optional_table(tx, table)? else {
                return Ok(None);
            };
            Ok(table
                .get(program.digest())
                .map_err(db_error("reading a program's row"))?
                .map(|row| read(row.value())))
        })
    }

    /// Writes one row keyed by a program, durably, in a transaction of its own.
    fn put_row<V: redb::Value + 'static>(
        &self,
        table: TableDefinition<[u8; 32], V>,
        program: Cid,
        value: V::SelfType<'_>,
    ) -> Result<()> {
        self.writing("writing a program's row", |tx, _| {
            write_table(tx, table)?
                .insert(program.digest(), value)
                .map_err(db_error("writing a program's row"))?;
            Ok(())
        })
    }
}

/// The numbers of the programs with a registered log, in order: one range lookup
/// per program, each starting past the last one's rows.
fn program_numbers(read: &ReadTransaction) -> Result<Vec<u64>> {
    let Some(table) = optional_table(read, PROGRAM_LOGS)? else {
        return Ok(Vec::new());
    };
    let mut numbers = Vec::new();
    let mut from = 0u64;
    loop {
        let first = table
            .range((from, 0)..)
            .map_err(db_error("reading program logs"))?
            .next()
            .transpose()
            .map_err(db_error("reading program logs"))?;
        let Some((key, _)) = first else {
            return Ok(numbers);
        };
        let program = key.value().0;
        numbers.push(program);
        match program.checked_add(1) {
            Some(next) => from = next,
            None => return Ok(numbers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_deployments_and_runs_over_are_listed_and_kept() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("s.redb");
        let store = Store::create(&path).expect("create");
        assert_eq!(store.programs().expect("programs"), Vec::<Cid>::new());
        assert_eq!(store.deployments().expect("deployments"), Vec::new());
        let (p, q) = (Cid::of(b"program p"), Cid::of(b"program q"));
        // Several logs under p, one under q: each program once, in order.
        store.register_log(p, p).expect("register");
        for i in 0..300u32 {
            store
                .register_log(p, Cid::of(&i.to_le_bytes()))
                .expect("register");
        }
        store.register_log(q, q).expect("register");
        assert_eq!(store.programs().expect("programs"), vec![p, q]);
        assert_eq!(store.program_count().expect("count"), 2);
        store.put_deployment(q, b"a deployment").expect("put");
        assert_eq!(store.deployment(p).expect("deployment"), None);
        assert!(!store.is_run_over(p).expect("over"));
        store.mark_run_over(p).expect("mark");
        store.mark_run_over(p).expect("again");
        drop(store);
        // All of it survives a reopening.
        let store = Store::open(&path).expect("open");
        assert_eq!(store.programs().expect("programs"), vec![p, q]);
        assert_eq!(
            store.deployments().expect("deployments"),
            vec![(q, b"a deployment".to_vec())]
        );
        assert_eq!(
            store.deployment(q).expect("deployment"),
            Some(b"a deployment".to_vec())
        );
        assert!(store.is_run_over(p).expect("over"));
        assert!(!store.is_run_over(q).expect("over"));
    }
}
