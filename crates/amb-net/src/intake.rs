//! The intake thread: it owns the [`Ingest`] and this node's walks, and takes jobs
//! one at a time (gossip to judge, synced events, holds, status and counter
//! queries, walks to drive), reporting each gossip verdict back to the swarm task
//! and each stored event to listeners. Between jobs (and once a second when none
//! come) it drops the replay state of idle programs ([`Ingest::evict`]).
//!
//! Its queue is bounded (`intake_queue`): senders never wait for it (see `node`).
//! Whatever it does for one program runs under a panic guard: a panic while
//! checking, replaying or walking a program fails that job with an `internal`
//! error, fails the program's walk, drops its replay state (rebuilt on next use)
//! and is told in the program's status; the thread goes on with the other jobs.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::mpsc::RecvTimeoutError,
    time::Duration,
};

use amb_bytecode::Cid;
use amb_log::SigningKey;
use libp2p::{PeerId, gossipsub};
use tokio::sync::{broadcast, mpsc, watch};

use crate::{
    command::{Command, Job},
    event::{NodeEvent, StoredSummary, emit_stored},
    execution::{Action, Arranged, Executions},
    finished::Finished,
    identity,
    ingest::{Ingest, Outcome, RULE_INTERNAL, RULE_MALFORMED, RULE_PROGRAM, Refusal},
    recent::Recent,
    status::ProgramStatus,
    wire::{GossipBatch, topic_name},
};

/// How often an idle intake looks for idle programs to drop.
const EVICT_EVERY: Duration = Duration::from_secs(1);
/// How many programs' latest failures are kept for their status.
const RECENT_FAILURES: usize = 1024;

/// What the intake thread owns and talks to.
pub(crate) struct Intake {
    pub(crate) ingest: Ingest,
    /// Commands to the swarm task (verdicts, publications, reservations).
    pub(crate) commands: mpsc::Sender<Command>,
    /// Node events for listeners.
    pub(crate) events: broadcast::Sender<NodeEvent>,
    /// The key this node's walks sign with, and its peer id.
    pub(crate) key: SigningKey,
    pub(crate) me: PeerId,
    /// The fault layer's crash point.
    pub(crate) crash_after: Option<u64>,
    /// Programs known to be over.
    pub(crate) finished: Finished,
    /// Bumped each time a walk may have moved, ended or failed (`deploy::settle`
    /// waits on it).
    pub(crate) walks: watch::Sender<u64>,
}

/// The text of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// The intake's state while it runs.
struct State {
    ingest: Ingest,
    executions: Executions,
    /// The latest failure of each program that failed lately.
    failures: Recent<Cid, String>,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<NodeEvent>,
    walks: watch::Sender<u64>,
}

impl State {
    /// Runs `f` for `program`: a panic in it fails that program only (see the
    /// module's documentation) and is returned as the error's text.
    fn guarded<T>(&mut self, program: Cid, f: impl FnOnce(&mut State) -> T) -> Result<T, Refusal> {
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut *self)));
        result.map_err(|panic| {
            let message = format!(
                "the node failed while checking /amb/{program}: {}",
                panic_message(&*panic)
            );
            tracing::error!("{message}; its replay state is dropped");
            self.ingest.forget(&program);
            self.ingest.count_refusal(RULE_INTERNAL);
            self.executions.fail(&program, message.clone());
            self.failures.insert(program, message.clone());
            internal(message)
        })
    }

    /// Walks this node's plan of `program` on, under the guard.
    fn drive(&mut self, program: Cid) {
        let actions = self
            .guarded(program, |s| s.executions.drive(program, &mut s.ingest))
            .unwrap_or_default();
        for action in actions {
            self.carry_out(action);
        }
        self.walks.send_modify(|n| *n += 1);
    }

    /// Does what a walk asked. The intake thread may wait for room in the command
    /// queue: the swarm task never waits for it.
    fn carry_out(&self, action: Action) {
        match action {
            Action::Publish { program, batch } => {
                let _ = self.commands.blocking_send(Command::Publish {
                    program,
                    data: batch.encode(),
                    reply: None,
                });
            }
            Action::Reserve {
                walk,
                first,
                peer,
                request,
            } => {
                let _ = self.commands.blocking_send(Command::Reserve {
                    walk,
                    first,
                    peer,
                    request,
                });
            }
            Action::Stored(summaries) => emit_stored(&self.events, summaries),
            Action::Crash { signed } => {
                tracing::error!(signed, "the fault layer crashes this node");
                std::process::abort();
            }
        }
    }

    fn status(&self, program: Cid) -> ProgramStatus {
        ProgramStatus {
            address: format!("/amb/{program}"),
            held: self.ingest.holds(&program),
            events: self.ingest.applied(&program).unwrap_or(0),
            complete: self.ingest.is_complete(&program),
            execution: self.executions.status(&program),
            failed: self.failures.get(&program).cloned(),
        }
    }
}

