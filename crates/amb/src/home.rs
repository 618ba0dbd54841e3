//! The node's home directory (key, configuration, store, API token), shared by
//! every command that needs the node's identity, its store or its token.

use std::path::PathBuf;

use amb_log::{Home, HomeError, Loaded, Store};
use anyhow::Context;

/// Where the node's key, configuration and store live: `--home DIR` (a global
/// option, `options.rs`), else `AMB_HOME` or the default.
#[derive(Debug, Clone, Default)]
pub(crate) struct HomeArgs {
    home: Option<PathBuf>,
}

impl HomeArgs {
    /// The home given by `--home`, if any.
    pub(crate) fn new(home: Option<PathBuf>) -> HomeArgs {
        HomeArgs { home }
    }

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

    /// The home's key and settings, creating the home first when it has never been
    /// initialized, which is said on standard error: the commands that make a
    /// home's content (`run`, `import`, `node`; `init` is the creation itself) do
    /// this, the ones that read it (`ls`, `log`, `inspect`, `verify`, `export`,
    /// `ui`) refuse a missing home ([`HomeArgs::load`]).
    pub(crate) fn load_or_create(&self) -> anyhow::Result<Loaded> {
        let home = self.resolve()?;
        match home.load() {
            Err(HomeError::NotInitialized { .. }) => {
                let init = home
                    .init()
                    .with_context(|| format!("initializing {}", home.dir().display()))?;
                let peer = amb_net::identity::peer_id(&init.loaded().key.public_key());
                eprintln!(
                    "created the home {} (as `amb init` does): a new key, peer id {peer}",
                    home.dir().display()
                );
                Ok(home.load()?)
            }
            loaded => Ok(loaded?),
        }
    }
}
