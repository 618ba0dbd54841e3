//! Order independence of replay on random programs (`spec/events.md` §4, §7).
//!
//! `replay_orders.rs` checks random topological orders of a fixed set of programs;
//! this test draws the programs too: small random ROAM programs (at most
//! [`MAX_NODES`] nodes), over a pool of 2–4 names in which about half the programs
//! have one or two protocol primitives (`func`, `call`, `arg`, `return`: no logs of
//! their own, their events go to their holder's), and in which names repeat (several
//! ambients with one name). Half the programs are built from redex motifs:
//!
//! - `n[in m.P | Q] | m[in_ n.R | S]` (the co-capability named or the wildcard),
//! - `m[n[out m.P | Q] | out_ n.R | S]`,
//! - `open n.P | n[open_.Q | R]`,
//! - a mover that brings what its new siblings need (`open_` or `in_ k`),
//! - an ambient around a process, a capability prefix, a parallel composition,
//!
//! the holes being random processes again (so ambients nest); the other half are
//! [`Script`]ed: a run of 2–12 steps and creations is drawn over a virtual tree of
//! ambients, then written as the program that takes it, so that steps enable steps
//! (an ambient is created by a step, moves, moves again, is opened), which motifs
//! rarely do. `the_generator_covers_what_it_should` keeps the mix honest.
//!
//! Each program is planned and recorded (as in `replay_orders.rs`); the plan order must
//! replay to the engine's final term; `verify_events` (which orders the events itself,
//! so the order it is given does not matter) must accept them and give the same term
//! and steps; then [`ORDERS`] topological orders, of four kinds (uniformly random,
//! depth first, logs by random priority, one slow log), are each applied to a fresh
//! [`Replay`] and must be accepted (a panic counts as a refusal) and end in the
//! engine's final term and step count. Programs that do not compile or plan (a limit)
//! are skipped, but at least half the programs must be usable.
//!
//! A failure is minimised (proptest's shrinking, then greedy edits of the tree that
//! keep the same kind of failure) and reported with the order and the error. Knobs:
//! `AMB_REPLAY_CASES` (programs, default [`DEFAULT_CASES`]), `AMB_REPLAY_ORDERS`
//! (orders per program), `AMB_REPLAY_MAX_NODES`, `AMB_REPLAY_SEED` (a number, or
//! `random`; fixed by default, so a run is reproducible), and `AMB_REPLAY_HUNT` (go on
//! after a failure and report the smallest program of each kind), e.g.
//! `AMB_REPLAY_HUNT=1 AMB_REPLAY_CASES=10000 cargo test -p amb-vm --test replay_random`.
//! [`REGRESSIONS`] are checked on every run, in many orders.

mod common;
use common::{NotRecorded, Recording, record_source};

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{self, AssertUnwindSafe};

use amb_bytecode::Cid;
use amb_engine::Limits;
use amb_log::{Event, Manifest, SigningKey, Store};
use amb_syntax::CapKind;
use amb_vm::{
    replay::{Replay, Source},
    verify::{CachedSource, StoreSource, check_event, verify_events},
};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner},
};

/// Programs per run unless `AMB_REPLAY_CASES` says otherwise.
const DEFAULT_CASES: u32 = 800;
/// Topological orders per program unless `AMB_REPLAY_ORDERS` says otherwise.
const ORDERS: usize = 12;
/// Orders per regression program.
const REGRESSION_ORDERS: usize = 400;
/// Largest generated program, in AST nodes (ambients and capabilities), unless
/// `AMB_REPLAY_MAX_NODES` says otherwise.
const MAX_NODES: usize = 25;

fn max_nodes() -> usize {
    env_number("AMB_REPLAY_MAX_NODES", MAX_NODES)
}

/// Honest recorded programs that this test found the verifier refusing (in every
/// order, the plan's too), minimised. Before bef8aaa ("heads: the latest ref into a
/// log is its head") they failed with `rule order: refers to more than one event of
/// X's log`: `Replay::heads` accepted one ref per log, where §4 asks for two refs
/// into X's log, a completion and a head:
///
/// - `in`: the primitive `func` enters `a` (a step recorded in `b`'s log, whose next
///   event must refer to `a`'s `in_`: completion of a mover); `a`'s log goes on (it
///   announces `x`); then `b` enters `c`, and its `in c` must also refer to the last
///   event of `a`'s log (a nested head): the `deploy` announcing `x`, after the
///   `in_`.
/// - `open`: the primitive `func` enters `n` (recorded in the root log), then `n`
///   enters `m` (its log goes on: `in m`), and the root opens `m`: the `open m`
///   must refer to `n`'s `in_` (completion) and to the last event of `n`'s log,
///   `in m` (a child of the opened ambient).
/// - the same two, one level down (the logs involved are slices', not the root's).
const REGRESSIONS: &[&str] = &[
    "b[in c | func[in a] | a[in_.x[]]] | c[in_]",
    "func[in n] | n[in_.in m] | m[in_ n.open_] | open m",
    "d[b[in c | func[in a] | a[in_.x[]]] | c[in_]]",
    "b[func[in n] | n[in_.in m] | m[in_ n.open_] | open m]",
];

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------
// Programs