/// Makes the received events committed without `fsync` durable (the intake is
/// idle, or the node stops): `Store::write_received`.
fn flush(state: &State) {
    if let Err(e) = state.ingest.store().flush() {
        tracing::warn!("making received events durable: {e}");
    }
}

/// The refusal of a job that failed with a caught panic.
fn internal(detail: String) -> Refusal {
    Refusal::new(RULE_INTERNAL, None, detail)
}

/// The intake thread: takes jobs one at a time.
pub(crate) fn run_intake(intake: Intake, jobs: std::sync::mpsc::Receiver<Job>) {
    let Intake {
        ingest,
        commands,
        events,
        key,
        me,
        crash_after,
        finished,
        walks,
    } = intake;
    let publish = |program: Cid, outcome: &Outcome| {
        if outcome.stored.is_empty() {
            return;
        }
        let summaries = outcome
            .stored
            .iter()
            .zip(&outcome.stored_events)
            .map(|(cid, event)| StoredSummary::of(program, *cid, event))
            .collect();
        emit_stored(&events, summaries);
    };
    let mut state = State {
        ingest,
        executions: Executions::new(crash_after),
        failures: Recent::new(RECENT_FAILURES),
        commands: commands.clone(),
        events: events.clone(),
        walks,
    };
    loop {
        let job = match jobs.recv_timeout(EVICT_EVERY) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                evict(&mut state);
                flush(&state);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                flush(&state);
                break;
            }
        };
        // A program that received events: its walk may go on.
        let mut touched = None;
        let (kind, started) = (job.kind(), std::time::Instant::now());
        match job {
            Job::Gossip {
                id,
                source,
                message,
            } => {
                let refusal = match judge_gossip(&mut state, &message) {
                    Ok((program, outcome)) => {
                        publish(program, &outcome);
                        touched = Some(program);
                        outcome.refused
                    }
                    Err(refusal) => Some(refusal),
                };
                if let Some(refusal) = &refusal {
                    tracing::warn!(%source, %refusal, "gossip refused");
                }
                let _ = commands.blocking_send(Command::Validated {
                    id,
                    source,
                    refusal,
                });
            }
            Job::Synced {
                program,
                events: synced,
                reply,
            } => {
                let outcome = state
                    .guarded(program, |s| s.ingest.offer_synced(program, &synced))
                    .unwrap_or_else(|refusal| Outcome {
                        refused: Some(refusal),
                        ..Outcome::default()
                    });
                publish(program, &outcome);
                touched = Some(program);
                let _ = reply.send(outcome);
            }
            Job::Hold(program, reply) => {
                let held = state
                    .guarded(program, |s| s.ingest.hold(program))
                    .unwrap_or_else(Err);
                let _ = reply.send(held);
            }
            Job::AppliedLengths(program, reply) => {
                let _ = reply.send(state.ingest.applied_lengths(&program));
            }
            Job::Status(program, reply) => {
                // A stored program is held (replayed) when first asked for, or
                // again once its replay state was dropped; one the store lacks
                // stays not held.
                let _ = state.guarded(program, |s| s.ingest.hold(program));
                let _ = reply.send(state.status(program));
            }
            Job::Counters(reply) => {
                let refused = state
                    .ingest
                    .refused()
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect();
                let _ = reply.send((
                    refused,
                    state.ingest.held_count(),
                    state.ingest.waiting(),
                    state.executions.outside_grant(),
                ));
            }
            Job::Execute(start, hosts) => {
                let name = start.name();
                let store = state.ingest.store().clone();
                state
                    .executions
                    .start(*start, key.clone(), me, hosts, &store);
                state.drive(name);
            }
            Job::Drive(program) => state.drive(program),
            Job::Reserve {
                walk,
                second,
                peer,
                channel,
            } => {
                let response = state.executions.reserve(&walk, second, peer);
                let _ = commands.blocking_send(Command::RespondDelegate { channel, response });
            }
            Job::Arrange {
                order,
                first,
                peer,
                channel,
            } => {
                let command = match state.executions.arrange(&order, first, peer) {
                    Arranged::Answer(response) => Command::RespondDelegate { channel, response },
                    Arranged::Relay(peer, request) => Command::Relay {
                        peer,
                        request,
                        channel,
                    },
                };
                let _ = commands.blocking_send(command);
            }
            Job::Feed {
                order,
                from,
                peer,
                channel,
            } => {
                let store = state.ingest.store().clone();
                let response = state.executions.feed(&order, from, peer, &store);
                let _ = commands.blocking_send(Command::RespondDelegate { channel, response });
            }
            Job::Take {
                order,
                events: taken,
                told,
                author,
            } => {
                if let Some(author) = identity::public_key(&author) {
                    let result =
                        state.guarded(order, |s| s.executions.take(&order, &taken, &told, &author));
                    if let Err(refusal) | Ok(Err(refusal)) = result {
                        tracing::warn!(%order, %refusal, "events of an order refused");
                    }
                    touched = Some(order);
                }
            }
            Job::FeedOf(program, peer, reply) => {
                let _ = reply.send(state.executions.feed_of(&program, &peer));
            }
            Job::Reserved {
                walk,
                first,
                granted,
            } => {
                state.executions.reserved(&walk, first, granted);
                state.drive(walk);
            }
            Job::Fail(program, reason) => {
                state.executions.fail(&program, reason);
                state.walks.send_modify(|n| *n += 1);
            }
            Job::Execution(program, reply) => {
                let _ = reply.send(state.executions.status(&program));
            }
        }
        if let Some(program) = touched {
            if state.executions.walks(&program) {
                state.drive(program);
            }
        }
        for program in state.executions.take_done() {
            finished.insert(program);
        }
        evict(&mut state);
        if let Err(e) = state.ingest.store().flush_due() {
            tracing::warn!("making received events durable: {e}");
        }
        tracing::trace!(target: "amb_net::timing", job = kind, us = started.elapsed().as_micros() as u64, "intake job");
    }
}

