//! Taking in events from other peers (`spec/network.md` §4): every check the node
//! can make before an event is stored or forwarded. Each event's bytes are checked
//! (canonical CBOR, CID, signature); an event gossiped by a peer other than its
//! creator is refused; then, since the node holds the program, the event goes
//! through the replay state machine, which checks everything `amb verify` checks
//! (key allowed by the log's manifest, log id, order, refs, legality of the step,
//! duality). Events whose predecessors have not arrived wait in a bounded buffer.
//! A second event at a taken place of a log is a fork: it is refused with both
//! events as proof, and the log is frozen.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use amb_bytecode::Cid;
use amb_log::{Event, Manifest, NewEvent, PublicKey, Store, StoreError};
use amb_vm::{
    replay::{Replay, Source, Violation},
    verify::{StoreSource, check_event, decode_event, stable_order},
};

use crate::source::LiveSource;

/// Why events were refused: a rule's name (the ones of `amb verify`, plus the
/// network's own, below) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The rule broken.
    pub rule: &'static str,
    /// The event that broke it, when one did.
    pub event: Option<Cid>,
    /// What was wrong.
    pub detail: String,
}

impl Refusal {
    fn new(rule: &'static str, event: Option<Cid>, detail: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            event,
            detail: detail.into(),
        }
    }

    /// Whether the sender is to blame (and penalised): everything but the node's
    /// own limits.
    pub fn blames_sender(&self) -> bool {
        !matches!(self.rule, RULE_BUFFER_FULL | RULE_NOT_HELD | RULE_STORE)
    }
}

impl From<Violation> for Refusal {
    fn from(v: Violation) -> Refusal {
        Refusal::new(v.rule, Some(v.event), v.detail)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.event {
            Some(event) => write!(f, "event {event}: rule {}: {}", self.rule, self.detail),
            None => write!(f, "rule {}: {}", self.rule, self.detail),
        }
    }
}

/// A gossiped event was published by a peer that is not its creator.
pub const RULE_AUTHOR: &str = "author";
/// A message that is not a well-formed batch.
pub const RULE_MALFORMED: &str = "malformed";
/// An event of another program than the topic's.
pub const RULE_PROGRAM: &str = "program";
/// An event for a log frozen by a fork.
pub const RULE_FROZEN: &str = "frozen";
/// The node does not hold the program (not the sender's fault).
pub const RULE_NOT_HELD: &str = "not-held";
/// The buffer of early events is full (not the sender's fault).
pub const RULE_BUFFER_FULL: &str = "buffer-full";
/// The store failed (not the sender's fault).
pub const RULE_STORE: &str = "store";

/// What became of an offer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events checked, applied and stored, in order.
    pub stored: Vec<Cid>,
    /// Events already held (no-ops).
    pub duplicates: usize,
    /// Events waiting for their predecessors.
    pub waiting: usize,
    /// Why the offer (or part of it) was refused.
    pub refused: Option<Refusal>,
}

/// Settings of the ingest.
#[derive(Clone, Copy, Debug)]
pub struct IngestLimits {
    /// Most events waiting for their predecessors, over all programs.
    pub max_waiting: usize,
    /// How long an event may wait before it is dropped (sync fetches it again).
    pub max_wait: Duration,
}

impl Default for IngestLimits {
    fn default() -> IngestLimits {
        IngestLimits {
            max_waiting: 65_536,
            max_wait: Duration::from_secs(120),
        }
    }
}

/// A program the node holds: its replayed state, which judges every new event.
struct Held {
    replay: Replay,
    /// Positions of the applied events, for fork proofs.
    places: HashMap<(Cid, u64), Cid>,
    frozen: HashSet<Cid>,
    /// Whether the root log's last event carries a payload (the run is complete).
    complete: bool,
}

/// What an early event waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Dep {
    Event(Cid),
    Place(Cid, u64),
}

struct Early {
    program: Cid,
    event: Event,
    bytes: Vec<u8>,
    unmet: usize,
    since: Instant,
}

