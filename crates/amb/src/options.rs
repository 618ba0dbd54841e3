//! The options every command takes, before or after the subcommand: `--home`, `--node`
//! and `--json`. `--node` defaults to the node API's default address for the commands
//! that always talk to a node (`deploy`, `info`, `value`); the commands that read a
//! store (`log`, `inspect`, `verify`, `ls`) read the home's unless `--node` is given.

use std::path::PathBuf;

use crate::{client::NodeArgs, home::HomeArgs};

/// The node API's default URL (`amb node`'s default `--api`).
pub(crate) const DEFAULT_NODE_URL: &str = "http://127.0.0.1:4080";

/// The variable giving `--node` to the commands that always talk to a node.
const NODE_ENV: &str = "AMB_NODE_URL";

/// Options taken by every command.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Global {
    /// The node's home directory: key, configuration, store, and the API token that
    /// `--node` commands send [default: $AMB_HOME, else $XDG_DATA_HOME/amb or
    /// ~/.local/share/amb].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// A running node's API, as its `ready` line gives it (http://HOST:PORT). `deploy`,
    /// `info` and `value` use $AMB_NODE_URL, else http://127.0.0.1:4080 without it;
    /// `log`, `inspect`, `verify` and `ls` read the home's store unless it is given.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) node: Option<String>,
    /// Print the result as one JSON value on standard output, and a failure as
    /// `{"error": {"kind", "message", "rule"?, "at"?}}` (same exit codes).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

impl Global {
    /// The home chosen by `--home`, `AMB_HOME` or the default.
    pub(crate) fn home(&self) -> HomeArgs {
        HomeArgs::new(self.home.clone())
    }

    /// The node the commands that always talk to one use: `--node`, else
    /// `AMB_NODE_URL`, else [`DEFAULT_NODE_URL`].
    pub(crate) fn node_or_default(&self) -> NodeArgs {
        let url = self
            .node
            .clone()
            .or_else(|| {
                std::env::var(NODE_ENV)
                    .ok()
                    .filter(|u| !u.trim().is_empty())
            })
            .unwrap_or_else(|| DEFAULT_NODE_URL.to_string());
        NodeArgs::new(&url, &self.home())
    }

    /// The node to read from instead of the home's store, if `--node` is given.
    pub(crate) fn remote(&self) -> Option<NodeArgs> {
        self.node
            .as_deref()
            .map(|url| NodeArgs::new(url, &self.home()))
    }
}
