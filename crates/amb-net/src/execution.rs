//! Running this node's part of delegated programs (`spec/network.md` §8), in the
//! intake thread. A walk follows either a whole plan (the deployer's, which holds
//! the program) or an **order**, a host's part of the plan that the deployer made
//! for it (`amb_vm::order`). Each walk signs this host's events as soon as every
//! event they refer to is known, takes the other hosts' events from what it
//! received, and publishes what it signs.
//!
//! The deployer keeps a [`Feed`] per delegate: as its walk of the plan goes on, it
//! publishes on the order's topic every event of the order that the delegate does
//! not write, and the CIDs of the order's bare refs. A delegate publishes its own
//! events on its order's topic, which only it and the deployer follow; it keeps
//! the events it receives, checked (bytes, signature, a key of the order), until
//! its walk reaches them and compares them with the order, and stores them only
//! then ([`amb_log::Store::write_part`]).
//!
//! A step whose second half another host writes waits for that host to reserve
//! its co-capability first (the handshake). A delegate asks its order's maker to
//! arrange it (`Arrange`): the maker, which knows both halves, reserves locally or
//! asks the host of the second half, naming the step in that host's order. A walk
//! that is over (done or failed) is dropped; only its last status is kept, among
//! the [`RECENT_WALKS`] latest.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use amb_bytecode::Cid;
use amb_log::{Event, PublicKey, SigningKey, Store};
use amb_vm::{
    execute::{Advance, Execution, Need, Signed, Walk},
    order::{Order, Projection},
    plan::{EventIx, HostIx},
    verify::check_hashed_events,
};
use libp2p::PeerId;
use serde_bytes::ByteBuf;

use crate::{
    batch::{Batcher, empty},
    event::StoredSummary,
    identity,
    ingest::{
        Ingest, RULE_AUTHOR, RULE_BUFFER_FULL, RULE_STORE, Refusal, Rule, Written, write_checked,
    },
    recent::Recent,
    status::ExecutionStatus,
    wire::{DelegateRefusal, DelegateRequest, DelegateResponse, GossipBatch},
};

/// How many walks that are over keep their last status (for `amb value`, the
/// deployer's answer and a host asked again).
pub const RECENT_WALKS: usize = 4096;

/// How long a reservation this host grants is held.
pub const RESERVATION: Duration = Duration::from_secs(30);

/// Most events a walk signs before it lets other jobs run.
const SIGN_BUDGET: usize = 4096;

/// Most events in one answer to `Feed`.
const FEED_MAX_EVENTS: usize = 2048;

/// How many orders of walks that are over the maker keeps, to answer a late
/// `Feed` (a delegate that lost the last events its walk needs).
const ARCHIVED_ORDERS: usize = 256;

/// What the maker keeps of an order once its walk of the plan is over.
struct FeedArchive {
    /// The order's host.
    peer: PeerId,
    /// By order index: the CID of each event its host does not write.
    events: Vec<Option<Cid>>,
    /// Every bare ref's CID, with its index among them.
    told: Vec<(u64, ByteBuf)>,
}

/// A delegate's order, as its maker keeps it while walking the plan.
#[derive(Debug)]
pub struct Feed {
    /// The delegate.
    pub(crate) peer: PeerId,
    /// The order's name.
    pub(crate) name: Cid,
    /// The `Host` request that gives the order (asked again of a host that
    /// forgot it).
    pub(crate) request: DelegateRequest,
    /// The delegate's index among the plan's hosts.
    host: HostIx,
    /// The plan index of each event of the order.
    held: Vec<EventIx>,
    /// The order's bare refs: (plan index, index among the bare refs), by plan
    /// index.
    bare: Vec<(EventIx, usize)>,
    /// How many of `held` and of `bare` are published.
    sent_held: usize,
    sent_bare: usize,
}

impl Feed {
    /// The feed of the order `projection` made for `peer`, host `host` of the plan.
    pub(crate) fn new(
        peer: PeerId,
        host: HostIx,
        projection: &Projection,
        request: DelegateRequest,
    ) -> Feed {
        let mut bare: Vec<(EventIx, usize)> = projection
            .bare
            .iter()
            .enumerate()
            .map(|(b, &index)| (index, b))
            .collect();
        bare.sort_unstable();
        Feed {
            peer,
            name: projection.order.name(),
            request,
            host,
            held: projection.held.clone(),
            bare,
            sent_held: 0,
            sent_bare: 0,
        }
    }
}