/// A part of a generated program; names are indices into the program's pool.
#[derive(Clone, Debug)]
enum Gen {
    Amb(u8, Vec<Gen>),
    Cap(CapKind, Option<u8>, Vec<Gen>),
}

const BASE: [&str; 4] = ["a", "b", "c", "d"];
const PRIMITIVES: [&str; 4] = ["func", "call", "arg", "return"];

/// 2–4 names; in about half the programs one or two of them are primitives.
fn pool() -> impl Strategy<Value = Vec<&'static str>> {
    (
        2usize..=4,
        prop_oneof![1 => Just(0usize), 1 => 1usize..=2],
        0usize..4,
    )
        .prop_map(|(size, primitives, first)| {
            let mut names: Vec<&str> = (0..primitives)
                .map(|i| PRIMITIVES[(first + i) % 4])
                .collect();
            names.extend(BASE.iter().take(size - primitives));
            names
        })
}

fn name() -> impl Strategy<Value = u8> {
    0u8..4
}

/// A capability with its target: `in`/`out`/`open` named, `in_`/`out_` named or
/// (one time in three) the wildcard, `open_` never named.
fn cap_head() -> impl Strategy<Value = (CapKind, Option<u8>)> {
    prop_oneof![
        3 => (
            prop_oneof![Just(CapKind::In), Just(CapKind::Out), Just(CapKind::Open)],
            name()
        )
            .prop_map(|(kind, n)| (kind, Some(n))),
        2 => (
            prop_oneof![Just(CapKind::InCo), Just(CapKind::OutCo)],
            prop::option::weighted(0.67, name())
        ),
        1 => Just((CapKind::OpenCo, None)),
    ]
}

/// A co-capability of a motif: names the mover, or is the wildcard.
fn co_target() -> impl Strategy<Value = bool> {
    prop::bool::weighted(0.75)
}

fn first(head: Gen, mut rest: Vec<Gen>) -> Vec<Gen> {
    rest.insert(0, head);
    rest
}

/// A process: parallel parts.
fn process() -> impl Strategy<Value = Vec<Gen>> {
    let leaf = prop_oneof![
        1 => Just(Vec::new()),
        2 => name().prop_map(|n| vec![Gen::Amb(n, Vec::new())]),
        2 => cap_head().prop_map(|(kind, t)| vec![Gen::Cap(kind, t, Vec::new())]),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let hole = || prop_oneof![1 => Just(Vec::new()), 1 => inner.clone()];
        prop_oneof![
            // n[in m.P | Q] | m[in_ n.R | S]
            3 => (name(), name(), co_target(), hole(), hole(), hole(), hole()).prop_map(
                |(n, m, named, p, q, r, s)| {
                    vec![
                        Gen::Amb(n, first(Gen::Cap(CapKind::In, Some(m), p), q)),
                        Gen::Amb(m, first(Gen::Cap(CapKind::InCo, named.then_some(n), r), s)),
                    ]
                }
            ),
            // m[n[out m.P | Q] | out_ n.R | S]
            3 => (name(), name(), co_target(), hole(), hole(), hole(), hole()).prop_map(
                |(m, n, named, p, q, r, s)| {
                    let child = Gen::Amb(n, first(Gen::Cap(CapKind::Out, Some(m), p), q));
                    let mut body = vec![child, Gen::Cap(CapKind::OutCo, named.then_some(n), r)];
                    body.extend(s);
                    vec![Gen::Amb(m, body)]
                }
            ),
            // open n.P | n[open_.Q | R]
            3 => (name(), hole(), hole(), hole()).prop_map(|(n, p, q, r)| {
                vec![
                    Gen::Cap(CapKind::Open, Some(n), p),
                    Gen::Amb(n, first(Gen::Cap(CapKind::OpenCo, None, q), r)),
                ]
            }),
            // n[in m.P | open_ | Q] | m[in_ n.R | open n | S], or
            // n[in m.P | in_ k | Q] | m[in_ n.R | k[in n] | S].
            2 => (name(), name(), prop::option::of(name()), hole(), hole())
                .prop_map(|(n, m, k, q, s)| {
                    let (held, waiting) = match k {
                        None => (
                            Gen::Cap(CapKind::OpenCo, None, Vec::new()),
                            Gen::Cap(CapKind::Open, Some(n), Vec::new()),
                        ),
                        Some(k) => (
                            Gen::Cap(CapKind::InCo, Some(k), Vec::new()),
                            Gen::Amb(k, vec![Gen::Cap(CapKind::In, Some(n), Vec::new())]),
                        ),
                    };
                    let mut mover = vec![Gen::Cap(CapKind::In, Some(m), Vec::new()), held];
                    mover.extend(q);
                    let mut target = vec![Gen::Cap(CapKind::InCo, Some(n), Vec::new()), waiting];
                    target.extend(s);
                    vec![Gen::Amb(n, mover), Gen::Amb(m, target)]
                }),
            2 => (name(), inner.clone()).prop_map(|(n, body)| vec![Gen::Amb(n, body)]),
            2 => (cap_head(), inner.clone())
                .prop_map(|((kind, t), cont)| vec![Gen::Cap(kind, t, cont)]),
            2 => (inner.clone(), inner).prop_map(|(mut a, b)| {
                a.extend(b);
                a
            }),
        ]
    })
}

