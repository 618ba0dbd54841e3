//! `amb reduce FILE [--json] [--trace] [--quiet]`: the normal form, its value and the
//! steps; nothing is stored (`amb run` records a run).

use std::{io::Write, path::PathBuf, process::ExitCode};

use amb_engine::{Engine, Limits, Rule, Step};
use anyhow::Context;

use serde_json::{Value, json};

use crate::{
    options::Global,
    source::{self, LimitArgs},
};

/// The smallest memory budget accepted: below it no program's reduction can be
/// held (the engine's tables, the program and the process itself).
const MIN_MEMORY: usize = 1 << 20;

/// Arguments of `amb reduce` (with `--json`: `{"normal_form", "value", "steps",
/// "stuck"}`, and `"trace"` with `--trace`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    file: PathBuf,
    /// Print every step (with --json: as the `trace` array, one object a step).
    #[arg(long)]
    trace: bool,
    /// Leave out the normal form, which can be large.
    #[arg(long, short)]
    quiet: bool,
    /// Most reduction steps; reaching it is an error.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_steps)]
    max_steps: u64,
    /// Memory budget of the engine, in bytes (at least 1 MiB); exceeding it is an
    /// error.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_memory_bytes,
          value_parser = memory_budget)]
    max_memory: usize,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    lang: source::LangArgs,
}

/// A memory budget that can be met: at least [`MIN_MEMORY`].
fn memory_budget(text: &str) -> Result<usize, String> {
    let bytes: usize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of bytes"))?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "{bytes} bytes cannot be met: a reduction needs at least {MIN_MEMORY} bytes (1 MiB)"
        ));
    }
    Ok(bytes)
}

/// One step as JSON: `{"step", "rule", "subject", "object", "cap", "co_cap"}`.
fn describe_json(engine: &Engine<'_>, step: &Step) -> Value {
    let amb = |id: amb_engine::AmbId| engine.ambient_name(id).unwrap_or("<root>").to_string();
    let rule = match step.rule {
        Rule::In => "in",
        Rule::Out => "out",
        Rule::Open => "open",
    };
    json!({
        "step": engine.steps(),
        "rule": rule,
        "subject": amb(step.subject),
        "object": amb(step.object),
        "text": describe(engine, step),
    })
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

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let (_, ast) = source::load_program(&args.file, &args.lang, &args.limits)?;
    let limits = Limits {
        max_steps: args.max_steps,
        max_memory_bytes: args.max_memory,
    };
    let mut engine = Engine::new(&ast, limits).context("starting the reduction")?;
    let mut out = std::io::stdout().lock();
    let mut trace = Vec::new();
    let mut trace_error = None;
    let steps = engine
        .run(|engine, step| {
            if !args.trace || trace_error.is_some() {
                return;
            }
            if global.json {
                trace.push(describe_json(engine, step));
            } else if let Err(e) = writeln!(out, "{}", describe(engine, step)) {
                trace_error = Some(e);
            }
        })
        .context("reducing")?;
    if let Some(e) = trace_error {
        return Err(e).context("writing the trace");
    }
    let mut final_term = engine.to_ast();
    final_term.canonicalize();
    let value = amb_vm::value_of(&final_term);
    let stuck = engine.is_stuck();
    if global.json {
        let mut json = json!({
            "normal_form": amb_syntax::to_compact_string(&final_term),
            "value": value.as_ref().map_or(Value::Null, |v| v.to_json()),
            "steps": steps,
            "stuck": stuck,
        });
        if let (true, Some(fields)) = (args.quiet, json.as_object_mut()) {
            fields.shift_remove("normal_form");
        }
        if args.trace {
            json["trace"] = Value::Array(trace);
        }
        writeln!(out, "{json}")?;
    } else {
        if !args.quiet {
            write!(out, "normal form: ")?;
            amb_syntax::write_compact(&final_term, &mut out)?;
            writeln!(out)?;
        }
        match &value {
            Ok(v) => writeln!(out, "value: {}", v.to_json())?,
            Err(reason) => writeln!(out, "value: none ({reason})")?,
        }
        writeln!(out, "steps: {steps}")?;
        if stuck {
            writeln!(out, "stuck: capabilities remain that no step can use")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
