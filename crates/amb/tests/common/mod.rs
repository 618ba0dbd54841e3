//! Helpers shared by the CLI's integration tests (each test binary uses a part).
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

pub(crate) mod node;
mod output;
pub(crate) use output::{failure, json_of, output_within, success, text};

/// A file of the shared corpus (`../shared/corpus` beside the repository); panics,
/// never skips, when it is missing.
pub(crate) fn corpus(path: &str) -> PathBuf {
    let full = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(path);
    assert!(
        full.is_file(),
        "the shared corpus must be at ../shared/corpus: {} is missing",
        full.display()
    );
    full
}
