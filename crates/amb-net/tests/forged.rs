//! A rogue peer, built here directly on libp2p (gossipsub only, signed messages as
//! the node expects), publishes forged gossip on the topic of a program that node
//! A holds (`spec/network.md` §4): an event with a broken signature, an event
//! signed by a key the program's log does not allow, an event of A's key published
//! by another peer, and bytes that are no batch. A refuses each under its rule,
//! counts them against the rogue, penalises it in gossipsub, bans it after
//! `ban_after` refusals, and stores nothing of it. A flood that fills A's intake
//! is ignored as `buffer-full` (nobody penalised), callers are told A is busy, and
//! A goes on serving.

mod common;

use std::time::Duration;

use amb_bytecode::Cid;
use amb_engine::Limits;
use amb_log::{Event, Manifest, Op, SigningKey, UnsignedEvent};
use amb_net::{
    NetError, NodeEvent, NodeInfo,
    wire::{DelegateRefusal, DelegateRequest, DelegateResponse, GossipBatch, topic_name},
};
use amb_vm::{
    grant::host_grant,
    order::Order as HostOrder,
    plan::{Hosting, plan_hosted},
};
use common::{MONOID, TestNode, WAIT, corpus, events_of, heads, next_event, wait_until};
use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, gossipsub, noise, swarm::SwarmEvent, tcp, yamux};
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot};

/// What the rogue's swarm reports to the test.
#[derive(Debug)]
enum Seen {
    Subscribed(PeerId, gossipsub::TopicHash),
    Closed(PeerId),
}

impl Seen {
    fn of(event: SwarmEvent<gossipsub::Event>) -> Option<Seen> {
        match event {
            SwarmEvent::Behaviour(gossipsub::Event::Subscribed { peer_id, topic }) => {
                Some(Seen::Subscribed(peer_id, topic))
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => Some(Seen::Closed(peer_id)),
            _ => None,
        }
    }
}

enum Order {
    Subscribe(String),
    Publish(String, Vec<u8>, oneshot::Sender<Result<(), String>>),
}

/// A peer that speaks gossipsub only, with its own Ed25519 key (an amb key, so it
/// can also sign events), driven by a task of its own.
struct Rogue {
    key: SigningKey,
    peer_id: PeerId,
    orders: mpsc::UnboundedSender<Order>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Rogue {
    /// Starts the rogue and dials `target`.
    fn dial(target: Multiaddr) -> Rogue {
        let key = SigningKey::generate();
        let keypair = amb_net::identity::keypair(&key);
        let peer_id = keypair.public().to_peer_id();
        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
            })
            .max_transmit_size(amb_net::wire::MAX_GOSSIP_BYTES + 4096)
            .heartbeat_interval(Duration::from_millis(100))
            .build()
            .expect("a gossipsub configuration");
        let behaviour = gossipsub::Behaviour::<gossipsub::IdentityTransform>::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            config,
        )
        .expect("gossipsub");
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .expect("TCP")
            .with_behaviour(|_| behaviour)
            .expect("the behaviour")
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
            .build();
        swarm.dial(target).expect("dialing A");
        let (orders, mut order_rx) = mpsc::unbounded_channel::<Order>();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    order = order_rx.recv() => match order {
                        None => break,
                        Some(Order::Subscribe(topic)) => {
                            let topic = gossipsub::IdentTopic::new(topic);
                            swarm.behaviour_mut().subscribe(&topic).expect("subscribing");
                        }
                        Some(Order::Publish(topic, data, reply)) => {
                            let topic = gossipsub::IdentTopic::new(topic);
                            let result = swarm
                                .behaviour_mut()
                                .publish(topic, data)
                                .map(|_| ())
                                .map_err(|e| e.to_string());
                            let _ = reply.send(result);
                        }
                    },
                    event = swarm.select_next_some() => {
                        if let Some(seen) = Seen::of(event) {
                            let _ = seen_tx.send(seen);
                        }
                    }
                }
            }
        });
        Rogue {
            key,
            peer_id,
            orders,
            seen,
        }
    }

    /// Waits for what `pick` keeps among what the swarm reports.
    async fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(Seen) -> Option<T>) -> T {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                let seen = self.seen.recv().await.expect("the rogue's swarm runs");
                if let Some(found) = pick(seen) {
                    return found;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("the rogue timed out waiting for {what}"))
    }

    /// Waits until `peer` is subscribed to `topic`.
    async fn wait_subscribed(&mut self, peer: PeerId, topic: &str) {
        let hash = gossipsub::IdentTopic::new(topic).hash();
        self.wait_for("A's subscription", |seen| match seen {
            Seen::Subscribed(p, t) if p == peer && t == hash => Some(()),
            _ => None,
        })
        .await;
    }

    fn subscribe(&self, topic: &str) {
        self.orders
            .send(Order::Subscribe(topic.into()))
            .expect("the rogue's swarm runs");
    }

    async fn publish(&self, topic: &str, data: Vec<u8>) {
        let (reply, answer) = oneshot::channel();
        self.orders
            .send(Order::Publish(topic.into(), data, reply))
            .expect("the rogue's swarm runs");
        answer
            .await
            .expect("the rogue's swarm answers")
            .expect("the rogue publishes");
    }
}

