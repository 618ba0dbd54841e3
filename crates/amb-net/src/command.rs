//! The messages between a node's parts (`ARCHITECTURE.md`, amb-net): commands to
//! the swarm task ([`Command`]), jobs for the intake thread ([`Job`]) and requests
//! to host a deployment for the hosting service ([`HostRequest`]). Each carries a
//! one-shot reply where the sender waits for an answer. Every queue they travel on
//! is bounded (the sizes are here).

use std::collections::BTreeMap;

use amb_bytecode::Cid;
use libp2p::{Multiaddr, PeerId, gossipsub, request_response};
use serde_bytes::ByteBuf;
use tokio::sync::oneshot;

use crate::{
    error::NetError,
    execution::Start,
    ingest::{Outcome, Refusal},
    status::{ExecutionStatus, ProgramStatus, SwarmInfo},
    wire::{DelegateRequest, DelegateResponse, SyncRequest, SyncResponse},
};

/// Most commands waiting for the swarm task.
pub(crate) const COMMAND_QUEUE: usize = 1024;
/// Most requests to host a deployment waiting for the hosting service.
pub(crate) const HOSTING_QUEUE: usize = 64;

pub(crate) enum Command {
    Info(oneshot::Sender<SwarmInfo>),
    Dial(Multiaddr),
    Subscribe(Cid),
    Publish {
        program: Cid,
        data: Vec<u8>,
        reply: Option<oneshot::Sender<Result<(), gossipsub::PublishError>>>,
    },
    Delegate {
        peer: PeerId,
        request: DelegateRequest,
        reply: oneshot::Sender<Result<DelegateResponse, NetError>>,
    },
    Reserve {
        walk: Cid,
        first: usize,
        peer: PeerId,
        request: DelegateRequest,
    },
    /// Ask `peer` with `request` and answer `channel` with its answer.
    Relay {
        peer: PeerId,
        request: DelegateRequest,
        channel: request_response::ResponseChannel<DelegateResponse>,
    },
    RespondDelegate {
        channel: request_response::ResponseChannel<DelegateResponse>,
        response: DelegateResponse,
    },
    TopicPeers(Cid, oneshot::Sender<Vec<PeerId>>),
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, NetError>>,
    },
    Respond {
        channel: request_response::ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    Validated {
        id: gossipsub::MessageId,
        source: PeerId,
        refusal: Option<Refusal>,
    },
    Deliver {
        id: gossipsub::MessageId,
        source: PeerId,
        message: gossipsub::Message,
    },
    Provide(Cid),
    FindProviders(Cid, oneshot::Sender<Vec<PeerId>>),
    Shutdown,
}

pub(crate) enum Job {
    Gossip {
        id: gossipsub::MessageId,
        source: PeerId,
        message: gossipsub::Message,
    },
    Synced {
        program: Cid,
        events: Vec<Vec<u8>>,
        reply: oneshot::Sender<Outcome>,
    },
    Hold(Cid, oneshot::Sender<Result<(), Refusal>>),
    AppliedLengths(Cid, oneshot::Sender<std::collections::HashMap<Cid, u64>>),
    Status(Cid, oneshot::Sender<ProgramStatus>),
    Execute(Box<Start>, Vec<PeerId>),
    Reserve {
        walk: Cid,
        second: usize,
        peer: PeerId,
        channel: request_response::ResponseChannel<DelegateResponse>,
    },
    Arrange {
        order: Cid,
        first: usize,
        peer: PeerId,
        channel: request_response::ResponseChannel<DelegateResponse>,
    },
    Feed {
        order: Cid,
        from: usize,
        peer: PeerId,
        channel: request_response::ResponseChannel<DelegateResponse>,
    },
    /// Events (and bare refs' CIDs) for an order this node walks, from its maker.
    Take {
        order: Cid,
        events: Vec<ByteBuf>,
        told: Vec<(u64, ByteBuf)>,
        author: PeerId,
    },
    /// The order made for a peer in the walk of a program, and how far the walk
    /// is into it.
    FeedOf(Cid, PeerId, oneshot::Sender<Option<(Cid, usize)>>),
    Reserved {
        walk: Cid,
        first: usize,
        granted: bool,
    },
    Drive(Cid),
    Fail(Cid, String),
    Execution(Cid, oneshot::Sender<Option<ExecutionStatus>>),
    /// Refused messages by rule, held programs, waiting events, events received
    /// outside the orders this node walks.
    Counters(oneshot::Sender<(BTreeMap<String, u64>, usize, usize, u64)>),
}

impl Job {
    /// The job's kind, for timing traces.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Job::Gossip { .. } => "Gossip",
            Job::Synced { .. } => "Synced",
            Job::Hold { .. } => "Hold",
            Job::AppliedLengths { .. } => "AppliedLengths",
            Job::Status { .. } => "Status",
            Job::Execute { .. } => "Execute",
            Job::Reserve { .. } => "Reserve",
            Job::Arrange { .. } => "Arrange",
            Job::Feed { .. } => "Feed",
            Job::Take { .. } => "Take",
            Job::FeedOf { .. } => "FeedOf",
            Job::Reserved { .. } => "Reserved",
            Job::Drive { .. } => "Drive",
            Job::Fail { .. } => "Fail",
            Job::Execution { .. } => "Execution",
            Job::Counters { .. } => "Counters",
        }
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Job {
    /// The channel of a job that answers a peer's request.
    pub(crate) fn into_channel(
        self,
    ) -> Option<request_response::ResponseChannel<DelegateResponse>> {
        match self {
            Job::Reserve { channel, .. }
            | Job::Arrange { channel, .. }
            | Job::Feed { channel, .. } => Some(channel),
            _ => None,
        }
    }
}

/// A peer asks this node to walk an order (its part of a deployment).
pub(crate) struct HostRequest {
    pub(crate) peer: PeerId,
    pub(crate) order: ByteBuf,
    pub(crate) blocks: Vec<ByteBuf>,
    pub(crate) channel: request_response::ResponseChannel<DelegateResponse>,
}
