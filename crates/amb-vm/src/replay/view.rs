//! The read side of a replayed state for viewers (the inspector), none of which
//! builds the whole term: a bounded breadth-first walk of the tree from any node
//! ([`Replay::tree_view`]), a count of the whole state with who hosts which slices
//! ([`Replay::census`]), what one step changed ([`changes`]) and the current host
//! of every log ([`Replay::log_hosts`]).
//!
//! The tree is the one [`Replay::to_ast`] builds, in the same order, so a path
//! (child indices from the top level) names the same node in both: an ambient's
//! children are its capabilities (each with the instructions that follow it) then
//! its child ambients; a `deploy` not yet fired is an ambient whose children are
//! the instructions that follow it, then its block's first instructions.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::Arc,
};

use amb_bytecode::{Cid, Opcode};
use amb_log::PublicKey;
use amb_syntax::CapKind;

use super::{Instance, Replay, Source, cap_kind};

/// What names a node across the states of one program: a live ambient (its
/// number in the replay, which it keeps until it is opened), or an instruction of
/// a started block instance (the body `deploy` event that started it and the
/// instruction's index: a capability keeps it from waiting to enabled to
/// consumed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeRef {
    /// A live ambient.
    Ambient(usize),
    /// Instruction `.1` of the instance started by event `.0`.
    Instruction(Cid, u32),
}

/// What a node of a view is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewKind {
    /// An ambient: its name and, for a live one with its own log, that log.
    Ambient { name: Arc<str>, log: Option<Cid> },
    /// A capability: its kind, target, and whether it is enabled (not under a
    /// prefix).
    Cap {
        kind: CapKind,
        target: Option<Arc<str>>,
        enabled: bool,
    },
}

/// One node of a [`TreeView`].
#[derive(Clone, Debug)]
pub struct ViewNode {
    /// Child indices from the top level, `0.2.1`.
    pub path: String,
    /// Its parent's index in the view, `None` for the view's first level.
    pub parent: Option<usize>,
    /// What names it across states, when something does.
    pub id: Option<NodeRef>,
    pub kind: ViewKind,
    /// The key that writes its log: its own log's host, else its parent's.
    pub host: Option<PublicKey>,
    /// How many of its children the view does not show (0: all, or none).
    pub hidden: usize,
}

/// A bounded part of the tree: see [`Replay::tree_view`].
#[derive(Clone, Debug)]
pub struct TreeView {
    pub nodes: Vec<ViewNode>,
    /// When the first level has more children than fit: the first not shown and
    /// how many are left.
    pub more: Option<(usize, usize)>,
}

/// The whole state counted: see [`Replay::census`].
#[derive(Clone, Debug)]
pub struct Census {
    /// Tree nodes (what [`Replay::to_ast`] would build), or at least that many
    /// when not `complete`.
    pub nodes: usize,
    /// Whether the whole state was counted (not stopped at the limit).
    pub complete: bool,
    /// Each host with how many slices (logs of live ambients, the program's
    /// included) it writes, and the first of them, in tree order.
    pub hosts: Vec<HostedSlices>,
}

/// The slices one key hosts.
#[derive(Clone, Debug)]
pub struct HostedSlices {
    pub host: PublicKey,
    pub count: usize,
    pub first: Vec<Cid>,
}

/// A path that names no node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the path names no node of the state")]
pub struct NoSuchPath;

/// What one step removed from the tree (or moved away from where it was).
#[derive(Clone, Debug)]
pub struct Removed {
    pub id: NodeRef,
    /// The ambient it was in (0: the top level).
    pub parent: usize,
    pub kind: ViewKind,
}

/// What changed between two states of one program: see [`changes`].
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// Live ambients and capabilities new where they are (created, moved in,
    /// enabled).
    pub added: Vec<NodeRef>,
    /// Live ambients and capabilities gone from where they were (consumed,
    /// opened, moved away).
    pub removed: Vec<Removed>,
}