/// A batch of `program` carrying `events`, with a fresh nonce.
fn batch(program: Cid, events: Vec<Vec<u8>>) -> Vec<u8> {
    GossipBatch {
        program,
        nonce: rand::random(),
        blocks: Vec::new(),
        events: events.into_iter().map(ByteBuf::from).collect(),
        told: Vec::new(),
    }
    .encode()
}

/// A new event at the end of `program`'s root log (the next free place, after
/// the run's last event), signed by `key`.
fn next_root_event(node: &TestNode, program: Cid, key: &SigningKey) -> Vec<u8> {
    let root_log = root_log(node, program);
    let (last, _) = node
        .store()
        .log_head(root_log)
        .unwrap()
        .expect("the root log has events");
    let body = UnsignedEvent {
        log: root_log,
        seq: last + 1,
        op: Op::deploy(Cid::of(b"forged")),
        at: None,
        refs: Vec::new(),
        payload: None,
    };
    Event::sign(body, key).encode()
}

/// The id of `program`'s root log (derived from the address).
fn root_log(node: &TestNode, program: Cid) -> Cid {
    amb_vm::record::stored_root_log(node.store(), program)
        .unwrap()
        .expect("the program manifest is stored")
}

/// The bytes of every event of `program`'s root log, as `node` stores them.
fn root_events(node: &TestNode, program: Cid) -> Vec<Vec<u8>> {
    node.store()
        .log_events(root_log(node, program))
        .unwrap()
        .map(|s| s.unwrap().bytes)
        .collect()
}

/// The bytes of the first event of `program`'s root log, as `node` stores it.
fn first_root_event(node: &TestNode, program: Cid) -> Vec<u8> {
    node.store()
        .log_events(root_log(node, program))
        .unwrap()
        .next()
        .expect("the root log has events")
        .unwrap()
        .bytes
}

/// The rogue as A sees it, if it is connected.
fn rogue_in(info: &NodeInfo, rogue: PeerId) -> Option<&amb_net::node::PeerInfo> {
    info.peers.iter().find(|p| p.peer_id == rogue.to_string())
}

/// A deployed program and a rogue that knows A follows its topic. The rogue does
/// not subscribe to the topic itself (gossipsub publishes to a topic's known
/// subscribers all the same), so it stays out of A's mesh: its score is then the
/// invalid-message penalty alone (see the last test for a rogue in the mesh).
async fn setup(ban_after: u32) -> (TestNode, amb_net::Deployed, Rogue) {
    setup_on(amb_net::NodeConfig {
        ban_after,
        ..common::config(vec![])
    })
    .await
}

/// [`setup`] with A started on `config`.
async fn setup_on(config: amb_net::NodeConfig) -> (TestNode, amb_net::Deployed, Rogue) {
    let a = TestNode::start(config).await;
    let deployed = amb_net::deploy(
        &a.handle,
        corpus(MONOID),
        Some("p".into()),
        Limits::default(),
    )
    .await
    .expect("deploying P");
    let mut rogue = Rogue::dial(a.address());
    rogue
        .wait_subscribed(a.peer_id(), &topic_name(deployed.program))
        .await;
    a.wait_connected(rogue.peer_id).await;
    (a, deployed, rogue)
}

/// Gossipsub drops every message of a peer whose score is below the graylist
/// threshold (-80 by default) before the node sees it; waits until A would take
/// the rogue's next message.
async fn wait_not_graylisted(a: &TestNode, rogue: PeerId) {
    wait_until("the rogue's score to decay above -80", WAIT, || async {
        let info = a.handle.info().await.unwrap();
        let peer = rogue_in(&info, rogue).expect("the rogue is connected");
        (peer.score.unwrap_or(0.0) >= -80.0).then_some(())
    })
    .await;
}

