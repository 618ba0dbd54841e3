//! The JSON the inspector answers with, read from a [`Timeline`]: a program's
//! events (paged), the state after a step as a flat list of tree nodes (at most
//! `max_nodes`, deeper subtrees fetched by path), the canonical term, the diff
//! between two steps and the step's redex. `spec/network.md` §7 lists the
//! fields.

use std::collections::{BTreeMap, HashMap};

use amb_bytecode::{Cid, Target};
use amb_log::{AnyEvent, PublicKey};
use amb_vm::{
    replay::{NodeRef, ViewKind, ViewNode},
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
    #[error("step {step} is past the end: the run has {total} steps (the last is step {total})")]
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
pub(crate) struct Peers(HashMap<[u8; 32], String>);

impl Peers {
    /// The peer id of `key`.
    pub(crate) fn of(&mut self, key: &PublicKey) -> String {
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
pub(crate) fn event_json(cid: &Cid, e: &AnyEvent, log_name: &str) -> Value {
    event_json_by(cid, e, log_name, &peer(e.creator()))
}

/// [`event_json`] with the writer's peer id worked out already. An effect event
/// (`spec/system.md` §6) has `op` `effect`, its `service` and the value blocks of
/// its `args` and `result`.
fn event_json_by(cid: &Cid, e: &AnyEvent, log_name: &str, peer: &str) -> Value {
    let (op, target, at, payload) = match e {
        AnyEvent::Op(e) => (
            e.op().opcode().mnemonic(),
            target_text(e.op().target()),
            e.at().map(|(d, i)| json!([d.to_string(), i])),
            e.payload().map(|p| p.to_string()),
        ),
        AnyEvent::Effect(e) => ("effect", e.service().to_string(), None, None),
    };
    let mut json = json!({
        "cid": cid.to_string(),
        "log": e.log().to_string(),
        "log_name": log_name,
        "seq": e.seq(),
        "op": op,
        "target": target,
        "at": at,
        "refs": e.refs().iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "payload": payload,
        "writer": e.creator().to_string(),
        "peer": peer,
        "signature": hex::encode(e.signature().to_bytes()),
    });
    if let AnyEvent::Effect(e) = e {
        json["service"] = json!(e.service());
        json["args"] = json!(e.args().to_string());
        json["result"] = json!(e.result().to_string());
    }
    json
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
    let (start, end, next) = page_of(events.len(), after, limit);
    let mut names: HashMap<Cid, String> = HashMap::new();
    let mut peers = Peers::default();
    let page: Vec<Value> = events[start..end]
        .iter()
        .enumerate()
        .map(|(i, (cid, e))| {
            let name = names
                .entry(e.log())
                .or_insert_with(|| log_name(timeline, &e.log()));
            let mut json = event_json_by(cid, e, name, &peers.of(e.creator()));
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
        "next": next,
    })
}

/// The page of `total` items after index `after` (from the first when `None`), at
/// most `limit`: its first and end index, and the `next` cursor (the page's last
/// index; `None` at the end).
fn page_of(total: usize, after: Option<usize>, limit: usize) -> (usize, usize, Option<usize>) {
    let start = after.map_or(0, |a| a.saturating_add(1)).min(total);
    let end = start.saturating_add(limit).min(total);
    (start, end, (end < total && end > start).then(|| end - 1))
}

/// A page of a delegate's part's events (`amb_vm::part`), in the shape of
/// [`events_page`]: not replayed (`step` null), not verified under a program
/// (`verified` false: each was checked against the order when walked).
pub(crate) fn part_events_page(
    part: Cid,
    events: &[amb_vm::part::PartEvent],
    after: Option<usize>,
    limit: usize,
) -> Value {
    let (start, end, next) = page_of(events.len(), after, limit);
    let mut peers = Peers::default();
    let page: Vec<Value> = events[start..end]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut json =
                event_json_by(&p.cid, &p.event, &p.log_name, &peers.of(p.event.creator()));
            json["index"] = json!(start + i);
            json["step"] = Value::Null;
            json["verified"] = json!(false);
            json
        })
        .collect();
    json!({
        "address": format!("/amb/{part}"),
        "part": true,
        "total": events.len(),
        "events": page,
        "next": next,
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

/// A state with more tree nodes than this has a term over [`INLINE_TERM_BYTES`]
/// (every node prints at least 3 bytes: `a[]`, `in_`, `in a`, ...): a state answer
/// does not build its term, nor count the state past it (the count is the larger
/// part of a state answer's time).
const FULL_TERM_NODES: usize = INLINE_TERM_BYTES / 3;

/// The most entries of each list of a step's changes.
const MAX_CHANGES: usize = 1000;

/// The state after a step: `{"address", "step", "total_steps", "events", "redex",
/// "changes", "term"?, "term_bytes", "hosts", "nodes", "shown", "more",
/// "total_nodes", "value"?, "stuck"?}`. Only the nodes shown are built (and the
/// whole term where the state is small, or at the last step for its value).
pub(crate) fn state(
    timeline: &Timeline<'_>,
    moment: Moment,
    query: &TreeQuery,
) -> Result<Value, ViewError> {
    let step = step_of(timeline, moment)?;
    let path_text = query.path.clone().unwrap_or_default();
    let path = parse_path(&path_text)?;
    // One seek: the state before the step, then the step's events on a copy of it
    // (the copy shares the state's maps).
    let before = step
        .checked_sub(1)
        .map(|k| timeline.replay_at(Moment::Step(k)))
        .transpose()?;
    let replay = match &before {
        Some(before) => {
            let mut after = before.clone();
            timeline.advance(&mut after, step)?;
            after
        }
        None => timeline.replay_at(Moment::Step(step))?,
    };
    let source = timeline.source();
    // Counted up to the size whose term is shown inline: past it, the answer's
    // time would grow with the state.
    let census = replay.census(source, MAX_SLICE_NAMES, FULL_TERM_NODES);
    let last = step == timeline.total_steps();
    let ast = (census.complete || last).then(|| replay.to_ast(source));
    let total_nodes = ast.as_ref().map(|ast| ast.len());
    let term_bytes = ast
        .as_ref()
        .map(|ast| amb_syntax::to_compact_string(ast).len());
    // Canonical order changes no character: the length is known before sorting,
    // which is done only for a term shown inline.
    let term = ast
        .as_ref()
        .filter(|_| term_bytes.is_some_and(|b| b <= INLINE_TERM_BYTES))
        .map(|ast| {
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
    let hosts: BTreeMap<String, Value> = census
        .hosts
        .iter()
        .map(|h| {
            let names: Vec<String> = h.first.iter().map(&mut name_of).collect();
            (
                peers.of(&h.host),
                json!({ "count": h.count, "slices": names }),
            )
        })
        .collect();
    let view = replay
        .tree_view(source, &path, query.from, query.max_nodes)
        .map_err(|_| ViewError::NoSuchPath(path_text.clone()))?;
    let nodes: Vec<Value> = view
        .nodes
        .iter()
        .map(|n| node_json(n, &mut name_of, &mut peers))
        .collect();
    let (redex, consumed) = redex(timeline, step, &mut name_of);
    let changes = match &before {
        None => Value::Null,
        Some(before) => changes_json(
            &amb_vm::replay::changes(before, &replay, &consumed),
            &consumed,
        ),
    };
    let mut answer = json!({
        "address": format!("/amb/{}", timeline.program()),
        "step": step,
        "total_steps": timeline.total_steps(),
        "events": timeline.events().len(),
        "redex": redex,
        "changes": changes,
        "term_bytes": term_bytes,
        "hosts": hosts,
        "shown": nodes.len(),
        "nodes": nodes,
        "more": view.more.map(|(from, count)| json!({ "from": from, "count": count })),
        "total_nodes": total_nodes,
        "hosts_complete": census.complete,
    });
    if let Some(term) = term {
        answer["term"] = json!(term);
    }
    if let (true, Some(ast)) = (last, &ast) {
        answer["value"] = amb_vm::value_json(ast);
        answer["stuck"] = super::stuck::explain(ast);
    }
    Ok(answer)
}

/// A path as child indices (`0.2.1`; empty: the top level).
fn parse_path(text: &str) -> Result<Vec<usize>, ViewError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('.')
        .map(|part| {
            part.parse()
                .map_err(|_| ViewError::NoSuchPath(text.to_string()))
        })
        .collect()
}

/// A node's name across states, as text: `a<n>` for a live ambient, `i<anchor>.<i>`
/// for an instruction of a started instance (the anchor shortened to the last 12
/// characters of its CID).
fn node_id(id: &NodeRef) -> String {
    match id {
        NodeRef::Ambient(amb) => format!("a{amb}"),
        NodeRef::Instruction(anchor, index) => {
            let text = anchor.to_string();
            format!("i{}.{index}", &text[text.len().saturating_sub(12)..])
        }
    }
}

/// A node's kind as JSON fields, onto `json`.
fn kind_json(kind: &ViewKind, json: &mut Value, name_of: &mut dyn FnMut(&Cid) -> String) {
    match kind {
        ViewKind::Ambient { name, log } => {
            json["kind"] = json!("ambient");
            json["name"] = json!(&**name);
            if let Some(log) = log {
                json["log"] = json!(log.to_string());
                json["log_name"] = json!(name_of(log));
            }
        }
        ViewKind::Cap {
            kind,
            target,
            enabled,
        } => {
            json["kind"] = json!("cap");
            json["cap"] = json!(kind.keyword());
            json["name"] = json!(target.as_deref());
            json["enabled"] = json!(enabled);
        }
    }
}

/// One node of a state answer.
fn node_json(node: &ViewNode, name_of: &mut dyn FnMut(&Cid) -> String, peers: &mut Peers) -> Value {
    let mut json = json!({
        "path": node.path,
        "parent": node.parent,
        "host": node.host.as_ref().map(|h| peers.of(h)),
    });
    if let Some(id) = &node.id {
        json["id"] = json!(node_id(id));
    }
    kind_json(&node.kind, &mut json, name_of);
    if node.hidden > 0 {
        json["hidden"] = json!(node.hidden);
    }
    json
}

/// The step's redex as JSON (its two events, as the events route gives them), and
/// the capabilities it consumed (the events' `at`).
fn redex(
    timeline: &Timeline<'_>,
    step: u64,
    name_of: &mut dyn FnMut(&Cid) -> String,
) -> (Value, Vec<(Cid, u32)>) {
    let Some((first, second)) = timeline.redex(step) else {
        return (Value::Null, Vec::new());
    };
    // The second half is where the step is; the first half comes before it.
    let at = timeline.second_half_position(step).unwrap_or(0);
    let events = timeline.events();
    let mut consumed = Vec::new();
    let mut event = |cid: &Cid| {
        let i = timeline.position_of(cid).filter(|&i| i <= at)?;
        let (cid, e) = &events[i];
        consumed.extend(e.as_op().and_then(|e| e.at()));
        let mut json = event_json(cid, e, &name_of(&e.log()));
        json["index"] = json!(i);
        Some(json)
    };
    let first = first.as_ref().and_then(&mut event);
    let second = event(&second);
    (json!({ "first": first, "second": second }), consumed)
}

/// A step's changes: `{"added": [id], "removed": [{"id", "parent", "kind", "name",
/// "cap"?, "redex"}], "more"}`; `parent` is the id of the ambient it was in (null:
/// the top level), `redex` whether the step consumed it.
fn changes_json(changes: &amb_vm::replay::Changes, consumed: &[(Cid, u32)]) -> Value {
    let added: Vec<String> = changes
        .added
        .iter()
        .take(MAX_CHANGES)
        .map(node_id)
        .collect();
    let mut none = |_: &Cid| String::new();
    let removed: Vec<Value> = changes
        .removed
        .iter()
        .take(MAX_CHANGES)
        .map(|r| {
            let redex = matches!(r.id, NodeRef::Instruction(d, i) if consumed.contains(&(d, i)));
            let mut json = json!({
                "id": node_id(&r.id),
                "parent": (r.parent != 0).then(|| node_id(&NodeRef::Ambient(r.parent))),
                "redex": redex,
            });
            kind_json(&r.kind, &mut json, &mut none);
            if let Some(object) = json.as_object_mut() {
                object.remove("log_name");
            }
            json
        })
        .collect();
    let more = changes.added.len().saturating_sub(MAX_CHANGES)
        + changes.removed.len().saturating_sub(MAX_CHANGES);
    json!({ "added": added, "removed": removed, "more": more })
}
