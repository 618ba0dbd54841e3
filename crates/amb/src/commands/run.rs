//! `amb run FILE [--json]`: compile, deploy to a new address, reduce, and record every
//! step as signed events in the node's store. `amb run --resume ADDRESS` finishes an
//! interrupted run at its existing address: the program is read back from the stored
//! manifest and blocks, reduced again by the same deterministic schedule, and every
//! event is signed again to the same bytes, so what was committed is kept, what was
//! lost is written, and nothing forks.

use std::{path::PathBuf, process::ExitCode, time::SystemTime};

use amb_bytecode::BlockLimits;
use amb_engine::Limits;
use amb_log::{Manifest, Store};
use amb_vm::{
    plan::{Hosting, Plan},
    system::{EffectHost, EffectLimits, LocalServices, SystemServices},
};
use anyhow::Context;
use serde_json::json;

use crate::{
    commands::verify,
    options::Global,
    source::{self, LimitArgs},
};

/// Arguments of `amb run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    #[arg(required_unless_present = "resume", conflicts_with = "resume")]
    file: Option<PathBuf>,
    /// Continue an interrupted run at its address, `/amb/<cid>` (or a unique prefix).
    #[arg(long, value_name = "ADDRESS")]
    resume: Option<String>,
    /// Verify every recorded event right after the run, as `amb verify` does.
    #[arg(long)]
    verify: bool,
    /// Leave out the normal form, which can be large (the value, address and counts
    /// are still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Run an empty (or comment-only) program instead of refusing it.
    #[arg(long)]
    allow_empty: bool,
    /// Most reduction steps; reaching it is an error.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_steps)]
    max_steps: u64,
    /// Wall-clock time each system effect may take, in milliseconds
    /// (`effect_timeout_ms`, spec/system.md §4); one not answered in time brings in
    /// the failure value `timeout`.
    #[arg(long, value_name = "MS", default_value_t = EffectLimits::default().timeout.as_millis() as u64)]
    effect_timeout_ms: u64,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    lang: source::LangArgs,
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    // A file is read and checked before the home is created: a refused program
    // leaves nothing behind.
    let checked = match &args.file {
        Some(file) => {
            let (_, ast) = source::load_program(file, &args.lang, &args.limits)?;
            source::refuse_empty(file, &ast, args.allow_empty)?;
            source::check_block_sizes(&ast, BlockLimits::default().max_block_bytes)?;
            Some(ast)
        }
        None => None,
    };
    let loaded = global.home().load_or_create()?;
    let store = std::sync::Arc::new(
        Store::open_or_create(&loaded.store_path)
            .with_context(|| format!("opening the store {}", loaded.store_path.display()))?,
    );
    let (ast, manifest) = match (&args.file, &args.resume, checked) {
        (Some(file), _, Some(ast)) => {
            let compiled = amb_bytecode::compile(&ast)
                .with_context(|| format!("compiling {}", file.display()))?;
            let time = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let name = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            let manifest = Manifest::new_root(
                compiled.root,
                name,
                vec![loaded.key.public_key()],
                &loaded.key,
                Manifest::random_nonce(),
                time,
            );
            (ast, manifest)
        }
        (None, Some(address), _) => resume_program(&store, address)?,
        _ => {
            return Err(crate::commands::json_error::Invalid(
                "give a program file or --resume ADDRESS".into(),
            )
            .into());
        }
    };
    let (compiled, map) =
        amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).context("compiling")?;
    anyhow::ensure!(
        compiled.root == manifest.program(),
        "the program read back does not compile to the manifest's program"
    );
    let limits = Limits {
        max_steps: args.max_steps,
        ..Limits::default()
    };
    let effects = EffectLimits {
        timeout: std::time::Duration::from_millis(args.effect_timeout_ms),
        ..EffectLimits::default()
    };
    let plan = plan_run(&ast, &compiled, &map, limits, &store, &manifest, effects)?;
    // The program is committed before its address is said, so a run interrupted at any
    // point after it can be resumed by its address.
    amb_vm::record::store_program(&compiled, &manifest, &store).context("storing the program")?;
    eprintln!("recording /amb/{}", manifest.cid());
    let progress = crate::progress::reporter();
    let recorded =
        amb_vm::record::record_events(&plan, &manifest, &loaded.key, &store, progress.as_ref())
            .context("recording the run")?;
    let verified = match args.verify {
        true => Some(verify::verified_json(
            recorded.program,
            &verify::verified(&store, recorded.program)?,
        )),
        false => None,
    };
    let normal_form = amb_syntax::to_compact_string(&plan.final_term);
    let value = amb_vm::value_of(&plan.final_term);
    let stuck = is_stuck(&plan.final_term);
    let address = format!("/amb/{}", recorded.program);
    if global.json {
        let mut json = json!({
            "address": address,
            "normal_form": normal_form,
            "value": value.as_ref().map_or(serde_json::Value::Null, |v| v.to_json()),
            "steps": plan.steps,
            "events": recorded.events,
            "stuck": stuck,
        });
        if let (true, Some(fields)) = (args.quiet, json.as_object_mut()) {
            fields.shift_remove("normal_form");
        }
        if let Some(verified) = &verified {
            json["verified"] = json!(verified["complete"] == true);
        }
        println!("{json}");
    } else {
        println!("address: {address}");
        if !args.quiet {
            println!("normal form: {normal_form}");
        }
        match &value {
            Ok(v) => println!("value: {}", v.to_json()),
            Err(reason) => println!("value: none ({reason})"),
        }
        println!("steps: {}", plan.steps);
        println!(
            "events: {} in {} logs",
            recorded.events,
            recorded.log_cids.len()
        );
        if stuck {
            println!("stuck: capabilities remain that no step can use");
        }
        if let Some(verified) = &verified {
            println!(
                "verified: {} events in {} logs, {} steps replayed",
                verified["events"], verified["logs"], verified["steps"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Plans the run; a program holding service ambients (`spec/system.md`) is planned
/// with the node's services over its store, scoped by the program's address, and
/// each effect performed once, here, and recorded as an `effect` event.
fn plan_run(
    ast: &amb_syntax::Ast,
    compiled: &amb_bytecode::CompiledProgram,
    map: &amb_bytecode::NodeMap,
    limits: Limits,
    store: &std::sync::Arc<Store>,
    manifest: &Manifest,
    effect_limits: EffectLimits,
) -> anyhow::Result<Plan> {
    if !amb_vm::system::uses_services(ast) {
        return amb_vm::plan::plan(ast, compiled, map, limits).context("reducing");
    }
    let services: std::sync::Arc<dyn SystemServices> = std::sync::Arc::new(
        // A get of a block the store lacks waits for it as long as an effect may
        // take, then brings in `timeout` (spec/system.md §5).
        LocalServices::new(std::sync::Arc::clone(store)).waiting_for_blocks(effect_limits.timeout),
    );
    let scope = manifest.cid().to_string();
    let host = EffectHost {
        services: &services,
        scope: &scope,
        limits: effect_limits,
    };
    amb_vm::plan::plan_with_effects(ast, compiled, map, limits, &Hosting::default(), Some(host))
        .context("reducing")
}

/// The program and manifest of a stored run, for `--resume` (loaded as a node
/// loads a deployment's program: `amb_vm::stored`).
fn resume_program(store: &Store, address: &str) -> anyhow::Result<(amb_syntax::Ast, Manifest)> {
    let program = crate::address::resolve(store, address)?;
    let stored = amb_vm::stored::load_program(store, program)?;
    Ok((stored.ast, stored.manifest))
}

/// Whether a normal form is stuck: capabilities remain in it that no step can use.
pub(crate) fn is_stuck(normal_form: &amb_syntax::Ast) -> bool {
    (0..normal_form.len()).any(|index| {
        let node = normal_form.node(normal_form.node_id(index));
        matches!(node.kind(), amb_syntax::NodeKind::Cap(_))
    })
}
