//! A host's part of a plan (`spec/network.md` §8, "Need to know"): the events of
//! its grant (`grant.rs`) in plan order, with their logs, and every reference that
//! leaves the grant as a bare ref whose CID the host is told. The deployer, host of
//! the root and so entitled to the whole plan, makes one for each delegate; the
//! delegate walks it ([`crate::execute::Walk`]) knowing neither the program
//! address nor anything of its siblings: the root log's id comes with the order,
//! and every other log's id follows from its announcing `deploy`.

mod wire;

use std::collections::HashMap;

use amb_bytecode::Cid;
use amb_log::PublicKey;

use crate::{
    grant::HostGrant,
    plan::{EventIx, HostIx, Plan, PlannedEvent},
};

/// A reference from an event of an order (or, [`Ref::Held`], of a whole plan).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    /// An event of the order, by its index.
    Held(usize),
    /// An event outside the grant, by its index among the order's bare refs: only
    /// its CID is ever known.
    Bare(usize),
}

impl From<EventIx> for Ref {
    fn from(index: EventIx) -> Ref {
        Ref::Held(index)
    }
}

/// Where a log's id comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogId {
    /// Given with the order (the root log's, derived from the program address,
    /// which the host does not learn).
    Given(Cid),
    /// The slice manifest worked out once its announcing `deploy` (an event of the
    /// order, by index) is known.
    Announced(usize),
}

/// One log of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLog {
    /// The ambient's name (`None` for the root log).
    pub name: Option<String>,
    /// The slice's block.
    pub block: Cid,
    /// Where its id comes from.
    pub id: LogId,
    /// The host of its first event (its slice manifest's creator).
    pub host: HostIx,
    /// The hosts its slice manifest lists.
    pub keys: Vec<HostIx>,
}

/// One event of an order: its log is an index into [`Order::logs`], its
/// references [`Ref`]s.
pub type OrderEvent = PlannedEvent<Ref>;

/// A host's part of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// The events the host holds, in plan order (every reference points back).
    pub events: Vec<OrderEvent>,
    /// The logs of those events.
    pub logs: Vec<OrderLog>,
    /// How many bare refs the events make.
    pub bare: usize,
    /// The keys of the hosts the order names (by index): its writers and the keys
    /// of its logs' manifests, never another host of the deployment.
    pub hosts: Vec<PublicKey>,
    /// The events (by index) that are the first half of a step whose second half
    /// another host writes: the handshake reserves the co-capability first
    /// (`spec/network.md` §8).
    pub reserve: Vec<usize>,
}

pub use wire::OrderError;

/// An order with what only its maker knows: where its events and bare refs are in
/// the plan.
#[derive(Clone, Debug)]
pub struct Projection {
    /// The order.
    pub order: Order,
    /// The plan index of each of its events.
    pub held: Vec<EventIx>,
    /// The plan index of each bare ref (whose CID the maker tells the host).
    pub bare: Vec<EventIx>,
}

