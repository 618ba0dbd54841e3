//! `amb info [--node URL] [--json]`: a running node's peer id, health, addresses,
//! peers, bytes received and counters of refused messages by rule.

use std::{io::Write, process::ExitCode, time::Duration};

use crate::options::Global;

/// Arguments of `amb info`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let info = global
        .node_or_default()
        .get("/v1/info", Duration::from_secs(10))?;
    let mut out = std::io::stdout().lock();
    if global.json {
        writeln!(out, "{info}")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "peer id: {}", info["peer_id"].as_str().unwrap_or("?"))?;
    let health = &info["health"];
    if health["ok"] == false {
        let store = health["store"].as_str().unwrap_or("?");
        writeln!(out, "health: UNHEALTHY: store: {store}")?;
    } else {
        writeln!(out, "health: ok")?;
    }
    for address in info["listen"].as_array().into_iter().flatten() {
        writeln!(out, "listening: {}", address.as_str().unwrap_or("?"))?;
    }
    let peers = info["peers"].as_array().cloned().unwrap_or_default();
    writeln!(out, "peers: {}", peers.len())?;
    for peer in &peers {
        writeln!(
            out,
            "  {} (score {}, refused {})",
            peer["peer_id"].as_str().unwrap_or("?"),
            peer["score"],
            peer["refused"]
        )?;
    }
    writeln!(out, "programs held: {}", info["programs"])?;
    writeln!(out, "bytes received: {}", info["received_bytes"])?;
    let refused = info["refused"].as_object().cloned().unwrap_or_default();
    if refused.is_empty() {
        writeln!(out, "refused messages: none")?;
    } else {
        writeln!(out, "refused messages:")?;
        for (rule, count) in refused {
            writeln!(out, "  {rule}: {count}")?;
        }
    }
    for banned in info["banned"].as_array().into_iter().flatten() {
        writeln!(out, "banned: {}", banned.as_str().unwrap_or("?"))?;
    }
    Ok(ExitCode::SUCCESS)
}
