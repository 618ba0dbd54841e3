//! The CID index: which event number has a given digest, as sorted runs.
//!
//! Digests are random, so a B-tree keyed by them takes each insert on a random page,
//! and a commit copies every page it touched: a batch of 4,096 events rewrote most of
//! a large index, and an insert cost microseconds. So the index is a set of sorted
//! **runs**, each written whole: a batch's entries, sorted, become a new run; when the
//! newest run is at least half as large as the one before it, the two are merged
//! (read, merged in memory, written again), so there are about `log2(events / 4,096)`
//! runs and every entry is rewritten that many times, in page-sized rows.
//!
//! | table | key → value |
//! |---|---|
//! | `digest_runs` | run id → entries |
//! | `digest_rows` | (run id, first prefix of the row) → entries: `(8-byte prefix, event number)` pairs, 16 bytes each, sorted |
//!
//! A row holds about 250 entries and never splits entries of one prefix, so a lookup
//! reads one row per run: the last row that starts at or before the prefix. A prefix
//! is the first 8 bytes of a digest: the caller checks each candidate's CID.

use redb::{ReadableTable, Table};

use super::{Result, StoreError, db_error};

/// Entries in a row, at most (unless one prefix has more).
const ROW_ENTRIES: usize = 250;

/// Bytes of an entry: the prefix and the event number, big-endian.
const ENTRY: usize = 16;

/// Event numbers whose digest starts with `prefix` (candidates: check their CIDs).
pub(super) fn candidates(
    runs: &impl ReadableTable<u64, u64>,
    rows: &impl ReadableTable<(u64, u64), &'static [u8]>,
    prefix: u64,
) -> Result<Vec<u64>> {
    let mut found = Vec::new();
    for run in runs.iter().map_err(db_error("reading the event index"))? {
        let id = run.map_err(db_error("reading the event index"))?.0.value();
        let row = rows
            .range((id, 0)..=(id, prefix))
            .map_err(db_error("reading the event index"))?
            .next_back()
            .transpose()
            .map_err(db_error("reading the event index"))?;
        if let Some((_, row)) = row {
            let row = row.value();
            let entries = row.len() / ENTRY;
            // A row out of order (a changed prefix) would hide entries from the search.
            let sorted = (1..entries).all(|i| entry(row, i - 1).0 <= entry(row, i).0);
            if row.len() % ENTRY != 0 || !sorted {
                return Err(StoreError::corrupt(format!(
                    "the event index: a row of run {id} is not sorted entries"
                )));
            }
            let at = |i: usize| entry(row, i);
            // The first entry with this prefix, then every one that has it.
            let mut i = partition(entries, |i| at(i).0 < prefix);
            while i < entries && at(i).0 == prefix {
                found.push(at(i).1);
                i += 1;
            }
        }
    }
    Ok(found)
}

/// Adds the entries of a batch as a new run (sorting `entries`), then merges the
/// newest runs while the newest is at least half the size of the one before it.
pub(super) fn add_run(
    runs: &mut Table<'_, u64, u64>,
    rows: &mut Table<'_, (u64, u64), &'static [u8]>,
    entries: &mut [(u64, u64)],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    entries.sort_unstable();
    let mut sizes: Vec<(u64, u64)> = Vec::new();
    for run in runs.iter().map_err(db_error("reading the event index"))? {
        let (id, size) = run.map_err(db_error("reading the event index"))?;
        sizes.push((id.value(), size.value()));
    }
    let mut id = match sizes.last() {
        Some((last, _)) => last.checked_add(1).ok_or_else(|| {
            StoreError::corrupt("the event index: its last run's id is the largest".into())
        })?,
        None => 0,
    };
    // The batch's entries merged with the runs taken so far, once one is.
    let mut merged: Option<Vec<(u64, u64)>> = None;
    while let Some(&(older, size)) = sizes.last() {
        let newest = merged.as_deref().unwrap_or(entries);
        if (newest.len() as u64) * 2 < size {
            break;
        }
        sizes.pop();
        merged = Some(merge(&read_run(rows, older)?, newest));
        remove_run(runs, rows, older)?;
        id = older;
    }
    write_run(runs, rows, id, merged.as_deref().unwrap_or(entries))
}

