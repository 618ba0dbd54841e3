//! Why a node could not start or do what it was asked ([`NetError`]), one variant
//! per kind of failure, so that callers (the HTTP API) match on kinds, not words.

use libp2p::PeerId;

use crate::ingest::Refusal;

/// Why a node could not start or do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The node could not start.
    #[error("starting the node: {0}")]
    Start(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A peer failed to answer.
    #[error("peer {peer}: {detail}")]
    Peer {
        /// The peer.
        peer: PeerId,
        /// What happened.
        detail: String,
    },
    /// Events were refused.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The caller's request cannot be done as asked: a syntax or compile error, a
    /// delegate that is not a peer, a name the program does not have.
    #[error("{0}")]
    Invalid(String),
    /// A request over one of the node's limits, named.
    #[error("over the limit {limit}: {detail}")]
    Limit {
        /// The limit's name (its setting, `spec/network.md` §1).
        limit: &'static str,
        /// What went over it, and by how much.
        detail: String,
    },
    /// Nothing known by that address here, and no peer gave it.
    #[error("{0}")]
    NotFound(String),
    /// A wait ran out (a run not complete, a peer that does not answer in time).
    #[error("{0}")]
    Timeout(String),
    /// The node's own store failed; `full` when its disk is full.
    #[error("the store failed: {detail}")]
    Storage {
        /// Whether the disk is full (it passes once space returns).
        full: bool,
        /// What failed.
        detail: String,
    },
    /// The node cannot take more now (a full intake, too many requests).
    #[error("busy: {0}")]
    Busy(String),
    /// Something else, said in words.
    #[error("{0}")]
    Other(String),
}

impl From<amb_log::StoreError> for NetError {
    fn from(e: amb_log::StoreError) -> NetError {
        NetError::Storage {
            full: e.is_disk_full(),
            detail: e.to_string(),
        }
    }
}
