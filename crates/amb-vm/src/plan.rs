//! The log plan of a run: every event the run records, in writing order, with its log,
//! position, operation, instruction and references (`spec/events.md` §4–§6).
//!
//! The plan is pure data, derived from the engine's deterministic run of the program:
//! events refer to earlier events by index, so signing and storing them in order turns
//! every reference into a CID. Because the whole run is known before anything is
//! signed, the last event of every fully executed slice can carry its value's CID.
//!
//! Every event also has a writer, a host index (`spec/network.md` §8): host 0 (the
//! deployer) hosts the program log; a new slice is hosted by the host its name is
//! delegated to, else by the host of the log that announces it; after an `in` or
//! `out`, a mover's log goes on under the host of the log of the ambient it has moved
//! into (control transfer). Every host computes the same plan, and signs its part.
//!
//! A run planned with a host's services ([`plan_with_effects`]) meets each service
//! call (`spec/system.md` §2) and plans its `effect` event right after the service
//! ambient's `open call`, in that ambient's log (§6).

use std::collections::HashMap;

use amb_bytecode::{BlockLimits, Cid, CompiledProgram, NodeMap, Opcode, Target};
use amb_engine::{AmbId, Engine, EngineError, Limits, Rule};
use amb_syntax::{Ast, CapKind, NodeId, NodeKind};

use crate::system::{EffectHost, EffectRecord};

/// Blocks with their CIDs.
pub type Blocks = Vec<(Cid, Vec<u8>)>;

/// Index of an event in [`Plan::events`].
pub type EventIx = usize;

/// Index of a log in [`Plan::logs`]; log 0 is the program (root) log.
pub type LogIx = usize;

/// Index of a host of a deployment; host 0 is the deployer.
pub type HostIx = usize;

/// Which slices run on which hosts: ambients of a delegated name are hosted by that
/// host (an index > 0); everything else follows the rules of the module's doc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hosting {
    /// Ambient names delegated, with their host.
    pub delegated: HashMap<String, HostIx>,
}

/// One planned event; its references are plan indexes (`R`), or, in a host's
/// order, [`crate::order::Ref`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent<R = EventIx> {
    /// The log it belongs to.
    pub log: LogIx,
    /// Its position in that log.
    pub seq: u64,
    /// Opcode of the operation.
    pub opcode: Opcode,
    /// Target of the operation (bytecode targets; a block CID for `deploy`).
    pub target: Target,
    /// The instruction executed: the block instance's body `deploy` event and the
    /// instruction's index in that block.
    pub at: Option<(R, u32)>,
    /// Earlier events this one refers to (unordered, no duplicates).
    pub refs: Vec<R>,
    /// CID of the slice's final value, on the last event of a fully executed slice.
    pub payload: Option<Cid>,
    /// The host that signs it (an index into the deployment's hosts; 0 is the
    /// deployer).
    pub writer: HostIx,
    /// On an `effect` event (`spec/system.md` §6), what it records: the event is
    /// then an effect event, not an operation; its `opcode` and `target` repeat the
    /// `open call` it follows, and it has no `at` and no payload.
    pub effect: Option<PlannedEffect>,
}

/// What an `effect` event records: the service called, the value blocks of its
/// argument and of its result (`spec/system.md` §3, §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEffect {
    /// The reserved name called, e.g. `sys_hash`.
    pub service: String,
    /// The CID of the argument's value block.
    pub args: Cid,
    /// The CID of the result's (or failure value's) value block.
    pub result: Cid,
}

/// One log: the program's or a non-primitive ambient instance's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLog {
    /// The ambient's name (`None` for the program log).
    pub name: Option<String>,
    /// The slice's block.
    pub block: Cid,
    /// The `deploy` event that announced the slice (`None` for the program log).
    pub parent: Option<EventIx>,
    /// Number of events in the log.
    pub len: u64,
    /// The host of its first event (its slice manifest's creator).
    pub host: HostIx,
    /// The hosts its slice manifest lists, ascending: those that write an event of
    /// the log, and the creators of the slices it announces (`spec/network.md` §8:
    /// a slice manifest lists only the keys that slice needs).
    pub keys: Vec<HostIx>,
}

