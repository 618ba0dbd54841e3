//! The intake thread: it owns the [`Ingest`] and takes jobs one at a time (gossip
//! to judge, synced events, holds, status and counter queries), reporting each
//! gossip verdict back to the swarm task and each stored event to listeners.

use amb_bytecode::Cid;
use amb_log::SigningKey;
use libp2p::{PeerId, gossipsub};
use tokio::sync::{broadcast, mpsc};

use crate::{
    execution::Executions,
    identity,
    ingest::{Ingest, Outcome, RULE_MALFORMED, RULE_PROGRAM, Refusal},
    node::{Command, Finished, Job, NodeEvent, ProgramStatus, StoredSummary},
    wire::{GossipBatch, topic_name},
};

/// What the intake thread owns and talks to.
pub(crate) struct Intake {
    pub(crate) ingest: Ingest,
    /// Commands to the swarm task (verdicts, publications, reservations).
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    /// Node events for listeners.
    pub(crate) events: broadcast::Sender<NodeEvent>,
    /// The key this node's walks sign with, and its peer id.
    pub(crate) key: SigningKey,
    pub(crate) me: PeerId,
    /// The fault layer's crash point.
    pub(crate) crash_after: Option<u64>,
    /// Programs known to be over.
    pub(crate) finished: Finished,
}

/// The intake thread: takes jobs one at a time.
pub(crate) fn run_intake(intake: Intake, jobs: std::sync::mpsc::Receiver<Job>) {
    let Intake {
        mut ingest,
        commands,
        events,
        key,
        me,
        crash_after,
        finished,
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
        let _ = events.send(NodeEvent::Stored(summaries));
    };
    let mut executions = Executions::new(crash_after);
    while let Ok(job) = jobs.recv() {
        // A program that received events: its walk may go on.
        let mut touched = None;
        match job {
            Job::Gossip {
                id,
                source,
                message,
            } => {
                let refusal = match judge_gossip(&mut ingest, &message) {
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
                let _ = commands.send(Command::Validated {
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
                let outcome = ingest.offer_synced(program, &synced);
                publish(program, &outcome);
                touched = Some(program);
                let _ = reply.send(outcome);
            }
            Job::Hold(program, reply) => {
                let _ = reply.send(ingest.hold(program));
            }
            Job::Status(program, reply) => {
                // A stored program is held (replayed) when first asked for; one the
                // store lacks stays not held.
                let _ = ingest.hold(program);
                let _ = reply.send(ProgramStatus {
                    address: format!("/amb/{program}"),
                    held: ingest.holds(&program),
                    events: ingest.applied(&program).unwrap_or(0),
                    complete: ingest.is_complete(&program),
                    execution: executions.status(&program),
                });
            }
            Job::Counters(reply) => {
                let refused = ingest
                    .refused()
                    .iter()
                    .map(|(k, v)| (k.to_string(), *v))
                    .collect();
                let _ = reply.send((refused, ingest.held_count(), ingest.waiting()));
            }
            Job::Execute(walk, hosts) => {
                let program = walk.program();
                executions.start(*walk, key.clone(), me, hosts);
                executions.drive(program, &mut ingest, &commands, &events);
            }
            Job::Drive(program) => executions.drive(program, &mut ingest, &commands, &events),
            Job::Reserve {
                program,
                second,
                peer,
                channel,
            } => {
                let response = executions.reserve(&program, second, peer);
                let _ = commands.send(Command::RespondDelegate { channel, response });
            }
            Job::Reserved {
                program,
                first,
                granted,
            } => {
                executions.reserved(&program, first, granted);
                executions.drive(program, &mut ingest, &commands, &events);
            }
            Job::Fail(program, reason) => executions.fail(&program, reason),
            Job::Execution(program, reply) => {
                let _ = reply.send(executions.status(&program));
            }
        }
        if let Some(program) = touched {
            if executions.walks(&program) {
                executions.drive(program, &mut ingest, &commands, &events);
            }
        }
        for program in executions.take_done() {
            finished.insert(program);
        }
    }
}

/// Checks one gossip message: a well-formed batch, on its program's topic, each
/// event created by the message's (signed) source.
fn judge_gossip(
    ingest: &mut Ingest,
    message: &gossipsub::Message,
) -> Result<(Cid, Outcome), Refusal> {
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
        Err(detail) => return Err(refuse(ingest, RULE_MALFORMED, detail)),
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
    let outcome = ingest.offer(batch.program, &batch.blocks, &batch.events, Some(&author));
    Ok((batch.program, outcome))
}