/// The node's intake of events: held programs and early events.
pub struct Ingest {
    store: Arc<Store>,
    source: LiveSource,
    limits: IngestLimits,
    held: HashMap<Cid, Held>,
    early: HashMap<Cid, Early>,
    waiters: HashMap<Dep, Vec<Cid>>,
    arrival: VecDeque<(Instant, Cid)>,
    refused: BTreeMap<&'static str, u64>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("held", &self.held.len())
            .field("early", &self.early.len())
            .field("refused", &self.refused)
            .finish()
    }
}

impl Ingest {
    /// An intake writing into `store`.
    pub fn new(store: Arc<Store>, limits: IngestLimits) -> Ingest {
        Ingest {
            source: LiveSource::new(Arc::clone(&store)),
            store,
            limits,
            held: HashMap::new(),
            early: HashMap::new(),
            waiters: HashMap::new(),
            arrival: VecDeque::new(),
            refused: BTreeMap::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Refusals so far, by rule.
    pub fn refused(&self) -> &BTreeMap<&'static str, u64> {
        &self.refused
    }

    /// Counts a refusal decided elsewhere (a malformed message).
    pub fn count_refusal(&mut self, rule: &'static str) {
        *self.refused.entry(rule).or_default() += 1;
    }

    /// Programs held.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Events waiting for their predecessors.
    pub fn waiting(&self) -> usize {
        self.early.len()
    }

    /// Whether the node holds `program` (its manifest, and its state replayed).
    pub fn holds(&self, program: &Cid) -> bool {
        self.held.contains_key(program)
    }

    /// Whether a held program's run is complete: its root log ends with a payload.
    pub fn is_complete(&self, program: &Cid) -> bool {
        self.held.get(program).is_some_and(|h| h.complete)
    }

    /// Events applied of a held program.
    pub fn applied(&self, program: &Cid) -> Option<usize> {
        self.held.get(program).map(|h| h.places.len())
    }

    /// Starts holding a program whose manifest (and blocks) are stored: replays the
    /// events stored so far, so that new ones can be judged. Idempotent.
    pub fn hold(&mut self, program: Cid) -> Result<(), Refusal> {
        if self.held.contains_key(&program) {
            return Ok(());
        }
        let manifest = StoreSource { store: &self.store }
            .manifest(&program)
            .filter(Manifest::is_root)
            .ok_or_else(|| {
                Refusal::new(
                    RULE_NOT_HELD,
                    None,
                    format!("no valid program manifest {program} is stored"),
                )
            })?;
        let mut events = BTreeMap::new();
        let logs = self.store.program_logs(program).map_err(store_refusal)?;
        for log in logs {
            for stored in self.store.log_events(log).map_err(store_refusal)? {
                let stored = stored.map_err(store_refusal)?;
                let event = decode_event(stored.cid, &stored.bytes)?;
                events.insert(stored.cid, event);
            }
        }
        let mut held = Held {
            replay: Replay::new(program, manifest),
            places: HashMap::with_capacity(events.len()),
            frozen: HashSet::new(),
            complete: false,
        };
        for cid in stable_order(&events) {
            let event = &events[&cid];
            held.replay.apply(cid, event, &self.source)?;
            held.note_applied(program, cid, event);
        }
        self.held.insert(program, held);
        Ok(())
    }

    /// Takes a gossiped batch of `program`: the blocks it brings, then its events.
    /// `author` is the key of the peer that published it: every event must be its
    /// own. The first refusal stops the batch; what was applied before it stays.
    pub fn offer(
        &mut self,
        program: Cid,
        blocks: &[impl AsRef<[u8]>],
        events: &[impl AsRef<[u8]>],
        author: Option<&PublicKey>,
    ) -> Outcome {
        let mut outcome = Outcome::default();
        self.expire();
        if let Err(refusal) = self.hold(program) {
            return self.refuse(outcome, refusal);
        }
        if let Err(e) = self
            .store
            .put_blocks(blocks.iter().map(|b| (Cid::of(b.as_ref()), b.as_ref())))
        {
            return self.refuse(outcome, store_refusal(e));
        }
        let mut ready = Vec::new();
        for bytes in events {
            let bytes = bytes.as_ref();
            let cid = Cid::of(bytes);
            let held = &self.held[&program];
            if held.replay.has_applied(&cid) || self.early.contains_key(&cid) {
                outcome.duplicates += 1;
                continue;
            }
            let event = match check_event(cid, bytes) {
                Ok(event) => event,
                Err(v) => return self.refuse(outcome, v.into()),
            };
            if let Some(author) = author {
                if event.creator() != author {
                    let refusal = Refusal::new(
                        RULE_AUTHOR,
                        Some(cid),
                        "gossiped by a peer that is not its creator (a replayed event)",
                    );
                    return self.refuse(outcome, refusal);
                }
            }
            if held.frozen.contains(&event.log()) {
                let detail = format!("log {} is frozen by a fork", event.log());
                return self.refuse(outcome, Refusal::new(RULE_FROZEN, Some(cid), detail));
            }
            if let Some(&existing) = held.places.get(&(event.log(), event.seq())) {
                let refusal = self.fork(program, existing, cid, &event);
                return self.refuse(outcome, refusal);
            }
            let unmet = self.unmet(program, &event);
            if unmet.is_empty() {
                ready.push((cid, event, bytes.to_vec()));
                continue;
            }
            if self.early.len() >= self.limits.max_waiting {
                let detail = format!("{} events already wait", self.early.len());
                return self.refuse(outcome, Refusal::new(RULE_BUFFER_FULL, Some(cid), detail));
            }
            for dep in &unmet {
                self.waiters.entry(*dep).or_default().push(cid);
            }
            self.arrival.push_back((Instant::now(), cid));
            self.early.insert(
                cid,
                Early {
                    program,
                    event,
                    bytes: bytes.to_vec(),
                    unmet: unmet.len(),
                    since: Instant::now(),
                },
            );
        }
        if let Err(refusal) = self.apply_ready(program, ready, &mut outcome) {
            return self.refuse(outcome, refusal);
        }
        outcome.waiting = self.early.len();
        outcome
    }

    /// Takes every event of a synced program at once (any order; no buffer bound):
    /// they are checked, ordered and applied like gossiped ones.
    pub fn offer_synced(&mut self, program: Cid, events: &[impl AsRef<[u8]>]) -> Outcome {
        let mut outcome = Outcome::default();
        if let Err(refusal) = self.hold(program) {
            return self.refuse(outcome, refusal);
        }
        let mut decoded = BTreeMap::new();
        let mut bytes_of = HashMap::new();
        for bytes in events {
            let bytes = bytes.as_ref();
            let cid = Cid::of(bytes);
            if self.held[&program].replay.has_applied(&cid) || decoded.contains_key(&cid) {
                outcome.duplicates += 1;
                continue;
            }
            match check_event(cid, bytes) {
                Ok(event) => {
                    decoded.insert(cid, event);
                    bytes_of.insert(cid, bytes);
                }
                Err(v) => return self.refuse(outcome, v.into()),
            }
        }
        let order = stable_order(&decoded);
        let ready = order
            .into_iter()
            .map(|cid| {
                let event = decoded.remove(&cid).expect("ordered from the map");
                (cid, event, bytes_of[&cid].to_vec())
            })
            .collect();
        if let Err(refusal) = self.apply_ready(program, ready, &mut outcome) {
            return self.refuse(outcome, refusal);
        }
        outcome
    }

    /// Applies events whose predecessors are applied, then the early events they
    /// release, and stores what was applied in one transaction.
    fn apply_ready(
        &mut self,
        program: Cid,
        mut ready: Vec<(Cid, Event, Vec<u8>)>,
        outcome: &mut Outcome,
    ) -> Result<(), Refusal> {
        ready.reverse();
        let mut applied: Vec<(Cid, Event, Vec<u8>)> = Vec::new();
        let mut failure = None;
        while let Some((cid, event, bytes)) = ready.pop() {
            let held = self.held.get_mut(&program).expect("held");
            if held.replay.has_applied(&cid) {
                continue;
            }
            if let Some(&existing) = held.places.get(&(event.log(), event.seq())) {
                failure = Some(self.fork(program, existing, cid, &event));
                break;
            }
            if let Err(v) = held.replay.apply(cid, &event, &self.source) {
                failure = Some(v.into());
                break;
            }
            held.note_applied(program, cid, &event);
            for dep in [Dep::Event(cid), Dep::Place(event.log(), event.seq() + 1)] {
                for waiter in self.waiters.remove(&dep).unwrap_or_default() {
                    let Some(early) = self.early.get_mut(&waiter) else {
                        continue;
                    };
                    early.unmet -= 1;
                    if early.unmet == 0 {
                        let early = self.early.remove(&waiter).expect("present");
                        if early.program == program {
                            ready.push((waiter, early.event, early.bytes));
                        }
                    }
                }
            }
            applied.push((cid, event, bytes));
        }
        if !applied.is_empty() {
            let refs: Vec<Vec<Cid>> = applied.iter().map(|(_, e, _)| e.refs().to_vec()).collect();
            let batch: Vec<NewEvent<'_>> = applied
                .iter()
                .zip(&refs)
                .map(|((cid, event, bytes), refs)| NewEvent {
                    cid: *cid,
                    log: event.log(),
                    seq: event.seq(),
                    refs,
                    bytes,
                })
                .collect();
            self.store
                .write(program, &[], &batch)
                .map_err(store_refusal)?;
            outcome
                .stored
                .extend(applied.iter().map(|(cid, _, _)| *cid));
        }
        match failure {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// What an event still waits for: refs and its log predecessor not yet applied.
    fn unmet(&self, program: Cid, event: &Event) -> Vec<Dep> {
        let held = &self.held[&program];
        let mut unmet: Vec<Dep> = event
            .refs()
            .iter()
            .filter(|r| !held.replay.has_applied(r))
            .map(|r| Dep::Event(*r))
            .collect();
        if event.seq() > 0 && !held.places.contains_key(&(event.log(), event.seq() - 1)) {
            unmet.push(Dep::Place(event.log(), event.seq()));
        }
        unmet
    }

    /// A fork: freezes the log and names both events.
    fn fork(&mut self, program: Cid, existing: Cid, new: Cid, event: &Event) -> Refusal {
        if let Some(held) = self.held.get_mut(&program) {
            held.frozen.insert(event.log());
        }
        Refusal::new(
            "fork",
            Some(new),
            format!(
                "{existing} and {new} are two signed events at position {} of log {}: proof of equivocation; the log is frozen",
                event.seq(),
                event.log()
            ),
        )
    }

    /// Drops early events that waited too long.
    fn expire(&mut self) {
        while let Some(&(since, cid)) = self.arrival.front() {
            if since.elapsed() < self.limits.max_wait && self.early.len() < self.limits.max_waiting
            {
                break;
            }
            self.arrival.pop_front();
            if self.early.get(&cid).is_some_and(|e| e.since == since) {
                self.early.remove(&cid);
            }
        }
    }

    fn refuse(&mut self, mut outcome: Outcome, refusal: Refusal) -> Outcome {
        self.count_refusal(refusal.rule);
        outcome.waiting = self.early.len();
        outcome.refused = Some(refusal);
        outcome
    }
}

impl Held {
    fn note_applied(&mut self, program: Cid, cid: Cid, event: &Event) {
        self.places.insert((event.log(), event.seq()), cid);
        if event.log() == program && event.payload().is_some() {
            self.complete = true;
        }
    }
}

fn store_refusal(e: StoreError) -> Refusal {
    Refusal::new(RULE_STORE, None, e.to_string())
}