/// Waits for A to refuse a message of `rogue`, and returns the rule.
async fn refusal(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    rogue: PeerId,
) -> &'static str {
    next_event(events, "a refusal", WAIT, |e| match e {
        NodeEvent::Refused { peer, rule } if peer == rogue => Some(rule.as_str()),
        NodeEvent::Stored(stored) => panic!("A stored forged events: {stored:?}"),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_gossip_is_refused_by_rule_and_its_sender_banned() {
    const BAN_AFTER: u32 = 4;
    let (a, deployed, mut rogue) = setup(BAN_AFTER).await;
    let program = deployed.program;
    let topic = topic_name(program);
    let heads_before = heads(a.store(), program);
    let count_before = a.store().event_count().unwrap();
    let genuine = first_root_event(&a, program);

    // (i) A real event of P with one signature byte flipped (so its bytes and CID
    // are new): rule `signature`.
    let mut corrupted = genuine.clone();
    let sig_start = corrupted.len() - 64;
    corrupted[sig_start] ^= 0x01;
    // (ii) An event at P's next free place, well signed by the rogue's own key,
    // which P's manifest does not list: rule `key`.
    let foreign = next_root_event(&a, program, &rogue.key);
    // (iii) An event of A's key that A does not hold, published by the rogue, not
    // its creator: rule `author`.
    let not_its_own = next_root_event(&a, program, a.handle.key());
    // (iv) Bytes that are no batch: rule `malformed`.
    let garbage = b"\xff\x00 not a batch".to_vec();

    let mut events = a.handle.subscribe_events();
    let forged = [
        (batch(program, vec![corrupted]), "signature"),
        (batch(program, vec![foreign]), "key"),
        (batch(program, vec![not_its_own]), "author"),
        (garbage, "malformed"),
    ];
    for (n, (data, rule)) in forged.into_iter().enumerate() {
        let n = n as u32 + 1;
        wait_not_graylisted(&a, rogue.peer_id).await;
        rogue.publish(&topic, data).await;
        assert_eq!(refusal(&mut events, rogue.peer_id).await, rule);
        let info = a.handle.info().await.unwrap();
        assert_eq!(info.refused.get(rule), Some(&1), "{:?}", info.refused);
        assert_eq!(info.refused.values().sum::<u64>(), u64::from(n));
        if n < BAN_AFTER {
            let peer = rogue_in(&info, rogue.peer_id).expect("the rogue is still connected");
            assert_eq!(peer.refused, n);
            let score = peer.score.expect("gossipsub scores the rogue");
            assert!(score < 0.0, "the rogue's score after {n} refusals: {score}");
            assert!(info.banned.is_empty(), "{:?}", info.banned);
        }
    }

    // The last refusal bans the rogue: blocked and disconnected.
    let rogue_id = rogue.peer_id;
    let a_id = a.peer_id();
    rogue
        .wait_for("A to close the connection", |seen| match seen {
            Seen::Closed(p) if p == a_id => Some(()),
            _ => None,
        })
        .await;
    wait_until("the ban", WAIT, || async {
        let info = a.handle.info().await.unwrap();
        (info.banned.contains(&rogue_id.to_string()) && rogue_in(&info, rogue_id).is_none())
            .then_some(())
    })
    .await;

    // A stored nothing of the rogue's: its store and P are as the deployment left them.
    assert_eq!(heads(a.store(), program), heads_before);
    assert_eq!(a.store().event_count().unwrap(), count_before);
    let a_key = a.handle.key().public_key();
    assert!(
        events_of(a.store(), program)
            .iter()
            .all(|(_, e)| *e.creator() == a_key)
    );
    let value = amb_net::value(&a.handle, program, WAIT).await.unwrap();
    assert_eq!(value.normal_form, deployed.normal_form);
}

/// `spec/network.md` §4, rule 3: "a peer publishes its own events only, so an old
/// event replayed by another peer is refused" (`author`), even when the node holds
/// the event already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_event_replayed_by_another_peer_is_refused_by_the_author_rule() {
    let (a, deployed, rogue) = setup(8).await;
    let program = deployed.program;
    let topic = topic_name(program);
    let count_before = a.store().event_count().unwrap();
    let old = root_events(&a, program);
    let mut events = a.handle.subscribe_events();
    rogue.publish(&topic, batch(program, old)).await;
    // A marker behind it on the same connection: if the replay is let through,
    // the marker's refusal is the first one A reports.
    rogue.publish(&topic, b"\xff marker".to_vec()).await;
    let first = refusal(&mut events, rogue.peer_id).await;
    assert_eq!(
        first, "author",
        "A let P's own events, replayed by another peer, through"
    );
    let info = a.handle.info().await.unwrap();
    assert_eq!(info.refused.get("author"), Some(&1), "{:?}", info.refused);
    assert_eq!(a.store().event_count().unwrap(), count_before);
}

/// An event signed by a key its log's manifest does not list proves nothing about
/// the log's writer: at a place already taken it is refused under `key`, not taken
/// for proof of a fork (which would freeze the log on A for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_event_at_a_taken_place_is_refused_by_key_not_taken_for_a_fork() {
    let (a, deployed, rogue) = setup(8).await;
    let program = deployed.program;
    let first = first_root_event(&a, program);
    let first = Event::decode(&first).unwrap();
    let rival = Event::sign(first.body().clone(), &rogue.key).encode();
    let mut events = a.handle.subscribe_events();
    rogue
        .publish(&topic_name(program), batch(program, vec![rival]))
        .await;
    let rule = refusal(&mut events, rogue.peer_id).await;
    assert_eq!(
        rule, "key",
        "a stranger's event at seq 0 of P's root log was refused as `{rule}`: \
         A now holds the log frozen"
    );
}