impl Feed {
    /// What of the order the maker's walk has reached so far: every event its host
    /// does not write that is walked, and every bare ref's CID known.
    fn archive(&self, walk: &Execution) -> FeedArchive {
        let events = self
            .held
            .iter()
            .map(|&p| {
                (walk.plan().events[p].writer != self.host)
                    .then(|| walk.cid(p))
                    .flatten()
            })
            .collect();
        let told = self
            .bare
            .iter()
            .filter_map(|&(p, b)| Some((b as u64, cid_bytes(walk.cid(p)?))))
            .collect();
        FeedArchive {
            peer: self.peer,
            events,
            told,
        }
    }
}

impl FeedArchive {
    /// The answer to `Feed { from }` from `peer`: the events from order index
    /// `from` on, read by `bytes`, and the bare refs' CIDs.
    fn answer(
        &self,
        from: usize,
        peer: PeerId,
        bytes: impl Fn(Cid) -> Option<ByteBuf>,
    ) -> DelegateResponse {
        if peer != self.peer {
            return refuse(DelegateRefusal::NotAllowed);
        }
        let events = self
            .events
            .iter()
            .skip(from)
            .flatten()
            .filter_map(|&cid| bytes(cid))
            .take(FEED_MAX_EVENTS)
            .collect();
        DelegateResponse::Events {
            events,
            told: self.told.clone(),
        }
    }
}

/// What a walk follows.
enum Script {
    /// The whole plan, with the deployer's feeds.
    Plan {
        walk: Box<Execution>,
        feeds: Vec<Feed>,
    },
    /// An order.
    Order(Box<OrderWalk>),
}

/// A delegate's walk of its order.
struct OrderWalk {
    walk: Walk<Order>,
    /// The order's maker (the deployer) and its key.
    maker: PeerId,
    maker_key: PublicKey,
    /// The bare refs' CIDs, as told.
    told: Vec<Option<Cid>>,
    /// Events received and checked (bytes, signature, a key of the order), not
    /// walked yet, by place.
    inbox: HashMap<(Cid, u64), (Cid, Event, Vec<u8>)>,
    /// Events of the order stored before (a walk resumed after a restart), by
    /// place.
    stored: HashMap<(Cid, u64), Cid>,
}

/// How a walk starts.
pub(crate) enum Start {
    /// The walk of a whole plan, with a feed per delegate.
    Plan(Execution, Vec<Feed>),
    /// The walk of an order made by `maker`.
    Order(Walk<Order>, PeerId),
}

impl Start {
    /// The walk's name: the program address, or the order's name.
    pub(crate) fn name(&self) -> Cid {
        match self {
            Start::Plan(walk, _) => walk.program(),
            Start::Order(walk, _) => walk.name(),
        }
    }
}

struct Running {
    script: Script,
    key: SigningKey,
    me: PeerId,
    /// The peers of the script's hosts, by index.
    hosts: Vec<PeerId>,
    /// First halves whose co-capability the other host reserved for this host.
    granted: HashSet<usize>,
    /// A reservation asked for and not answered yet (its first half).
    asking: Option<usize>,
    /// Reservations this host holds for others: second half → (mover, until).
    holding: HashMap<usize, (PeerId, Instant)>,
    waiting_for: Option<PeerId>,
    moved_at: Instant,
    failed: Option<String>,
}

impl Running {
    fn position(&self) -> usize {
        match &self.script {
            Script::Plan { walk, .. } => walk.position(),
            Script::Order(o) => o.walk.position(),
        }
    }

    fn total(&self) -> usize {
        match &self.script {
            Script::Plan { walk, .. } => walk.plan().events.len(),
            Script::Order(o) => o.walk.order().events.len(),
        }
    }

    fn is_done(&self) -> bool {
        self.position() == self.total()
    }

    /// The writer of event `index` of the script.
    fn writer(&self, index: usize) -> Option<HostIx> {
        match &self.script {
            Script::Plan { walk, .. } => walk.plan().events.get(index).map(|e| e.writer),
            Script::Order(o) => o.walk.order().events.get(index).map(|e| e.writer),
        }
    }

    /// Whether event `index` is a first half whose second half another host
    /// writes.
    fn needs_reservation(&self, index: usize) -> bool {
        match &self.script {
            Script::Plan { walk, .. } => walk.plan().needs_reservation(index),
            Script::Order(o) => o.walk.order().reserve.binary_search(&index).is_ok(),
        }
    }

    /// Whether this host's event `index` (its log announced already) is held: a
    /// walk resumed after a restart meets what it committed before.
    fn committed(&self, ingest: &Ingest, name: Cid, index: usize) -> bool {
        match &self.script {
            Script::Plan { walk, .. } => {
                let planned = &walk.plan().events[index];
                walk.log_id(planned.log)
                    .and_then(|log| ingest.event_at(&name, log, planned.seq))
                    .is_some()
            }
            Script::Order(o) => {
                let event = &o.walk.order().events[index];
                o.walk
                    .log_id(event.log)
                    .is_some_and(|log| o.stored.contains_key(&(log, event.seq)))
            }
        }
    }

