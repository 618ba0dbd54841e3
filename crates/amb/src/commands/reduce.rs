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
    #[command(flatten)]
    empty: source::EmptyArgs,
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

/// One effect as JSON: `{"service", "argument", "result", "args", "result_block",
/// "after_step"}` (`spec/system.md`).
fn effect_json(effect: &amb_vm::system::EffectRecord) -> Value {
    json!({
        "service": effect.name,
        "argument": effect.argument.as_ref().map_or(Value::Null, |a| a.to_json()),
        "result": effect.result.to_json(),
        "args": effect.args_cid.map(|c| c.to_string()),
        "result_block": effect.result_cid.to_string(),
        "after_step": effect.after_step,
    })
}

/// Reduces a program that calls system services (`spec/system.md`), over the home's
/// store; the program's root block scopes what it puts and gets.
fn reduce_with_services(
    ast: &amb_syntax::Ast,
    limits: Limits,
    global: &Global,
    on_step: &mut dyn FnMut(&Engine<'_>, &Step),
) -> anyhow::Result<(amb_syntax::Ast, Vec<amb_vm::system::EffectRecord>)> {
    amb_vm::system::check_reserved(ast)?;
    let store = global
        .home()
        .open_store()
        .context("the program calls system services, which use the node's store")?;
    let scope = amb_bytecode::compile(ast)
        .context("compiling")?
        .root
        .to_string();
    let services: std::sync::Arc<dyn amb_vm::system::SystemServices> = std::sync::Arc::new(
        amb_vm::system::LocalServices::new(std::sync::Arc::new(store)),
    );
    amb_vm::system::reduce_traced(
        ast,
        &services,
        &scope,
        limits,
        amb_vm::system::EffectLimits::default(),
        on_step,
    )
    .context("reducing")
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let (_, ast) = source::load_program(&args.file, &args.lang, &args.limits)?;
    args.empty.check(&args.file, &ast)?;
    let limits = Limits {
        max_steps: args.max_steps,
        max_memory_bytes: args.max_memory,
    };
    let mut out = std::io::stdout().lock();
    let mut trace = Vec::new();
    let mut trace_error = None;
    let mut steps = 0;
    let mut on_step = |engine: &Engine<'_>, step: &Step| {
        steps += 1;
        if !args.trace || trace_error.is_some() {
            return;
        }
        if global.json {
            trace.push(describe_json(engine, step));
        } else if let Err(e) = writeln!(out, "{}", describe(engine, step)) {
            trace_error = Some(e);
        }
    };
    let (final_term, effects) = if amb_vm::system::uses_services(&ast) {
        reduce_with_services(&ast, limits, global, &mut on_step)?
    } else {
        let mut engine = Engine::new(&ast, limits).context("starting the reduction")?;
        engine.run(&mut on_step).context("reducing")?;
        let mut final_term = engine.to_ast();
        final_term.canonicalize();
        (final_term, Vec::new())
    };
    if let Some(e) = trace_error {
        return Err(e).context("writing the trace");
    }
    let value = amb_vm::value_of(&final_term);
    let stuck = super::run::is_stuck(&final_term);
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
        if !effects.is_empty() {
            json["effects"] = effects.iter().map(effect_json).collect();
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
        for effect in &effects {
            let argument = effect
                .argument
                .as_ref()
                .map_or("(not a value)".into(), |a| a.to_string());
            writeln!(
                out,
                "effect: {} of {argument} = {}",
                effect.name, effect.result
            )?;
        }
        if stuck {
            writeln!(out, "stuck: capabilities remain that no step can use")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
