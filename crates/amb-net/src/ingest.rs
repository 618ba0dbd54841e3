//! Taking in events from other peers (`spec/network.md` §4): every check the node
//! can make before an event is stored or forwarded. Each event's bytes are checked
//! (canonical CBOR, CID, signature); an event gossiped by a peer other than its
//! creator is refused; then, since the node holds the program, the event goes
//! through the replay state machine, which checks everything `amb verify` checks
//! (key allowed by the log's manifest, log id, order, refs, legality of the step,
//! duality). Events whose predecessors have not arrived wait in a bounded buffer.
//! A second event at a taken place of a log is a fork: it is refused with both
//! events as proof, and the log is frozen.
//!
//! The replay state of a program is kept while the program is in use: at most
//! [`IngestLimits::max_held`] programs, each dropped once idle for
//! [`IngestLimits::held_idle`] ([`Ingest::evict`]), and rebuilt from the store on
//! its next use by [`Ingest::hold`], the one path that (re)builds it. What the
//! store does not hold (the logs frozen by forks) is kept apart, for every program.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use amb_bytecode::Cid;
use amb_log::{Event, Manifest, NewEvent, PublicKey, Store, StoreError};
use amb_vm::{
    replay::{Replay, Source, Violation},
    verify::{StoreSource, check_hashed_events, decode_event, decode_hashed_event, stable_order},
};

use crate::source::LiveSource;

/// Why events were refused: the rule broken (the ones of `amb verify`, plus the
/// network's own) and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The rule broken.
    pub rule: Rule,
    /// The event that broke it, when one did.
    pub event: Option<Cid>,
    /// What was wrong.
    pub detail: String,
}

impl Refusal {
    pub(crate) fn new(rule: Rule, event: Option<Cid>, detail: impl Into<String>) -> Refusal {
        Refusal {
            rule,
            event,
            detail: detail.into(),
        }
    }

    /// Whether the sender is to blame (and penalised): everything but the node's
    /// own limits.
    pub fn blames_sender(&self) -> bool {
        self.rule.blames_sender()
    }
}

impl From<Violation> for Refusal {
    fn from(v: Violation) -> Refusal {
        Refusal::new(Rule::from_name(v.rule), Some(v.event), v.detail)
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

/// The rule a refusal names (`spec/network.md` §4): the network's own, or one of
/// `spec/events.md` checked by the replay. Its name ([`Rule::as_str`]) is what
/// `amb info` counts and the API's errors say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rule {
    /// `malformed`: a message that is not a well-formed batch.
    Malformed,
    /// `program`: a batch of another program than the topic's.
    Program,
    /// `author`: a gossiped event published by a peer that is not its creator.
    Author,
    /// `frozen`: an event for a log frozen by a fork.
    Frozen,
    /// `key`: an event whose creator may not write its log.
    Key,
    /// `fork`: a second event at a taken place of a log.
    Fork,
    /// `not-held`: the node does not hold the program (not the sender's fault).
    NotHeld,
    /// `buffer-full`: the buffer of early events or the intake's queue is full
    /// (not the sender's fault).
    BufferFull,
    /// `store`: the store failed (not the sender's fault).
    Store,
    /// `internal`: the node failed while checking (a panic, caught: not the
    /// sender's fault).
    Internal,
    /// Another rule of `spec/events.md`, checked by the replay, by the name
    /// `amb verify` gives it (`cbor`, `cid`, `signature`, `refs`, …).
    Event(&'static str),
}

impl Rule {
    /// The rule of `name`, as `amb verify` and the replay name rules.
    pub fn from_name(name: &'static str) -> Rule {
        [
            Rule::Malformed,
            Rule::Program,
            Rule::Author,
            Rule::Frozen,
            Rule::Key,
            Rule::Fork,
            Rule::NotHeld,
            Rule::BufferFull,
            Rule::Store,
            Rule::Internal,
        ]
        .into_iter()
        .find(|rule| rule.as_str() == name)
        .unwrap_or(Rule::Event(name))
    }

    /// The rule's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Malformed => "malformed",
            Rule::Program => "program",
            Rule::Author => "author",
            Rule::Frozen => "frozen",
            Rule::Key => "key",
            Rule::Fork => "fork",
            Rule::NotHeld => "not-held",
            Rule::BufferFull => "buffer-full",
            Rule::Store => "store",
            Rule::Internal => "internal",
            Rule::Event(name) => name,
        }
    }

