//! Deploying a program (`spec/network.md` §5 and §8): compile it, sign its
//! manifest, plan its run, ask each delegate to host its slices (`delegation`
//! answers such requests), and start this node's walk; and publishing stored
//! events to a program's topic in bounded batches.

use std::time::{Duration, SystemTime};

use amb_bytecode::Cid;
use amb_engine::Limits;
use amb_log::{Event, Manifest, PublicKey};
use libp2p::PeerId;
use serde_bytes::ByteBuf;

use crate::{
    batch::Batcher,
    delegation::{prepare, start_walk},
    error::{HostRefused, NetError},
    event::StoredSummary,
    handle::NodeHandle,
    identity,
    status::ExecutionStatus,
    wire::{DelegateRefusal, DelegateResponse, Deployment},
};

pub use crate::limits::DeployLimits;

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
    deploy_delegated(node, source, name, limits, Vec::new()).await
}

/// Publishes stored events of `program` on its topic, in order, in batches of the
/// one batcher (`batch.rs`); each event of a slice's log at position 0 carries the
/// slice's manifest. Also tells local listeners.
pub async fn publish_events(
    node: &NodeHandle,
    program: Cid,
    events: &[Cid],
) -> Result<(), NetError> {
    let store = node.store();
    let mut batcher = Batcher::new(program);
    let mut summaries = Vec::new();
    for cid in events {
        let stored = store
            .get_event(*cid)
            .map_err(NetError::from)?
            .ok_or_else(|| NetError::StoredEvent {
                cid: *cid,
                problem: "not stored".into(),
            })?;
        let event = Event::decode(&stored.bytes).map_err(|e| NetError::StoredEvent {
            cid: *cid,
            problem: e.to_string(),
        })?;
        let mut blocks = Vec::new();
        if event.seq() == 0 && event.log() != program {
            blocks.extend(store.get_block(event.log()).map_err(NetError::from)?);
        }
        summaries.push(StoredSummary::of(program, *cid, &event));
        if let Some(batch) = batcher.push(blocks, stored.bytes) {
            node.publish(program, batch.encode()).await?;
        }
    }
    if let Some(batch) = batcher.finish() {
        node.publish(program, batch.encode()).await?;
    }
    node.emit_stored(summaries);
    Ok(())
}

