//! The handle on a running node ([`NodeHandle`]): what the services (deploy,
//! sync, value, hosting, restart) and the API use to talk to the swarm task and the
//! intake thread, by commands and jobs with one-shot replies. The services depend
//! on it, never on the tasks behind it.

use std::{sync::Arc, time::Duration};

use amb_bytecode::Cid;
use amb_log::{SigningKey, Store};
use libp2p::{Multiaddr, PeerId, request_response};
use serde_bytes::ByteBuf;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::{
    command::{COMMAND_QUEUE, Command, Job},
    error::NetError,
    event::{NodeEvent, StoredSummary, emit_stored},
    execution::Start,
    finished::Finished,
    ingest::{Outcome, Rule},
    limits::DeployLimits,
    status::{ExecutionStatus, NodeInfo, ProgramStatus},
    wire::{DelegateRequest, DelegateResponse, SyncRequest, SyncResponse},
};

/// A handle on a running node; cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    pub(crate) inner: Arc<Inner>,
}

/// What every clone of a handle shares.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) finished: Finished,
    pub(crate) accept_delegations: bool,
    pub(crate) order_makers: Option<Vec<PeerId>>,
    pub(crate) peer_timeout: Duration,
    pub(crate) peer_id: PeerId,
    pub(crate) key: SigningKey,
    pub(crate) store: Arc<Store>,
    pub(crate) deploy: DeployLimits,
    pub(crate) intake_queue: usize,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) jobs: std::sync::mpsc::SyncSender<Job>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    /// Bumped by the intake each time a walk may have moved, ended or failed.
    pub(crate) walks: watch::Receiver<u64>,
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

    /// A receiver told each time one of this node's walks may have moved, ended or
    /// failed from now on (ask [`NodeHandle::execution`] then).
    pub fn walk_changes(&self) -> watch::Receiver<u64> {
        let mut changes = self.inner.walks.clone();
        changes.mark_unchanged();
        changes
    }

    /// A receiver told each time a run is learned to be over from now on.
    pub fn finished_changes(&self) -> watch::Receiver<u64> {
        self.inner.finished.changes()
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

    /// Whether this node walks orders that `maker` sends (`order_makers`).
    pub fn accepts_orders_from(&self, maker: &PeerId) -> bool {
        self.inner
            .order_makers
            .as_ref()
            .is_none_or(|makers| makers.contains(maker))
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

    /// Answers a peer's delegation request (waiting for room in the queue).
    pub(crate) async fn respond_delegation(
        &self,
        channel: request_response::ResponseChannel<DelegateResponse>,
        response: DelegateResponse,
    ) {
        self.command(Command::RespondDelegate { channel, response })
            .await;
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
        let (mut refused, _, waiting, outside_grant) = self.job(Job::Counters).await?;
        if swarm.buffer_full > 0 {
            *refused
                .entry(crate::ingest::RULE_BUFFER_FULL.to_string())
                .or_default() += swarm.buffer_full;
        }
        if swarm.not_entitled > 0 {
            *refused
                .entry(crate::wire::SyncRefusal::NotEntitled.as_str().to_string())
                .or_default() += swarm.not_entitled;
        }
        let store = Arc::clone(&self.inner.store);
        let programs = tokio::task::spawn_blocking(move || store.program_count())
            .await
            .map_err(NetError::task("counting the programs"))?? as usize;
        Ok(NodeInfo {
            peer_id: self.inner.peer_id.to_string(),
            listen: swarm.listen,
            peers: swarm.peers,
            refused,
            banned: swarm.banned,
            programs,
            waiting,
            outside_grant,
            received_bytes: swarm.received_bytes,
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
        .map_err(|e| NetError::Publish {
            program,
            detail: e.to_string(),
        })
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

    /// Starts walking a plan or an order: this node signs its part, takes the
    /// others' from what it receives. `hosts` are the peers of a plan's hosts, in
    /// order (an order names its own).
    pub(crate) fn execute(&self, start: Start, hosts: Vec<PeerId>) -> Result<(), NetError> {
        self.put_job(Job::Execute(Box::new(start), hosts))
    }

    /// Hands events of an order this node walks, from its maker, to the intake.
    pub(crate) fn take(
        &self,
        order: Cid,
        events: Vec<ByteBuf>,
        told: Vec<(u64, ByteBuf)>,
        author: PeerId,
    ) -> Result<(), NetError> {
        self.put_job(Job::Take {
            order,
            events,
            told,
            author,
        })
    }

    /// The order this node made for `peer` in its walk of `program`, and how far
    /// the walk is into it.
    pub(crate) async fn feed_of(
        &self,
        program: Cid,
        peer: PeerId,
    ) -> Result<Option<(Cid, usize)>, NetError> {
        self.job(|tx| Job::FeedOf(program, peer, tx)).await
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
                Rule::Internal => NetError::Internal(refusal.to_string()),
                _ => NetError::Refused(refusal),
            })
    }

    /// How many events of each log of a held program the intake has applied.
    pub(crate) async fn applied_lengths(
        &self,
        program: Cid,
    ) -> Result<std::collections::HashMap<Cid, u64>, NetError> {
        self.job(|tx| Job::AppliedLengths(program, tx)).await
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
