//! `amb inspect ADDRESS --at K|CID [--json]` and `--diff K1 K2`: the ambient tree of a
//! stored program after any step (time travel). Unverified (said on standard error)
//! unless `--verify`, which verifies the program first.

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
    time::Duration,
};

use amb_bytecode::Cid;
use amb_vm::travel::{Moment, Timeline};
use anyhow::Context;

use crate::{
    address,
    client::NodeArgs,
    commands::{
        json_error::{Invalid, ensure_valid},
        verify::VerifyFirst,
    },
    options::Global,
};

/// Arguments of `amb inspect`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["at", "diff"])))]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>` (or the bare CID, or a unique prefix).
    address: String,
    /// A step number (0 is the deployed program) or an event CID (or a unique prefix
    /// of one, as `amb log` prints it).
    #[arg(long, value_name = "K|CID")]
    at: Option<String>,
    /// Show what changed between two steps.
    #[arg(long, num_args = 2, value_names = ["K1", "K2"])]
    diff: Option<Vec<String>>,
    #[command(flatten)]
    verify: VerifyFirst,
}

/// The moment `text` names in `timeline`: a step up to the last one, or an event of
/// the program.
fn moment(text: &str, timeline: &Timeline<'_>) -> anyhow::Result<Moment> {
    if let Ok(step) = text.trim().parse::<u64>() {
        let last = timeline.total_steps();
        ensure_valid!(
            step <= last,
            "step {step} is past the end: the run of /amb/{} has {last} steps (the last is step {last})",
            timeline.program()
        );
        return Ok(Moment::Step(step));
    }
    let events = timeline.events().iter().map(|(cid, _)| *cid);
    let event = address::event(text, timeline.program(), events).with_context(|| {
        format!("`{text}` is neither a step number nor an event of the program")
    })?;
    Ok(Moment::Event(event))
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    if let Some(node) = global.remote() {
        let program = address::resolve_remote(&node, &args.address)?;
        return remote(&node, args, global.json, program);
    }
    let store = global.home().open_store()?;
    let program = address::resolve(&store, &args.address)?;
    let status = args.verify.check(&store, program)?;
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let progress = crate::progress::reporter();
    // One or two seeks: a single snapshot (the deployed program) costs far less
    // memory than a timeline's ~800, and each seek replays at most once.
    let timeline =
        Timeline::load_with_interval(&store, program, Some(u64::MAX), progress.as_ref())?;
    if let Some(at) = &args.at {
        let snapshot = timeline.seek(moment(at, &timeline)?)?;
        let term = amb_syntax::to_compact_string(&snapshot.term);
        if global.json {
            let json = serde_json::json!({ "term": term, "step": snapshot.step });
            writeln!(stdout, "{json}")?;
        } else {
            writeln!(stdout, "step {} of {}", snapshot.step, snapshot.total_steps)?;
            write!(stdout, "{}", amb_syntax::to_pretty_string(&snapshot.term))?;
        }
        stdout.flush()?;
        return Ok(status);
    }
    let Some([from, to]) = args.diff.as_deref() else {
        return Err(Invalid("--diff takes two steps".into()).into());
    };
    let before = timeline.seek(moment(from, &timeline)?)?;
    let after = timeline.seek(moment(to, &timeline)?)?;
    let old = amb_syntax::to_pretty_string(&before.term);
    let new = amb_syntax::to_pretty_string(&after.term);
    let lines = crate::inspector::diff::diff_lines(&old, &new);
    print_diff(
        &mut stdout,
        global.json,
        &before.step.into(),
        &after.step.into(),
        &lines,
    )?;
    stdout.flush()?;
    Ok(status)
}

/// The moment `text` names, as the node's routes take it: a step or a full event
/// CID as given; a prefix of an event's CID looked up in the node's event list.
fn remote_moment(node: &NodeArgs, program: Cid, text: &str) -> anyhow::Result<String> {
    if text.trim().parse::<u64>().is_ok() || text.trim().parse::<Cid>().is_ok() {
        return Ok(text.trim().to_string());
    }
    let events = crate::commands::log::remote_events(node, program)?;
    let cids = events
        .iter()
        .filter_map(|e| e["cid"].as_str().and_then(|c| c.parse::<Cid>().ok()));
    let event = address::event(text, program, cids).with_context(|| {
        format!("`{text}` is neither a step number nor an event of the program")
    })?;
    Ok(event.to_string())
}

/// Prints a diff as text or as `{"from", "to", "lines"}` (the diff route's shape).
fn print_diff(
    out: &mut impl Write,
    json: bool,
    from: &serde_json::Value,
    to: &serde_json::Value,
    lines: &[String],
) -> anyhow::Result<()> {
    if json {
        let json = serde_json::json!({ "from": from, "to": to, "lines": lines });
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "--- step {from}\n+++ step {to}")?;
        for line in lines {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// The remote form: the node at `node` seeks over its store (the inspector's term
/// and diff routes); prints what the local form prints.
fn remote(node: &NodeArgs, args: &Args, json: bool, program: Cid) -> anyhow::Result<ExitCode> {
    let status = args.verify.check_remote(node, program)?;
    let timeout = Duration::from_secs(600);
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    if let Some(at) = &args.at {
        let at = remote_moment(node, program, at)?;
        let answer = node.get(&format!("/v1/programs/{program}/steps/{at}/term"), timeout)?;
        let term = answer["term"].as_str().unwrap_or_default();
        if json {
            let json = serde_json::json!({ "term": term, "step": answer["step"] });
            writeln!(stdout, "{json}")?;
        } else {
            let ast = amb_syntax::parse(term).context("the node's term does not parse")?;
            writeln!(
                stdout,
                "step {} of {}",
                answer["step"], answer["total_steps"]
            )?;
            write!(stdout, "{}", amb_syntax::to_pretty_string(&ast))?;
        }
        stdout.flush()?;
        return Ok(status);
    }
    let Some([from, to]) = args.diff.as_deref() else {
        return Err(Invalid("--diff takes two steps".into()).into());
    };
    let (from, to) = (
        remote_moment(node, program, from)?,
        remote_moment(node, program, to)?,
    );
    let answer = node.get(
        &format!("/v1/programs/{program}/diff?from={from}&to={to}"),
        timeout,
    )?;
    let lines: Vec<String> = answer["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|line| line.as_str().unwrap_or_default().to_string())
        .collect();
    print_diff(&mut stdout, json, &answer["from"], &answer["to"], &lines)?;
    stdout.flush()?;
    Ok(status)
}