    /// Whether a sender that breaks it is to blame (and penalised): every rule but
    /// the node's own limits and failures.
    pub fn blames_sender(self) -> bool {
        !matches!(
            self,
            Rule::BufferFull | Rule::NotHeld | Rule::Store | Rule::Internal
        )
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Rule {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

impl From<Rule> for String {
    fn from(rule: Rule) -> String {
        rule.as_str().to_string()
    }
}

/// A gossiped event was published by a peer that is not its creator.
pub const RULE_AUTHOR: Rule = Rule::Author;
/// A message that is not a well-formed batch.
pub const RULE_MALFORMED: Rule = Rule::Malformed;
/// An event of another program than the topic's.
pub const RULE_PROGRAM: Rule = Rule::Program;
/// An event for a log frozen by a fork.
pub const RULE_FROZEN: Rule = Rule::Frozen;
/// The node does not hold the program (not the sender's fault).
pub const RULE_NOT_HELD: Rule = Rule::NotHeld;
/// The buffer of early events is full (not the sender's fault).
pub const RULE_BUFFER_FULL: Rule = Rule::BufferFull;
/// The store failed (not the sender's fault).
pub const RULE_STORE: Rule = Rule::Store;
/// The node failed while checking (a panic, caught: not the sender's fault).
pub const RULE_INTERNAL: Rule = Rule::Internal;

/// What became of an offer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events checked, applied and stored, in order.
    pub stored: Vec<Cid>,
    /// The same events, decoded.
    pub stored_events: Vec<Event>,
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
    /// Most programs whose replay state is kept (`max_held_programs`).
    pub max_held: usize,
    /// How long a program's replay state is kept unused (`held_idle_secs`).
    pub held_idle: Duration,
    /// Most events applied over all programs whose replay state is kept
    /// (`max_held_events`; the most recently used program is kept whatever its
    /// size, so that a large program is not rebuilt at every use).
    pub max_held_events: usize,
}

impl Default for IngestLimits {
    fn default() -> IngestLimits {
        IngestLimits {
            max_waiting: 65_536,
            max_wait: Duration::from_secs(120),
            max_held: 64,
            held_idle: Duration::from_secs(60),
            max_held_events: 1_000_000,
        }
    }
}

/// A program the node holds: its replayed state, which judges every new event.
struct Held {
    /// The root log's id (derived from the program address).
    root_log: Cid,
    replay: Replay,
    /// Positions of the applied events, for fork proofs.
    places: HashMap<(Cid, u64), Cid>,
    /// Whether the root log's last event carries a payload (the run is complete).
    complete: bool,
    /// When it was last used (for eviction).
    used: Instant,
    /// The fault layer panics while checking its events (`panic_name`).
    panics: bool,
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
    /// What it waits for; `unmet` of them are not applied yet.
    deps: Vec<Dep>,
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
    refused: BTreeMap<Rule, u64>,
    /// Logs frozen by a fork (kept when their program's replay state is dropped).
    frozen: HashSet<Cid>,
    /// The fault layer's `panic_name`.
    panic_name: Option<&'static str>,
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
            frozen: HashSet::new(),
            panic_name: None,
        }
    }

    /// Makes checking an event of a program named `name` panic (the fault layer's
    /// `panic_name`, for the tests of the intake's panic guard).
    pub fn panic_on(&mut self, name: Option<&'static str>) {
        self.panic_name = name;
    }

