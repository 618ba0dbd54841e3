//! `amb value ADDRESS --node URL [--json]`: a program's value read through a running
//! node, which fetches what it lacks from its peers, verifies every event and
//! replays them.

use std::{io::Write, process::ExitCode, time::Duration};

use crate::client::NodeArgs;

/// Arguments of `amb value`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>`.
    address: String,
    /// Print `{"address", "normal_form", "value"}` as JSON (and an error as
    /// `{"error"}`).
    #[arg(long)]
    pub(crate) json: bool,
    /// How long the node may take to fetch the program and see its run complete, in
    /// seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    wait: u64,
    #[command(flatten)]
    node: NodeArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let program = crate::commands::verify::parse_address(&args.address)?;
    let wait_ms = args.wait * 1000;
    let answer = args.node.get(
        &format!("/v1/programs/{program}/value?wait_ms={wait_ms}"),
        Duration::from_millis(wait_ms + 30_000),
    )?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{answer}")?;
    } else {
        writeln!(
            out,
            "address: {}",
            answer["address"].as_str().unwrap_or("?")
        )?;
        let normal_form = answer["normal_form"].as_str().unwrap_or("?");
        writeln!(out, "normal form: {normal_form}")?;
        writeln!(out, "value: {}", answer["value"])?;
    }
    Ok(ExitCode::SUCCESS)
}
