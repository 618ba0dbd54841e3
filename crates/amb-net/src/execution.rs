//! Running this node's part of delegated programs (`spec/network.md` §8), in the
//! intake thread: each walk signs this host's events as soon as every event they
//! refer to is held, takes the other hosts' events from what the intake accepted,
//! and publishes what it signs. A step whose second half another host writes waits
//! for that host to reserve its co-capability first; this host, in turn, reserves
//! its co-capabilities for one mover at a time, for a bounded time, and never for a
//! step it has already applied. A walk that is over (done or failed) is dropped,
//! plan and all; only its last status is kept, among the [`RECENT_WALKS`] latest.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use amb_bytecode::{Cid, Opcode};
use amb_log::{Event, SigningKey};
use amb_vm::{
    execute::{Execution, Need},
    plan::{EventIx, Plan},
    verify::is_second_half,
};
use libp2p::PeerId;

use crate::{
    batch::Batcher,
    event::StoredSummary,
    ingest::Ingest,
    recent::Recent,
    status::ExecutionStatus,
    wire::{DelegateRefusal, DelegateResponse, GossipBatch},
};

/// How many walks that are over keep their last status (for `amb value`, the
/// deployer's answer and a host asked again).
pub const RECENT_WALKS: usize = 4096;

/// How long a reservation this host grants is held.
pub const RESERVATION: Duration = Duration::from_secs(30);

/// Most events a walk signs before it lets other jobs run.
const SIGN_BUDGET: usize = 4096;

struct Running {
    walk: Execution,
    key: SigningKey,
    me: PeerId,
    hosts: Vec<PeerId>,
    /// First halves whose co-capability the other host reserved for this host.
    granted: HashSet<EventIx>,
    /// A reservation asked for and not answered yet (its first half).
    asking: Option<EventIx>,
    /// Reservations this host holds for others: second half → (mover, until).
    holding: HashMap<EventIx, (PeerId, Instant)>,
    waiting_for: Option<PeerId>,
    moved_at: Instant,
    failed: Option<String>,
}

/// Whether plan event `index` is a first half whose second half another host
/// writes: it needs that host's reservation.
fn needs_reservation(plan: &Plan, index: EventIx) -> bool {
    let (Some(first), Some(second)) = (plan.events.get(index), plan.events.get(index + 1)) else {
        return false;
    };
    matches!(first.opcode, Opcode::In | Opcode::Out | Opcode::OpenCo)
        && is_second_half(second.opcode)
        && second.refs.contains(&index)
        && second.writer != first.writer
}

/// Whether this host's event at plan `index` (its log announced already) is held:
/// a walk resumed after a restart meets what it committed before.
fn committed(run: &Running, ingest: &Ingest, program: Cid, index: EventIx) -> bool {
    let planned = &run.walk.plan().events[index];
    run.walk
        .log_id(planned.log)
        .and_then(|log| ingest.event_at(&program, log, planned.seq))
        .is_some()
}

/// Every walk of this node.
pub(crate) struct Executions {
    running: HashMap<Cid, Running>,
    /// The last status of walks that are over (their plans are dropped).
    over: Recent<Cid, ExecutionStatus>,
    /// Events signed by the walks so far.
    signed: u64,
    /// The fault layer's crash point (events signed).
    crash_after: Option<u64>,
    /// Walks done, not yet taken by [`Executions::take_done`].
    done: Vec<Cid>,
}

impl Executions {
    /// Walks that crash the process once they have signed `crash_after` events.
    pub(crate) fn new(crash_after: Option<u64>) -> Executions {
        Executions {
            running: HashMap::new(),
            over: Recent::new(RECENT_WALKS),
            signed: 0,
            crash_after,
            done: Vec::new(),
        }
    }

