//! Delegation (`spec/network.md` §8): deploying a program whose slices run on other
//! peers, accepting (or refusing) to host slices for a deployer, and watching a
//! walk that waits for another host: re-syncing from it, asking it again to host
//! (after a restart it has forgotten the walk), and giving up, with a clear error,
//! past the node's peer timeout.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use amb_bytecode::{BlockLimits, Cid, ProgramLimits};
use amb_engine::Limits;
use amb_log::{Manifest, PublicKey, Store};
use amb_vm::{
    execute::Execution,
    plan::{Hosting, PlanError, plan_hosted},
};
use libp2p::PeerId;
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use crate::{
    deploy::Deployed,
    driver::HostRequest,
    execution::ExecutionStatus,
    identity,
    node::{Command, NetError, NodeHandle},
    sync::{fetch, heads_of, sync_from},
    wire::{DelegateRequest, DelegateResponse, Deployment},
};

/// How often a walk's watchdog looks at it.
const WATCH: Duration = Duration::from_millis(250);
/// How long a walk may stand still before its watchdog re-syncs from the host it
/// waits for.
const NUDGE_AFTER: Duration = Duration::from_millis(750);

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
    let (deployment, walk, deployed) = tokio::task::spawn_blocking(move || {
        let ast = bounds.parse(&source)?;
        let compiled = amb_bytecode::compile(&ast)
            .map_err(|e| NetError::Invalid(format!("compiling: {e}")))?;
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
        amb_vm::record::store_program(&compiled, &manifest, &store)
            .map_err(|e| NetError::Other(format!("storing the program: {e}")))?;
        let deployment = Deployment {
            program: manifest.cid(),
            hosts: host_keys
                .iter()
                .map(|k| ByteBuf::from(k.to_bytes().to_vec()))
                .collect(),
            delegated,
            max_steps: limits.max_steps,
        };
        let walk = prepare(&store, &deployment, &key.public_key())?;
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
        Ok::<_, NetError>((deployment, walk, deployed))
    })
    .await
    .map_err(|e| NetError::Other(format!("the deployment task failed: {e}")))??;
    let program = deployment.program;
    node.hold(program).await?;
    node.follow(program)?;
    node.provide(program)?;
    for peer in &peers[1..] {
        let request = DelegateRequest::Host {
            deployment: deployment.clone(),
        };
        match node.delegate(*peer, request).await? {
            DelegateResponse::Granted { .. } => {}
            DelegateResponse::Refused { reason } => {
                return Err(NetError::Other(format!(
                    "peer {peer} refused to host its slices of /amb/{program}: {reason}"
                )));
            }
        }
    }
    start_walk(node, deployment, walk, peers).await?;
    settle(node, program).await?;
    Ok(deployed)
}

