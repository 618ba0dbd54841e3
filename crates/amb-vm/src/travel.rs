//! Time travel: the ambient tree of a stored program after any step.
//!
//! A step is a capability event together with its co-capability event; it takes
//! effect with its second half (the co-capability of `in`/`out`, the `open` of an
//! `open_`). Events are replayed in the stable topological order of
//! [`crate::verify::stable_order`], which places every event that is not a second half
//! as soon as its refs are placed; step K is the K-th second half in that order, and
//! the state "after step K" has applied every event before the (K + 1)-th second half
//! (so the ambients the first K steps released have their bodies). Step 0 is the
//! deployed program before any step.
//!
//! A [`Timeline`] replays the program once, keeping a copy of the replay state every
//! `interval` steps (about [`SNAPSHOTS`] copies in all); seeking copies the nearest
//! earlier snapshot and replays at most `interval` steps from it. The copies share the
//! maps that grow with the history (see `journal.rs`), so each costs about the live
//! state of the program.

use std::collections::{BTreeMap, HashMap};

use amb_bytecode::{Cid, Opcode};
use amb_log::{AnyEvent, Store};
use amb_syntax::Ast;

use crate::{
    completeness::Placed,
    replay::{Replay, Source},
    verify::{
        CachedSource, Progress, SnapshotSource, VerifyError, for_each_decoded_event, stable_order,
    },
};

pub use crate::verify::is_second_half;

/// How many snapshots a timeline keeps, about (fewer for short programs).
pub const SNAPSHOTS: u64 = 800;

/// Where to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// After this many steps.
    Step(u64),
    /// After the step that holds this event (for a `create` or `deploy`: the step
    /// that released it).
    Event(Cid),
}

/// The state at a moment.
#[derive(Debug)]
pub struct Snapshot {
    /// The ambient tree, canonical.
    pub term: Ast,
    /// Steps applied.
    pub step: u64,
    /// Steps in the whole program.
    pub total_steps: u64,
}

/// Loads every event of a program, checking each one's CID and canonical encoding (not
/// its signature: time travel reads a store whose events were checked when they
/// entered it; `amb verify` checks everything again), in replay order.
pub fn load_events(
    store: &Store,
    program: Cid,
    progress: &dyn Progress,
) -> Result<(Vec<Cid>, BTreeMap<Cid, AnyEvent>), VerifyError> {
    let mut events = BTreeMap::new();
    for_each_decoded_event(store, program, progress, |cid, event| {
        events.insert(cid, event);
        Ok(())
    })?;
    if events.is_empty() {
        return Err(VerifyError::Program(
            program,
            "no events of this program are stored".into(),
        ));
    }
    Ok((stable_order(&events), events))
}

/// A stored program, replayed once, ready to show the state after any step.
pub struct Timeline<'a> {
    program: Cid,
    source: CachedSource<SnapshotSource>,
    /// The store the timeline reads (through `source`'s snapshot).
    store: std::marker::PhantomData<&'a Store>,
    /// The events in replay order (effect events among them).
    events: Vec<(Cid, AnyEvent)>,
    /// By step K (from 0): the position in `events` of its second half.
    seconds: Vec<usize>,
    /// By event: the step that holds it, and its position in `events`.
    step_of: HashMap<Cid, (u64, usize)>,
    /// Every `interval` steps from step 0: the replay state after that step.
    snapshots: Vec<Replay>,
    interval: u64,
}

impl std::fmt::Debug for Timeline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field("program", &self.program)
            .field("events", &self.events.len())
            .field("steps", &self.total_steps())
            .field("snapshots", &self.snapshots.len())
            .finish()
    }
}