/// A node while walking.
#[derive(Clone)]
enum Walked {
    Live(usize),
    Instruction {
        instance: Arc<Instance>,
        anchor: Option<Cid>,
        index: u32,
    },
}

/// Blocks read while walking, by CID (`None`: the source does not have it).
type Blocks = HashMap<Cid, Option<Arc<Instance>>>;

impl Replay {
    /// The block instance of `cid`: the replay's own, else read from `source`.
    fn instance_of(
        &self,
        cid: Cid,
        source: &dyn Source,
        blocks: &mut Blocks,
    ) -> Option<Arc<Instance>> {
        if let Some(code) = self.code.get(&cid) {
            return Some(Arc::clone(code));
        }
        blocks
            .entry(cid)
            .or_insert_with(|| source.block(&cid).map(|b| Arc::new(Instance::new(b))))
            .clone()
    }

    /// A node's children, in [`Replay::to_ast`]'s order.
    fn children_of(&self, node: &Walked, source: &dyn Source, blocks: &mut Blocks) -> Vec<Walked> {
        match node {
            Walked::Live(amb) => {
                let amb = &self.ambs[*amb];
                let caps = amb.caps.iter().map(|key| Walked::Instruction {
                    instance: Arc::clone(&self.caps[key].instance),
                    anchor: Some(key.0),
                    index: key.1,
                });
                caps.chain(amb.children.iter().map(|&c| Walked::Live(c)))
                    .collect()
            }
            Walked::Instruction {
                instance,
                anchor,
                index,
            } => {
                let mut children: Vec<Walked> = instance.follow[*index as usize]
                    .iter()
                    .map(|&j| Walked::Instruction {
                        instance: Arc::clone(instance),
                        anchor: *anchor,
                        index: j,
                    })
                    .collect();
                if let Some(block) = deployed(instance, *index)
                    && let Some(child) = self.instance_of(block, source, blocks)
                {
                    children.extend(child.follow[0].iter().map(|&j| Walked::Instruction {
                        instance: Arc::clone(&child),
                        anchor: None,
                        index: j,
                    }));
                }
                children
            }
        }
    }

    /// What a node is, under a parent that is an ambient or not.
    fn kind_of(
        &self,
        node: &Walked,
        under_ambient: bool,
        source: &dyn Source,
        blocks: &mut Blocks,
    ) -> ViewKind {
        match node {
            Walked::Live(amb) => ViewKind::Ambient {
                name: self.ambs[*amb]
                    .name
                    .clone()
                    .unwrap_or_else(|| Arc::from("")),
                log: self.ambs[*amb].log,
            },
            Walked::Instruction {
                instance, index, ..
            } => {
                let instruction = &instance.block.instructions[*index as usize];
                match deployed(instance, *index) {
                    Some(block) => {
                        let name = self
                            .instance_of(block, source, blocks)
                            .and_then(|c| c.name.clone())
                            .unwrap_or_else(|| Arc::from("?"));
                        ViewKind::Ambient { name, log: None }
                    }
                    None => ViewKind::Cap {
                        kind: cap_kind(instruction.op),
                        target: instruction.target.name().map(Arc::from),
                        enabled: under_ambient,
                    },
                }
            }
        }
    }

    /// The host of a node whose parent's host is `inherited`.
    fn host_of(&self, node: &Walked, inherited: Option<PublicKey>) -> Option<PublicKey> {
        match node {
            Walked::Live(amb) => match self.ambs[*amb].log {
                Some(log) => self.logs.get(&log).and_then(|state| state.host),
                None => inherited,
            },
            Walked::Instruction { .. } => inherited,
        }
    }

