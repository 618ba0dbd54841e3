//! A running peer (`spec/network.md` §1): one task owns the libp2p swarm and
//! everything else talks to it through a command channel with one-shot replies; one
//! thread owns the intake of events (checks, replay, store writes); node events
//! (events stored, peers, subscriptions) go out on a broadcast channel.
//!
//! Every channel between them is bounded, and no cycle of waits can form: the
//! swarm task never waits to send (it `try_send`s jobs to the intake and requests
//! to the hosting service, and refuses what does not fit: gossip is ignored as
//! `buffer-full`, a peer's request is refused `busy`); the intake thread may wait
//! for room in the command channel, which the swarm task empties without waiting
//! for anything; callers are told [`NetError::Busy`] when the intake's queue is
//! full. A panic in the swarm task or outside the intake's per-program guard
//! cannot be recovered from: the node reports it and the process exits with
//! [`FATAL_EXIT`], never leaving a node that only answers [`NetError::Stopped`].

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use amb_bytecode::Cid;
use amb_log::{Event, SigningKey, Store};
use amb_vm::{execute::Execution, plan::EventIx};
use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, gossipsub, noise, request_response, swarm::SwarmEvent, tcp, yamux,
};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    behaviour::Behaviour,
    config::NodeConfig,
    deploy::DeployLimits,
    execution::ExecutionStatus,
    faults::{FaultCounts, Faults},
    identity,
    ingest::{Ingest, Outcome, Refusal},
    wire::{DelegateRequest, DelegateResponse, SyncRequest, SyncResponse},
};

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

/// Most node events kept for a listener that lags (each names at most
/// [`STORED_PER_EVENT`] stored events); past it the listener is told how many it
/// missed.
pub const EVENT_BACKLOG: usize = 4096;
/// Most commands waiting for the swarm task.
pub const COMMAND_QUEUE: usize = 1024;
/// Most requests to host a deployment waiting for the hosting service.
pub const HOSTING_QUEUE: usize = 64;
/// The exit status of a node process whose swarm task or intake thread panicked.
pub const FATAL_EXIT: i32 = 70;

/// Reports a panic that the node cannot recover from, and exits the process.
pub(crate) fn fatal(what: &str, panic: &(dyn std::any::Any + Send)) -> ! {
    let message = crate::intake::panic_message(panic);
    tracing::error!("{what} panicked: {message}; the node stops");
    eprintln!("amb node: {what} panicked: {message}; the node stops");
    std::process::exit(FATAL_EXIT)
}

/// What the node says once it listens.
#[derive(Clone, Debug, Serialize)]
pub struct Ready {
    /// Its peer id.
    pub peer_id: String,
    /// The addresses it listens on (the real ports when port 0 was asked).
    pub listen: Vec<String>,
}

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
        rule: &'static str,
    },
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
    /// Programs held.
    pub programs: usize,
    /// Events waiting for their predecessors.
    pub waiting: usize,
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

pub(crate) enum Command {
    Info(oneshot::Sender<SwarmInfo>),
    Dial(Multiaddr),
    Subscribe(Cid),
    Publish {
        program: Cid,
        data: Vec<u8>,
        reply: Option<oneshot::Sender<Result<(), String>>>,
    },
    Delegate {
        peer: PeerId,
        request: DelegateRequest,
        reply: oneshot::Sender<Result<DelegateResponse, NetError>>,
    },
    Reserve {
        program: Cid,
        first: EventIx,
        peer: PeerId,
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
    Status(Cid, oneshot::Sender<ProgramStatus>),
    Execute(Box<Execution>, Vec<PeerId>),
    Reserve {
        program: Cid,
        second: EventIx,
        peer: PeerId,
        channel: request_response::ResponseChannel<DelegateResponse>,
    },
    Reserved {
        program: Cid,
        first: EventIx,
        granted: bool,
    },
    Drive(Cid),
    Fail(Cid, String),
    Execution(Cid, oneshot::Sender<Option<ExecutionStatus>>),
    Counters(oneshot::Sender<(BTreeMap<String, u64>, usize, usize)>),
}

/// Programs this node knows to be over: a complete run, a walk at its end, or a run
/// recorded here whole. Shared by the intake (which learns it) and the sync server
/// (which tells peers).
#[derive(Clone, Debug, Default)]
pub struct Finished(Arc<std::sync::Mutex<HashSet<Cid>>>);

impl Finished {
    /// Notes that `program` is over.
    pub fn insert(&self, program: Cid) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(program);
    }

