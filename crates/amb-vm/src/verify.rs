//! Verifying a stored program: every event of every log, checked for encoding, CID,
//! signature and key; every ref checked to name a stored event; then replayed in a
//! stable topological order through the state machine, which checks the rules that
//! need the replayed state and says whether the run is complete
//! ([`crate::completeness`]).
//!
//! [`verify`] and [`verify_events`] accept only a complete run (an incomplete one is
//! [`VerifyError::Incomplete`]); [`verify_prefix_with_progress`] and
//! [`verify_events_prefix`] also accept a prefix that an interrupted run left, and say
//! where it stops.

use std::{
    cell::RefCell,
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap, HashSet},
    sync::Arc,
};

use amb_bytecode::{Block, Cid, Opcode};
use amb_log::{AnyEvent, BatchVerifier, Event, Kind, Manifest, ReadEvent, Snapshot, Store};
use amb_syntax::Ast;

use crate::{
    completeness::{Completeness, Placed, Stop, check_refs},
    replay::{Replay, Source, Violation},
};

/// A verified program.
#[derive(Debug)]
pub struct Verified {
    /// Events checked.
    pub events: u64,
    /// Logs checked.
    pub logs: usize,
    /// Steps replayed.
    pub steps: u64,
    /// The replayed final term (canonical).
    pub term: Ast,
    /// The events in the order they were replayed.
    pub order: Vec<Cid>,
    /// Whether the run is over, or where it stops.
    pub completeness: Completeness,
    /// The effect events replayed, in replay order, with how each result was
    /// accepted (`spec/system.md` §7): none was performed again.
    pub effects: Vec<crate::replay::ReplayedEffect>,
    /// Effects this process performed while verifying (by
    /// [`crate::system::effects_performed`]): 0, as a verifier performs none.
    pub effects_performed: u64,
}

impl Verified {
    /// The verified run if it is complete; else [`VerifyError::Incomplete`].
    pub fn require_complete(self) -> Result<Verified, VerifyError> {
        match self.completeness {
            Completeness::Complete => Ok(self),
            Completeness::Incomplete(stop) => Err(VerifyError::Incomplete(stop)),
        }
    }
}

/// Why a program could not be verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// An event breaks a rule.
    #[error(transparent)]
    Violation(#[from] Violation),
    /// The program manifest is missing or invalid.
    #[error("program {0}: {1}")]
    Program(Cid, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] amb_log::StoreError),
    /// Every rule holds, but the run is a prefix (an interrupted run): it has not
    /// reached its normal form.
    #[error("the run is incomplete: it {0} (an interrupted run: `amb run --resume` finishes it)")]
    Incomplete(Stop),
}

impl VerifyError {
    /// The rule of `spec/events.md` §7 an event breaks, if that is the error.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            VerifyError::Violation(v) => Some(v.rule),
            _ => None,
        }
    }

    /// Whether more events could make the run verify: it is incomplete, or an event
    /// or a log that the stored ones prove must exist is missing, as a node still
    /// receiving a run sees until it has synced it whole.
    pub fn wants_more_events(&self) -> bool {
        use crate::completeness::{MISSING_EVENT, MISSING_LOG};
        matches!(self, VerifyError::Incomplete(_))
            || matches!(self.rule(), Some(MISSING_LOG | MISSING_EVENT))
    }

    /// The event the error names: the one that breaks a rule, or the last one an
    /// incomplete run replayed.
    pub fn event(&self) -> Option<Cid> {
        match self {
            VerifyError::Violation(v) => Some(v.event),
            VerifyError::Incomplete(stop) => Some(stop.event),
            _ => None,
        }
    }
}

/// Blocks and manifests read from a store.
#[derive(Debug)]
pub struct StoreSource<'a> {
    /// The store.
    pub store: &'a Store,
}

impl Source for StoreSource<'_> {
    fn block(&self, cid: &Cid) -> Option<Arc<Block>> {
        let bytes = self.store.get_block(*cid).ok()??;
        (Cid::of(&bytes) == *cid).then_some(())?;
        Block::decode(&bytes).ok().map(Arc::new)
    }

    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        let bytes = self.store.get_block(*cid).ok()??;
        let manifest = Manifest::decode(&bytes).ok()?;
        let signed = manifest.kind() != Kind::Program || manifest.verify_signature().is_ok();
        (Cid::of(&bytes) == *cid && signed).then(|| Arc::new(manifest))
    }
}

