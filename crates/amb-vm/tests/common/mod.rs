//! Helpers shared by the VM's integration tests.

/// A file of the shared corpus (`../shared/corpus` beside the repository); panics,
/// never skips, when the corpus is missing.
pub(crate) fn corpus_file(path: &str) -> String {
    let full = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| {
        panic!(
            "the shared corpus must be at ../shared/corpus: {}: {e}",
            full.display()
        )
    })
}
