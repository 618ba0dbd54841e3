//! Delegation (`spec/network.md` §8): preparing a host's walk of a deployment,
//! accepting (or refusing) to host slices for a deployer, and watching a
//! walk that waits for another host: re-syncing from it, asking it again to host
//! (after a restart it has forgotten the walk), and giving up, with a clear error,
//! past the node's peer timeout.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use amb_bytecode::Cid;
use amb_engine::Limits;
use amb_log::{PublicKey, Store};
use amb_vm::{
    execute::Execution,
    plan::{Hosting, PlanError, plan_hosted},
    stored::{StoredProgram, load_program},
};
use libp2p::PeerId;
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use crate::{
    command::HostRequest,
    error::{DeploymentError, NetError},
    handle::NodeHandle,
    identity,
    sync::{fetch, heads_of, sync_from},
    wire::{DelegateRefusal, DelegateRequest, DelegateResponse, Deployment},
};

/// How often a walk's watchdog looks at it.
const WATCH: Duration = Duration::from_millis(250);
/// How long a walk may stand still before its watchdog re-syncs from the host it
/// waits for.
const NUDGE_AFTER: Duration = Duration::from_millis(750);

/// The walk of `deployment` by the host whose key is `me`: the program read back
/// from the stored blocks (`amb_vm::stored`), planned with the deployment's hosting.
pub fn prepare(
    store: &Store,
    deployment: &Deployment,
    me: &PublicKey,
) -> Result<Execution, NetError> {
    let program = deployment.program;
    let StoredProgram {
        manifest,
        ast,
        compiled,
        map,
    } = load_program(store, program).map_err(DeploymentError::Load)?;
    let hosts = host_keys(deployment)?;
    let mut listed = hosts.clone();
    listed.sort_unstable();
    listed.dedup();
    if listed.as_slice() != manifest.keys() {
        return Err(DeploymentError::Hosts(program).into());
    }
    if hosts.first() != Some(manifest.creator()) {
        return Err(DeploymentError::Creator.into());
    }
    let me = hosts
        .iter()
        .position(|k| k == me)
        .ok_or(DeploymentError::NotAHost)?;
    let mut delegated = HashMap::new();
    for (name, host) in &deployment.delegated {
        let host = *host as usize;
        if host == 0 || host >= hosts.len() {
            return Err(DeploymentError::NoHost(name.clone()).into());
        }
        delegated.insert(name.clone(), host);
    }
    let limits = Limits {
        max_steps: deployment.max_steps,
        ..Limits::default()
    };
    let plan = plan_hosted(&ast, &compiled, &map, limits, &Hosting { delegated }).map_err(|e| {
        let limit = match &e {
            PlanError::Engine(engine) => crate::limits::engine_limit(engine),
            _ => None,
        };
        limit.unwrap_or_else(|| DeploymentError::Plan(e).into())
    })?;
    store.put_blocks(plan.value_blocks.iter().map(|(c, b)| (*c, b.as_slice())))?;
    Ok(Execution::new(plan, &manifest, hosts, me))
}

/// The keys of a deployment's hosts, in order.
pub(crate) fn host_keys(deployment: &Deployment) -> Result<Vec<PublicKey>, DeploymentError> {
    deployment
        .hosts
        .iter()
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .ok()
                .and_then(|k| PublicKey::from_bytes(&k).ok())
                .ok_or(DeploymentError::HostKey)
        })
        .collect()
}

/// Answers requests to host slices: each in its own task.
pub(crate) async fn serve_hosting(node: NodeHandle, mut requests: mpsc::Receiver<HostRequest>) {
    while let Some(request) = requests.recv().await {
        let node = node.clone();
        tokio::spawn(async move {
            let HostRequest {
                peer,
                deployment,
                channel,
            } = request;
            let response = match host(&node, peer, deployment).await {
                Ok(()) => DelegateResponse::Granted { expires_ms: 0 },
                Err((reason, detail)) => {
                    tracing::warn!(%peer, "refused to host: {reason}: {detail}");
                    DelegateResponse::Refused { reason, detail }
                }
            };
            node.respond_delegation(channel, response).await;
        });
    }
}

/// Why this node does not host a deployment: the reason the asker gets, and its
/// words.
type Refused = (DelegateRefusal, String);

/// The refusal of a host whose fetch, plan or start failed (over a limit, when
/// that is why).
fn failed(e: NetError) -> Refused {
    match e {
        NetError::Limit { .. } => (DelegateRefusal::Limit, e.to_string()),
        NetError::Busy(_) => (DelegateRefusal::Busy, e.to_string()),
        e => (DelegateRefusal::Failed, e.to_string()),
    }
}

