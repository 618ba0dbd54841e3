//! `amb explore FILE [--max-states N] [--json]`: every reachable normal form, found by
//! the naive reference reducer (`amb-reference`), independent of the engine.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;

use crate::{
    options::Global,
    source::{self, LimitArgs},
};

/// Arguments of `amb explore` (with `--json`: `{"normal_forms", "states",
/// "confluent", "truncated"}`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    file: PathBuf,
    /// Most distinct states to visit; past it the result is marked truncated.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_states: usize,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    empty: source::EmptyArgs,
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let (_, ast) = source::load(&args.file, &args.limits)?;
    args.empty.check(&args.file, &ast)?;
    let exploration =
        amb_reference::explore(&ast, args.max_states).context("exploring the state space")?;
    if global.json {
        println!("{}", exploration.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    let count = exploration.normal_forms.len();
    println!(
        "{count} normal form{} in {} state{}{}",
        if count == 1 { "" } else { "s" },
        exploration.states,
        if exploration.states == 1 { "" } else { "s" },
        if exploration.truncated {
            " (truncated: raise --max-states for the whole space)"
        } else {
            ""
        }
    );
    for normal_form in &exploration.normal_forms {
        println!("  {normal_form}");
    }
    match exploration.confluent {
        Some(true) => println!("confluent: yes"),
        Some(false) => println!("confluent: no"),
        None => println!("confluent: unknown (truncated)"),
    }
    Ok(ExitCode::SUCCESS)
}