    /// The reservation to ask for before this host writes first half `index`: of
    /// whom, and the request.
    fn reservation(&self, name: Cid, index: usize) -> Option<(PeerId, DelegateRequest)> {
        match &self.script {
            Script::Plan { walk, feeds } => {
                let second = index + 1;
                let writer = walk.plan().events.get(second)?.writer;
                let feed = feeds.iter().find(|f| f.host == writer)?;
                let at = feed.held.binary_search(&second).ok()?;
                let request = DelegateRequest::Reserve {
                    walk: feed.name,
                    second: at as u64,
                };
                Some((feed.peer, request))
            }
            Script::Order(o) => Some((
                o.maker,
                DelegateRequest::Arrange {
                    order: name,
                    first: index as u64,
                },
            )),
        }
    }
}

/// What the maker of an order answers a host's `Arrange`.
pub(crate) enum Arranged {
    /// The answer, now.
    Answer(DelegateResponse),
    /// Ask `peer` (the host of the second half) with `request`, and pass its
    /// answer on.
    Relay(PeerId, DelegateRequest),
}

/// Every walk of this node.
pub(crate) struct Executions {
    running: HashMap<Cid, Running>,
    /// The program whose plan each running feed's order is part of, by order name.
    orders: HashMap<Cid, Cid>,
    /// The last status of walks that are over (their plans are dropped).
    over: Recent<Cid, ExecutionStatus>,
    /// Events signed by the walks so far.
    signed: u64,
    /// The fault layer's crash point (events signed).
    crash_after: Option<u64>,
    /// Walks done, not yet taken by [`Executions::take_done`].
    done: Vec<Cid>,
    /// Events received for orders and never walked (outside the grant).
    outside_grant: u64,
    /// The orders of this node's walks of plans that are over, by name.
    archived: Recent<Cid, FeedArchive>,
}

impl Executions {
    /// Walks that crash the process once they have signed `crash_after` events.
    pub(crate) fn new(crash_after: Option<u64>) -> Executions {
        Executions {
            running: HashMap::new(),
            orders: HashMap::new(),
            over: Recent::new(RECENT_WALKS),
            signed: 0,
            crash_after,
            done: Vec::new(),
            outside_grant: 0,
            archived: Recent::new(ARCHIVED_ORDERS),
        }
    }

    /// Starts a walk (a walk of the same name already running is kept).
    pub(crate) fn start(
        &mut self,
        start: Start,
        key: SigningKey,
        me: PeerId,
        hosts: Vec<PeerId>,
        store: &Store,
    ) {
        let name = start.name();
        if self.over.get(&name).is_some_and(|s| s.done) || self.running.contains_key(&name) {
            return;
        }
        let (script, hosts) = match start {
            Start::Plan(walk, feeds) => {
                for feed in &feeds {
                    self.orders.insert(feed.name, name);
                }
                (
                    Script::Plan {
                        walk: Box::new(walk),
                        feeds,
                    },
                    hosts,
                )
            }
            Start::Order(walk, maker) => {
                let Some(maker_key) = identity::public_key(&maker) else {
                    return;
                };
                let hosts = walk.order().hosts.iter().map(identity::peer_id).collect();
                let told = vec![None; walk.order().bare];
                let stored = stored_places(store, name);
                let walk = OrderWalk {
                    walk,
                    maker,
                    maker_key,
                    told,
                    inbox: HashMap::new(),
                    stored,
                };
                (Script::Order(Box::new(walk)), hosts)
            }
        };
        self.running.insert(
            name,
            Running {
                script,
                key,
                me,
                hosts,
                granted: HashSet::new(),
                asking: None,
                holding: HashMap::new(),
                waiting_for: None,
                moved_at: Instant::now(),
                failed: None,
            },
        );
    }

    /// Where the walk named `name` is (or how it ended, if it ended lately).
    pub(crate) fn status(&self, name: &Cid) -> Option<ExecutionStatus> {
        let Some(run) = self.running.get(name) else {
            return self.over.get(name).cloned();
        };
        Some(ExecutionStatus {
            position: run.position(),
            total: run.total(),
            done: run.is_done() && run.failed.is_none(),
            waiting_for: run.waiting_for.map(|p| p.to_string()),
            idle_ms: run.moved_at.elapsed().as_millis() as u64,
            failed: run.failed.clone(),
        })
    }

    /// Gives up a walk (one that is over is no longer here: a walk at its last
    /// event fails when what it signed could not be stored).
    pub(crate) fn fail(&mut self, name: &Cid, reason: String) {
        if let Some(run) = self.running.get_mut(name) {
            tracing::warn!(walk = %name, "{reason}");
            run.failed = Some(reason);
            self.retire(*name);
        }
    }