/// Blocks and manifests read from a store snapshot (one read transaction for them all).
#[derive(Clone, Debug)]
pub struct SnapshotSource {
    /// The snapshot.
    pub snapshot: Snapshot,
}

impl Source for SnapshotSource {
    fn block(&self, cid: &Cid) -> Option<Arc<Block>> {
        let bytes = self.snapshot.get_block(*cid).ok()??;
        (Cid::of(&bytes) == *cid).then_some(())?;
        Block::decode(&bytes).ok().map(Arc::new)
    }

    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        // A slice manifest comes decoded, its CID checked; a program manifest's
        // signature is checked.
        let manifest = self.snapshot.get_manifest(*cid).ok()??;
        let valid = manifest.cid() == *cid
            && (manifest.kind() != Kind::Program || manifest.verify_signature().is_ok());
        valid.then(|| Arc::new(manifest))
    }
}

/// A source that keeps what it has read: replaying a program reads each block and
/// manifest many times.
#[derive(Debug)]
pub struct CachedSource<S> {
    inner: S,
    blocks: RefCell<HashMap<Cid, Option<Arc<Block>>>>,
    manifests: RefCell<HashMap<Cid, Option<Arc<Manifest>>>>,
}

impl<S: Source> CachedSource<S> {
    /// Caches `inner`.
    pub fn new(inner: S) -> CachedSource<S> {
        CachedSource {
            inner,
            blocks: RefCell::default(),
            manifests: RefCell::default(),
        }
    }
}

impl<S: Source> Source for CachedSource<S> {
    fn block(&self, cid: &Cid) -> Option<Arc<Block>> {
        self.blocks
            .borrow_mut()
            .entry(*cid)
            .or_insert_with(|| self.inner.block(cid))
            .clone()
    }

    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        self.manifests
            .borrow_mut()
            .entry(*cid)
            .or_insert_with(|| self.inner.manifest(cid))
            .clone()
    }
}

/// Reports the progress of a long task (a progress bar on a terminal; `()` reports
/// nothing).
pub trait Progress {
    /// A phase begins, with `total` units of work.
    fn start(&self, phase: &str, total: u64);
    /// `units` more are done.
    fn advance(&self, units: u64);
    /// The phase is over.
    fn finish(&self);
}