impl Order {
    /// The part of `plan` that `grant` covers, for a deployment whose root log is
    /// `root_log` and whose hosts are `hosts` (of which the order keeps those it
    /// names).
    pub fn project(
        plan: &Plan,
        grant: &HostGrant,
        root_log: Cid,
        hosts: Vec<PublicKey>,
    ) -> Projection {
        let held: Vec<EventIx> = (0..plan.events.len())
            .filter(|&i| grant.holds_event(plan, i))
            .collect();
        let position: HashMap<EventIx, usize> =
            held.iter().enumerate().map(|(at, &i)| (i, at)).collect();
        let mut log_position: HashMap<usize, usize> = HashMap::new();
        let mut logs = Vec::new();
        let mut bare = Vec::new();
        let mut bare_position: HashMap<EventIx, usize> = HashMap::new();
        let mut reference = |i: EventIx| match position.get(&i) {
            Some(&at) => Ref::Held(at),
            None => Ref::Bare(*bare_position.entry(i).or_insert_with(|| {
                bare.push(i);
                bare.len() - 1
            })),
        };
        let mut events = Vec::with_capacity(held.len());
        for &index in &held {
            let planned = &plan.events[index];
            let log = *log_position.entry(planned.log).or_insert_with(|| {
                let info = &plan.logs[planned.log];
                // A log whose id is given needs no manifest, so no keys.
                let (id, keys) = match info.parent {
                    None => (LogId::Given(root_log), Vec::new()),
                    Some(announce) => (
                        LogId::Announced(
                            *position
                                .get(&announce)
                                .expect("a grant holds the announcing deploy of each of its logs"),
                        ),
                        info.keys.clone(),
                    ),
                };
                logs.push(OrderLog {
                    name: info.name.clone(),
                    block: info.block,
                    id,
                    host: info.host,
                    keys,
                });
                logs.len() - 1
            });
            events.push(OrderEvent {
                log,
                seq: planned.seq,
                opcode: planned.opcode,
                target: planned.target.clone(),
                at: planned.at.map(|(anchor, i)| (reference(anchor), i)),
                refs: planned.refs.iter().map(|&r| reference(r)).collect(),
                payload: planned.payload,
                writer: planned.writer,
                effect: planned.effect.clone(),
            });
        }
        let reserve = held
            .iter()
            .enumerate()
            .filter(|&(_, &index)| plan.needs_reservation(index))
            .map(|(at, _)| at)
            .collect();
        let mut order = Order {
            events,
            logs,
            bare: bare.len(),
            hosts,
            reserve,
        };
        order.keep_named_hosts();
        Projection { order, held, bare }
    }
}

impl Order {
    /// Drops the keys of hosts the order does not name, renumbering the rest.
    fn keep_named_hosts(&mut self) {
        let mut named: Vec<HostIx> = self
            .events
            .iter()
            .map(|e| e.writer)
            .chain(self.logs.iter().flat_map(|l| l.keys.iter().copied()))
            .chain(self.logs.iter().map(|l| l.host))
            .collect();
        named.sort_unstable();
        named.dedup();
        let new_index: HashMap<HostIx, HostIx> = named
            .iter()
            .enumerate()
            .map(|(new, &old)| (old, new))
            .collect();
        for event in &mut self.events {
            event.writer = new_index[&event.writer];
        }
        for log in &mut self.logs {
            log.host = new_index[&log.host];
            for key in &mut log.keys {
                *key = new_index[key];
            }
        }
        self.hosts = named.iter().map(|&old| self.hosts[old]).collect();
    }

    /// Whether every event of a log whose id the order gives (the root log) is
    /// written by host `maker`. A host checks it of the peer that sends an order:
    /// every other log's id follows from an announcing `deploy` of the order, so
    /// every log a host is asked to write in then descends from events its maker
    /// signed, and an order cannot make it sign in a log of a program someone else
    /// deployed (`spec/events.md` §7).
    pub fn given_logs_written_by(&self, maker: HostIx) -> bool {
        self.events
            .iter()
            .filter(|e| matches!(self.logs[e.log].id, LogId::Given(_)))
            .all(|e| e.writer == maker)
    }

    /// Whether `key` may have made this order: a host of it that writes its root
    /// log ([`Order::given_logs_written_by`]).
    pub fn is_made_by(&self, key: &PublicKey) -> bool {
        self.host_index(key)
            .is_some_and(|maker| self.given_logs_written_by(maker))
    }

    /// The payloads (value blocks' CIDs, `spec/events.md` §6) of the events host
    /// `me` writes: its own slices' final terms.
    pub fn own_payloads(&self, me: HostIx) -> Vec<Cid> {
        self.events
            .iter()
            .filter(|e| e.writer == me)
            .filter_map(|e| e.payload)
            .collect()
    }

    /// The index of `key` among the order's hosts.
    pub fn host_index(&self, key: &PublicKey) -> Option<HostIx> {
        self.hosts.iter().position(|k| k == key)
    }
}