/// Waits until this node has written all it can for now: its walk is done, or
/// waits for another host.
async fn settle(node: &NodeHandle, program: Cid) -> Result<(), NetError> {
    loop {
        let status = match node.execution(program).await {
            Err(NetError::Busy(_)) => None,
            other => other?,
        };
        match status {
            Some(ExecutionStatus {
                failed: Some(reason),
                ..
            }) => return Err(NetError::Other(format!("/amb/{program}: {reason}"))),
            Some(status) if status.done || status.waiting_for.is_some() => return Ok(()),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The walk of `deployment` by the host whose key is `me`: the program read back
/// from the stored blocks, planned with the deployment's hosting.
pub fn prepare(
    store: &Store,
    deployment: &Deployment,
    me: &PublicKey,
) -> Result<Execution, NetError> {
    let program = deployment.program;
    let failed = |what: &str, e: &dyn std::fmt::Display| NetError::Other(format!("{what}: {e}"));
    let bytes = store
        .get_block(program)
        .map_err(|e| failed("reading the store", &e))?
        .ok_or_else(|| NetError::Other(format!("/amb/{program} is not stored")))?;
    let manifest = Manifest::decode(&bytes).map_err(|e| failed("the program manifest", &e))?;
    manifest
        .verify_signature()
        .map_err(|e| failed("the program manifest", &e))?;
    let hosts = host_keys(deployment).map_err(NetError::Other)?;
    let mut listed = hosts.clone();
    listed.sort_unstable();
    listed.dedup();
    if manifest.cid() != program
        || manifest.kind() != amb_log::Kind::Program
        || listed.as_slice() != manifest.keys()
    {
        return Err(NetError::Other(format!(
            "/amb/{program}: the manifest does not list exactly the deployment's hosts"
        )));
    }
    if hosts.first() != Some(manifest.creator()) {
        return Err(NetError::Other(
            "the deployment's first host is not the program's creator".into(),
        ));
    }
    let me = hosts
        .iter()
        .position(|k| k == me)
        .ok_or_else(|| NetError::Other("this node is not a host of the deployment".into()))?;
    let blocks = amb_bytecode::Program::load(
        manifest.program(),
        |cid| store.get_block(*cid).ok().flatten(),
        &BlockLimits::default(),
    )
    .map_err(|e| failed("loading the program's blocks", &e))?;
    let ast = blocks
        .to_ast(&ProgramLimits::default())
        .map_err(|e| failed("reading the program back", &e))?;
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default())
        .map_err(|e| failed("compiling", &e))?;
    let mut delegated = HashMap::new();
    for (name, host) in &deployment.delegated {
        let host = *host as usize;
        if host == 0 || host >= hosts.len() {
            return Err(NetError::Other(format!("`{name}` is delegated to no host")));
        }
        delegated.insert(name.clone(), host);
    }
    let limits = Limits {
        max_steps: deployment.max_steps,
        ..Limits::default()
    };
    let plan =
        plan_hosted(&ast, &compiled, &map, limits, &Hosting { delegated }).map_err(
            |e| match &e {
                PlanError::Engine(engine) => {
                    crate::deploy::engine_limit(engine).unwrap_or_else(|| failed("reducing", &e))
                }
                _ => failed("reducing", &e),
            },
        )?;
    store
        .put_blocks(plan.value_blocks.iter().map(|(c, b)| (*c, b.as_slice())))
        .map_err(|e| failed("storing value blocks", &e))?;
    Ok(Execution::new(plan, &manifest, hosts, me))
}

/// The keys of a deployment's hosts, in order.
pub(crate) fn host_keys(deployment: &Deployment) -> Result<Vec<PublicKey>, String> {
    deployment
        .hosts
        .iter()
        .map(|b| {
            <[u8; 32]>::try_from(b.as_slice())
                .ok()
                .and_then(|k| PublicKey::from_bytes(&k).ok())
                .ok_or_else(|| "a host key is not an Ed25519 key".to_string())
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
                Err(reason) => {
                    tracing::warn!(%peer, "refused to host: {reason}");
                    DelegateResponse::Refused { reason }
                }
            };
            node.command(Command::RespondDelegate { channel, response })
                .await;
        });
    }
}

/// Hosts this node's slices of `deployment` for `peer`, its deployer.
async fn host(node: &NodeHandle, peer: PeerId, deployment: Deployment) -> Result<(), String> {
    if !node.accepts_delegations() {
        return Err("not-allowed: this node does not host slices for others".into());
    }
    let me = node.key().public_key();
    let listed = |k: &ByteBuf| k.as_slice() == me.as_bytes();
    if !deployment.hosts.iter().skip(1).any(listed) {
        return Err("not-host: this node is not a delegate of the deployment".into());
    }
    if deployment.hosts.first().map(|k| k.as_slice())
        != identity::public_key(&peer)
            .map(|k| k.to_bytes().to_vec())
            .as_deref()
    {
        return Err("not-allowed: only the deployer asks to host its slices".into());
    }
    let bounds = node.deploy_limits();
    if deployment.max_steps > bounds.max_steps {
        return Err(format!(
            "over the limit max_deploy_steps: the deployment asks for {} steps, this node allows {}",
            deployment.max_steps, bounds.max_steps
        ));
    }
    let program = deployment.program;
    if node
        .execution(program)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    fetch(node, program)
        .await
        .map_err(|e| format!("fetching /amb/{program}: {e}"))?;
    let store: Arc<Store> = node.store().clone();
    let task_deployment = deployment.clone();
    let walk = tokio::task::spawn_blocking(move || {
        let walk = prepare(&store, &task_deployment, &me)?;
        bounds.check_events(walk.plan().events.len())?;
        Ok::<_, NetError>(walk)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let peers = host_keys(&deployment)?
        .iter()
        .map(identity::peer_id)
        .collect();
    start_walk(node, deployment, walk, peers)
        .await
        .map_err(|e| e.to_string())
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
        .map_err(|e| NetError::Other(format!("keeping the deployment: {e}")))??;
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