    /// Drops the replay state of programs unused for longer than
    /// [`IngestLimits::held_idle`], then of the least recently used ones while more
    /// than [`IngestLimits::max_held`] programs or [`IngestLimits::max_held_events`]
    /// events are held; never of the most recently used program, nor of one `keep`
    /// names (one a walk of this node is writing). The next use rebuilds it
    /// ([`Ingest::hold`]).
    pub fn evict(&mut self, keep: impl Fn(&Cid) -> bool) {
        let idle = self.limits.held_idle;
        self.held
            .retain(|program, held| keep(program) || held.used.elapsed() < idle);
        let mut events: usize = self.held.values().map(|h| h.places.len()).sum();
        let over = |count: usize, events: usize| {
            count > self.limits.max_held || events > self.limits.max_held_events
        };
        if !over(self.held.len(), events) {
            return;
        }
        let mut by_use: Vec<(Instant, Cid, usize)> = self
            .held
            .iter()
            .filter(|(program, _)| !keep(program))
            .map(|(program, held)| (held.used, *program, held.places.len()))
            .collect();
        by_use.sort_unstable();
        by_use.pop();
        let mut count = self.held.len();
        let mut dropped = Vec::new();
        for (_, program, applied) in by_use {
            if !over(count, events) {
                break;
            }
            dropped.push(program);
            count -= 1;
            events -= applied;
        }
        for program in dropped {
            self.held.remove(&program);
        }
    }