impl Progress for () {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Checks one event's bytes: canonical CBOR, CID, signature.
pub fn check_event(cid: Cid, bytes: &[u8]) -> Result<Event, Violation> {
    check_cid(cid, bytes)?;
    check_hashed_event(cid, bytes)
}

/// [`check_event`] for bytes whose CID the caller has just computed from them (no
/// second hash): canonical CBOR and signature.
pub fn check_hashed_event(cid: Cid, bytes: &[u8]) -> Result<Event, Violation> {
    let event = decode_hashed_event(cid, bytes)?;
    event
        .verify_signature()
        .map_err(|e| signature_violation(cid, e))?;
    Ok(event)
}

/// [`check_hashed_event`] of many events, their signatures checked in batches: the
/// events that pass, in order, up to the first that does not, and what that one
/// breaks. The answer is the one of checking each in turn.
pub fn check_hashed_events(events: &[(Cid, &[u8])]) -> (Vec<Event>, Option<Violation>) {
    let mut checked = Vec::with_capacity(events.len());
    for chunk in events.chunks(SIGNATURE_BATCH) {
        let mut batch = BatchVerifier::new();
        let mut decoded = Vec::with_capacity(chunk.len());
        let mut refused = None;
        for &(cid, bytes) in chunk {
            match decode_hashed_event(cid, bytes) {
                Ok(event) => {
                    event.queue_signature(&mut batch);
                    decoded.push(event);
                }
                Err(violation) => {
                    refused = Some(violation);
                    break;
                }
            }
        }
        if batch.verify().is_err() {
            // Name the first invalid signature: the events before it pass.
            for (event, &(cid, _)) in decoded.into_iter().zip(chunk) {
                if let Err(e) = event.verify_signature() {
                    return (checked, Some(signature_violation(cid, e)));
                }
                checked.push(event);
            }
        } else {
            checked.extend(decoded);
        }
        if refused.is_some() {
            return (checked, refused);
        }
    }
    (checked, None)
}

/// The violation of an event whose signature is refused.
fn signature_violation(cid: Cid, error: amb_log::EventError) -> Violation {
    Violation {
        event: cid,
        rule: error.rule(),
        detail: error.to_string(),
    }
}

/// Checks one event's bytes for their CID and canonical CBOR, not the signature (for
/// events read back from the store, whose signatures were checked when they entered).
pub fn decode_event(cid: Cid, bytes: &[u8]) -> Result<Event, Violation> {
    check_cid(cid, bytes)?;
    decode_hashed_event(cid, bytes)
}

/// [`decode_event`] of an event of either kind ([`AnyEvent`]): an effect event
/// (`spec/system.md` §6) or an ordinary one.
pub fn decode_any_event(cid: Cid, bytes: &[u8]) -> Result<AnyEvent, Violation> {
    check_cid(cid, bytes)?;
    AnyEvent::decode(bytes).map_err(|e| Violation {
        event: cid,
        rule: e.rule(),
        detail: e.to_string(),
    })
}

/// [`decode_event`] for bytes whose CID the caller has just computed from them.
pub fn decode_hashed_event(cid: Cid, bytes: &[u8]) -> Result<Event, Violation> {
    Event::decode(bytes).map_err(|e| Violation {
        event: cid,
        rule: e.rule(),
        detail: e.to_string(),
    })
}

/// Whether `bytes` hash to `cid` (rule `cid`).
fn check_cid(cid: Cid, bytes: &[u8]) -> Result<(), Violation> {
    let actual = Cid::of(bytes);
    if actual == cid {
        return Ok(());
    }
    Err(Violation {
        event: cid,
        rule: "cid",
        detail: format!("the bytes hash to {actual}"),
    })
}

/// The stable topological order of a program's events (`spec/events.md` §7): Kahn's
/// algorithm, taking among the events whose refs are all placed first those that are
/// not the second half of a step, then second halves, each by binary CID. So every
/// step's consequences (the bodies it releases, the first halves it enables) come
/// before the next step, and the state after step K is a prefix of the order. Events
/// whose refs are not in the set come last, in CID order, so that replay reports them.
pub fn stable_order<E: Placed>(events: &BTreeMap<Cid, E>) -> Vec<Cid> {
    let cids: Vec<Cid> = events.keys().copied().collect();
    let values: Vec<&E> = events.values().collect();
    stable_order_indices(&cids, |i| values[i])
        .into_iter()
        .map(|i| cids[i as usize])
        .collect()
}

/// [`stable_order`] of the events `event(i)` whose CIDs are `cids[i]`, strictly
/// increasing: the order as indices.
fn stable_order_indices<'e, E: Placed + 'e>(
    cids: &[Cid],
    event: impl Fn(usize) -> &'e E,
) -> Vec<u32> {
    // Refs as indices.
    let index: HashMap<Cid, u32> = cids
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, i as u32))
        .collect();
    let second: Vec<bool> = (0..cids.len()).map(|i| event(i).is_second_half()).collect();
    // An announcing deploy also comes after the event before it in its log, which it
    // need not refer to (`spec/events.md` §4); every other event refers to it.
    let places: HashMap<(Cid, u64), u32> = (0..cids.len())
        .map(|i| ((event(i).log(), event(i).seq()), i as u32))
        .collect();
    let mut waiting = vec![0u32; cids.len()];
    let mut after_previous: Vec<Option<u32>> = vec![None; cids.len()];
    let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); cids.len()];
    let mut next_in_log: Vec<Option<u32>> = vec![None; cids.len()];
    // Min-heap of (is a second half, index): index order is CID order.
    let mut ready = BinaryHeap::new();
    // Events whose refs are placed but whose log predecessor is not.
    let mut held = Vec::new();
    for i in 0..cids.len() {
        let e = event(i);
        for r in e.refs() {
            if let Some(&from) = index.get(r) {
                waiting[i] += 1;
                dependents[from as usize].push(i as u32);
            }
        }
        let announcing = e.is_announcement();
        let previous = e
            .seq()
            .checked_sub(1)
            .filter(|_| announcing)
            .and_then(|seq| places.get(&(e.log(), seq)).copied());
        if let Some(previous) = previous {
            after_previous[i] = Some(previous);
            next_in_log[previous as usize] = Some(i as u32);
        }
        if waiting[i] == 0 {
            if previous.is_some() {
                held.push(i as u32);
            } else {
                ready.push(Reverse((second[i], i as u32)));
            }
        }
    }
    let mut order = Vec::with_capacity(cids.len());
    let mut placed = vec![false; cids.len()];
    loop {
        let i = match ready.pop() {
            Some(Reverse((_, i))) => i,
            // Stuck: the seqs contradict the refs (a cycle through a log's order).
            // Place a held event anyway; replay then finds its seq out of place.
            None => match held.pop() {
                Some(i) if placed[i as usize] => continue,
                Some(i) => i,
                None => break,
            },
        };
        if placed[i as usize] {
            continue;
        }
        order.push(i);
        placed[i as usize] = true;
        for &d in &dependents[i as usize] {
            waiting[d as usize] -= 1;
            if waiting[d as usize] == 0 {
                match after_previous[d as usize] {
                    Some(p) if !placed[p as usize] => held.push(d),
                    _ => ready.push(Reverse((second[d as usize], d))),
                }
            }
        }
        if let Some(d) = next_in_log[i as usize] {
            if waiting[d as usize] == 0 && !placed[d as usize] {
                ready.push(Reverse((second[d as usize], d)));
            }
        }
    }
    if order.len() < cids.len() {
        // A cycle of refs: such events cannot have been signed in any order; they
        // come last, and their refs do not resolve.
        order.extend((0..cids.len() as u32).filter(|&i| !placed[i as usize]));
    }
    order
}