/// Drops the replay state of idle programs, except those a walk of this node is
/// writing.
fn evict(state: &mut State) {
    let State {
        ingest, executions, ..
    } = state;
    ingest.evict(|program| executions.walks(program));
}

/// Checks one gossip message: a well-formed batch, on its program's topic, each
/// event created by the message's (signed) source.
fn judge_gossip(
    state: &mut State,
    message: &gossipsub::Message,
) -> Result<(Cid, Outcome), Refusal> {
    let ingest = &mut state.ingest;
    let refuse = |ingest: &mut Ingest, rule, detail: String| {
        ingest.count_refusal(rule);
        Refusal {
            rule,
            event: None,
            detail,
        }
    };
    let batch = match GossipBatch::decode(&message.data) {
        Ok(batch) => batch,
        Err(e) => return Err(refuse(ingest, RULE_MALFORMED, e.to_string())),
    };
    if message.topic.as_str() != topic_name(batch.program) {
        let detail = format!("a batch of {} on topic {}", batch.program, message.topic);
        return Err(refuse(ingest, RULE_PROGRAM, detail));
    }
    let author = message
        .source
        .as_ref()
        .and_then(identity::public_key)
        .ok_or_else(|| {
            refuse(
                ingest,
                RULE_MALFORMED,
                "the message's source is not an Ed25519 peer".into(),
            )
        })?;
    let name = batch.program;
    // An order this node walks as its host: the events wait for the walk.
    if state.executions.walks_order(&name) {
        let taken = state.guarded(name, |s| {
            s.executions
                .take(&name, &batch.events, &batch.told, &author)
        })?;
        let outcome = Outcome {
            refused: taken.err(),
            ..Outcome::default()
        };
        if let Some(refusal) = &outcome.refused {
            state.ingest.count_refusal(refusal.rule);
        }
        return Ok((name, outcome));
    }
    // An order this node made: its host's events are events of the program.
    let program = state
        .executions
        .made(&name)
        .map_or(name, |(program, _)| program);
    let outcome = state.guarded(program, |s| {
        s.ingest
            .offer(program, &batch.blocks, &batch.events, Some(&author))
    })?;
    Ok((program, outcome))
}
