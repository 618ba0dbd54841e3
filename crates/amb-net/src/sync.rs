//! Fetching a program from peers (`spec/network.md` §3): find a peer that holds
//! it (connected peers first, then the DHT's providers), get its heads, then every
//! missing block (manifest, bytecode, slice manifests) and every missing event
//! below each head, in bounded requests; then hand the events to the intake, which
//! checks and orders them like gossiped ones.

use std::collections::{HashMap, HashSet};

use amb_bytecode::{Block, Cid};
use amb_log::{Event, Manifest};
use libp2p::PeerId;

use crate::{
    error::{NetError, PeerError},
    handle::NodeHandle,
    ingest::Outcome,
    wire::{Head, MAX_REQUEST_ITEMS, Range, SyncRequest, SyncResponse},
};

/// What a fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The peer it fetched from.
    pub peer: PeerId,
    /// Events newly stored.
    pub stored: usize,
}

/// Fetches whatever this node lacks of `program` from a peer that holds it, and
/// follows its topic from then on.
pub async fn fetch(node: &NodeHandle, program: Cid) -> Result<Fetched, NetError> {
    let (peer, heads) = find_holder(node, program).await?;
    let outcome = sync_from(node, peer, program, &heads).await?;
    node.follow(program)?;
    node.provide(program)?;
    Ok(Fetched {
        peer,
        stored: outcome.stored.len(),
    })
}

/// Brings a held or new program up to the heads of `peer`; if the peer knows the
/// run to be over, so does this node from then on.
pub async fn sync_from(
    node: &NodeHandle,
    peer: PeerId,
    program: Cid,
    heads: &Heads,
) -> Result<Outcome, NetError> {
    fetch_program_blocks(node, peer, program).await?;
    let logs: Vec<Cid> = heads.heads.iter().map(|h| h.log).collect();
    fetch_blocks(node, peer, program, &logs).await?;
    node.hold(program).await?;
    let events = fetch_events(node, peer, program, &heads.heads).await?;
    let outcome = node.ingest_synced(program, events).await?;
    if !outcome.stored.is_empty() {
        tracing::info!(%peer, events = outcome.stored.len(), "fetched /amb/{program}");
    }
    if let Some(refusal) = outcome.refused.clone() {
        return Err(NetError::Refused(refusal));
    }
    if heads.done {
        node.mark_finished(program);
    }
    // Best effort: a peer that lacks them (or an older one that refuses them) does
    // not stop the sync; `amb export` names a value block it cannot write.
    if let Err(e) = fetch_values_from(node, peer, program).await {
        tracing::debug!(%peer, %program, "fetching value blocks: {e}");
    }
    Ok(outcome)
}

/// Fetches the value blocks (and what they reach) that the payloads of the
/// program's logs name and this node lacks, from a peer that holds the program, so
/// that its store holds all that the program names (`amb export`): events this
/// node signed or took from gossip may name values it was not given. How many
/// payloads lacked their block.
pub async fn fetch_values(node: &NodeHandle, program: Cid) -> Result<usize, NetError> {
    if missing_values(node, program)?.is_empty() {
        return Ok(0);
    }
    let (peer, _) = find_holder(node, program).await?;
    fetch_values_from(node, peer, program).await
}

async fn fetch_values_from(
    node: &NodeHandle,
    peer: PeerId,
    program: Cid,
) -> Result<usize, NetError> {
    let missing = missing_values(node, program)?;
    let count = missing.len();
    if count > 0 {
        fetch_reached(node, peer, program, missing).await?;
    }
    Ok(count)
}

