//! `amb info --node URL [--json]`: a running node's peer id, addresses, peers and
//! counters of refused messages by rule.

use std::{process::ExitCode, time::Duration};

use crate::client::NodeArgs;

/// Arguments of `amb info`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the node's answer as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    node: NodeArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let info = args.node.get("/v1/info", Duration::from_secs(10))?;
    if args.json {
        println!("{info}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("peer id: {}", info["peer_id"].as_str().unwrap_or("?"));
    for address in info["listen"].as_array().into_iter().flatten() {
        println!("listening: {}", address.as_str().unwrap_or("?"));
    }
    let peers = info["peers"].as_array().cloned().unwrap_or_default();
    println!("peers: {}", peers.len());
    for peer in &peers {
        println!(
            "  {} (score {}, refused {})",
            peer["peer_id"].as_str().unwrap_or("?"),
            peer["score"],
            peer["refused"]
        );
    }
    println!("programs held: {}", info["programs"]);
    let refused = info["refused"].as_object().cloned().unwrap_or_default();
    if refused.is_empty() {
        println!("refused messages: none");
    } else {
        println!("refused messages:");
        for (rule, count) in refused {
            println!("  {rule}: {count}");
        }
    }
    for banned in info["banned"].as_array().into_iter().flatten() {
        println!("banned: {}", banned.as_str().unwrap_or("?"));
    }
    Ok(ExitCode::SUCCESS)
}