/// Deploys `source` with the ambients named in `delegates` hosted by those peers,
/// and starts this node's part of the run. Answers once every delegate has agreed
/// to host its slices and this node has written all it can for now (all of a run
/// with no delegate); the rest goes on in the background (`amb value` waits for it).
pub async fn deploy_delegated(
    node: &NodeHandle,
    source: String,
    name: Option<String>,
    limits: Limits,
    delegates: Vec<(String, PeerId)>,
) -> Result<Deployed, NetError> {
    let mut peers = vec![node.peer_id()];
    let mut delegated = Vec::new();
    for (ambient, peer) in &delegates {
        if identity::public_key(peer).is_none() {
            return Err(NetError::Invalid(format!(
                "{peer} is not the peer id of an Ed25519 key; it cannot host slices"
            )));
        }
        let host = match peers.iter().position(|p| p == peer) {
            Some(host) => host,
            None => {
                peers.push(*peer);
                peers.len() - 1
            }
        };
        delegated.push((ambient.clone(), host as u32));
    }
    let hosts: Vec<PublicKey> = peers
        .iter()
        .map(|p| identity::public_key(p).expect("checked"))
        .collect();
    let key = node.key().clone();
    let store = node.store().clone();
    let host_keys = hosts.clone();
    let bounds = node.deploy_limits();
    let limits = bounds.engine(limits);
    let delegates: Vec<String> = delegates.into_iter().map(|(name, _)| name).collect();
    let (deployment, (walk, feeds), deployed) = tokio::task::spawn_blocking(move || {
        let ast = bounds.parse(&source)?;
        check_delegated_names(&ast, &delegates)?;
        let compiled = amb_bytecode::compile(&ast).map_err(NetError::Compile)?;
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let manifest = Manifest::new_root(
            compiled.root,
            name,
            host_keys.clone(),
            &key,
            Manifest::random_nonce(),
            time,
        );
        amb_vm::record::store_program(&compiled, &manifest, &store).map_err(NetError::from)?;
        let deployment = Deployment {
            program: manifest.cid(),
            hosts: host_keys
                .iter()
                .map(|k| ByteBuf::from(k.to_bytes().to_vec()))
                .collect(),
            delegated,
            max_steps: limits.max_steps,
        };
        let (walk, feeds) = prepare(&store, &deployment, &key.public_key())?;
        let plan = walk.plan();
        bounds.check_events(plan.events.len())?;
        let deployed = Deployed {
            program: manifest.cid(),
            steps: plan.steps,
            events: plan.events.len() as u64,
            normal_form: amb_syntax::to_compact_string(&plan.final_term),
            value: amb_vm::value_of(&plan.final_term)
                .map_or(serde_json::Value::Null, |v| v.to_json()),
        };
        Ok::<_, NetError>((deployment, (walk, feeds), deployed))
    })
    .await
    .map_err(NetError::task("the deployment task"))??;
    let program = deployment.program;
    node.hold(program).await?;
    node.follow(program)?;
    node.provide(program)?;
    for feed in &feeds {
        let peer = &feed.peer;
        match node.delegate(*peer, feed.request.clone()).await? {
            DelegateResponse::Granted { .. } => {
                tracing::info!(%peer, %program, order = %feed.name, "the peer walks its order of /amb/{program}");
            }
            DelegateResponse::Refused { reason, detail } => {
                tracing::warn!(%peer, %program, ?reason, "the peer refused to host slices: {detail}");
                return Err(NetError::HostRefused(Box::new(HostRefused {
                    peer: *peer,
                    program,
                    reason,
                    detail,
                })));
            }
            DelegateResponse::Events { .. } => {
                return Err(NetError::HostRefused(Box::new(HostRefused {
                    peer: *peer,
                    program,
                    reason: DelegateRefusal::Malformed,
                    detail: "answered `Host` with events".into(),
                })));
            }
        }
    }
    let delegates = peers.len() - 1;
    start_walk(node, deployment, walk, feeds, peers).await?;
    tracing::info!(
        %program,
        steps = deployed.steps,
        events = deployed.events,
        delegates,
        "deployed /amb/{program}"
    );
    settle(node, program).await?;
    Ok(deployed)
}

/// Refuses, before anything is stored, a delegated name that no ambient of the
/// program has: its peer's key would be listed in the manifest for nothing.
fn check_delegated_names(ast: &amb_syntax::Ast, delegates: &[String]) -> Result<(), NetError> {
    for name in delegates {
        let present = ast.lookup(name).is_some_and(|symbol| {
            (0..ast.len()).any(|index| {
                let node = ast.node(ast.node_id(index));
                node.kind() == amb_syntax::NodeKind::Ambient && node.name() == Some(symbol)
            })
        });
        if !present {
            return Err(NetError::Invalid(format!(
                "delegate `{name}`: the program has no ambient named `{name}`, so no peer can host it"
            )));
        }
    }
    Ok(())
}

/// Waits until this node has written all it can for now: its walk is done, or
/// waits for another host.
async fn settle(node: &NodeHandle, program: Cid) -> Result<(), NetError> {
    // Told of every change from before the first look on.
    let mut changes = node.walk_changes();
    loop {
        let (status, busy) = match node.execution(program).await {
            Err(NetError::Busy(_)) => (None, true),
            other => (other?, false),
        };
        match status {
            Some(ExecutionStatus {
                failed: Some(reason),
                ..
            }) => return Err(NetError::RunFailed { program, reason }),
            Some(status) if status.done || status.waiting_for.is_some() => return Ok(()),
            // A full intake did not answer: ask again once it has moved on, or
            // after a moment (what it did meanwhile may be a change already told).
            _ if busy => {
                let _ = tokio::time::timeout(BUSY_RETRY, changes.changed()).await;
            }
            _ => changes.changed().await.map_err(|_| NetError::Stopped)?,
        }
    }
}

/// How long a status query refused `busy` waits before it asks again (unless a
/// change comes first).
const BUSY_RETRY: Duration = Duration::from_millis(10);
