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
    client::NodeArgs,
    commands::{
        json_error::print_json_error,
        verify::{VerifyFirst, parse_address},
    },
    home::HomeArgs,
};

/// Arguments of `amb inspect`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["at", "diff"])))]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>`.
    address: String,
    /// A step number (0 is the deployed program) or an event CID.
    #[arg(long, value_name = "K|CID")]
    at: Option<String>,
    /// Show what changed between two steps.
    #[arg(long, num_args = 2, value_names = ["K1", "K2"])]
    diff: Option<Vec<String>>,
    /// Print `{"term", "step"}` as JSON (with --at; a failure as `{"error": {…}}`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    verify: VerifyFirst,
    /// Read the program from the running node at this API URL (else the home's
    /// store is read).
    #[arg(long, value_name = "URL")]
    node: Option<String>,
    #[command(flatten)]
    home: HomeArgs,
}

fn moment(text: &str) -> anyhow::Result<Moment> {
    if let Ok(step) = text.parse::<u64>() {
        return Ok(Moment::Step(step));
    }
    let cid = text
        .parse()
        .with_context(|| format!("`{text}` is neither a step number nor an event CID"))?;
    Ok(Moment::Event(cid))
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let shown = show(args);
    if let (Err(error), true) = (&shown, args.json) {
        print_json_error(error);
    }
    shown
}

fn show(args: &Args) -> anyhow::Result<ExitCode> {
    let program = parse_address(&args.address)?;
    if let Some(url) = &args.node {
        return remote(&NodeArgs::new(url, &args.home), args, program);
    }
    let store = args.home.open_store()?;
    let status = args.verify.check(&store, program)?;
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let progress = crate::progress::reporter();
    // One or two seeks: a single snapshot (the deployed program) costs far less
    // memory than a timeline's ~800, and each seek replays at most once.
    let timeline =
        Timeline::load_with_interval(&store, program, Some(u64::MAX), progress.as_ref())?;
    if let Some(at) = &args.at {
        let snapshot = timeline.seek(moment(at)?)?;
        let term = amb_syntax::to_compact_string(&snapshot.term);
        if args.json {
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
        anyhow::bail!("--diff takes two steps");
    };
    let before = timeline.seek(moment(from)?)?;
    let after = timeline.seek(moment(to)?)?;
    let old = amb_syntax::to_pretty_string(&before.term);
    let new = amb_syntax::to_pretty_string(&after.term);
    writeln!(stdout, "--- step {}\n+++ step {}", before.step, after.step)?;
    for line in crate::inspector::diff::diff_lines(&old, &new) {
        writeln!(stdout, "{line}")?;
    }
    stdout.flush()?;
    Ok(status)
}

/// The remote form: the node at `node` seeks over its store (the inspector's term
/// and diff routes); prints what the local form prints.
fn remote(node: &NodeArgs, args: &Args, program: Cid) -> anyhow::Result<ExitCode> {
    let status = args.verify.check_remote(node, program)?;
    let timeout = Duration::from_secs(600);
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    if let Some(at) = &args.at {
        let answer = node.get(&format!("/v1/programs/{program}/steps/{at}/term"), timeout)?;
        let term = answer["term"].as_str().unwrap_or_default();
        if args.json {
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
        anyhow::bail!("--diff takes two steps");
    };
    let answer = node.get(
        &format!("/v1/programs/{program}/diff?from={from}&to={to}"),
        timeout,
    )?;
    writeln!(
        stdout,
        "--- step {}\n+++ step {}",
        answer["from"], answer["to"]
    )?;
    for line in answer["lines"].as_array().into_iter().flatten() {
        writeln!(stdout, "{}", line.as_str().unwrap_or_default())?;
    }
    stdout.flush()?;
    Ok(status)
}
