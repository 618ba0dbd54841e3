//! The JSON the inspector answers with, read from a [`Timeline`]: a program's
//! events (paged), the state after a step as a flat list of tree nodes (at most
//! `max_nodes`, deeper subtrees fetched by path), the canonical term, the diff
//! between two steps and the step's redex. `spec/network.md` §7 lists the
//! fields.

use std::collections::{BTreeMap, HashMap};

use amb_bytecode::{Cid, Target};
use amb_log::{Event, PublicKey};
use amb_syntax::{Ast, NodeId, NodeKind};
use amb_vm::{
    replay::AmbientLog,
    travel::{Moment, Timeline},
    verify::VerifyError,
};
use serde_json::{Value, json};

/// The largest term shown inline in a state answer; a larger one is read from the
/// term route.
pub(crate) const INLINE_TERM_BYTES: usize = 64 * 1024;

/// Why a view cannot be given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ViewError {
    /// A step past the program's last.
    #[error("step {step} is out of range: the program has {total} steps (0 to {total})")]
    StepOutOfRange { step: u64, total: u64 },
    /// A path that names no node of the state.
    #[error("path `{0}` names no node of the state")]
    NoSuchPath(String),
    /// An event CID that is not an event of the program.
    #[error("event {0} is not an event of this program")]
    NoSuchEvent(Cid),
    /// A moment that is neither a step number nor an event CID.
    #[error("`{0}` is neither a step number nor an event CID")]
    BadMoment(String),
    /// Replay failed (or the moment names no event of the program).
    #[error(transparent)]
    Replay(#[from] VerifyError),
}

/// A moment as text: a step number or an event CID.
pub(crate) fn moment(text: &str) -> Result<Moment, ViewError> {
    if let Ok(step) = text.parse::<u64>() {
        return Ok(Moment::Step(step));
    }
    text.parse()
        .map(Moment::Event)
        .map_err(|_| ViewError::BadMoment(text.to_string()))
}

/// The step a moment stands for, refusing a step past the last.
pub(crate) fn step_of(timeline: &Timeline<'_>, moment: Moment) -> Result<u64, ViewError> {
    let total = timeline.total_steps();
    match moment {
        Moment::Step(step) if step > total => Err(ViewError::StepOutOfRange { step, total }),
        Moment::Event(cid) if timeline.step_of(&cid).is_none() => Err(ViewError::NoSuchEvent(cid)),
        moment => Ok(timeline.step_at(moment)?),
    }
}

/// A target as `amb log` prints it.
fn target_text(target: &Target) -> String {
    match target {
        Target::Block(cid) => cid.to_string(),
        other => other.name().unwrap_or("").to_string(),
    }
}

/// The most slice names a state answer lists per host (it counts them all).
const MAX_SLICE_NAMES: usize = 100;

/// Peer ids of keys, each worked out once.
#[derive(Default)]
struct Peers(HashMap<[u8; 32], String>);

impl Peers {
    fn of(&mut self, key: &PublicKey) -> String {
        self.0
            .entry(*key.as_bytes())
            .or_insert_with(|| peer(key))
            .clone()
    }
}

/// A key's peer id, as text.
pub(crate) fn peer(key: &PublicKey) -> String {
    amb_net::identity::peer_id(key).to_string()
}

/// One event as `amb log --json` prints it (and the event routes answer): its
/// fields, the writer as key and as peer id, and its signature.
pub(crate) fn event_json(cid: &Cid, e: &Event, log_name: &str) -> Value {
    json!({
        "cid": cid.to_string(),
        "log": e.log().to_string(),
        "log_name": log_name,
        "seq": e.seq(),
        "op": e.op().opcode().mnemonic(),
        "target": target_text(e.op().target()),
        "at": e.at().map(|(d, i)| json!([d.to_string(), i])),
        "refs": e.refs().iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "payload": e.payload().map(|p| p.to_string()),
        "writer": e.creator().to_string(),
        "peer": peer(e.creator()),
        "signature": hex::encode(e.signature().to_bytes()),
    })
}

