//! `amb deploy FILE [--node URL] [--json]`: deploy a program on a running node, which
//! runs it, records its events and publishes them; prints its address.

use std::{io::Write, path::PathBuf, process::ExitCode, time::Duration};

use amb_engine::Limits;

use crate::{options::Global, source::LimitArgs};

/// Arguments of `amb deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Program file (`-` for standard input).
    file: PathBuf,
    /// Deploy an empty (or comment-only) program instead of refusing it.
    #[arg(long)]
    allow_empty: bool,
    /// Most reduction steps; reaching it is an error.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_steps)]
    max_steps: u64,
    /// Host the ambients named NAME on the peer PEER_ID (repeatable; the peer id as
    /// `amb init`, `amb info` and the node's ready line show it): that peer runs them
    /// and writes their logs. A NAME the program has no ambient of is refused.
    #[arg(long, value_name = "NAME=PEER_ID", value_parser = parse_delegate)]
    delegate: Vec<(String, String)>,
    /// How long to wait for the node, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    lang: crate::source::LangArgs,
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    // Parsed here first, so a syntax error is shown against the file.
    let (text, ast) = crate::source::load_program(&args.file, &args.lang, &args.limits)?;
    crate::source::refuse_empty(&args.file, &ast, args.allow_empty)?;
    let source = String::from_utf8(text).map_err(|_| {
        crate::commands::json_error::Invalid(format!("{} is not UTF-8 text", args.file.display()))
    })?;
    let name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let delegate: serde_json::Map<String, serde_json::Value> = args
        .delegate
        .iter()
        .map(|(name, peer)| (name.clone(), serde_json::Value::from(peer.as_str())))
        .collect();
    let body = serde_json::json!({
        "source": source,
        "name": name,
        "max_steps": args.max_steps,
        "delegate": delegate,
    });
    let answer =
        global
            .node_or_default()
            .post("/v1/deploy", &body, Duration::from_secs(args.timeout))?;
    let address = answer["address"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the node's answer has no address: {answer}"))?;
    let mut out = std::io::stdout().lock();
    if global.json {
        writeln!(out, "{}", serde_json::json!({ "address": address }))?;
    } else {
        writeln!(out, "{address}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `NAME=PEER_ID`.
fn parse_delegate(text: &str) -> Result<(String, String), String> {
    let (name, peer) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=PEER_ID"))?;
    if name.is_empty() || peer.is_empty() {
        return Err(format!("`{text}` is not NAME=PEER_ID"));
    }
    Ok((name.to_string(), peer.to_string()))
}
