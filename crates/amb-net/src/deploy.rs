//! Deploying a program on this node (`spec/network.md` §5): a deployment whose
//! only host is this node (see `delegation` for the general case), and publishing
//! stored events to a program's topic in bounded batches.

use amb_bytecode::Cid;
use amb_engine::Limits;
use amb_log::Event;
use rand::Rng;
use serde_bytes::ByteBuf;

use crate::{
    node::{NetError, NodeEvent, NodeHandle, StoredSummary},
    wire::{GossipBatch, MAX_BATCH_EVENTS, MAX_GOSSIP_BYTES},
};

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
    node.emit(NodeEvent::Stored(summaries));
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