    /// Whether `program` is known to be over.
    pub fn contains(&self, program: &Cid) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(program)
    }
}

/// A handle on a running node; cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    finished: Finished,
    accept_delegations: bool,
    peer_timeout: Duration,
    peer_id: PeerId,
    key: SigningKey,
    store: Arc<Store>,
    deploy: DeployLimits,
    intake_queue: usize,
    commands: mpsc::Sender<Command>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    events: broadcast::Sender<NodeEvent>,
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

/// Starts a node: the swarm task, the intake thread, the listeners and the dials.
/// Returns once every listener has its address.
pub async fn start(
    config: NodeConfig,
    key: SigningKey,
    store: Arc<Store>,
) -> Result<(NodeHandle, Ready), NetError> {
    let keypair = identity::keypair(&key);
    let peer_id = keypair.public().to_peer_id();
    let behaviour = Behaviour::new(&keypair, &config).map_err(NetError::Start)?;
    let builder = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Start(format!("TCP transport: {e}")))?;
    #[cfg(feature = "quic")]
    let builder = builder.with_quic();
    let mut swarm = builder
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetError::Start(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    let mut listeners = HashSet::new();
    for address in &config.listen {
        let id = swarm
            .listen_on(address.clone())
            .map_err(|e| NetError::Start(format!("listening on {address}: {e}")))?;
        listeners.insert(id);
    }
    let mut listen = Vec::new();
    while !listeners.is_empty() {
        match tokio::time::timeout(Duration::from_secs(10), swarm.select_next_some()).await {
            Ok(SwarmEvent::NewListenAddr {
                listener_id,
                address,
            }) => {
                listeners.remove(&listener_id);
                listen.push(address.to_string());
            }
            Ok(SwarmEvent::ListenerClosed { reason, .. }) => {
                return Err(NetError::Start(format!("a listener closed: {reason:?}")));
            }
            Ok(SwarmEvent::ListenerError { error, .. }) => {
                return Err(NetError::Start(format!("a listener failed: {error}")));
            }
            Ok(_) => {}
            Err(_) => return Err(NetError::Start("no listen address within 10 s".into())),
        }
    }
    for peer in &config.peers {
        swarm
            .dial(peer.clone())
            .map_err(|e| NetError::Start(format!("dialing {peer}: {e}")))?;
    }
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (jobs, job_rx) = std::sync::mpsc::sync_channel(config.intake_queue);
    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let handle = NodeHandle {
        inner: Arc::new(Inner {
            finished: Finished::default(),
            accept_delegations: config.accept_delegations,
            peer_timeout: config.peer_timeout,
            peer_id,
            key,
            store: Arc::clone(&store),
            deploy: config.deploy,
            intake_queue: config.intake_queue,
            commands: commands.clone(),
            jobs,
            events: events.clone(),
        }),
    };
    let mut ingest = Ingest::new(Arc::clone(&store), config.ingest);
    ingest.panic_on(config.faults.and_then(|f| f.panic_name));
    let intake_events = events.clone();
    let intake_commands = commands.clone();
    let intake_key = handle.inner.key.clone();
    let intake_finished = handle.inner.finished.clone();
    let crash_after = config.faults.and_then(|f| f.crash_after);
    std::thread::Builder::new()
        .name("amb-intake".into())
        .spawn(move || {
            let intake = crate::intake::Intake {
                ingest,
                commands: intake_commands,
                events: intake_events,
                key: intake_key,
                me: peer_id,
                crash_after,
                finished: intake_finished,
            };
            let run = std::panic::AssertUnwindSafe(|| crate::intake::run_intake(intake, job_rx));
            if let Err(panic) = std::panic::catch_unwind(run) {
                fatal("the intake thread", &*panic);
            }
        })
        .map_err(|e| NetError::Start(format!("starting the intake thread: {e}")))?;
    let (hosting, hosting_rx) = mpsc::channel(HOSTING_QUEUE);
    tokio::spawn(crate::delegation::serve_hosting(handle.clone(), hosting_rx));
    let driver = crate::driver::Driver {
        finished: handle.inner.finished.clone(),
        hosting,
        swarm,
        store,
        jobs: handle.inner.jobs.clone(),
        commands,
        events,
        requests: HashMap::new(),
        delegations: HashMap::new(),
        providers: HashMap::new(),
        refused_by_peer: HashMap::new(),
        banned: HashSet::new(),
        ban_after: config.ban_after,
        faults: config.faults.map(Faults::new),
        listen: listen.clone(),
        buffer_full: 0,
    };
    tokio::spawn(async move {
        let run = std::panic::AssertUnwindSafe(driver.run(command_rx));
        if let Err(panic) = futures::FutureExt::catch_unwind(run).await {
            fatal("the swarm task", &*panic);
        }
    });
    let ready = Ready {
        peer_id: peer_id.to_string(),
        listen,
    };
    Ok((handle, ready))
}

