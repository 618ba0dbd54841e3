//! A node's settings (`spec/network.md` §1, "Configuration"): defaults, then the
//! `[node]` table of `config.toml`, then `AMB_NODE_*` variables, then flags (the
//! binary applies those last).

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::Deserialize;

use crate::{faults::FaultConfig, ingest::IngestLimits, limits::DeployLimits};

/// Everything a node is started with.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (and to keep in the routing table).
    pub peers: Vec<Multiaddr>,
    /// Whether to discover peers on the local network by mDNS.
    pub mdns: bool,
    /// Most established connections.
    pub max_connections: u32,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Gossipsub's heartbeat.
    pub heartbeat: Duration,
    /// How long a sync request may take.
    pub request_timeout: Duration,
    /// Refused messages after which a peer is banned (blocked, disconnected).
    pub ban_after: u32,
    /// The intake's bounds (early events, programs whose replay state is kept).
    pub ingest: IngestLimits,
    /// Most jobs waiting for the intake thread; past it gossip is ignored
    /// (`buffer-full`) and callers are told the node is busy.
    pub intake_queue: usize,
    /// Every deployment's limits (a request may lower them, never raise them).
    pub deploy: DeployLimits,
    /// The most bytes of store pages the node caches in memory (the binary opens
    /// the store with it).
    pub store_cache_bytes: usize,
    /// Whether this node hosts slices that other peers delegate to it.
    pub accept_delegations: bool,
    /// The peers whose orders this node walks (`None`: any peer's). A delegate
    /// cannot see the program an order comes from, so it signs what the order
    /// asks: an operator who hosts for known deployers only lists them here.
    pub order_makers: Option<Vec<PeerId>>,
    /// How long a delegated run waits for another host's next event before it
    /// gives up.
    pub peer_timeout: Duration,
    /// Most programs whose provider records the DHT keeps (this node's own and
    /// other peers'); past it, a program is not announced.
    pub max_provider_records: usize,
    /// A seeded fault layer between the swarm and the node (tests, benchmarks).
    pub faults: Option<FaultConfig>,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            listen: default_listen(),
            peers: Vec::new(),
            mdns: true,
            max_connections: 64,
            idle_timeout: Duration::from_secs(300),
            heartbeat: Duration::from_millis(500),
            request_timeout: Duration::from_secs(30),
            ban_after: 4,
            ingest: IngestLimits::default(),
            intake_queue: DEFAULT_INTAKE_QUEUE,
            deploy: DeployLimits::default(),
            store_cache_bytes: DEFAULT_STORE_CACHE_MIB << 20,
            accept_delegations: true,
            order_makers: None,
            peer_timeout: Duration::from_secs(60),
            max_provider_records: 65_536,
            faults: None,
        }
    }
}

/// The store's page cache of a node, MiB, by default.
pub const DEFAULT_STORE_CACHE_MIB: usize = 32;

/// Most jobs waiting for the intake thread, by default.
pub const DEFAULT_INTAKE_QUEUE: usize = 256;

/// TCP on every interface, and QUIC with the `quic` feature; ports chosen by the
/// system.
fn default_listen() -> Vec<Multiaddr> {
    let mut listen = vec!["/ip4/0.0.0.0/tcp/0".parse().expect("a valid address")];
    if cfg!(feature = "quic") {
        listen.push(
            "/ip4/0.0.0.0/udp/0/quic-v1"
                .parse()
                .expect("a valid address"),
        );
    }
    listen
}

/// The `[node]` table of `config.toml`; every key is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTable {
    /// Addresses to listen on.
    pub listen: Option<Vec<String>>,
    /// The HTTP API's `HOST:PORT` (used by the binary).
    pub api: Option<String>,
    /// Whether a loopback API requires the bearer token of the home's `api_token`
    /// file (used by the binary; beyond loopback it is always required).
    pub api_token: Option<bool>,
    /// Static peers.
    pub peers: Option<Vec<String>>,
    /// mDNS discovery.
    pub mdns: Option<bool>,
    /// Most connections.
    pub max_connections: Option<u32>,
    /// Idle connection timeout, seconds.
    pub idle_timeout_secs: Option<u64>,
    /// Gossipsub heartbeat, milliseconds.
    pub heartbeat_ms: Option<u64>,
    /// Refusals before a ban.
    pub ban_after: Option<u32>,
    /// Whether to host slices delegated by other peers.
    pub accept_delegations: Option<bool>,
    /// The peer ids whose orders this node walks (absent: any peer's).
    pub order_makers: Option<Vec<String>>,
    /// How long a delegated run waits for another host, seconds.
    pub peer_timeout_secs: Option<u64>,
    /// Largest program text a deployment may send, bytes.
    pub max_deploy_bytes: Option<u64>,
    /// Deepest nesting of a deployed program.
    pub max_deploy_depth: Option<u64>,
    /// Most reduction steps of a deployed program's run.
    pub max_deploy_steps: Option<u64>,
    /// Most events of a deployed program's run.
    pub max_deploy_events: Option<u64>,
    /// Most programs whose replay state the intake keeps.
    pub max_held_programs: Option<u64>,
    /// Seconds after which an idle program's replay state is dropped.
    pub held_idle_secs: Option<u64>,
    /// Most events applied over the programs whose replay state is kept.
    pub max_held_events: Option<u64>,
    /// Most jobs waiting for the intake thread.
    pub intake_queue: Option<u64>,
    /// The store's page cache, MiB.
    pub store_cache_mib: Option<u64>,
    /// Most programs with provider records on the DHT.
    pub max_provider_records: Option<u64>,
}

