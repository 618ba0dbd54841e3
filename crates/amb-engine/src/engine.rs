//! The reduction loop: a queue of capabilities to try, wait lists keyed by what a
//! capability lacks, and the three rules.
//!
//! Scheduling is deterministic: capabilities are tried from a work list, most
//! recently added first (the program's, in source pre-order; then each step's
//! released continuations and the capabilities whose context changed), which keeps a
//! reduction local in memory. A capability that finds
//! no partner waits under the one key whose change could enable it:
//!
//! | capability of `n` | waits for | woken when |
//! |---|---|---|
//! | `in m` | `In(parent n, m)` | an ambient named `m` arrives in `parent n`, or one there gains an `in_` |
//! | `out m` | `Out(parent n)` | `parent n` gains an `out_` |
//! | `open m` | `Open(n, m)` | an ambient named `m` arrives in `n`, or one there gains `open_` |
//!
//! and every `in`/`out` of an ambient that moves is tried again. So finding the next
//! redex never scans the tree: a step costs the continuations it releases plus O(1)
//! hash lookups, apart from wake-ups of capabilities that then fail again.

use std::collections::VecDeque;

use amb_syntax::{Ast, CapKind, NodeId, NodeKind, Span, Symbol};
use hashbrown::HashMap;

mod bring;
pub use bring::BringInError;

use crate::{
    limits::{EngineError, Limits},
    state::{AmbId, CapId, NONE, State, is_co},
};

/// Which rule a step applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `n[in m.P|Q] | m[in_ n.R|S] → m[n[P|Q]|R|S]`
    In,
    /// `m[n[out m.P|Q] | out_ n.R|S] → n[P|Q] | m[R|S]`
    Out,
    /// `open n.P | n[open_.Q|R] → P|Q|R`
    Open,
}

/// One reduction step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step {
    /// The rule.
    pub rule: Rule,
    /// The capability consumed (`in`, `out` or `open`).
    pub cap: CapId,
    /// The co-capability consumed (`in_`, `out_` or `open_`).
    pub co_cap: CapId,
    /// The ambient whose capability fired: the mover for `in`/`out`, the opener
    /// (possibly the root) for `open`.
    pub subject: AmbId,
    /// The other ambient: entered (`in`), left (`out`) or dissolved (`open`).
    pub object: AmbId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum WaitKey {
    In(u32, u32),
    Out(u32),
    Open(u32, u32),
}

/// Capabilities waiting under each key: singly linked lists of 8-byte nodes in one
/// arena with a free list, so a waiting capability costs no allocation of its own.
#[derive(Debug, Default)]
struct WaitLists {
    heads: HashMap<WaitKey, u32, foldhash::fast::RandomState>,
    /// `(capability, next node)`.
    nodes: Vec<(u32, u32)>,
    free: u32,
}

