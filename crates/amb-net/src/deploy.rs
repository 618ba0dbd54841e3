//! Deploying a program on this node (`spec/network.md` §5): compile, sign the
//! program manifest, run and record every step as signed events (the same
//! recording as `amb run`), hold the program, follow its topic, announce it on the
//! DHT, and publish its events to the topic in bounded batches.

use std::time::SystemTime;

use amb_bytecode::{BlockLimits, Cid};
use amb_engine::Limits;
use amb_log::{Event, Manifest};
use rand::Rng;
use serde_bytes::ByteBuf;

use crate::{
    node::{NetError, NodeEvent, NodeHandle, StoredSummary},
    wire::{GossipBatch, MAX_BATCH_EVENTS, MAX_GOSSIP_BYTES},
};

/// What a deployment did.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// The program manifest's CID: the address is `/amb/<program>`.
    pub program: Cid,
    /// Reduction steps.
    pub steps: u64,
    /// Events recorded.
    pub events: u64,
    /// The normal form (compact text).
    pub normal_form: String,
    /// The value, as `amb run --json` gives it.
    pub value: serde_json::Value,
}

/// Deploys `source` (program text) under `name` and runs it on this node.
pub async fn deploy(
    node: &NodeHandle,
    source: String,
    name: Option<String>,
    limits: Limits,
) -> Result<Deployed, NetError> {
    let key = node.key().clone();
    let store = node.store().clone();
    let recorded = tokio::task::spawn_blocking(move || -> Result<_, NetError> {
        let ast = amb_syntax::parse(&source)
            .map_err(|e| NetError::Other(format!("syntax error: {e}")))?;
        let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default())
            .map_err(|e| NetError::Other(format!("compiling: {e}")))?;
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let manifest = Manifest::new_root(
            compiled.root,
            name,
            vec![key.public_key()],
            &key,
            Manifest::random_nonce(),
            time,
        );
        let plan = amb_vm::plan::plan(&ast, &compiled, &map, limits)
            .map_err(|e| NetError::Other(format!("reducing: {e}")))?;
        amb_vm::record::store_program(&compiled, &manifest, &store)
            .map_err(|e| NetError::Other(format!("storing the program: {e}")))?;
        let recorded = amb_vm::record::record_events(&plan, &manifest, &key, &store, &())
            .map_err(|e| NetError::Other(format!("recording the run: {e}")))?;
        let normal_form = amb_syntax::to_compact_string(&plan.final_term);
        let value =
            amb_vm::value_of(&plan.final_term).map_or(serde_json::Value::Null, |v| v.to_json());
        Ok((recorded, plan.steps, normal_form, value))
    })
    .await
    .map_err(|e| NetError::Other(format!("the deployment task failed: {e}")))??;
    let (recorded, steps, normal_form, value) = recorded;
    let program = recorded.program;
    node.hold(program).await?;
    node.follow(program)?;
    node.provide(program)?;
    publish_events(node, program, &recorded.event_cids).await?;
    Ok(Deployed {
        program,
        steps,
        events: recorded.events,
        normal_form,
        value,
    })
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
            .map_err(|e| NetError::Other(e.to_string()))?
            .ok_or_else(|| NetError::Other(format!("event {cid} is not stored")))?;
        let event = Event::decode(&stored.bytes)
            .map_err(|e| NetError::Other(format!("stored event {cid}: {e}")))?;
        let mut extra = Vec::new();
        if event.seq() == 0 && event.log() != program {
            if let Some(manifest) = store
                .get_block(event.log())
                .map_err(|e| NetError::Other(e.to_string()))?
            {
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
