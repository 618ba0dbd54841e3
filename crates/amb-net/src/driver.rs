//! The swarm task: it owns the libp2p swarm, carries out commands, answers sync
//! requests (from the store, off the task), hands gossip to the intake (through
//! the fault layer when there is one), reports verdicts to gossipsub, and
//! penalises and bans peers whose messages are refused. It never waits to send:
//! what does not fit in the intake's or the hosting service's queue is refused
//! (gossip ignored as `buffer-full`, a peer's request answered `busy`).

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use amb_log::Store;
use futures::StreamExt;
use libp2p::{PeerId, Swarm, gossipsub, identify, kad, mdns, request_response, swarm::SwarmEvent};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    behaviour::{Behaviour, BehaviourEvent},
    codec::Received,
    command::{Command, HostRequest, Job},
    error::{NetError, PeerError},
    event::NodeEvent,
    faults::Faults,
    finished::Finished,
    ingest::{Refusal, Rule},
    serve,
    status::{PeerInfo, SwarmInfo},
    wire::{
        DelegateRefusal, DelegateRequest, DelegateResponse, SyncRefusal, SyncRequest, SyncResponse,
        topic_name,
    },
};

/// How long a refused or unanswered reservation waits before it is asked again.
const RESERVE_RETRY: Duration = Duration::from_millis(200);

/// The swarm task's state.
pub(crate) struct Driver {
    /// Programs known to be over (told to peers in heads).
    pub(crate) finished: Finished,
    /// Requests to host a deployment, for the delegation service.
    pub(crate) hosting: mpsc::Sender<HostRequest>,
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) store: Arc<Store>,
    pub(crate) jobs: std::sync::mpsc::SyncSender<Job>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<NodeEvent>,
    pub(crate) requests: HashMap<
        request_response::OutboundRequestId,
        oneshot::Sender<Result<SyncResponse, NetError>>,
    >,
    pub(crate) delegations: HashMap<
        request_response::OutboundRequestId,
        oneshot::Sender<Result<DelegateResponse, NetError>>,
    >,
    pub(crate) providers: HashMap<kad::QueryId, (Vec<PeerId>, oneshot::Sender<Vec<PeerId>>)>,
    pub(crate) refused_by_peer: HashMap<PeerId, u32>,
    pub(crate) banned: HashSet<PeerId>,
    pub(crate) ban_after: u32,
    pub(crate) faults: Option<Faults>,
    pub(crate) listen: Vec<String>,
    /// Gossip messages ignored because the intake's queue was full.
    pub(crate) buffer_full: u64,
    /// Programs the DHT's record store refused to provide (warned about once).
    pub(crate) provide_refused: u64,
    /// Sync requests refused `not-entitled` (outside the grant of the address
    /// they name).
    pub(crate) not_entitled: u64,
    /// Payload bytes received (gossip data here, request and response bodies
    /// in the codecs).
    pub(crate) received: Received,
}

