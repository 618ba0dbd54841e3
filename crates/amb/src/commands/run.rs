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
use anyhow::Context;

use crate::{
    home::HomeArgs,
    source::{self, LimitArgs},
};

/// Arguments of `amb run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    #[arg(required_unless_present = "resume", conflicts_with = "resume")]
    file: Option<PathBuf>,
    /// Continue an interrupted run at its address, `/amb/<cid>`.
    #[arg(long, value_name = "ADDRESS")]
    resume: Option<String>,
    /// Print `{"address", "normal_form", "value", "steps", "events"}` as JSON.
    #[arg(long)]
    json: bool,
    /// Most reduction steps; reaching it is an error.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_steps)]
    max_steps: u64,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    lang: source::LangArgs,
    #[command(flatten)]
    home: HomeArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let loaded = args.home.load()?;
    let store = Store::open_or_create(&loaded.store_path)
        .with_context(|| format!("opening the store {}", loaded.store_path.display()))?;
    let (ast, manifest) = match (&args.file, &args.resume) {
        (Some(file), _) => {
            let (_, ast) = source::load_program(file, &args.lang, &args.limits)?;
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
        (None, Some(address)) => resume_program(&store, address)?,
        (None, None) => anyhow::bail!("give a program file or --resume ADDRESS"),
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
    let plan = amb_vm::plan::plan(&ast, &compiled, &map, limits).context("reducing")?;
    // The program is committed before its address is said, so a run interrupted at any
    // point after it can be resumed by its address.
    amb_vm::record::store_program(&compiled, &manifest, &store).context("storing the program")?;
    eprintln!("recording /amb/{}", manifest.cid());
    let progress = crate::progress::reporter();
    let recorded =
        amb_vm::record::record_events(&plan, &manifest, &loaded.key, &store, progress.as_ref())
            .context("recording the run")?;
    let normal_form = amb_syntax::to_compact_string(&plan.final_term);
    let value = amb_vm::value_of(&plan.final_term);
    let address = format!("/amb/{}", recorded.program);
    if args.json {
        let json = serde_json::json!({
            "address": address,
            "normal_form": normal_form,
            "value": value.as_ref().map_or(serde_json::Value::Null, |v| v.to_json()),
            "steps": plan.steps,
            "events": recorded.events,
        });
        println!("{json}");
    } else {
        println!("address: {address}");
        println!("normal form: {normal_form}");
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
    }
    Ok(ExitCode::SUCCESS)
}

/// The program and manifest of a stored run, for `--resume`.
fn resume_program(store: &Store, address: &str) -> anyhow::Result<(amb_syntax::Ast, Manifest)> {
    let program = crate::commands::verify::parse_address(address)?;
    let bytes = store
        .get_block(program)?
        .with_context(|| format!("no program {address} in this store"))?;
    let manifest = Manifest::decode(&bytes).context("the stored manifest is invalid")?;
    manifest
        .verify_signature()
        .context("the stored manifest's signature is invalid")?;
    anyhow::ensure!(
        manifest.kind() == amb_log::Kind::Program,
        "{address} is not a program address"
    );
    let blocks = amb_bytecode::Program::load(
        manifest.program(),
        |cid| store.get_block(*cid).ok().flatten(),
        &BlockLimits::default(),
    )
    .context("loading the program's blocks")?;
    let ast = blocks
        .to_ast(&amb_bytecode::ProgramLimits::default())
        .context("reading the program back")?;
    Ok((ast, manifest))
}