/// The invalid-message penalty must outweigh what a peer earns by sitting in the
/// mesh: a peer in A's mesh for P's topic that sends one invalid message has a
/// negative score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_peer_that_sends_an_invalid_message_scores_below_zero() {
    let (a, deployed, rogue) = setup(8).await;
    let program = deployed.program;
    let topic = topic_name(program);
    rogue.subscribe(&topic);
    a.wait_topic_peer(program, rogue.peer_id).await;
    // The scenario: a subscriber of one second's standing (A grafts it into its
    // mesh at its next heartbeat, 100 ms), not a wait for something to happen.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut events = a.handle.subscribe_events();
    rogue.publish(&topic, b"\xff not a batch".to_vec()).await;
    assert_eq!(refusal(&mut events, rogue.peer_id).await, "malformed");
    let info = a.handle.info().await.unwrap();
    let score = rogue_in(&info, rogue.peer_id)
        .expect("connected")
        .score
        .expect("scored");
    assert!(
        score < 0.0,
        "a mesh peer that sent an invalid message still scores {score} on A: its time \
         in the mesh (gossipsub's default quantum of 1 ms: a point per ms, up to 3600) \
         outweighs the -100 of an invalid message (Behaviour::topic_score)"
    );
}

/// A full intake (a queue of one job here) refuses what does not fit instead of
/// growing: gossip is ignored as `buffer-full` (counted, its sender not blamed),
/// callers are told the node is busy; the node goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_intake_answers_buffer_full_and_goes_on_serving() {
    let (a, deployed, rogue) = setup_on(amb_net::NodeConfig {
        ban_after: 1_000_000,
        intake_queue: 1,
        ..common::config(vec![])
    })
    .await;
    let program = deployed.program;
    let topic = topic_name(program);
    // P's own events, published by the rogue: slow to judge (every signature is
    // checked before the author rule refuses them), so the queue fills.
    let old = root_events(&a, program);
    let heavy: Vec<Vec<u8>> = old.iter().cycle().take(512).cloned().collect();
    let mut published = 0u64;
    let deadline = std::time::Instant::now() + WAIT;
    let busy = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the intake never refused a job"
        );
        for _ in 0..8 {
            rogue.publish(&topic, batch(program, heavy.clone())).await;
            published += 1;
        }
        let asks = (0..8).map(|_| a.handle.status(program));
        let busy =
            futures::future::join_all(asks)
                .await
                .into_iter()
                .find_map(|answer| match answer {
                    Err(NetError::Busy(message)) => Some(message),
                    other => {
                        other.expect("a status, or busy");
                        None
                    }
                });
        if let Some(busy) = busy {
            break busy;
        }
    };
    assert!(busy.contains("buffer-full"), "{busy}");
    let info = wait_until("gossip ignored as buffer-full", WAIT, || async {
        let info = a.handle.info().await.ok()?;
        let ignored = info.refused.get("buffer-full").copied().unwrap_or(0);
        (ignored > 0).then_some(info)
    })
    .await;
    // What was ignored is not counted against the rogue.
    let blamed = rogue_in(&info, rogue.peer_id).map_or(0, |p| p.refused) as u64;
    assert!(
        blamed + info.refused["buffer-full"] <= published,
        "{published} published, {blamed} blamed, {:?}",
        info.refused
    );
    assert!(info.banned.is_empty(), "{:?}", info.banned);
    // A still serves P.
    let value = wait_until("P's value from A", WAIT, || async {
        amb_net::value(&a.handle, program, WAIT).await.ok()
    })
    .await;
    assert_eq!(value.value, "helloworld");
}

