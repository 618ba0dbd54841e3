//! What each host of a deployment needs to know (`spec/network.md` §8, "Need to
//! know"), worked out from the plan: its grant.
//!
//! A host is entitled to the whole subtree of each ambient it hosts: the logs it
//! writes an event of (a mover's log joins the subtree it enters) and, to any depth,
//! the logs announced in them, with their bytecode. It also gets the `create` and
//! `deploy` events on the path from the root to each of those ambients'
//! announcing `deploy`, so that it can trace its part back to the program, and
//! nothing else of its ancestors or siblings: an event of its grant that refers to
//! an event outside it holds that event's CID alone (a bare ref).
//!
//! The grant is the unit of everything a delegate receives (its blocks, its events,
//! the events and CIDs it is told), and the measure of what it must not receive.

use std::collections::{BTreeSet, HashMap};

use amb_bytecode::{Block, Cid, CompiledProgram, Opcode};

use crate::plan::{EventIx, HostIx, LogIx, Plan};

/// What one host of a deployment is entitled to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostGrant {
    /// The logs whose events the host holds: every log it writes an event of, and
    /// every log announced (to any depth) in one of them.
    pub logs: BTreeSet<LogIx>,
    /// The `create` and `deploy` events on the path from the root to the announcing
    /// `deploy` of each log of the grant whose parent is outside it.
    pub path: BTreeSet<EventIx>,
    /// Events outside the grant that an event of the grant refers to: the host
    /// learns their CIDs, never their content.
    pub bare: BTreeSet<EventIx>,
    /// The bytecode blocks reached from the block of each log of the grant.
    pub blocks: BTreeSet<Cid>,
}

impl HostGrant {
    /// Whether the host may hold event `index` (its content, not just its CID).
    pub fn holds_event(&self, plan: &Plan, index: EventIx) -> bool {
        self.path.contains(&index)
            || plan
                .events
                .get(index)
                .is_some_and(|e| self.logs.contains(&e.log))
    }
}

/// The grant of `host` in the deployment planned as `plan` of `compiled`.
pub fn host_grant(plan: &Plan, compiled: &CompiledProgram, host: HostIx) -> HostGrant {
    let mut logs: BTreeSet<LogIx> = plan
        .events
        .iter()
        .filter(|e| e.writer == host)
        .map(|e| e.log)
        .collect();
    // Descendants: a log whose announcing deploy is in a log of the grant. The
    // plan lists every log after the log that announces it.
    for (index, log) in plan.logs.iter().enumerate() {
        if let Some(parent) = log.parent {
            if logs.contains(&plan.events[parent].log) {
                logs.insert(index);
            }
        }
    }
    let mut path = BTreeSet::new();
    for &log in &logs {
        if let Some(announce) = plan.logs[log].parent {
            if !logs.contains(&plan.events[announce].log) {
                trace_path(plan, announce, &mut path);
            }
        }
    }
    let grant_has = |i: EventIx| logs.contains(&plan.events[i].log) || path.contains(&i);
    let bare = plan
        .events
        .iter()
        .filter(|e| logs.contains(&e.log))
        .flat_map(|e| e.refs.iter().copied().chain(e.at.map(|(anchor, _)| anchor)))
        .filter(|&r| !grant_has(r))
        .collect();
    let blocks = reached(compiled, logs.iter().map(|&l| plan.logs[l].block));
    HostGrant {
        logs,
        path,
        bare,
        blocks,
    }
}

/// Adds to `path` the events from `event` (an announcing `deploy`) back to the
/// root's `create`: each `deploy`'s block instance (its `at` anchor, a body
/// `deploy`), each body `deploy`'s `create`, each `create`'s announcing `deploy`.
fn trace_path(plan: &Plan, event: EventIx, path: &mut BTreeSet<EventIx>) {
    let mut at = Some(event);
    while let Some(index) = at {
        if !path.insert(index) {
            return;
        }
        let e = &plan.events[index];
        at =
            match (e.opcode, e.at) {
                (Opcode::Deploy, Some((anchor, _))) => Some(anchor),
                (Opcode::Deploy, None) => e.refs.iter().copied().find(|&r| {
                    plan.events[r].opcode == Opcode::Create && plan.events[r].log == e.log
                }),
                (Opcode::Create, _) => plan.logs[e.log].parent,
                _ => None,
            };
    }
}

/// Every block of `compiled` reached from `roots`.
fn reached(compiled: &CompiledProgram, roots: impl Iterator<Item = Cid>) -> BTreeSet<Cid> {
    let by_cid: HashMap<Cid, &[u8]> = compiled
        .blocks
        .iter()
        .map(|(cid, bytes)| (*cid, bytes.as_slice()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut frontier: Vec<Cid> = roots.collect();
    while let Some(cid) = frontier.pop() {
        if !seen.insert(cid) {
            continue;
        }
        if let Some(block) = by_cid.get(&cid).and_then(|b| Block::decode(b).ok()) {
            frontier.extend(block.children());
        }
    }
    seen
}
