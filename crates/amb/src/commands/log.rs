//! `amb log ADDRESS [--json | --dot] [--verify]`: the events of a stored program, in
//! the stable topological order that `amb verify` replays them in. Unverified (said on
//! standard error) unless `--verify`, which verifies the program first. Writers are
//! shown by their short peer id ([`short_peer`]); `--json` gives each event's
//! `writer` key (hex), its `peer` id and its `signature`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufWriter, Write},
    process::ExitCode,
    time::Duration,
};

use amb_bytecode::Cid;
use amb_log::Manifest;
use serde_json::Value;

use crate::{client::NodeArgs, inspector::views::event_json, options::Global};

use super::verify::VerifyFirst;

/// Arguments of `amb log`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>` (or the bare CID, or a unique prefix).
    address: String,
    /// Print the event DAG for Graphviz (one cluster per log).
    #[arg(long)]
    dot: bool,
    #[command(flatten)]
    verify: VerifyFirst,
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    crate::commands::json_error::ensure_valid!(
        !(args.dot && global.json),
        "--dot and --json are two forms of the output: give one"
    );
    let (program, status, events, logs) = match global.remote() {
        Some(node) => {
            let program = crate::address::resolve_remote(&node, &args.address)?;
            let (status, events, logs) = remote(&node, &args.verify, program)?;
            (program, status, events, logs)
        }
        None => local(args, global)?,
    };
    print(args, global.json, program, &events, logs)?;
    Ok(status)
}

/// The events of the home's store, in replay order, and how many logs they are in.
fn local(args: &Args, global: &Global) -> anyhow::Result<(Cid, ExitCode, Vec<Value>, usize)> {
    let store = global.home().open_store()?;
    let program = match crate::address::resolve(&store, &args.address) {
        Ok(program) => program,
        Err(e) => match crate::address::part(&store, &args.address)? {
            Some(part) => return local_part(args, &store, part),
            None => return Err(e.into()),
        },
    };
    let logs = store.program_logs(program)?;
    let status = args.verify.check(&store, program)?;
    let mut names: BTreeMap<Cid, String> = BTreeMap::new();
    for log in &logs {
        let name = store
            .get_block(*log)?
            .and_then(|b| Manifest::decode(&b).ok())
            .and_then(|m| m.name().map(str::to_string))
            .filter(|_| *log != program)
            .unwrap_or_else(|| "<program>".to_string());
        names.insert(*log, name);
    }
    let mut events = BTreeMap::new();
    amb_vm::verify::for_each_stored_event(&store, program, &(), |cid, bytes| {
        events.insert(cid, amb_vm::verify::decode_any_event(cid, &bytes)?);
        Ok(())
    })?;
    let order = amb_vm::verify::stable_order(&events);
    let listed = order
        .iter()
        .map(|cid| {
            let e = &events[cid];
            event_json(cid, e, &names[&e.log()])
        })
        .collect();
    Ok((program, status, listed, logs.len()))
}

/// The events of a delegate's part (`amb_vm::part`), log by log: they cannot be
/// replayed or verified without the program, so `--verify` is refused.
fn local_part(
    args: &Args,
    store: &amb_log::Store,
    part: Cid,
) -> anyhow::Result<(Cid, ExitCode, Vec<Value>, usize)> {
    crate::commands::json_error::ensure_valid!(
        !args.verify.asked(),
        "/amb/{part} is a host's part of a program (its order), not a program: it cannot be verified without the program's address"
    );
    let events = amb_vm::part::part_events(store, part)?;
    let listed = events
        .iter()
        .map(|p| event_json(&p.cid, &p.event, &p.log_name))
        .collect();
    eprintln!("a host's part of a program: its events as this node walked them");
    Ok((
        part,
        ExitCode::SUCCESS,
        listed,
        store.program_logs(part)?.len(),
    ))
}

