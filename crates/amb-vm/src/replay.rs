//! The replay state machine: rebuilds a program's ambient tree from its events and
//! blocks alone, checking on the way every rule that needs the replayed state
//! (`spec/events.md` §7: `order`, `bytecode`, `reduction`, `duality`, `log-id`, `key`).
//!
//! Events are applied one at a time, in any order in which every event comes after
//! the events it refers to. A step is applied when its second half arrives (the
//! co-capability of `in`/`out`, the `open` of `open_`); its first half only claims the
//! capability it consumes, so no capability is consumed twice.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

/// The maps of the replay state: recent changes over a persistent base (a copy
/// shares what it does not change), hashed by their CIDs.
type Map<K, V> = Overlay<K, V>;

/// A position in a log: its manifest CID and a seq.
type Position = (Cid, u64);

use amb_bytecode::{Block, Cid, Opcode, Target};
use amb_log::{Event, Manifest, PublicKey};
use amb_syntax::{Ast, CapKind, NodeId, Span};

use crate::{
    chunked::Chunked,
    completeness::{Completeness, MISSING_EVENT, MISSING_LOG, Stop},
    journal::Journal,
    overlay::Overlay,
    plan::is_primitive,
};

mod broken;
mod effect;
mod view;
pub use broken::Broken;
pub use effect::ReplayedEffect;
pub use view::{
    Census, Changes, HostedSlices, NoSuchPath, NodeRef, Removed, TreeView, ViewKind, ViewNode,
    changes,
};

/// A broken rule, with the event that breaks it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {event}: rule {rule}: {detail}")]
pub struct Violation {
    /// The event.
    pub event: Cid,
    /// The rule of `spec/events.md` §7.
    pub rule: &'static str,
    /// What is wrong.
    pub detail: String,
}

/// A live ambient of [`Replay::to_ast_with_logs`]: its node, its own log and that
/// log's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmbientLog {
    /// The ambient's node in the term.
    pub node: NodeId,
    /// Its own log; `None` for a primitive (its events are in its parent's log).
    pub log: Option<Cid>,
    /// The key that writes the log's next event.
    pub host: Option<PublicKey>,
}

/// Where replay gets blocks and manifests.
pub trait Source {
    /// A bytecode block, decoded (shared: the replay keeps it for as long as the
    /// source may).
    fn block(&self, cid: &Cid) -> Option<Arc<Block>>;
    /// A manifest, decoded: a root with a valid signature, or a slice (unsigned: the
    /// replay checks that its log's first event is signed by its creator).
    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>>;
}

#[derive(Clone, Debug)]
struct Amb {
    /// Its name, shared with its block's [`Instance`] (`None` for the root).
    name: Option<Arc<str>>,
    parent: Option<usize>,
    children: BTreeSet<usize>,
    caps: BTreeSet<(Cid, u32)>,
    /// Its own log (non-primitives, once created).
    log: Option<Cid>,
    alive: bool,
    /// Ambients this one opened (dissolved into it).
    absorbed: Vec<usize>,
    /// The event that announced it (`None` for the root).
    announced_at: Option<Position>,
    /// The event that put it under its current parent: its announcement, or the second
    /// half of the last step that moved it (`in`, `out`, or the `open` of its parent).
    placed_at: Option<Position>,
    /// For a primitive moved `out` into another log's ambient: the step's second
    /// half, which the first event about it (or anything inside it) refers to.
    owed: Option<Cid>,
    /// Brought in by an effect (a part of a result value, `spec/system.md` §2): it
    /// has no log and no capabilities, and no event is about it.
    brought: bool,
}

#[derive(Clone, Debug)]
struct Cap {
    owner: usize,
    kind: CapKind,
    claimed: Option<Cid>,
    /// The block instance it is an instruction of (kept here: its anchor's entry in
    /// the journal of instances is far away in memory).
    instance: Arc<Instance>,
}

impl Cap {
    /// Its instruction.
    fn instruction(&self, index: u32) -> &amb_bytecode::Instruction {
        &self.instance.block.instructions[index as usize]
    }
}

/// An enabled `deploy`: the ambient the new instance goes in, and the block instance
/// the instruction is in.
#[derive(Clone, Debug)]
struct EnabledDeploy {
    parent: usize,
    instance: Arc<Instance>,
}

#[derive(Clone, Debug)]
struct Instance {
    block: Arc<Block>,
    /// The name its `create` gives (every ambient made from the block shares it).
    name: Option<Arc<str>>,
    /// By instruction index: the instructions that follow it (`prev` pointing at it),
    /// in index order, so enabling a continuation does not scan the block.
    follow: Vec<Vec<u32>>,
}