    /// The tree from the node at `path` (child indices from the top level; empty:
    /// the top level), breadth first, at most `max_nodes`: its first level from
    /// child `from` (paged: [`TreeView::more`]), then deeper levels while whole
    /// sets of children fit; a node whose children do not fit says how many are
    /// hidden. Reads only the nodes it shows and the ones on the path.
    pub fn tree_view(
        &self,
        source: &dyn Source,
        path: &[usize],
        from: usize,
        max_nodes: usize,
    ) -> Result<TreeView, NoSuchPath> {
        let mut blocks = Blocks::new();
        let mut start = Walked::Live(0);
        let mut host = self.program_host();
        let mut start_is_ambient = true;
        for &index in path {
            let child = self
                .children_of(&start, source, &mut blocks)
                .into_iter()
                .nth(index)
                .ok_or(NoSuchPath)?;
            host = self.host_of(&child, host);
            start_is_ambient = matches!(
                self.kind_of(&child, false, source, &mut blocks),
                ViewKind::Ambient { .. }
            );
            start = child;
        }
        let prefix: String = path.iter().map(|i| format!("{i}.")).collect();
        let level = self.children_of(&start, source, &mut blocks);
        let begin = from.min(level.len());
        let end = begin.saturating_add(max_nodes).min(level.len());
        let more = (end < level.len()).then(|| (end, level.len() - end));
        let mut nodes: Vec<ViewNode> = Vec::new();
        // (node, its index in `nodes`, whether it is an ambient)
        let mut queue: VecDeque<(Walked, usize, bool)> = VecDeque::new();
        let add = |nodes: &mut Vec<ViewNode>,
                   queue: &mut VecDeque<(Walked, usize, bool)>,
                   blocks: &mut Blocks,
                   children: Vec<Walked>,
                   offset: usize,
                   prefix: &str,
                   parent: Option<usize>,
                   parent_host: Option<PublicKey>,
                   under_ambient: bool| {
            for (k, child) in children.into_iter().enumerate() {
                let kind = self.kind_of(&child, under_ambient, source, blocks);
                let id = match &child {
                    Walked::Live(amb) => Some(NodeRef::Ambient(*amb)),
                    Walked::Instruction {
                        anchor: Some(anchor),
                        index,
                        ..
                    } => Some(NodeRef::Instruction(*anchor, *index)),
                    Walked::Instruction { anchor: None, .. } => None,
                };
                let is_ambient = matches!(kind, ViewKind::Ambient { .. });
                nodes.push(ViewNode {
                    path: format!("{prefix}{}", offset + k),
                    parent,
                    id,
                    kind,
                    host: self.host_of(&child, parent_host),
                    hidden: 0,
                });
                queue.push_back((child, nodes.len() - 1, is_ambient));
            }
        };
        add(
            &mut nodes,
            &mut queue,
            &mut blocks,
            level[begin..end].to_vec(),
            begin,
            &prefix,
            None,
            host,
            start_is_ambient,
        );
        while let Some((node, at, is_ambient)) = queue.pop_front() {
            let children = self.children_of(&node, source, &mut blocks);
            if children.is_empty() {
                continue;
            }
            if nodes.len() + children.len() > max_nodes {
                nodes[at].hidden = children.len();
                continue;
            }
            let prefix = format!("{}.", nodes[at].path);
            let parent_host = nodes[at].host;
            add(
                &mut nodes,
                &mut queue,
                &mut blocks,
                children,
                0,
                &prefix,
                Some(at),
                parent_host,
                is_ambient,
            );
        }
        Ok(TreeView { nodes, more })
    }