/// Everything a run records.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The events, in an order where every reference points backwards.
    pub events: Vec<PlannedEvent>,
    /// The logs, the program's first.
    pub logs: Vec<PlannedLog>,
    /// The final term, canonical.
    pub final_term: Ast,
    /// Reduction steps taken.
    pub steps: u64,
    /// Blocks of the final term and of the slices' values (payload targets).
    pub value_blocks: Blocks,
}

/// Why a run could not be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A limit of the engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The final term does not compile (a block over its limit).
    #[error("the final term does not compile: {0}")]
    Compile(#[from] amb_bytecode::CompileError),
    /// A service call could not be met (a faked service ambient, a value over its
    /// limit).
    #[error(transparent)]
    Effect(#[from] crate::system::ReduceError),
    /// A service call whose `arg` held no typed value: its effect has no argument
    /// block to record.
    #[error(
        "rule effect: {service}'s call after step {step} holds no typed value in its arg, so its effect cannot be recorded (spec/system.md §6)"
    )]
    UnrecordableEffect {
        /// The service called.
        service: String,
        /// The step that opened the call.
        step: u64,
    },
}

/// Whether a name is a protocol primitive, whose events go to its holder's log.
pub fn is_primitive(name: &str) -> bool {
    amb_bytecode::Primitive::from_name(name).is_some()
}

struct LogState {
    next_seq: u64,
    /// The host that signs the log's next event.
    host: HostIx,
    /// The log's last event (by seq).
    last: Option<EventIx>,
    /// The log's heads: its events that no later event of the log refers to (the
    /// last event, and slice announcements that do not refer to the event before
    /// them). The log's next linked event refers to each (`spec/events.md` §4).
    heads: Vec<EventIx>,
    /// Steps that moved or changed this log's ambient without this log recording
    /// their second half: the log's next event refers to them.
    completions: Vec<EventIx>,
}

struct Planner<'a> {
    ast: &'a Ast,
    hosting: &'a Hosting,
    map: &'a NodeMap,
    root_block: Cid,
    events: Vec<PlannedEvent>,
    logs: Vec<PlannedLog>,
    log_states: Vec<LogState>,
    /// By ambient serial: its log, if it has one (not a primitive).
    log_of: HashMap<u64, LogIx>,
    /// By ambient serial (0 = root): its body `deploy` event (block instance anchor).
    body_of: HashMap<u64, EventIx>,
    /// By serial, primitives moved `out` into another log's ambient: the step's
    /// second half, which the first event about the primitive refers to.
    owed: HashMap<u64, EventIx>,
}

/// Plans a run of `ast` (compiled as `compiled` with `map`) on one host.
pub fn plan(
    ast: &Ast,
    compiled: &CompiledProgram,
    map: &NodeMap,
    limits: Limits,
) -> Result<Plan, PlanError> {
    plan_hosted(ast, compiled, map, limits, &Hosting::default())
}

/// Plans a run of `ast` whose slices are hosted as `hosting` says.
pub fn plan_hosted(
    ast: &Ast,
    compiled: &CompiledProgram,
    map: &NodeMap,
    limits: Limits,
    hosting: &Hosting,
) -> Result<Plan, PlanError> {
    plan_with_effects(ast, compiled, map, limits, hosting, None)
}

