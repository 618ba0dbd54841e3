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
    execute::{Execution, Walk},
    grant::host_grant,
    order::Order,
    plan::{Hosting, PlanError, plan_hosted},
    record::root_log_manifest,
    stored::{StoredProgram, load_program},
};
use libp2p::PeerId;
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;

use crate::{
    command::HostRequest,
    error::{DeploymentError, NetError},
    execution::{Feed, Start},
    handle::NodeHandle,
    identity,
    wire::{DelegateRefusal, DelegateRequest, DelegateResponse, Deployment, KeptOrder},
};

/// How often a walk's watchdog looks at it.
const WATCH: Duration = Duration::from_millis(250);
/// How long a walk may stand still before its watchdog re-syncs from the host it
/// waits for.
const NUDGE_AFTER: Duration = Duration::from_millis(750);

/// The deployer's walk of `deployment` (`me` must be its first host): the program
/// read back from the stored blocks (`amb_vm::stored`), planned with the
/// deployment's hosting, and a [`Feed`] per delegate: its order (its part of the
/// plan, `amb_vm::order`) and the `Host` request that gives it.
pub fn prepare(
    store: &Store,
    deployment: &Deployment,
    me: &PublicKey,
) -> Result<(Execution, Vec<Feed>), NetError> {
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
    if hosts.first() != Some(me) {
        return Err(DeploymentError::NotAHost.into());
    }
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
    let root_log = root_log_manifest(&manifest).cid();
    let blocks: HashMap<Cid, &Vec<u8>> = compiled.blocks.iter().map(|(c, b)| (*c, b)).collect();
    let values: HashMap<Cid, &Vec<u8>> = plan.value_blocks.iter().map(|(c, b)| (*c, b)).collect();
    let feeds = (1..hosts.len())
        .map(|host| {
            let grant = host_grant(&plan, &compiled, host);
            let projection = Order::project(&plan, &grant, root_log, hosts.clone());
            let own_values = projection
                .order
                .host_index(&hosts[host])
                .map(|me| value_blocks(&projection.order.own_payloads(me), &values))
                .unwrap_or_default();
            let request = DelegateRequest::Host {
                order: ByteBuf::from(projection.order.encode()),
                blocks: grant
                    .blocks
                    .iter()
                    .filter_map(|c| blocks.get(c))
                    .map(|b| ByteBuf::from(b.to_vec()))
                    .chain(own_values)
                    .collect(),
            };
            Feed::new(identity::peer_id(&hosts[host]), host, &projection, request)
        })
        .collect();
    Ok((Execution::new(plan, &manifest, hosts, 0), feeds))
}

