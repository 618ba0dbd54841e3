//! `amb value ADDRESS --node URL [--json]`: a program's value read through a running
//! node, which fetches what it lacks from its peers, verifies every event and
//! replays them.

use std::{process::ExitCode, time::Duration};

use crate::client::NodeArgs;

/// Arguments of `amb value`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>`.
    address: String,
    /// Print `{"address", "normal_form", "value"}` as JSON.
    #[arg(long)]
    json: bool,
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
    if args.json {
        println!("{answer}");
    } else {
        println!("address: {}", answer["address"].as_str().unwrap_or("?"));
        println!(
            "normal form: {}",
            answer["normal_form"].as_str().unwrap_or("?")
        );
        println!("value: {}", answer["value"]);
    }
    Ok(ExitCode::SUCCESS)
}
