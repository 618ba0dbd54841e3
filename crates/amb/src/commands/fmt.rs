//! `amb fmt FILE… [--pretty] [--check | --write]`: the canonical form of a program,
//! comments kept (each before the part it precedes, or at the end of its body: they
//! move with their part when parts are sorted).
//!
//! Without a flag the form is printed; `--write` puts it in place of each file
//! (only files that change are written); `--check` prints nothing and exits 1 when
//! a file is in neither form `amb fmt` prints: the canonical line or, with comments
//! or `--pretty`, the indented form.

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use serde_json::json;

use crate::{
    commands::json_error::{Invalid, ensure_valid},
    options::Global,
    source::{self, LimitArgs},
};

/// Arguments of `amb fmt`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program files (`-` for standard input; printing takes one).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The indented, multi-line form for people instead of the canonical line.
    #[arg(long)]
    pretty: bool,
    /// Print nothing; exit 1 when a file is not already formatted (the canonical line
    /// and the `--pretty` form are both accepted).
    #[arg(long, conflicts_with = "write")]
    check: bool,
    /// Format each file in place (only those that change are written).
    #[arg(long)]
    write: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The formatted text of a program: compact (with a final line break) or pretty.
fn formatted(ast: &amb_syntax::Ast, pretty: bool, size: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size + size / 8 + 1);
    write_formatted(ast, pretty, &mut out)?;
    Ok(out)
}

/// Writes [`formatted`]'s text to `out`.
fn write_formatted(
    ast: &amb_syntax::Ast,
    pretty: bool,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    if pretty {
        amb_syntax::write_pretty_with_comments(ast, out)
    } else {
        amb_syntax::write_compact_with_comments(ast, out)?;
        out.write_all(b"\n")
    }
}

/// Whether `text` is already in a form `amb fmt` prints.
fn is_formatted(text: &[u8], ast: &amb_syntax::Ast) -> anyhow::Result<bool> {
    let compact = formatted(ast, false, text.len())?;
    if text == compact || text == &compact[..compact.len() - 1] {
        return Ok(true);
    }
    Ok(text == formatted(ast, true, text.len())?)
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let js = source::LangArgs { lang: None };
    for file in &args.files {
        ensure_valid!(
            js.of(file) == source::Lang::Roam,
            "{} is JavaScript: `amb fmt` formats ROAM programs only (`amb compile \
             --emit roam {}` prints the ROAM it compiles to)",
            file.display(),
            file.display()
        );
    }
    if args.check || args.write {
        return check_or_write(args, global);
    }
    let [file] = args.files.as_slice() else {
        return Err(Invalid(
            "printing takes one file (`--write` or `--check` take several)".into(),
        )
        .into());
    };
    let (text, mut ast) = source::load(file, &args.limits)?;
    ast.canonicalize();
    let mut stdout = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if global.json {
        let out = formatted(&ast, args.pretty, text.len())?;
        let text = String::from_utf8(out).context("the formatted text is UTF-8")?;
        writeln!(stdout, "{}", json!({ "text": text }))?;
    } else {
        // Streamed: no buffer the size of the program (its pages cost as much to
        // map as the printing itself).
        drop(text);
        write_formatted(&ast, args.pretty, &mut stdout)?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--check` and `--write` over every file.
fn check_or_write(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let mut results = Vec::new();
    let mut unformatted = 0;
    for file in &args.files {
        let (text, mut ast) = source::load(file, &args.limits)?;
        ast.canonicalize();
        let done = is_formatted(&text, &ast)?;
        if args.write && !done {
            write_in_place(file, &formatted(&ast, args.pretty, text.len())?)?;
            if !global.json {
                eprintln!("formatted {}", file.display());
            }
        } else if args.check && !done {
            unformatted += 1;
            if !global.json {
                eprintln!(
                    "{}: not formatted (`amb fmt --write` formats it in place)",
                    file.display()
                );
            }
        }
        results.push(json!({ "file": file.display().to_string(), "formatted": done }));
    }
    if global.json {
        println!("{}", json!({ "files": results }));
    }
    Ok(match unformatted {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// Replaces a file's contents: written beside it, then renamed over it, so an
/// interrupted write leaves the old text.
fn write_in_place(file: &Path, text: &[u8]) -> anyhow::Result<()> {
    ensure_valid!(
        file != Path::new("-"),
        "--write needs a file, not standard input"
    );
    let mut temporary = file.as_os_str().to_owned();
    temporary.push(".amb-fmt.tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, file).with_context(|| format!("replacing {}", file.display()))
}