/// The blocks of the values `payloads` name (each a one-part program,
/// `spec/events.md` §6), found among `values`: a delegate is given those of the
/// payloads it signs, its own slices' final terms, so it can read its slices'
/// values (`amb value /amb/<slice>`).
fn value_blocks(payloads: &[Cid], values: &HashMap<Cid, &Vec<u8>>) -> Vec<ByteBuf> {
    let mut found = Vec::new();
    for &root in payloads {
        let get = |cid: &Cid| {
            let bytes = values.get(cid)?;
            found.push(ByteBuf::from(bytes.to_vec()));
            Some(bytes.as_slice())
        };
        // A payload the plan has no block for is left out: the delegate then
        // answers that it cannot read that value.
        let _ = amb_bytecode::Program::load(root, get, &amb_bytecode::BlockLimits::default());
    }
    found.sort_unstable();
    found.dedup();
    found
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

/// Answers requests to walk orders: each in its own task.
pub(crate) async fn serve_hosting(node: NodeHandle, mut requests: mpsc::Receiver<HostRequest>) {
    while let Some(request) = requests.recv().await {
        let node = node.clone();
        tokio::spawn(async move {
            let HostRequest {
                peer,
                order,
                blocks,
                channel,
            } = request;
            let response = match host(&node, peer, order.into_vec(), blocks).await {
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

/// The refusal of a host whose check, store or start failed (over a limit, when
/// that is why).
fn failed(e: NetError) -> Refused {
    match e {
        NetError::Limit { .. } => (DelegateRefusal::Limit, e.to_string()),
        NetError::Busy(_) => (DelegateRefusal::Busy, e.to_string()),
        e => (DelegateRefusal::Failed, e.to_string()),
    }
}

/// Walks the order `bytes` that `maker` (its deployer) gives this node, with the
/// bytecode `blocks` of its grant.
async fn host(
    node: &NodeHandle,
    maker: PeerId,
    bytes: Vec<u8>,
    blocks: Vec<ByteBuf>,
) -> Result<(), Refused> {
    if !node.accepts_delegations() {
        return Err((
            DelegateRefusal::NotAllowed,
            "this node does not host slices for others".into(),
        ));
    }
    if !node.accepts_orders_from(&maker) {
        return Err((
            DelegateRefusal::NotAllowed,
            format!("{maker} is not among this node's order_makers"),
        ));
    }
    let order = Order::decode(&bytes).map_err(|e| (DelegateRefusal::Malformed, e.to_string()))?;
    let name = Cid::of(&bytes);
    if order.host_index(&node.key().public_key()).is_none() {
        return Err((
            DelegateRefusal::NotHost,
            "this node writes no event of the order".into(),
        ));
    }
    let maker_key = identity::public_key(&maker).ok_or((
        DelegateRefusal::NotAllowed,
        "the maker is not an Ed25519 peer".into(),
    ))?;
    if !order.is_made_by(&maker_key) {
        return Err((
            DelegateRefusal::NotAllowed,
            "the order's root log is not written by the peer that sends it".into(),
        ));
    }
    node.deploy_limits()
        .check_events(order.events.len())
        .map_err(failed)?;
    if node.execution(name).await.map_err(failed)?.is_some() {
        return Ok(());
    }
    let store: Arc<Store> = node.store().clone();
    let task_bytes = bytes.clone();
    tokio::task::spawn_blocking(move || {
        let blocks: Vec<(Cid, &[u8])> = blocks.iter().map(|b| (Cid::of(b), b.as_slice())).collect();
        store.put_blocks(blocks.iter().copied())?;
        let kept = KeptOrder {
            order: ByteBuf::from(task_bytes),
            maker: ByteBuf::from(maker_key.to_bytes().to_vec()),
        };
        store.put_deployment(name, &kept.encode())?;
        Ok::<_, NetError>(())
    })
    .await
    .map_err(NetError::task("keeping the order"))
    .and_then(|kept| kept)
    .map_err(failed)?;
    start_order(node, order, name, maker).await.map_err(failed)
}

/// Starts walking a kept order (`order`, named `name`: the CID of its bytes; made by
/// `maker`) and its watchdog.
pub(crate) async fn start_order(
    node: &NodeHandle,
    order: Order,
    name: Cid,
    maker: PeerId,
) -> Result<(), NetError> {
    let me = order
        .host_index(&node.key().public_key())
        .ok_or(DeploymentError::NotAHost)?;
    let maker_key = identity::public_key(&maker).ok_or(DeploymentError::HostKey)?;
    if !order.is_made_by(&maker_key) {
        return Err(DeploymentError::Maker.into());
    }
    node.follow(name)?;
    tracing::info!(order = %name, events = order.events.len(), "walking an order of {maker}");
    let walk = Walk::of_order(order, name, me);
    node.execute(Start::Order(walk, maker), Vec::new())?;
    tokio::spawn(watch_order(node.clone(), name, maker));
    Ok(())
}

/// Starts this node's walk of `deployment` as its deployer (`peers`: its hosts,
/// in order), following each delegate's order topic, and its watchdog, once the
/// deployment is kept in the store: a node that restarts resumes every walk whose
/// run is not over (`restart.rs`).
pub(crate) async fn start_walk(
    node: &NodeHandle,
    deployment: Deployment,
    walk: Execution,
    feeds: Vec<Feed>,
    peers: Vec<PeerId>,
) -> Result<(), NetError> {
    let store = node.store().clone();
    let (program, bytes) = (deployment.program, deployment.encode());
    tokio::task::spawn_blocking(move || store.put_deployment(program, &bytes))
        .await
        .map_err(NetError::task("keeping the deployment"))??;
    tracing::info!(%program, "walking /amb/{program}");
    let asks: HashMap<PeerId, DelegateRequest> =
        feeds.iter().map(|f| (f.peer, f.request.clone())).collect();
    for feed in &feeds {
        node.follow(feed.name)?;
    }
    node.execute(Start::Plan(walk, feeds), peers)?;
    tokio::spawn(watch(node.clone(), program, asks));
    Ok(())
}

/// What a watchdog does on a tick.
enum Tick {
    /// The walk is over, or gone.
    Over,
    /// Nothing to do now.
    Wait,
    /// The walk stands still, waiting for `peer`.
    Idle(PeerId),
}

/// Looks at the walk `name`: fails it past the peer timeout, says when it has
/// stood still long enough to act.
async fn tick(node: &NodeHandle, name: Cid) -> Tick {
    tokio::time::sleep(WATCH).await;
    let status = match node.execution(name).await {
        Ok(Some(status)) => status,
        // A full intake: look again at the next tick.
        Err(NetError::Busy(_)) => return Tick::Wait,
        _ => return Tick::Over,
    };
    if status.done || status.failed.is_some() {
        return Tick::Over;
    }
    let idle = Duration::from_millis(status.idle_ms);
    let Some(peer) = status
        .waiting_for
        .as_deref()
        .and_then(|p| p.parse::<PeerId>().ok())
    else {
        return Tick::Wait;
    };
    if idle > node.peer_timeout() {
        node.fail_execution(
            name,
            format!(
                "host {peer} has not written its next event of /amb/{name} for {} s (the peer timeout): giving up at event {} of {}",
                idle.as_secs(),
                status.position,
                status.total
            ),
        );
        // Looked at again: the failure shows in its status (or, if the intake was
        // too busy to take it, it is asked again).
        return Tick::Wait;
    }
    if idle < NUDGE_AFTER {
        return Tick::Wait;
    }
    Tick::Idle(peer)
}

/// Watches the deployer's walk of `program` until it is done or has failed: when
/// it waits for a delegate, asks that delegate for its events of its order (gossip
/// may have lost them), and asks it again to walk its order (`asks`) every 2 s (a
/// delegate that lost its store, or never got the first request).
async fn watch(node: NodeHandle, program: Cid, asks: HashMap<PeerId, DelegateRequest>) {
    let mut asked_again = Instant::now();
    loop {
        let peer = match tick(&node, program).await {
            Tick::Over => return,
            Tick::Wait => continue,
            Tick::Idle(peer) => peer,
        };
        if let Ok(Some((order, from))) = node.feed_of(program, peer).await {
            let request = DelegateRequest::Feed {
                order,
                from: from as u64,
            };
            if let Ok(DelegateResponse::Events { events, .. }) = node.delegate(peer, request).await
            {
                let events = events.into_iter().map(ByteBuf::into_vec).collect();
                let _ = node.ingest_synced(program, events).await;
            }
        }
        if asked_again.elapsed() > Duration::from_secs(2) {
            asked_again = Instant::now();
            if let Some(request) = asks.get(&peer) {
                let _ = node.delegate(peer, request.clone()).await;
            }
        }
        node.drive(program);
    }
}

/// Watches a delegate's walk of order `name` until it is done or has failed:
/// when it stands still, asks the maker for the events (and bare refs' CIDs) it
/// may have missed.
async fn watch_order(node: NodeHandle, name: Cid, maker: PeerId) {
    loop {
        match tick(&node, name).await {
            Tick::Over => return,
            Tick::Wait => continue,
            Tick::Idle(_) => {}
        }
        let from = match node.execution(name).await {
            Ok(Some(status)) => status.position as u64,
            _ => continue,
        };
        let request = DelegateRequest::Feed { order: name, from };
        if let Ok(DelegateResponse::Events { events, told }) = node.delegate(maker, request).await {
            let _ = node.take(name, events, told, maker);
        }
        node.drive(name);
    }
}