    /// Starts a walk (a walk of the same program already running is kept).
    pub(crate) fn start(
        &mut self,
        walk: Execution,
        key: SigningKey,
        me: PeerId,
        hosts: Vec<PeerId>,
    ) {
        let program = walk.program();
        if self.over.get(&program).is_some_and(|s| s.done) {
            return;
        }
        self.running.entry(program).or_insert(Running {
            walk,
            key,
            me,
            hosts,
            granted: HashSet::new(),
            asking: None,
            holding: HashMap::new(),
            waiting_for: None,
            moved_at: Instant::now(),
            failed: None,
        });
    }

    /// Where the walk of `program` is (or how it ended, if it ended lately).
    pub(crate) fn status(&self, program: &Cid) -> Option<ExecutionStatus> {
        let Some(run) = self.running.get(program) else {
            return self.over.get(program).cloned();
        };
        Some(ExecutionStatus {
            position: run.walk.position(),
            total: run.walk.plan().events.len(),
            done: run.walk.is_done() && run.failed.is_none(),
            waiting_for: run.waiting_for.map(|p| p.to_string()),
            idle_ms: run.moved_at.elapsed().as_millis() as u64,
            failed: run.failed.clone(),
        })
    }

    /// Gives up a walk (one that is over is no longer here: a walk at its last
    /// event fails when what it signed could not be stored).
    pub(crate) fn fail(&mut self, program: &Cid, reason: String) {
        if let Some(run) = self.running.get_mut(program) {
            tracing::warn!(%program, "{reason}");
            run.failed = Some(reason);
            self.retire(*program);
        }
    }

    /// Drops a walk that is over, keeping its last status.
    fn retire(&mut self, program: Cid) {
        if let Some(status) = self.status(&program) {
            self.running.remove(&program);
            self.over.insert(program, status);
        }
    }

    /// Programs whose walk reached its end since the last call.
    pub(crate) fn take_done(&mut self) -> Vec<Cid> {
        std::mem::take(&mut self.done)
    }

    /// Whether this node walks `program`.
    pub(crate) fn walks(&self, program: &Cid) -> bool {
        self.running.contains_key(program)
    }

    /// Walks on as far as the events held allow and signs and stores this host's
    /// events; returns what the node is to do next (publish them, ask for the
    /// reservations the walk needs, tell listeners), in order.
    pub(crate) fn drive(&mut self, program: Cid, ingest: &mut Ingest) -> Vec<Action> {
        let mut actions = Vec::new();
        self.walk_on(program, ingest, &mut actions);
        if let Some(run) = self.running.get(&program) {
            if run.failed.is_some() || run.walk.is_done() {
                self.retire(program);
            }
        }
        actions
    }

