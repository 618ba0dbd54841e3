//! What a node does at start with what its store holds (`spec/network.md` §1, "A
//! restart"): it follows the topics of the runs that are not over, resumes the walks
//! of the deployments it kept whose runs are not over (as deployer or as host), and
//! announces every stored program on the DHT at a bounded pace. Nothing is replayed
//! here: a stored program is held (replayed) when a request or an event needs it
//! (`Ingest::hold`), so a node holding thousands of programs starts at once.

use std::time::Duration;

use amb_bytecode::Cid;
use amb_vm::order::Order;

use crate::{
    delegation::{host_keys, prepare, start_order, start_walk},
    error::{DeploymentError, NetError},
    handle::NodeHandle,
    identity,
    wire::{Deployment, KeptOrder},
};

/// Programs announced on the DHT per [`ANNOUNCE_EVERY`] after a start.
pub(crate) const ANNOUNCE_BATCH: usize = 50;
/// The pause between two batches of announcements.
pub(crate) const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);

/// Starts picking up what the store holds, in the background.
pub(crate) fn spawn(node: NodeHandle) {
    tokio::spawn(async move {
        match resume(&node).await {
            Ok(()) | Err(NetError::Stopped) => {}
            Err(e) => tracing::error!("resuming what the store holds: {e}"),
        }
    });
}

/// Announces (in the background), follows, resumes.
async fn resume(node: &NodeHandle) -> Result<(), NetError> {
    let handle = node.clone();
    let (programs, open, deployments) = tokio::task::spawn_blocking(move || {
        let store = handle.store();
        let programs = store.programs()?;
        let open: Vec<Cid> = programs
            .iter()
            .copied()
            .filter(|p| !handle.is_finished(p))
            .collect();
        let deployments: Vec<(Cid, Vec<u8>)> = store
            .deployments()?
            .into_iter()
            .filter(|(p, _)| !handle.is_finished(p))
            .collect();
        Ok::<_, NetError>((programs, open, deployments))
    })
    .await
    .map_err(NetError::task("reading the store's programs"))??;
    if !programs.is_empty() {
        tracing::info!(
            programs = programs.len(),
            open = open.len(),
            walks = deployments.len(),
            "the store holds programs: serving them, resuming the runs not over"
        );
    }
    // Announcing takes a while for a large store: it goes on beside the rest.
    let announcer = node.clone();
    tokio::spawn(async move { announce(&announcer, &programs).await });
    for program in &open {
        match node.follow(*program) {
            Err(NetError::Stopped) => return Err(NetError::Stopped),
            Err(e) => tracing::warn!(%program, "not following /amb/{program}: {e}"),
            Ok(()) => {}
        }
    }
    for (program, bytes) in deployments {
        let resumed = match (Deployment::decode(&bytes), KeptOrder::decode(&bytes)) {
            (Ok(deployment), _) if deployment.program == program => {
                resume_walk(node, deployment).await
            }
            (Ok(_), _) => Err(DeploymentError::KeptElsewhere.into()),
            (Err(_), Ok(kept)) if Cid::of(&kept.order) == program => resume_order(node, kept).await,
            (Err(_), Ok(_)) => Err(DeploymentError::KeptElsewhere.into()),
            (Err(e), Err(_)) => Err(DeploymentError::Decode(e).into()),
        };
        match resumed {
            Ok(()) => tracing::info!(%program, "resuming the walk of /amb/{program}"),
            Err(e) => tracing::warn!(%program, "cannot resume the walk of /amb/{program}: {e}"),
        }
    }
    Ok(())
}

/// Walks a kept deployment again from its start: every event this node committed
/// is signed again to the same bytes (a no-op), so the walk goes on where it
/// stopped; as deployer it asks the hosts again to host (`delegation::watch`).
async fn resume_walk(node: &NodeHandle, deployment: Deployment) -> Result<(), NetError> {
    let program = deployment.program;
    let peers = host_keys(&deployment)
        .map_err(NetError::from)?
        .iter()
        .map(identity::peer_id)
        .collect();
    let store = node.store().clone();
    let me = node.key().public_key();
    let kept = deployment.clone();
    let (walk, feeds) = tokio::task::spawn_blocking(move || prepare(&store, &kept, &me))
        .await
        .map_err(NetError::task("planning the walk"))??;
    node.hold(program).await?;
    start_walk(node, deployment, walk, feeds, peers).await
}

/// Walks a kept order again from its start (as [`resume_walk`]); its maker is
/// asked for what the walk missed (`delegation::watch_order`).
async fn resume_order(node: &NodeHandle, kept: KeptOrder) -> Result<(), NetError> {
    let maker = <[u8; 32]>::try_from(kept.maker.as_slice())
        .ok()
        .and_then(|k| amb_log::PublicKey::from_bytes(&k).ok())
        .ok_or(DeploymentError::HostKey)?;
    let order = Order::decode(&kept.order).map_err(DeploymentError::Order)?;
    start_order(node, order, Cid::of(&kept.order), identity::peer_id(&maker)).await
}

/// Announces `programs` on the DHT, [`ANNOUNCE_BATCH`] at a time (Kademlia then
/// republishes them itself, every 12 hours); stops with the node.
async fn announce(node: &NodeHandle, programs: &[Cid]) {
    for (i, batch) in programs.chunks(ANNOUNCE_BATCH).enumerate() {
        if i > 0 {
            tokio::time::sleep(ANNOUNCE_EVERY).await;
        }
        for program in batch {
            match node.provide(*program) {
                Err(NetError::Stopped) => return,
                Err(e) => tracing::debug!(%program, "not announced: {e}"),
                Ok(()) => {}
            }
        }
    }
}
