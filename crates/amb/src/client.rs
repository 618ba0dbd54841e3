//! Talking to a running node's HTTP API (`--node URL`): JSON in, JSON out, with
//! the node's bearer token when there is one: `AMB_API_TOKEN`, else the
//! `api_token` file of the home (`--home`, `AMB_HOME` or the default). An error
//! answer becomes a [`NodeError`] holding the node's `{"error"}` object; a node
//! that cannot be reached, or that closes the connection while the request is
//! being sent (a body over its limit), is an [`Unreachable`]. Neither carries an
//! I/O error, so neither passes for our own output's broken pipe.

use std::{fmt, time::Duration};

use serde_json::{Value, json};

use crate::home::HomeArgs;

/// The variable holding the API's bearer token.
pub(crate) const TOKEN_ENV: &str = "AMB_API_TOKEN";

/// `--node URL`: the node's API (and `--home`, whose token it sends).
#[derive(Debug, Clone)]
pub(crate) struct NodeArgs {
    node: String,
    home: HomeArgs,
}

/// The node answered with an error status.
#[derive(Debug)]
pub(crate) struct NodeError {
    /// The HTTP status.
    pub(crate) status: u16,
    /// Its `{"kind", "message", "rule"?, "at"?}`.
    pub(crate) error: Value,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.error["message"].as_str().unwrap_or("no reason given");
        write!(f, "the node answered {}: {message}", self.status)
    }
}

impl std::error::Error for NodeError {}

/// The node could not be reached, or broke the exchange off.
#[derive(Debug)]
pub(crate) struct Unreachable(pub(crate) String);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

impl NodeArgs {
    /// The node at `url`, with the token of `home`.
    pub(crate) fn new(url: &str, home: &HomeArgs) -> NodeArgs {
        NodeArgs {
            node: url.to_string(),
            home: home.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.node.trim_end_matches('/'))
    }

    /// The bearer token to send, if any.
    fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(token) = std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(token));
        }
        match self.home.resolve() {
            Ok(home) => Ok(home.api_token()?),
            // No home anywhere: no token to send.
            Err(_) => Ok(None),
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<ureq::Request> {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        let request = agent.request(method, &self.url(path));
        Ok(match self.token()? {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        })
    }

    /// GETs `path`, waiting at most `timeout`.
    pub(crate) fn get(&self, path: &str, timeout: Duration) -> anyhow::Result<Value> {
        let result = self.request("GET", path, timeout)?.call();
        answer(&self.node, result)
    }

    /// GETs `path` and its answer's bytes (a file, not JSON), waiting at most
    /// `timeout`; an error answer is a [`NodeError`] as for [`NodeArgs::get`].
    pub(crate) fn get_bytes(&self, path: &str, timeout: Duration) -> anyhow::Result<Vec<u8>> {
        let response = answered(&self.node, self.request("GET", path, timeout)?.call())?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).map_err(|e| {
            Unreachable(format!(
                "reading the answer of the node at {}: {e}",
                self.node
            ))
        })?;
        Ok(bytes)
    }

    /// POSTs `body` to `path`, waiting at most `timeout`.
    pub(crate) fn post(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let result = self.request("POST", path, timeout)?.send_json(body);
        answer(&self.node, result)
    }
}

/// A JSON answer's value.
fn answer(node: &str, result: Result<ureq::Response, ureq::Error>) -> anyhow::Result<Value> {
    answered(node, result)?
        .into_json()
        .map_err(|e| Unreachable(format!("reading the answer of the node at {node}: {e}")).into())
}

/// A successful answer, or the error the node gave or the transport met.
fn answered(
    node: &str,
    result: Result<ureq::Response, ureq::Error>,
) -> anyhow::Result<ureq::Response> {
    match result {
        Ok(response) => Ok(response),
        Err(ureq::Error::Status(status, response)) => {
            let text = response.into_string().unwrap_or_default();
            let error = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|body| body.get("error").cloned())
                .filter(Value::is_object)
                .unwrap_or_else(|| {
                    let message = if text.trim().is_empty() {
                        "no reason given"
                    } else {
                        text.trim()
                    };
                    json!({ "kind": "http", "message": message })
                });
            Err(NodeError { status, error }.into())
        }
        Err(ureq::Error::Transport(transport)) => {
            let io = std::error::Error::source(&transport)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .map(std::io::Error::kind);
            let cut = matches!(
                io,
                Some(std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
            );
            let message = if cut {
                format!(
                    "the node at {node} closed the connection while the request was being sent \
                     (is it over the node's limits?): {transport}"
                )
            } else {
                format!("reaching the node at {node}: {transport}")
            };
            Err(Unreachable(message).into())
        }
    }
}