/// Two sorted runs as one sorted run.
fn merge(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if b[j] < a[i] {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn entry(row: &[u8], i: usize) -> (u64, u64) {
    let at = &row[i * ENTRY..(i + 1) * ENTRY];
    (
        u64::from_be_bytes(at[..8].try_into().expect("8 bytes")),
        u64::from_be_bytes(at[8..].try_into().expect("8 bytes")),
    )
}

/// The first index in `0..len` where `before` is false (it is true, then false).
fn partition(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn read_run(rows: &Table<'_, (u64, u64), &'static [u8]>, id: u64) -> Result<Vec<(u64, u64)>> {
    let mut entries = Vec::new();
    for row in rows
        .range((id, 0)..=(id, u64::MAX))
        .map_err(db_error("reading the event index"))?
    {
        let (_, row) = row.map_err(db_error("reading the event index"))?;
        let row = row.value();
        entries.extend((0..row.len() / ENTRY).map(|i| entry(row, i)));
    }
    Ok(entries)
}

fn remove_run(
    runs: &mut Table<'_, u64, u64>,
    rows: &mut Table<'_, (u64, u64), &'static [u8]>,
    id: u64,
) -> Result<()> {
    let mut keys = Vec::new();
    for row in rows
        .range((id, 0)..=(id, u64::MAX))
        .map_err(db_error("reading the event index"))?
    {
        keys.push(row.map_err(db_error("reading the event index"))?.0.value());
    }
    for key in keys {
        rows.remove(key)
            .map_err(db_error("writing the event index"))?;
    }
    runs.remove(id)
        .map_err(db_error("writing the event index"))?;
    Ok(())
}

/// Writes sorted entries as run `id`, in rows that do not split a prefix.
fn write_run(
    runs: &mut Table<'_, u64, u64>,
    rows: &mut Table<'_, (u64, u64), &'static [u8]>,
    id: u64,
    entries: &[(u64, u64)],
) -> Result<()> {
    let mut row = Vec::with_capacity((ROW_ENTRIES + 8) * ENTRY);
    let mut start = 0;
    while start < entries.len() {
        let mut end = (start + ROW_ENTRIES).min(entries.len());
        while end < entries.len() && entries[end].0 == entries[end - 1].0 {
            end += 1;
        }
        row.clear();
        for (prefix, number) in &entries[start..end] {
            row.extend_from_slice(&prefix.to_be_bytes());
            row.extend_from_slice(&number.to_be_bytes());
        }
        // The first row of a run starts at prefix 0, so every prefix has a row.
        let first = if start == 0 { 0 } else { entries[start].0 };
        rows.insert((id, first), &row[..])
            .map_err(db_error("writing the event index"))?;
        start = end;
    }
    runs.insert(id, entries.len() as u64)
        .map_err(db_error("writing the event index"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::{Database, ReadableTableMetadata, TableDefinition};

    use super::*;

    const RUNS: TableDefinition<u64, u64> = TableDefinition::new("runs");
    const ROWS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("rows");

    #[test]
    fn merging_keeps_every_entry_in_order() {
        let a = [(1, 5), (3, 1), (3, 2), (9, 0)];
        let b = [(0, 7), (3, 1), (3, 3), (10, 1)];
        let merged = merge(&a, &b);
        let mut expected = [a, b].concat();
        expected.sort_unstable();
        assert_eq!(merged, expected);
        assert_eq!(merge(&[], &b), b);
        assert_eq!(merge(&a, &[]), a);
    }

    #[test]
    fn lookups_find_every_entry_across_merged_runs() {
        let dir = tempfile::tempdir().expect("a directory");
        let db = Database::create(dir.path().join("index.redb")).expect("a database");
        let mut all = Vec::new();
        let mut number = 0u64;
        for batch in 0..40u64 {
            let size = [3, 700, 40, 1, 300][batch as usize % 5];
            let mut entries: Vec<(u64, u64)> = (0..size)
                .map(|_| {
                    number += 1;
                    // Few distinct prefixes in some batches: equal prefixes must not
                    // be split between rows.
                    let prefix = if batch % 7 == 0 {
                        number % 3
                    } else {
                        number.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    };
                    (prefix, number)
                })
                .collect();
            all.extend(entries.iter().copied());
            let tx = db.begin_write().expect("a transaction");
            {
                let mut runs = tx.open_table(RUNS).expect("runs");
                let mut rows = tx.open_table(ROWS).expect("rows");
                add_run(&mut runs, &mut rows, &mut entries).expect("added");
            }
            tx.commit().expect("committed");
        }
        let read = db.begin_read().expect("a read");
        let runs = read.open_table(RUNS).expect("runs");
        let rows = read.open_table(ROWS).expect("rows");
        assert!(runs.len().expect("len") <= 8, "runs are merged");
        for &(prefix, number) in &all {
            let found = candidates(&runs, &rows, prefix).expect("found");
            assert!(found.contains(&number), "{prefix} {number}");
            assert!(found.len() <= all.len());
        }
        assert!(candidates(&runs, &rows, 12345).expect("none").is_empty());
    }
}