    /// Drops a walk that is over, keeping its last status.
    fn retire(&mut self, name: Cid) {
        if let Some(status) = self.status(&name) {
            match self.running.remove(&name).map(|run| run.script) {
                Some(Script::Plan { walk, feeds }) => {
                    for feed in feeds {
                        self.orders.remove(&feed.name);
                        self.archived.insert(feed.name, feed.archive(&walk));
                    }
                }
                // What is left unwalked at the end was never part of the order.
                Some(Script::Order(o)) if status.done => {
                    self.outside_grant += o.inbox.len() as u64;
                }
                _ => {}
            }
            self.over.insert(name, status);
        }
    }

    /// Events received for the orders this node walked that were in none of them.
    pub(crate) fn outside_grant(&self) -> u64 {
        self.outside_grant
    }

    /// Walks done since the last call.
    pub(crate) fn take_done(&mut self) -> Vec<Cid> {
        std::mem::take(&mut self.done)
    }

    /// Whether this node walks `name` (a program's plan or an order).
    pub(crate) fn walks(&self, name: &Cid) -> bool {
        self.running.contains_key(name)
    }

    /// Whether this node walks the order `name` as its host.
    pub(crate) fn walks_order(&self, name: &Cid) -> bool {
        matches!(
            self.running.get(name),
            Some(Running {
                script: Script::Order(_),
                ..
            })
        )
    }

    /// The program whose plan this node walks as the maker of order `name`, and
    /// the order's host.
    pub(crate) fn made(&self, name: &Cid) -> Option<(Cid, PeerId)> {
        let program = *self.orders.get(name)?;
        match &self.running.get(&program)?.script {
            Script::Plan { feeds, .. } => {
                let feed = feeds.iter().find(|f| f.name == *name)?;
                Some((program, feed.peer))
            }
            Script::Order(_) => None,
        }
    }

    /// The feed of the order this node made for `peer` in its walk of `program`.
    pub(crate) fn feed_of(&self, program: &Cid, peer: &PeerId) -> Option<(Cid, usize)> {
        let run = self.running.get(program)?;
        let Script::Plan { walk, feeds } = &run.script else {
            return None;
        };
        let feed = feeds.iter().find(|f| f.peer == *peer)?;
        let position = walk.position();
        Some((feed.name, feed.held.partition_point(|&p| p < position)))
    }

    /// Walks on as far as the events held allow and signs and stores this host's
    /// events; returns what the node is to do next (publish them, ask for the
    /// reservations the walk needs, tell listeners), in order.
    pub(crate) fn drive(&mut self, name: Cid, ingest: &mut Ingest) -> Vec<Action> {
        let mut actions = Vec::new();
        self.walk_on(name, ingest, &mut actions);
        if let Some(run) = self.running.get(&name) {
            if run.failed.is_some() || run.is_done() {
                self.retire(name);
            }
        }
        actions
    }