/// Hosts this node's slices of `deployment` for `peer`, its deployer.
async fn host(node: &NodeHandle, peer: PeerId, deployment: Deployment) -> Result<(), Refused> {
    if !node.accepts_delegations() {
        return Err((
            DelegateRefusal::NotAllowed,
            "this node does not host slices for others".into(),
        ));
    }
    let me = node.key().public_key();
    let listed = |k: &ByteBuf| k.as_slice() == me.as_bytes();
    if !deployment.hosts.iter().skip(1).any(listed) {
        return Err((
            DelegateRefusal::NotHost,
            "this node is not a delegate of the deployment".into(),
        ));
    }
    if deployment.hosts.first().map(|k| k.as_slice())
        != identity::public_key(&peer)
            .map(|k| k.to_bytes().to_vec())
            .as_deref()
    {
        return Err((
            DelegateRefusal::NotAllowed,
            "only the deployer asks to host its slices".into(),
        ));
    }
    let bounds = node.deploy_limits();
    if deployment.max_steps > bounds.max_steps {
        return Err((
            DelegateRefusal::Limit,
            format!(
                "over the limit max_deploy_steps: the deployment asks for {} steps, this node allows {}",
                deployment.max_steps, bounds.max_steps
            ),
        ));
    }
    let program = deployment.program;
    if node.execution(program).await.map_err(failed)?.is_some() {
        return Ok(());
    }
    fetch(node, program).await.map_err(|e| {
        (
            DelegateRefusal::Failed,
            format!("fetching /amb/{program}: {e}"),
        )
    })?;
    let store: Arc<Store> = node.store().clone();
    let task_deployment = deployment.clone();
    let walk = tokio::task::spawn_blocking(move || {
        let walk = prepare(&store, &task_deployment, &me)?;
        bounds.check_events(walk.plan().events.len())?;
        Ok::<_, NetError>(walk)
    })
    .await
    .map_err(NetError::task("planning the walk"))
    .and_then(|walk| walk)
    .map_err(failed)?;
    let peers = host_keys(&deployment)
        .map_err(|e| failed(e.into()))?
        .iter()
        .map(identity::peer_id)
        .collect();
    start_walk(node, deployment, walk, peers)
        .await
        .map_err(failed)
}

/// Starts this node's walk of `deployment` (`peers`: its hosts, in order) and its
/// watchdog, once the deployment is kept in the store: a node that restarts
/// resumes every walk whose run is not over (`restart.rs`).
pub(crate) async fn start_walk(
    node: &NodeHandle,
    deployment: Deployment,
    walk: Execution,
    peers: Vec<PeerId>,
) -> Result<(), NetError> {
    let store = node.store().clone();
    let (program, bytes) = (deployment.program, deployment.encode());
    tokio::task::spawn_blocking(move || store.put_deployment(program, &bytes))
        .await
        .map_err(NetError::task("keeping the deployment"))??;
    let deployer = peers.first() == Some(&node.peer_id());
    tracing::info!(%program, deployer, "walking /amb/{program}");
    node.execute(walk, peers)?;
    tokio::spawn(watch(node.clone(), deployment, deployer));
    Ok(())
}

/// Watches this node's walk of a deployment until it is done or has failed.
async fn watch(node: NodeHandle, deployment: Deployment, deployer: bool) {
    let program: Cid = deployment.program;
    let mut asked_again = Instant::now();
    loop {
        tokio::time::sleep(WATCH).await;
        let status = match node.execution(program).await {
            Ok(Some(status)) => status,
            // A full intake: look again at the next tick.
            Err(NetError::Busy(_)) => continue,
            _ => return,
        };
        if status.done || status.failed.is_some() {
            return;
        }
        let idle = Duration::from_millis(status.idle_ms);
        let Some(peer) = status
            .waiting_for
            .as_deref()
            .and_then(|p| p.parse::<PeerId>().ok())
        else {
            continue;
        };
        if idle > node.peer_timeout() {
            node.fail_execution(
                program,
                format!(
                    "host {peer} has not written its next event of /amb/{program} for {} s (the peer timeout): giving up at plan event {} of {}",
                    idle.as_secs(),
                    status.position,
                    status.total
                ),
            );
            // Looked at again: the failure shows in its status (or, if the intake
            // was too busy to take it, it is asked again).
            continue;
        }
        if idle < NUDGE_AFTER {
            continue;
        }
        // Perhaps gossip lost its events: sync from it.
        if let Ok(Some(heads)) = heads_of(&node, peer, program).await {
            let _ = sync_from(&node, peer, program, &heads).await;
        }
        // Perhaps it restarted and forgot the walk: ask it again to host.
        if deployer && asked_again.elapsed() > Duration::from_secs(2) {
            asked_again = Instant::now();
            let request = DelegateRequest::Host {
                deployment: deployment.clone(),
            };
            let _ = node.delegate(peer, request).await;
        }
        node.drive(program);
    }
}