impl Driver {
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut bootstrap = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.command(command),
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = bootstrap.tick() => {
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
            }
        }
        tracing::info!("node stopped");
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Info(reply) => {
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerInfo {
                        peer_id: p.to_string(),
                        score: self.swarm.behaviour().gossipsub.peer_score(p),
                        refused: self.refused_by_peer.get(p).copied().unwrap_or(0),
                    })
                    .collect();
                let _ = reply.send(SwarmInfo {
                    buffer_full: self.buffer_full,
                    not_entitled: self.not_entitled,
                    received_bytes: self.received.get(),
                    listen: self.listen.clone(),
                    peers,
                    banned: self.banned.iter().map(|p| p.to_string()).collect(),
                    faults: self.faults.as_ref().map(|f| f.counts),
                });
            }
            Command::Dial(address) => {
                if let Err(e) = self.swarm.dial(address.clone()) {
                    tracing::warn!(%address, "dial failed: {e}");
                }
            }
            Command::Subscribe(program) => {
                let behaviour = self.swarm.behaviour_mut();
                let topic = gossipsub::IdentTopic::new(topic_name(program));
                if let Err(e) = behaviour.gossipsub.subscribe(&topic) {
                    tracing::warn!(%program, "subscribing: {e}");
                }
                let _ = behaviour
                    .gossipsub
                    .set_topic_params(topic, Behaviour::topic_score());
            }
            Command::Publish {
                program,
                data,
                reply,
            } => {
                let topic = gossipsub::IdentTopic::new(topic_name(program));
                let behaviour = self.swarm.behaviour_mut();
                tracing::trace!(target: "amb_net::timing", %program, bytes = data.len(), "publish");
                let result = match behaviour.gossipsub.publish(topic, data) {
                    Ok(_) | Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(()),
                    Err(e) => Err(e),
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                } else if let Err(e) = result {
                    tracing::warn!(%program, "publishing on /amb/{program}: {e}");
                }
            }
            Command::Delegate {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .delegate
                    .send_request(&peer, request);
                self.delegations.insert(id, reply);
            }
            Command::Relay {
                peer,
                request,
                channel,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .delegate
                    .send_request(&peer, request);
                let (tx, rx) = oneshot::channel();
                self.delegations.insert(id, tx);
                let commands = self.commands.clone();
                tokio::spawn(async move {
                    let response = match rx.await {
                        Ok(Ok(response)) => response,
                        Ok(Err(e)) => DelegateResponse::Refused {
                            reason: DelegateRefusal::Busy,
                            detail: format!("the host of the second half did not answer: {e}"),
                        },
                        Err(_) => return,
                    };
                    let _ = commands
                        .send(Command::RespondDelegate { channel, response })
                        .await;
                });
            }
            Command::Reserve {
                walk,
                first,
                peer,
                request,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .delegate
                    .send_request(&peer, request);
                let (tx, rx) = oneshot::channel();
                self.delegations.insert(id, tx);
                let jobs = self.jobs.clone();
                tokio::spawn(async move {
                    let granted = matches!(rx.await, Ok(Ok(DelegateResponse::Granted { .. })));
                    if !granted {
                        // Refused or unanswered: ask again a little later.
                        tokio::time::sleep(RESERVE_RETRY).await;
                    }
                    // The walk waits for this answer: it is not dropped when the
                    // intake is busy, but waits for room (off the swarm task).
                    let job = Job::Reserved {
                        walk,
                        first,
                        granted,
                    };
                    let _ = tokio::task::spawn_blocking(move || jobs.send(job).is_ok()).await;
                });
            }
            Command::RespondDelegate { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .delegate
                    .send_response(channel, response);
            }
            Command::TopicPeers(program, reply) => {
                let behaviour = self.swarm.behaviour_mut();
                let topic = gossipsub::IdentTopic::new(topic_name(program)).hash();
                let peers = behaviour
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&topic))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.requests.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                if let SyncResponse::Refused {
                    reason: SyncRefusal::NotEntitled,
                    detail,
                } = &response
                {
                    self.not_entitled += 1;
                    tracing::info!("sync request refused (not-entitled): {detail}");
                }
                let behaviour = self.swarm.behaviour_mut();
                let _ = behaviour.sync.send_response(channel, response);
            }
            Command::Validated {
                id,
                source,
                refusal,
            } => {
                let acceptance = match &refusal {
                    None => gossipsub::MessageAcceptance::Accept,
                    Some(r) if r.blames_sender() => gossipsub::MessageAcceptance::Reject,
                    Some(_) => gossipsub::MessageAcceptance::Ignore,
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                if let Some(refusal) = refusal.filter(Refusal::blames_sender) {
                    self.penalise(source, refusal.rule);
                }
            }
            Command::Deliver {
                id,
                source,
                message,
            } => self.judge(id, source, message),
            Command::Provide(program) => {
                let behaviour = self.swarm.behaviour_mut();
                let key = kad::RecordKey::new(&program.to_bytes());
                if let Err(e) = behaviour.kad.start_providing(key) {
                    self.provide_refused += 1;
                    if self.provide_refused == 1 {
                        tracing::warn!(
                            %program,
                            "not announced on the DHT: {e} (the setting max_provider_records \
                             bounds them; this is said once)"
                        );
                    } else {
                        tracing::debug!(%program, refused = self.provide_refused, "not announced: {e}");
                    }
                }
            }
            Command::FindProviders(program, reply) => {
                let behaviour = self.swarm.behaviour_mut();
                let key = kad::RecordKey::new(&program.to_bytes());
                let id = behaviour.kad.get_providers(key);
                self.providers.insert(id, (Vec::new(), reply));
            }
            Command::Shutdown => {}
        }
    }

    /// Counts a refused message against its sender, and bans it past the limit.
    fn penalise(&mut self, peer: PeerId, rule: Rule) {
        tracing::info!(%peer, ?rule, "refused a message");
        let _ = self.events.send(NodeEvent::Refused { peer, rule });
        let count = self.refused_by_peer.entry(peer).or_default();
        *count += 1;
        if *count >= self.ban_after && self.banned.insert(peer) {
            tracing::warn!(%peer, refused = *count, "banning the peer");
            let behaviour = self.swarm.behaviour_mut();
            behaviour.gossipsub.blacklist_peer(&peer);
            behaviour.blocked.block_peer(peer);
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let address = address.to_string();
                if !self.listen.contains(&address) {
                    self.listen.push(address);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    tracing::info!(
                        peer = %peer_id,
                        address = %endpoint.get_remote_address(),
                        "connected"
                    );
                }
                if endpoint.is_dialer() {
                    let address = endpoint.get_remote_address().clone();
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, address);
                }
                let _ = self.events.send(NodeEvent::Connected(peer_id));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                let cause = cause.map_or("closed".to_string(), |e| e.to_string());
                tracing::info!(peer = %peer_id, %cause, "disconnected");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let peer = peer_id.map_or("unknown".to_string(), |p| p.to_string());
                tracing::warn!(%peer, "cannot reach the peer: {error}");
            }
            SwarmEvent::Behaviour(event) => self.behaviour_event(event),
            _ => {}
        }
    }

    fn behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                tracing::trace!(target: "amb_net::timing", topic = %message.topic, bytes = message.data.len(), "gossip in");
                self.receive(message_id, propagation_source, message)
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, topic }) => {
                let _ = self.events.send(NodeEvent::Subscribed {
                    peer: peer_id,
                    topic: topic.to_string(),
                });
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        log_fetch(peer, &request);
                        let store = Arc::clone(&self.store);
                        let finished = self.finished.clone();
                        let commands = self.commands.clone();
                        tokio::task::spawn_blocking(move || {
                            let response = serve::answer(&store, &finished, request);
                            let _ = commands.blocking_send(Command::Respond { channel, response });
                        });
                    }
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some(reply) = self.requests.remove(&request_id) {
                            let _ = reply.send(Ok(response));
                        }
                    }
                }
            }
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(NetError::peer(
                        peer,
                        PeerError::Failed(error.to_string()),
                    )));
                }
            }
            BehaviourEvent::Delegate(request_response::Event::Message {
                peer, message, ..
            }) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => match request {
                    DelegateRequest::Host { order, blocks } => {
                        tracing::info!(%peer, "asked to walk an order");
                        let request = HostRequest {
                            peer,
                            order,
                            blocks,
                            channel,
                        };
                        if let Err(e) = self.hosting.try_send(request) {
                            let channel = match e {
                                mpsc::error::TrySendError::Full(r)
                                | mpsc::error::TrySendError::Closed(r) => r.channel,
                            };
                            self.busy(channel);
                        }
                    }
                    DelegateRequest::Malformed(detail) => {
                        let response = DelegateResponse::Refused {
                            reason: DelegateRefusal::Malformed,
                            detail,
                        };
                        let behaviour = self.swarm.behaviour_mut();
                        let _ = behaviour.delegate.send_response(channel, response);
                    }
                    DelegateRequest::Reserve { walk, second } => {
                        self.hand_to_intake(Job::Reserve {
                            walk,
                            second: second as usize,
                            peer,
                            channel,
                        });
                    }
                    DelegateRequest::Arrange { order, first } => {
                        self.hand_to_intake(Job::Arrange {
                            order,
                            first: first as usize,
                            peer,
                            channel,
                        });
                    }
                    DelegateRequest::Feed { order, from } => {
                        self.hand_to_intake(Job::Feed {
                            order,
                            from: from as usize,
                            peer,
                            channel,
                        });
                    }
                },
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.delegations.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            BehaviourEvent::Delegate(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                if let Some(reply) = self.delegations.remove(&request_id) {
                    let _ = reply.send(Err(NetError::peer(
                        peer,
                        PeerError::Failed(error.to_string()),
                    )));
                }
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for address in info.listen_addrs {
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, address);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(found)) => {
                for (peer, address) in found {
                    if self.swarm.is_connected(&peer) || self.banned.contains(&peer) {
                        continue;
                    }
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, address.clone());
                    let _ = self.swarm.dial(address);
                    let _ = self.events.send(NodeEvent::Discovered(peer));
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            }) => {
                let kad::QueryResult::GetProviders(result) = result else {
                    return;
                };
                if let (
                    Some((found, _)),
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }),
                ) = (self.providers.get_mut(&id), result)
                {
                    found.extend(providers);
                }
                if step.last {
                    if let Some((found, reply)) = self.providers.remove(&id) {
                        let _ = reply.send(found);
                    }
                }
            }
            _ => {}
        }
    }

    /// Answers a peer's delegation request `busy`: the queue it goes to is full (it
    /// asks again).
    /// Hands a peer's request to the intake, answering `busy` when its queue is
    /// full.
    fn hand_to_intake(&mut self, job: Job) {
        if let Err(
            std::sync::mpsc::TrySendError::Full(job)
            | std::sync::mpsc::TrySendError::Disconnected(job),
        ) = self.jobs.try_send(job)
        {
            if let Some(channel) = job.into_channel() {
                self.busy(channel);
            }
        }
    }

    fn busy(&mut self, channel: request_response::ResponseChannel<DelegateResponse>) {
        let response = DelegateResponse::Refused {
            reason: DelegateRefusal::Busy,
            detail: "this node's queue is full".into(),
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .delegate
            .send_response(channel, response);
    }

    /// Hands a gossip message to the intake, or ignores it (`buffer-full`, nobody
    /// penalised) when the intake's queue is full.
    fn judge(&mut self, id: gossipsub::MessageId, source: PeerId, message: gossipsub::Message) {
        let job = Job::Gossip {
            id,
            source,
            message,
        };
        if let Err(std::sync::mpsc::TrySendError::Full(Job::Gossip { id, source, .. })) =
            self.jobs.try_send(job)
        {
            self.buffer_full += 1;
            tracing::debug!(%source, "gossip ignored: the intake's queue is full (buffer-full)");
            self.ignore(&id, &source);
        }
    }

    /// Tells gossipsub a message is not forwarded, and nobody is penalised for it.
    fn ignore(&mut self, id: &gossipsub::MessageId, source: &PeerId) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, gossipsub::MessageAcceptance::Ignore);
    }

    /// A gossip message goes to the intake, through the fault layer when there is one.
    fn receive(&mut self, id: gossipsub::MessageId, source: PeerId, message: gossipsub::Message) {
        self.received.add(message.data.len());
        let Some(faults) = &mut self.faults else {
            self.judge(id, source, message);
            return;
        };
        let fate = faults.fate();
        if fate.is_empty() {
            // Dropped: as if it never came; not forwarded, nobody penalised.
            self.ignore(&id, &source);
            return;
        }
        for delay in fate {
            let commands = self.commands.clone();
            let (id, message) = (id.clone(), message.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = commands
                    .send(Command::Deliver {
                        id,
                        source,
                        message,
                    })
                    .await;
            });
        }
    }
}

/// Logs a peer's fetch: its events at info level (what a fetch takes), asking for
/// heads and blocks at debug level (a peer waiting for a program asks for heads
/// every 250 ms, held here or not).
fn log_fetch(peer: PeerId, request: &SyncRequest) {
    match request {
        SyncRequest::Heads { program } => {
            tracing::debug!(%peer, "serving the heads of /amb/{program}");
        }
        SyncRequest::Events { under, ranges } => {
            tracing::info!(%peer, ranges = ranges.len(), "serving events of /amb/{under} to a peer that fetches them");
        }
        SyncRequest::Blocks { under, cids } => {
            tracing::debug!(%peer, %under, blocks = cids.len(), "serving blocks")
        }
        SyncRequest::Malformed(detail) => {
            tracing::info!(%peer, "refused a malformed fetch: {detail}")
        }
    }
}