    fn walk_on(&mut self, name: Cid, ingest: &mut Ingest, actions: &mut Vec<Action>) {
        let Some(run) = self.running.get_mut(&name) else {
            return;
        };
        let store = ingest.store().clone();
        while run.failed.is_none() && !run.is_done() {
            let start = run.position();
            // Which of the next events wait for a reservation (computed before the
            // walk borrows itself mutably).
            let needs: Vec<bool> = (start..run.total())
                .take(SIGN_BUDGET + 1)
                .map(|i| run.needs_reservation(i) && !run.granted.contains(&i))
                .collect();
            let stop_before = |i: usize| needs.get(i - start).copied().unwrap_or(false);
            let advance = match &mut run.script {
                Script::Plan { walk, .. } => walk.advance(
                    &run.key,
                    SIGN_BUDGET,
                    |log, seq| {
                        let cid = ingest.event_at(&name, log, seq)?;
                        let stored = store.get_event(cid).ok()??;
                        Some((cid, Event::decode(&stored.bytes).ok()?))
                    },
                    stop_before,
                ),
                Script::Order(o) => {
                    let OrderWalk {
                        walk,
                        told,
                        inbox,
                        stored,
                        ..
                    } = &mut **o;
                    walk.advance_told(
                        &run.key,
                        SIGN_BUDGET,
                        |log, seq| {
                            if let Some((cid, event, _)) = inbox.get(&(log, seq)) {
                                return Some((*cid, event.clone()));
                            }
                            let cid = *stored.get(&(log, seq))?;
                            let found = store.get_event(cid).ok()??;
                            Some((cid, Event::decode(&found.bytes).ok()?))
                        },
                        |b| told.get(b).copied().flatten(),
                        stop_before,
                    )
                }
            };
            let advance = match advance {
                Ok(advance) => advance,
                Err(deviation) => {
                    run.failed = Some(deviation.to_string());
                    break;
                }
            };
            if run.position() > start || !advance.manifests.is_empty() {
                run.moved_at = Instant::now();
                let kept = match &mut run.script {
                    Script::Plan { .. } => offer_own(ingest, name, &advance),
                    Script::Order(o) => store_part(&store, name, o, start, &advance),
                };
                if let Err(refusal) = kept {
                    run.failed = Some(format!("this host's own event was refused: {refusal}"));
                    break;
                }
                for signed in &advance.signed {
                    run.holding.remove(&signed.index);
                }
            }
            if !advance.signed.is_empty() {
                announce(name, &advance.manifests, &advance.signed, actions);
                self.signed += advance.signed.len() as u64;
                if self.crash_after.is_some_and(|n| self.signed >= n) {
                    // What was signed is published first, then the node dies.
                    actions.push(Action::Crash {
                        signed: self.signed,
                    });
                    return;
                }
            }
            match advance.need {
                Need::Done => {
                    run.waiting_for = None;
                    tracing::info!(walk = %name, "the walk is at its end");
                    self.done.push(name);
                    break;
                }
                Need::Event { writer, .. } => {
                    run.waiting_for = run.hosts.get(writer).copied();
                    break;
                }
                Need::Bare { .. } => {
                    if let Script::Order(o) = &run.script {
                        run.waiting_for = Some(o.maker);
                    }
                    break;
                }
                Need::Paused { index }
                    if run.needs_reservation(index) && !run.granted.contains(&index) =>
                {
                    if run.committed(ingest, name, index) {
                        // Signed and stored before a restart: signing it again is a
                        // no-op, and the other host has taken its second half.
                        run.granted.insert(index);
                        continue;
                    }
                    let Some((peer, request)) = run.reservation(name, index) else {
                        run.failed = Some(format!(
                            "event {index} needs a reservation from a host the walk does not know"
                        ));
                        break;
                    };
                    run.waiting_for = Some(peer);
                    if run.asking != Some(index) {
                        run.asking = Some(index);
                        actions.push(Action::Reserve {
                            walk: name,
                            first: index,
                            peer,
                            request,
                        });
                    }
                    break;
                }
                Need::Paused { .. } => {}
            }
        }
        if let Script::Plan { walk, feeds } = &mut run.script {
            for feed in feeds {
                feed_out(walk, feed, &store, actions);
            }
        }
    }

    /// The answer to a reservation this host asked for.
    pub(crate) fn reserved(&mut self, name: &Cid, first: usize, granted: bool) {
        if let Some(run) = self.running.get_mut(name) {
            if run.asking == Some(first) {
                run.asking = None;
            }
            if granted {
                run.granted.insert(first);
            }
        }
    }

    /// `peer` asks this host to reserve the co-capability consumed by event
    /// `second` of the walk `name`.
    pub(crate) fn reserve(&mut self, name: &Cid, second: usize, peer: PeerId) -> DelegateResponse {
        let Some(run) = self.running.get_mut(name) else {
            // A walk at its end has applied every step.
            let over = self.over.get(name).is_some_and(|s| s.done);
            return refuse(if over {
                DelegateRefusal::Taken
            } else {
                DelegateRefusal::Unknown
            });
        };
        let Some(writer) = run.writer(second) else {
            return refuse(DelegateRefusal::Unknown);
        };
        if run.hosts[writer] != run.me {
            return refuse(DelegateRefusal::NotHost);
        }
        let allowed = match &run.script {
            // The first half's writer asks (or the deployer for it, `arrange`).
            Script::Plan { walk, .. } => {
                second > 0
                    && walk.plan().needs_reservation(second - 1)
                    && run.hosts[walk.plan().events[second - 1].writer] == peer
            }
            // The maker arranges every step of its orders.
            Script::Order(o) => peer == o.maker,
        };
        if !allowed {
            return refuse(DelegateRefusal::NotAllowed);
        }
        if run.position() > second {
            return refuse(DelegateRefusal::Taken);
        }
        let now = Instant::now();
        match run.holding.get(&second) {
            Some((holder, until)) if *holder != peer && *until > now => {
                refuse(DelegateRefusal::Reserved)
            }
            _ => {
                run.holding.insert(second, (peer, now + RESERVATION));
                DelegateResponse::Granted {
                    expires_ms: RESERVATION.as_millis() as u64,
                }
            }
        }
    }