/// Whether an operation is the second half of a step (the one that applies it:
/// [`Opcode::completes_step`]).
pub fn is_second_half(op: Opcode) -> bool {
    op.completes_step()
}

/// Verifies every event of the program whose manifest is `program`, which must be
/// complete.
pub fn verify(store: &Store, program: Cid) -> Result<Verified, VerifyError> {
    verify_with_progress(store, program, &())
}

/// [`verify`], reporting progress.
pub fn verify_with_progress(
    store: &Store,
    program: Cid,
    progress: &dyn Progress,
) -> Result<Verified, VerifyError> {
    verify_prefix_with_progress(store, program, progress)?.require_complete()
}

/// [`verify_with_progress`] of a run that may be a prefix (an interrupted run): it is
/// accepted when every rule holds, and [`Verified::completeness`] says where it stops.
pub fn verify_prefix_with_progress(
    store: &Store,
    program: Cid,
    progress: &dyn Progress,
) -> Result<Verified, VerifyError> {
    let snapshot = store.snapshot()?;
    let source = CachedSource::new(SnapshotSource {
        snapshot: snapshot.clone(),
    });
    let manifest = program_manifest(&source, program)?;
    let mut checked = Checked::default();
    for_each_read_event(&snapshot, program, progress, |read| {
        let cid = read.stored.cid;
        // The store gives back what decoded when it was written with its fields (its
        // bytes rebuilt and checked against its CID); other bytes as they are.
        let event = match read.event {
            Some(event) => AnyEvent::Op(event),
            None => decode_any_event(cid, &read.stored.bytes)?,
        };
        checked.add(cid, event)
    })?;
    checked.replay(&source, program, manifest, progress)
}

/// Reads every stored event of a program from `snapshot`, in the order they were
/// written (each segment of the store read once), reporting progress by event.
fn for_each_read_event(
    snapshot: &Snapshot,
    program: Cid,
    progress: &dyn Progress,
    mut each: impl FnMut(ReadEvent) -> Result<(), VerifyError>,
) -> Result<(), VerifyError> {
    let events = snapshot.program_events(program)?;
    progress.start("reading", events.remaining() as u64);
    for (index, read) in events.enumerate() {
        each(read?)?;
        if index % 4096 == 4095 {
            progress.advance(4096);
        }
    }
    progress.finish();
    Ok(())
}

