//! `amb init [--home DIR] [--json]`: the node's key, configuration and store.
//!
//! The first run creates them; a later run keeps the existing key (it never writes
//! over one), writes a configuration or store that has gone missing, prints the same
//! public key and exits 0. A corrupt key is an error (exit 1) and is left in place.

use std::process::ExitCode;

use anyhow::Context;

use crate::home::HomeArgs;

/// Arguments of `amb init`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    home: HomeArgs,
    /// Print exactly `{"home", "public_key", "created"}` as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let home = args.home.resolve()?;
    let init = home
        .init()
        .with_context(|| format!("initializing {}", home.dir().display()))?;
    let public_key = init.loaded().key.public_key().to_string();
    let dir = home.dir().display().to_string();
    if args.json {
        let json = serde_json::json!({
            "home": dir,
            "public_key": public_key,
            "created": init.created(),
        });
        println!("{json}");
    } else {
        if init.created() {
            println!("initialized {dir}");
        } else {
            println!("already initialized {dir} (the existing key is kept)");
        }
        println!("public key: {public_key}");
    }
    Ok(ExitCode::SUCCESS)
}