    /// Drops a program's replay state (after a failure while checking it); the
    /// next use rebuilds it from the store.
    pub fn forget(&mut self, program: &Cid) {
        self.held.remove(program);
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Refusals so far, by rule.
    pub fn refused(&self) -> &BTreeMap<Rule, u64> {
        &self.refused
    }

    /// Counts a refusal decided elsewhere (a malformed message).
    pub fn count_refusal(&mut self, rule: Rule) {
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

    /// The event applied at `seq` of `log` of a held program.
    pub fn event_at(&self, program: &Cid, log: Cid, seq: u64) -> Option<Cid> {
        self.held.get(program)?.places.get(&(log, seq)).copied()
    }

    /// How many events of each log of a held program are applied (each log's
    /// applied events are a prefix of it).
    pub fn applied_lengths(&self, program: &Cid) -> HashMap<Cid, u64> {
        let mut lengths: HashMap<Cid, u64> = HashMap::new();
        if let Some(held) = self.held.get(program) {
            for (log, _) in held.places.keys() {
                *lengths.entry(*log).or_default() += 1;
            }
        }
        lengths
    }

    /// Events applied of a held program.
    pub fn applied(&self, program: &Cid) -> Option<usize> {
        self.held.get(program).map(|h| h.places.len())
    }

    /// Starts holding a program whose manifest (and blocks) are stored: replays the
    /// events stored so far, so that new ones can be judged. Idempotent.
    pub fn hold(&mut self, program: Cid) -> Result<(), Refusal> {
        if let Some(held) = self.held.get_mut(&program) {
            held.used = Instant::now();
            return Ok(());
        }
        let manifest = StoreSource { store: &self.store }
            .manifest(&program)
            .filter(|manifest| Manifest::is_root(manifest))
            .ok_or_else(|| {
                Refusal::new(
                    RULE_NOT_HELD,
                    None,
                    format!("no valid program manifest {program} is stored"),
                )
            })?;
        let mut events = BTreeMap::new();
        let logs = self.store.program_logs(program).map_err(store_refusal)?;
        let root_log_manifest = amb_vm::record::root_log_manifest(&manifest);
        let root_log = root_log_manifest.cid();
        // The root log's manifest, which this node serves to peers that sync the
        // root log: it derives it (gossip never carries it).
        if !self.store.has_block(root_log).map_err(store_refusal)? {
            self.store
                .put_block(root_log, &root_log_manifest.encode())
                .map_err(store_refusal)?;
        }
        if logs.is_empty() {
            // Listed among the store's programs from now on, events or not.
            self.store
                .register_log(program, root_log)
                .map_err(store_refusal)?;
        }
        for log in logs {
            for stored in self.store.log_events(log).map_err(store_refusal)? {
                let stored = stored.map_err(store_refusal)?;
                let event = decode_event(stored.cid, &stored.bytes)?;
                events.insert(stored.cid, event);
            }
        }
        let panics = self.panic_name.is_some() && manifest.name() == self.panic_name;
        let mut held = Held {
            root_log,
            replay: Replay::new(program, manifest),
            places: HashMap::with_capacity(events.len()),
            complete: false,
            used: Instant::now(),
            panics,
        };
        for cid in stable_order(&events) {
            let event = &events[&cid];
            // A host's part of a program (an order it walked) holds some events of
            // its path's logs without what they refer to: they wait for a sync of
            // the whole program, which brings what they lack.
            let anchor = event.at().map(|(deploy, _)| deploy);
            let unmet = event
                .refs()
                .iter()
                .chain(anchor.as_ref())
                .any(|r| !held.replay.has_applied(r))
                || event
                    .seq()
                    .checked_sub(1)
                    .is_some_and(|before| !held.places.contains_key(&(event.log(), before)));
            if unmet {
                continue;
            }
            held.replay.apply(cid, event, &self.source)?;
            held.note_applied(cid, event);
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
        let blocks: Vec<(Cid, &[u8])> = blocks
            .iter()
            .map(|b| (Cid::of(b.as_ref()), b.as_ref()))
            .collect();
        if let Err(refusal) = self.put_blocks(&blocks) {
            return self.refuse(outcome, refusal);
        }
        let hashed: Vec<(Cid, &[u8])> = events
            .iter()
            .map(|b| (Cid::of(b.as_ref()), b.as_ref()))
            .collect();
        // Every signature is checked, in batches; the loop meets the first invalid
        // event (if any) after the events before it, as if checking one by one.
        let (checked, invalid) = check_hashed_events(&hashed);
        let mut ready = Vec::new();
        for (&(cid, bytes), event) in hashed.iter().zip(checked) {
            let held = &self.held[&program];
            let known = held.replay.has_applied(&cid) || self.early.contains_key(&cid);
            // Gossip carries only its publisher's own events, held or not: an old
            // event published again by another peer is a replay. (A held event is
            // only decoded: its signature was checked when it came in.)
            if known {
                let replayed = author.is_some_and(|author| {
                    Event::decode(bytes).is_ok_and(|e| e.creator() != author)
                });
                if replayed {
                    return self.refuse(outcome, replayed_event(cid));
                }
                outcome.duplicates += 1;
                continue;
            }
            if author.is_some_and(|author| event.creator() != author) {
                return self.refuse(outcome, replayed_event(cid));
            }
            if let Some(refusal) = self.place_taken(program, cid, &event) {
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
                    deps: unmet,
                    since: Instant::now(),
                },
            );
        }
        if let Some(v) = invalid {
            return self.refuse(outcome, v.into());
        }
        if let Err(refusal) = self.apply_ready(program, ready, &mut outcome, Written::Received) {
            return self.refuse(outcome, refusal);
        }
        outcome.waiting = self.early.len();
        outcome
    }

    /// Takes events this node signed, in order (their signatures are not checked
    /// again; everything else is: they go through the replay like any other).
    pub fn offer_own(
        &mut self,
        program: Cid,
        blocks: &[&[u8]],
        events: &[(Cid, &[u8])],
    ) -> Outcome {
        let outcome = Outcome::default();
        if let Err(refusal) = self.hold(program) {
            return self.refuse(outcome, refusal);
        }
        let blocks: Vec<(Cid, &[u8])> = blocks.iter().map(|b| (Cid::of(b), *b)).collect();
        if let Err(refusal) = self.put_blocks(&blocks) {
            return self.refuse(outcome, refusal);
        }
        let mut ready = Vec::with_capacity(events.len());
        for (cid, bytes) in events {
            match decode_hashed_event(*cid, bytes) {
                Ok(event) => ready.push((*cid, event, bytes.to_vec())),
                Err(v) => return self.refuse(outcome, v.into()),
            }
        }
        let mut outcome = outcome;
        if let Err(refusal) = self.apply_ready(program, ready, &mut outcome, Written::Own) {
            return self.refuse(outcome, refusal);
        }
        outcome
    }

    /// Takes every event of a synced program at once (any order; no buffer bound):
    /// they are checked, ordered and applied like gossiped ones.
    pub fn offer_synced(&mut self, program: Cid, events: &[impl AsRef<[u8]>]) -> Outcome {
        let mut outcome = Outcome::default();
        if let Err(refusal) = self.hold(program) {
            return self.refuse(outcome, refusal);
        }
        let mut fresh: Vec<(Cid, &[u8])> = Vec::with_capacity(events.len());
        let mut seen = HashSet::new();
        for bytes in events {
            let bytes = bytes.as_ref();
            let cid = Cid::of(bytes);
            if self.held[&program].replay.has_applied(&cid) || !seen.insert(cid) {
                outcome.duplicates += 1;
                continue;
            }
            fresh.push((cid, bytes));
        }
        let (checked, invalid) = check_hashed_events(&fresh);
        if let Some(v) = invalid {
            return self.refuse(outcome, v.into());
        }
        let bytes_of: HashMap<Cid, &[u8]> = fresh.iter().copied().collect();
        let mut decoded: BTreeMap<Cid, Event> = fresh.iter().map(|f| f.0).zip(checked).collect();
        let order = stable_order(&decoded);
        let ready = order
            .into_iter()
            .map(|cid| {
                let event = decoded.remove(&cid).expect("ordered from the map");
                (cid, event, bytes_of[&cid].to_vec())
            })
            .collect();
        if let Err(refusal) = self.apply_ready(program, ready, &mut outcome, Written::Received) {
            return self.refuse(outcome, refusal);
        }
        outcome
    }

    /// Stores the blocks an offer brings (one commit, none when there are none):
    /// before its events are applied, which may need them (slice manifests).
    fn put_blocks(&self, blocks: &[(Cid, &[u8])]) -> Result<(), Refusal> {
        if blocks.is_empty() {
            return Ok(());
        }
        self.store
            .put_blocks(blocks.iter().copied())
            .map_err(store_refusal)
    }

    /// Applies events whose predecessors are applied, then the early events they
    /// release, and stores what was applied in one transaction (`whose`: whether
    /// `ready` holds this node's own events, committed durably).
    fn apply_ready(
        &mut self,
        program: Cid,
        mut ready: Vec<(Cid, Event, Vec<u8>)>,
        outcome: &mut Outcome,
        whose: Written,
    ) -> Result<(), Refusal> {
        ready.reverse();
        let mut applied: Vec<(Cid, Event, Vec<u8>)> = Vec::new();
        let mut failure = None;
        while let Some((cid, event, bytes)) = ready.pop() {
            let held = self.held.get_mut(&program).expect("held");
            if held.replay.has_applied(&cid) {
                continue;
            }
            if let Some(refusal) = self.place_taken(program, cid, &event) {
                failure = Some(refusal);
                break;
            }
            let held = self.held.get_mut(&program).expect("held");
            if held.panics {
                panic!("the fault layer's panic_name: checking event {cid} of /amb/{program}");
            }
            if let Err(v) = held.replay.apply(cid, &event, &self.source) {
                failure = Some(v.into());
                break;
            }
            held.note_applied(cid, &event);
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
            write_checked(&self.store, program, &[], &applied, false, whose)
                .map_err(store_refusal)?;
            for (cid, event, _) in applied {
                outcome.stored.push(cid);
                outcome.stored_events.push(event);
            }
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

    /// Whether the event's log is frozen, or its place taken by another event (a
    /// fork, when the creator may write the log: a stranger's event is refused by
    /// the `key` rule and freezes nothing).
    fn place_taken(&mut self, program: Cid, cid: Cid, event: &Event) -> Option<Refusal> {
        let held = &self.held[&program];
        if self.frozen.contains(&event.log()) {
            let detail = format!("log {} is frozen by a fork", event.log());
            return Some(Refusal::new(RULE_FROZEN, Some(cid), detail));
        }
        let &existing = held.places.get(&(event.log(), event.seq()))?;
        let allowed = self
            .source
            .manifest(&event.log())
            .is_some_and(|m| m.allows(event.creator()));
        if !allowed {
            let detail = "the creator is not listed in the log's manifest";
            return Some(Refusal::new(Rule::Key, Some(cid), detail));
        }
        Some(self.fork(existing, cid, event))
    }

    /// A fork: freezes the log and names both events.
    fn fork(&mut self, existing: Cid, new: Cid, event: &Event) -> Refusal {
        self.frozen.insert(event.log());
        Refusal::new(
            Rule::Fork,
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
                let early = self.early.remove(&cid).expect("present");
                // Nothing waits for its parents on its behalf any more.
                for dep in early.deps {
                    if let Some(waiting) = self.waiters.get_mut(&dep) {
                        waiting.retain(|w| *w != cid);
                        if waiting.is_empty() {
                            self.waiters.remove(&dep);
                        }
                    }
                }
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
    fn note_applied(&mut self, cid: Cid, event: &Event) {
        self.places.insert((event.log(), event.seq()), cid);
        if event.log() == self.root_log && event.payload().is_some() {
            self.complete = true;
        }
    }
}

/// An event gossiped by a peer that is not its creator.
fn replayed_event(cid: Cid) -> Refusal {
    Refusal::new(
        RULE_AUTHOR,
        Some(cid),
        "gossiped by a peer that is not its creator (a replayed event)",
    )
}

/// Whose events a write holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// Some are this node's own: committed durably before anything is published.
    Own,
    /// Only other writers' (received, checked): committed without waiting for
    /// `fsync` ([`Store::write_received`]); a crash may lose them, and they are
    /// fetched again.
    Received,
}

/// Stores checked events (decoded, with their bytes) of `program` in one
/// transaction, with `blocks`; `part`: a host's part of a program, whose refs may
/// leave it ([`Store::write_part`]).
pub(crate) fn write_checked(
    store: &Store,
    program: Cid,
    blocks: &[(Cid, &[u8])],
    events: &[(Cid, Event, Vec<u8>)],
    part: bool,
    whose: Written,
) -> Result<(), StoreError> {
    let refs: Vec<Vec<Cid>> = events.iter().map(|(_, e, _)| e.refs().to_vec()).collect();
    let batch: Vec<NewEvent<'_>> = events
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
    match (whose, part) {
        (Written::Received, part) => store.write_received(program, blocks, &batch, part),
        (Written::Own, true) => store.write_part(program, blocks, &batch),
        (Written::Own, false) => store.write(program, blocks, &batch),
    }
    .map(|_| ())
}

fn store_refusal(e: StoreError) -> Refusal {
    Refusal::new(RULE_STORE, None, e.to_string())
}

#[cfg(test)]
mod tests {
    use amb_bytecode::BlockLimits;
    use amb_engine::Limits;
    use amb_log::{SigningKey, UnsignedEvent};

    use super::*;

    /// A program recorded in one store, and a second store holding only the program
    /// (its blocks and manifest), with an intake on it.
    struct Fixture {
        key: SigningKey,
        program: Cid,
        /// Every event's bytes, in plan (causal) order.
        events: Vec<Vec<u8>>,
        ingest: Ingest,
        _dirs: (tempfile::TempDir, tempfile::TempDir),
    }

    fn fixture(limits: IngestLimits) -> Fixture {
        let source = "a[in b.open_] | b[in_ a.open a.open_] | open b | c[d[]]";
        let ast = amb_syntax::parse(source).unwrap();
        let (compiled, map) =
            amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
        let plan = amb_vm::plan::plan(&ast, &compiled, &map, Limits::default()).unwrap();
        let key = SigningKey::from_seed(&[4; 32]);
        let manifest = Manifest::new_root(
            compiled.root,
            None,
            vec![key.public_key()],
            &key,
            [5; 16],
            1,
        );
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = Store::create(dir_a.path().join("a.redb")).unwrap();
        let recorded = amb_vm::record::record(&plan, &compiled, &manifest, &key, &a).unwrap();
        let events = recorded
            .event_cids
            .iter()
            .map(|c| a.get_event(*c).unwrap().unwrap().bytes)
            .collect();
        let b = Arc::new(Store::create(dir_b.path().join("b.redb")).unwrap());
        amb_vm::record::store_program(&compiled, &manifest, &b).unwrap();
        // The slice manifests travel with the events (as gossip batches carry them).
        for log in &recorded.log_cids[1..] {
            b.put_block(*log, &a.get_block(*log).unwrap().unwrap())
                .unwrap();
        }
        Fixture {
            key,
            program: manifest.cid(),
            events,
            ingest: Ingest::new(b, limits),
            _dirs: (dir_a, dir_b),
        }
    }

    const NO_BLOCKS: &[&[u8]] = &[];

    /// Offers every event of the fixture's run, then another event that the same
    /// writer signs at a taken place of the root log: the event it forks, the
    /// forged one, and the refusal of the forged one.
    fn fork_the_root_log(f: &mut Fixture) -> (Event, Event, Refusal) {
        let author = f.key.public_key();
        let outcome = f
            .ingest
            .offer(f.program, NO_BLOCKS, &f.events, Some(&author));
        assert_eq!(outcome.refused, None);
        let last = Event::decode(&f.events[1]).unwrap();
        let forged = Event::sign(
            UnsignedEvent {
                payload: Some(Cid::of(b"another value")),
                ..last.body().clone()
            },
            &f.key,
        );
        let outcome = f
            .ingest
            .offer(f.program, NO_BLOCKS, &[forged.encode()], Some(&author));
        (last, forged, outcome.refused.expect("the fork is refused"))
    }

    /// Offers a new event of `last`'s log, well placed after its head: the refusal.
    fn offer_after(f: &mut Fixture, last: &Event) -> Refusal {
        let next = Event::sign(
            UnsignedEvent {
                seq: 1_000,
                ..last.body().clone()
            },
            &f.key,
        );
        let author = f.key.public_key();
        let outcome = f
            .ingest
            .offer(f.program, NO_BLOCKS, &[next.encode()], Some(&author));
        outcome.refused.expect("the event is refused")
    }

    #[test]
    fn early_events_wait_for_their_parents_then_everything_verifies() {
        let mut f = fixture(IngestLimits::default());
        let author = f.key.public_key();
        let mut reversed = f.events.clone();
        reversed.reverse();
        let outcome = f
            .ingest
            .offer(f.program, NO_BLOCKS, &reversed[..3], Some(&author));
        assert_eq!(outcome.refused, None);
        assert!(outcome.stored.is_empty());
        assert_eq!(outcome.waiting, 3);
        let outcome = f
            .ingest
            .offer(f.program, NO_BLOCKS, &f.events, Some(&author));
        assert_eq!(outcome.refused, None);
        assert_eq!(outcome.stored.len(), f.events.len());
        assert_eq!(outcome.duplicates, 3);
        assert_eq!(f.ingest.waiting(), 0);
        assert!(f.ingest.is_complete(&f.program));
        let verified = amb_vm::verify::verify(f.ingest.store(), f.program).unwrap();
        assert_eq!(verified.events, f.events.len() as u64);
        // Offered again: no-ops.
        let again = f
            .ingest
            .offer(f.program, NO_BLOCKS, &f.events, Some(&author));
        assert_eq!((again.stored.len(), again.duplicates), (0, f.events.len()));
    }

    #[test]
    fn the_early_buffer_is_bounded_and_its_overflow_blames_nobody() {
        let mut f = fixture(IngestLimits {
            max_waiting: 2,
            max_wait: Duration::from_secs(60),
            ..IngestLimits::default()
        });
        let author = f.key.public_key();
        let late: Vec<Vec<u8>> = f.events.iter().rev().take(3).cloned().collect();
        let outcome = f.ingest.offer(f.program, NO_BLOCKS, &late, Some(&author));
        let refusal = outcome.refused.expect("the third early event is refused");
        assert_eq!(refusal.rule, RULE_BUFFER_FULL);
        assert!(!refusal.blames_sender());
        assert_eq!(f.ingest.waiting(), 2);
    }

    #[test]
    fn idle_programs_are_dropped_and_rebuilt_on_use_with_their_frozen_logs() {
        let mut f = fixture(IngestLimits {
            held_idle: Duration::from_millis(1),
            ..IngestLimits::default()
        });
        let author = f.key.public_key();
        let (last, _, refusal) = fork_the_root_log(&mut f);
        assert_eq!(refusal.rule, "fork");
        std::thread::sleep(Duration::from_millis(5));
        // A program a walk writes is kept; an idle one is dropped.
        f.ingest.evict(|p| *p == f.program);
        assert!(f.ingest.holds(&f.program));
        f.ingest.evict(|_| false);
        assert!(!f.ingest.holds(&f.program));
        assert_eq!(f.ingest.held_count(), 0);
        // Rebuilt from the store on its next use, exactly as it was.
        f.ingest.hold(f.program).unwrap();
        assert!(f.ingest.is_complete(&f.program));
        assert_eq!(f.ingest.applied(&f.program), Some(f.events.len()));
        assert_eq!(offer_after(&mut f, &last).rule, RULE_FROZEN);
        let again = f
            .ingest
            .offer(f.program, NO_BLOCKS, &f.events, Some(&author));
        assert_eq!((again.stored.len(), again.duplicates), (0, f.events.len()));
    }

    #[test]
    fn past_the_bound_the_least_recently_used_program_is_dropped() {
        let mut f = fixture(IngestLimits {
            max_held: 1,
            ..IngestLimits::default()
        });
        f.ingest.hold(f.program).unwrap();
        f.ingest.evict(|_| false);
        assert!(
            f.ingest.holds(&f.program),
            "one program is within the bound"
        );
        // A second program, stored in the same store.
        let other = f.ingest.store().clone();
        let ast = amb_syntax::parse("x[]").unwrap();
        let compiled = amb_bytecode::compile(&ast).unwrap();
        let manifest = Manifest::new_root(
            compiled.root,
            None,
            vec![f.key.public_key()],
            &f.key,
            [6; 16],
            2,
        );
        amb_vm::record::store_program(&compiled, &manifest, &other).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        f.ingest.hold(manifest.cid()).unwrap();
        f.ingest.evict(|_| false);
        assert!(!f.ingest.holds(&f.program), "the older one is dropped");
        assert!(f.ingest.holds(&manifest.cid()));
        assert_eq!(f.ingest.held_count(), 1);
    }

    #[test]
    fn gossip_from_another_peer_than_the_creator_is_refused() {
        let mut f = fixture(IngestLimits::default());
        let other = SigningKey::from_seed(&[6; 32]).public_key();
        let outcome = f
            .ingest
            .offer(f.program, NO_BLOCKS, &f.events[..1], Some(&other));
        let refusal = outcome.refused.unwrap();
        assert_eq!(refusal.rule, RULE_AUTHOR);
        assert!(refusal.blames_sender());
        assert_eq!(f.ingest.refused()[&RULE_AUTHOR], 1);
    }

    #[test]
    fn a_fork_is_refused_with_both_events_and_freezes_the_log() {
        let mut f = fixture(IngestLimits::default());
        let (last, forged, refusal) = fork_the_root_log(&mut f);
        assert_eq!(refusal.rule, "fork");
        assert!(
            refusal.detail.contains(&last.cid().to_string()),
            "{refusal}"
        );
        assert!(
            refusal.detail.contains(&forged.cid().to_string()),
            "{refusal}"
        );
        // The log is frozen: even a new, well-placed event of it is refused.
        assert_eq!(offer_after(&mut f, &last).rule, RULE_FROZEN);
        // Nothing already stored was lost.
        assert_eq!(
            f.ingest.store().event_count().unwrap(),
            f.events.len() as u64
        );
    }
}
