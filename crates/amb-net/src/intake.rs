//! The intake thread: it owns the [`Ingest`] and takes jobs one at a time (gossip
//! to judge, synced events, holds, status and counter queries), reporting each
//! gossip verdict back to the swarm task and each stored event to listeners.

use amb_bytecode::Cid;
use amb_log::Event;
use libp2p::gossipsub;
use tokio::sync::{broadcast, mpsc};

use crate::{
    identity,
    ingest::{Ingest, Outcome, RULE_MALFORMED, RULE_PROGRAM, Refusal},
    node::{Command, Job, NodeEvent, ProgramStatus, StoredSummary},
    wire::{GossipBatch, topic_name},
};

/// The intake thread: takes jobs one at a time.
pub(crate) fn run_intake(
    mut ingest: Ingest,
    jobs: std::sync::mpsc::Receiver<Job>,
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<NodeEvent>,
) {
    let publish = |program: Cid, outcome: &Outcome, ingest: &Ingest| {
        if outcome.stored.is_empty() {
            return;
        }
        let summaries = outcome
            .stored
            .iter()
            .filter_map(|cid| {
                let stored = ingest.store().get_event(*cid).ok()??;
                let event = Event::decode(&stored.bytes).ok()?;
                Some(StoredSummary::of(program, *cid, &event))
            })
            .collect();
        let _ = events.send(NodeEvent::Stored(summaries));
    };
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Gossip {
                id,
                source,
                message,
            } => {
                let refusal = match judge_gossip(&mut ingest, &message) {
                    Ok((program, outcome)) => {
                        publish(program, &outcome, &ingest);
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
                publish(program, &outcome, &ingest);
                let _ = reply.send(outcome);
            }
            Job::Hold(program, reply) => {
                let _ = reply.send(ingest.hold(program));
            }
            Job::Status(program, reply) => {
                let _ = reply.send(ProgramStatus {
                    address: format!("/amb/{program}"),
                    held: ingest.holds(&program),
                    events: ingest.applied(&program).unwrap_or(0),
                    complete: ingest.is_complete(&program),
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