/// Plans a run of `ast` whose slices are hosted as `hosting` says, meeting each
/// service call through `effects` (`spec/system.md` §2) and planning its `effect`
/// event; without `effects`, a service ambient's call is an ordinary step (the
/// service then waits at its `open call`).
pub fn plan_with_effects(
    ast: &Ast,
    compiled: &CompiledProgram,
    map: &NodeMap,
    limits: Limits,
    hosting: &Hosting,
    effects: Option<EffectHost<'_>>,
) -> Result<Plan, PlanError> {
    if effects.is_some() {
        crate::system::check_reserved(ast)?;
    }
    let mut engine = Engine::with_origins(ast, limits)?;
    let mut planner = Planner {
        ast,
        hosting,
        map,
        root_block: compiled.root,
        events: Vec::new(),
        logs: Vec::new(),
        log_states: Vec::new(),
        log_of: HashMap::new(),
        body_of: HashMap::new(),
        owed: HashMap::new(),
    };
    planner.start_root();
    planner.created(&engine);
    let mut steps = 0;
    let mut effect_blocks = Blocks::new();
    while let Some(step) = engine.step()? {
        planner.step(&engine, &step);
        planner.created(&engine);
        steps += 1;
        let Some(host) = &effects else { continue };
        if let Some(effect) = host.meet_step(&mut engine, &step)? {
            planner.effect(&engine, step.subject, &effect)?;
            effect_blocks.extend(effect.blocks()?);
        }
    }
    let (final_term, mut value_blocks) = planner.payloads(&engine)?;
    if !effect_blocks.is_empty() {
        value_blocks.append(&mut effect_blocks);
        value_blocks.sort();
        value_blocks.dedup();
    }
    for (log, state) in planner.logs.iter_mut().zip(&planner.log_states) {
        log.len = state.next_seq;
    }
    planner.list_keys();
    Ok(Plan {
        events: planner.events,
        logs: planner.logs,
        final_term,
        steps,
        value_blocks,
    })
}

impl Plan {
    /// Whether event `index` is a first half whose second half (the next event)
    /// another host writes: its writer asks that host to reserve the
    /// co-capability first (`spec/network.md` §8, the handshake).
    pub fn needs_reservation(&self, index: EventIx) -> bool {
        let (Some(first), Some(second)) = (self.events.get(index), self.events.get(index + 1))
        else {
            return false;
        };
        matches!(first.opcode, Opcode::In | Opcode::Out | Opcode::OpenCo)
            && crate::verify::is_second_half(second.opcode)
            && second.refs.contains(&index)
            && second.writer != first.writer
    }
}