/// The name `amb log` gives a log: its manifest's, `<program>` for the program's.
pub(crate) fn log_name(timeline: &Timeline<'_>, log: &Cid) -> String {
    if *log == timeline.program() {
        return "<program>".to_string();
    }
    timeline
        .source()
        .manifest(log)
        .and_then(|m| m.name().map(str::to_string))
        .unwrap_or_else(|| "<program>".to_string())
}

/// Events `after` (an index in replay order; from the first when `None`), at most
/// `limit`: `{"address", "total", "events", "next"}`; each event also has its
/// `index`, the `step` it belongs to, and `verified` (replayed with every rule of
/// `spec/events.md` §7 that replay checks; its signature was checked when it
/// entered the store).
pub(crate) fn events_page(timeline: &Timeline<'_>, after: Option<usize>, limit: usize) -> Value {
    let events = timeline.events();
    let start = after.map_or(0, |a| a.saturating_add(1)).min(events.len());
    let end = start.saturating_add(limit).min(events.len());
    let mut names: HashMap<Cid, String> = HashMap::new();
    let page: Vec<Value> = events[start..end]
        .iter()
        .enumerate()
        .map(|(i, (cid, e))| {
            let name = names
                .entry(e.log())
                .or_insert_with(|| log_name(timeline, &e.log()));
            let mut json = event_json(cid, e, name);
            json["index"] = json!(start + i);
            json["step"] = json!(timeline.step_of(cid));
            json["verified"] = json!(true);
            json
        })
        .collect();
    json!({
        "address": format!("/amb/{}", timeline.program()),
        "total": events.len(),
        "events": page,
        "next": (end < events.len() && end > start).then(|| end - 1),
    })
}

/// `{"term", "step", "total_steps"}`: the first two exactly what `amb inspect --at
/// K --json` prints.
pub(crate) fn term(timeline: &Timeline<'_>, moment: Moment) -> Result<Value, ViewError> {
    let step = step_of(timeline, moment)?;
    let snapshot = timeline.seek(Moment::Step(step))?;
    let term = amb_syntax::to_compact_string(&snapshot.term);
    Ok(json!({ "term": term, "step": snapshot.step, "total_steps": snapshot.total_steps }))
}

/// The line diff of the pretty terms at two steps, as `amb inspect --diff` prints
/// it: `{"from", "to", "lines"}`.
pub(crate) fn diff(timeline: &Timeline<'_>, from: Moment, to: Moment) -> Result<Value, ViewError> {
    let from = step_of(timeline, from)?;
    let to = step_of(timeline, to)?;
    let before = timeline.seek(Moment::Step(from))?;
    let after = timeline.seek(Moment::Step(to))?;
    let lines = super::diff::diff_lines(
        &amb_syntax::to_pretty_string(&before.term),
        &amb_syntax::to_pretty_string(&after.term),
    );
    Ok(json!({ "from": before.step, "to": after.step, "lines": lines }))
}

/// What a state answer shows: the node to start from and how many nodes at most.
#[derive(Clone, Debug)]
pub(crate) struct TreeQuery {
    /// Child indices from the top level (`0.2.1`), or none for the whole state.
    pub(crate) path: Option<String>,
    /// The most nodes in the answer.
    pub(crate) max_nodes: usize,
    /// The first child shown at the first level (the first level is paged).
    pub(crate) from: usize,
}

