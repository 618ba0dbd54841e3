//! `amb inspect ADDRESS --at K|CID [--json]` and `--diff K1 K2`: the ambient tree of a
//! stored program after any step (time travel). Unverified (said on standard error)
//! unless `--verify`, which verifies the program first.

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
};

use amb_vm::travel::{Moment, Timeline};
use anyhow::Context;

use crate::{
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
    for line in diff_lines(&old, &new) {
        writeln!(stdout, "{line}")?;
    }
    stdout.flush()?;
    Ok(status)
}

/// A line diff (longest common subsequence): ` ` kept, `-` removed, `+` added.
fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!(" {}", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+{}", b[j]));
            j += 1;
        } else {
            out.push(format!("-{}", a[i]));
            i += 1;
        }
    }
    out
}
