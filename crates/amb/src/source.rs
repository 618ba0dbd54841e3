//! Reading program text (a file or `-` for stdin) and parsing it, with syntax errors
//! rendered against the source; JavaScript files are compiled to ROAM first
//! (`load_program`, `--lang`).

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

/// The language of a program file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// ROAM text.
    Roam,
    /// The JavaScript subset of `spec/js.md`, compiled to ROAM.
    Js,
}

/// `--lang`, on the commands that read a program file.
#[derive(Debug, Args, Clone)]
pub(crate) struct LangArgs {
    /// The language of FILE (default: `js` for a `.js` or `.mjs` file, else `roam`).
    #[arg(long, value_enum, value_name = "LANG")]
    pub(crate) lang: Option<Lang>,
}

impl LangArgs {
    /// The language of `path`: `--lang` if given, else by extension.
    pub(crate) fn of(&self, path: &Path) -> Lang {
        self.lang
            .unwrap_or_else(|| match path.extension().and_then(|e| e.to_str()) {
                Some("js" | "mjs") => Lang::Js,
                _ => Lang::Roam,
            })
    }
}

/// Reads a program file in its language and returns the ROAM program: the text
/// (for JavaScript, the generated program) and its AST. A JavaScript refusal is
/// rendered against the JavaScript source.
pub(crate) fn load_program(
    path: &Path,
    lang: &LangArgs,
    limits: &LimitArgs,
) -> anyhow::Result<(Vec<u8>, Ast)> {
    if lang.of(path) == Lang::Roam {
        return load(path, limits);
    }
    let (roam, _) = compile_js(path)?;
    let ast = parse(path, roam.as_bytes(), limits)?;
    Ok((roam.into_bytes(), ast))
}

/// Compiles a JavaScript file; the generated program and its source map.
pub(crate) fn compile_js(path: &Path) -> anyhow::Result<(String, amb_js::SourceMap)> {
    let text = read(path)?;
    let name = if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let source =
        String::from_utf8(text).map_err(|_| anyhow::anyhow!("{name} is not UTF-8 text"))?;
    let compiled = amb_js::compile(&source).map_err(|e| Reported(e.render(&source, &name)))?;
    Ok((compiled.roam, compiled.map))
}