/// The payloads of the last stored events of the program's logs (the root log's
/// included) whose blocks this node lacks.
fn missing_values(node: &NodeHandle, program: Cid) -> Result<Vec<Cid>, NetError> {
    let store = node.store();
    let mut logs = store.program_logs(program).map_err(NetError::from)?;
    let root_log = store
        .get_block(program)
        .map_err(NetError::from)?
        .and_then(|bytes| Manifest::decode(&bytes).ok())
        .and_then(|manifest| manifest.root_log())
        .map(|root| root.cid());
    logs.extend(root_log);
    let mut missing = Vec::new();
    for log in logs {
        if let Some(payload) = crate::grant::last_payload(store, log)? {
            if !store.has_block(payload).map_err(NetError::from)? {
                missing.push(payload);
            }
        }
    }
    missing.sort_unstable();
    missing.dedup();
    Ok(missing)
}

/// A peer's heads of a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heads {
    /// Each log's head.
    pub heads: Vec<Head>,
    /// Whether the peer knows the run to be over.
    pub done: bool,
}

/// Asks a peer for a program's heads.
pub async fn heads_of(
    node: &NodeHandle,
    peer: PeerId,
    program: Cid,
) -> Result<Option<Heads>, NetError> {
    match node.request(peer, SyncRequest::Heads { program }).await? {
        SyncResponse::Heads { heads, done } => Ok(Some(Heads { heads, done })),
        SyncResponse::Unknown => Ok(None),
        other => Err(unexpected(peer, &other)),
    }
}

/// The first peer that holds `program`, and its heads: connected peers are asked
/// first, then the providers the DHT knows.
pub async fn find_holder(node: &NodeHandle, program: Cid) -> Result<(PeerId, Heads), NetError> {
    let mut asked = HashSet::new();
    let connected: Vec<PeerId> = node
        .info()
        .await?
        .peers
        .iter()
        .filter_map(|p| p.peer_id.parse().ok())
        .collect();
    for round in 0..2 {
        // Connected peers first; the DHT's providers only if none of them holds it
        // (a failed lookup finds nobody).
        let peers = if round == 0 {
            connected.clone()
        } else {
            node.find_providers(program).await.unwrap_or_default()
        };
        for peer in peers {
            if peer == node.peer_id() || !asked.insert(peer) {
                continue;
            }
            match heads_of(node, peer, program).await {
                Ok(Some(heads)) => return Ok((peer, heads)),
                Ok(None) => {}
                Err(e) => tracing::debug!(%peer, "asking for heads: {e}"),
            }
        }
    }
    Err(NetError::NotFound(format!(
        "no reachable peer holds /amb/{program} (asked {} peers)",
        asked.len()
    )))
}

/// The program's manifest and every bytecode block it reaches.
async fn fetch_program_blocks(
    node: &NodeHandle,
    peer: PeerId,
    program: Cid,
) -> Result<(), NetError> {
    fetch_blocks(node, peer, program, &[program]).await?;
    let manifest = node
        .store()
        .get_block(program)
        .map_err(NetError::from)?
        .and_then(|bytes| Manifest::decode(&bytes).ok())
        .filter(|m| m.kind() == amb_log::Kind::Program && m.cid() == program)
        .ok_or_else(|| NetError::peer(peer, PeerError::NotAProgram(program)))?;
    fetch_reached(node, peer, program, vec![manifest.program()]).await
}

/// Every bytecode block the blocks `frontier` reach, fetched from `peer` under the
/// address `under` (those this node holds are not asked again).
async fn fetch_reached(
    node: &NodeHandle,
    peer: PeerId,
    under: Cid,
    mut frontier: Vec<Cid>,
) -> Result<(), NetError> {
    let store = node.store();
    let mut seen = HashSet::new();
    while !frontier.is_empty() {
        fetch_blocks(node, peer, under, &frontier).await?;
        let mut next = Vec::new();
        for cid in frontier {
            let bytes = store
                .get_block(cid)
                .map_err(NetError::from)?
                .ok_or_else(|| NetError::peer(peer, PeerError::NoBlock(cid)))?;
            let block = Block::decode(&bytes).map_err(|e| {
                NetError::peer(
                    peer,
                    PeerError::NotBytecode {
                        cid,
                        detail: e.to_string(),
                    },
                )
            })?;
            next.extend(block.children().filter(|c| seen.insert(*c)));
        }
        frontier = next;
    }
    Ok(())
}