impl NodeHandle {
    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The node's key.
    pub fn key(&self) -> &SigningKey {
        &self.inner.key
    }

    /// The node's store.
    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Node events from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Tells listeners of stored events.
    pub(crate) fn emit_stored(&self, summaries: Vec<StoredSummary>) {
        emit_stored(&self.inner.events, summaries);
    }

    /// Whether this node knows `program`'s run to be over.
    pub fn is_finished(&self, program: &Cid) -> bool {
        self.inner.finished.contains(program)
    }

    /// Notes that `program`'s run is over (recorded here whole, or synced whole
    /// from a peer that knows it to be over).
    pub fn mark_finished(&self, program: Cid) {
        self.inner.finished.insert(program);
    }

    /// Whether this node hosts slices delegated to it.
    pub fn accepts_delegations(&self) -> bool {
        self.inner.accept_delegations
    }

    /// How long a delegated run waits for another host.
    pub fn peer_timeout(&self) -> Duration {
        self.inner.peer_timeout
    }

    /// The limits of every deployment on this node.
    pub fn deploy_limits(&self) -> DeployLimits {
        self.inner.deploy
    }

    /// Sends a command, waiting for room (the swarm task empties its queue without
    /// waiting for anyone).
    pub(crate) async fn command(&self, command: Command) {
        let _ = self.inner.commands.send(command).await;
    }