impl NodeTable {
    /// Reads the table, then lets `AMB_NODE_<KEY>` variables (as `env` gives them)
    /// override each key: lists are comma-separated.
    pub fn load(
        table: Option<&toml::Table>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<NodeTable, ConfigError> {
        let mut node: NodeTable = match table {
            Some(t) => t
                .clone()
                .try_into()
                .map_err(|e| ConfigError::Table(e.to_string()))?,
            None => NodeTable::default(),
        };
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let number = |key: &'static str, v: String| -> Result<u64, ConfigError> {
            v.parse()
                .map_err(|_| ConfigError::NotANumber { key, value: v })
        };
        if let Some(v) = env("LISTEN") {
            node.listen = Some(list(v));
        }
        if let Some(v) = env("API") {
            node.api = Some(v);
        }
        if let Some(v) = env("API_TOKEN") {
            node.api_token = Some(boolean("API_TOKEN", &v)?);
        }
        if let Some(v) = env("PEERS") {
            node.peers = Some(list(v));
        }
        if let Some(v) = env("MDNS") {
            node.mdns = Some(boolean("MDNS", &v)?);
        }
        if let Some(v) = env("MAX_CONNECTIONS") {
            node.max_connections = Some(number("MAX_CONNECTIONS", v)? as u32);
        }
        if let Some(v) = env("IDLE_TIMEOUT_SECS") {
            node.idle_timeout_secs = Some(number("IDLE_TIMEOUT_SECS", v)?);
        }
        if let Some(v) = env("HEARTBEAT_MS") {
            node.heartbeat_ms = Some(number("HEARTBEAT_MS", v)?);
        }
        if let Some(v) = env("BAN_AFTER") {
            node.ban_after = Some(number("BAN_AFTER", v)? as u32);
        }
        if let Some(v) = env("ACCEPT_DELEGATIONS") {
            node.accept_delegations = Some(boolean("ACCEPT_DELEGATIONS", &v)?);
        }
        if let Some(v) = env("ORDER_MAKERS") {
            node.order_makers = Some(list(v));
        }
        if let Some(v) = env("PEER_TIMEOUT_SECS") {
            node.peer_timeout_secs = Some(number("PEER_TIMEOUT_SECS", v)?);
        }
        for (key, field) in [
            ("MAX_DEPLOY_BYTES", &mut node.max_deploy_bytes),
            ("MAX_DEPLOY_DEPTH", &mut node.max_deploy_depth),
            ("MAX_DEPLOY_STEPS", &mut node.max_deploy_steps),
            ("MAX_DEPLOY_EVENTS", &mut node.max_deploy_events),
            ("MAX_HELD_PROGRAMS", &mut node.max_held_programs),
            ("HELD_IDLE_SECS", &mut node.held_idle_secs),
            ("MAX_HELD_EVENTS", &mut node.max_held_events),
            ("INTAKE_QUEUE", &mut node.intake_queue),
            ("STORE_CACHE_MIB", &mut node.store_cache_mib),
            ("MAX_PROVIDER_RECORDS", &mut node.max_provider_records),
        ] {
            if let Some(v) = env(key) {
                *field = Some(number(key, v)?);
            }
        }
        Ok(node)
    }