/// The state after a step: `{"address", "step", "total_steps", "redex", "term"?,
/// "term_bytes", "value"?, "hosts", "nodes", "shown", "total_nodes"}`.
pub(crate) fn state(
    timeline: &Timeline<'_>,
    moment: Moment,
    query: &TreeQuery,
) -> Result<Value, ViewError> {
    let step = step_of(timeline, moment)?;
    let replay = timeline.replay_at(Moment::Step(step))?;
    let (ast, logs) = replay.to_ast_with_logs(timeline.source());
    let root_host = replay.program_host();
    // Canonical order changes no character: the length is known before sorting,
    // which is done only for a term shown inline.
    let term_bytes = amb_syntax::to_compact_string(&ast).len();
    let term = (term_bytes <= INLINE_TERM_BYTES).then(|| {
        let mut canonical = ast.clone();
        canonical.canonicalize();
        amb_syntax::to_compact_string(&canonical)
    });
    let mut names: HashMap<Cid, String> = HashMap::new();
    let mut name_of = |log: &Cid| {
        names
            .entry(*log)
            .or_insert_with(|| log_name(timeline, log))
            .clone()
    };
    // Peer ids, once per key (each is a point decompression).
    let mut peers = Peers::default();
    // Who hosts which slices (logs) at this step: how many, and the first names.
    let mut hosts: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    let mut host_of = |host: &PublicKey, log: &Cid, peers: &mut Peers| {
        let entry = hosts.entry(peers.of(host)).or_default();
        entry.0 += 1;
        if entry.1.len() < MAX_SLICE_NAMES {
            entry.1.push(name_of(log));
        }
    };
    if let Some(host) = &root_host {
        host_of(host, &timeline.program(), &mut peers);
    }
    for ambient in &logs {
        if let (Some(log), Some(host)) = (ambient.log, ambient.host) {
            host_of(&host, &log, &mut peers);
        }
    }
    let hosts: BTreeMap<String, Value> = hosts
        .into_iter()
        .map(|(peer, (count, names))| (peer, json!({ "count": count, "slices": names })))
        .collect();
    let (nodes, shown, more) = tree(&ast, &logs, root_host, query, &mut name_of, &mut peers)?;
    let redex = timeline.redex(step).map(|(first, second)| {
        // The second half is where the step is; the first half comes before it.
        let at = timeline.second_half_position(step).unwrap_or(0);
        let events = timeline.events();
        let mut event = |cid: &Cid| {
            let i = events[..=at].iter().rposition(|(c, _)| c == cid)?;
            let (cid, e) = &events[i];
            let mut json = event_json(cid, e, &name_of(&e.log()));
            json["index"] = json!(i);
            Some(json)
        };
        let first = first.as_ref().and_then(&mut event);
        json!({ "first": first, "second": event(&second) })
    });
    let mut answer = json!({
        "address": format!("/amb/{}", timeline.program()),
        "step": step,
        "total_steps": timeline.total_steps(),
        "events": timeline.events().len(),
        "redex": redex,
        "term_bytes": term_bytes,
        "hosts": hosts,
        "nodes": nodes,
        "shown": shown,
        "more": more,
        "total_nodes": ast.len(),
    });
    if let Some(term) = term {
        answer["term"] = json!(term);
    }
    if step == timeline.total_steps() {
        answer["value"] = amb_vm::value_json(&ast);
        answer["stuck"] = super::stuck::explain(&ast);
    }
    Ok(answer)
}

