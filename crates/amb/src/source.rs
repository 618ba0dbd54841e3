//! Reading program text (a file or `-` for stdin) and parsing it, with syntax errors
//! rendered against the source.

use std::{fmt, io::Read, path::Path};

use amb_syntax::{Ast, Limits};
use anyhow::Context;
use clap::Args;

/// An error already rendered for people (a syntax error with its caret).
#[derive(Debug)]
pub(crate) struct Reported(pub(crate) String);

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// Parser limits, settable on every command that reads a program.
#[derive(Debug, Args, Clone)]
pub(crate) struct LimitArgs {
    /// Largest program accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_input_bytes)]
    max_input_bytes: usize,
    /// Deepest nesting of ambients, prefixes and groups.
    #[arg(long, value_name = "LEVELS", default_value_t = Limits::default().max_depth)]
    max_depth: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_input_bytes: self.max_input_bytes,
            max_depth: self.max_depth,
            ..Limits::default()
        }
    }
}

/// The text of a program file (`-` reads standard input).
pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Parses a program's text; a syntax error comes back rendered with its place.
pub(crate) fn parse(path: &Path, text: &[u8], limits: &LimitArgs) -> anyhow::Result<Ast> {
    let name = if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    amb_syntax::parse_with_limits(text, &limits.limits())
        .map_err(|e| Reported(e.render(text, &name)).into())
}

/// Reads and parses a program file.
pub(crate) fn load(path: &Path, limits: &LimitArgs) -> anyhow::Result<(Vec<u8>, Ast)> {
    let text = read(path)?;
    let ast = parse(path, &text, limits)?;
    Ok((text, ast))
}