impl Instance {
    fn new(block: Arc<Block>) -> Instance {
        let mut follow = vec![Vec::new(); block.instructions.len()];
        for (index, instruction) in block.instructions.iter().enumerate() {
            if let Some(prev) = instruction.prev {
                follow[prev as usize].push(index as u32);
            }
        }
        let name = block.created_name().map(Arc::from);
        Instance {
            block,
            name,
            follow,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct LogState {
    /// The log's manifest (who may write it).
    manifest: Option<Arc<Manifest>>,
    /// The host: the one key that writes the log's next event (its manifest's
    /// creator, then, after the log's ambient moves, the host of the log of the
    /// ambient it moved into: `spec/network.md` §8).
    host: Option<PublicKey>,
    /// Whether the manifest lists the host (so that the host's events pass the `key`
    /// rule without reading the manifest).
    host_allowed: bool,
    amb: Option<usize>,
    next_seq: u64,
    /// The log's last event (by seq).
    last: Option<Cid>,
    /// The log's heads: its events that no later event of the log refers to. The
    /// next linked event refers to each.
    heads: Vec<Cid>,
    /// An announced primitive waiting for its `create` in this log.
    primitive_pending: Option<(Cid, usize)>,
    /// A created ambient waiting for its body `deploy` in this log.
    body_pending: Option<(Cid, usize, Cid)>,
    /// The payload of the log's last event.
    last_payload: Option<Cid>,
    /// Completions due at a position: the event at that seq must refer to the second
    /// half of a step that moved or changed the log's ambient (`spec/events.md` §4).
    due: Vec<(u64, Cid)>,
    /// Whether the log's last event is an `open call` (a service ambient's: an
    /// `effect` event may follow it, `spec/system.md` §6).
    opened_call: bool,
}

impl LogState {
    /// A log opened with its manifest: its creator is the host.
    fn opened(manifest: Arc<Manifest>) -> LogState {
        let mut state = LogState::default();
        state.set_host(Some(*manifest.creator()), &manifest);
        state.manifest = Some(manifest);
        state
    }

    /// Makes `host` the log's host (`manifest`: the log's).
    fn set_host(&mut self, host: Option<PublicKey>, manifest: &Manifest) {
        self.host_allowed = host.is_some_and(|h| manifest.allows(&h));
        self.host = host;
    }

    /// Whether the log's manifest lists `key`.
    fn allows(&self, key: &PublicKey) -> bool {
        (self.host_allowed && self.host.as_ref() == Some(key))
            || self
                .manifest
                .as_ref()
                .is_some_and(|manifest| manifest.allows(key))
    }
}

/// The replayed state of a program.
#[derive(Clone, Debug)]
pub struct Replay {
    /// The root log's id (derived from the program address, never the address).
    root_log: Cid,
    /// The root log's manifest.
    manifest: Arc<Manifest>,
    ambs: Chunked<Arc<Amb>>,
    logs: Map<Cid, Arc<LogState>>,
    instances: Journal<Cid, Arc<Instance>>,
    /// Decoded blocks with their successor tables, by CID.
    code: Map<Cid, Arc<Instance>>,
    caps: Map<(Cid, u32), Cap>,
    /// Enabled `deploy` instructions waiting for their announcing event: the ambient
    /// the new instance goes in.
    enabled_deploys: Map<(Cid, u32), EnabledDeploy>,
    /// Announcing events whose ambient waits for its `create`: (ambient, block).
    announced: Map<Cid, (usize, Cid)>,
    /// First halves of steps, waiting for their second: the capability they claim.
    first_halves: Map<Cid, (Cid, u32)>,
    /// Capabilities consumed by a step (they were enabled, so an event naming one
    /// again breaks `reduction`, not `bytecode`).
    consumed: Journal<(Cid, u32), ()>,
    /// Applied events and their positions.
    applied: Journal<Cid, Position>,
    /// Events applied so far: the ordinal of the next.
    count: u64,
    /// The last event applied, and where it is.
    last_applied: Option<(Cid, Position)>,
    steps: u64,
    /// The effect events applied, in order.
    effects: Vec<ReplayedEffect>,
    scratch: Scratch,
}

/// What applying a checked event does to the replay (see [`Replay::effect`]).
enum Effect {
    /// The program's `create`: its body deploy is due.
    ProgramCreate,
    /// A `create`: the announced ambient exists, in its own log if `own_log`.
    Create {
        announce: Cid,
        amb: usize,
        block: Cid,
        own_log: bool,
    },
    /// A body `deploy`: the ambient's block instance starts.
    Body {
        amb: usize,
        block: Cid,
        code: Arc<Instance>,
    },
    /// A `deploy` of an instruction: announces a new ambient in `parent`.
    Announce {
        at: (Cid, u32),
        parent: usize,
        child: Cid,
        name: Arc<str>,
        position: Position,
    },
    /// A step's first half: claims the capability.
    Claim { key: (Cid, u32) },
    /// A step's second half: the step fires.
    Complete {
        first: Cid,
        /// Where the first half is.
        first_at: Position,
        cap: (Cid, u32),
        co: (Cid, u32),
        /// The heads of the logs of the opened ambient's children (log, ref, seq).
        moved: Vec<(Cid, Cid, u64)>,
        second: Position,
    },
}

/// The lists one event's check gathers, kept from one event to the next so that they
/// are allocated once (a copy of the replay starts with none).
#[derive(Debug, Default)]
struct Scratch {
    /// The event's refs, where they are: (log, ref, seq).
    refs: Vec<(Cid, Cid, u64)>,
    /// The refs the event must have.
    required: Vec<Cid>,
    /// The refs it may have besides.
    allowed: Vec<Cid>,
}

impl Clone for Scratch {
    fn clone(&self) -> Self {
        Scratch::default()
    }
}

impl Scratch {
    /// Empties the lists, then finds where each of `event`'s refs is among the events
    /// `applied` before ordinal `now` (`last`: the last event of the event's log and
    /// its seq, known without a lookup); returns the first ref that is not there.
    fn resolve(
        &mut self,
        event: &Event,
        last: Option<(Cid, u64)>,
        applied: &Journal<Cid, Position>,
        now: u64,
    ) -> Result<(), Cid> {
        self.required.clear();
        self.allowed.clear();
        self.refs.clear();
        for r in event.refs() {
            let (log, seq) = match last {
                Some((last, seq)) if last == *r => (event.log(), seq),
                _ => *applied.get(r, now).ok_or(*r)?,
            };
            self.refs.push((log, *r, seq));
        }
        Ok(())
    }
}

/// What checking an event found: what applying it does, and the ambient it is about.
struct Checked {
    effect: Effect,
    /// The ambient whose capability or content the event is about.
    subject: Option<usize>,
}

impl Replay {
    /// The root log's id: the CID of the root log manifest derived from the program
    /// manifest (`spec/events.md` §2).
    pub fn root_log(&self) -> Cid {
        self.root_log
    }

    /// The state of a deployed program before any event.
    ///
    /// `program` is the address (the program manifest's CID) and `manifest` the
    /// program manifest: the root log is the one its derived root log manifest names
    /// (`spec/events.md` §2), and that manifest governs it.
    pub fn new(program: Cid, manifest: impl Into<Arc<Manifest>>) -> Replay {
        let manifest: Arc<Manifest> = manifest.into();
        debug_assert_eq!(
            program,
            manifest.cid(),
            "Replay::new takes the program manifest"
        );
        let manifest = Arc::new(
            manifest
                .root_log()
                .expect("Replay::new takes a program manifest"),
        );
        let root_log = manifest.cid();
        let root = Amb {
            name: None,
            parent: None,
            children: BTreeSet::new(),
            caps: BTreeSet::new(),
            log: Some(root_log),
            alive: true,
            absorbed: Vec::new(),
            announced_at: None,
            placed_at: None,
            owed: None,
            brought: false,
        };
        let mut ambs = Chunked::default();
        ambs.push(Arc::new(root));
        let mut logs = Map::default();
        logs.insert(
            root_log,
            Arc::new(LogState {
                amb: Some(0),
                ..LogState::opened(Arc::clone(&manifest))
            }),
        );
        Replay {
            root_log,
            manifest,
            ambs,
            logs,
            instances: Journal::default(),
            caps: Map::default(),
            enabled_deploys: Map::default(),
            announced: Map::default(),
            first_halves: Map::default(),
            code: Map::default(),
            consumed: Journal::default(),
            applied: Journal::default(),
            count: 0,
            last_applied: None,
            steps: 0,
            effects: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// A copy of the state without the maps that grow with the history (events
    /// applied, capabilities consumed, instances started): a snapshot to complete with
    /// [`Replay::share_history`] once the replay that took it is done.
    pub(crate) fn without_history(&mut self) -> Replay {
        // Settled, the maps' recent changes are shared too, and the copy starts with
        // none.
        self.logs.settle();
        self.code.settle();
        self.caps.settle();
        self.enabled_deploys.settle();
        self.announced.settle();
        self.first_halves.settle();
        // Cloning shares the history maps; dropping the copy's share at once keeps the
        // original's maps unshared, so it goes on writing them in place.
        let mut copy = self.clone();
        copy.applied = Journal::default();
        copy.consumed = Journal::default();
        copy.instances = Journal::default();
        copy
    }

    /// Gives a snapshot taken by [`Replay::without_history`] the history of `later`,
    /// the same replay further on (a snapshot sees only the entries older than its
    /// own count).
    pub(crate) fn share_history(&mut self, later: &Replay) {
        self.applied = later.applied.clone();
        self.consumed = later.consumed.clone();
        self.instances = later.instances.clone();
    }

    /// An opened log's state, to change (copied first if a snapshot shares it).
    fn log_mut(&mut self, log: &Cid) -> &mut LogState {
        Arc::make_mut(self.logs.get_mut(log).expect("an opened log"))
    }

    /// The manifest of an opened log.
    fn writers(&self, log: &Cid) -> Arc<Manifest> {
        Arc::clone(
            self.logs[log]
                .manifest
                .as_ref()
                .expect("opened logs have manifests"),
        )
    }

    /// Where an applied event is.
    fn position(&self, cid: &Cid) -> Position {
        *self.applied.get(cid, self.count).expect("applied")
    }

    /// Steps applied so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether an event has been applied.
    pub fn has_applied(&self, cid: &Cid) -> bool {
        self.applied.contains(cid, self.count)
    }

    /// Applies one event (already checked for encoding and signature).
    pub fn apply(&mut self, cid: Cid, event: &Event, source: &dyn Source) -> Result<(), Violation> {
        // The lists are lent to the check, and kept for the next event.
        let mut scratch = std::mem::take(&mut self.scratch);
        let applied = self.apply_with(cid, event, source, &mut scratch);
        self.scratch = scratch;
        applied
    }

    /// [`Replay::apply`], gathering the event's lists in `scratch`.
    fn apply_with(
        &mut self,
        cid: Cid,
        event: &Event,
        source: &dyn Source,
        scratch: &mut Scratch,
    ) -> Result<(), Violation> {
        let log = event.log();
        // One lookup of the log's state (a shared copy) serves every check.
        let opened = self.logs.get(&log).map(Arc::clone);
        // An applied event is before its log's next position: an event at or past it
        // is new (the journal is read only for an event given again).
        let before_next = opened.as_ref().is_some_and(|s| event.seq() < s.next_seq);
        if before_next && self.applied.contains(&cid, self.count) {
            return Ok(());
        }
        let last = opened
            .as_ref()
            .and_then(|s| Some((s.last?, s.next_seq - 1)));
        scratch
            .resolve(event, last, &self.applied, self.count)
            .map_err(|r| {
                Broken::RefsResolve(format!("refers to {r}, not applied before it")).at(cid)
            })?;
        let state = match opened {
            Some(state) => state,
            None => {
                self.open_log(log, source)
                    .map_err(|d| Broken::LogId(d).at(cid))?;
                Arc::clone(&self.logs[&log])
            }
        };
        if !state.allows(event.creator()) {
            return Err(
                Broken::Key("the creator is not listed in the log's manifest".into()).at(cid),
            );
        }
        // (A log's first event answers to the `log-id` rule: signed by the manifest's
        // creator, who is the log's first host.)
        let host = state
            .host
            .filter(|host| event.seq() > 0 && host != event.creator());
        if let Some(host) = host {
            return Err(Broken::Host(format!(
                    "signed by {}, but the log's host at this point is {host} (its manifest's creator, or the host of the ambient it last moved into)",
                    event.creator()
                )).at(cid));
        }
        if event.seq() != state.next_seq {
            return Err(Broken::Order(format!(
                "seq {} where the log's next position is {}",
                event.seq(),
                state.next_seq
            ))
            .at(cid));
        }
        let seq = event.seq();
        let required = &mut scratch.required;
        required.extend(state.due.iter().filter(|d| d.0 == seq).map(|d| d.1));
        let manifest = state
            .manifest
            .as_deref()
            .expect("opened logs have manifests");
        let checked = self
            .check(event, &state, manifest, scratch, source)
            .map_err(|broken| broken.at(cid))?;
        let (required, allowed) = (&mut scratch.required, &scratch.allowed);
        // A slice's announcement refers to its block instance's body deploy; any
        // other event to the log's heads (§4: no announcement refers to a
        // sibling's).
        let slice_announcement = match &checked.effect {
            Effect::Announce { at, name, .. } if !is_primitive(name) => Some(at.0),
            _ => None,
        };
        match slice_announcement {
            Some(anchor) => required.push(anchor),
            None => required.extend(state.heads.iter().copied()),
        }
        let refs = event.refs();
        // Primitives moved out into another log's ambient: the first event about
        // one refers to the step that moved it.
        let paid = checked.subject.map(|s| self.owed_by(s)).unwrap_or_default();
        required.extend(paid.iter().map(|p| p.1));
        if let Some(missing) = required.iter().find(|r| !refs.contains(r)) {
            return Err(
                Broken::Order(format!("does not refer to {missing}, which it must")).at(cid),
            );
        }
        if let Some(extra) = refs
            .iter()
            .find(|r| !required.contains(r) && !allowed.contains(r))
        {
            return Err(Broken::Order(format!("refers to {extra}, which it must not")).at(cid));
        }
        if let (Some(_), Some(last)) = (state.last_payload, state.last) {
            return Err(Broken::Payload(format!(
                "carries a payload but is not its log's last event: {cid} follows it"
            ))
            .at(last));
        }
        // Let go of the shared copy, so the state is changed in place.
        drop(state);
        let state = self.log_mut(&log);
        state.next_seq += 1;
        state.last = Some(cid);
        if slice_announcement.is_some() {
            state.heads.retain(|h| !event.refs().contains(h));
            state.heads.push(cid);
        } else {
            state.heads.clear();
            state.heads.push(cid);
        }
        state.due.retain(|d| d.0 != seq);
        state.last_payload = event.payload();
        state.opened_call =
            event.op().opcode() == Opcode::Open && event.op().target().name() == Some("call");
        self.applied.insert(cid, (log, seq), self.count);
        self.count += 1;
        self.last_applied = Some((cid, (log, seq)));
        for (primitive, _) in paid {
            self.amb_mut(primitive).owed = None;
        }
        self.effect(checked.effect, cid, log);
        Ok(())
    }

    /// Applies what checking the event `cid` of `log` found.
    fn effect(&mut self, effect: Effect, cid: Cid, log: Cid) {
        match effect {
            Effect::ProgramCreate => {
                let block = self.manifest.program();
                self.log_mut(&log).body_pending = Some((cid, 0, block));
            }
            Effect::Create {
                announce,
                amb,
                block,
                own_log,
            } => {
                self.announced.remove(&announce);
                if own_log {
                    self.amb_mut(amb).log = Some(log);
                    self.log_mut(&log).amb = Some(amb);
                }
                let state = self.log_mut(&log);
                state.primitive_pending = None;
                state.body_pending = Some((cid, amb, block));
            }
            Effect::Body { amb, block, code } => {
                self.log_mut(&log).body_pending = None;
                let now = self.count - 1;
                self.code.insert(block, Arc::clone(&code));
                self.instances.insert(cid, Arc::clone(&code), now);
                self.enable(cid, &code, 0, amb);
            }
            Effect::Announce {
                at,
                parent,
                child,
                name,
                position,
            } => {
                self.enabled_deploys.remove(&at);
                let primitive = is_primitive(&name);
                let amb = self.new_amb(name, parent, position);
                self.announced.insert(cid, (amb, child));
                if primitive {
                    self.log_mut(&log).primitive_pending = Some((cid, amb));
                }
            }
            Effect::Claim { key } => {
                self.caps.get_mut(&key).expect("live").claimed = Some(cid);
                self.first_halves.insert(cid, key);
            }
            Effect::Complete {
                first,
                first_at: (first_log, first_seq),
                cap,
                co,
                moved,
                second,
            } => {
                self.first_halves.remove(&first);
                if first_log != log {
                    self.log_mut(&first_log).due.push((first_seq + 1, cid));
                }
                for (log, _, seq) in moved {
                    self.log_mut(&log).due.push((seq + 1, cid));
                }
                self.fire(cap, co, cid, second);
            }
        }
    }

    /// A block, decoded with its successor table (kept once read: blocks are named by
    /// their content, so every copy of the state may share what any has read).
    fn code(&mut self, block: Cid, source: &dyn Source) -> Result<Arc<Instance>, Broken> {
        if let Some(code) = self.code.get(&block) {
            return Ok(Arc::clone(code));
        }
        let code = source
            .block(&block)
            .map(|b| Arc::new(Instance::new(b)))
            .ok_or_else(|| Broken::RefsResolve(format!("block {block} is not available")))?;
        self.code.insert(block, Arc::clone(&code));
        Ok(code)
    }

    fn open_log(&mut self, log: Cid, source: &dyn Source) -> Result<(), String> {
        let manifest = source
            .manifest(&log)
            .ok_or_else(|| format!("log {log} has no stored, valid manifest"))?;
        let parent = manifest
            .parent()
            .ok_or_else(|| format!("log {log} is a second root manifest"))?;
        let Some(&(_, block)) = self.announced.get(&parent) else {
            return Err(format!(
                "log {log}'s manifest names {parent}, which announces no pending slice"
            ));
        };
        if manifest.program() != block {
            return Err(format!(
                "log {log}'s manifest names block {}, the announcing deploy {block}",
                manifest.program()
            ));
        }
        // Whoever may write the announcing deploy's log makes the slice's manifest
        // (and signs the log's first event, which covers it).
        let writers = self.writers(&self.position(&parent).0);
        if !writers.allows(manifest.creator()) {
            return Err(format!(
                "log {log}'s manifest is made by {}, who may not write the log of its announcing deploy",
                manifest.creator()
            ));
        }
        self.logs.insert(log, Arc::new(LogState::opened(manifest)));
        Ok(())
    }

    /// The debts of `amb` and of the primitives it is in, up to its log's owner.
    fn owed_by(&self, mut amb: usize) -> Vec<(usize, Cid)> {
        let mut owed = Vec::new();
        while self.ambs[amb].name.as_deref().is_some_and(is_primitive) {
            owed.extend(self.ambs[amb].owed.map(|c| (amb, c)));
            match self.ambs[amb].parent {
                Some(p) => amb = p,
                None => break,
            }
        }
        owed
    }

    /// The causal cut of an event's refs (`refs`: (log, ref, seq)), as far as it
    /// concerns `candidates`.
    fn cut(&self, event: &Event, refs: &[(Cid, Cid, u64)], candidates: &[usize]) -> Cut {
        // By log, the refs there, latest last; then the latest alone.
        let mut latest = refs.to_vec();
        latest.sort_unstable_by_key(|&(log, _, seq)| (log, seq));
        latest.reverse();
        latest.dedup_by_key(|at| at.0);
        latest.reverse();
        let mut reached: Vec<(Cid, u64)> = latest.iter().map(|&(l, _, seq)| (l, seq)).collect();
        if let Some(before) = event.seq().checked_sub(1) {
            match reached.binary_search_by_key(&event.log(), |at| at.0) {
                Ok(i) => reached[i].1 = reached[i].1.max(before),
                Err(i) => reached.insert(i, (event.log(), before)),
            }
        }
        let mut known: Vec<Cid> = reached.iter().map(|at| at.0).collect();
        // A dissolved ambient's log that is not referred to ended in the cut.
        known.extend(
            candidates
                .iter()
                .filter(|&&a| self.ambs[a].alive)
                .filter_map(|&a| self.ambs[a].log),
        );
        known.sort_unstable();
        known.dedup();
        Cut {
            reached,
            latest,
            known,
        }
    }

    /// Checks that `event` refers to an event of the log of each non-primitive
    /// ambient of `candidates` that `counts` (judged against the event's causal cut)
    /// as [`Head::Must`], and to no event of the logs of those that count as
    /// [`Head::MustNot`]. Returns the head it refers to in each log (its latest ref
    /// there): (log, ref, its seq).
    fn heads(
        &self,
        event: &Event,
        refs: &[(Cid, Cid, u64)],
        candidates: &[usize],
        counts: impl Fn(&Amb, &Cut) -> Head,
        what: &str,
    ) -> Result<Vec<(Cid, Cid, u64)>, Broken> {
        let cut = self.cut(event, refs, candidates);
        let mut heads = Vec::new();
        for &amb in candidates {
            let a = &self.ambs[amb];
            let name = a.name.as_deref().unwrap_or_default();
            if is_primitive(name) || a.brought {
                continue;
            }
            // The head is the latest event of the log it refers to (it may also refer
            // to an earlier one that is due, such as a completion).
            let head = a
                .log
                .and_then(|log| cut.latest_in(log).map(|(cid, seq)| (log, cid, seq)));
            match (counts(a, &cut), head) {
                (Head::Must | Head::May, Some(head)) => heads.push(head),
                (Head::Must, None) => {
                    return Err(Broken::Order(format!(
                        "does not refer to the last event of {name}'s log, {what}, which it must"
                    )));
                }
                (Head::MustNot, Some(_)) => {
                    return Err(Broken::Order(format!(
                        "refers to an event of {name}'s log, which it must not: {name} is not {what} in its causal past"
                    )));
                }
                (Head::May | Head::MustNot, None) => {}
            }
        }
        Ok(heads)
    }

    /// The log an ambient's events go to.
    fn log_owner(&self, mut amb: usize) -> Cid {
        loop {
            if let Some(log) = self.ambs[amb].log {
                return log;
            }
            amb = self.ambs[amb]
                .parent
                .expect("primitive ambients are inside another");
        }
    }

    /// Checks an event against the state; returns what applying it does. Adds to
    /// `scratch.required` the refs it must have and to `scratch.allowed` those it may
    /// have. One check per kind of event: the program's `create`, a slice's or a
    /// primitive's `create`, a body `deploy`, an announcing `deploy`, a step's first
    /// half, a step's second half.
    fn check(
        &mut self,
        event: &Event,
        state: &LogState,
        manifest: &Manifest,
        scratch: &mut Scratch,
        source: &dyn Source,
    ) -> Result<Checked, Broken> {
        let op = event.op();
        // The log's last event is the first half of a step not completed yet: only
        // that step's second half may follow it (checked there).
        if !op.opcode().completes_step() {
            self.between(state, None)?;
        }
        match (op.opcode(), event.at()) {
            (Opcode::Create, None) if event.log() == self.root_log && event.seq() == 0 => {
                self.check_program_create(event)
            }
            (Opcode::Create, None) => self.check_create(event, state, manifest, scratch),
            (Opcode::Deploy, None) => self.check_body(event, state, source),
            (Opcode::Deploy, Some(at)) => self.check_announce(event, at, source),
            (opcode, Some(at)) => {
                let (owner, claimed) = self.check_instruction(event, at)?;
                if opcode.starts_step() {
                    self.check_first_half(event, at, owner, claimed, scratch)
                } else {
                    self.check_second_half(event, state, at, owner, scratch)
                }
            }
            (_, None) => Err(Broken::Bytecode(
                "a capability event names no instruction".into(),
            )),
        }
    }

    /// §4: nothing is written between a step's halves: if the log's last event is the
    /// first half of a step not completed yet, only that step's second half (whose
    /// first half is `first`) may follow it.
    fn between(&self, state: &LogState, first: Option<Cid>) -> Result<(), Broken> {
        let pending = state
            .last
            .filter(|last| self.first_halves.contains_key(last));
        match pending {
            Some(p) if Some(p) != first => Err(Broken::Order(format!(
                "follows {p}, the first half of a step, before that step's second half, \
                 which it must refer to"
            ))),
            _ => Ok(()),
        }
    }

    /// The program's `create`: seq 0 of the root log, naming no ambient, signed by
    /// the program's creator (the root log manifest has no signature of its own).
    fn check_program_create(&self, event: &Event) -> Result<Checked, Broken> {
        if *event.op().target() != Target::None {
            return Err(Broken::Bytecode(
                "the program's create names no ambient".into(),
            ));
        }
        if event.creator() != self.manifest.creator() {
            return Err(Broken::LogId(format!(
                "the root log's first event is signed by {}, not by the program's creator {}",
                event.creator(),
                self.manifest.creator()
            )));
        }
        Ok(Checked {
            subject: Some(0),
            effect: Effect::ProgramCreate,
        })
    }

    /// A slice's `create` (seq 0 of its log, covering its unsigned manifest) or an
    /// announced primitive's (in its holder's log).
    fn check_create(
        &self,
        event: &Event,
        state: &LogState,
        manifest: &Manifest,
        scratch: &mut Scratch,
    ) -> Result<Checked, Broken> {
        let (announce, amb) = if event.seq() == 0 {
            if event.creator() != manifest.creator() {
                return Err(Broken::LogId(format!(
                    "the log's first event is signed by {}, not by its manifest's creator {}",
                    event.creator(),
                    manifest.creator()
                )));
            }
            let parent = manifest.parent().expect("slice manifests have a parent");
            scratch.required.push(parent);
            let (amb, _) = self.announced[&parent];
            (parent, amb)
        } else {
            state.primitive_pending.ok_or_else(|| {
                Broken::Order("a create that no announcing deploy precedes".into())
            })?
        };
        let (_, block) = self.announced[&announce];
        let expected = self.ambs[amb].name.as_deref().unwrap_or_default();
        let op = event.op();
        if op.target().name() != Some(expected) {
            return Err(Broken::Bytecode(format!(
                "create names {:?}, the block creates {expected}",
                op.target()
            )));
        }
        if event.seq() == 0 && manifest.name() != Some(expected) {
            return Err(Broken::LogId("the manifest names another ambient".into()));
        }
        Ok(Checked {
            subject: Some(amb),
            effect: Effect::Create {
                announce,
                amb,
                block,
                own_log: event.seq() == 0,
            },
        })
    }

    /// A body `deploy`: the block of the ambient its log's last event created.
    fn check_body(
        &mut self,
        event: &Event,
        state: &LogState,
        source: &dyn Source,
    ) -> Result<Checked, Broken> {
        let (_, amb, block) = state
            .body_pending
            .ok_or_else(|| Broken::Order("a body deploy that follows no create".into()))?;
        if *event.op().target() != Target::Block(block) {
            return Err(Broken::Bytecode(
                "the body deploy names another block".into(),
            ));
        }
        let code = self.code(block, source)?;
        Ok(Checked {
            subject: Some(amb),
            effect: Effect::Body { amb, block, code },
        })
    }

    /// An announcing `deploy`: an enabled `deploy` instruction, in its parent's log.
    fn check_announce(
        &mut self,
        event: &Event,
        (anchor, index): (Cid, u32),
        source: &dyn Source,
    ) -> Result<Checked, Broken> {
        let enabled = self.enabled_deploys.get(&(anchor, index)).ok_or_else(|| {
            Broken::Bytecode(format!(
                "instruction {index} of {anchor} is not an enabled deploy"
            ))
        })?;
        let parent = enabled.parent;
        let instruction = &enabled.instance.block.instructions[index as usize];
        let Target::Block(child) = instruction.target else {
            return Err(Broken::Bytecode("not a deploy instruction".into()));
        };
        if *event.op().target() != Target::Block(child) {
            return Err(Broken::Bytecode(
                "deploys another block than the instruction".into(),
            ));
        }
        if self.log_owner(parent) != event.log() {
            return Err(Broken::LogId(
                "announced in another log than its parent's".into(),
            ));
        }
        let code = self.code(child, source)?;
        let name = code
            .name
            .clone()
            .ok_or_else(|| Broken::RefsResolve(format!("block {child} is not available")))?;
        Ok(Checked {
            subject: Some(parent),
            effect: Effect::Announce {
                at: (anchor, index),
                parent,
                child,
                name,
                position: (event.log(), event.seq()),
            },
        })
    }

    /// A capability event's instruction: the op is instruction `at` of its block
    /// instance, enabled and not consumed, and the event is in its holder's log.
    /// Returns the holder and the first half that claimed the capability, if any.
    fn check_instruction(
        &self,
        event: &Event,
        (anchor, index): (Cid, u32),
    ) -> Result<(usize, Option<Cid>), Broken> {
        let key = (anchor, index);
        let op = event.op();
        // A live capability knows its instance; otherwise the journal tells.
        let instance = match self.caps.get(&key) {
            Some(cap) => &cap.instance,
            None => self
                .instances
                .get(&anchor, self.count)
                .ok_or_else(|| Broken::Bytecode(format!("{anchor} started no block instance")))?,
        };
        let instruction = instance
            .block
            .instructions
            .get(index as usize)
            .ok_or_else(|| Broken::Bytecode(format!("the block has no instruction {index}")))?;
        if instruction.op != op.opcode() || instruction.target != *op.target() {
            return Err(Broken::Bytecode(format!(
                "the op is not instruction {index} of its block"
            )));
        }
        let cap = self.caps.get(&key).ok_or_else(|| {
            if self.consumed.contains(&key, self.count) {
                Broken::Reduction(format!(
                    "instruction {index} was consumed by an earlier step"
                ))
            } else {
                Broken::Bytecode(format!(
                    "instruction {index} is not enabled (the instruction it follows has not fired)"
                ))
            }
        })?;
        if self.log_owner(cap.owner) != event.log() {
            return Err(Broken::LogId(
                "recorded in another log than its holder's".into(),
            ));
        }
        Ok((cap.owner, cap.claimed))
    }

    /// A step's first half (`in`, `out`, `open_`): claims a capability no step
    /// consumed; an `in` also refers to the heads of the logs nested in the mover.
    fn check_first_half(
        &self,
        event: &Event,
        key: (Cid, u32),
        owner: usize,
        claimed: Option<Cid>,
        scratch: &mut Scratch,
    ) -> Result<Checked, Broken> {
        if let Some(other) = claimed {
            return Err(Broken::Reduction(format!(
                "the capability is already consumed by {other}"
            )));
        }
        if event.op().opcode() == Opcode::In {
            // The mover takes its whole content along: refer to the last event of
            // every log nested in it.
            let nested = self.nested(owner);
            let heads = self.heads(
                event,
                &scratch.refs,
                &nested,
                |a, cut| match (a.alive, cut.beyond(a.announced_at)) {
                    (_, true) => Head::MustNot,
                    (true, false) => Head::Must,
                    // Dissolved inside the mover, maybe after it moved.
                    (false, false) => Head::May,
                },
                "nested in the mover",
            )?;
            scratch.allowed.extend(heads.iter().map(|h| h.1));
        }
        Ok(Checked {
            subject: Some(owner),
            effect: Effect::Claim { key },
        })
    }

    /// A step's second half (`in_`, `out_`, `open`): refers to its pending first
    /// half, and the two form a redex; an `open` also refers to the heads of the
    /// opened ambient's children's logs.
    fn check_second_half(
        &self,
        event: &Event,
        state: &LogState,
        key: (Cid, u32),
        owner: usize,
        scratch: &mut Scratch,
    ) -> Result<Checked, Broken> {
        let opcode = event.op().opcode();
        let dual = opcode.dual().expect("a capability");
        let first = event
            .refs()
            .iter()
            .find(|r| {
                self.first_halves
                    .get(*r)
                    .is_some_and(|k| self.caps[k].instruction(k.1).op == dual)
            })
            .copied()
            .ok_or_else(|| {
                Broken::Duality(format!("refers to no pending {} event", dual.mnemonic()))
            })?;
        self.between(state, Some(first))?;
        scratch.required.push(first);
        let first_at = scratch
            .refs
            .iter()
            .find(|r| r.1 == first)
            .map(|&(log, _, seq)| (log, seq))
            .expect("a ref");
        let first_key = self.first_halves[&first];
        let (cap_key, co_key) = if opcode == Opcode::Open {
            (key, first_key)
        } else {
            (first_key, key)
        };
        self.legal(cap_key, co_key).map_err(Broken::Reduction)?;
        // An `open` refers to the last event of the log of each child of the opened
        // ambient, whose next event refers to the `open`.
        let mut moved = Vec::new();
        if opcode == Opcode::Open {
            let opened = self.caps[&first_key].owner;
            let children: Vec<usize> = self.ambs[opened].children.iter().copied().collect();
            moved = self.heads(
                event,
                &scratch.refs,
                &children,
                |a, cut| {
                    if cut.beyond(a.placed_at) {
                        Head::MustNot
                    } else {
                        Head::Must
                    }
                },
                "a child of the opened ambient",
            )?;
            for &(log, r, seq) in &moved {
                if self.logs[&log].next_seq > seq + 1 {
                    return Err(Broken::Order(format!(
                        "refers to {r} as the last event of its log, but the log goes on after it without referring to this `open`"
                    )));
                }
            }
            scratch.allowed.extend(moved.iter().map(|m| m.1));
        }
        Ok(Checked {
            subject: Some(owner),
            effect: Effect::Complete {
                first,
                first_at,
                cap: cap_key,
                co: co_key,
                moved,
                second: (event.log(), event.seq()),
            },
        })
    }

    /// An ambient, to change (copied first if a snapshot shares it).
    fn amb_mut(&mut self, amb: usize) -> &mut Amb {
        Arc::make_mut(&mut self.ambs[amb])
    }

    fn new_amb(&mut self, name: Arc<str>, parent: usize, announced_at: Position) -> usize {
        self.ambs.push(Arc::new(Amb {
            name: Some(name),
            parent: Some(parent),
            children: BTreeSet::new(),
            caps: BTreeSet::new(),
            log: None,
            alive: true,
            absorbed: Vec::new(),
            announced_at: Some(announced_at),
            placed_at: Some(announced_at),
            owed: None,
            brought: false,
        }));
        let id = self.ambs.len() - 1;
        self.amb_mut(parent).children.insert(id);
        id
    }

    /// Enables the instructions that follow instruction `after` of `instance`
    /// (started by the event `anchor`), placing them in ambient `context`.
    fn enable(&mut self, anchor: Cid, instance: &Arc<Instance>, after: u32, context: usize) {
        for &index in &instance.follow[after as usize] {
            let op = instance.block.instructions[index as usize].op;
            let instance = Arc::clone(instance);
            if op == Opcode::Deploy {
                let parent = context;
                let enabled = EnabledDeploy { parent, instance };
                self.enabled_deploys.insert((anchor, index), enabled);
            } else {
                let kind = cap_kind(op);
                self.caps.insert(
                    (anchor, index),
                    Cap {
                        owner: context,
                        kind,
                        claimed: None,
                        instance,
                    },
                );
                self.amb_mut(context).caps.insert((anchor, index));
            }
        }
    }

    /// Whether the capability `cap` and co-capability `co` form a redex now.
    fn legal(&self, cap: (Cid, u32), co: (Cid, u32)) -> Result<(), String> {
        let (c, d) = (&self.caps[&cap], &self.caps[&co]);
        let (subject, object) = (c.owner, d.owner);
        let target = c.instruction(cap.1).target.name();
        let co_target = d.instruction(co.1).target.name();
        let name = |a: usize| self.ambs[a].name.as_deref();
        let admits = |who: usize| co_target.is_none() || co_target == name(who);
        let ok = match c.kind {
            CapKind::In => {
                subject != object
                    && self.ambs[subject].parent.is_some()
                    && self.ambs[subject].parent == self.ambs[object].parent
                    && name(object) == target
                    && d.kind == CapKind::InCo
                    && admits(subject)
            }
            CapKind::Out => {
                self.ambs[subject].parent == Some(object)
                    && name(object) == target
                    && d.kind == CapKind::OutCo
                    && admits(subject)
            }
            CapKind::Open => {
                self.ambs[object].parent == Some(subject)
                    && name(object) == target
                    && d.kind == CapKind::OpenCo
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{:?} {:?} of {:?} and {:?} of {:?} are not a redex in the replayed state",
                c.kind,
                target,
                name(subject),
                d.kind,
                name(object)
            ))
        }
    }

    /// Applies a step whose second half is the event at `second`.
    fn fire(&mut self, cap: (Cid, u32), co: (Cid, u32), second_cid: Cid, second: Position) {
        let c = self.caps.remove(&cap).expect("live");
        let d = self.caps.remove(&co).expect("live");
        let now = self.count - 1;
        self.consumed.insert(cap, (), now);
        self.consumed.insert(co, (), now);
        let (subject, object) = (c.owner, d.owner);
        self.amb_mut(subject).caps.remove(&cap);
        self.amb_mut(object).caps.remove(&co);
        match c.kind {
            CapKind::In | CapKind::Out => {
                let destination = if c.kind == CapKind::In {
                    object
                } else {
                    self.ambs[object]
                        .parent
                        .expect("out of a child of something")
                };
                let old = self.ambs[subject].parent.expect("movers have parents");
                self.amb_mut(old).children.remove(&subject);
                self.amb_mut(destination).children.insert(subject);
                self.amb_mut(subject).parent = Some(destination);
                self.amb_mut(subject).placed_at = Some(second);
                // Control transfer: the mover's log goes on under the host of the
                // log of the ambient it is now in.
                if let Some(mover) = self.ambs[subject].log {
                    let host = self.logs[&self.log_owner(destination)].host;
                    let state = self.log_mut(&mover);
                    let manifest = Arc::clone(state.manifest.as_ref().expect("opened"));
                    state.set_host(host, &manifest);
                }
                self.enable(cap.0, &c.instance, cap.1, subject);
                self.enable(co.0, &d.instance, co.1, object);
                // A primitive's events go to its new holder's log from now on.
                let holder = self.log_owner(subject);
                if self.ambs[subject].log.is_none() && holder != second.0 {
                    self.amb_mut(subject).owed = Some(second_cid);
                }
            }
            _ => {
                // subject opens object.
                let children: Vec<usize> = self.ambs[object].children.iter().copied().collect();
                for child in children {
                    self.amb_mut(child).parent = Some(subject);
                    self.amb_mut(child).placed_at = Some(second);
                    self.amb_mut(subject).children.insert(child);
                }
                let caps: Vec<(Cid, u32)> = self.ambs[object].caps.iter().copied().collect();
                for key in caps {
                    self.caps.get_mut(&key).expect("live").owner = subject;
                    self.amb_mut(subject).caps.insert(key);
                }
                self.amb_mut(object).children.clear();
                self.amb_mut(object).caps.clear();
                self.amb_mut(object).alive = false;
                self.amb_mut(subject).absorbed.push(object);
                self.amb_mut(subject).children.remove(&object);
                self.enable(co.0, &d.instance, co.1, subject);
                self.enable(cap.0, &c.instance, cap.1, subject);
            }
        }
        self.steps += 1;
    }

    /// Every ambient nested in `amb`, at any depth, including those dissolved inside
    /// it: an `open` inside the mover may be concurrent with its `in` and replayed
    /// before it.
    fn nested(&self, amb: usize) -> Vec<usize> {
        let mut nested = Vec::new();
        let inside = |a: usize| {
            self.ambs[a]
                .children
                .iter()
                .chain(&self.ambs[a].absorbed)
                .copied()
        };
        let mut stack: Vec<usize> = inside(amb).collect();
        while let Some(a) = stack.pop() {
            nested.push(a);
            stack.extend(inside(a));
        }
        nested
    }

    /// Checks the end of a replay and says how far the run goes: nothing the applied
    /// events promise is missing (rules `missing-log`, `missing-event`: see
    /// `check_promises`); every step has both halves; and the last event of every
    /// log carries a payload exactly when its slice is fully executed, with the CID of
    /// its value (`spec/events.md` §6). The run is complete when its replayed term has
    /// no redex, else a prefix (an interrupted run) that stops where the replay did.
    pub fn finish(&self, source: &dyn Source) -> Result<Completeness, Violation> {
        // What is missing first: it explains the rest.
        self.check_promises(source)?;
        if let Some((first, _)) = self.first_halves.iter().min_by_key(|(c, _)| **c) {
            return Err(Violation {
                event: *first,
                rule: "duality",
                detail: "a capability event that no co-capability event completes".into(),
            });
        }
        let Some((last, (log, seq))) = self.last_applied else {
            return Err(Violation {
                event: self.root_log,
                rule: MISSING_EVENT,
                detail: format!(
                    "the program's create (seq 0 of log {}) is not stored",
                    self.root_log
                ),
            });
        };
        let (mut term, nodes) = self.to_ast_with_map(source);
        term.canonicalize();
        // An interrupted run (a committed prefix: the term still has a redex) may not
        // have written the last event of a live slice that still holds capabilities,
        // or may have (its payload then announces the value it will have); only
        // capability-free and dissolved slices, which cannot change, are judged.
        let interrupted = amb_engine::Engine::new(&term, amb_engine::Limits::default())
            .ok()
            .and_then(|mut engine| engine.step().ok().flatten())
            .is_some();
        let completeness = if interrupted {
            Completeness::Incomplete(Stop {
                steps: self.steps,
                events: self.count,
                event: last,
                log,
                seq,
            })
        } else {
            Completeness::Complete
        };
        let Ok((compiled, map)) =
            amb_bytecode::compile_with_map(&term, &amb_bytecode::BlockLimits::default())
        else {
            return Ok(completeness);
        };
        let mut has_caps = vec![false; term.len()];
        for index in (0..term.len()).rev() {
            let id = term.node_id(index);
            has_caps[index] = matches!(term.node(id).kind(), amb_syntax::NodeKind::Cap(_))
                || term.children(Some(id)).any(|c| has_caps[c.index()]);
        }
        let mut expected: HashMap<Cid, Option<Cid>> = HashMap::new();
        let root_free = !term.roots().any(|r| has_caps[r.index()]);
        expected.insert(self.root_log, root_free.then_some(compiled.root));
        for (amb, node) in nodes {
            if let Some(log) = self.ambs[amb].log {
                let value = (!has_caps[node.index()]).then(|| {
                    let block = map.block[node.index()].expect("ambients have blocks");
                    Block::single_deploy(block).encode_with_cid().0
                });
                expected.insert(log, value);
            }
        }
        let mut logs: Vec<(&Cid, &Arc<LogState>)> = self.logs.iter().collect();
        logs.sort_by_key(|(c, _)| **c);
        for (log, state) in logs {
            let Some(last) = state.last else { continue };
            let want = expected.get(log).copied().flatten();
            if interrupted && want.is_none() && expected.contains_key(log) {
                continue;
            }
            if state.last_payload != want {
                return Err(Violation {
                    event: last,
                    rule: "payload",
                    detail: match want {
                        Some(v) => format!(
                            "the slice is fully executed: its last event must carry {v}, found {:?}",
                            state.last_payload
                        ),
                        None => {
                            "the slice is not fully executed (or was dissolved): no payload".into()
                        }
                    },
                });
            }
        }
        Ok(completeness)
    }

    /// Checks that nothing the applied events promise is missing: a recorded run
    /// commits whole steps with the `deploy`s they release and the logs those start
    /// (`spec/events.md` §8), so in whatever it stores every announced slice has its
    /// log (`missing-log`), and every announced primitive its `create`, every `create`
    /// its body `deploy`, every enabled `deploy` instruction its announcing event
    /// (`missing-event`). The first broken promise is named by the event that makes it.
    fn check_promises(&self, source: &dyn Source) -> Result<(), Violation> {
        let mut announced: Vec<(Cid, usize, Cid)> = self
            .announced
            .iter()
            .map(|(c, &(amb, block))| (*c, amb, block))
            .collect();
        announced.sort_unstable();
        if let Some(&(announce, amb, block)) = announced.first() {
            let (log, seq) = self.position(&announce);
            let name = self.ambs[amb].name.as_deref().unwrap_or_default();
            return Err(if is_primitive(name) {
                Violation {
                    event: announce,
                    rule: MISSING_EVENT,
                    detail: format!(
                        "announces the primitive {name} at seq {seq} of log {log}, whose create (due at seq {} of that log) is not stored",
                        seq + 1
                    ),
                }
            } else {
                Violation {
                    event: announce,
                    rule: MISSING_LOG,
                    detail: format!(
                        "announces the slice {name} at seq {seq} of log {log}, but no event of its log is stored: {}",
                        self.slice_log(announce, name, block, log, source)
                    ),
                }
            });
        }
        let mut bodies: Vec<(Cid, Cid, u64, usize)> = self
            .logs
            .iter()
            .filter_map(|(log, state)| {
                let (create, amb, _) = state.body_pending?;
                Some((create, *log, state.next_seq, amb))
            })
            .collect();
        bodies.sort_unstable();
        if let Some(&(create, log, seq, amb)) = bodies.first() {
            let name = self.ambs[amb].name.as_deref().unwrap_or("the program");
            return Err(Violation {
                event: create,
                rule: MISSING_EVENT,
                detail: format!(
                    "creates {name}, whose body deploy (due at seq {seq} of log {log}) is not stored"
                ),
            });
        }
        let mut enabled: Vec<((Cid, u32), usize)> = self
            .enabled_deploys
            .iter()
            .map(|(at, deploy)| (*at, deploy.parent))
            .collect();
        enabled.sort_unstable();
        if let Some(&((anchor, index), parent)) = enabled.first() {
            return Err(Violation {
                event: anchor,
                rule: MISSING_EVENT,
                detail: format!(
                    "instruction {index} of the block instance this event starts is an enabled deploy, but its announcing deploy (due in log {}) is not stored",
                    self.log_owner(parent)
                ),
            });
        }
        Ok(())
    }

    /// The log id of the slice `name` (block `block`) that the `deploy` `announce` in
    /// `log` announces, as far as it can be known: a one-host recorder gives a slice
    /// manifest the keys of the announcing log and makes it by one of them, so each
    /// is tried, and the one `source` holds is named; else those ids (a delegated
    /// slice's manifest lists only the keys it needs, which the replay cannot know
    /// before it is stored).
    fn slice_log(
        &self,
        announce: Cid,
        name: &str,
        block: Cid,
        log: Cid,
        source: &dyn Source,
    ) -> String {
        let keys = self.writers(&log).keys().to_vec();
        let ids: Vec<Cid> = keys
            .iter()
            .map(|creator| {
                Manifest::new_slice(block, name.to_string(), keys.clone(), *creator, announce).cid()
            })
            .collect();
        match ids.iter().find(|id| source.manifest(id).is_some()) {
            Some(id) => format!("its manifest, log id {id}, is stored"),
            None => {
                let ids: Vec<String> = ids.iter().map(Cid::to_string).collect();
                format!("nor is its manifest (log id {})", ids.join(" or "))
            }
        }
    }

    /// The current term: live ambients, and live capabilities with their continuations
    /// (read from the blocks, fetched from `source` where needed).
    pub fn to_ast(&self, source: &dyn Source) -> Ast {
        self.to_ast_with_map(source).0
    }

    /// [`Replay::to_ast`] (not canonicalized) with, for each live ambient, the node it
    /// became, its own log (`None` for a primitive, which lives in its parent's log)
    /// and that log's host (the key that writes its next event). The root is not a
    /// node: its log is the program's, its host is [`Replay::program_host`].
    pub fn to_ast_with_logs(&self, source: &dyn Source) -> (Ast, Vec<AmbientLog>) {
        let (ast, nodes) = self.to_ast_with_map(source);
        let logs = nodes
            .into_iter()
            .map(|(amb, node)| {
                let log = self.ambs[amb].log;
                let host = log.and_then(|log| self.logs.get(&log).and_then(|state| state.host));
                AmbientLog { node, log, host }
            })
            .collect();
        (ast, logs)
    }

    /// The host of the program's own log (the root ambient's).
    pub fn program_host(&self) -> Option<PublicKey> {
        self.logs.get(&self.root_log).and_then(|state| state.host)
    }

    /// [`Replay::to_ast`] with the node each live ambient became.
    fn to_ast_with_map(&self, source: &dyn Source) -> (Ast, Vec<(usize, NodeId)>) {
        self.content_with_map(0, source)
    }

    /// The content of the ambient `top` as a term (its children and capabilities
    /// at the top level), with the node each ambient in it became.
    fn content_with_map(&self, top: usize, source: &dyn Source) -> (Ast, Vec<(usize, NodeId)>) {
        let mut nodes = Vec::new();
        let mut ast = Ast::new();
        let mut blocks: HashMap<Cid, Option<Instance>> = HashMap::new();
        let mut stack: Vec<(usize, Option<NodeId>)> = vec![(top, None)];
        while let Some((amb, node)) = stack.pop() {
            for key in &self.ambs[amb].caps {
                let instance = &self.caps[key].instance;
                instruction_subtree(&mut ast, instance, key.1, node, source, &mut blocks);
            }
            for &child in &self.ambs[amb].children {
                let name = self.ambs[child].name.as_deref().unwrap_or_default();
                let symbol = ast.intern(name);
                let copy = ast.push_ambient(node, symbol, Span::default());
                nodes.push((child, copy));
                stack.push((child, Some(copy)));
            }
        }
        ast.finish_building();
        (ast, nodes)
    }
}

/// The causal past of an event, as far as the logs it refers to tell: by log, the
/// highest seq it reaches (its own log: the position before it).
///
/// Each list is sorted by log (refs are few, except those of a step that moves or
/// opens a large ambient: binary search serves both).
struct Cut {
    /// (log, seq).
    reached: Vec<(Cid, u64)>,
    /// By log: the latest event it refers to there, and that event's seq.
    latest: Vec<(Cid, Cid, u64)>,
    /// Logs whose reach is known: those referred to, and the logs of the live
    /// ambients judged (a log of theirs that is not referred to is not reached).
    known: Vec<Cid>,
}

impl Cut {
    /// Whether the event at `at` is known to be outside the causal past (it is in a
    /// log whose reach is known, past that reach).
    fn beyond(&self, at: Option<Position>) -> bool {
        at.is_some_and(|(log, seq)| {
            self.known.binary_search(&log).is_ok()
                && self
                    .reached
                    .binary_search_by_key(&log, |at| at.0)
                    .map_or(true, |i| seq > self.reached[i].1)
        })
    }

    /// The latest event referred to in `log`, and its seq.
    fn latest_in(&self, log: Cid) -> Option<(Cid, u64)> {
        let i = self.latest.binary_search_by_key(&log, |at| at.0).ok()?;
        Some((self.latest[i].1, self.latest[i].2))
    }
}

/// Whether an event must, may or must not refer to a log's last event.
enum Head {
    Must,
    May,
    MustNot,
}

/// Adds instruction `index` of `instance` and everything that follows it to `ast`,
/// including the bodies of the ambients it deploys.
fn instruction_subtree(
    ast: &mut Ast,
    instance: &Instance,
    index: u32,
    parent: Option<NodeId>,
    source: &dyn Source,
    cache: &mut HashMap<Cid, Option<Instance>>,
) {
    // (block, instruction, parent node); `None` block means `instance` itself.
    let mut stack: Vec<(Option<Cid>, u32, Option<NodeId>)> = vec![(None, index, parent)];
    while let Some((from, i, parent)) = stack.pop() {
        let current = match from {
            None => instance,
            Some(cid) => cache[&cid].as_ref().expect("pushed only when available"),
        };
        let instruction = &current.block.instructions[i as usize];
        let next = current.follow[i as usize].clone();
        let node = match &instruction.target {
            Target::Block(child) if instruction.op == Opcode::Deploy => {
                let child = *child;
                let child_instance = cache
                    .entry(child)
                    .or_insert_with(|| source.block(&child).map(Instance::new));
                let name = child_instance
                    .as_ref()
                    .and_then(|c| c.block.created_name())
                    .unwrap_or("?");
                let symbol = ast.intern(name);
                let node = ast.push_ambient(parent, symbol, Span::default());
                if let Some(child_instance) = child_instance {
                    for &j in child_instance.follow[0].iter().rev() {
                        stack.push((Some(child), j, Some(node)));
                    }
                }
                node
            }
            target => {
                let kind = cap_kind(instruction.op);
                let symbol = target.name().map(|n| ast.intern(n));
                ast.push_cap(parent, kind, symbol, Span::default())
            }
        };
        for j in next.into_iter().rev() {
            stack.push((from, j, Some(node)));
        }
    }
}

/// The capability kind of a capability opcode ([`Opcode::cap_kind`]; `replay/view.rs`
/// reads it through here).
fn cap_kind(op: Opcode) -> CapKind {
    op.cap_kind().expect("a capability opcode")
}