/// The tree as a flat list of nodes, breadth first from the top level (or from
/// the node at `query.path`), at most `query.max_nodes`; a node whose children
/// did not fit says how many nodes under it are `hidden`. The first level starts
/// at child `query.from`; when it has more children than fit, `more` says where
/// the next page starts and how many are left.
fn tree(
    ast: &Ast,
    logs: &[AmbientLog],
    root_host: Option<PublicKey>,
    query: &TreeQuery,
    name_of: &mut dyn FnMut(&Cid) -> String,
    peers: &mut Peers,
) -> Result<(Vec<Value>, usize, Option<Value>), ViewError> {
    // By node index: the live ambient's log and host.
    let mut by_node: Vec<Option<&AmbientLog>> = vec![None; ast.len()];
    for ambient in logs {
        by_node[ambient.node.index()] = Some(ambient);
    }
    // Parents, and subtree sizes (a child's id is greater than its parent's).
    let mut parent: Vec<Option<NodeId>> = vec![None; ast.len()];
    for i in 0..ast.len() {
        let id = ast.node_id(i);
        for child in ast.children(Some(id)) {
            parent[child.index()] = Some(id);
        }
    }
    let mut size = vec![1usize; ast.len()];
    for i in (0..ast.len()).rev() {
        if let Some(p) = parent[i] {
            size[p.index()] += size[i];
        }
    }
    // The host of each node: its own log's, else its parent's, else the program's.
    let mut host: Vec<Option<PublicKey>> = vec![None; ast.len()];
    for i in 0..ast.len() {
        host[i] = match by_node[i] {
            Some(AmbientLog {
                log: Some(_), host, ..
            }) => *host,
            _ => parent[i].map_or(root_host, |p| host[p.index()]),
        };
    }
    // Where to start.
    let mut start: Option<NodeId> = None;
    let mut path_prefix = String::new();
    if let Some(path) = query.path.as_deref().filter(|p| !p.is_empty()) {
        for part in path.split('.') {
            let index: usize = part
                .parse()
                .map_err(|_| ViewError::NoSuchPath(path.to_string()))?;
            start = Some(
                ast.children(start)
                    .nth(index)
                    .ok_or_else(|| ViewError::NoSuchPath(path.to_string()))?,
            );
        }
        path_prefix = format!("{path}.");
    }
    let mut nodes = Vec::new();
    let mut queue = std::collections::VecDeque::new();
    let mut shown = 0usize;
    // The first level: from `query.from`, at most `max_nodes` (the rest is paged).
    let level: Vec<NodeId> = ast.children(start).collect();
    let begin = query.from.min(level.len());
    let end = begin.saturating_add(query.max_nodes).min(level.len());
    let first = level[begin..end].to_vec();
    let more = (end < level.len()).then(|| json!({ "from": end, "count": level.len() - end }));
    let mut expand = |children: Vec<NodeId>,
                      offset: usize,
                      prefix: String,
                      parent_at: Option<usize>,
                      nodes: &mut Vec<Value>,
                      queue: &mut std::collections::VecDeque<(NodeId, usize, String)>,
                      shown: &mut usize| {
        for (k, child) in children.into_iter().enumerate() {
            let path = format!("{prefix}{}", offset + k);
            let node = ast.node(child);
            let mut json = json!({
                "path": path,
                "parent": parent_at,
                "name": node.name().map(|s| ast.name_text(s)),
                "host": host[child.index()].as_ref().map(|h| peers.of(h)),
            });
            match node.kind() {
                NodeKind::Ambient => {
                    json["kind"] = json!("ambient");
                    if let Some(log) = by_node[child.index()].and_then(|l| l.log) {
                        json["log"] = json!(log.to_string());
                        json["log_name"] = json!(name_of(&log));
                    }
                }
                NodeKind::Cap(cap) => {
                    json["kind"] = json!("cap");
                    json["cap"] = json!(cap.keyword());
                    let enabled = parent[child.index()]
                        .is_none_or(|p| matches!(ast.node(p).kind(), NodeKind::Ambient));
                    json["enabled"] = json!(enabled);
                }
            }
            nodes.push(json);
            *shown += 1;
            queue.push_back((child, nodes.len() - 1, path));
        }
    };
    expand(
        first,
        begin,
        path_prefix,
        None,
        &mut nodes,
        &mut queue,
        &mut shown,
    );
    while let Some((node, at, path)) = queue.pop_front() {
        let children: Vec<NodeId> = ast.children(Some(node)).collect();
        if children.is_empty() {
            continue;
        }
        if shown + children.len() > query.max_nodes {
            nodes[at]["hidden"] = json!(size[node.index()] - 1);
            continue;
        }
        expand(
            children,
            0,
            format!("{path}."),
            Some(at),
            &mut nodes,
            &mut queue,
            &mut shown,
        );
    }
    Ok((nodes, shown, more))
}
