//! `amb log ADDRESS [--json | --dot] [--verify]`: the events of a stored program, in
//! the stable topological order that `amb verify` replays them in. Unverified (said on
//! standard error) unless `--verify`, which verifies the program first.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufWriter, Write},
    process::ExitCode,
};

use amb_bytecode::{Cid, Target};
use amb_log::Manifest;

use crate::{
    commands::{
        json_error::{NotFound, print_json_error},
        verify::{VerifyFirst, parse_address},
    },
    home::HomeArgs,
};

/// Arguments of `amb log`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>`.
    address: String,
    /// Print a JSON array of events.
    #[arg(long, conflicts_with = "dot")]
    json: bool,
    /// Print the event DAG for Graphviz (one cluster per log).
    #[arg(long)]
    dot: bool,
    #[command(flatten)]
    verify: VerifyFirst,
    #[command(flatten)]
    home: HomeArgs,
}

fn target_text(target: &Target) -> String {
    match target {
        Target::Block(cid) => cid.to_string(),
        other => other.name().unwrap_or("").to_string(),
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let listed = list(args);
    if let (Err(error), true) = (&listed, args.json) {
        print_json_error(error);
    }
    listed
}

fn list(args: &Args) -> anyhow::Result<ExitCode> {
    let program = parse_address(&args.address)?;
    let store = args.home.open_store()?;
    let logs = store.program_logs(program)?;
    if logs.is_empty() {
        return Err(NotFound(format!("no program /amb/{program} in this store")).into());
    }
    let status = args.verify.check(&store, program)?;
    let mut names: BTreeMap<Cid, String> = BTreeMap::new();
    let mut events = BTreeMap::new();
    for log in &logs {
        let name = store
            .get_block(*log)?
            .and_then(|b| Manifest::decode(&b).ok())
            .and_then(|m| m.name().map(str::to_string))
            .filter(|_| *log != program)
            .unwrap_or_else(|| "<program>".to_string());
        names.insert(*log, name);
    }
    amb_vm::verify::for_each_stored_event(&store, program, &(), |cid, bytes| {
        events.insert(cid, amb_vm::verify::decode_event(cid, &bytes)?);
        Ok(())
    })?;
    let order = amb_vm::verify::stable_order(&events);
    let log_name = |log: &Cid| format!("{}@{}", names[log], &log.to_string()[..16]);
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    if args.json {
        let list: Vec<serde_json::Value> = order
            .iter()
            .map(|cid| {
                let e = &events[cid];
                serde_json::json!({
                    "cid": cid.to_string(),
                    "log": e.log().to_string(),
                    "log_name": names[&e.log()],
                    "seq": e.seq(),
                    "op": e.op().opcode().mnemonic(),
                    "target": target_text(e.op().target()),
                    "at": e.at().map(|(d, i)| serde_json::json!([d.to_string(), i])),
                    "refs": e.refs().iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                    "payload": e.payload().map(|p| p.to_string()),
                    "writer": e.creator().to_string(),
                })
            })
            .collect();
        writeln!(stdout, "{}", serde_json::Value::Array(list))?;
    } else if args.dot {
        let mut out =
            String::from("digraph events {\n  rankdir=BT;\n  node [shape=box, fontsize=10];\n");
        for (i, log) in names.keys().enumerate() {
            let _ = writeln!(
                out,
                "  subgraph cluster_{i} {{\n    label=\"{}\";",
                log_name(log)
            );
            for (cid, e) in events.iter().filter(|(_, e)| e.log() == *log) {
                let _ = writeln!(
                    out,
                    "    \"{cid}\" [label=\"#{} {} {}\"];",
                    e.seq(),
                    e.op().opcode().mnemonic(),
                    target_text(e.op().target())
                        .chars()
                        .take(20)
                        .collect::<String>()
                );
            }
            out.push_str("  }\n");
        }
        for (cid, e) in &events {
            for r in e.refs() {
                let _ = writeln!(out, "  \"{cid}\" -> \"{r}\";");
            }
        }
        out.push_str("}\n");
        write!(stdout, "{out}")?;
    } else {
        writeln!(
            stdout,
            "program /amb/{program}: {} events in {} logs",
            events.len(),
            logs.len()
        )?;
        for (i, cid) in order.iter().enumerate() {
            let e = &events[cid];
            let refs: Vec<String> = e
                .refs()
                .iter()
                .map(|r| r.to_string()[..16].to_string())
                .collect();
            writeln!(
                stdout,
                "{i:>6}  {}  {}#{}  {} {}  writer {}  refs [{}]{}",
                &cid.to_string()[..16],
                names[&e.log()],
                e.seq(),
                e.op().opcode().mnemonic(),
                target_text(e.op().target()),
                &e.creator().to_string()[..8],
                refs.join(", "),
                e.payload()
                    .map_or(String::new(), |p| format!("  payload {p}")),
            )?;
        }
    }
    stdout.flush()?;
    Ok(status)
}