/// The events as the node at `node` serves them (every page of its events route),
/// with the fields the local form prints.
fn remote(
    node: &NodeArgs,
    verify: &VerifyFirst,
    program: Cid,
) -> anyhow::Result<(ExitCode, Vec<Value>, usize)> {
    let status = verify.check_remote(node, program)?;
    let events = remote_events(node, program)?;
    let logs = events
        .iter()
        .filter_map(|e| e["log"].as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    Ok((status, events, logs))
}

/// Every event of `program` as the node at `node` serves them (every page of its
/// events route), with the fields the local form prints.
pub(crate) fn remote_events(node: &NodeArgs, program: Cid) -> anyhow::Result<Vec<Value>> {
    let mut events = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            None => format!("/v1/programs/{program}/events?limit=10000"),
            Some(a) => format!("/v1/programs/{program}/events?limit=10000&after={a}"),
        };
        let mut page = node.get(&path, Duration::from_secs(600))?;
        if let Some(list) = page["events"].as_array_mut() {
            for mut event in list.drain(..) {
                if let Some(fields) = event.as_object_mut() {
                    for key in ["index", "step", "verified"] {
                        fields.remove(key);
                    }
                }
                events.push(event);
            }
        }
        match page["next"].as_u64() {
            Some(next) => after = Some(next),
            None => return Ok(events),
        }
    }
}

/// Prints the events (as [`event_json`] gives them) as JSON, Graphviz or text.
fn print(
    args: &Args,
    json: bool,
    program: Cid,
    events: &[Value],
    logs: usize,
) -> anyhow::Result<()> {
    let text = |e: &Value, key: &str| e[key].as_str().unwrap_or_default().to_string();
    let short = |s: String| s.chars().take(16).collect::<String>();
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    if json {
        writeln!(stdout, "{}", Value::Array(events.to_vec()))?;
    } else if args.dot {
        // Logs in CID order, each with its name.
        let mut names: BTreeMap<Cid, String> = BTreeMap::new();
        for e in events {
            if let Ok(log) = text(e, "log").parse::<Cid>() {
                names.insert(log, text(e, "log_name"));
            }
        }
        let mut out =
            String::from("digraph events {\n  rankdir=BT;\n  node [shape=box, fontsize=10];\n");
        for (i, (log, name)) in names.iter().enumerate() {
            let _ = writeln!(
                out,
                "  subgraph cluster_{i} {{\n    label=\"{name}@{}\";",
                &log.to_string()[..16]
            );
            let log = log.to_string();
            let mut in_log: Vec<&Value> = events.iter().filter(|e| text(e, "log") == log).collect();
            in_log.sort_by_key(|e| text(e, "cid").parse::<Cid>().ok());
            for e in in_log {
                let _ = writeln!(
                    out,
                    "    \"{}\" [label=\"#{} {} {}\"];",
                    text(e, "cid"),
                    e["seq"],
                    text(e, "op"),
                    text(e, "target").chars().take(20).collect::<String>()
                );
            }
            out.push_str("  }\n");
        }
        let mut by_cid: Vec<&Value> = events.iter().collect();
        by_cid.sort_by_key(|e| text(e, "cid").parse::<Cid>().ok());
        for e in by_cid {
            for r in e["refs"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\";",
                    text(e, "cid"),
                    r.as_str().unwrap_or_default()
                );
            }
        }
        out.push_str("}\n");
        write!(stdout, "{out}")?;
    } else {
        writeln!(
            stdout,
            "program /amb/{program}: {} events in {logs} logs",
            events.len(),
        )?;
        for (i, e) in events.iter().enumerate() {
            let refs: Vec<String> = e["refs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| short(r.as_str().unwrap_or_default().to_string()))
                .collect();
            writeln!(
                stdout,
                "{i:>6}  {}  {}#{}  {} {}  writer {}  refs [{}]{}",
                short(text(e, "cid")),
                text(e, "log_name"),
                e["seq"],
                text(e, "op"),
                text(e, "target"),
                short_peer(&text(e, "peer")),
                refs.join(", "),
                e["payload"]
                    .as_str()
                    .map_or(String::new(), |p| format!("  payload {p}")),
            )?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// A peer id as `amb log` shows it: its last 8 characters (every Ed25519 peer id
/// starts with the same `12D3KooW`).
pub(crate) fn short_peer(peer: &str) -> String {
    let chars: Vec<char> = peer.chars().collect();
    chars[chars.len().saturating_sub(8)..].iter().collect()
}
