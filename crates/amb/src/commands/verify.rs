//! `amb verify ADDRESS`: re-check every event of every log of a stored program, and
//! say whether its run is complete.
//!
//! Exit status: 0 when every rule holds and the run is complete; [`EXIT_INCOMPLETE`]
//! (3) when every rule holds but the run is a prefix, as an interrupted `amb run`
//! leaves (0 with `--allow-incomplete`; the output says `incomplete` either way); 1
//! when an event breaks a rule (missing logs and events included) or the program
//! cannot be read. With `--json`, the result is `{"address", "events", "logs",
//! "steps", "normal_form", "complete", "stops_at"?, "effects", "trusted",
//! "effects_performed"}` (`spec/system.md` §7) and a failure is printed on
//! standard output as `{"error": {"kind", "message", "rule"?, "at"?}}`
//! ([`super::json_error`]).
//!
//! `amb log` and `amb inspect` verify first with `--verify` ([`VerifyFirst`]).

use std::{
    io::{BufWriter, Write},
    process::ExitCode,
};

use amb_bytecode::Cid;
use amb_log::Store;
use amb_vm::{
    system::Trust,
    verify::{Verified, verify_prefix_with_progress},
};
use anyhow::Context;
use serde_json::json;

use crate::{client::NodeArgs, options::Global};

/// The exit status of a run that verifies but is incomplete.
pub(crate) const EXIT_INCOMPLETE: u8 = 3;

/// Arguments of `amb verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>` (or the bare CID, or a unique prefix).
    address: String,
    /// Exit 0 for an incomplete run too (it is still reported as incomplete).
    #[arg(long)]
    allow_incomplete: bool,
    /// Leave out the normal form, which can be large.
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) fn run(args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let mut verified = match global.remote() {
        Some(node) => remote(&node, crate::address::resolve_remote(&node, &args.address)?)?,
        None => {
            let store = global.home().open_store()?;
            let program = crate::address::resolve(&store, &args.address)?;
            verified_json(program, &verified(&store, program)?)
        }
    };
    super::quiet(&mut verified, args.quiet);
    print_verified(&verified, global.json)?;
    let complete = verified["complete"].as_bool() == Some(true);
    Ok(exit_status(complete, args.allow_incomplete))
}

/// The remote form: the node at `node` verifies the program over its store and
/// answers what `--json` prints.
fn remote(node: &NodeArgs, program: Cid) -> anyhow::Result<serde_json::Value> {
    node.get(
        &format!("/v1/programs/{program}/verify"),
        std::time::Duration::from_secs(600),
    )
}

/// `{"address", "events", "logs", "steps", "normal_form", "complete", "stops_at"?,
/// "effects", "trusted", "effects_performed"}` of a verified program (also the
/// node's verify route's answer): every effect event with its recorded result and
/// how it was accepted (`recomputed`, or `signed` by its creator), the signed ones
/// again under `trusted`, and the effects performed while verifying (0).
pub(crate) fn verified_json(program: Cid, verified: &Verified) -> serde_json::Value {
    let effects: Vec<serde_json::Value> = verified.effects.iter().map(effect_json).collect();
    let trusted: Vec<serde_json::Value> = effects
        .iter()
        .filter(|e| e["trust"] == "signed")
        .map(|e| json!({"event": e["event"], "service": e["service"], "creator": e["creator"], "peer": e["peer"]}))
        .collect();
    let mut json = json!({
        "address": format!("/amb/{program}"),
        "events": verified.events,
        "logs": verified.logs,
        "steps": verified.steps,
        "normal_form": amb_syntax::to_compact_string(&verified.term),
        "complete": verified.completeness.is_complete(),
        "effects": effects,
        "trusted": trusted,
        "effects_performed": verified.effects_performed,
    });
    if let Some(stop) = verified.completeness.stop() {
        json["stops_at"] = json!({
            "step": stop.steps,
            "events": stop.events,
            "event": stop.event.to_string(),
            "log": stop.log.to_string(),
            "seq": stop.seq,
            "text": stop.to_string(),
        });
    }
    json
}

/// One replayed effect: `{"event", "service", "log", "after_step", "argument",
/// "result", "trust", "creator"?, "peer"?}`.
fn effect_json(effect: &amb_vm::replay::ReplayedEffect) -> serde_json::Value {
    let mut json = json!({
        "event": effect.event.to_string(),
        "service": effect.service.name(),
        "log": effect.log.to_string(),
        "after_step": effect.after_step,
        "argument": effect.argument.to_json(),
        "result": effect.result.to_json(),
    });
    match &effect.trust {
        Trust::Recomputed => json["trust"] = json!("recomputed"),
        Trust::Signed { creator } => {
            json["trust"] = json!("signed");
            json["creator"] = json!(creator.to_string());
            json["peer"] = json!(crate::inspector::views::peer(creator));
        }
    }
    json
}

