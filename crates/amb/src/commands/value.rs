//! `amb value ADDRESS [--node URL] [--json] [--quiet]`: a program's value read through a running
//! node, which fetches what it lacks from its peers, verifies every event and
//! replays them.

use std::{io::Write, process::ExitCode, time::Duration};

use crate::options::Global;

/// Arguments of `amb value`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>` (or the bare CID, or a unique prefix of a
    /// program the node holds).
    address: String,
    /// Leave out the normal form, which can be large.
    #[arg(long, short)]
    quiet: bool,
    /// How long the node may take to fetch the program and see its run complete, in
    /// seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    wait: u64,
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let node = global.node_or_default();
    let program = crate::address::resolve_remote(&node, &args.address)?;
    let wait_ms = args.wait * 1000;
    // A program the node does not hold may never come: say what is being waited for.
    let status = node.get(&format!("/v1/programs/{program}"), Duration::from_secs(30))?;
    if status["held"].as_bool() == Some(false) && !global.json {
        eprintln!(
            "/amb/{program} is not on this node: it asks its peers for up to {} s (--wait SECS)",
            args.wait
        );
    }
    let mut answer = node.get(
        &format!("/v1/programs/{program}/value?wait_ms={wait_ms}"),
        Duration::from_millis(wait_ms + 30_000),
    )?;
    let mut out = std::io::stdout().lock();
    super::quiet(&mut answer, args.quiet);
    if global.json {
        writeln!(out, "{answer}")?;
    } else {
        writeln!(
            out,
            "address: {}",
            answer["address"].as_str().unwrap_or("?")
        )?;
        if let Some(normal_form) = answer["normal_form"].as_str() {
            writeln!(out, "normal form: {normal_form}")?;
        }
        writeln!(out, "value: {}", answer["value"])?;
    }
    Ok(ExitCode::SUCCESS)
}
