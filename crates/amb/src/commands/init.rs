//! `amb init [--home DIR] [--json]`: the node's key, configuration and store.
//!
//! The first run creates them, and the API's bearer token (`<home>/api_token`,
//! 0600); a later run keeps the existing key and token (it never writes over
//! them), writes a configuration, token or store that has gone missing, prints the
//! same public key and exits 0. A corrupt key is an error (exit 1) and is left in
//! place.

use std::{io::Write, process::ExitCode};

use anyhow::Context;

use crate::home::HomeArgs;

/// Arguments of `amb init`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    home: HomeArgs,
    /// Print exactly `{"home", "public_key", "created"}` as JSON (and an error as
    /// `{"error"}`).
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let home = args.home.resolve()?;
    let init = home
        .init()
        .with_context(|| format!("initializing {}", home.dir().display()))?;
    let public_key = init.loaded().key.public_key().to_string();
    let dir = home.dir().display().to_string();
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "home": dir,
            "public_key": public_key,
            "created": init.created(),
        });
        writeln!(out, "{json}")?;
    } else {
        if init.created() {
            writeln!(out, "initialized {dir}")?;
        } else {
            writeln!(out, "already initialized {dir} (the existing key is kept)")?;
        }
        writeln!(out, "public key: {public_key}")?;
        let token = home.api_token_path();
        writeln!(out, "API token: {} (kept if it existed)", token.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