    /// The host `peer` of order `name` asks its maker (this node) to have the
    /// co-capability of the step whose first half is the order's event `first`
    /// reserved for it.
    pub(crate) fn arrange(&mut self, name: &Cid, first: usize, peer: PeerId) -> Arranged {
        let answer = |reason| Arranged::Answer(refuse(reason));
        let Some(&program) = self.orders.get(name) else {
            return answer(DelegateRefusal::Unknown);
        };
        let Some(run) = self.running.get(&program) else {
            return answer(DelegateRefusal::Unknown);
        };
        let Script::Plan { walk, feeds } = &run.script else {
            return answer(DelegateRefusal::Unknown);
        };
        let Some(feed) = feeds.iter().find(|f| f.name == *name) else {
            return answer(DelegateRefusal::Unknown);
        };
        if feed.peer != peer {
            return answer(DelegateRefusal::NotAllowed);
        }
        let plan = walk.plan();
        let Some(&index) = feed.held.get(first) else {
            return answer(DelegateRefusal::Unknown);
        };
        if !plan.needs_reservation(index) || plan.events[index].writer != feed.host {
            return answer(DelegateRefusal::NotAllowed);
        }
        let second = index + 1;
        let writer = plan.events[second].writer;
        if run.hosts[writer] == run.me {
            return Arranged::Answer(self.reserve(&program, second, peer));
        }
        let Some(target) = feeds.iter().find(|f| f.host == writer) else {
            return answer(DelegateRefusal::Unknown);
        };
        let Ok(at) = target.held.binary_search(&second) else {
            return answer(DelegateRefusal::Unknown);
        };
        Arranged::Relay(
            target.peer,
            DelegateRequest::Reserve {
                walk: target.name,
                second: at as u64,
            },
        )
    }

    /// The answer to `Feed { order: name, from }` from `peer`: as the order's
    /// maker, the order's events from `from` on that its host does not write (and
    /// the bare refs' CIDs) known so far; as its host, its own.
    pub(crate) fn feed(
        &self,
        name: &Cid,
        from: usize,
        peer: PeerId,
        store: &Store,
    ) -> DelegateResponse {
        let bytes = |cid: Cid| {
            store
                .get_event(cid)
                .ok()
                .flatten()
                .map(|e| ByteBuf::from(e.bytes))
        };
        if let Some(run) = self.running.get(name) {
            let Script::Order(o) = &run.script else {
                return refuse(DelegateRefusal::Unknown);
            };
            if peer != o.maker {
                return refuse(DelegateRefusal::NotAllowed);
            }
            let order = o.walk.order();
            let me = order
                .hosts
                .iter()
                .position(|k| identity::peer_id(k) == run.me);
            let events = (from..o.walk.position())
                .filter(|&i| Some(order.events[i].writer) == me)
                .filter_map(|i| bytes(o.walk.cid(i)?))
                .take(FEED_MAX_EVENTS)
                .collect();
            return DelegateResponse::Events {
                events,
                told: Vec::new(),
            };
        }
        if let Some(&program) = self.orders.get(name) {
            let Some(Running {
                script: Script::Plan { walk, feeds },
                ..
            }) = self.running.get(&program)
            else {
                return refuse(DelegateRefusal::Unknown);
            };
            let Some(feed) = feeds.iter().find(|f| f.name == *name) else {
                return refuse(DelegateRefusal::Unknown);
            };
            return feed.archive(walk).answer(from, peer, bytes);
        }
        // The order of a walk of the plan that is over: as the maker kept it.
        if let Some(archive) = self.archived.get(name) {
            return archive.answer(from, peer, bytes);
        }
        // A walk that is over: its host answers with its own events as stored.
        if self.over.get(name).is_some() {
            return DelegateResponse::Events {
                events: own_stored_events(store, *name, &peer),
                told: Vec::new(),
            };
        }
        refuse(DelegateRefusal::Unknown)
    }

