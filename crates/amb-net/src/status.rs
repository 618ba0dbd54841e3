//! What a node tells of itself: the line it prints once it listens ([`Ready`]),
//! its state ([`NodeInfo`]), a program's status ([`ProgramStatus`]) and where its
//! walk of a delegated run is ([`ExecutionStatus`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::faults::FaultCounts;

/// What the node says once it listens.
#[derive(Clone, Debug, Serialize)]
pub struct Ready {
    /// Its peer id.
    pub peer_id: String,
    /// The addresses it listens on (the real ports when port 0 was asked).
    pub listen: Vec<String>,
}

/// A peer, as `amb info` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    /// Its id.
    pub peer_id: String,
    /// Its gossipsub score.
    pub score: Option<f64>,
    /// Messages of it refused.
    pub refused: u32,
}

/// What the swarm task knows of the node.
#[derive(Debug)]
pub(crate) struct SwarmInfo {
    /// Gossip messages ignored because the intake's queue was full.
    pub(crate) buffer_full: u64,
    /// Sync requests refused `not-entitled`.
    pub(crate) not_entitled: u64,
    /// Payload bytes received ([`crate::codec::Received`]).
    pub(crate) received_bytes: u64,
    pub(crate) listen: Vec<String>,
    pub(crate) peers: Vec<PeerInfo>,
    pub(crate) banned: Vec<String>,
    pub(crate) faults: Option<FaultCounts>,
}

/// The node's state, as `amb info` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeInfo {
    /// Its peer id.
    pub peer_id: String,
    /// Its listen addresses.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerInfo>,
    /// Refused messages by rule.
    pub refused: BTreeMap<String, u64>,
    /// Peers banned for refused messages.
    pub banned: Vec<String>,
    /// Programs the store holds (replayed in memory or not).
    pub programs: usize,
    /// Events waiting for their predecessors.
    pub waiting: usize,
    /// Events received for orders this node walks that are in none of them
    /// (counted when a walk ends): outside its grant.
    pub outside_grant: u64,
    /// Payload bytes received: gossip messages' data and the bodies of sync
    /// and delegation requests and responses (no transport framing, no gossip
    /// control messages, no duplicate gossip gossipsub dropped).
    pub received_bytes: u64,
    /// What the fault layer did, when there is one.
    pub faults: Option<FaultCounts>,
}

/// Status of a program on this node.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramStatus {
    /// `/amb/<cid>`.
    pub address: String,
    /// Whether the node holds it (manifest, blocks, replayed state).
    pub held: bool,
    /// Events applied.
    pub events: usize,
    /// Whether its run is complete (the root log ends with a payload).
    pub complete: bool,
    /// This node's walk of its plan, if it is a host of a delegated run.
    pub execution: Option<ExecutionStatus>,
    /// Why checking the program failed here lately (a panic caught by the intake;
    /// its replay state was dropped and is rebuilt on next use), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Where a walk is, as the API and the watchdog see it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ExecutionStatus {
    /// Plan events walked.
    pub position: usize,
    /// Plan events in all.
    pub total: usize,
    /// Whether the walk is complete.
    pub done: bool,
    /// The host (peer id) whose event the walk waits for, if it waits for one.
    pub waiting_for: Option<String>,
    /// Milliseconds since the walk last moved.
    pub idle_ms: u64,
    /// Why the walk gave up, if it did.
    pub failed: Option<String>,
}