/// A program tree with its names: what is printed, run and minimised.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    Amb(String, Vec<Term>),
    Cap(CapKind, Option<String>, Vec<Term>),
}

impl Term {
    fn children(&self) -> &[Term] {
        match self {
            Term::Amb(_, body) | Term::Cap(_, _, body) => body,
        }
    }

    fn with_children(&self, children: Vec<Term>) -> Term {
        match self {
            Term::Amb(n, _) => Term::Amb(n.clone(), children),
            Term::Cap(k, t, _) => Term::Cap(*k, t.clone(), children),
        }
    }
}

fn resolve(pool: &[&str], parts: &[Gen]) -> Vec<Term> {
    let name = |n: u8| pool[usize::from(n) % pool.len()].to_string();
    parts
        .iter()
        .map(|part| match part {
            Gen::Amb(n, body) => Term::Amb(name(*n), resolve(pool, body)),
            Gen::Cap(k, t, cont) => Term::Cap(*k, t.map(name), resolve(pool, cont)),
        })
        .collect()
}

/// The tree of a parsed program.
fn from_ast(ast: &amb_syntax::Ast, parent: Option<amb_syntax::NodeId>) -> Vec<Term> {
    ast.children(parent)
        .map(|id| {
            let node = ast.node(id);
            let name = node.name().map(|s| ast.name_text(s).to_string());
            let children = from_ast(ast, Some(id));
            match node.kind() {
                amb_syntax::NodeKind::Ambient => Term::Amb(name.expect("named"), children),
                amb_syntax::NodeKind::Cap(kind) => Term::Cap(kind, name, children),
            }
        })
        .collect()
}

fn size(parts: &[Term]) -> usize {
    parts.iter().map(|p| 1 + size(p.children())).sum()
}

fn depth(parts: &[Term]) -> usize {
    parts
        .iter()
        .map(|p| match p {
            Term::Amb(_, body) => 1 + depth(body),
            Term::Cap(_, _, cont) => depth(cont),
        })
        .max()
        .unwrap_or(0)
}

/// Every name used, with repetitions: ambients' (`true`) and targets' (`false`).
fn names<'t>(parts: &'t [Term], out: &mut Vec<(&'t str, bool)>) {
    for part in parts {
        match part {
            Term::Amb(n, _) => out.push((n, true)),
            Term::Cap(_, Some(t), _) => out.push((t, false)),
            Term::Cap(_, None, _) => {}
        }
        names(part.children(), out);
    }
}

/// The program's text.
fn text(parts: &[Term]) -> String {
    fn write(parts: &[Term], out: &mut String) {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                out.push_str(" | ");
            }
            match part {
                Term::Amb(n, body) => {
                    out.push_str(n);
                    out.push('[');
                    write(body, out);
                    out.push(']');
                }
                Term::Cap(kind, target, cont) => {
                    out.push_str(kind.keyword());
                    if let Some(t) = target {
                        out.push(' ');
                        out.push_str(t);
                    }
                    match cont.len() {
                        0 => {}
                        1 => {
                            out.push('.');
                            write(cont, out);
                        }
                        _ => {
                            out.push_str(".(");
                            write(cont, out);
                            out.push(')');
                        }
                    }
                }
            }
        }
    }
    let mut out = String::new();
    write(parts, &mut out);
    out
}

/// A scripted program: a run of steps is drawn first, over a virtual tree of ambients
/// (each with one or two threads of capabilities), then the program that takes those
/// steps is written. Steps enable steps (an ambient is created, moves, is opened,
/// moves again), which motifs rarely do. Names repeat, so the engine may well pick
/// other partners than the script's: the program is random all the same.
struct Script<'c> {
    choices: &'c [u32],
    next: usize,
    actors: Vec<Actor>,
}

struct Actor {
    name: u8,
    parent: Option<usize>,
    alive: bool,
    threads: [Vec<Item>; 2],
}

enum Item {
    Cap(CapKind, Option<u8>),
    Spawn(usize),
}

