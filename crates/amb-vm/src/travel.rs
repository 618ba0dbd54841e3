//! Time travel: the ambient tree of a stored program after any step.
//!
//! A step is a capability event together with its co-capability event; it takes
//! effect with its second half (the co-capability of `in`/`out`, the `open` of an
//! `open_`). Events are replayed in the stable topological order of
//! [`crate::verify::stable_order`]; step K is the K-th second half in that order, and
//! the state "after step K" has applied every event before the (K + 1)-th second half,
//! and then every later event that is not a second half and depends only on applied
//! events (the `create` and `deploy` events that give the ambients released by the
//! first K steps their bodies; first halves only claim a capability and do not change
//! the tree). Step 0 is the deployed program before any step.

use std::collections::BTreeMap;

use amb_bytecode::{Cid, Opcode};
use amb_log::{Event, Store};
use amb_syntax::Ast;

use crate::{
    replay::{Replay, Source},
    verify::{StoreSource, VerifyError, check_event, stable_order},
};

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

fn is_second_half(op: Opcode) -> bool {
    matches!(op, Opcode::InCo | Opcode::OutCo | Opcode::Open)
}

/// Loads and checks every event of a program, in replay order.
pub fn load_events(
    store: &Store,
    program: Cid,
) -> Result<(Vec<Cid>, BTreeMap<Cid, Event>), VerifyError> {
    let mut events = BTreeMap::new();
    for log in store.program_logs(program)? {
        for stored in store.log_events(log)? {
            let stored = stored?;
            let event = check_event(stored.cid, &stored.bytes)?;
            events.insert(stored.cid, event);
        }
    }
    if events.is_empty() {
        return Err(VerifyError::Program(
            program,
            "no events of this program are stored".into(),
        ));
    }
    Ok((stable_order(&events), events))
}

/// The state of a stored program at a moment.
pub fn state_at(store: &Store, program: Cid, moment: Moment) -> Result<Snapshot, VerifyError> {
    let source = StoreSource { store };
    let manifest = source.manifest(&program).ok_or_else(|| {
        VerifyError::Program(program, "no valid program manifest is stored".into())
    })?;
    let (order, events) = load_events(store, program)?;
    let total_steps = order
        .iter()
        .filter(|c| is_second_half(events[c].op().opcode()))
        .count() as u64;
    let target = match moment {
        Moment::Step(k) => k.min(total_steps),
        Moment::Event(cid) => step_of(&order, &events, cid).ok_or_else(|| {
            VerifyError::Program(
                program,
                format!("event {cid} is not an event of this program"),
            )
        })?,
    };
    let mut replay = Replay::new(program, manifest);
    let mut rest = order.iter();
    for cid in rest.by_ref() {
        let event = &events[cid];
        if is_second_half(event.op().opcode()) && replay.steps() == target {
            break;
        }
        replay.apply(*cid, event, &source as &dyn Source)?;
    }
    // Complete the bodies of ambients the last steps released: every later event that
    // is not a second half and depends only on applied events.
    for cid in rest {
        let event = &events[cid];
        let ready = event.refs().iter().all(|r| replay.has_applied(r));
        if ready && !is_second_half(event.op().opcode()) {
            replay.apply(*cid, event, &source as &dyn Source)?;
        }
    }
    let mut term = replay.to_ast(&source);
    term.canonicalize();
    Ok(Snapshot {
        term,
        step: replay.steps(),
        total_steps,
    })
}

/// The step an event belongs to: a second half is its step (its rank among second
/// halves in replay order); a first half belongs to the step its second half
/// completes; any other event to the latest step among the events it refers to.
fn step_of(order: &[Cid], events: &BTreeMap<Cid, Event>, wanted: Cid) -> Option<u64> {
    let dual = |op: Opcode| match op {
        Opcode::InCo => Some(Opcode::In),
        Opcode::OutCo => Some(Opcode::Out),
        Opcode::Open => Some(Opcode::OpenCo),
        _ => None,
    };
    let mut step: BTreeMap<Cid, u64> = BTreeMap::new();
    let mut seconds = 0u64;
    for cid in order {
        let event = &events[cid];
        let op = event.op().opcode();
        if is_second_half(op) {
            seconds += 1;
            step.insert(*cid, seconds);
            if let Some(first) = event.refs().iter().find(|r| {
                events
                    .get(r)
                    .is_some_and(|e| Some(e.op().opcode()) == dual(op))
            }) {
                step.insert(*first, seconds);
            }
        }
    }
    for cid in order {
        if step.contains_key(cid) {
            continue;
        }
        let event = &events[cid];
        let latest = event
            .refs()
            .iter()
            .filter_map(|r| step.get(r).copied())
            .max()
            .unwrap_or(0);
        step.insert(*cid, latest);
    }
    step.get(&wanted).copied()
}