/// Reads every stored event of a program (its CID and bytes), in the order they were
/// written, reporting progress.
pub fn for_each_stored_event(
    store: &Store,
    program: Cid,
    progress: &dyn Progress,
    mut each: impl FnMut(Cid, Vec<u8>) -> Result<(), VerifyError>,
) -> Result<(), VerifyError> {
    for_each_read_event(&store.snapshot()?, program, progress, |read| {
        each(read.stored.cid, read.stored.bytes)
    })
}

/// [`for_each_stored_event`], each event (of either kind) decoded and checked against
/// its CID (not its signature): as the store holds it, or from its bytes
/// ([`decode_any_event`]).
pub fn for_each_decoded_event(
    store: &Store,
    program: Cid,
    progress: &dyn Progress,
    mut each: impl FnMut(Cid, AnyEvent) -> Result<(), VerifyError>,
) -> Result<(), VerifyError> {
    for_each_read_event(&store.snapshot()?, program, progress, |read| {
        let cid = read.stored.cid;
        let event = match read.event {
            Some(event) => AnyEvent::Op(event),
            None => decode_any_event(cid, &read.stored.bytes)?,
        };
        each(cid, event)
    })
}

/// Verifies a set of events of one program, whatever their origin (a store, the
/// network, a test): each event's bytes, forks, then the replay of all of them. The
/// run must be complete.
pub fn verify_events(
    source: &dyn Source,
    program: Cid,
    raw: &[(Cid, Vec<u8>)],
) -> Result<Verified, VerifyError> {
    verify_events_with_progress(source, program, raw, &())
}

/// [`verify_events`], reporting progress.
pub fn verify_events_with_progress(
    source: &dyn Source,
    program: Cid,
    raw: &[(Cid, Vec<u8>)],
    progress: &dyn Progress,
) -> Result<Verified, VerifyError> {
    verify_events_prefix_with_progress(source, program, raw, progress)?.require_complete()
}

/// [`verify_events`] of a set that may be a prefix of the run (an interrupted run):
/// [`Verified::completeness`] says where it stops.
pub fn verify_events_prefix(
    source: &dyn Source,
    program: Cid,
    raw: &[(Cid, Vec<u8>)],
) -> Result<Verified, VerifyError> {
    verify_events_prefix_with_progress(source, program, raw, &())
}

/// [`verify_events_prefix`], reporting progress.
fn verify_events_prefix_with_progress(
    source: &dyn Source,
    program: Cid,
    raw: &[(Cid, Vec<u8>)],
    progress: &dyn Progress,
) -> Result<Verified, VerifyError> {
    let manifest = program_manifest(source, program)?;
    let mut checked = Checked::default();
    progress.start("checking", raw.len() as u64);
    for (index, (cid, bytes)) in raw.iter().enumerate() {
        if index % 4096 == 4095 {
            progress.advance(4096);
        }
        checked.add(*cid, decode_any_event(*cid, bytes)?)?;
    }
    progress.finish();
    checked.replay(source, program, manifest, progress)
}

/// The program manifest of `program`: stored, valid, a root.
pub(crate) fn program_manifest(
    source: &dyn Source,
    program: Cid,
) -> Result<Arc<Manifest>, VerifyError> {
    let manifest = source.manifest(&program).ok_or_else(|| {
        VerifyError::Program(program, "no valid program manifest is stored".into())
    })?;
    if manifest.kind() != Kind::Program {
        return Err(VerifyError::Program(
            program,
            "not a program address: the manifest is a log's (a root log or a slice), not a program's".into(),
        ));
    }
    Ok(manifest)
}

/// Signatures checked together: a [`BatchVerifier`] of at most this many (a single
/// writer's batch costs about a fifth of checking one by one; beyond a thousand the
/// gain flattens).
pub const SIGNATURE_BATCH: usize = 1024;