    /// Takes events (and bare refs' CIDs) received for the order `name` this node
    /// walks as its host, from `author` (the publisher of a gossip message, or
    /// the maker that answered a `Feed`): each must be signed by a host of the
    /// order and published by its creator or by the maker. They wait, by place,
    /// until the walk reaches them.
    pub(crate) fn take(
        &mut self,
        name: &Cid,
        events: &[ByteBuf],
        told: &[(u64, ByteBuf)],
        author: &PublicKey,
    ) -> Result<usize, Refusal> {
        let Some(Running {
            script: Script::Order(o),
            ..
        }) = self.running.get_mut(name)
        else {
            return Ok(0);
        };
        let from_maker = *author == o.maker_key;
        if from_maker {
            for (b, cid) in told {
                let cid = Cid::from_bytes(cid)
                    .map_err(|e| Refusal::new(Rule::Malformed, None, format!("a told CID: {e}")))?;
                if let Some(slot) = o.told.get_mut(*b as usize) {
                    slot.get_or_insert(cid);
                }
            }
        }
        let hashed: Vec<(Cid, &[u8])> = events.iter().map(|b| (Cid::of(b), b.as_slice())).collect();
        let (checked, invalid) = check_hashed_events(&hashed);
        let mut taken = 0;
        for (&(cid, bytes), event) in hashed.iter().zip(checked) {
            if !from_maker && event.creator() != author {
                return Err(Refusal::new(
                    RULE_AUTHOR,
                    Some(cid),
                    "published by neither its creator nor the order's maker",
                ));
            }
            if !o.walk.order().hosts.contains(event.creator()) {
                return Err(Refusal::new(
                    Rule::from_name("key"),
                    Some(cid),
                    "signed by a key that is no host of the order",
                ));
            }
            let place = (event.log(), event.seq());
            if o.inbox.contains_key(&place) || o.stored.contains_key(&place) {
                continue;
            }
            if o.inbox.len() >= o.walk.order().events.len() {
                return Err(Refusal::new(
                    RULE_BUFFER_FULL,
                    Some(cid),
                    "more events than the order has",
                ));
            }
            o.inbox.insert(place, (cid, event, bytes.to_vec()));
            taken += 1;
        }
        match invalid {
            Some(v) => Err(v.into()),
            None => Ok(taken),
        }
    }
}

/// A refusal without words.
fn refuse(reason: DelegateRefusal) -> DelegateResponse {
    DelegateResponse::Refused {
        reason,
        detail: String::new(),
    }
}

fn cid_bytes(cid: Cid) -> ByteBuf {
    ByteBuf::from(cid.to_bytes().to_vec())
}

/// The places of the events stored under an order's name.
fn stored_places(store: &Store, name: Cid) -> HashMap<(Cid, u64), Cid> {
    let mut places = HashMap::new();
    for log in store.program_logs(name).unwrap_or_default() {
        let Ok(events) = store.log_events(log) else {
            continue;
        };
        for stored in events.flatten() {
            places.insert((log, stored.seq), stored.cid);
        }
    }
    places
}

/// The events stored under an order's name that this node signed (its host's),
/// for a maker asking after the walk is over; bounded like any `Feed` answer.
fn own_stored_events(store: &Store, name: Cid, maker: &PeerId) -> Vec<ByteBuf> {
    let mut events = Vec::new();
    for log in store.program_logs(name).unwrap_or_default() {
        let Ok(stored) = store.log_events(log) else {
            continue;
        };
        for stored in stored.flatten() {
            let mine = Event::decode(&stored.bytes)
                .is_ok_and(|e| identity::peer_id(e.creator()) != *maker);
            if mine && events.len() < FEED_MAX_EVENTS {
                events.push(ByteBuf::from(stored.bytes));
            }
        }
    }
    events
}

