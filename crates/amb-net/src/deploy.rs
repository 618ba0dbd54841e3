//! Deploying a program on this node (`spec/network.md` §5): the limits every
//! deployment is held to, a deployment whose only host is this node (see
//! `delegation` for the general case), and publishing stored events to a
//! program's topic in bounded batches.

use amb_bytecode::Cid;
use amb_engine::{EngineError, Limits};
use amb_log::Event;
use amb_syntax::{Ast, SyntaxErrorKind};
use rand::Rng;
use serde_bytes::ByteBuf;

use crate::{
    node::{NetError, NodeHandle, StoredSummary},
    wire::{GossipBatch, MAX_BATCH_EVENTS, MAX_GOSSIP_BYTES},
};

/// The limits of every deployment on a node (`spec/network.md` §1): the program
/// text's size and nesting depth are checked before it is compiled, its run's steps
/// while it is planned, its events once it is planned (before anything is signed or
/// stored). A request may lower the step limit, never raise it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeployLimits {
    /// Largest program text, in bytes (`max_deploy_bytes`). Default 1 MiB.
    pub max_bytes: usize,
    /// Deepest nesting of ambients, prefixes and groups (`max_deploy_depth`).
    /// Default 10,000.
    pub max_depth: usize,
    /// Most reduction steps of the run (`max_deploy_steps`). Default 1,000,000.
    pub max_steps: u64,
    /// Most events of the run (`max_deploy_events`). Default 1,000,000.
    pub max_events: u64,
}

impl Default for DeployLimits {
    fn default() -> DeployLimits {
        DeployLimits {
            max_bytes: 1 << 20,
            max_depth: 10_000,
            max_steps: 1_000_000,
            max_events: 1_000_000,
        }
    }
}

impl DeployLimits {
    /// Parses a program's text within the byte and depth limits: past either, the
    /// parse stops early and the error names the limit.
    pub fn parse(&self, source: &str) -> Result<Ast, NetError> {
        if source.len() > self.max_bytes {
            return Err(NetError::Limit {
                limit: "max_deploy_bytes",
                detail: format!(
                    "the program is {} bytes, more than {}",
                    source.len(),
                    self.max_bytes
                ),
            });
        }
        let limits = amb_syntax::Limits {
            max_input_bytes: self.max_bytes,
            max_depth: self.max_depth,
            ..amb_syntax::Limits::default()
        };
        amb_syntax::parse_with_limits(source.as_bytes(), &limits).map_err(|e| match e.kind {
            SyntaxErrorKind::TooDeep { limit } => NetError::Limit {
                limit: "max_deploy_depth",
                detail: format!(
                    "the program nests deeper than {limit} levels (at {})",
                    e.position
                ),
            },
            _ => NetError::Invalid(format!("syntax error: {e}")),
        })
    }

    /// The engine limits of a run asked with `requested`: its step limit, never
    /// above this node's.
    pub fn engine(&self, requested: Limits) -> Limits {
        Limits {
            max_steps: requested.max_steps.min(self.max_steps),
            ..requested
        }
    }

    /// Refuses a planned run of more events than the limit.
    pub fn check_events(&self, events: usize) -> Result<(), NetError> {
        if events as u64 > self.max_events {
            return Err(NetError::Limit {
                limit: "max_deploy_events",
                detail: format!("the run has {events} events, more than {}", self.max_events),
            });
        }
        Ok(())
    }
}

/// The error of a run stopped by the engine's step or memory limit.
pub(crate) fn engine_limit(e: &EngineError) -> Option<NetError> {
    match e {
        EngineError::StepLimit { limit } => Some(NetError::Limit {
            limit: "max_deploy_steps",
            detail: format!(
                "the run takes more than {limit} steps (the node's max_deploy_steps, or the request's max_steps when lower)"
            ),
        }),
        EngineError::MemoryLimit { used, limit } => Some(NetError::Limit {
            limit: "max_memory_bytes",
            detail: format!("the run holds {used} bytes, more than {limit}"),
        }),
        _ => None,
    }
}

/// What a deployment starts: the planned run.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// The program manifest's CID: the address is `/amb/<program>`.
    pub program: Cid,
    /// Reduction steps of the plan.
    pub steps: u64,
    /// Events of the plan.
    pub events: u64,
    /// The plan's final term (compact text).
    pub normal_form: String,
    /// Its value, as `amb run --json` gives it.
    pub value: serde_json::Value,
}

/// Deploys `source` (program text) under `name` and runs it on this node (a
/// deployment with no delegate: this node is its only host). Answers once the run
/// has started; it goes on in the background.
pub async fn deploy(
    node: &NodeHandle,
    source: String,
    name: Option<String>,
    limits: Limits,
) -> Result<Deployed, NetError> {
    crate::delegation::deploy_delegated(node, source, name, limits, Vec::new()).await
}

/// Publishes stored events of `program` on its topic, in order, in batches bounded
/// by [`MAX_BATCH_EVENTS`] and [`MAX_GOSSIP_BYTES`]; each batch carries the slice
/// manifests of the logs it starts. Also tells local listeners.
pub async fn publish_events(
    node: &NodeHandle,
    program: Cid,
    events: &[Cid],
) -> Result<(), NetError> {
    let store = node.store();
    let mut batch = new_batch(program);
    let mut size = 0usize;
    let mut summaries = Vec::new();
    for cid in events {
        let stored = store
            .get_event(*cid)
            .map_err(NetError::from)?
            .ok_or_else(|| NetError::Other(format!("event {cid} is not stored")))?;
        let event = Event::decode(&stored.bytes)
            .map_err(|e| NetError::Other(format!("stored event {cid}: {e}")))?;
        let mut extra = Vec::new();
        if event.seq() == 0 && event.log() != program {
            if let Some(manifest) = store.get_block(event.log()).map_err(NetError::from)? {
                extra.push(ByteBuf::from(manifest));
            }
        }
        let adds = stored.bytes.len() + extra.iter().map(|b| b.len()).sum::<usize>() + 16;
        if batch.events.len() == MAX_BATCH_EVENTS || size + adds > MAX_GOSSIP_BYTES - 1024 {
            send(
                node,
                program,
                std::mem::replace(&mut batch, new_batch(program)),
            )
            .await?;
            size = 0;
        }
        size += adds;
        batch.blocks.extend(extra);
        batch.events.push(ByteBuf::from(stored.bytes));
        summaries.push(StoredSummary::of(program, *cid, &event));
    }
    if !batch.events.is_empty() {
        send(node, program, batch).await?;
    }
    node.emit_stored(summaries);
    Ok(())
}

fn new_batch(program: Cid) -> GossipBatch {
    GossipBatch {
        program,
        nonce: rand::thread_rng().r#gen(),
        blocks: Vec::new(),
        events: Vec::new(),
    }
}

async fn send(node: &NodeHandle, program: Cid, batch: GossipBatch) -> Result<(), NetError> {
    node.publish(program, batch.encode()).await
}