/// Events checked for encoding and CID, their signatures checked in batches, and
/// where each claims to be, for the fork rule.
#[derive(Default)]
struct Checked {
    events: Vec<(Cid, AnyEvent)>,
    places: HashMap<(Cid, u64), Cid>,
    /// Signatures queued and not checked yet, and the events (indices) they belong to.
    unchecked: BatchVerifier,
    unchecked_events: Vec<usize>,
}

impl Checked {
    /// Adds a decoded event and queues its signature; refuses a second event at a
    /// place that is taken (once both signatures are checked: a fork is proven by two
    /// signed events).
    fn add(&mut self, cid: Cid, event: AnyEvent) -> Result<(), VerifyError> {
        if let Some(other) = self.places.insert((event.log(), event.seq()), cid) {
            if other != cid {
                self.check_signatures()?;
                event
                    .verify_signature()
                    .map_err(|e| signature_violation(cid, e))?;
                let (a, b) = if other < cid {
                    (other, cid)
                } else {
                    (cid, other)
                };
                return Err(Violation {
                    event: b,
                    rule: "fork",
                    detail: format!(
                        "{a} and {b} are two signed events at position {} of log {}: proof of equivocation",
                        event.seq(),
                        event.log()
                    ),
                }
                .into());
            }
        }
        event.queue_signature(&mut self.unchecked);
        self.unchecked_events.push(self.events.len());
        self.events.push((cid, event));
        if self.unchecked.len() >= SIGNATURE_BATCH {
            self.check_signatures()?;
        }
        Ok(())
    }

    /// Checks the queued signatures; if the batch is refused, checks them one by one
    /// and reports the first invalid one.
    fn check_signatures(&mut self) -> Result<(), Violation> {
        let batch = std::mem::take(&mut self.unchecked);
        let events = std::mem::take(&mut self.unchecked_events);
        if batch.verify().is_ok() {
            return Ok(());
        }
        for index in events {
            let (cid, event) = &self.events[index];
            event
                .verify_signature()
                .map_err(|e| signature_violation(*cid, e))?;
        }
        Ok(())
    }

    /// Checks every ref, replays the events in the stable order with every rule, and
    /// makes the final checks.
    fn replay(
        mut self,
        source: &dyn Source,
        program: Cid,
        manifest: Arc<Manifest>,
        progress: &dyn Progress,
    ) -> Result<Verified, VerifyError> {
        let performed_before = crate::system::effects_performed();
        self.check_signatures()?;
        let checked = self.events;
        if checked.is_empty() {
            return Err(VerifyError::Program(
                program,
                "no events of this program are stored (an interrupted run: `amb run --resume`)"
                    .into(),
            ));
        }
        // The set of events in CID order (an event given twice counts once), by index
        // (events are large: they stay where they are).
        let mut by_cid: Vec<u32> = (0..checked.len() as u32).collect();
        by_cid.sort_unstable_by_key(|&i| checked[i as usize].0);
        by_cid.dedup_by_key(|i| checked[*i as usize].0);
        let cids: Vec<Cid> = by_cid.iter().map(|&i| checked[i as usize].0).collect();
        let event = |i: usize| &checked[by_cid[i] as usize].1;
        let logs: HashSet<Cid> = (0..cids.len()).map(|i| event(i).log()).collect();
        check_refs(&cids, event)?;
        let order = stable_order_indices(&cids, event);
        let mut replay = Replay::new(program, manifest);
        progress.start("replaying", order.len() as u64);
        for (index, &i) in order.iter().enumerate() {
            replay.apply_any(cids[i as usize], event(i as usize), source)?;
            if index % 4096 == 4095 {
                progress.advance(4096);
            }
        }
        progress.finish();
        let completeness = replay.finish(source)?;
        let mut term = replay.to_ast(source);
        term.canonicalize();
        Ok(Verified {
            events: cids.len() as u64,
            logs: logs.len(),
            steps: replay.steps(),
            term,
            order: order.into_iter().map(|i| cids[i as usize]).collect(),
            completeness,
            effects: replay.effects().to_vec(),
            effects_performed: crate::system::effects_performed().saturating_sub(performed_before),
        })
    }
}
