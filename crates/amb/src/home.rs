//! The node's home directory (key, configuration, store, API token), shared by
//! every command that needs the node's identity, its store or its token.

use std::path::PathBuf;

use amb_log::{Home, Loaded, Store};
use anyhow::Context;
use clap::Args;

/// `--home DIR`: where the node's key, configuration and store live.
#[derive(Debug, Args, Clone)]
pub(crate) struct HomeArgs {
    /// The node's home directory: key, configuration, store, and the API token
    /// that `--node` commands send [default: $AMB_HOME, else $XDG_DATA_HOME/amb or
    /// ~/.local/share/amb].
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
}

impl HomeArgs {
    /// The home directory chosen by the flag, the environment or the default.
    pub(crate) fn resolve(&self) -> anyhow::Result<Home> {
        Ok(Home::resolve(self.home.clone())?)
    }

    /// The initialized home's key and settings; an uninitialized home is an error
    /// that says to run `amb init`.
    pub(crate) fn load(&self) -> anyhow::Result<Loaded> {
        Ok(self.resolve()?.load()?)
    }

    /// The initialized home's store, which must exist (commands that read programs).
    pub(crate) fn open_store(&self) -> anyhow::Result<Store> {
        let loaded = self.load()?;
        Store::open(&loaded.store_path)
            .with_context(|| format!("opening the store {}", loaded.store_path.display()))
    }
}
