//! Talking to a running node's HTTP API (`--node URL`): JSON in, JSON out; an
//! error answer's `{"error"}` becomes the command's error.

use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// `--node URL`: the node's API.
#[derive(Debug, Args, Clone)]
pub(crate) struct NodeArgs {
    /// The node's API, as its `ready` line gives it (http://HOST:PORT).
    #[arg(long, value_name = "URL", env = "AMB_NODE_URL")]
    node: String,
}

impl NodeArgs {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.trim_end_matches('/'))
    }

    /// GETs `path`, waiting at most `timeout`.
    pub(crate) fn get(&self, path: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        answer(&self.node, agent.get(&self.url(path)).call())
    }

    /// POSTs `body` to `path`, waiting at most `timeout`.
    pub(crate) fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        answer(&self.node, agent.post(&self.url(path)).send_json(body))
    }
}

fn answer(
    node: &str,
    result: Result<ureq::Response, ureq::Error>,
) -> anyhow::Result<serde_json::Value> {
    match result {
        Ok(response) => response
            .into_json()
            .with_context(|| format!("reading the answer of {node}")),
        Err(ureq::Error::Status(status, response)) => {
            let body: serde_json::Value = response.into_json().unwrap_or_default();
            let message = body["error"].as_str().unwrap_or("no reason given");
            anyhow::bail!("the node answered {status}: {message}")
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("reaching the node at {node}"))),
    }
}