impl Planner<'_> {
    fn new_log(
        &mut self,
        name: Option<String>,
        block: Cid,
        parent: Option<EventIx>,
        host: HostIx,
    ) -> LogIx {
        self.logs.push(PlannedLog {
            name,
            block,
            parent,
            len: 0,
            host,
            keys: Vec::new(),
        });
        self.log_states.push(LogState {
            next_seq: 0,
            host,
            last: None,
            heads: Vec::new(),
            completions: Vec::new(),
        });
        self.logs.len() - 1
    }

    /// Appends a linked event to `log`: it refers to the log's heads (the previous
    /// event among them), the completion of a step it waits on, and `extra`.
    fn emit(
        &mut self,
        log: LogIx,
        opcode: Opcode,
        target: Target,
        at: Option<(EventIx, u32)>,
        extra: &[EventIx],
    ) -> EventIx {
        let refs = std::mem::take(&mut self.log_states[log].heads);
        let index = self.push(log, opcode, target, at, refs, extra);
        self.log_states[log].heads = vec![index];
        index
    }

    /// Appends the announcing `deploy` of a slice (a non-primitive ambient) to `log`:
    /// it refers to the body `deploy` of the block instance whose instruction it is
    /// (`at`'s), not to the log's previous event, which may announce a sibling; the
    /// completion of a step it waits on, and `extra`.
    fn announce_slice(
        &mut self,
        log: LogIx,
        block: Cid,
        at: (EventIx, u32),
        extra: &[EventIx],
    ) -> EventIx {
        let index = self.push(
            log,
            Opcode::Deploy,
            Target::Block(block),
            Some(at),
            vec![at.0],
            extra,
        );
        let refs = &self.events[index].refs;
        let heads = &mut self.log_states[log].heads;
        heads.retain(|h| !refs.contains(h));
        heads.push(index);
        index
    }

    /// Appends an event to `log` with `refs`, the completions due and `extra`.
    fn push(
        &mut self,
        log: LogIx,
        opcode: Opcode,
        target: Target,
        at: Option<(EventIx, u32)>,
        mut refs: Vec<EventIx>,
        extra: &[EventIx],
    ) -> EventIx {
        let state = &mut self.log_states[log];
        refs.append(&mut state.completions);
        for &r in extra {
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let index = self.events.len();
        state.last = Some(index);
        self.events.push(PlannedEvent {
            log,
            seq,
            opcode,
            target,
            at,
            refs,
            payload: None,
            writer: state.host,
            effect: None,
        });
        index
    }

    /// Appends the `effect` event of `effect`, met right after the service ambient
    /// `service` opened its call, to that ambient's log (`spec/system.md` §6): it
    /// refers to the log's heads, so to the `open call`.
    fn effect(
        &mut self,
        engine: &Engine<'_>,
        service: AmbId,
        effect: &EffectRecord,
    ) -> Result<(), PlanError> {
        let Some(args) = effect.args_cid else {
            return Err(PlanError::UnrecordableEffect {
                service: effect.name.clone(),
                step: effect.after_step,
            });
        };
        let log = self.log_owner(engine, service);
        let index = self.emit(log, Opcode::Open, Target::for_name("call"), None, &[]);
        self.events[index].effect = Some(PlannedEffect {
            service: effect.name.clone(),
            args,
            result: effect.result_cid,
        });
        Ok(())
    }

    fn start_root(&mut self) {
        let log = self.new_log(None, self.root_block, None, 0);
        self.log_of.insert(0, log);
        let create = self.emit(log, Opcode::Create, Target::None, None, &[]);
        let body = self.emit(
            log,
            Opcode::Deploy,
            Target::Block(self.root_block),
            None,
            &[create],
        );
        self.body_of.insert(0, body);
    }

    /// The log an ambient's events go to: its own, or (for a primitive) its holder's.
    fn log_owner(&self, engine: &Engine<'_>, mut amb: AmbId) -> LogIx {
        loop {
            let serial = engine.ambient_serial(amb);
            if let Some(&log) = self.log_of.get(&serial) {
                return log;
            }
            amb = engine
                .parent(amb)
                .expect("a primitive ambient is inside another");
        }
    }

    /// Announces, creates and deploys the ambients the last step created.
    fn created(&mut self, engine: &Engine<'_>) {
        for &amb in engine.created() {
            let node = engine
                .ambient_node(amb)
                .expect("created ambients come from the AST");
            let block = self.map.block[node.index()].expect("ambients have blocks");
            let parent = engine.parent(amb).expect("created ambients have a parent");
            let holder = self.log_owner(engine, parent);
            let origin = self.body_of[&engine.ambient_origin(amb)];
            let at = (origin, self.map.instruction[node.index()]);
            let debts = self.debts(engine, parent, None);
            let name = engine
                .ambient_name(amb)
                .expect("ambients have names")
                .to_string();
            let announce = if is_primitive(&name) {
                self.emit(
                    holder,
                    Opcode::Deploy,
                    Target::Block(block),
                    Some(at),
                    &debts,
                )
            } else {
                self.announce_slice(holder, block, at, &debts)
            };
            let serial = engine.ambient_serial(amb);
            let log = if is_primitive(&name) {
                holder
            } else {
                let host = match self.hosting.delegated.get(&name) {
                    Some(&host) => host,
                    None => self.log_states[holder].host,
                };
                let log = self.new_log(Some(name.clone()), block, Some(announce), host);
                self.log_of.insert(serial, log);
                log
            };
            let create = self.emit(
                log,
                Opcode::Create,
                Target::for_name(&name),
                None,
                &[announce],
            );
            let body = self.emit(log, Opcode::Deploy, Target::Block(block), None, &[create]);
            self.body_of.insert(serial, body);
        }
    }

    fn cap_op(&self, node: NodeId, cap: CapKind) -> (Opcode, Target) {
        let target = match (cap, self.ast.node(node).name()) {
            (CapKind::OpenCo, _) => Target::Unused,
            (_, Some(name)) => Target::for_name(self.ast.name_text(name)),
            (_, None) => Target::None,
        };
        (amb_bytecode::opcode(cap), target)
    }

    fn step(&mut self, engine: &Engine<'_>, step: &amb_engine::Step) {
        let cap_node = engine.capability_node(step.cap);
        let co_node = engine.capability_node(step.co_cap);
        let (cap_op, cap_target) = self.cap_op(cap_node, engine.capability_kind(step.cap));
        let (co_op, co_target) = self.cap_op(co_node, engine.capability_kind(step.co_cap));
        let cap_at = (
            self.body_of[&engine.capability_origin(step.cap)],
            self.map.instruction[cap_node.index()],
        );
        let co_at = (
            self.body_of[&engine.capability_origin(step.co_cap)],
            self.map.instruction[co_node.index()],
        );
        match step.rule {
            Rule::In | Rule::Out => {
                // Before the step the mover sat in the entered ambient's parent (in) or
                // in the ambient it leaves (out); the co-capability's holder stayed put.
                let before = match step.rule {
                    Rule::In => engine.parent(step.object).expect("siblings have a parent"),
                    _ => step.object,
                };
                let mover_log = match self.log_of.get(&engine.ambient_serial(step.subject)) {
                    Some(&log) => log,
                    None => self.log_owner(engine, before),
                };
                let heads = if step.rule == Rule::In {
                    self.heads_inside(engine, step.subject)
                } else {
                    Vec::new()
                };
                let mut refs = self.debts(engine, step.subject, Some(before));
                refs.extend(heads);
                let first = self.emit(mover_log, cap_op, cap_target, Some(cap_at), &refs);
                let co_log = self.log_owner(engine, step.object);
                let mut refs = self.debts(engine, step.object, None);
                refs.push(first);
                let second = self.emit(co_log, co_op, co_target, Some(co_at), &refs);
                self.oblige(&[mover_log], second);
                // Control transfer: a mover with its own log goes on under the host
                // of the log of the ambient it is now in.
                if self
                    .log_of
                    .contains_key(&engine.ambient_serial(step.subject))
                {
                    let now_in = engine.parent(step.subject).expect("a mover has a parent");
                    let host = self.log_states[self.log_owner(engine, now_in)].host;
                    self.log_states[mover_log].host = host;
                }
                // A primitive's events go to its new holder's log from now on.
                if self.log_owner(engine, step.subject) != co_log {
                    self.owed
                        .insert(engine.ambient_serial(step.subject), second);
                }
            }
            Rule::Open => {
                let opener_log = self.log_owner(engine, step.subject);
                let opened_log = self
                    .log_of
                    .get(&engine.ambient_serial(step.object))
                    .copied()
                    .unwrap_or(opener_log);
                let debts = self.debts(engine, step.object, Some(step.subject));
                let first = self.emit(opened_log, co_op, co_target, Some(co_at), &debts);
                // The opened ambient's log ends with its `open_`; its former children
                // now sit in the opener. The `open` refers to the last event of each
                // child's own log, and each of those logs' next event refers to the
                // `open` (completion).
                let moved: Vec<LogIx> = engine
                    .moved_by_open()
                    .iter()
                    .map(|&child| self.log_owner(engine, child))
                    .filter(|&log| log != opener_log)
                    .collect();
                let mut refs = self.debts(engine, step.subject, None);
                refs.push(first);
                refs.extend(moved.iter().filter_map(|&log| self.log_states[log].last));
                let second = self.emit(opener_log, cap_op, cap_target, Some(cap_at), &refs);
                self.oblige(&moved, second);
            }
        }
    }

    /// Makes the next event of each of `logs` (but the one that recorded `second`)
    /// refer to `second`, the step's last event.
    fn oblige(&mut self, logs: &[LogIx], second: EventIx) {
        let recorded = self.events[second].log;
        for &log in logs {
            let pending = &mut self.log_states[log].completions;
            if log != recorded && !pending.contains(&second) {
                pending.push(second);
            }
        }
    }

    /// Takes the debts of `amb` and of the primitives it is in, up to its log's
    /// owner (`parent` overrides its parent: where it was before the step).
    fn debts(&mut self, engine: &Engine<'_>, amb: AmbId, parent: Option<AmbId>) -> Vec<EventIx> {
        let mut debts = Vec::new();
        let mut at = Some(amb);
        let mut first = true;
        while let Some(x) = at {
            let primitive = engine.ambient_name(x).is_some_and(is_primitive);
            if !primitive {
                break;
            }
            debts.extend(self.owed.remove(&engine.ambient_serial(x)));
            at = match (first, parent) {
                (true, Some(p)) => Some(p),
                _ => engine.parent(x),
            };
            first = false;
        }
        debts
    }

    /// The last event of the log of every non-primitive ambient nested in `mover`
    /// (not counting ambients the current step created).
    fn heads_inside(&self, engine: &Engine<'_>, mover: AmbId) -> Vec<EventIx> {
        let fresh: Vec<AmbId> = engine.created().to_vec();
        let mut heads = Vec::new();
        let mut stack: Vec<AmbId> = engine.children(mover).collect();
        while let Some(amb) = stack.pop() {
            if fresh.contains(&amb) {
                continue;
            }
            if let Some(&log) = self.log_of.get(&engine.ambient_serial(amb)) {
                heads.extend(self.log_states[log].last);
            }
            stack.extend(engine.children(amb));
        }
        heads
    }

    /// Puts each fully executed slice's value CID on its log's last event; returns the
    /// canonical final term and the value blocks.
    fn payloads(&mut self, engine: &Engine<'_>) -> Result<(Ast, Blocks), PlanError> {
        let (mut term, instances) = engine.to_ast_with_map();
        term.canonicalize();
        let (compiled, map) = amb_bytecode::compile_with_map(&term, &BlockLimits::default())?;
        let mut value_blocks = compiled.blocks.clone();
        // Capability-free subtrees, children before parents (ids high to low).
        let mut has_caps = vec![false; term.len()];
        for index in (0..term.len()).rev() {
            let id = term.node_id(index);
            let node = term.node(id);
            has_caps[index] = matches!(node.kind(), NodeKind::Cap(_))
                || term.children(Some(id)).any(|c| has_caps[c.index()]);
        }
        let root_free = !term.roots().any(|r| has_caps[r.index()]);
        if root_free {
            self.set_payload(0, compiled.root);
        }
        for (amb, node) in instances {
            let Some(&log) = self.log_of.get(&engine.ambient_serial(amb)) else {
                continue;
            };
            if has_caps[node.index()] {
                continue;
            }
            let block = map.block[node.index()].expect("ambients have blocks");
            let (cid, bytes) = amb_bytecode::Block::single_deploy(block).encode_with_cid();
            value_blocks.push((cid, bytes));
            self.set_payload(log, cid);
        }
        value_blocks.sort();
        value_blocks.dedup();
        Ok((term, value_blocks))
    }

    /// Lists each log's keys: its writers and the creators of the slices it
    /// announces.
    fn list_keys(&mut self) {
        let mut keys: Vec<Vec<HostIx>> = self.logs.iter().map(|l| vec![l.host]).collect();
        for event in &self.events {
            keys[event.log].push(event.writer);
        }
        for log in &self.logs {
            if let Some(announce) = log.parent {
                keys[self.events[announce].log].push(log.host);
            }
        }
        for (log, mut keys) in self.logs.iter_mut().zip(keys) {
            keys.sort_unstable();
            keys.dedup();
            log.keys = keys;
        }
    }

    fn set_payload(&mut self, log: LogIx, cid: Cid) {
        if let Some(last) = self.log_states[log].last {
            self.events[last].payload = Some(cid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(src: &str) -> Plan {
        let ast = amb_syntax::parse(src).unwrap();
        let (compiled, map) =
            amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
        plan(&ast, &compiled, &map, Limits::default()).unwrap()
    }

    fn describe(plan: &Plan) -> Vec<String> {
        plan.events
            .iter()
            .map(|e| {
                let name = plan.logs[e.log].name.as_deref().unwrap_or("<root>");
                let mut refs = e.refs.clone();
                refs.sort();
                format!(
                    "{name}#{} {} {:?} refs {refs:?}{}",
                    e.seq,
                    e.opcode.mnemonic(),
                    e.target,
                    if e.payload.is_some() { " payload" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn a_slice_traces_to_the_root_without_its_siblings() {
        // Parallel slices, nested ones, and a deploy released by a step.
        let plan = plan_of(
            "f[in_ call.open call] | g[open_] | h[k[] | m[]] | call[in f.open_.n[]] | open g",
        );
        for (slice, log) in plan.logs.iter().enumerate().skip(1) {
            let announce = log.parent.expect("slices are announced");
            let planned = &plan.events[announce];
            let anchor = planned.at.expect("an announcing deploy has at").0;
            assert!(planned.refs.contains(&anchor), "{:?}", log.name);
            // It refers to no other slice's announcement (its log's previous
            // event may be one: a sibling's).
            for &r in &planned.refs {
                assert!(
                    plan.logs.iter().all(|other| other.parent != Some(r)),
                    "{:?}'s announcement refers to the announcement {r}",
                    log.name
                );
            }
            // Its path to the root, by anchors and creates, stays in its
            // ancestors' logs.
            let mut ancestors = vec![];
            let mut up = Some(slice);
            while let Some(l) = up {
                ancestors.push(l);
                up = plan.logs[l].parent.map(|p| plan.events[p].log);
            }
            let mut at = Some(announce);
            while let Some(e) = at {
                assert!(
                    ancestors.contains(&plan.events[e].log) || plan.logs[slice].parent == Some(e),
                    "{:?}'s path leaves its ancestors at {e}",
                    log.name
                );
                // The anchor's instance: its body deploy, then the announcement
                // that created its ambient (through its create), if any.
                at = plan.events[e]
                    .at
                    .map(|(anchor, _)| anchor)
                    .and_then(|body| {
                        let create = plan.events[body].refs[0];
                        plan.events[create].refs.first().copied()
                    });
            }
        }
        // A linked event after sibling announcements refers to each of them.
        let root_announcements: Vec<EventIx> = plan
            .logs
            .iter()
            .filter_map(|l| l.parent)
            .filter(|&p| plan.events[p].log == 0)
            .collect();
        let next_linked = plan
            .events
            .iter()
            .position(|e| {
                e.log == 0 && e.seq > plan.events[*root_announcements.last().unwrap()].seq
            })
            .expect("the root log goes on after its announcements");
        for a in &root_announcements {
            assert!(plan.events[next_linked].refs.contains(a), "{a}");
        }
    }

    #[test]
    fn in_step_events_and_duality() {
        let plan = plan_of("a[in b] | b[in_ a]");
        let lines = describe(&plan);
        // root: create, deploy; a: announce, create, deploy; b: same; then the step.
        assert_eq!(plan.logs.len(), 3);
        assert!(
            lines[0].starts_with("<root>#0 create null refs []"),
            "{lines:#?}"
        );
        assert!(lines[8].starts_with("a#2 in \"b\""), "{lines:#?}");
        assert!(
            lines[9].starts_with("b#2 in_ \"a\" refs [7, 8]"),
            "{lines:#?}"
        );
        // Everything is a value at the end: every log's last event has a payload.
        for (ix, log) in plan.logs.iter().enumerate() {
            let last = plan.events.iter().rposition(|e| e.log == ix).unwrap();
            assert!(plan.events[last].payload.is_some(), "{:?}", log.name);
        }
        assert_eq!(plan.steps, 1);
    }

    #[test]
    fn references_point_backwards_and_logs_are_contiguous() {
        let plan = plan_of(
            "string_concat_x[in_ call.open call.(func[left[in_ arg.open arg.in string.in concat]|right[in_ arg.open arg.in string.in concat]|string[concat[in_ left|in_ right]|in_ left|in_ right]|open_]|open return.open_)] | program[out_ call.in_ string_concat_x|open func.open_|call[out program.in string_concat_x.open_.return[open_.in program.in func]]|func[in_ string_concat_x.open string_concat_x.(arg[string[hello[]]|in left.open_]|arg[string[world[]]|in right.open_]|open func.open_)]] | open program",
        );
        assert_eq!(plan.steps, 18);
        let mut next_seq = vec![0u64; plan.logs.len()];
        for (ix, event) in plan.events.iter().enumerate() {
            assert!(
                event.refs.iter().all(|&r| r < ix),
                "event {ix} refers forward"
            );
            assert_eq!(event.seq, next_seq[event.log]);
            next_seq[event.log] += 1;
            if let Some((anchor, _)) = event.at {
                assert_eq!(plan.events[anchor].opcode, Opcode::Deploy);
            }
        }
        // Primitives have no logs.
        assert!(
            plan.logs
                .iter()
                .all(|l| !l.name.as_deref().is_some_and(is_primitive))
        );
        // The program is a value at the end: the root log's last event carries it.
        let last_root = plan.events.iter().rposition(|e| e.log == 0).unwrap();
        assert!(plan.events[last_root].payload.is_some());
        assert_eq!(
            amb_syntax::to_compact_string(&plan.final_term),
            "string[concat[left[string[hello[]]]|right[string[world[]]]]]"
        );
    }

    #[test]
    fn delegated_slices_and_movers_are_written_by_their_hosts() {
        let src = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb"
        ))
        .expect("the corpus is at ../shared/corpus");
        let ast = amb_syntax::parse(&src).unwrap();
        let (compiled, map) =
            amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
        let hosting = Hosting {
            delegated: [("string_concat".to_string(), 1)].into(),
        };
        let plan = plan_hosted(&ast, &compiled, &map, Limits::default(), &hosting).unwrap();
        let lines: Vec<String> = describe(&plan)
            .into_iter()
            .zip(&plan.events)
            .map(|(line, e)| format!("{line} by {}", e.writer))
            .collect();
        let log = |name: &str| {
            plan.logs
                .iter()
                .position(|l| l.name.as_deref() == Some(name))
                .unwrap()
        };
        // string_concat runs on host 1 until it enters `program` (hosted by 0): its
        // log goes on under host 0 after that step (control transfer).
        let concat = log("string_concat");
        assert_eq!(plan.logs[concat].host, 1);
        let concat_events: Vec<&PlannedEvent> =
            plan.events.iter().filter(|e| e.log == concat).collect();
        let moved = concat_events
            .iter()
            .position(|e| e.opcode == Opcode::In)
            .unwrap();
        assert!(
            concat_events[..=moved].iter().all(|e| e.writer == 1),
            "{lines:#?}"
        );
        assert!(
            concat_events[moved + 1..].iter().all(|e| e.writer == 0),
            "{lines:#?}"
        );
        // Slices it creates while on host 1 are hosted there; the root stays on 0.
        assert_eq!(plan.logs[log("left")].host, 1);
        assert!(
            plan.events
                .iter()
                .filter(|e| e.log == 0)
                .all(|e| e.writer == 0)
        );
        // The same run as on one host.
        let single = plan_of(&src);
        assert_eq!(single.events.len(), plan.events.len());
        assert_eq!(
            amb_syntax::to_compact_string(&single.final_term),
            amb_syntax::to_compact_string(&plan.final_term)
        );
    }

    #[test]
    fn open_refers_to_open_co_and_stuck_slices_have_no_payload() {
        let plan = plan_of("open a | a[open_.in x | c[]]");
        let open_co = plan
            .events
            .iter()
            .position(|e| e.opcode == Opcode::OpenCo)
            .unwrap();
        let open = plan
            .events
            .iter()
            .position(|e| e.opcode == Opcode::Open)
            .unwrap();
        assert!(open > open_co && plan.events[open].refs.contains(&open_co));
        // The root still holds `in x`: no payload on its log; c is a value.
        let last_root = plan.events.iter().rposition(|e| e.log == 0).unwrap();
        assert_eq!(plan.events[last_root].payload, None);
        let c = plan
            .logs
            .iter()
            .position(|l| l.name.as_deref() == Some("c"))
            .unwrap();
        let last_c = plan.events.iter().rposition(|e| e.log == c).unwrap();
        assert!(plan.events[last_c].payload.is_some());
    }
}