    /// Sends a command from code that cannot wait: a full queue is [`NetError::Busy`].
    fn send(&self, command: Command) -> Result<(), NetError> {
        self.inner.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NetError::Busy(format!(
                "the swarm task's queue is full ({COMMAND_QUEUE} commands wait)"
            )),
            mpsc::error::TrySendError::Closed(_) => NetError::Stopped,
        })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(make(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Hands the intake a job, never waiting: a full queue is [`NetError::Busy`].
    fn put_job(&self, job: Job) -> Result<(), NetError> {
        self.inner.jobs.try_send(job).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(_) => NetError::Busy(format!(
                "buffer-full: the intake's queue is full ({} jobs wait: intake_queue)",
                self.inner.intake_queue
            )),
            std::sync::mpsc::TrySendError::Disconnected(_) => NetError::Stopped,
        })
    }

    async fn job<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.put_job(make(tx))?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// The node's state.
    pub async fn info(&self) -> Result<NodeInfo, NetError> {
        let swarm = self.ask(Command::Info).await?;
        let (mut refused, programs, waiting) = self.job(Job::Counters).await?;
        if swarm.buffer_full > 0 {
            *refused
                .entry(crate::ingest::RULE_BUFFER_FULL.to_string())
                .or_default() += swarm.buffer_full;
        }
        Ok(NodeInfo {
            peer_id: self.inner.peer_id.to_string(),
            listen: swarm.listen,
            peers: swarm.peers,
            refused,
            banned: swarm.banned,
            programs,
            waiting,
            faults: swarm.faults,
        })
    }

    /// Dials an address.
    pub fn dial(&self, address: Multiaddr) -> Result<(), NetError> {
        self.send(Command::Dial(address))
    }

    /// Subscribes to a program's topic.
    pub fn follow(&self, program: Cid) -> Result<(), NetError> {
        self.send(Command::Subscribe(program))
    }

    /// Announces on the DHT that this node holds a program.
    pub fn provide(&self, program: Cid) -> Result<(), NetError> {
        self.send(Command::Provide(program))
    }

    /// Peers the DHT knows to hold a program.
    pub async fn find_providers(&self, program: Cid) -> Result<Vec<PeerId>, NetError> {
        self.ask(|tx| Command::FindProviders(program, tx)).await
    }

    /// Peers subscribed to a program's topic.
    pub async fn topic_peers(&self, program: Cid) -> Result<Vec<PeerId>, NetError> {
        self.ask(|tx| Command::TopicPeers(program, tx)).await
    }

    /// Publishes bytes on a program's topic.
    pub async fn publish(&self, program: Cid, data: Vec<u8>) -> Result<(), NetError> {
        self.ask(|reply| Command::Publish {
            program,
            data,
            reply: Some(reply),
        })
        .await?
        .map_err(NetError::Other)
    }

    /// Sends a sync request.
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, NetError> {
        self.ask(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Sends a delegation request.
    pub async fn delegate(
        &self,
        peer: PeerId,
        request: DelegateRequest,
    ) -> Result<DelegateResponse, NetError> {
        self.ask(|reply| Command::Delegate {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Starts walking a plan: this node signs its part, takes the others' from what
    /// it receives. `hosts` are the peers of the plan's hosts, in order.
    pub fn execute(&self, walk: Execution, hosts: Vec<PeerId>) -> Result<(), NetError> {
        self.put_job(Job::Execute(Box::new(walk), hosts))
    }

    /// Where this node's walk of a program's plan is.
    pub async fn execution(&self, program: Cid) -> Result<Option<ExecutionStatus>, NetError> {
        self.job(|tx| Job::Execution(program, tx)).await
    }

    /// Gives up a walk, saying why.
    /// Gives up a walk, saying why (dropped if the intake is busy: the watchdog
    /// asks again).
    pub fn fail_execution(&self, program: Cid, reason: String) {
        let _ = self.put_job(Job::Fail(program, reason));
    }

    /// Asks the intake to walk a program's plan on (after a sync brought events;
    /// dropped if the intake is busy: the watchdog asks again).
    pub fn drive(&self, program: Cid) {
        let _ = self.put_job(Job::Drive(program));
    }

    /// Starts holding a stored program (replays its stored events).
    pub async fn hold(&self, program: Cid) -> Result<(), NetError> {
        self.job(|tx| Job::Hold(program, tx))
            .await?
            .map_err(|refusal| match refusal.rule {
                // The node's own failure (a caught panic), not the caller's.
                crate::ingest::RULE_INTERNAL => NetError::Other(refusal.to_string()),
                _ => NetError::Refused(refusal),
            })
    }

    /// Hands synced events to the intake.
    pub async fn ingest_synced(
        &self,
        program: Cid,
        events: Vec<Vec<u8>>,
    ) -> Result<Outcome, NetError> {
        self.job(|reply| Job::Synced {
            program,
            events,
            reply,
        })
        .await
    }

    /// A program's status here.
    pub async fn status(&self, program: Cid) -> Result<ProgramStatus, NetError> {
        self.job(|tx| Job::Status(program, tx)).await
    }

    /// Stops the node.
    pub fn shutdown(&self) {
        if let Err(NetError::Busy(_)) = self.send(Command::Shutdown) {
            // A full queue: the command waits for room.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let node = self.clone();
                runtime.spawn(async move { node.command(Command::Shutdown).await });
            }
        }
    }
}
