//! Why a node could not start or do what it was asked ([`NetError`]): one variant
//! per kind of failure, each carrying what code matches on (a peer, a program, a
//! rule, a limit, a typed cause), so that callers (the HTTP API) map kinds, not
//! words. The messages are for people.

use amb_bytecode::Cid;
use amb_vm::{stored::LoadError, verify::VerifyError};
use libp2p::{Multiaddr, PeerId};

use crate::{
    ingest::Refusal,
    wire::{DecodeError, DelegateRefusal, SyncRefusal},
};

/// Why a node could not start or do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The node could not start.
    #[error("starting the node: {0}")]
    Start(#[from] StartError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// A peer failed to answer as the protocol says.
    #[error("peer {peer}: {problem}")]
    Peer {
        /// The peer.
        peer: PeerId,
        /// What went wrong.
        problem: Box<PeerError>,
    },
    /// Events were refused.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The caller's request cannot be done as asked: a delegate that is not a
    /// peer, a name the program does not have.
    #[error("{0}")]
    Invalid(String),
    /// The program's text does not parse (the caller's mistake, placed).
    #[error("syntax error: {0}")]
    Syntax(#[source] amb_syntax::SyntaxError),
    /// The program does not compile to bytecode (the caller's mistake).
    #[error("compiling: {0}")]
    Compile(#[source] amb_bytecode::CompileError),
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
    /// A delegate refused to host its slices of a deployment.
    #[error("{0}")]
    HostRefused(Box<HostRefused>),
    /// This node cannot walk a deployment (`delegation::prepare`).
    #[error("{0}")]
    Deployment(#[from] DeploymentError),
    /// A run failed on this node (its walk gave up, or a check of its events
    /// panicked); the reason is the walk's or the guard's.
    #[error("/amb/{program}: the run failed here: {reason}")]
    RunFailed {
        /// The program.
        program: Cid,
        /// Why.
        reason: String,
    },
    /// Verifying a program's stored events failed (not by a broken rule: a
    /// broken rule is [`NetError::Refused`]).
    #[error("verifying /amb/{program}: {source}")]
    Verify {
        /// The program.
        program: Cid,
        /// What failed.
        #[source]
        source: Box<VerifyError>,
    },
    /// A stored event to publish is missing or does not decode.
    #[error("stored event {cid}: {problem}")]
    StoredEvent {
        /// The event.
        cid: Cid,
        /// What is wrong.
        problem: String,
    },
    /// Gossipsub refused to publish.
    #[error("publishing on /amb/{program}: {detail}")]
    Publish {
        /// The program.
        program: Cid,
        /// Gossipsub's words.
        detail: String,
    },
    /// The node failed inside (a caught panic while checking a program).
    #[error("{0}")]
    Internal(String),
    /// A task of the node failed (it panicked or was cancelled).
    #[error("{what} failed: {detail}")]
    Task {
        /// Which task.
        what: &'static str,
        /// How.
        detail: String,
    },
}

impl From<amb_log::StoreError> for NetError {
    fn from(e: amb_log::StoreError) -> NetError {
        NetError::Storage {
            full: e.is_disk_full(),
            detail: e.to_string(),
        }
    }
}

impl NetError {
    /// The error of a blocking task that did not finish (it panicked or the
    /// runtime is stopping).
    pub(crate) fn task(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> NetError {
        move |e| NetError::Task {
            what,
            detail: e.to_string(),
        }
    }
}

/// A delegate's refusal to host its slices of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("peer {peer} refused to host its slices of /amb/{program}: {reason}: {detail}")]
pub struct HostRefused {
    /// The delegate.
    pub peer: PeerId,
    /// The program.
    pub program: Cid,
    /// Why, as the delegate said it.
    pub reason: DelegateRefusal,
    /// Its words.
    pub detail: String,
}

impl NetError {
    /// A peer's failure to answer as the protocol says.
    pub(crate) fn peer(peer: PeerId, problem: PeerError) -> NetError {
        NetError::Peer {
            peer,
            problem: Box::new(problem),
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A behaviour could not be set up.
    #[error("{0}")]
    Behaviour(#[from] BehaviourError),
    /// The transport could not be set up.
    #[error("the transport: {0}")]
    Transport(String),
    /// Listening on an address failed.
    #[error("listening on {address}: {detail}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// libp2p's words.
        detail: String,
    },
    /// A listener closed or failed before it had an address.
    #[error("a listener failed: {0}")]
    Listener(String),
    /// No listener had an address in time.
    #[error("no listen address within 10 s")]
    NoListenAddress,
    /// Dialing a configured peer failed at once.
    #[error("dialing {address}: {detail}")]
    Dial {
        /// The peer's address.
        address: Multiaddr,
        /// libp2p's words.
        detail: String,
    },
    /// The intake thread could not be started.
    #[error("starting the intake thread: {0}")]
    IntakeThread(#[source] std::io::Error),
}

/// Why a node's behaviours could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BehaviourError {
    /// Gossipsub's configuration or scoring.
    #[error("gossipsub: {0}")]
    Gossipsub(String),
    /// mDNS could not start.
    #[error("mDNS: {0}")]
    Mdns(#[source] std::io::Error),
}

/// How a peer failed to answer as the protocol says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The request failed (unreachable, timed out, the stream closed).
    #[error("{0}")]
    Failed(String),
    /// It refused the request.
    #[error("refused the request: {reason}: {detail}")]
    Refused {
        /// Why.
        reason: SyncRefusal,
        /// Its words.
        detail: String,
    },
    /// It does not hold the program.
    #[error("does not hold the program")]
    Unknown,
    /// It answered with another kind of response than the request's.
    #[error("answered with the wrong kind of response")]
    WrongAnswer,
    /// It gave none of the blocks asked, or left one out.
    #[error("does not give block {0}")]
    NoBlock(Cid),
    /// A block it gave, reached from the program, is not bytecode.
    #[error("gave block {cid}, which is not bytecode: {detail}")]
    NotBytecode {
        /// The block.
        cid: Cid,
        /// What is wrong.
        detail: String,
    },
    /// The program's manifest it gave is not a program manifest.
    #[error("gave /amb/{0}, which is not a program manifest")]
    NotAProgram(Cid),
    /// Event bytes it sent do not decode.
    #[error("sent malformed event bytes {0}")]
    MalformedEvent(Cid),
    /// It stopped sending the events below its heads.
    #[error("stopped sending the events below its heads")]
    StoppedSending,
}

/// Why this node cannot walk a deployment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeploymentError {
    /// The program could not be loaded from the store.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// A host key of the deployment is not an Ed25519 key.
    #[error("a host key is not an Ed25519 key")]
    HostKey,
    /// The program manifest does not list exactly the deployment's hosts.
    #[error("/amb/{0}: the manifest does not list exactly the deployment's hosts")]
    Hosts(Cid),
    /// The deployment's first host is not the program's creator.
    #[error("the deployment's first host is not the program's creator")]
    Creator,
    /// This node is not a host of the deployment.
    #[error("this node is not a host of the deployment")]
    NotAHost,
    /// A name is delegated to a host the deployment does not have.
    #[error("`{0}` is delegated to no host")]
    NoHost(String),
    /// The plan failed.
    #[error("reducing: {0}")]
    Plan(#[source] amb_vm::plan::PlanError),
    /// A kept deployment does not read back.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// A deployment kept under another program.
    #[error("kept under another program")]
    KeptElsewhere,
    /// An order's bytes do not read as an order.
    #[error("{0}")]
    Order(#[from] amb_vm::order::OrderError),
    /// The order's root log is not written by its maker (`Order::given_logs_written_by`).
    #[error("the order's root log is not written by the peer that sent it")]
    Maker,
}
