//! Assertions on the output of an `amb` run.

use std::process::Output;

/// An output stream as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit 0; returns stdout.
pub(crate) fn success(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Asserts exit 1 (a failure the command reported) without a panic; returns stderr.
pub(crate) fn failure(output: &Output) -> String {
    let err = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit 1\nstdout: {}\nstderr: {err}",
        text(&output.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    err
}

/// Asserts exit 0; returns stdout as one JSON value.
pub(crate) fn json_of(output: &Output) -> serde_json::Value {
    let out = success(output);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}
