//! `amb run FILE [--json]`: compile, deploy to a new address, reduce, and record every
//! step as signed events in the node's store.

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
    file: PathBuf,
    /// Print `{"address", "normal_form", "value", "steps", "events"}` as JSON.
    #[arg(long)]
    json: bool,
    /// Most reduction steps; reaching it is an error.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_steps)]
    max_steps: u64,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    home: HomeArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let loaded = args.home.load()?;
    let (_, ast) = source::load(&args.file, &args.limits)?;
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default())
        .with_context(|| format!("compiling {}", args.file.display()))?;
    let limits = Limits {
        max_steps: args.max_steps,
        ..Limits::default()
    };
    let plan = amb_vm::plan::plan(&ast, &compiled, &map, limits).context("reducing")?;
    let time = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let manifest = Manifest::new_root(
        compiled.root,
        name,
        vec![loaded.key.public_key()],
        &loaded.key,
        Manifest::random_nonce(),
        time,
    );
    let store = Store::open_or_create(&loaded.store_path)
        .with_context(|| format!("opening the store {}", loaded.store_path.display()))?;
    let recorded = amb_vm::record::record(&plan, &compiled, &manifest, &loaded.key, &store)
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