    /// Counts the state without building it, stopping past `max_nodes`: its tree
    /// nodes, and each host with how many slices it writes and the first `listed`
    /// of them. Reads each live ambient counted once and each distinct instruction
    /// once.
    pub fn census(&self, source: &dyn Source, listed: usize, max_nodes: usize) -> Census {
        let mut blocks = Blocks::new();
        let mut sizes: HashMap<(usize, u32), usize> = HashMap::new();
        let mut hosts: Vec<HostedSlices> = Vec::new();
        // Keys by reference: a key is large (its decompressed point), and nearly
        // every ambient's host is one met before.
        let mut count_host = |host: Option<&PublicKey>, log: Cid| {
            let Some(host) = host else { return };
            let i = match hosts
                .iter()
                .position(|h| h.host.as_bytes() == host.as_bytes())
            {
                Some(i) => i,
                None => {
                    hosts.push(HostedSlices {
                        host: *host,
                        count: 0,
                        first: Vec::new(),
                    });
                    hosts.len() - 1
                }
            };
            hosts[i].count += 1;
            if hosts[i].first.len() < listed {
                hosts[i].first.push(log);
            }
        };
        count_host(self.program_host().as_ref(), self.root_log);
        let mut nodes = 0usize;
        let mut stack = vec![0usize];
        while let Some(amb) = stack.pop() {
            if nodes > max_nodes {
                break;
            }
            let ambient = &self.ambs[amb];
            for key in &ambient.caps {
                let instance = &self.caps[key].instance;
                nodes += self.static_size(instance, key.1, source, &mut blocks, &mut sizes);
            }
            for &child in &ambient.children {
                nodes += 1;
                if let Some(log) = self.ambs[child].log {
                    count_host(self.logs.get(&log).and_then(|s| s.host.as_ref()), log);
                }
                stack.push(child);
            }
        }
        Census {
            complete: stack.is_empty() && nodes <= max_nodes,
            nodes,
            hosts,
        }
    }

    /// The nodes of instruction `index` of `instance` and of everything that follows
    /// it (with the bodies of the ambients it deploys), memoized by instance and
    /// instruction in `sizes`; iterative.
    fn static_size(
        &self,
        instance: &Arc<Instance>,
        index: u32,
        source: &dyn Source,
        blocks: &mut Blocks,
        sizes: &mut HashMap<(usize, u32), usize>,
    ) -> usize {
        let key = |i: &Arc<Instance>, index: u32| (Arc::as_ptr(i) as usize, index);
        if let Some(&size) = sizes.get(&key(instance, index)) {
            return size;
        }
        let mut stack: Vec<(Arc<Instance>, u32, bool)> = vec![(Arc::clone(instance), index, false)];
        while let Some((inst, i, expanded)) = stack.pop() {
            if sizes.contains_key(&key(&inst, i)) {
                continue;
            }
            let mut children: Vec<(Arc<Instance>, u32)> = inst.follow[i as usize]
                .iter()
                .map(|&j| (Arc::clone(&inst), j))
                .collect();
            if let Some(block) = deployed(&inst, i)
                && let Some(child) = self.instance_of(block, source, blocks)
            {
                children.extend(child.follow[0].iter().map(|&j| (Arc::clone(&child), j)));
            }
            if expanded {
                let size = 1 + children
                    .iter()
                    .map(|(c, j)| sizes.get(&key(c, *j)).copied().unwrap_or(0))
                    .sum::<usize>();
                sizes.insert(key(&inst, i), size);
            } else {
                stack.push((Arc::clone(&inst), i, true));
                for (c, j) in children {
                    if !sizes.contains_key(&key(&c, j)) {
                        stack.push((c, j, false));
                    }
                }
            }
        }
        sizes[&key(instance, index)]
    }

    /// Every log the replay has opened, with the key that writes its next event
    /// (its host now: after its ambient moved, the host of the log it moved into).
    pub fn log_hosts(&self) -> Vec<(Cid, Option<PublicKey>)> {
        self.logs
            .iter()
            .map(|(log, state)| (*log, state.host))
            .collect()
    }

    /// A live capability's kind, under its ambient.
    fn cap_view(&self, key: &(Cid, u32)) -> ViewKind {
        let cap = &self.caps[key];
        ViewKind::Cap {
            kind: cap.kind,
            target: cap.instruction(key.1).target.name().map(Arc::from),
            enabled: true,
        }
    }