impl<'a> Timeline<'a> {
    /// Loads, checks and replays a stored program, keeping about [`SNAPSHOTS`]
    /// snapshots.
    pub fn load(
        store: &'a Store,
        program: Cid,
        progress: &dyn Progress,
    ) -> Result<Timeline<'a>, VerifyError> {
        Timeline::load_with_interval(store, program, None, progress)
    }

    /// [`Timeline::load`] with a snapshot every `interval` steps (`None`: about
    /// [`SNAPSHOTS`] in all).
    pub fn load_with_interval(
        store: &'a Store,
        program: Cid,
        interval: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<Timeline<'a>, VerifyError> {
        Timeline::build(store, program, interval, progress)
    }

    /// [`Timeline::load`] that does not borrow the store: it reads a snapshot of it
    /// taken now, which it keeps (so a cache may hold it while the store goes on
    /// being written; it does not see later events).
    pub fn load_owned(
        store: &Store,
        program: Cid,
        progress: &dyn Progress,
    ) -> Result<Timeline<'static>, VerifyError> {
        Timeline::build(store, program, None, progress)
    }

    fn build(
        store: &Store,
        program: Cid,
        interval: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<Timeline<'a>, VerifyError> {
        let source = CachedSource::new(SnapshotSource {
            snapshot: store.snapshot()?,
        });
        let manifest = crate::verify::program_manifest(&source, program)?;
        let (order, mut by_cid) = load_events(store, program, progress)?;
        let events: Vec<(Cid, AnyEvent)> = order
            .iter()
            .map(|cid| (*cid, by_cid.remove(cid).expect("ordered events exist")))
            .collect();
        let seconds: Vec<usize> = events
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| e.is_second_half())
            .map(|(i, _)| i)
            .collect();
        let total = seconds.len() as u64;
        let interval = interval.unwrap_or(total / SNAPSHOTS).max(1);
        let mut replay = Replay::new(program, manifest);
        let mut snapshots = Vec::new();
        progress.start("replaying", events.len() as u64);
        for (i, (cid, event)) in events.iter().enumerate() {
            if event.is_second_half() && replay.steps() % interval == 0 {
                snapshots.push(replay.without_history());
            }
            replay.apply_any(*cid, event, &source)?;
            if i % 4096 == 4095 {
                progress.advance(4096);
            }
        }
        progress.finish();
        if replay.steps() % interval == 0 {
            snapshots.push(replay.without_history());
        }
        for snapshot in &mut snapshots {
            snapshot.share_history(&replay);
        }
        let step_of = steps_of(&events);
        Ok(Timeline {
            program,
            source,
            store: std::marker::PhantomData,
            events,
            seconds,
            step_of,
            snapshots,
            interval,
        })
    }

    /// Steps in the whole program.
    pub fn total_steps(&self) -> u64 {
        self.seconds.len() as u64
    }

    /// Snapshots kept.
    pub fn snapshots(&self) -> usize {
        self.snapshots.len()
    }

    /// The state at a moment (a step past the last is the last), rendered as a
    /// canonical term.
    pub fn seek(&self, moment: Moment) -> Result<Snapshot, VerifyError> {
        let replay = self.replay_at(moment)?;
        let mut term = replay.to_ast(&self.source);
        term.canonicalize();
        Ok(Snapshot {
            term,
            step: replay.steps(),
            total_steps: self.total_steps(),
        })
    }

    /// The replay state at a moment: a copy of the nearest snapshot before it, brought
    /// forward (at most `interval` steps).
    pub fn replay_at(&self, moment: Moment) -> Result<Replay, VerifyError> {
        let target = self.step_at(moment)?;
        let nearest = (target / self.interval) as usize;
        let mut replay = self.snapshots[nearest].clone();
        self.advance(&mut replay, target)?;
        Ok(replay)
    }

    /// Brings a replay state of this timeline (one [`Timeline::replay_at`] gave, or
    /// a copy of it) forward to the state after step `to` (no later than its own:
    /// nothing is undone). Seeking step K and then K + 1 this way applies only the
    /// events of one step.
    pub fn advance(&self, replay: &mut Replay, to: u64) -> Result<(), VerifyError> {
        let from = self.position_after(replay.steps());
        let to = self.position_after(to.min(self.total_steps())).max(from);
        for (cid, event) in &self.events[from..to] {
            replay.apply_any(*cid, event, &self.source)?;
        }
        Ok(())
    }

    /// The source of blocks and manifests the timeline reads (to render a state).
    pub fn source(&self) -> &dyn Source {
        &self.source
    }

    /// The program.
    pub fn program(&self) -> Cid {
        self.program
    }

    /// Every event, in replay order.
    pub fn events(&self) -> &[(Cid, AnyEvent)] {
        &self.events
    }

    /// The step a moment stands for (a step past the last is the last).
    pub fn step_at(&self, moment: Moment) -> Result<u64, VerifyError> {
        match moment {
            Moment::Step(k) => Ok(k.min(self.total_steps())),
            Moment::Event(cid) => self.step_of(&cid).ok_or_else(|| {
                VerifyError::Program(
                    self.program,
                    format!("event {cid} is not an event of this program"),
                )
            }),
        }
    }

    /// The step an event belongs to (see [`Timeline::seek`] for [`Moment::Event`]).
    pub fn step_of(&self, event: &Cid) -> Option<u64> {
        self.step_of.get(event).map(|(step, _)| *step)
    }

    /// Where an event is in [`Timeline::events`].
    pub fn position_of(&self, event: &Cid) -> Option<usize> {
        self.step_of.get(event).map(|(_, position)| *position)
    }

    /// The two events of step `k` (from 1), the redex: its first half (the
    /// capability, when stored) and its second half (the co-capability of `in`/`out`,
    /// the `open` of an `open_`). `None` for step 0 or past the last.
    pub fn redex(&self, k: u64) -> Option<(Option<Cid>, Cid)> {
        let at = *self.seconds.get(usize::try_from(k.checked_sub(1)?).ok()?)?;
        let (second, event) = &self.events[at];
        let want = first_half_of(event.op_event()?.op().opcode());
        // The first half is the one ref that belongs to step k (`steps_of`).
        let first = event.refs().iter().copied().find(|r| {
            self.step_of.get(r).is_some_and(|&(step, position)| {
                step == k && self.events[position].1.op_event().map(|e| e.op().opcode()) == want
            })
        });
        Some((first, *second))
    }

    /// The position in [`Timeline::events`] of step `k`'s second half (`k` from 1).
    pub fn second_half_position(&self, k: u64) -> Option<usize> {
        self.seconds
            .get(usize::try_from(k.checked_sub(1)?).ok()?)
            .copied()
    }

    /// How many events of the order the state after step `k` has applied.
    fn position_after(&self, k: u64) -> usize {
        self.seconds
            .get(k as usize)
            .copied()
            .unwrap_or(self.events.len())
    }
}

