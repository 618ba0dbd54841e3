//! `amb compile FILE [--out DIR] [--explain] [--canonical]`: bytecode and its CID.

use std::{path::PathBuf, process::ExitCode};

use amb_bytecode::{BlockLimits, Program};
use anyhow::Context;

use serde_json::json;

use crate::{
    options::Global,
    source::{self, LimitArgs},
};

/// Arguments of `amb compile` (with `--json`: `{"cid", "blocks"}`, with `"explain"`
/// for --explain; `{"roam"}` for `--emit roam`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    file: PathBuf,
    /// Write every block to DIR, one file per block named by its CID.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the instruction DAG of every block readably.
    #[arg(long)]
    explain: bool,
    /// Compile the canonical form, so programs that differ only in the order of
    /// parallel parts get one CID.
    #[arg(long)]
    canonical: bool,
    /// Largest block, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = BlockLimits::default().max_block_bytes)]
    max_block_bytes: usize,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    lang: source::LangArgs,
    #[command(flatten)]
    empty: source::EmptyArgs,
    /// Print the program in another form instead of compiling it: `roam`, the
    /// generated ROAM (pretty); `map`, for a JavaScript file, `{"roam", "map"}` with
    /// the compact generated text and, for its ambients, the byte offset of the
    /// name, the JavaScript line and column and what the ambient stands for.
    #[arg(long, value_name = "FORM", value_parser = ["roam", "map"])]
    emit: Option<String>,
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    if args.emit.as_deref() == Some("map") {
        let (roam, map) = source::compile_js(&args.file)?;
        let marks: Vec<serde_json::Value> = map
            .marks
            .iter()
            .map(|m| {
                serde_json::json!({"offset": m.offset, "line": m.pos.line, "column": m.pos.column, "what": m.what})
            })
            .collect();
        println!("{}", serde_json::json!({"roam": roam, "map": marks}));
        return Ok(ExitCode::SUCCESS);
    }
    let (_, mut ast) = source::load_program(&args.file, &args.lang, &args.limits)?;
    if args.emit.is_some() {
        let roam = amb_syntax::to_pretty_string(&ast);
        match global.json {
            true => println!("{}", json!({ "roam": roam })),
            false => print!("{roam}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    args.empty.check(&args.file, &ast)?;
    if args.canonical {
        ast.canonicalize();
    }
    source::check_block_sizes(&ast, args.max_block_bytes)?;
    let limits = BlockLimits {
        max_block_bytes: args.max_block_bytes,
        ..BlockLimits::default()
    };
    let compiled = amb_bytecode::compile_with_limits(&ast, &limits)
        .with_context(|| format!("compiling {}", args.file.display()))?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (cid, bytes) in &compiled.blocks {
            let path = dir.join(cid.to_string());
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let explained = match args.explain {
        true => Some(Program::from_compiled(&compiled)?.explain()),
        false => None,
    };
    if global.json {
        let mut json = json!({ "cid": compiled.root.to_string(), "blocks": compiled.blocks.len() });
        if let Some(explained) = explained {
            json["explain"] = json!(explained);
        }
        println!("{json}");
    } else if let Some(explained) = explained {
        print!("{explained}");
    } else {
        println!("{}", compiled.root);
    }
    Ok(ExitCode::SUCCESS)
}
