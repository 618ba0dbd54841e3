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
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use amb_log::{SigningKey, Store};
use futures::StreamExt;
use libp2p::{noise, swarm::SwarmEvent, tcp, yamux};
use tokio::sync::{broadcast, mpsc, watch};

use crate::{
    behaviour::Behaviour,
    command::{COMMAND_QUEUE, HOSTING_QUEUE},
    config::NodeConfig,
    error::StartError,
    event::EVENT_BACKLOG,
    faults::Faults,
    handle::Inner,
    identity,
    ingest::Ingest,
};

// The node's types, where callers have always found them.
pub use crate::{
    error::NetError,
    event::{NodeEvent, STORED_PER_EVENT, StoredSummary},
    finished::Finished,
    handle::NodeHandle,
    status::{ExecutionStatus, NodeInfo, PeerInfo, ProgramStatus, Ready},
};

/// The exit status of a node process whose swarm task or intake thread panicked.
pub const FATAL_EXIT: i32 = 70;

/// Reports a panic that the node cannot recover from, and exits the process.
pub(crate) fn fatal(what: &str, panic: &(dyn std::any::Any + Send)) -> ! {
    let message = crate::intake::panic_message(panic);
    tracing::error!("{what} panicked: {message}; the node stops");
    eprintln!("amb node: {what} panicked: {message}; the node stops");
    std::process::exit(FATAL_EXIT)
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
    let received = crate::codec::Received::default();
    let behaviour = Behaviour::new(&keypair, &config, &received).map_err(StartError::from)?;
    let builder = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| StartError::Transport(format!("TCP: {e}")))?;
    #[cfg(feature = "quic")]
    let builder = builder.with_quic();
    let mut swarm = builder
        .with_behaviour(|_| behaviour)
        .map_err(|e| StartError::Transport(format!("the behaviours: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    let mut listeners = HashSet::new();
    for address in &config.listen {
        let id = swarm
            .listen_on(address.clone())
            .map_err(|e| StartError::Listen {
                address: address.clone(),
                detail: e.to_string(),
            })?;
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
                return Err(StartError::Listener(format!("it closed: {reason:?}")).into());
            }
            Ok(SwarmEvent::ListenerError { error, .. }) => {
                return Err(StartError::Listener(error.to_string()).into());
            }
            Ok(_) => {}
            Err(_) => return Err(StartError::NoListenAddress.into()),
        }
    }
    for peer in &config.peers {
        swarm.dial(peer.clone()).map_err(|e| StartError::Dial {
            address: peer.clone(),
            detail: e.to_string(),
        })?;
    }
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (jobs, job_rx) = std::sync::mpsc::sync_channel(config.intake_queue);
    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let (walks, walks_rx) = watch::channel(0);
    let handle = NodeHandle {
        inner: Arc::new(Inner {
            finished: Finished::new(Arc::clone(&store)),
            accept_delegations: config.accept_delegations,
            order_makers: config.order_makers.clone(),
            peer_timeout: config.peer_timeout,
            peer_id,
            key,
            store: Arc::clone(&store),
            deploy: config.deploy,
            intake_queue: config.intake_queue,
            commands: commands.clone(),
            jobs,
            events: events.clone(),
            walks: walks_rx,
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
                walks,
            };
            let run = std::panic::AssertUnwindSafe(|| crate::intake::run_intake(intake, job_rx));
            if let Err(panic) = std::panic::catch_unwind(run) {
                fatal("the intake thread", &*panic);
            }
        })
        .map_err(StartError::IntakeThread)?;
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
        provide_refused: 0,
        not_entitled: 0,
        received,
    };
    tokio::spawn(async move {
        let run = std::panic::AssertUnwindSafe(driver.run(command_rx));
        if let Err(panic) = futures::FutureExt::catch_unwind(run).await {
            fatal("the swarm task", &*panic);
        }
    });
    crate::restart::spawn(handle.clone());
    let ready = Ready {
        peer_id: peer_id.to_string(),
        listen,
    };
    Ok((handle, ready))
}