/// The state of a stored program at a moment (loads and replays it: to seek more than
/// once, keep a [`Timeline`]).
pub fn state_at(store: &Store, program: Cid, moment: Moment) -> Result<Snapshot, VerifyError> {
    Timeline::load(store, program, &())?.seek(moment)
}

/// The step each event belongs to: a second half is its step (its rank among second
/// halves in replay order, from 1); a first half belongs to the step its second half
/// completes; any other event to the number of steps before it in the order.
/// The opcode of the first half of a step whose second half is `op`.
fn first_half_of(op: Opcode) -> Option<Opcode> {
    op.dual().filter(|_| op.completes_step())
}

fn steps_of(events: &[(Cid, AnyEvent)]) -> HashMap<Cid, (u64, usize)> {
    let dual = first_half_of;
    let ops: HashMap<Cid, (Opcode, usize)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, (c, e))| Some((*c, (e.as_op()?.op().opcode(), i))))
        .collect();
    let mut step = HashMap::with_capacity(events.len());
    let mut seconds = 0u64;
    for (i, (cid, event)) in events.iter().enumerate() {
        let op = event.as_op().map(|e| e.op().opcode());
        if let Some(op) = op.filter(|&op| is_second_half(op)) {
            seconds += 1;
            step.insert(*cid, (seconds, i));
            if let Some((first, at)) = event.refs().iter().find_map(|r| {
                ops.get(r)
                    .filter(|(o, _)| Some(*o) == dual(op))
                    .map(|(_, at)| (*r, *at))
            }) {
                step.insert(first, (seconds, at));
            }
        } else {
            step.entry(*cid).or_insert((seconds, i));
        }
    }
    step
}