/// Stores the blocks of `wanted` this node lacks, fetched from `peer` in bounded
/// requests made under the address `under`; each is kept only under the CID its
/// bytes hash to.
async fn fetch_blocks(
    node: &NodeHandle,
    peer: PeerId,
    under: Cid,
    wanted: &[Cid],
) -> Result<(), NetError> {
    let store = node.store();
    let mut missing: Vec<Cid> = wanted
        .iter()
        .copied()
        .filter(|c| !store.has_block(*c).unwrap_or(false))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    while !missing.is_empty() {
        let ask: Vec<Cid> = missing.iter().take(MAX_REQUEST_ITEMS).copied().collect();
        let response = node
            .request(
                peer,
                SyncRequest::Blocks {
                    under,
                    cids: ask.clone(),
                },
            )
            .await?;
        let SyncResponse::Blocks { blocks } = response else {
            return Err(unexpected(peer, &response));
        };
        let asked: HashSet<Cid> = ask.iter().copied().collect();
        let found: Vec<(Cid, &[u8])> = blocks
            .iter()
            .map(|bytes| (Cid::of(bytes), bytes.as_slice()))
            .filter(|(cid, _)| asked.contains(cid))
            .collect();
        // One commit per answer.
        store
            .put_blocks(found.iter().copied())
            .map_err(NetError::from)?;
        let got: HashSet<Cid> = found.iter().map(|(cid, _)| *cid).collect();
        if got.is_empty() {
            return Err(NetError::peer(peer, PeerError::NoBlock(ask[0])));
        }
        missing.retain(|c| !got.contains(c));
    }
    Ok(())
}

/// Every event below each head that this node lacks, in bounded requests made
/// under the address `under`.
async fn fetch_events(
    node: &NodeHandle,
    peer: PeerId,
    under: Cid,
    heads: &[Head],
) -> Result<Vec<Vec<u8>>, NetError> {
    let mut ranges: HashMap<Cid, Range> = HashMap::new();
    // What the node has applied of each log, not what its store holds: a host's
    // part of a program (an order it walked) holds some events of its path's
    // logs without what they refer to.
    let applied = node.applied_lengths(under).await?;
    for head in heads {
        let have = applied.get(&head.log).copied().unwrap_or(0);
        if have < head.len {
            ranges.insert(
                head.log,
                Range {
                    log: head.log,
                    from: have,
                    to: head.len,
                },
            );
        }
    }
    let mut events = Vec::new();
    while !ranges.is_empty() {
        let mut ask: Vec<Range> = ranges.values().copied().collect();
        ask.sort_unstable_by_key(|r| r.log);
        ask.truncate(MAX_REQUEST_ITEMS);
        let response = node
            .request(peer, SyncRequest::Events { under, ranges: ask })
            .await?;
        let SyncResponse::Events { events: got } = response else {
            return Err(unexpected(peer, &response));
        };
        let mut progressed = false;
        for bytes in got {
            let Ok(event) = Event::decode(&bytes) else {
                return Err(NetError::peer(
                    peer,
                    PeerError::MalformedEvent(Cid::of(&bytes)),
                ));
            };
            if let Some(range) = ranges.get_mut(&event.log()) {
                if event.seq() == range.from && event.seq() < range.to {
                    range.from = event.seq() + 1;
                    progressed = true;
                    events.push(bytes.into_vec());
                }
            }
        }
        if !progressed {
            return Err(NetError::peer(peer, PeerError::StoppedSending));
        }
        ranges.retain(|_, r| r.from < r.to);
    }
    Ok(events)
}

fn unexpected(peer: PeerId, response: &SyncResponse) -> NetError {
    let problem = match response {
        SyncResponse::Refused { reason, detail } => PeerError::Refused {
            reason: *reason,
            detail: detail.clone(),
        },
        SyncResponse::Unknown => PeerError::Unknown,
        _ => PeerError::WrongAnswer,
    };
    NetError::peer(peer, problem)
}
