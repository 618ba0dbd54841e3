//! What happens in a node, for whoever listens ([`NodeEvent`], sent on a
//! broadcast channel that feeds the API's event stream), and the summary of one
//! stored event.

use amb_bytecode::Cid;
use amb_log::Event;
use libp2p::PeerId;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::ingest::Rule;

/// Most node events kept for a listener that lags (each names at most
/// [`STORED_PER_EVENT`] stored events); past it the listener is told how many it
/// missed.
pub const EVENT_BACKLOG: usize = 4096;

/// One event stored by the node (for the live event stream).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StoredSummary {
    /// The program.
    pub program: String,
    /// The event's CID.
    pub cid: String,
    /// Its log.
    pub log: String,
    /// Its place in the log.
    pub seq: u64,
    /// Its operation's mnemonic.
    pub op: String,
    /// Its operation's target name, if it has one.
    pub target: Option<String>,
    /// Its creator's key, hex.
    pub creator: String,
}

impl StoredSummary {
    /// The summary of an event of `program`.
    pub fn of(program: Cid, cid: Cid, event: &Event) -> StoredSummary {
        StoredSummary {
            program: program.to_string(),
            cid: cid.to_string(),
            log: event.log().to_string(),
            seq: event.seq(),
            op: event.op().opcode().mnemonic().to_string(),
            target: event.op().target().name().map(str::to_string),
            creator: hex::encode(event.creator().as_bytes()),
        }
    }
}

/// Most stored events one [`NodeEvent::Stored`] names.
pub const STORED_PER_EVENT: usize = 256;

/// Tells listeners of stored events, at most [`STORED_PER_EVENT`] a node event (a
/// listener that lags keeps bounded messages).
pub(crate) fn emit_stored(events: &broadcast::Sender<NodeEvent>, summaries: Vec<StoredSummary>) {
    for chunk in summaries.chunks(STORED_PER_EVENT) {
        let _ = events.send(NodeEvent::Stored(chunk.to_vec()));
    }
}

/// What happens in the node, for whoever listens.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// Events were stored (written here, or received and checked).
    Stored(Vec<StoredSummary>),
    /// A peer subscribed to a program's topic.
    Subscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: String,
    },
    /// A connection to a peer was made.
    Connected(PeerId),
    /// A peer was found by mDNS.
    Discovered(PeerId),
    /// A peer's message was refused.
    Refused {
        /// The peer that sent it.
        peer: PeerId,
        /// The rule.
        rule: Rule,
    },
}