impl Script<'_> {
    fn choose(&mut self, n: usize) -> usize {
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        c as usize % n.max(1)
    }

    fn push(&mut self, actor: usize, item: Item) {
        let thread = self.choose(2);
        self.actors[actor].threads[thread].push(item);
    }

    fn live(&self, actor: usize) -> bool {
        self.actors[actor].alive
    }

    fn spawn(&mut self, parent: usize) {
        let name = self.choose(4) as u8;
        self.actors.push(Actor {
            name,
            parent: Some(parent),
            alive: true,
            threads: [Vec::new(), Vec::new()],
        });
        let id = self.actors.len() - 1;
        self.push(parent, Item::Spawn(id));
    }

    /// Takes one step of the script (or creates an ambient); false if none is possible.
    fn step(&mut self) -> bool {
        let n = self.actors.len();
        let live: Vec<usize> = (0..n).filter(|&a| self.live(a)).collect();
        let parent = |a: usize| self.actors[a].parent;
        let mut moves: Vec<(CapKind, usize, usize)> = Vec::new();
        for &x in &live {
            for &y in &live {
                if x == y {
                    continue;
                }
                if parent(x).is_some() && parent(x) == parent(y) {
                    moves.push((CapKind::In, x, y));
                }
                if parent(x) == Some(y) {
                    if parent(y).is_some() {
                        moves.push((CapKind::Out, x, y));
                    }
                    moves.push((CapKind::Open, y, x));
                }
            }
        }
        // One time in four (or when nothing moves), create an ambient.
        if moves.is_empty() || self.choose(4) == 0 {
            let at = live[self.choose(live.len())];
            self.spawn(at);
            return true;
        }
        let (kind, x, y) = moves[self.choose(moves.len())];
        let (xname, yname) = (self.actors[x].name, self.actors[y].name);
        let named = self.choose(4) > 0;
        match kind {
            CapKind::In => {
                self.push(x, Item::Cap(CapKind::In, Some(yname)));
                self.push(y, Item::Cap(CapKind::InCo, named.then_some(xname)));
                self.actors[x].parent = Some(y);
            }
            CapKind::Out => {
                self.push(x, Item::Cap(CapKind::Out, Some(yname)));
                self.push(y, Item::Cap(CapKind::OutCo, named.then_some(xname)));
                self.actors[x].parent = self.actors[y].parent;
            }
            _ => {
                // x opens its child y.
                self.push(x, Item::Cap(CapKind::Open, Some(yname)));
                self.push(y, Item::Cap(CapKind::OpenCo, None));
                self.actors[y].alive = false;
                for a in &mut self.actors {
                    if a.parent == Some(y) {
                        a.parent = Some(x);
                    }
                }
            }
        }
        true
    }

    fn render_thread(&self, items: &[Item]) -> Vec<Gen> {
        match items.split_first() {
            None => Vec::new(),
            Some((Item::Cap(kind, t), rest)) => vec![Gen::Cap(*kind, *t, self.render_thread(rest))],
            Some((Item::Spawn(z), rest)) => first(self.render(*z), self.render_thread(rest)),
        }
    }

    fn render(&self, actor: usize) -> Gen {
        let a = &self.actors[actor];
        Gen::Amb(
            a.name,
            a.threads
                .iter()
                .flat_map(|t| self.render_thread(t))
                .collect(),
        )
    }
}

/// A scripted program (see [`Script`]): 1–4 ambients, then 2–8 steps or creations,
/// then maybe a capability that is stuck or takes a step the script did not plan.
fn scripted() -> impl Strategy<Value = Vec<Gen>> {
    (
        1usize..=5,
        2usize..=12,
        prop::collection::vec(any::<u32>(), 96),
        prop::option::of(cap_head()),
    )
        .prop_map(|(ambients, steps, choices, extra)| {
            let mut script = Script {
                choices: &choices,
                next: 0,
                actors: vec![Actor {
                    name: 0,
                    parent: None,
                    alive: true,
                    threads: [Vec::new(), Vec::new()],
                }],
            };
            for _ in 0..ambients {
                let at = script.choose(script.actors.len());
                script.spawn(at);
            }
            for _ in 0..steps {
                script.step();
            }
            if let Some((kind, t)) = extra {
                let at = script.choose(script.actors.len());
                if script.live(at) && (at > 0 || kind == CapKind::Open) {
                    script.push(at, Item::Cap(kind, t));
                }
            }
            let root = &script.actors[0];
            root.threads
                .iter()
                .flat_map(|t| script.render_thread(t))
                .collect()
        })
}

/// A random program of at most [`MAX_NODES`] nodes: 2–4 processes side by side,
/// built from motifs, or one scripted process.
fn program() -> impl Strategy<Value = Vec<Term>> {
    let motifs = (pool(), prop::collection::vec(process(), 2..=4));
    let scripted = (pool(), scripted().prop_map(|parts| vec![parts]));
    prop_oneof![motifs, scripted]
        .prop_map(|(pool, processes)| resolve(&pool, &processes.concat()))
        .prop_filter("at most MAX_NODES nodes", |parts| {
            size(parts) <= max_nodes()
        })
}

/// One case: a program and the seed of its orders.
#[derive(Clone, Debug)]
struct Case {
    program: String,
    orders: u64,
}

// ---------------------------------------------------------------------------------
// Runs and orders

/// A recorded run.
struct Run {
    program: Cid,
    manifest: Manifest,
    expected: (String, u64),
    events: Vec<(Cid, Event)>,
    raw: Vec<(Cid, Vec<u8>)>,
    /// Per event: `log#seq opcode target`, for reports.
    labels: Vec<String>,
    /// Per event: the events it refers to.
    refs: Vec<Vec<usize>>,
}

