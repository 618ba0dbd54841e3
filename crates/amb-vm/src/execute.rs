//! Executing a plan on several hosts (`spec/network.md` §8): a host walks a
//! [`Script`] in order, either the whole [`Plan`] (the deployer, or a host that
//! holds the program) or its [`Order`] (its part of the plan); it signs the events
//! it writes and takes the others' from what it has received (found by log and
//! position, and checked against the script). A slice's log id is computable by
//! every host once the `deploy` announcing it is known (a slice manifest is not
//! signed), so a host can sign an event as soon as every event it refers to has a
//! CID; the CIDs of events outside an order (bare refs) it is told. One host with
//! every event is [`crate::record`]'s case.

use amb_bytecode::Cid;
use amb_log::{Event, Manifest, Op, PublicKey, SigningKey, UnsignedEvent};

use crate::{
    order::{LogId, Order, Ref},
    plan::{EventIx, HostIx, Plan, PlannedEvent},
};

/// An event this host signed.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Its index in the plan.
    pub index: EventIx,
    /// Its CID.
    pub cid: Cid,
    /// Its encoding.
    pub bytes: Vec<u8>,
}

/// What the walk needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Another host's event: the one at `seq` of `log`.
    Event {
        /// Its index in the plan.
        index: EventIx,
        /// Its log.
        log: Cid,
        /// Its position.
        seq: u64,
        /// The host that writes it.
        writer: HostIx,
    },
    /// The CID of a bare ref (an event outside the host's order), not told yet.
    Bare {
        /// Its index among the order's bare refs.
        index: usize,
    },
    /// This host's own event, held back: the advance's budget is spent, or
    /// `stop_before` said so.
    Paused {
        /// Its index in the plan.
        index: EventIx,
    },
    /// The plan is walked to its end.
    Done,
}

/// What one advance did.
#[derive(Clone, Debug)]
pub struct Advance {
    /// Events signed, in plan order.
    pub signed: Vec<Signed>,
    /// Slice manifests of the slices announced by the events walked (CID, bytes).
    pub manifests: Vec<(Cid, Vec<u8>)>,
    /// What the walk stopped at.
    pub need: Need,
}

/// A host's event at a place does not match the plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {cid} (index {index} of the plan) differs from the plan: {detail}")]
pub struct Deviation {
    /// The index.
    pub index: EventIx,
    /// The event found.
    pub cid: Cid,
    /// How it differs.
    pub detail: String,
}

/// What a walk follows: a sequence of events, each in a log, with its writer,
/// operation and references (the whole [`Plan`], or a host's [`Order`]).
pub trait Script {
    /// How the events refer to each other.
    type Ref: Copy + Into<Ref>;
    /// The events, in an order where every reference points back.
    fn events(&self) -> &[PlannedEvent<Self::Ref>];
    /// How many logs.
    fn log_count(&self) -> usize;
    /// Log `l`'s name, block, first host and the hosts its manifest lists.
    fn log_info(&self, l: usize) -> (Option<&str>, Cid, HostIx, &[HostIx]);
    /// Where log `l`'s id comes from; `None` for the root log of a whole plan,
    /// whose id the walk derives from the program manifest.
    fn log_id(&self, l: usize) -> Option<LogId>;
}

impl Script for Plan {
    type Ref = EventIx;
    fn events(&self) -> &[PlannedEvent] {
        &self.events
    }
    fn log_count(&self) -> usize {
        self.logs.len()
    }
    fn log_info(&self, l: usize) -> (Option<&str>, Cid, HostIx, &[HostIx]) {
        let log = &self.logs[l];
        (log.name.as_deref(), log.block, log.host, &log.keys)
    }
    fn log_id(&self, l: usize) -> Option<LogId> {
        self.logs[l].parent.map(LogId::Announced)
    }
}

impl Script for Order {
    type Ref = Ref;
    fn events(&self) -> &[PlannedEvent<Ref>] {
        &self.events
    }
    fn log_count(&self) -> usize {
        self.logs.len()
    }
    fn log_info(&self, l: usize) -> (Option<&str>, Cid, HostIx, &[HostIx]) {
        let log = &self.logs[l];
        (log.name.as_deref(), log.block, log.host, &log.keys)
    }
    fn log_id(&self, l: usize) -> Option<LogId> {
        Some(self.logs[l].id)
    }
}

