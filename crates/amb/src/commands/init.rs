//! `amb init [--home DIR] [--json]`: the node's key, configuration and store.
//!
//! The first run creates them, and the API's bearer token (`<home>/api_token`,
//! 0600); a later run keeps the existing key and token (it never writes over
//! them), writes a configuration, token or store that has gone missing, prints the
//! same peer id and public key and exits 0. The node's identity is shown as its
//! peer id, as everywhere else, with its public key. A corrupt key is an error (exit 1) and is left in
//! place.

use std::{io::Write, process::ExitCode};

use anyhow::Context;

use crate::options::Global;

/// Arguments of `amb init` (with `--json`: exactly `{"home", "peer_id", "public_key",
/// "created"}`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: &Args, global: &Global) -> anyhow::Result<ExitCode> {
    let home = global.home().resolve()?;
    let init = home
        .init()
        .with_context(|| format!("initializing {}", home.dir().display()))?;
    let key = init.loaded().key.public_key();
    let public_key = key.to_string();
    let peer_id = amb_net::identity::peer_id(&key).to_string();
    let dir = home.dir().display().to_string();
    let mut out = std::io::stdout().lock();
    if global.json {
        let json = serde_json::json!({
            "home": dir,
            "peer_id": peer_id,
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
        writeln!(
            out,
            "peer id: {peer_id} (for `amb deploy --delegate NAME=PEER_ID`)"
        )?;
        writeln!(out, "public key: {public_key}")?;
        let token = home.api_token_path();
        writeln!(out, "API token: {} (kept if it existed)", token.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