impl WaitLists {
    fn new() -> WaitLists {
        WaitLists {
            free: NONE,
            ..WaitLists::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    fn push(&mut self, key: WaitKey, cap: u32) {
        let head = self.heads.get(&key).copied().unwrap_or(NONE);
        let node = if self.free != NONE {
            let node = self.free;
            self.free = self.nodes[node as usize].1;
            self.nodes[node as usize] = (cap, head);
            node
        } else {
            self.nodes.push((cap, head));
            (self.nodes.len() - 1) as u32
        };
        self.heads.insert(key, node);
    }

    /// Removes the list of `key`, appending its capabilities to `out`, oldest first.
    fn take(&mut self, key: WaitKey, out: &mut Vec<u32>) {
        let Some(mut node) = self.heads.remove(&key) else {
            return;
        };
        let start = out.len();
        while node != NONE {
            let (cap, next) = self.nodes[node as usize];
            out.push(cap);
            self.nodes[node as usize].1 = self.free;
            self.free = node;
            node = next;
        }
        out[start..].reverse();
    }

    fn memory_bytes(&self) -> usize {
        self.heads.capacity() * (size_of::<(WaitKey, u32)>() + 1) + self.nodes.capacity() * 8
    }
}

/// A running program.
#[derive(Debug)]
pub struct Engine<'a> {
    ast: &'a Ast,
    state: State,
    limits: Limits,
    queue: VecDeque<u32>,
    waiting: WaitLists,
    steps: u64,
    scratch: Vec<(NodeId, u32, u64)>,
    woken: Vec<u32>,
    origins: Option<Origins>,
    next_serial: u64,
    /// Names of ambients brought in from outside the run (`bring.rs`), numbered
    /// after the program's.
    extra_names: Vec<Box<str>>,
}

/// Where instances come from, kept when a run is recorded ([`Engine::with_origins`]):
/// a serial number per ambient instance that is never reused (the root is 0), the AST
/// node of each ambient, and for each capability and ambient the serial of the block
/// instance (the ambient instance, or the root) whose code it was written in.
#[derive(Debug, Default)]
struct Origins {
    amb_serial: Vec<u64>,
    amb_node: Vec<u32>,
    amb_origin: Vec<u64>,
    cap_origin: Vec<u64>,
    created: Vec<AmbId>,
    moved: Vec<AmbId>,
}

fn set<T: Copy + Default>(table: &mut Vec<T>, index: u32, value: T) {
    let index = index as usize;
    if table.len() <= index {
        table.resize(index + 1, T::default());
    }
    table[index] = value;
}

impl<'a> Engine<'a> {
    /// Instantiates a program: every top-level part becomes an instance in the root.
    pub fn new(ast: &'a Ast, limits: Limits) -> Result<Engine<'a>, EngineError> {
        Engine::build(ast, limits, false)
    }

    /// Like [`Engine::new`], and also records where every instance comes from
    /// (serials, AST nodes, block instances, ambients created by each step), which
    /// the executor needs to write events. Costs about 24 bytes per instance.
    pub fn with_origins(ast: &'a Ast, limits: Limits) -> Result<Engine<'a>, EngineError> {
        Engine::build(ast, limits, true)
    }

    fn build(ast: &'a Ast, limits: Limits, origins: bool) -> Result<Engine<'a>, EngineError> {
        let (ambients, capabilities) = eager_counts(ast);
        let mut engine = Engine {
            ast,
            state: State::with_capacity(ambients, capabilities),
            limits,
            queue: VecDeque::new(),
            waiting: WaitLists::new(),
            steps: 0,
            scratch: Vec::new(),
            woken: Vec::new(),
            origins: origins.then(Origins::default),
            next_serial: 1,
            extra_names: Vec::new(),
        };
        if let Some(o) = &mut engine.origins {
            set(&mut o.amb_serial, 0, 0);
            set(&mut o.amb_node, 0, NONE);
        }
        engine.instantiate(None, AmbId::ROOT.0, 0);
        engine.check_memory()?;
        Ok(engine)
    }

    /// The program text the instances come from.
    pub fn ast(&self) -> &'a Ast {
        self.ast
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Live ambient instances, the root included.
    pub fn live_ambients(&self) -> usize {
        self.state.live_ambs
    }

    /// Live (not yet consumed) capability instances.
    pub fn live_capabilities(&self) -> usize {
        self.state.live_caps
    }

    /// Whether the current term still holds a capability anywhere.
    pub fn is_stuck(&self) -> bool {
        self.state.live_caps > 0
    }

    /// The name of an ambient instance (`None` for the root).
    pub fn ambient_name(&self, amb: AmbId) -> Option<&str> {
        let name = self.state.amb(amb.0).name;
        (name != NONE).then(|| self.name_text(name))
    }

    /// The parent of an ambient instance (`None` for the root or a dissolved one).
    pub fn parent(&self, amb: AmbId) -> Option<AmbId> {
        let parent = self.state.amb(amb.0).parent;
        (parent != NONE).then_some(AmbId(parent))
    }

    /// The never-reused serial of an ambient instance (0 for the root). Needs
    /// [`Engine::with_origins`].
    pub fn ambient_serial(&self, amb: AmbId) -> u64 {
        self.origins().amb_serial[amb.index()]
    }

    /// The AST ambient node an ambient instance comes from (`None` for the root).
    /// Needs [`Engine::with_origins`].
    pub fn ambient_node(&self, amb: AmbId) -> Option<NodeId> {
        let node = self.origins().amb_node[amb.index()];
        (node != NONE).then(|| self.ast.node_id(node as usize))
    }

    /// The serial of the block instance whose `deploy` instruction created an ambient
    /// instance (its parent's, or one it was released into). Needs
    /// [`Engine::with_origins`].
    pub fn ambient_origin(&self, amb: AmbId) -> u64 {
        self.origins().amb_origin[amb.index()]
    }

    /// The serial of the block instance a capability instance was written in. Needs
    /// [`Engine::with_origins`].
    pub fn capability_origin(&self, cap: CapId) -> u64 {
        self.origins().cap_origin[cap.index()]
    }

    /// The ambients created by the last step (by [`Engine::new`] before any step), in
    /// creation order (parents before their children). Needs [`Engine::with_origins`].
    pub fn created(&self) -> &[AmbId] {
        &self.origins().created
    }

    /// The ambients the last step moved into the opener because it dissolved their
    /// parent (empty unless the step was an `open`). Needs [`Engine::with_origins`].
    pub fn moved_by_open(&self) -> &[AmbId] {
        &self.origins().moved
    }

    /// The child ambients of an ambient instance.
    pub fn children(&self, amb: AmbId) -> impl Iterator<Item = AmbId> + '_ {
        let mut next = self.state.first_child(amb.0);
        std::iter::from_fn(move || {
            (next != NONE).then(|| {
                let id = AmbId(next);
                next = self.state.next_sibling(next);
                id
            })
        })
    }

    fn origins(&self) -> &Origins {
        self.origins
            .as_ref()
            .expect("origins are recorded only by Engine::with_origins")
    }

    /// The ambient holding a live capability instance.
    pub fn capability_owner(&self, cap: CapId) -> AmbId {
        AmbId(self.state.cap(cap.0).owner)
    }

    /// The kind of a capability instance.
    pub fn capability_kind(&self, cap: CapId) -> CapKind {
        self.state.cap(cap.0).kind()
    }

    /// The AST node (prefix) a capability instance comes from.
    pub fn capability_node(&self, cap: CapId) -> NodeId {
        self.state.cap(cap.0).node
    }

    /// The target name of a capability instance (`None` for `open_` and wildcards).
    pub fn capability_target(&self, cap: CapId) -> Option<&'a str> {
        let target = self.state.cap(cap.0).target();
        (target != NONE).then(|| self.ast.name_text(self.ast.symbol_at(target as usize)))
    }

    /// Takes one step; `Ok(None)` when no redex is left.
    ///
    /// The ids in the returned step stay valid until the next call: the slots of the
    /// consumed capabilities and of a dissolved ambient are reused after that.
    pub fn step(&mut self) -> Result<Option<Step>, EngineError> {
        self.state.release_pending();
        if let Some(o) = &mut self.origins {
            o.created.clear();
            o.moved.clear();
        }
        while let Some(cap) = self.queue.pop_back() {
            self.state.caps[cap as usize].set_queued(false);
            if !self.state.cap(cap).alive() {
                continue;
            }
            let Some((co, subject, object)) = self.find_partner(cap) else {
                continue;
            };
            if self.steps >= self.limits.max_steps {
                self.enqueue(cap);
                return Err(EngineError::StepLimit {
                    limit: self.limits.max_steps,
                });
            }
            let step = self.fire(cap, co, subject, object);
            self.steps += 1;
            if self.steps % 1024 == 0 {
                self.check_memory()?;
            }
            return Ok(Some(step));
        }
        self.check_memory()?;
        Ok(None)
    }

    /// Steps until no redex is left, calling `on_step` after each.
    pub fn run(&mut self, mut on_step: impl FnMut(&Self, &Step)) -> Result<u64, EngineError> {
        while let Some(step) = self.step()? {
            on_step(self, &step);
        }
        Ok(self.steps)
    }

    fn check_memory(&self) -> Result<(), EngineError> {
        let used = self.memory_bytes();
        if used > self.limits.max_memory_bytes {
            return Err(EngineError::MemoryLimit {
                used,
                limit: self.limits.max_memory_bytes,
            });
        }
        Ok(())
    }

    /// Approximate bytes held by the engine's instances, indexes and queues.
    pub fn memory_bytes(&self) -> usize {
        self.state.memory_bytes() + self.queue.capacity() * 4 + self.waiting.memory_bytes()
    }

    fn enqueue(&mut self, cap: u32) {
        let c = &mut self.state.caps[cap as usize];
        if !c.queued() {
            c.set_queued(true);
            self.queue.push_back(cap);
        }
    }

    fn wait(&mut self, key: WaitKey, cap: u32) {
        self.waiting.push(key, cap);
    }

    fn wake(&mut self, key: WaitKey) {
        let mut woken = std::mem::take(&mut self.woken);
        self.waiting.take(key, &mut woken);
        for &cap in &woken {
            self.enqueue(cap);
        }
        woken.clear();
        self.woken = woken;
    }

    /// An ambient named `name` arrived in `parent`.
    fn arrived(&mut self, parent: u32, name: u32) {
        if !self.waiting.is_empty() {
            self.wake(WaitKey::In(parent, name));
            self.wake(WaitKey::Open(parent, name));
        }
    }

    /// `owner` gained a co-capability of `kind`.
    fn gained_co(&mut self, owner: u32, kind: CapKind) {
        if self.waiting.is_empty() {
            return;
        }
        let a = *self.state.amb(owner);
        match kind {
            CapKind::InCo if a.parent != NONE => self.wake(WaitKey::In(a.parent, a.name)),
            CapKind::OpenCo if a.parent != NONE => self.wake(WaitKey::Open(a.parent, a.name)),
            CapKind::OutCo => self.wake(WaitKey::Out(owner)),
            _ => {}
        }
    }

    /// Tries every `in`/`out` of an ambient again (its context changed).
    fn touch(&mut self, amb: u32) {
        let mut cap = self.state.amb(amb).first_cap;
        while cap != NONE {
            let c = self.state.cap(cap);
            let next = c.next;
            if matches!(c.kind(), CapKind::In | CapKind::Out) {
                self.enqueue(cap);
            }
            cap = next;
        }
    }

    /// The partner of a capability, or `None` after registering it to wait.
    fn find_partner(&mut self, cap: u32) -> Option<(u32, u32, u32)> {
        let c = *self.state.cap(cap);
        let owner = *self.state.amb(c.owner);
        match c.kind() {
            CapKind::In => {
                let parent = owner.parent;
                if parent == NONE {
                    return None;
                }
                let mut candidate = self.state.first_named(parent, c.target());
                while candidate != NONE {
                    if candidate != c.owner {
                        let co = self.state.co_cap_for(candidate, CapKind::InCo, owner.name);
                        if co != NONE {
                            return Some((co, c.owner, candidate));
                        }
                    }
                    candidate = self.state.next_same(candidate);
                }
                self.wait(WaitKey::In(parent, c.target()), cap);
                None
            }
            CapKind::Out => {
                let parent = owner.parent;
                if parent == NONE || self.state.amb(parent).name != c.target() {
                    return None;
                }
                let co = self.state.co_cap_for(parent, CapKind::OutCo, owner.name);
                if co != NONE {
                    return Some((co, c.owner, parent));
                }
                self.wait(WaitKey::Out(parent), cap);
                None
            }
            CapKind::Open => {
                let mut candidate = self.state.first_named(c.owner, c.target());
                while candidate != NONE {
                    let co = self.state.co_cap_for(candidate, CapKind::OpenCo, NONE);
                    if co != NONE {
                        return Some((co, c.owner, candidate));
                    }
                    candidate = self.state.next_same(candidate);
                }
                self.wait(WaitKey::Open(c.owner, c.target()), cap);
                None
            }
            CapKind::InCo | CapKind::OutCo | CapKind::OpenCo => None,
        }
    }

    fn fire(&mut self, cap: u32, co: u32, subject: u32, object: u32) -> Step {
        let kind = self.state.cap(cap).kind();
        let (cap_node, co_node) = (self.state.cap(cap).node, self.state.cap(co).node);
        let (cap_origin, co_origin) = match &self.origins {
            Some(o) => (o.cap_origin[cap as usize], o.cap_origin[co as usize]),
            None => (0, 0),
        };
        self.state.consume_cap(cap);
        self.state.consume_cap(co);
        let rule = match kind {
            CapKind::In => {
                // subject enters object.
                self.state.unlink_child(subject);
                self.state.link_child(object, subject);
                self.instantiate(Some(cap_node), subject, cap_origin);
                self.instantiate(Some(co_node), object, co_origin);
                self.touch(subject);
                self.arrived(object, self.state.amb(subject).name);
                Rule::In
            }
            CapKind::Out => {
                // subject leaves object, into object's parent.
                let outer = self.state.amb(object).parent;
                self.state.unlink_child(subject);
                self.state.link_child(outer, subject);
                self.instantiate(Some(cap_node), subject, cap_origin);
                self.instantiate(Some(co_node), object, co_origin);
                self.touch(subject);
                self.arrived(outer, self.state.amb(subject).name);
                Rule::Out
            }
            _ => {
                // subject opens object: object's content joins subject.
                self.dissolve(object, subject);
                self.instantiate(Some(co_node), subject, co_origin);
                self.instantiate(Some(cap_node), subject, cap_origin);
                Rule::Open
            }
        };
        Step {
            rule,
            cap: CapId(cap),
            co_cap: CapId(co),
            subject: AmbId(subject),
            object: AmbId(object),
        }
    }

    /// Moves everything `amb` holds into `into` and removes `amb`.
    fn dissolve(&mut self, amb: u32, into: u32) {
        let mut child = self.state.first_child(amb);
        while child != NONE {
            let next = self.state.next_sibling(child);
            self.state.unlink_child(child);
            self.state.link_child(into, child);
            if let Some(o) = &mut self.origins {
                o.moved.push(AmbId(child));
            }
            self.touch(child);
            self.arrived(into, self.state.amb(child).name);
            child = next;
        }
        let mut cap = self.state.amb(amb).first_cap;
        while cap != NONE {
            let next = self.state.cap(cap).next;
            let kind = self.state.cap(cap).kind();
            self.state.unlink_cap(cap);
            self.state.link_cap(into, cap);
            if is_co(kind) {
                self.gained_co(into, kind);
            } else {
                self.enqueue(cap);
            }
            cap = next;
        }
        self.state.unlink_child(amb);
        self.state.kill_amb(amb);
    }

    /// Creates instances for the children of `from` (a prefix whose continuation is
    /// released, or the program's top level for `None`) inside `owner`.
    /// `origin` is the serial of the block instance the children of `from` belong to.
    fn instantiate(&mut self, from: Option<NodeId>, owner: u32, origin: u64) {
        let ast = self.ast;
        let mut stack = std::mem::take(&mut self.scratch);
        stack.clear();
        push_children(ast, from, owner, origin, &mut stack);
        while let Some((node, owner, origin)) = stack.pop() {
            let n = ast.node(node);
            match n.kind() {
                NodeKind::Ambient => {
                    let name = n.name().expect("ambients have names");
                    let amb = self.state.new_amb(name, owner);
                    let serial = self.next_serial;
                    self.next_serial += 1;
                    if let Some(o) = &mut self.origins {
                        set(&mut o.amb_serial, amb, serial);
                        set(&mut o.amb_node, amb, node.index() as u32);
                        set(&mut o.amb_origin, amb, origin);
                        o.created.push(AmbId(amb));
                    }
                    self.arrived(owner, name.index() as u32);
                    push_children(ast, Some(node), amb, serial, &mut stack);
                }
                NodeKind::Cap(kind) => {
                    let cap = self.state.new_cap(kind, n.name(), node, owner);
                    if let Some(o) = &mut self.origins {
                        set(&mut o.cap_origin, cap, origin);
                    }
                    if is_co(kind) {
                        self.gained_co(owner, kind);
                    } else {
                        self.enqueue(cap);
                    }
                }
            }
        }
        self.scratch = stack;
    }

    /// The current term as a program: live ambients, and live capabilities with their
    /// unreleased continuations.
    pub fn to_ast(&self) -> Ast {
        self.to_ast_with_map().0
    }

    /// Whether an ambient instance holds a capability in its own process.
    pub fn has_capabilities(&self, amb: AmbId) -> bool {
        self.state.amb(amb.0).first_cap != NONE
    }

    /// [`Engine::to_ast`], with the node each live ambient instance became.
    pub fn to_ast_with_map(&self) -> (Ast, Vec<(AmbId, NodeId)>) {
        self.content_with_map(AmbId::ROOT)
    }

    /// What an ambient instance holds, as a program (its body's parts at the top).
    pub fn content_ast(&self, amb: AmbId) -> Ast {
        self.content_with_map(amb).0
    }

    /// [`Engine::content_ast`], with the node each live ambient instance inside it
    /// became.
    fn content_with_map(&self, top: AmbId) -> (Ast, Vec<(AmbId, NodeId)>) {
        let mut map = Vec::new();
        let src = self.ast;
        let mut out = Ast::new();
        let mut symbols: Vec<Option<Symbol>> = vec![None; src.name_count()];
        let mut intern = |out: &mut Ast, sym: Symbol| -> Symbol {
            *symbols[sym.index()].get_or_insert_with(|| out.intern(src.name_text(sym)))
        };
        // Instances to copy: (ambient instance, node in `out` it becomes).
        let mut ambients: Vec<(u32, Option<NodeId>)> = vec![(top.0, None)];
        // AST subtrees to copy: (source node, parent in `out`).
        let mut subtrees: Vec<(NodeId, Option<NodeId>)> = Vec::new();
        while let Some((amb, target)) = ambients.pop() {
            let mut cap = self.state.amb(amb).first_cap;
            while cap != NONE {
                subtrees.push((self.state.cap(cap).node, target));
                cap = self.state.cap(cap).next;
            }
            while let Some((node, parent)) = subtrees.pop() {
                let n = src.node(node);
                let name = n.name().map(|s| intern(&mut out, s));
                let copy = match n.kind() {
                    NodeKind::Ambient => {
                        out.push_ambient(parent, name.expect("named"), Span::default())
                    }
                    NodeKind::Cap(kind) => out.push_cap(parent, kind, name, Span::default()),
                };
                for child in src.children(Some(node)) {
                    subtrees.push((child, Some(copy)));
                }
            }
            let mut child = self.state.first_child(amb);
            while child != NONE {
                let index = self.state.amb(child).name;
                let name = match (index as usize) < src.name_count() {
                    true => intern(&mut out, src.symbol_at(index as usize)),
                    false => out.intern(self.name_text(index)),
                };
                let copy = out.push_ambient(target, name, Span::default());
                map.push((AmbId(child), copy));
                ambients.push((child, Some(copy)));
                child = self.state.next_sibling(child);
            }
        }
        out.finish_building();
        (out, map)
    }
}

/// How many ambients and capabilities the program instantiates before any step: those
/// not inside a continuation.
fn eager_counts(ast: &Ast) -> (usize, usize) {
    let mut eager = vec![false; ast.len()];
    for root in ast.roots() {
        eager[root.index()] = true;
    }
    let (mut ambients, mut capabilities) = (0, 0);
    for index in 0..ast.len() {
        if !eager[index] {
            continue;
        }
        let id = ast.node_id(index);
        match ast.node(id).kind() {
            NodeKind::Ambient => {
                ambients += 1;
                for child in ast.children(Some(id)) {
                    eager[child.index()] = true;
                }
            }
            NodeKind::Cap(_) => capabilities += 1,
        }
    }
    (ambients, capabilities)
}

/// Schedules the children of `from` so that they are created in source order.
fn push_children(
    ast: &Ast,
    from: Option<NodeId>,
    owner: u32,
    origin: u64,
    stack: &mut Vec<(NodeId, u32, u64)>,
) {
    let start = stack.len();
    stack.extend(ast.children(from).map(|child| (child, owner, origin)));
    stack[start..].reverse();
}