/// Prints a verification ([`verified_json`]) as JSON or as text.
fn print_verified(verified: &serde_json::Value, as_json: bool) -> anyhow::Result<()> {
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    if as_json {
        let mut shown = verified.clone();
        if let Some(stop) = shown.get_mut("stops_at").and_then(|s| s.as_object_mut()) {
            stop.remove("text");
        }
        writeln!(stdout, "{shown}")?;
    } else {
        let text = |key: &str| verified[key].as_str().unwrap_or("?").to_string();
        writeln!(
            stdout,
            "verified {}: {} events in {} logs, {} steps replayed",
            text("address"),
            verified["events"],
            verified["logs"],
            verified["steps"]
        )?;
        print_effects(&mut stdout, verified)?;
        match verified["stops_at"]["text"].as_str() {
            None => writeln!(stdout, "complete")?,
            Some(stop) => writeln!(stdout, "incomplete: {stop}")?,
        }
        if verified.get("normal_form").is_some() {
            let label = match verified["complete"].as_bool() {
                Some(true) => "normal form",
                _ => "term so far",
            };
            writeln!(stdout, "{label}: {}", text("normal_form"))?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// The text form of a verification's effects: one line each, saying whether its
/// result was computed again or trusted as signed, and by whom.
fn print_effects(out: &mut impl Write, verified: &serde_json::Value) -> anyhow::Result<()> {
    let Some(effects) = verified["effects"].as_array().filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    writeln!(
        out,
        "effects: {} recorded, {} trusted as signed, {} performed while verifying",
        effects.len(),
        verified["trusted"].as_array().map_or(0, Vec::len),
        verified["effects_performed"]
    )?;
    for e in effects {
        let text = |key: &str| e[key].as_str().unwrap_or("?").to_string();
        let how = match e["trust"].as_str() {
            Some("signed") => format!("trusted, signed by {}", text("peer")),
            _ => "recomputed".to_string(),
        };
        writeln!(
            out,
            "  {} {} of {} = {}: {how}",
            text("event"),
            text("service"),
            e["argument"],
            e["result"]
        )?;
    }
    Ok(())
}

/// Verifies a stored program, which may be a prefix of its run, with a progress bar
/// on a terminal.
pub(crate) fn verified(store: &Store, program: Cid) -> anyhow::Result<Verified> {
    let progress = crate::progress::reporter();
    verify_prefix_with_progress(store, program, progress.as_ref())
        .with_context(|| format!("verifying /amb/{program}"))
}

/// 0 for a complete run (or any, when incomplete runs are allowed), else
/// [`EXIT_INCOMPLETE`].
fn exit_status(complete: bool, allow_incomplete: bool) -> ExitCode {
    if complete || allow_incomplete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCOMPLETE)
    }
}

/// `--verify` of the commands that show a stored program (`amb log`, `amb inspect`):
/// without it they say on standard error that what they show is unverified.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyFirst {
    /// Verify the program first, as `amb verify` does, and fail as it does (exit 1 on
    /// a broken rule, 3 when the run is incomplete).
    #[arg(long)]
    verify: bool,
    /// With --verify: exit 0 for an incomplete run too (still said on standard error).
    #[arg(long, requires = "verify")]
    allow_incomplete: bool,
}

impl VerifyFirst {
    /// Whether `--verify` was given.
    pub(crate) fn asked(&self) -> bool {
        self.verify
    }

    /// Verifies `program` if asked (an error if a rule is broken), else says on
    /// standard error that it is not verified; returns the exit status the command
    /// ends with once it has shown the program: [`EXIT_INCOMPLETE`] for an incomplete
    /// run (said on standard error) unless allowed.
    pub(crate) fn check(&self, store: &Store, program: Cid) -> anyhow::Result<ExitCode> {
        self.check_with(|| Ok(verified_json(program, &verified(store, program)?)))
    }

    /// [`VerifyFirst::check`] through the node at `node`, which verifies the program
    /// over its own store.
    pub(crate) fn check_remote(&self, node: &NodeArgs, program: Cid) -> anyhow::Result<ExitCode> {
        self.check_with(|| remote(node, program))
    }

    /// [`VerifyFirst::check`] with `verify` giving [`verified_json`]'s answer.
    fn check_with(
        &self,
        verify: impl FnOnce() -> anyhow::Result<serde_json::Value>,
    ) -> anyhow::Result<ExitCode> {
        let mut stderr = std::io::stderr().lock();
        if !self.verify {
            let _ = writeln!(stderr, "unverified (run amb verify)");
            return Ok(ExitCode::SUCCESS);
        }
        let verified = verify()?;
        if let Some(stop) = verified["stops_at"]["text"].as_str() {
            let _ = writeln!(stderr, "verified, incomplete: {stop}");
        }
        let complete = verified["complete"].as_bool() == Some(true);
        Ok(exit_status(complete, self.allow_incomplete))
    }
}
