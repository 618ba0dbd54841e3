//! Completeness: whether a stored run is whole, a prefix an interrupted run left, or
//! missing something its own events prove must exist (`spec/events.md` §7, rules
//! `missing-log` and `missing-event`).
//!
//! A recorded run commits whole steps, each with the `deploy`s it releases and the
//! logs they start (§8), so what is stored after a crash is a prefix of the run that
//! keeps every promise its events make: every ref names a stored event, every
//! announced slice has its log, every `create` its body `deploy`, every enabled
//! `deploy` instruction its announcing event, every step both halves. A prefix whose
//! promises are all kept is *incomplete* when its replayed term still has a redex and
//! *complete* when it has none; a broken promise is a refusal. This module holds the
//! rule names, the verdict and the check of refs that runs before replay; the promises
//! that need the replayed state are checked by [`crate::replay::Replay::finish`].

use std::collections::HashSet;

use amb_bytecode::{Cid, Opcode};
use amb_log::{AnyEvent, Event};

use crate::replay::Violation;

/// What the order of replay and the check of refs read of an event of either kind
/// (an ordinary event or an effect event, [`AnyEvent`]).
pub trait Placed {
    /// Its log.
    fn log(&self) -> Cid;
    /// Its position in the log.
    fn seq(&self) -> u64;
    /// The events it refers to.
    fn refs(&self) -> &[Cid];
    /// The ordinary event, if it is one: an effect event is neither a step's half
    /// nor an announcement.
    fn op_event(&self) -> Option<&Event>;

    /// Whether it is a slice's or a primitive's announcing `deploy`.
    fn is_announcement(&self) -> bool {
        self.op_event()
            .is_some_and(|e| e.op().opcode() == Opcode::Deploy && e.at().is_some())
    }

    /// Whether it is the second half of a step.
    fn is_second_half(&self) -> bool {
        self.op_event()
            .is_some_and(|e| e.op().opcode().completes_step())
    }
}

impl Placed for Event {
    fn log(&self) -> Cid {
        Event::log(self)
    }
    fn seq(&self) -> u64 {
        Event::seq(self)
    }
    fn refs(&self) -> &[Cid] {
        Event::refs(self)
    }
    fn op_event(&self) -> Option<&Event> {
        Some(self)
    }
}

impl Placed for AnyEvent {
    fn log(&self) -> Cid {
        AnyEvent::log(self)
    }
    fn seq(&self) -> u64 {
        AnyEvent::seq(self)
    }
    fn refs(&self) -> &[Cid] {
        AnyEvent::refs(self)
    }
    fn op_event(&self) -> Option<&Event> {
        self.as_op()
    }
}

/// The rule of a slice that an announcing `deploy` creates and whose log has no
/// event.
pub const MISSING_LOG: &str = "missing-log";

/// The rule of an event that the stored events prove must exist and that is not
/// stored: one they refer to, an earlier position of a log that has later ones, the
/// `create` of an announced primitive, a body `deploy` after its `create`, the
/// announcing `deploy` of an enabled instruction.
pub const MISSING_EVENT: &str = "missing-event";

/// How far a verified run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// The run is over: nothing is missing and the replayed term is a normal form.
    Complete,
    /// A prefix of the run, as an interrupted run leaves: nothing its events promise
    /// is missing, but the replayed term still has a redex.
    Incomplete(Stop),
}

impl Completeness {
    /// Whether the run is over.
    pub fn is_complete(&self) -> bool {
        matches!(self, Completeness::Complete)
    }

    /// Where an incomplete run stops.
    pub fn stop(&self) -> Option<&Stop> {
        match self {
            Completeness::Complete => None,
            Completeness::Incomplete(stop) => Some(stop),
        }
    }
}

/// Where an incomplete run stops: after how many steps and events, and the last event
/// replayed (in the stable order of `spec/events.md` §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    /// Steps replayed.
    pub steps: u64,
    /// Events replayed.
    pub events: u64,
    /// The last event replayed.
    pub event: Cid,
    /// Its log.
    pub log: Cid,
    /// Its position in that log.
    pub seq: u64,
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stops after step {} ({} events), at event {} (seq {} of log {}): the term still reduces",
            self.steps, self.events, self.event, self.seq, self.log
        )
    }
}

/// Checks that every ref of the events names one of them (rule `missing-event`):
/// `cids` are the events' CIDs, strictly increasing, `event(i)` the event of
/// `cids[i]`. The first event (by CID) with a ref to nothing stored is refused, naming
/// the ref and, when its log lacks an earlier position, the first such position.
pub(crate) fn check_refs<'e, E: Placed + 'e>(
    cids: &[Cid],
    event: impl Fn(usize) -> &'e E,
) -> Result<(), Violation> {
    let dangling = (0..cids.len()).find_map(|i| {
        event(i)
            .refs()
            .iter()
            .find(|r| cids.binary_search(r).is_err())
            .map(|r| (i, *r))
    });
    let Some((i, missing)) = dangling else {
        return check_announcement_gaps(cids, event);
    };
    let referrer = event(i);
    let (log, seq) = (referrer.log(), referrer.seq());
    let places: HashSet<u64> = (0..cids.len())
        .map(event)
        .filter(|e| e.log() == log)
        .map(Placed::seq)
        .collect();
    let gap = (0..seq).find(|s| !places.contains(s));
    Err(Violation {
        event: cids[i],
        rule: MISSING_EVENT,
        detail: match gap {
            Some(gap) => format!(
                "refers to {missing}, which is not stored; its log {log} has no event at seq {gap} (this one is at seq {seq})"
            ),
            None => format!("refers to {missing}, which is not stored"),
        },
    })
}

/// Refuses a slice announcement whose log has no stored event at the seq before it:
/// nothing but the log's next linked event refers to that event, so it can be
/// missing without a dangling ref (`spec/events.md` §4).
fn check_announcement_gaps<'e, E: Placed + 'e>(
    cids: &[Cid],
    event: impl Fn(usize) -> &'e E,
) -> Result<(), Violation> {
    let places: HashSet<(Cid, u64)> = (0..cids.len())
        .map(|i| (event(i).log(), event(i).seq()))
        .collect();
    let gap = (0..cids.len()).find(|&i| {
        let e = event(i);
        e.is_announcement() && e.seq() > 0 && !places.contains(&(e.log(), e.seq() - 1))
    });
    let Some(i) = gap else {
        return Ok(());
    };
    let e = event(i);
    Err(Violation {
        event: cids[i],
        rule: MISSING_EVENT,
        detail: format!(
            "an announcing deploy at seq {} of log {}, which has no stored event at seq {}",
            e.seq(),
            e.log(),
            e.seq() - 1
        ),
    })
}
