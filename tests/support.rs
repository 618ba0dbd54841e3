//! Helpers shared by the cross-crate tests: where the shared corpus is and what its
//! `INDEX.tsv` says, and the independent BLAKE3, base32 and CID of
//! [`reference_blake3`] that recompute the spec's test vectors.
//!
//! The corpus lives beside the repository, in `../shared/corpus` (CI has it there).
//! Tests read it in place and fail, never skip, when it is missing.

use std::path::{Path, PathBuf};

pub mod reference_blake3;

/// The corpus directory (`../shared/corpus` from the repository root), or the
/// directory named by `AMB_CORPUS`.
pub fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AMB_CORPUS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

/// What the index says one corpus file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A ROAM program.
    Roam,
    /// A program of the NBA calculus: must be refused.
    Nba,
    /// A misprint: must be refused.
    SyntaxError,
    /// Uses `rec X.`: must be refused.
    NeedsRec,
}

/// One row of `INDEX.tsv`.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Path relative to the corpus directory.
    pub file: String,
    /// Its kind.
    pub kind: Kind,
    /// `confluent`, `nonconfluent`, or empty.
    pub confluence: String,
    /// Every normal form, canonical, sorted (ROAM files only).
    pub normal_forms: Vec<String>,
}

impl Entry {
    /// The file's full path.
    pub fn path(&self) -> PathBuf {
        corpus_dir().join(&self.file)
    }

    /// The file's bytes.
    pub fn read(&self) -> Vec<u8> {
        std::fs::read(self.path())
            .unwrap_or_else(|e| panic!("corpus file {} unreadable: {e}", self.file))
    }
}

/// Every row of the corpus index.
///
/// # Panics
/// When the corpus or its index is missing: the tests must fail, not skip.
pub fn index() -> Vec<Entry> {
    let path = corpus_dir().join("INDEX.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the shared corpus index {} is missing ({e}); it must be at ../shared/corpus beside the repository",
            path.display()
        )
    });
    let entries: Vec<Entry> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let kind = match cols.get(1).copied() {
                Some("roam") => Kind::Roam,
                Some("nba") => Kind::Nba,
                Some("syntax-error") => Kind::SyntaxError,
                Some("needs-rec") => Kind::NeedsRec,
                other => panic!("unknown kind {other:?} in INDEX.tsv line {line:?}"),
            };
            let normal_forms = cols
                .get(3)
                .filter(|s| !s.is_empty())
                .map(|s| s.split(" ; ").map(str::to_string).collect())
                .unwrap_or_default();
            Entry {
                file: cols[0].to_string(),
                kind,
                confluence: cols.get(2).unwrap_or(&"").to_string(),
                normal_forms,
            }
        })
        .collect();
    assert!(
        entries.len() >= 100,
        "INDEX.tsv lists only {} files",
        entries.len()
    );
    entries
}