/// Why a program was not run: it does not compile or plan (skipped), or recording
/// failed (a bug).
#[derive(Debug)]
enum NotRun {
    Skip(&'static str),
    Record(String),
}

fn record_run(source: &str, store: &Store) -> Result<Run, NotRun> {
    let key = SigningKey::from_seed(&[11; 32]);
    let recording = match record_source(source, store, &key, [5; 16]) {
        Ok(recording) => recording,
        Err(NotRecorded::Parse(e)) => panic!("{source}: {e}"),
        Err(NotRecorded::Compile(_)) => return Err(NotRun::Skip("compile")),
        Err(NotRecorded::Plan(_)) => return Err(NotRun::Skip("plan")),
        Err(NotRecorded::Record(e)) => {
            return Err(NotRun::Record(format!("recording failed: {e}")));
        }
    };
    let raw = recording.raw(store);
    let Recording {
        plan,
        manifest,
        recorded,
        ..
    } = recording;
    let events = raw
        .iter()
        .map(|(cid, bytes)| (*cid, check_event(*cid, bytes).unwrap()))
        .collect();
    // Logs are named after their ambient and numbered in plan order (`a.2`).
    let log_names: Vec<String> = plan
        .logs
        .iter()
        .enumerate()
        .map(|(i, l)| match &l.name {
            None => "<root>".to_string(),
            Some(n) => format!("{n}.{i}"),
        })
        .collect();
    let labels = plan
        .events
        .iter()
        .map(|e| {
            format!(
                "{}#{} {} {:?}",
                log_names[e.log],
                e.seq,
                e.opcode.mnemonic(),
                e.target
            )
        })
        .collect();
    Ok(Run {
        program: recorded.program,
        manifest,
        expected: (amb_syntax::to_compact_string(&plan.final_term), plan.steps),
        events,
        raw,
        labels,
        refs: plan.events.iter().map(|e| e.refs.clone()).collect(),
    })
}

/// A small deterministic generator (splitmix64).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How an order picks the next event among those whose refs are all placed.
#[derive(Clone, Copy, Debug)]
enum Style {
    /// Uniformly.
    Uniform,
    /// The one that became ready last, sometimes another (depth first: one thread of
    /// events runs far ahead).
    DepthFirst,
    /// Each log has a random priority; the ready event of the highest (logs run as far
    /// as they can, one after the other).
    Priority,
    /// One log is held back as long as possible; the others uniformly.
    Slow,
}

/// A topological order of `run`'s events drawn from `seed`.
fn topological(run: &Run, seed: u64) -> (Style, Vec<usize>) {
    let events = &run.events;
    let mut rng = SplitMix(seed);
    let style = [
        Style::Uniform,
        Style::DepthFirst,
        Style::Priority,
        Style::Slow,
    ][rng.below(4)];
    let mut logs: Vec<Cid> = events.iter().map(|(_, e)| e.log()).collect();
    logs.sort();
    logs.dedup();
    let priority: HashMap<Cid, u64> = logs.iter().map(|l| (*l, rng.next())).collect();
    let slow = logs[rng.below(logs.len())];
    let (mut waiting, dependents) = common::dependencies(events);
    let mut ready: Vec<usize> = (0..events.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(events.len());
    while !ready.is_empty() {
        let log_of = |i: usize| events[i].1.log();
        let at = match style {
            Style::Uniform => rng.below(ready.len()),
            Style::DepthFirst if rng.below(5) > 0 => ready.len() - 1,
            Style::DepthFirst => rng.below(ready.len()),
            Style::Priority => (0..ready.len())
                .max_by_key(|&k| priority[&log_of(ready[k])])
                .expect("not empty"),
            Style::Slow => {
                let fast: Vec<usize> = (0..ready.len())
                    .filter(|&k| log_of(ready[k]) != slow)
                    .collect();
                if fast.is_empty() {
                    rng.below(ready.len())
                } else {
                    fast[rng.below(fast.len())]
                }
            }
        };
        let pick = ready.remove(at);
        order.push(pick);
        for &d in &dependents[pick] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    assert_eq!(
        order.len(),
        events.len(),
        "the refs form a cycle or leave the set"
    );
    (style, order)
}

/// Replays `run` in `order`: the canonical final term and steps, or the violation
/// (a panic of the replay counts as one).
fn replay_in(run: &Run, order: &[usize], source: &dyn Source) -> Result<(String, u64), String> {
    let attempt = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut replay = Replay::new(run.program, run.manifest.clone());
        for (k, &i) in order.iter().enumerate() {
            let (cid, event) = &run.events[i];
            replay
                .apply(*cid, event, source)
                .map_err(|v| format!("at position {k}, event {i} ({}): {v}", run.labels[i]))?;
        }
        replay.finish(source).map_err(|v| format!("finish: {v}"))?;
        let mut term = replay.to_ast(source);
        term.canonicalize();
        Ok((amb_syntax::to_compact_string(&term), replay.steps()))
    }));
    attempt.unwrap_or_else(|p| Err(format!("replay panicked: {}", panic_text(&*p))))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// The events in `order`, one a line, with their refs.
fn describe(run: &Run, order: &[usize]) -> String {
    order
        .iter()
        .map(|&i| {
            let mut refs = run.refs[i].clone();
            refs.sort_unstable();
            let refs: Vec<String> = refs
                .iter()
                .map(|&r| format!("{r} {}", run.labels[r]))
                .collect();
            format!("  {i}: {}  refs [{}]", run.labels[i], refs.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An honest program that some order failed.
#[derive(Clone, Debug)]
struct Failure {
    program: String,
    /// What failed, without CIDs and numbers: failures of one kind are one bug.
    kind: String,
    /// Everything: the stage, the order, the error.
    message: String,
}

/// `stage: rule …: detail` with CIDs, numbers and names masked.
fn kind_of(stage: &str, error: &str) -> String {
    let tail = error
        .find("rule ")
        .map(|at| &error[at..])
        .or_else(|| error.find("panicked").map(|at| &error[at..]))
        .unwrap_or("wrong final term or steps");
    let is_name = |w: &str| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '_');
        BASE.contains(&w) || PRIMITIVES.contains(&w)
    };
    let masked: Vec<String> = tail
        .split(' ')
        .map(|w| {
            if w.starts_with("bafy") {
                "<cid>".to_string()
            } else if w.strip_suffix("'s").is_some_and(is_name) {
                "<n>'s".to_string()
            } else if is_name(w) {
                "<n>".to_string()
            } else {
                w.chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .collect()
            }
        })
        .collect();
    format!("{stage}: {}", masked.join(" "))
}

/// How a program fared.
enum Checked {
    Skipped(&'static str),
    Passed { events: usize, steps: u64 },
}

/// Checks one program: the plan order, `verify_events`, and `orders` topological
/// orders drawn from `seed`.
fn check_program(
    program: &str,
    seed: u64,
    orders: usize,
    store: &Store,
) -> Result<Checked, Failure> {
    let fail = |stage: &str, error: String, message: String| Failure {
        program: program.to_string(),
        kind: kind_of(stage, &error),
        message: format!("program {program}\n{stage}: {message}"),
    };
    let run = match record_run(program, store) {
        Ok(run) => run,
        Err(NotRun::Skip(why)) => return Ok(Checked::Skipped(why)),
        Err(NotRun::Record(e)) => return Err(fail("record", e.clone(), e)),
    };
    let source = CachedSource::new(StoreSource { store });
    let n = run.events.len();
    let plan_order: Vec<usize> = (0..n).collect();
    match replay_in(&run, &plan_order, &source) {
        Ok(got) if got == run.expected => {}
        got => {
            let error = got.clone().err().unwrap_or_default();
            let message = format!(
                "expected {:?}, got {got:?}\n{}",
                run.expected,
                describe(&run, &plan_order)
            );
            return Err(fail("plan order", error, message));
        }
    }
    // `verify_events` sorts the events itself; give them in another order anyway.
    let (_, shuffled) = topological(&run, seed);
    let given: Vec<(Cid, Vec<u8>)> = shuffled.iter().map(|&i| run.raw[i].clone()).collect();
    let verified = panic::catch_unwind(AssertUnwindSafe(|| {
        verify_events(&source, run.program, &given)
            .map(|v| (amb_syntax::to_compact_string(&v.term), v.steps))
            .map_err(|e| e.to_string())
    }))
    .unwrap_or_else(|p| Err(format!("verify_events panicked: {}", panic_text(&*p))));
    if verified.as_ref() != Ok(&run.expected) {
        let error = verified.clone().err().unwrap_or_default();
        let message = format!("expected {:?}, got {verified:?}", run.expected);
        return Err(fail("verify_events", error, message));
    }
    let mut rng = SplitMix(seed);
    for _ in 0..orders {
        let order_seed = rng.next();
        let (style, order) = topological(&run, order_seed);
        let distinct: HashSet<usize> = order.iter().copied().collect();
        assert_eq!(distinct.len(), n);
        let got = replay_in(&run, &order, &source);
        if got.as_ref() != Ok(&run.expected) {
            let error = got.clone().err().unwrap_or_default();
            let message = format!(
                "order {style:?} (seed {order_seed:#x}):\n{}\nexpected {:?}\ngot {got:?}",
                describe(&run, &order),
                run.expected
            );
            return Err(fail("order", error, message));
        }
    }
    Ok(Checked::Passed {
        events: n,
        steps: run.expected.1,
    })
}

// ---------------------------------------------------------------------------------
// Minimising

/// Programs one edit smaller: a part removed, a part replaced by its children, a
/// co-capability's name dropped, anywhere in the tree.
fn smaller(parts: &[Term]) -> Vec<Vec<Term>> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut without = parts.to_vec();
        without.remove(i);
        out.push(without);
        if !part.children().is_empty() {
            let mut hoisted = parts[..i].to_vec();
            hoisted.extend(part.children().iter().cloned());
            hoisted.extend(parts[i + 1..].iter().cloned());
            out.push(hoisted);
        }
        if let Term::Cap(kind @ (CapKind::InCo | CapKind::OutCo), Some(_), cont) = part {
            let mut wildcard = parts.to_vec();
            wildcard[i] = Term::Cap(*kind, None, cont.clone());
            out.push(wildcard);
        }
        for inner in smaller(part.children()) {
            let mut changed = parts.to_vec();
            changed[i] = part.with_children(inner);
            out.push(changed);
        }
    }
    out
}

fn rename(parts: &[Term], from: &str, to: &str) -> Vec<Term> {
    let name = |n: &str| if n == from { to } else { n }.to_string();
    parts
        .iter()
        .map(|part| match part {
            Term::Amb(n, body) => Term::Amb(name(n), rename(body, from, to)),
            Term::Cap(k, t, cont) => Term::Cap(*k, t.as_deref().map(name), rename(cont, from, to)),
        })
        .collect()
}

/// What minimising decreases: nodes, distinct names, primitives.
fn measure(parts: &[Term]) -> (usize, usize, usize) {
    let mut all = Vec::new();
    names(parts, &mut all);
    let mut distinct: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let primitives = all.iter().filter(|(n, _)| PRIMITIVES.contains(n)).count();
    (size(parts), distinct.len(), primitives)
}

/// Programs as small as `parts` with fewer names, or fewer primitives.
fn renamed(parts: &[Term]) -> Vec<Vec<Term>> {
    let mut all = Vec::new();
    names(parts, &mut all);
    let mut distinct: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let fresh = BASE.iter().find(|b| !distinct.contains(b)).copied();
    let mut out = Vec::new();
    for &from in &distinct {
        for &to in distinct.iter().chain(&fresh) {
            if from != to {
                out.push(rename(parts, from, to));
            }
        }
    }
    out
}

/// Orders per candidate while minimising.
const MINIMISE_ORDERS: usize = 200;
/// Candidates tried at most while minimising one program.
const MINIMISE_BUDGET: usize = 4000;

/// A smallest program (by greedy edits) that fails like `failure`, and its failure.
fn minimise(failure: &Failure, store: &Store) -> Failure {
    let ast = amb_syntax::parse(&failure.program).expect("generated programs parse");
    let mut current = from_ast(&ast, None);
    let mut best = failure.clone();
    let mut tried = 0;
    'shrink: loop {
        let mut candidates = smaller(&current);
        candidates.extend(renamed(&current));
        candidates.retain(|c| measure(c) < measure(&current));
        candidates.sort_by_key(|c| measure(c));
        candidates.dedup();
        for candidate in candidates {
            if tried >= MINIMISE_BUDGET {
                break 'shrink;
            }
            tried += 1;
            let program = text(&candidate);
            if let Err(f) = check_program(&program, 0, MINIMISE_ORDERS, store) {
                if f.kind == failure.kind {
                    best = f;
                    current = candidate;
                    continue 'shrink;
                }
            }
        }
        break;
    }
    best
}

// ---------------------------------------------------------------------------------
// Tests

/// The proptest RNG: from `AMB_REPLAY_SEED` (a number, or `random`), else fixed.
fn test_rng() -> (u64, TestRng) {
    let seed = match std::env::var("AMB_REPLAY_SEED").ok().as_deref() {
        Some("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        Some(n) => n.parse().expect("AMB_REPLAY_SEED is a number or `random`"),
        None => 0x005e_ed0f_0de5,
    };
    let mut mix = SplitMix(seed);
    let bytes: Vec<u8> = (0..4).flat_map(|_| mix.next().to_le_bytes()).collect();
    (seed, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// A directory for the store: in memory where there is a tmpfs (recording commits
/// with `fsync`, which is most of the time on a disk), else the usual temporary one.
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    shm.is_dir()
        .then(|| tempfile::tempdir_in(shm).ok())
        .flatten()
        .unwrap_or_else(|| tempfile::tempdir().unwrap())
}

#[derive(Default)]
struct Stats {
    /// Set at the first failure: the cases after it are proptest's shrinking.
    failed: bool,
    /// Programs that failed (hunting goes on after a failure).
    failures: usize,
    tried: usize,
    usable: usize,
    stepping: usize,
    skipped: HashMap<&'static str, usize>,
    events: usize,
    steps: u64,
}

#[test]
fn random_programs_replay_in_every_order() {
    let cases = env_number("AMB_REPLAY_CASES", DEFAULT_CASES as usize) as u32;
    let orders = env_number("AMB_REPLAY_ORDERS", ORDERS);
    // Hunting: go on after a failure, keep the smallest program of each kind.
    let hunt = std::env::var_os("AMB_REPLAY_HUNT").is_some();
    let dir = scratch();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    let stats = RefCell::new(Stats::default());
    let found: RefCell<BTreeMap<String, Failure>> = RefCell::new(BTreeMap::new());
    let (seed, rng) = test_rng();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            max_global_rejects: cases.saturating_mul(20),
            ..Config::default()
        },
        rng,
    );
    let strategy = (program(), any::<u64>()).prop_map(|(parts, orders)| Case {
        program: text(&parts),
        orders,
    });
    let started = std::time::Instant::now();
    let outcome = runner.run(&strategy, |case| {
        let checked = check_program(&case.program, case.orders, orders, &store);
        let mut stats = stats.borrow_mut();
        if stats.failed {
            return checked.map(|_| ()).map_err(|f| TestCaseError::fail(f.kind));
        }
        stats.tried += 1;
        match checked {
            Ok(Checked::Passed { events, steps }) => {
                stats.usable += 1;
                stats.stepping += usize::from(steps > 0);
                stats.events += events;
                stats.steps += steps;
                Ok(())
            }
            Ok(Checked::Skipped(why)) => {
                *stats.skipped.entry(why).or_default() += 1;
                Ok(())
            }
            Err(f) if hunt => {
                stats.failures += 1;
                let mut found = found.borrow_mut();
                let known = found.get(&f.kind).map(|k| k.program.len());
                if known.is_none_or(|len| f.program.len() < len) {
                    found.insert(f.kind.clone(), f);
                }
                Ok(())
            }
            Err(f) => {
                stats.failed = true;
                Err(TestCaseError::fail(f.kind))
            }
        }
    });
    let stats = stats.into_inner();
    eprintln!(
        "seed {seed:#x}: {} programs tried ({} passed, {} failed, {} with steps, \
         skipped {:?}; {} events, {} steps in all), {orders} orders each, {:.1?}",
        stats.tried,
        stats.usable,
        stats.failures,
        stats.stepping,
        stats.skipped,
        stats.events,
        stats.steps,
        started.elapsed()
    );
    let mut found = found.into_inner();
    if let Err(TestError::Fail(_, case)) = &outcome {
        // proptest shrank it; check it again to get the whole failure.
        if let Err(f) = check_program(&case.program, case.orders, orders, &store) {
            found.insert(f.kind.clone(), f);
        }
    }
    if let Err(TestError::Abort(why)) = &outcome {
        panic!("proptest aborted: {why}");
    }
    let reports: Vec<String> = found
        .values()
        .map(|f| {
            let min = minimise(f, &store);
            format!(
                "{}\n  found:     {}\n  minimised: {}\n{}",
                f.kind, f.program, min.program, min.message
            )
        })
        .collect();
    assert!(
        reports.is_empty(),
        "{} kinds of failure:\n\n{}",
        reports.len(),
        reports.join("\n\n")
    );
    assert!(
        (stats.usable + stats.failures) * 2 >= stats.tried,
        "only {} of {} programs are usable",
        stats.usable,
        stats.tried
    );
    assert!(
        stats.stepping * 2 >= stats.tried,
        "only {} of {} programs take a step",
        stats.stepping,
        stats.tried
    );
}

#[test]
fn regressions_replay_in_every_order() {
    let dir = scratch();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    let mut failures = Vec::new();
    for (k, program) in REGRESSIONS.iter().enumerate() {
        match check_program(program, k as u64, REGRESSION_ORDERS, &store) {
            Ok(Checked::Passed { .. }) => {}
            Ok(Checked::Skipped(why)) => failures.push(format!("{program}: does not {why}")),
            Err(f) => failures.push(format!("{}\n{}", f.kind, f.message)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} regressions fail:\n\n{}",
        failures.len(),
        REGRESSIONS.len(),
        failures.join("\n\n")
    );
}

/// The generator itself: sizes, nesting, primitives, repeated names and steps occur.
#[test]
fn the_generator_covers_what_it_should() {
    let mut runner = TestRunner::deterministic();
    let strategy = program();
    let (mut primitives, mut deep, mut repeated, mut stepping, mut long) = (0, 0, 0, 0, 0);
    let total = 1000;
    for _ in 0..total {
        let parts = strategy.new_tree(&mut runner).unwrap().current();
        assert!(size(&parts) <= MAX_NODES);
        let mut all = Vec::new();
        names(&parts, &mut all);
        primitives += usize::from(all.iter().any(|(n, _)| PRIMITIVES.contains(n)));
        deep += usize::from(depth(&parts) >= 3);
        let mut ambients: Vec<&str> = all.iter().filter(|(_, a)| *a).map(|(n, _)| *n).collect();
        let count = ambients.len();
        ambients.sort_unstable();
        ambients.dedup();
        repeated += usize::from(ambients.len() < count);
        let ast = amb_syntax::parse(text(&parts)).unwrap();
        let steps = amb_engine::Engine::new(&ast, Limits::default())
            .unwrap()
            .run(|_, _| {})
            .unwrap();
        stepping += usize::from(steps > 0);
        long += usize::from(steps >= 4);
    }
    let percent = |n: usize| n * 100 / total;
    eprintln!(
        "with primitives {}%, 3 deep {}%, repeated names {}%, steps {}%, 4 steps or more {}%",
        percent(primitives),
        percent(deep),
        percent(repeated),
        percent(stepping),
        percent(long)
    );
    assert!(
        percent(primitives) >= 30,
        "{primitives} of {total} with primitives"
    );
    assert!(percent(deep) >= 30, "{deep} of {total} 3 deep");
    assert!(
        percent(repeated) >= 50,
        "{repeated} of {total} with repeated names"
    );
    assert!(percent(stepping) >= 90, "{stepping} of {total} take a step");
    assert!(
        percent(long) >= 25,
        "{long} of {total} take 4 steps or more"
    );
}
