//! `amb verify ADDRESS`: re-check every event of every log of a stored program.

use std::process::ExitCode;

use amb_bytecode::Cid;
use anyhow::Context;

use crate::home::HomeArgs;

/// Arguments of `amb verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program's address, `/amb/<cid>` (or the bare CID).
    address: String,
    /// Print `{"address", "events", "logs", "steps", "normal_form"}` as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    home: HomeArgs,
}

/// The program CID of an address (`/amb/<cid>` or a bare CID).
pub(crate) fn parse_address(address: &str) -> anyhow::Result<Cid> {
    let cid = address.strip_prefix("/amb/").unwrap_or(address);
    cid.parse::<Cid>()
        .with_context(|| format!("`{address}` is not an address of the form /amb/<cid>"))
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let program = parse_address(&args.address)?;
    let store = args.home.open_store()?;
    let progress = crate::progress::reporter();
    let verified = amb_vm::verify::verify_with_progress(&store, program, progress.as_ref())
        .with_context(|| format!("verifying /amb/{program}"))?;
    let normal_form = amb_syntax::to_compact_string(&verified.term);
    if args.json {
        let json = serde_json::json!({
            "address": format!("/amb/{program}"),
            "events": verified.events,
            "logs": verified.logs,
            "steps": verified.steps,
            "normal_form": normal_form,
        });
        println!("{json}");
    } else {
        println!(
            "verified /amb/{program}: {} events in {} logs, {} steps replayed",
            verified.events, verified.logs, verified.steps
        );
        println!("normal form: {normal_form}");
    }
    Ok(ExitCode::SUCCESS)
}