    /// A live ambient's kind.
    fn ambient_view(&self, amb: usize) -> ViewKind {
        ViewKind::Ambient {
            name: self.ambs[amb].name.clone().unwrap_or_else(|| Arc::from("")),
            log: self.ambs[amb].log,
        }
    }
}

/// The block that instruction `index` of `instance` deploys, if it is a `deploy`.
fn deployed(instance: &Instance, index: u32) -> Option<Cid> {
    let instruction = &instance.block.instructions[index as usize];
    match instruction.target {
        amb_bytecode::Target::Block(block) if instruction.op == Opcode::Deploy => Some(block),
        _ => None,
    }
}

/// What changed from `before` to `after`, a later state of the same replay (one
/// step apart, for the inspector), read only in the ambients that held `consumed`
/// (the capabilities the steps between consumed), their parents, and the parents of
/// the ambients created since. Only what really changed is named:
/// - added: capabilities enabled since, ambients created since (the top of each
///   new subtree, not what is inside it), and ambients moved in (`in`, `out`);
/// - removed: capabilities consumed (no longer anywhere), ambients opened, and
///   ambients moved away.
///
/// What an opened ambient held is not named: it is where it was, its ambient's
/// boundary gone (the opened ambient is named removed).
pub fn changes(before: &Replay, after: &Replay, consumed: &[(Cid, u32)]) -> Changes {
    let mut touched: Vec<usize> = Vec::new();
    let touch = |amb: usize, touched: &mut Vec<usize>| {
        if !touched.contains(&amb) {
            touched.push(amb);
        }
    };
    let mut owners = Vec::new();
    for key in consumed {
        if let Some(cap) = before.caps.get(key) {
            owners.push(cap.owner);
        }
    }
    for &owner in &owners {
        touch(owner, &mut touched);
        for replay in [before, after] {
            if owner < replay.ambs.len()
                && let Some(parent) = replay.ambs[owner].parent
            {
                touch(parent, &mut touched);
            }
        }
    }
    for amb in before.ambs.len()..after.ambs.len() {
        if let Some(parent) = after.ambs[amb].parent {
            touch(parent, &mut touched);
        }
    }
    let mut changes = Changes::default();
    let existed = |amb: usize| amb < before.ambs.len();
    // Whether an ambient was inside one that the steps opened.
    let in_opened = |amb: usize| {
        before.ambs[amb]
            .parent
            .is_some_and(|p| existed(p) && !after.ambs[p].alive)
    };
    for &amb in &touched {
        if !existed(amb) {
            continue;
        }
        let (was, is) = (&before.ambs[amb], &after.ambs[amb]);
        let empty_caps = BTreeSet::new();
        let empty_children = BTreeSet::new();
        let (is_caps, is_children) = if is.alive {
            (&is.caps, &is.children)
        } else {
            (&empty_caps, &empty_children)
        };
        for key in is_caps.difference(&was.caps) {
            // Not one moved up out of an opened ambient.
            if before.caps.get(key).is_none() {
                changes.added.push(NodeRef::Instruction(key.0, key.1));
            }
        }
        for key in was.caps.difference(is_caps) {
            // Consumed, not moved up by an `open`.
            if after.caps.get(key).is_none() {
                changes.removed.push(Removed {
                    id: NodeRef::Instruction(key.0, key.1),
                    parent: amb,
                    kind: before.cap_view(key),
                });
            }
        }
        for &child in is_children.difference(&was.children) {
            if !existed(child) || !in_opened(child) {
                changes.added.push(NodeRef::Ambient(child));
            }
        }
        for &child in was.children.difference(is_children) {
            // Opened or moved away, not moved up by the `open` of this one.
            if is.alive || !after.ambs[child].alive {
                changes.removed.push(Removed {
                    id: NodeRef::Ambient(child),
                    parent: amb,
                    kind: before.ambient_view(child),
                });
            }
        }
    }
    changes
}