    /// The node settings this table gives, over the defaults.
    pub fn to_config(&self) -> Result<NodeConfig, ConfigError> {
        let mut config = NodeConfig::default();
        let addresses =
            |list: &[String], what: &'static str| -> Result<Vec<Multiaddr>, ConfigError> {
                list.iter()
                    .map(|a| {
                        a.parse()
                            .map_err(|e: libp2p::multiaddr::Error| ConfigError::Address {
                                what,
                                address: a.clone(),
                                detail: e.to_string(),
                            })
                    })
                    .collect()
            };
        if let Some(listen) = &self.listen {
            config.listen = addresses(listen, "listen")?;
        }
        if let Some(peers) = &self.peers {
            config.peers = addresses(peers, "peer")?;
        }
        if let Some(mdns) = self.mdns {
            config.mdns = mdns;
        }
        if let Some(n) = self.max_connections {
            config.max_connections = n;
        }
        if let Some(s) = self.idle_timeout_secs {
            config.idle_timeout = Duration::from_secs(s);
        }
        if let Some(ms) = self.heartbeat_ms {
            config.heartbeat = Duration::from_millis(ms.max(10));
        }
        if let Some(n) = self.ban_after {
            config.ban_after = n.max(1);
        }
        if let Some(accept) = self.accept_delegations {
            config.accept_delegations = accept;
        }
        if let Some(makers) = &self.order_makers {
            let peer = |id: &String| {
                id.parse::<PeerId>().map_err(|e| ConfigError::PeerId {
                    id: id.clone(),
                    detail: e.to_string(),
                })
            };
            config.order_makers = Some(makers.iter().map(peer).collect::<Result<_, _>>()?);
        }
        if let Some(s) = self.peer_timeout_secs {
            config.peer_timeout = Duration::from_secs(s.max(1));
        }
        let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let deploy = &mut config.deploy;
        if let Some(n) = self.max_deploy_bytes {
            deploy.max_bytes = size(n);
        }
        if let Some(n) = self.max_deploy_depth {
            deploy.max_depth = size(n.max(1));
        }
        if let Some(n) = self.max_deploy_steps {
            deploy.max_steps = n;
        }
        if let Some(n) = self.max_deploy_events {
            deploy.max_events = n;
        }
        if let Some(n) = self.max_held_programs {
            config.ingest.max_held = size(n.max(1));
        }
        if let Some(s) = self.held_idle_secs {
            config.ingest.held_idle = Duration::from_secs(s.max(1));
        }
        if let Some(n) = self.max_held_events {
            config.ingest.max_held_events = size(n);
        }
        if let Some(n) = self.intake_queue {
            config.intake_queue = size(n.max(1));
        }
        if let Some(n) = self.store_cache_mib {
            config.store_cache_bytes = size(n.max(1)).saturating_mul(1 << 20);
        }
        if let Some(n) = self.max_provider_records {
            config.max_provider_records = size(n.max(1));
        }
        Ok(config)
    }
}

/// A boolean variable's value.
fn boolean(key: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(ConfigError::NotABoolean {
            key,
            value: v.to_string(),
        }),
    }
}

/// Why the node's settings cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The `[node]` table of `config.toml` is malformed or has an unknown key.
    #[error("config.toml [node]: {0}")]
    Table(String),
    /// A variable that must be a number.
    #[error("AMB_NODE_{key}: `{value}` is not a number")]
    NotANumber {
        /// The variable, after `AMB_NODE_`.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A variable that must be true or false.
    #[error("AMB_NODE_{key}: `{value}` is not true or false")]
    NotABoolean {
        /// The variable, after `AMB_NODE_`.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A listen or peer address that is no multiaddress.
    #[error("{what} address `{address}`: {detail}")]
    Address {
        /// `listen` or `peer`.
        what: &'static str,
        /// The address.
        address: String,
        /// The parser's words.
        detail: String,
    },
    /// An `order_makers` entry that is no peer id.
    #[error("order_makers: `{id}` is no peer id: {detail}")]
    PeerId {
        /// The entry.
        id: String,
        /// The parser's words.
        detail: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_the_file_and_typos_are_refused() {
        let table: toml::Table = toml::from_str(
            "listen = [\"/ip4/127.0.0.1/tcp/4001\"]\nmdns = true\nmax_connections = 9",
        )
        .unwrap();
        let node =
            NodeTable::load(Some(&table), |k| (k == "MDNS").then(|| "false".to_string())).unwrap();
        let config = node.to_config().unwrap();
        assert!(!config.mdns);
        assert_eq!(config.max_connections, 9);
        assert_eq!(config.listen[0].to_string(), "/ip4/127.0.0.1/tcp/4001");

        let typo: toml::Table = toml::from_str("lisen = []").unwrap();
        let error = NodeTable::load(Some(&typo), |_| None).unwrap_err();
        assert!(error.to_string().contains("lisen"), "{error}");
        let bad = NodeTable::load(None, |k| (k == "MDNS").then(|| "maybe".into())).unwrap_err();
        assert!(bad.to_string().contains("AMB_NODE_MDNS"), "{bad}");
        let address = NodeTable {
            peers: Some(vec!["nowhere".into()]),
            ..NodeTable::default()
        };
        assert!(matches!(
            address.to_config().unwrap_err(),
            ConfigError::Address { what: "peer", .. }
        ));
    }

    #[test]
    fn the_bounds_are_settings_with_defaults() {
        let config = NodeTable::default().to_config().unwrap();
        assert_eq!(config.deploy, DeployLimits::default());
        assert_eq!(config.intake_queue, DEFAULT_INTAKE_QUEUE);
        let table: toml::Table =
            toml::from_str("max_deploy_depth = 50\nmax_held_programs = 3").unwrap();
        let node = NodeTable::load(Some(&table), |k| {
            (k == "INTAKE_QUEUE").then(|| "7".to_string())
        })
        .unwrap();
        let config = node.to_config().unwrap();
        assert_eq!(config.deploy.max_depth, 50);
        assert_eq!(config.ingest.max_held, 3);
        assert_eq!(config.intake_queue, 7);
        let bad = NodeTable::load(None, |k| (k == "MAX_DEPLOY_STEPS").then(|| "many".into()))
            .unwrap_err();
        assert!(
            bad.to_string().contains("AMB_NODE_MAX_DEPLOY_STEPS"),
            "{bad}"
        );
    }
}