/// Offers what a walk of a whole plan signed to the ingest (which replays it
/// like any other event).
fn offer_own(ingest: &mut Ingest, program: Cid, advance: &Advance) -> Result<(), Refusal> {
    let blocks: Vec<&[u8]> = advance
        .manifests
        .iter()
        .map(|(_, b)| b.as_slice())
        .collect();
    let signed: Vec<(Cid, &[u8])> = advance
        .signed
        .iter()
        .map(|s| (s.cid, s.bytes.as_slice()))
        .collect();
    match ingest.offer_own(program, &blocks, &signed).refused {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// Stores what a walk of an order walked from its event `start` on: the events
/// it signed and those it received and checked, with the slice manifests it
/// worked out, under the order's name (their refs outside the order stay CIDs).
fn store_part(
    store: &Store,
    name: Cid,
    o: &mut OrderWalk,
    start: usize,
    advance: &Advance,
) -> Result<(), Refusal> {
    let signed: HashMap<usize, &Signed> = advance.signed.iter().map(|s| (s.index, s)).collect();
    let mut walked: Vec<(Cid, Event, Vec<u8>)> = Vec::new();
    for index in start..o.walk.position() {
        let event = &o.walk.order().events[index];
        let Some(log) = o.walk.log_id(event.log) else {
            continue;
        };
        let place = (log, event.seq);
        if let Some(s) = signed.get(&index) {
            let decoded = Event::decode(&s.bytes).map_err(|e| {
                Refusal::new(RULE_STORE, Some(s.cid), format!("its own event: {e}"))
            })?;
            walked.push((s.cid, decoded, s.bytes.clone()));
        } else if let Some(received) = o.inbox.remove(&place) {
            walked.push(received);
        } else {
            // Stored before a restart.
            continue;
        }
    }
    let blocks: Vec<(Cid, &[u8])> = advance
        .manifests
        .iter()
        .map(|(cid, b)| (*cid, b.as_slice()))
        .collect();
    let whose = if advance.signed.is_empty() {
        Written::Received
    } else {
        Written::Own
    };
    write_checked(store, name, &blocks, &walked, true, whose)
        .map_err(|e| Refusal::new(RULE_STORE, None, e.to_string()))?;
    for (cid, event, _) in &walked {
        o.stored.insert((event.log(), event.seq()), *cid);
    }
    Ok(())
}

/// Publishes on a delegate's order's topic what the maker's walk has walked of
/// the order since last time (every event its host does not write) and the bare
/// refs' CIDs it now knows.
fn feed_out(walk: &Execution, feed: &mut Feed, store: &Store, actions: &mut Vec<Action>) {
    let position = walk.position();
    let mut items = Vec::new();
    while let Some(&index) = feed.held.get(feed.sent_held).filter(|&&i| i < position) {
        if walk.plan().events[index].writer != feed.host {
            let bytes = walk
                .cid(index)
                .and_then(|cid| store.get_event(cid).ok().flatten());
            match bytes {
                Some(stored) => items.push((Vec::new(), stored.bytes)),
                // Not stored yet: published by a later feed (or asked by `Feed`).
                None => break,
            }
        }
        feed.sent_held += 1;
    }
    let mut told = Vec::new();
    while let Some(&(index, b)) = feed
        .bare
        .get(feed.sent_bare)
        .filter(|&&(i, _)| i < position)
    {
        let Some(cid) = walk.cid(index) else {
            break;
        };
        told.push((b as u64, cid_bytes(cid)));
        feed.sent_bare += 1;
    }
    if items.is_empty() && told.is_empty() {
        return;
    }
    let mut batches: Vec<GossipBatch> = Batcher::all(feed.name, items);
    if batches.is_empty() {
        batches.push(empty(feed.name));
    }
    batches[0].told = told;
    actions.extend(batches.into_iter().map(|batch| Action::Publish {
        program: feed.name,
        batch,
    }));
}

/// Publishes events this host signed through the one batcher (`batch.rs`), each
/// event starting a slice's log with the slice's manifest (any manifest no event
/// starts goes with the first event), and tells local listeners.
fn announce(name: Cid, manifests: &[(Cid, Vec<u8>)], signed: &[Signed], actions: &mut Vec<Action>) {
    let decoded: Vec<Option<Event>> = signed
        .iter()
        .map(|s| Event::decode(&s.bytes).ok())
        .collect();
    let starts = |manifest: &Cid| {
        decoded
            .iter()
            .flatten()
            .any(|e| e.seq() == 0 && e.log() == *manifest)
    };
    let mut unclaimed: Vec<Vec<u8>> = manifests
        .iter()
        .filter(|(cid, _)| !starts(cid))
        .map(|(_, bytes)| bytes.clone())
        .collect();
    let items = signed.iter().zip(&decoded).map(|(s, event)| {
        let mut blocks = std::mem::take(&mut unclaimed);
        if let Some(event) = event.as_ref().filter(|e| e.seq() == 0) {
            blocks.extend(
                manifests
                    .iter()
                    .filter(|(cid, _)| *cid == event.log())
                    .map(|(_, bytes)| bytes.clone()),
            );
        }
        (blocks, s.bytes.clone())
    });
    actions.extend(
        Batcher::all(name, items)
            .into_iter()
            .map(|batch| Action::Publish {
                program: name,
                batch,
            }),
    );
    let summaries = signed
        .iter()
        .zip(&decoded)
        .filter_map(|(s, event)| Some(StoredSummary::of(name, s.cid, event.as_ref()?)))
        .collect();
    actions.push(Action::Stored(summaries));
}

/// What a walk asks the node to do; the intake carries it out.
#[derive(Debug)]
pub(crate) enum Action {
    /// Publish a batch on the topic of `program` (a program or an order).
    Publish {
        /// The program or order.
        program: Cid,
        /// The batch.
        batch: GossipBatch,
    },
    /// Ask `peer` (with `request`) to reserve the co-capability of the step whose
    /// first half is event `first` of the walk `walk` (`spec/network.md` §8, the
    /// handshake).
    Reserve {
        /// The walk asking.
        walk: Cid,
        /// The step's first half, in that walk.
        first: usize,
        /// Whom to ask.
        peer: PeerId,
        /// `Reserve` or `Arrange`.
        request: DelegateRequest,
    },
    /// Tell listeners of events this walk stored.
    Stored(Vec<StoredSummary>),
    /// The fault layer's crash point is reached (`signed` events): abort the
    /// process, as a SIGKILL would.
    Crash {
        /// Events signed by the walks so far.
        signed: u64,
    },
}