/// The `Host` request that hands `delegate` its order of the corpus monoid whose
/// root log (and so every step outside `string_concat`) `root_writer` writes.
fn monoid_order(root_writer: &SigningKey, delegate: &SigningKey) -> DelegateRequest {
    let source = corpus(MONOID);
    let ast = amb_syntax::parse(&source).expect("the monoid parses");
    let (compiled, map) =
        amb_bytecode::compile_with_map(&ast, &amb_bytecode::BlockLimits::default())
            .expect("the monoid compiles");
    let hosting = Hosting {
        delegated: [("string_concat".to_string(), 1)].into(),
    };
    let plan = plan_hosted(&ast, &compiled, &map, Limits::default(), &hosting).expect("a plan");
    let hosts = vec![root_writer.public_key(), delegate.public_key()];
    let manifest = Manifest::new_root(compiled.root, None, hosts.clone(), root_writer, [7; 16], 1);
    let root_log = amb_vm::record::root_log_manifest(&manifest).cid();
    let grant = host_grant(&plan, &compiled, 1);
    let order = HostOrder::project(&plan, &grant, root_log, hosts).order;
    let blocks = compiled
        .blocks
        .iter()
        .filter(|(cid, _)| grant.blocks.contains(cid))
        .map(|(_, bytes)| ByteBuf::from(bytes.clone()))
        .collect();
    DelegateRequest::Host {
        order: ByteBuf::from(order.encode()),
        blocks,
    }
}

/// A delegate cannot see the program an order comes from, so it signs what the
/// order asks; it therefore walks only orders whose root log the sender writes
/// (every other log descends from it), and, when `order_makers` is set, only the
/// listed peers' orders. A peer passing on another deployer's order, or an order
/// naming another deployer's root log, is refused `not-allowed`, and nothing is
/// kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_root_log_another_peer_writes_is_refused() {
    let (b_key, m_key, victim) = (
        SigningKey::generate(),
        SigningKey::generate(),
        SigningKey::generate(),
    );
    let (b_store, _b_dir) = common::new_store();
    let b = TestNode::start_on(common::config(vec![]), b_key.clone(), b_store).await;
    let (m_store, _m_dir) = common::new_store();
    let m = TestNode::start_on(common::config(vec![b.address()]), m_key.clone(), m_store).await;
    m.wait_connected(b.peer_id()).await;

    let refused = |answer: DelegateResponse| match answer {
        DelegateResponse::Refused { reason, detail } => (reason, detail),
        other => panic!("expected a refusal, got {other:?}"),
    };
    // The victim's order, sent by M: the root log is the victim's.
    let answer = m
        .handle
        .delegate(b.peer_id(), monoid_order(&victim, &b_key))
        .await
        .expect("an answer");
    let (reason, detail) = refused(answer);
    assert_eq!(reason, DelegateRefusal::NotAllowed, "{detail}");
    assert!(detail.contains("root log"), "{detail}");
    assert_eq!(b.handle.info().await.unwrap().programs, 0, "nothing kept");

    // M's own order is walked (the check can pass).
    let answer = m
        .handle
        .delegate(b.peer_id(), monoid_order(&m_key, &b_key))
        .await
        .expect("an answer");
    assert!(
        matches!(answer, DelegateResponse::Granted { .. }),
        "{answer:?}"
    );

    // A node that walks only the orders of listed makers refuses M's own order.
    let (c_key, other) = (SigningKey::generate(), SigningKey::generate());
    let (c_store, _c_dir) = common::new_store();
    let config = amb_net::NodeConfig {
        order_makers: Some(vec![amb_net::identity::peer_id(&other.public_key())]),
        ..common::config(vec![])
    };
    let c = TestNode::start_on(config, c_key.clone(), c_store).await;
    m.handle.dial(c.address()).expect("dialing C");
    m.wait_connected(c.peer_id()).await;
    let answer = m
        .handle
        .delegate(c.peer_id(), monoid_order(&m_key, &c_key))
        .await
        .expect("an answer");
    let (reason, detail) = refused(answer);
    assert_eq!(reason, DelegateRefusal::NotAllowed, "{detail}");
    assert!(detail.contains("order_makers"), "{detail}");
}
