//! `amb reduce FILE [--json] [--trace]`: the normal form, its value and the steps.

use std::{io::Write, path::PathBuf, process::ExitCode};

use amb_engine::{Engine, Limits, Rule, Step};
use anyhow::Context;

use crate::source::{self, LimitArgs};

/// Arguments of `amb reduce`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    file: PathBuf,
    /// Print exactly `{"normal_form", "value", "steps", "stuck"}` as JSON.
    #[arg(long)]
    json: bool,
    /// Print every step (to standard error with --json).
    #[arg(long)]
    trace: bool,
    /// Most reduction steps; reaching it is an error.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_steps)]
    max_steps: u64,
    /// Memory budget of the engine, in bytes; exceeding it is an error.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_memory_bytes)]
    max_memory: usize,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    lang: source::LangArgs,
}

/// One step as a line of text.
fn describe(engine: &Engine<'_>, step: &Step) -> String {
    let amb = |id: amb_engine::AmbId| {
        format!(
            "{}#{}",
            engine.ambient_name(id).unwrap_or("<root>"),
            id.index()
        )
    };
    let cap = |id: amb_engine::CapId| {
        let kind = engine.capability_kind(id).keyword();
        match engine.capability_target(id) {
            Some(target) => format!("{kind} {target} #{}", id.index()),
            None => format!("{kind} #{}", id.index()),
        }
    };
    let what = match step.rule {
        Rule::In => format!("{} enters {}", amb(step.subject), amb(step.object)),
        Rule::Out => format!("{} leaves {}", amb(step.subject), amb(step.object)),
        Rule::Open => format!("{} opens {}", amb(step.subject), amb(step.object)),
    };
    format!(
        "step {}: {what}  ({}, {})",
        engine.steps(),
        cap(step.cap),
        cap(step.co_cap)
    )
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (_, ast) = source::load_program(&args.file, &args.lang, &args.limits)?;
    let limits = Limits {
        max_steps: args.max_steps,
        max_memory_bytes: args.max_memory,
    };
    let mut engine = Engine::new(&ast, limits).context("starting the reduction")?;
    let stderr = std::io::stderr();
    let stdout = std::io::stdout();
    let mut trace_out: Box<dyn Write> = if args.json {
        Box::new(stderr.lock())
    } else {
        Box::new(stdout.lock())
    };
    let mut trace_error = None;
    let steps = engine
        .run(|engine, step| {
            if args.trace && trace_error.is_none() {
                if let Err(e) = writeln!(trace_out, "{}", describe(engine, step)) {
                    trace_error = Some(e);
                }
            }
        })
        .context("reducing")?;
    drop(trace_out);
    if let Some(e) = trace_error {
        return Err(e).context("writing the trace");
    }
    let mut final_term = engine.to_ast();
    final_term.canonicalize();
    let normal_form = amb_syntax::to_compact_string(&final_term);
    let value = amb_vm::value_of(&final_term);
    let stuck = engine.is_stuck();
    if args.json {
        let json = serde_json::json!({
            "normal_form": normal_form,
            "value": value.as_ref().map_or(serde_json::Value::Null, |v| v.to_json()),
            "steps": steps,
            "stuck": stuck,
        });
        println!("{json}");
    } else {
        println!("normal form: {normal_form}");
        match &value {
            Ok(v) => println!("value: {}", v.to_json()),
            Err(reason) => println!("value: none ({reason})"),
        }
        println!("steps: {steps}");
        if stuck {
            println!("stuck: capabilities remain that no step can use");
        }
    }
    Ok(ExitCode::SUCCESS)
}