    fn walk_on(&mut self, program: Cid, ingest: &mut Ingest, actions: &mut Vec<Action>) {
        let Some(run) = self.running.get_mut(&program) else {
            return;
        };
        while run.failed.is_none() && !run.walk.is_done() {
            let store = ingest.store().clone();
            let advance = {
                // Which of the next events wait for a reservation (computed before
                // the walk borrows itself mutably).
                let needs: Vec<bool> = (run.walk.position()..run.walk.plan().events.len())
                    .take(SIGN_BUDGET + 1)
                    .map(|i| needs_reservation(run.walk.plan(), i) && !run.granted.contains(&i))
                    .collect();
                let start = run.walk.position();
                run.walk.advance(
                    &run.key,
                    SIGN_BUDGET,
                    |log, seq| {
                        let cid = ingest.event_at(&program, log, seq)?;
                        let stored = store.get_event(cid).ok()??;
                        Some((cid, Event::decode(&stored.bytes).ok()?))
                    },
                    |i| needs.get(i - start).copied().unwrap_or(false),
                )
            };
            let advance = match advance {
                Ok(advance) => advance,
                Err(deviation) => {
                    run.failed = Some(deviation.to_string());
                    break;
                }
            };
            if !advance.signed.is_empty() || !advance.manifests.is_empty() {
                run.moved_at = Instant::now();
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
                let outcome = ingest.offer_own(program, &blocks, &signed);
                if let Some(refusal) = outcome.refused {
                    run.failed = Some(format!("this host's own event was refused: {refusal}"));
                    break;
                }
                for signed in &advance.signed {
                    run.holding.remove(&signed.index);
                }
            }
            if !advance.signed.is_empty() {
                announce(program, &advance.manifests, &advance.signed, actions);
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
                    self.done.push(program);
                    break;
                }
                Need::Event { writer, .. } => {
                    run.waiting_for = Some(run.hosts[writer]);
                    break;
                }
                Need::Paused { index }
                    if needs_reservation(run.walk.plan(), index)
                        && !run.granted.contains(&index) =>
                {
                    if committed(run, ingest, program, index) {
                        // Signed and stored before a restart: signing it again is a
                        // no-op, and the other host has taken its second half.
                        run.granted.insert(index);
                        continue;
                    }
                    let second = index + 1;
                    let writer = run.walk.plan().events[second].writer;
                    run.waiting_for = Some(run.hosts[writer]);
                    if run.asking != Some(index) {
                        run.asking = Some(index);
                        actions.push(Action::Reserve {
                            program,
                            first: index,
                            peer: run.hosts[writer],
                        });
                    }
                    break;
                }
                Need::Paused { .. } => {}
                // A whole plan makes no bare refs.
                Need::Bare { .. } => break,
            }
        }
    }

    /// The answer to a reservation this host asked for.
    pub(crate) fn reserved(&mut self, program: &Cid, first: EventIx, granted: bool) {
        if let Some(run) = self.running.get_mut(program) {
            if run.asking == Some(first) {
                run.asking = None;
            }
            if granted {
                run.granted.insert(first);
            }
        }
    }

    /// Another host asks this host to reserve the co-capability consumed by plan
    /// event `second`.
    pub(crate) fn reserve(
        &mut self,
        program: &Cid,
        second: EventIx,
        peer: PeerId,
    ) -> DelegateResponse {
        let refuse = |reason: DelegateRefusal| DelegateResponse::Refused {
            reason,
            detail: String::new(),
        };
        let Some(run) = self.running.get_mut(program) else {
            // A walk at its end has applied every step.
            let over = self.over.get(program).is_some_and(|s| s.done);
            return refuse(if over {
                DelegateRefusal::Taken
            } else {
                DelegateRefusal::Unknown
            });
        };
        let events = &run.walk.plan().events;
        let Some(event) = events.get(second) else {
            return refuse(DelegateRefusal::Unknown);
        };
        if run.hosts[event.writer] != run.me {
            return refuse(DelegateRefusal::NotHost);
        }
        if second == 0
            || !needs_reservation(run.walk.plan(), second - 1)
            || run.hosts[events[second - 1].writer] != peer
        {
            return refuse(DelegateRefusal::NotAllowed);
        }
        if run.walk.position() > second {
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
}

/// Publishes events this host signed through the one batcher (`batch.rs`), each
/// event starting a slice's log with the slice's manifest (any manifest no event
/// starts goes with the first event), and tells local listeners.
fn announce(
    program: Cid,
    manifests: &[(Cid, Vec<u8>)],
    signed: &[amb_vm::execute::Signed],
    actions: &mut Vec<Action>,
) {
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
        Batcher::all(program, items)
            .into_iter()
            .map(|batch| Action::Publish { program, batch }),
    );
    let summaries = signed
        .iter()
        .zip(&decoded)
        .filter_map(|(s, event)| Some(StoredSummary::of(program, s.cid, event.as_ref()?)))
        .collect();
    actions.push(Action::Stored(summaries));
}

/// What a walk asks the node to do; the intake carries it out.
#[derive(Debug)]
pub(crate) enum Action {
    /// Publish a batch on the program's topic.
    Publish {
        /// The program.
        program: Cid,
        /// The batch.
        batch: GossipBatch,
    },
    /// Ask `peer` to reserve the co-capability of the step whose first half is
    /// plan event `first` (`spec/network.md` §8, the handshake).
    Reserve {
        /// The program.
        program: Cid,
        /// The step's first half.
        first: EventIx,
        /// The host of its second half.
        peer: PeerId,
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