/// A walk of a script by one host.
#[derive(Debug)]
pub struct Walk<S> {
    script: S,
    /// What the walk is of: the program address (a whole plan) or the name its
    /// maker gave an order.
    name: Cid,
    hosts: Vec<PublicKey>,
    me: HostIx,
    cids: Vec<Option<Cid>>,
    bare: Vec<Option<Cid>>,
    log_ids: Vec<Option<Cid>>,
    /// By announcing `deploy` event: the log it announces.
    announces: std::collections::HashMap<usize, usize>,
    next: usize,
}

/// A walk of a whole plan.
pub type Execution = Walk<Plan>;

impl Walk<Plan> {
    /// The walk of `plan` of the program `program_manifest` by host `me` of `hosts`
    /// (host 0 is the deployer). Each slice manifest lists the keys its log needs
    /// ([`crate::plan::PlannedLog::keys`]).
    pub fn new(
        plan: Plan,
        program_manifest: &Manifest,
        hosts: Vec<PublicKey>,
        me: HostIx,
    ) -> Execution {
        let root_log = crate::record::root_log_manifest(program_manifest).cid();
        Walk::start(plan, program_manifest.cid(), Some(root_log), 0, hosts, me)
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.script
    }

    /// The program (its manifest's CID).
    pub fn program(&self) -> Cid {
        self.name
    }

    /// Walks on: signs this host's events (at most `max` of them) with `key`, and
    /// takes other hosts' events from `received(log, seq)`, until an event is
    /// missing or the plan ends. `stop_before(index)` may hold the walk before one of
    /// this host's events (a reservation not granted yet).
    pub fn advance(
        &mut self,
        key: &SigningKey,
        max: usize,
        received: impl FnMut(Cid, u64) -> Option<(Cid, Event)>,
        stop_before: impl FnMut(EventIx) -> bool,
    ) -> Result<Advance, Deviation> {
        self.advance_told(key, max, received, |_| None, stop_before)
    }
}

impl Walk<Order> {
    /// The walk of `order` (called `name` by its maker) by host `me` (an index
    /// into the order's hosts: [`Order::host_index`]).
    pub fn of_order(order: Order, name: Cid, me: HostIx) -> Walk<Order> {
        let (bare, hosts) = (order.bare, order.hosts.clone());
        Walk::start(order, name, None, bare, hosts, me)
    }

    /// The order.
    pub fn order(&self) -> &Order {
        &self.script
    }
}

impl<S: Script> Walk<S> {
    fn start(
        script: S,
        name: Cid,
        root_log: Option<Cid>,
        bare: usize,
        hosts: Vec<PublicKey>,
        me: HostIx,
    ) -> Walk<S> {
        let mut log_ids = vec![None; script.log_count()];
        let events = script.events().len();
        let mut announces = std::collections::HashMap::new();
        for (log, id) in log_ids.iter_mut().enumerate() {
            match script.log_id(log) {
                Some(LogId::Given(cid)) => *id = Some(cid),
                Some(LogId::Announced(event)) => {
                    announces.insert(event, log);
                }
                None => *id = root_log,
            }
        }
        Walk {
            announces,
            cids: vec![None; events],
            bare: vec![None; bare],
            log_ids,
            name,
            script,
            hosts,
            me,
            next: 0,
        }
    }

    /// What the walk is of: the program address (a whole plan) or the name its
    /// maker gave an order.
    pub fn name(&self) -> Cid {
        self.name
    }

    /// Events walked so far.
    pub fn position(&self) -> usize {
        self.next
    }

    /// The CID of a walked event.
    pub fn cid(&self, index: usize) -> Option<Cid> {
        self.cids.get(index).copied().flatten()
    }

    /// The log id of a log of the script, once its announcing deploy is walked.
    pub fn log_id(&self, log: usize) -> Option<Cid> {
        self.log_ids.get(log).copied().flatten()
    }

    /// Whether the walk is at its end.
    pub fn is_done(&self) -> bool {
        self.next == self.script.events().len()
    }

