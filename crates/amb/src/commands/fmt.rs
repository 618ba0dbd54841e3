//! `amb fmt FILE [--pretty] [--check]`: the canonical form of a program.

use std::{
    io::{BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
};

use crate::source::{self, LimitArgs};

/// Arguments of `amb fmt`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    file: PathBuf,
    /// Print an indented, multi-line form for people instead of the canonical line.
    #[arg(long)]
    pretty: bool,
    /// Print nothing; exit 1 when the file is not exactly its canonical form.
    #[arg(long, conflicts_with = "pretty")]
    check: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (text, mut ast) = source::load(&args.file, &args.limits)?;
    ast.canonicalize();
    if args.check {
        let mut canonical = Vec::with_capacity(text.len());
        amb_syntax::write_compact(&ast, &mut canonical)?;
        canonical.push(b'\n');
        if text == canonical || text == canonical[..canonical.len() - 1] {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "{}: not in canonical form (run `amb fmt` to print it)",
            args.file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    if args.pretty {
        amb_syntax::write_pretty(&ast, &mut out)?;
    } else {
        amb_syntax::write_compact(&ast, &mut out)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