    /// [`Walk::advance`], with the CIDs of bare refs from `told(index)`.
    pub fn advance_told(
        &mut self,
        key: &SigningKey,
        max: usize,
        mut received: impl FnMut(Cid, u64) -> Option<(Cid, Event)>,
        mut told: impl FnMut(usize) -> Option<Cid>,
        mut stop_before: impl FnMut(usize) -> bool,
    ) -> Result<Advance, Deviation> {
        let mut out = Advance {
            signed: Vec::new(),
            manifests: Vec::new(),
            need: Need::Done,
        };
        while self.next < self.script.events().len() {
            let index = self.next;
            if let Some(missing) = self.untold_bare(index, &mut told) {
                out.need = Need::Bare { index: missing };
                return Ok(out);
            }
            let event = &self.script.events()[index];
            let (seq, writer) = (event.seq, event.writer);
            let log = self.log_ids[event.log].expect("a log is announced before its events");
            if writer != self.me {
                let Some((cid, event)) = received(log, seq) else {
                    out.need = Need::Event {
                        index,
                        log,
                        seq,
                        writer,
                    };
                    return Ok(out);
                };
                self.check(index, cid, &event)?;
                out.manifests.extend(self.walked(index, cid));
                continue;
            }
            if out.signed.len() >= max || stop_before(index) {
                out.need = Need::Paused { index };
                return Ok(out);
            }
            let (event, bytes) = Event::sign_encoded(self.body(index), key);
            let cid = Cid::of(&bytes);
            debug_assert_eq!(event.log(), log);
            out.signed.push(Signed { index, cid, bytes });
            if let Some(manifest) = self.walked(index, cid) {
                out.manifests.push(manifest);
            }
        }
        Ok(out)
    }

    /// The first bare ref of event `index` whose CID is not known and `told` does
    /// not know either.
    fn untold_bare(
        &mut self,
        index: usize,
        told: &mut impl FnMut(usize) -> Option<Cid>,
    ) -> Option<usize> {
        if self.bare.is_empty() {
            // A whole plan, or an order that leaves nothing outside its grant.
            return None;
        }
        let event = &self.script.events()[index];
        let at = event.at.map(|(anchor, _)| anchor);
        for reference in event.refs.iter().copied().chain(at) {
            if let Ref::Bare(b) = reference.into() {
                if self.bare[b].is_none() {
                    match told(b) {
                        Some(cid) => self.bare[b] = Some(cid),
                        None => return Some(b),
                    }
                }
            }
        }
        None
    }

    /// The CID of a reference whose event is walked (or bare and told).
    fn resolve(&self, reference: S::Ref) -> Cid {
        match reference.into() {
            Ref::Held(i) => self.cids[i].expect("refs point backwards"),
            Ref::Bare(b) => self.bare[b].expect("bare refs are told before use"),
        }
    }

    /// The unsigned event of script index `index`, whose refs are all known.
    fn body(&self, index: usize) -> UnsignedEvent {
        let event = &self.script.events()[index];
        UnsignedEvent {
            log: self.log_ids[event.log].expect("announced"),
            seq: event.seq,
            op: Op::new(event.opcode, event.target.clone())
                .expect("the planner makes valid operations"),
            at: event.at.map(|(anchor, i)| (self.resolve(anchor), i)),
            refs: event.refs.iter().map(|&r| self.resolve(r)).collect(),
            payload: event.payload,
        }
    }

    /// Checks another host's event against the script.
    fn check(&self, index: usize, cid: Cid, event: &Event) -> Result<(), Deviation> {
        let mut expected = self.body(index);
        expected.refs.sort_unstable();
        expected.refs.dedup();
        let deviation = |detail: String| Deviation { index, cid, detail };
        if event.body() != &expected {
            return Err(deviation(format!(
                "expected {} at seq {} with refs {:?}",
                expected.op.opcode().mnemonic(),
                expected.seq,
                expected.refs
            )));
        }
        let writer = &self.hosts[self.script.events()[index].writer];
        if event.creator() != writer {
            return Err(deviation("signed by another host than the plan's".into()));
        }
        Ok(())
    }

    /// Records the CID of event `index`; if it announces a slice, works out the
    /// slice's manifest, which is returned.
    fn walked(&mut self, index: usize, cid: Cid) -> Option<(Cid, Vec<u8>)> {
        self.cids[index] = Some(cid);
        self.next = index + 1;
        let slice = *self.announces.get(&index)?;
        let (name, block, host, keys) = self.script.log_info(slice);
        let manifest = Manifest::new_slice(
            block,
            name.unwrap_or_default().to_string(),
            keys.iter().map(|&k| self.hosts[k]).collect(),
            self.hosts[host],
            cid,
        );
        let manifest_cid = manifest.cid();
        self.log_ids[slice] = Some(manifest_cid);
        Some((manifest_cid, manifest.encode()))
    }
}
