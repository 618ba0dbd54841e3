//! The indexed engine (`amb-engine`) against its oracle, the naive reference reducer
//! (`amb-reference`), on random programs that reduce.
//!
//! Two generators:
//! - [`general`]: random programs built from *motifs* that are redexes by construction
//!   (`n[in m.P|Q] | m[in_ n.R|S]`, `m[n[out m.P|Q] | out_ n.R|S]`,
//!   `open n.P | n[open_.Q|R]`, and a mover that arrives already holding the
//!   `open_` or `in_` its new siblings wait for), with random holes, random capability
//!   chains, wildcard co-capabilities, every composition in a random order, and names
//!   from a pool of 2–4 (sometimes the primitives `call`, `func`, `arg`, `return`), so
//!   names clash, redexes compete and continuations enable further redexes.
//! - [`confluent`]: up to three independent components with disjoint name pools,
//!   each a *script* of interactions among uniquely named ambients, written by
//!   simulating where every ambient is, so that (almost always) each capability has
//!   one partner and each continuation holds the owner's next step. Co-capabilities
//!   may be put early, so a capability waits for a partner that arrives holding it;
//!   after an `open`, the opener's next capabilities may go into the `open_`'s
//!   continuation or into the opened body, so they act for the opener once released.
//!
//! The properties, with the explorer's set of normal forms as the oracle (programs
//! whose exploration is truncated at [`MAX_STATES`] are discarded; the generators keep
//! that rare, see [`the_generators_produce_what_the_properties_need`]):
//! - the engine's normal form is one the explorer lists, and its step count is the
//!   length of every path to it (each step consumes exactly two capabilities);
//! - a random legal order of the reference reducer reaches a listed normal form;
//! - when the explorer finds one normal form, the engine and every order reach it;
//! - the engine is deterministic: two runs take the same steps through the same terms;
//! - every engine step is a reference step: after each one, the engine's term is a
//!   reference successor of the previous term, through a redex of the same rule,
//!   the same ambient names and the same capability targets, and the engine stops
//!   exactly when the reference finds no redex.
//!
//! [`tricky_programs`] pins the normal forms of hand-checked programs, each also in
//! mirror order so the schedule meets its parts both ways.

use std::fmt;

use amb_engine::{Engine, Limits, Rule, Step};
use amb_reference::{Exploration, Part, Redex, Term, explore, redexes, reduce_with, successors};
use amb_syntax::{Ast, CapKind, NodeId, NodeKind, Span, to_canonical_string, to_compact_string};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Explorations that would visit more distinct states are discarded.
const MAX_STATES: usize = 5_000;

/// A generated program: the AST, shown as its compact text.
#[derive(Clone)]
struct Program {
    ast: Ast,
    text: String,
}

impl Program {
    fn new(ast: Ast) -> Program {
        let text = to_compact_string(&ast);
        Program { ast, text }
    }

    fn parse(source: &str) -> Program {
        Program::new(amb_syntax::parse(source).expect("test programs parse"))
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

/// What a builder node is.
#[derive(Clone, Debug)]
enum Head {
    /// The program's top level.
    Top,
    Amb(String),
    Cap(CapKind, Option<String>),
}

/// A program under construction: node 0 is the top level; children in order.
struct Builder {
    nodes: Vec<(Head, Vec<usize>)>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            nodes: vec![(Head::Top, Vec::new())],
        }
    }

    fn push(&mut self, parent: usize, head: Head) -> usize {
        let id = self.nodes.len();
        self.nodes.push((head, Vec::new()));
        self.nodes[parent].1.push(id);
        id
    }

    /// The AST, built pre-order with an explicit stack.
    fn finish(&self) -> Ast {
        let mut ast = Ast::new();
        let mut pending: Vec<(Option<NodeId>, usize)> =
            self.nodes[0].1.iter().rev().map(|&n| (None, n)).collect();
        while let Some((parent, node)) = pending.pop() {
            let (head, children) = &self.nodes[node];
            let id = match head {
                Head::Top => unreachable!("the top level is nobody's child"),
                Head::Amb(name) => {
                    let symbol = ast.intern(name);
                    ast.push_ambient(parent, symbol, Span::default())
                }
                Head::Cap(kind, target) => {
                    let symbol = target.as_deref().map(|t| ast.intern(t));
                    ast.push_cap(parent, *kind, symbol, Span::default())
                }
            };
            pending.extend(children.iter().rev().map(|&c| (Some(id), c)));
        }
        ast.finish_building();
        ast
    }
}

// ---------------------------------------------------------------------------------
// The general generator.

/// A part of a general program; names are indices into the program's pool.
#[derive(Clone, Debug)]
enum Gen {
    Amb(u8, Vec<Gen>),
    Cap(CapKind, Option<u8>, Vec<Gen>),
}

const BASE: [&str; 4] = ["a", "b", "c", "d"];
const PRIMITIVES: [&str; 4] = ["call", "func", "arg", "return"];

/// 2–4 names; in about a third of the programs one or two are primitives.
fn pool() -> impl Strategy<Value = Vec<&'static str>> {
    (
        2usize..=4,
        prop_oneof![2 => Just(0usize), 1 => 1usize..=2],
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

/// A co-capability's target: a name, or (one time in four) the wildcard.
fn co_target() -> impl Strategy<Value = Option<u8>> {
    prop::option::weighted(0.75, name())
}

fn cap_head() -> impl Strategy<Value = (CapKind, Option<u8>)> {
    prop_oneof![
        3 => (
            prop_oneof![Just(CapKind::In), Just(CapKind::Out), Just(CapKind::Open)],
            name()
        )
            .prop_map(|(kind, n)| (kind, Some(n))),
        2 => (prop_oneof![Just(CapKind::InCo), Just(CapKind::OutCo)], co_target()),
        1 => Just((CapKind::OpenCo, None)),
    ]
}

fn with_first(first: Gen, mut rest: Vec<Gen>) -> Vec<Gen> {
    rest.insert(0, first);
    rest
}

/// A process (parallel parts): motifs that are redexes, ambients, prefixes, and
/// compositions of these, with holes that are empty half the time.
fn process() -> impl Strategy<Value = Vec<Gen>> {
    let leaf = prop_oneof![
        1 => Just(Vec::new()),
        2 => name().prop_map(|n| vec![Gen::Amb(n, Vec::new())]),
        3 => cap_head().prop_map(|(kind, t)| vec![Gen::Cap(kind, t, Vec::new())]),
    ];
    leaf.prop_recursive(5, 64, 4, |inner| {
        let hole = || prop_oneof![1 => Just(Vec::new()), 1 => inner.clone()];
        prop_oneof![
            // n[in m.P | Q] | m[in_ n.R | S]
            3 => (name(), name(), co_target(), hole(), hole(), hole(), hole()).prop_map(
                |(n, m, co, p, q, r, s)| {
                    let co = co.map(|_| n);
                    vec![
                        Gen::Amb(n, with_first(Gen::Cap(CapKind::In, Some(m), p), q)),
                        Gen::Amb(m, with_first(Gen::Cap(CapKind::InCo, co, r), s)),
                    ]
                }
            ),
            // m[n[out m.P | Q] | out_ n.R | S]
            2 => (name(), name(), co_target(), hole(), hole(), hole(), hole()).prop_map(
                |(m, n, co, p, q, r, s)| {
                    let co = co.map(|_| n);
                    let child = Gen::Amb(n, with_first(Gen::Cap(CapKind::Out, Some(m), p), q));
                    let mut body = vec![child, Gen::Cap(CapKind::OutCo, co, r)];
                    body.extend(s);
                    vec![Gen::Amb(m, body)]
                }
            ),
            // The mover already holds what its new siblings need when it arrives:
            // n[in m.P | open_ | Q] | m[in_ n.R | open n | S], or
            // n[in m.P | in_ k | Q] | m[in_ n.R | k[in n] | S].
            2 => (name(), name(), prop::option::of(name()), hole(), hole(), hole(), hole())
                .prop_map(|(n, m, k, p, q, r, s)| {
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
                    let mut mover = vec![Gen::Cap(CapKind::In, Some(m), p), held];
                    mover.extend(q);
                    let mut target = vec![Gen::Cap(CapKind::InCo, Some(n), r), waiting];
                    target.extend(s);
                    vec![Gen::Amb(n, mover), Gen::Amb(m, target)]
                }),
            // open n.P | n[open_.Q | R]
            2 => (name(), hole(), hole(), hole()).prop_map(|(n, p, q, r)| {
                vec![
                    Gen::Cap(CapKind::Open, Some(n), p),
                    Gen::Amb(n, with_first(Gen::Cap(CapKind::OpenCo, None, q), r)),
                ]
            }),
            2 => (name(), inner.clone()).prop_map(|(n, body)| vec![Gen::Amb(n, body)]),
            2 => (cap_head(), inner.clone())
                .prop_map(|((kind, t), cont)| vec![Gen::Cap(kind, t, cont)]),
            1 => (inner.clone(), inner).prop_map(|(mut a, b)| {
                a.extend(b);
                a
            }),
        ]
    })
}

/// A small deterministic generator (splitmix64), seeded by proptest.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    fn shuffled<'g>(&mut self, parts: &'g [Gen]) -> Vec<&'g Gen> {
        let mut parts: Vec<&Gen> = parts.iter().collect();
        for i in (1..parts.len()).rev() {
            parts.swap(i, self.below(i + 1));
        }
        parts
    }
}

/// The AST of a general program, the parts of every composition in an order drawn
/// from `seed` (so that the engine's schedule meets partners in either order).
fn build_general(pool: &[&str], parts: &[Gen], seed: u64) -> Ast {
    let mut rng = SplitMix(seed);
    let mut builder = Builder::new();
    let name = |i: u8| pool[usize::from(i) % pool.len()].to_string();
    let mut pending: Vec<(usize, &Gen)> = rng.shuffled(parts).into_iter().map(|p| (0, p)).collect();
    while let Some((parent, part)) = pending.pop() {
        let (head, children) = match part {
            Gen::Amb(n, body) => (Head::Amb(name(*n)), body),
            Gen::Cap(kind, t, cont) => (Head::Cap(*kind, t.map(name)), cont),
        };
        let id = builder.push(parent, head);
        pending.extend(rng.shuffled(children).into_iter().map(|c| (id, c)));
    }
    builder.finish()
}

fn node_count(ast: &Ast) -> usize {
    ast.len()
}

/// Random programs that reduce: 2–5 processes, at most 48 nodes.
fn general() -> impl Strategy<Value = Program> {
    (
        pool(),
        prop::collection::vec(process(), 2..=5),
        any::<u64>(),
    )
        .prop_map(|(pool, processes, seed)| {
            let parts: Vec<Gen> = processes.into_iter().flatten().collect();
            Program::new(build_general(&pool, &parts, seed))
        })
        .prop_filter("at most 48 nodes", |p| node_count(&p.ast) <= 48)
}

// ---------------------------------------------------------------------------------
// The confluent generator.

/// Disjoint name pools, one per component.
const POOLS: [&[&str]; 3] = [
    &["a", "b", "c", "d", "e"],
    &["f", "g", "h", "i", "j"],
    &["p", "q", "r", "s", "t"],
];

/// One ambient of a script (index 0: the top level, which has no name).
struct Actor {
    name: Option<String>,
    parent: usize,
    alive: bool,
    /// The builder nodes this actor's capabilities have been released into, in
    /// order: the ambient itself, then the prefixes of its chain. The last is
    /// where its next capability goes.
    chain: Vec<usize>,
    /// How much of the chain precedes the actor's last move: an early prefix goes
    /// after it, so that it cannot act before its owner has got where it acts.
    settled: usize,
}

impl Actor {
    fn hole(&self) -> usize {
        *self.chain.last().expect("a chain starts at the ambient")
    }
}

/// Where an opener's next capabilities go after an `open`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handing {
    /// After its own `open n`.
    Own,
    /// Into the continuation of `n`'s `open_`: they reach the opener when it fires.
    Continuation,
    /// Into `n`'s body beside the `open_`: they reach the opener when `n` dissolves.
    Body,
}

/// One step of a script.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Two sibling ambients: one enters the other.
    In,
    /// An ambient leaves its parent.
    Out,
    /// A new ambient is released where an ambient's chain has got to.
    Spawn,
    /// An ambient (or the top level) opens a child.
    Open(Handing),
}

/// How often each action is asked for, out of 12.
const ACTIONS: [Action; 12] = [
    Action::In,
    Action::In,
    Action::In,
    Action::In,
    Action::In,
    Action::Out,
    Action::Out,
    Action::Spawn,
    Action::Spawn,
    Action::Open(Handing::Own),
    Action::Open(Handing::Continuation),
    Action::Open(Handing::Body),
];

/// One word of a script, decoded.
#[derive(Clone, Copy)]
struct Word {
    action: Action,
    /// The co-capability of an `in`/`out` admits any ambient.
    wildcard: bool,
    /// The co-capability (or the `open`) is not put at the end of its owner's chain
    /// but beside an earlier link of it (this one, modulo the chain's length), so it
    /// is there before its partner arrives; the chain goes on from it.
    early: Option<usize>,
    /// Which candidate to act on (modulo their number).
    param: usize,
}

impl Word {
    fn decode(word: u32) -> Word {
        let mut w = word as usize;
        let mut take = |n: usize| {
            let digit = w % n;
            w /= n;
            digit
        };
        let action = ACTIONS[take(12)];
        let wildcard = take(6) == 0;
        let early = (take(3) == 0).then(|| take(8));
        Word {
            action,
            wildcard,
            early,
            param: w,
        }
    }
}

/// A component's state while its script is written.
struct Script<'b> {
    builder: &'b mut Builder,
    actors: Vec<Actor>,
    fresh: std::vec::IntoIter<String>,
    /// The (rule, mover, other) pairs scripted so far: only the first of a pair
    /// may put its co-capability early, lest two compete for one capability.
    pairs: std::collections::HashSet<(Rule, usize, usize)>,
}

impl Script<'_> {
    fn live(&self, i: usize) -> bool {
        i > 0 && self.actors[i].alive
    }

    fn name(&self, actor: usize) -> Option<String> {
        self.actors[actor].name.clone()
    }

    /// Puts a prefix at the end of an actor's chain, or early (see [`Word::early`]);
    /// the actor's next capabilities go into its continuation.
    fn cap(
        &mut self,
        actor: usize,
        kind: CapKind,
        target: Option<String>,
        early: Option<usize>,
    ) -> usize {
        let Actor { chain, settled, .. } = &self.actors[actor];
        let at = match early {
            Some(k) => chain[settled + k % (chain.len() - settled)],
            None => *chain.last().expect("a chain starts at the ambient"),
        };
        let node = self.builder.push(at, Head::Cap(kind, target));
        self.actors[actor].chain.push(node);
        node
    }

    /// Performs the action on the `param`-th candidate; false when there is none.
    fn act(&mut self, word: Word) -> bool {
        let count = self.actors.len();
        let param = word.param;
        match word.action {
            Action::In => {
                let pairs: Vec<(usize, usize)> = (1..count)
                    .flat_map(|n| (1..count).map(move |m| (n, m)))
                    .filter(|&(n, m)| {
                        n != m
                            && self.live(n)
                            && self.live(m)
                            && self.actors[n].parent == self.actors[m].parent
                    })
                    .collect();
                let Some(&(n, m)) = pairs.get(param % pairs.len().max(1)) else {
                    return false;
                };
                let co = if word.wildcard { None } else { self.name(n) };
                let first = self.pairs.insert((Rule::In, n, m));
                let early = word.early.filter(|_| first);
                self.cap(n, CapKind::In, self.name(m), None);
                self.cap(m, CapKind::InCo, co, early);
                self.actors[n].parent = m;
                self.actors[n].settled = self.actors[n].chain.len() - 1;
            }
            Action::Out => {
                let movers: Vec<usize> = (1..count)
                    .filter(|&n| self.live(n) && self.actors[n].parent != 0)
                    .collect();
                let Some(&n) = movers.get(param % movers.len().max(1)) else {
                    return false;
                };
                let m = self.actors[n].parent;
                let co = if word.wildcard { None } else { self.name(n) };
                let first = self.pairs.insert((Rule::Out, n, m));
                let early = word.early.filter(|_| first);
                self.cap(n, CapKind::Out, self.name(m), None);
                self.cap(m, CapKind::OutCo, co, early);
                self.actors[n].parent = self.actors[m].parent;
                self.actors[n].settled = self.actors[n].chain.len() - 1;
            }
            Action::Spawn => {
                let hosts: Vec<usize> = (0..count).filter(|&i| self.actors[i].alive).collect();
                let host = hosts[param % hosts.len()];
                let Some(name) = self.fresh.next() else {
                    return false;
                };
                let node = self
                    .builder
                    .push(self.actors[host].hole(), Head::Amb(name.clone()));
                self.actors.push(Actor {
                    name: Some(name),
                    parent: host,
                    alive: true,
                    chain: vec![node],
                    settled: 0,
                });
            }
            Action::Open(handing) => {
                let opened: Vec<usize> = (1..count).filter(|&n| self.live(n)).collect();
                let Some(&n) = opened.get(param % opened.len().max(1)) else {
                    return false;
                };
                let p = self.actors[n].parent;
                let inside = self.actors[n].hole();
                self.cap(p, CapKind::Open, self.name(n), word.early);
                let co = self.cap(n, CapKind::OpenCo, None, None);
                match handing {
                    Handing::Own => {}
                    Handing::Continuation => self.actors[p].chain.push(co),
                    Handing::Body => self.actors[p].chain.push(inside),
                }
                self.actors[n].alive = false;
                for actor in &mut self.actors {
                    if actor.parent == n {
                        actor.parent = p;
                    }
                }
            }
        }
        true
    }
}

/// Appends one component: two or three ambients at the top level, then one step of
/// the script for each word ([`Word`]); an impossible action falls back to the first
/// possible of in, out, spawn and open.
fn script(builder: &mut Builder, names: &[&str], three: bool, words: &[u32]) {
    let mut script = Script {
        builder,
        actors: vec![Actor {
            name: None,
            parent: usize::MAX,
            alive: true,
            chain: vec![0],
            settled: 0,
        }],
        fresh: names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .into_iter(),
        pairs: std::collections::HashSet::new(),
    };
    let spawn_at_top = Word {
        action: Action::Spawn,
        wildcard: false,
        early: None,
        param: 0,
    };
    for _ in 0..(2 + usize::from(three)) {
        script.act(spawn_at_top);
    }
    for &word in words {
        let word = Word::decode(word);
        let fallbacks = [
            Action::In,
            Action::Out,
            Action::Spawn,
            Action::Open(Handing::Own),
        ];
        for action in std::iter::once(word.action).chain(fallbacks) {
            if script.act(Word { action, ..word }) {
                break;
            }
        }
    }
}

/// Programs biased to be confluent: 1–3 independent scripts of 1–10 steps each
/// (the first sometimes named with the primitives).
fn confluent() -> impl Strategy<Value = Program> {
    (
        prop::collection::vec(
            (any::<bool>(), prop::collection::vec(any::<u32>(), 1..=10)),
            1..=3,
        ),
        any::<bool>(),
    )
        .prop_map(|(components, primitives)| {
            let mut builder = Builder::new();
            for (k, (three, words)) in components.iter().enumerate() {
                let names = if k == 0 && primitives {
                    &PRIMITIVES[..]
                } else {
                    POOLS[k]
                };
                script(&mut builder, names, *three, words);
            }
            Program::new(builder.finish())
        })
}

/// Either generator.
fn any_program() -> impl Strategy<Value = Program> {
    prop_oneof![2 => general(), 1 => confluent()]
}

// ---------------------------------------------------------------------------------
// Running both sides.

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

/// The explorer's view, or a rejection when it is truncated.
fn explored(program: &Program) -> Result<Exploration, TestCaseError> {
    let exploration = explore(&program.ast, MAX_STATES)
        .map_err(|e| fail(format!("the explorer refuses {program:?}: {e}")))?;
    prop_assume!(!exploration.truncated, "more than {} states", MAX_STATES);
    Ok(exploration)
}

/// The engine's normal form (canonical text) and step count, by `amb_engine::reduce`.
fn engine_normal_form(program: &Program) -> Result<(String, u64), TestCaseError> {
    let (out, steps) = amb_engine::reduce(&program.ast, Limits::default())
        .map_err(|e| fail(format!("the engine fails on {program:?}: {e}")))?;
    Ok((to_canonical_string(&out), steps))
}

/// Capabilities in a term, continuations included. Every step consumes exactly two,
/// so every path between two terms has the same length.
fn capabilities(ast: &Ast) -> usize {
    (0..ast.len())
        .filter(|&i| matches!(ast.node(ast.node_id(i)).kind(), NodeKind::Cap(_)))
        .count()
}

fn steps_between(from: &Ast, to_canonical: &str) -> u64 {
    let to = amb_syntax::parse(to_canonical).expect("canonical text parses");
    let consumed = capabilities(from) - capabilities(&to);
    assert_eq!(consumed % 2, 0, "an odd number of capabilities consumed");
    (consumed / 2) as u64
}

/// Runs the reference reducer, picking redexes by the given choices (cycled).
fn random_order(program: &Program, choices: &[usize]) -> Result<(String, usize), TestCaseError> {
    let term = Term::from_ast(&program.ast).map_err(|e| fail(format!("{e}")))?;
    let mut i = 0;
    let reduction = reduce_with(
        term,
        |redexes| {
            let choice = choices[i % choices.len()] % redexes.len();
            i += 1;
            choice
        },
        10_000,
    )
    .map_err(|e| fail(format!("the reference fails on {program:?}: {e}")))?;
    prop_assert!(
        reduction.normal,
        "{program:?}: no normal form in 10,000 steps"
    );
    Ok((reduction.term.canonical(), reduction.trace.len()))
}

/// The process at a redex path.
fn process_at<'t>(term: &'t Term, at: &[usize]) -> &'t [Part] {
    let mut parts: &[Part] = &term.parts;
    for &i in at {
        parts = parts[i].children();
    }
    parts
}

fn amb_name(part: &Part) -> &str {
    match part {
        Part::Amb { name, .. } => name,
        Part::Cap { .. } => panic!("a redex names an ambient here"),
    }
}

fn cap_target(part: &Part) -> Option<&str> {
    match part {
        Part::Cap { target, .. } => target.as_deref(),
        Part::Amb { .. } => panic!("a redex names a capability here"),
    }
}

/// What can be compared between an engine step and a reference redex: the rule,
/// the subject's name (`None`: the top level), the object's name, the targets of
/// the capability and of the co-capability.
type Shape<'s> = (
    Rule,
    Option<&'s str>,
    &'s str,
    Option<&'s str>,
    Option<&'s str>,
);

fn redex_shape<'t>(term: &'t Term, redex: &Redex) -> Shape<'t> {
    match redex {
        Redex::In {
            at,
            mover,
            cap,
            target,
            co,
        } => {
            let parts = process_at(term, at);
            let (n, m) = (&parts[*mover], &parts[*target]);
            (
                Rule::In,
                Some(amb_name(n)),
                amb_name(m),
                cap_target(&n.children()[*cap]),
                cap_target(&m.children()[*co]),
            )
        }
        Redex::Out {
            at,
            parent,
            child,
            cap,
            co,
        } => {
            let m = &process_at(term, at)[*parent];
            let n = &m.children()[*child];
            (
                Rule::Out,
                Some(amb_name(n)),
                amb_name(m),
                cap_target(&n.children()[*cap]),
                cap_target(&m.children()[*co]),
            )
        }
        Redex::Open {
            at,
            cap,
            opened,
            co,
        } => {
            let opener = at.split_last().map(|(last, outer)| {
                let parts = process_at(term, outer);
                amb_name(&parts[*last])
            });
            let parts = process_at(term, at);
            let n = &parts[*opened];
            (
                Rule::Open,
                opener,
                amb_name(n),
                cap_target(&parts[*cap]),
                cap_target(&n.children()[*co]),
            )
        }
    }
}

fn step_shape<'e>(engine: &'e Engine<'_>, step: &Step) -> Shape<'e> {
    (
        step.rule,
        engine.ambient_name(step.subject),
        engine
            .ambient_name(step.object)
            .expect("the object of a step is a named ambient"),
        engine.capability_target(step.cap),
        engine.capability_target(step.co_cap),
    )
}

/// The kinds a step of this rule consumes.
fn kinds(rule: Rule) -> (CapKind, CapKind) {
    match rule {
        Rule::In => (CapKind::In, CapKind::InCo),
        Rule::Out => (CapKind::Out, CapKind::OutCo),
        Rule::Open => (CapKind::Open, CapKind::OpenCo),
    }
}

/// What the engine did, checked step by step against the reference.
struct Replay {
    normal_form: String,
    steps: Vec<Step>,
}

/// Runs the engine one step at a time; after each step its term must be the result
/// of a reference redex of the previous term with the same shape, and at the end the
/// reference must see no redex left.
fn replay(program: &Program) -> Result<Replay, TestCaseError> {
    let mut term = Term::from_ast(&program.ast).map_err(|e| fail(format!("{e}")))?;
    let mut engine = Engine::new(&program.ast, Limits::default())
        .map_err(|e| fail(format!("the engine refuses {program:?}: {e}")))?;
    let mut steps = Vec::new();
    loop {
        let step = engine
            .step()
            .map_err(|e| fail(format!("the engine fails on {program:?}: {e}")))?;
        let Some(step) = step else {
            break;
        };
        let shape = step_shape(&engine, &step);
        let expected_kinds = kinds(step.rule);
        let actual_kinds = (
            engine.capability_kind(step.cap),
            engine.capability_kind(step.co_cap),
        );
        let after = to_canonical_string(&engine.to_ast());
        let candidates = redexes(&term);
        let next = successors(&term);
        let matching = candidates
            .iter()
            .zip(next)
            .find(|(redex, next)| redex_shape(&term, redex) == shape && next.canonical() == after);
        let Some((_, next)) = matching else {
            let seen: Vec<String> = candidates
                .iter()
                .zip(successors(&term))
                .map(|(r, s)| format!("  {:?} -> {}", redex_shape(&term, r), s.canonical()))
                .collect();
            return Err(fail(format!(
                "{program:?}: engine step {} {step:?} with shape {shape:?}\n  from {}\n  to   {after}\nis no reference step; the reference's are:\n{}",
                steps.len() + 1,
                term.canonical(),
                seen.join("\n")
            )));
        };
        prop_assert_eq!(
            actual_kinds,
            expected_kinds,
            "{:?}: step {:?} consumed capabilities of the wrong kinds",
            program,
            step
        );
        term = next;
        steps.push(step);
    }
    let normal_form = to_canonical_string(&engine.to_ast());
    prop_assert_eq!(&normal_form, &term.canonical());
    prop_assert!(
        redexes(&term).is_empty(),
        "{:?}: the engine stopped at {} where the reference still sees {:?}",
        program,
        normal_form,
        redexes(&term)
    );
    prop_assert_eq!(engine.steps(), steps.len() as u64);
    Ok(Replay { normal_form, steps })
}

/// 500 cases, unless `PROPTEST_CASES` asks for another number (for a longer run).
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        // A long run: about 7% of the confluent generator's programs are not.
        return ProptestConfig {
            max_global_rejects: default.cases.max(1024),
            ..default
        };
    }
    ProptestConfig {
        cases: 500,
        max_global_rejects: 1024,
        ..default
    }
}

proptest! {
    #![proptest_config(config())]

    /// (a) The engine's normal form is one the explorer reaches, after as many steps
    /// as any path to it takes; when there is only one, it is that one.
    #[test]
    fn the_engine_reaches_a_reference_normal_form(program in any_program()) {
        let exploration = explored(&program)?;
        let (normal_form, steps) = engine_normal_form(&program)?;
        prop_assert!(
            exploration.normal_forms.contains(&normal_form),
            "{:?}: the engine reaches {} after {} steps; the explorer lists {:?}",
            program, normal_form, steps, exploration.normal_forms
        );
        prop_assert_eq!(steps, steps_between(&program.ast, &normal_form));
        if exploration.confluent == Some(true) {
            prop_assert_eq!(&normal_form, &exploration.normal_forms[0]);
        }
    }

    /// (b) Any legal order the reference reducer follows reaches a listed normal
    /// form, in as many steps as every path to it takes.
    #[test]
    fn random_orders_reach_a_reference_normal_form(
        program in any_program(),
        choices in prop::collection::vec(any::<usize>(), 1..24),
    ) {
        let exploration = explored(&program)?;
        let (normal_form, steps) = random_order(&program, &choices)?;
        prop_assert!(
            exploration.normal_forms.contains(&normal_form),
            "{:?}: the order {:?} reaches {}; the explorer lists {:?}",
            program, choices, normal_form, exploration.normal_forms
        );
        prop_assert_eq!(steps as u64, steps_between(&program.ast, &normal_form));
    }

    /// (c) On programs with one normal form, the engine and every order reach it:
    /// a random order, always the first redex, always the last.
    #[test]
    fn confluent_programs_reach_one_normal_form_in_every_order(
        program in confluent(),
        choices in prop::collection::vec(any::<usize>(), 1..24),
    ) {
        let exploration = explored(&program)?;
        prop_assume!(exploration.confluent == Some(true), "not confluent");
        let expected = &exploration.normal_forms[0];
        let (engine, _) = engine_normal_form(&program)?;
        prop_assert_eq!(&engine, expected, "engine on {:?}", program);
        for order in [choices, vec![0], vec![usize::MAX]] {
            let (reached, _) = random_order(&program, &order)?;
            prop_assert_eq!(&reached, expected, "order {:?} on {:?}", order, program);
        }
    }

    /// (d) Two runs take the same steps through the same terms (printed in the
    /// engine's order, not canonically).
    #[test]
    fn the_engine_is_deterministic(program in any_program()) {
        let run = || -> Result<Vec<(Step, String)>, TestCaseError> {
            let mut engine = Engine::new(&program.ast, Limits::default())
                .map_err(|e| fail(format!("{e}")))?;
            let mut trace = Vec::new();
            engine
                .run(|engine, step| trace.push((*step, to_compact_string(&engine.to_ast()))))
                .map_err(|e| fail(format!("{e}")))?;
            Ok(trace)
        };
        let first = run()?;
        prop_assert_eq!(first, run()?, "{:?}", program);
    }

    /// (e) Every engine step is a reference step of the same shape, and the engine
    /// stops exactly where the reference finds no redex.
    #[test]
    fn every_engine_step_is_a_reference_step(program in any_program()) {
        let replayed = replay(&program)?;
        let (normal_form, steps) = engine_normal_form(&program)?;
        prop_assert_eq!(replayed.normal_form, normal_form);
        prop_assert_eq!(replayed.steps.len() as u64, steps);
    }
}

// ---------------------------------------------------------------------------------
// The generators are not vacuous.

#[derive(Debug, Default)]
struct Stats {
    programs: usize,
    nodes: usize,
    max_nodes: usize,
    truncated: usize,
    confluent: usize,
    several: usize,
    reducing: usize,
    states: usize,
    steps: usize,
    rules: [usize; 3],
    wildcards: usize,
    top_level_opens: usize,
}

impl Stats {
    fn percent(&self, n: usize) -> f64 {
        100.0 * n as f64 / self.programs as f64
    }

    fn mean(&self, n: usize) -> f64 {
        n as f64 / self.programs as f64
    }
}

fn sample(strategy: impl Strategy<Value = Program>, count: usize) -> Stats {
    let mut runner = TestRunner::deterministic();
    let mut stats = Stats::default();
    for _ in 0..count {
        let program = strategy
            .new_tree(&mut runner)
            .expect("the generator gives a program")
            .current();
        stats.programs += 1;
        let nodes = node_count(&program.ast);
        stats.nodes += nodes;
        stats.max_nodes = stats.max_nodes.max(nodes);
        let exploration = explore(&program.ast, MAX_STATES).expect("explorable");
        stats.states += exploration.states;
        match exploration.confluent {
            None => stats.truncated += 1,
            Some(true) => stats.confluent += 1,
            Some(false) => stats.several += 1,
        }
        let mut engine = Engine::new(&program.ast, Limits::default()).expect("instantiates");
        let mut steps = Vec::new();
        engine.run(|_, step| steps.push(*step)).expect("reduces");
        if !steps.is_empty() {
            stats.reducing += 1;
        }
        stats.steps += steps.len();
        for step in &steps {
            stats.rules[step.rule as usize] += 1;
            if step.rule != Rule::Open && engine.capability_target(step.co_cap).is_none() {
                stats.wildcards += 1;
            }
            if step.rule == Rule::Open && engine.ambient_name(step.subject).is_none() {
                stats.top_level_opens += 1;
            }
        }
    }
    stats
}

fn report(label: &str, s: &Stats) {
    println!(
        "{label}: {} programs, {:.1} nodes on average (max {}), {:.1}% truncated, \
         {:.1}% confluent, {:.1}% with several normal forms, {:.1}% take a step, \
         {:.1} states and {:.2} engine steps on average; steps in/out/open {:?}, \
         {} through a wildcard, {} opens by the top level",
        s.programs,
        s.mean(s.nodes),
        s.max_nodes,
        s.percent(s.truncated),
        s.percent(s.confluent),
        s.percent(s.several),
        s.percent(s.reducing),
        s.mean(s.states),
        s.mean(s.steps),
        s.rules,
        s.wildcards,
        s.top_level_opens,
    );
}

/// Measures what the generators produce (run with `--nocapture` to see it) and
/// fails if they drift into vacuity: too many truncated explorations, too few
/// programs that reduce, too few confluent or non-confluent ones, a rule never used.
#[test]
fn the_generators_produce_what_the_properties_need() {
    let general_stats = sample(general(), 500);
    report("general", &general_stats);
    let confluent_stats = sample(confluent(), 500);
    report("confluent", &confluent_stats);
    for s in [&general_stats, &confluent_stats] {
        assert!(s.percent(s.truncated) <= 3.0, "{s:?}");
        assert!(s.percent(s.reducing) >= 90.0, "{s:?}");
        assert!(s.rules.iter().all(|&n| n >= 50), "{s:?}");
    }
    let g = &general_stats;
    assert!(g.percent(g.several) >= 10.0, "{g:?}");
    assert!(g.percent(g.confluent) >= 30.0, "{g:?}");
    assert!(g.wildcards >= 50 && g.top_level_opens >= 50, "{g:?}");
    let c = &confluent_stats;
    assert!(c.percent(c.confluent) >= 90.0, "{c:?}");
    assert!(c.mean(c.steps) >= 3.0, "{c:?}");
}

// ---------------------------------------------------------------------------------
// Regressions: programs whose normal forms are worked out by hand from the rules.

/// Each program with every normal form it has (canonical, sorted): opens whose
/// released capabilities then act for the opener, capabilities and co-capabilities
/// that arrive through a dissolved ambient, wildcard co-capabilities, competing
/// redexes (same rule or different rules, same-named ambients), and moves out of
/// nested ambients.
const TRICKY: &[(&str, &[&str])] = &[
    // `open` releases an `in` that moves the opener (BRIEF §3).
    (
        "x[in_ y] | y[return[open_.in x] | open return]",
        &["x[y[]]"],
    ),
    // ... an `out` that moves the opener out of its parent.
    ("m[y[open r | r[open_.out m]] | out_ y]", &["m[]|y[]"]),
    // ... an `out y` acting for `y`, whose parent is not `y`: stuck.
    (
        "y[open r.in x | r[open_.out y]] | x[in_ y.open y] | w[y[]]",
        &["w[y[]]|x[open y|y[out y]]"],
    ),
    // ... an `in` that was the opened ambient's, not its continuation's.
    ("y[open r | r[open_ | in x]] | x[in_ y]", &["x[y[]]"]),
    // The top level opens, and the released `open b` acts for it.
    ("open a | a[open_.open b | b[open_.c[]]]", &["c[]"]),
    // A co-capability released by an `open` admits a mover.
    ("p[in q] | q[r[open_.in_ p] | open r]", &["q[p[]]"]),
    ("a[in b] | b[open c | c[open_ | in_ a]]", &["b[a[]]"]),
    ("a[in b] | b[open c | c[open_.in_]]", &["b[a[]]"]),
    ("m[x[out m] | open c | c[open_.out_ x]]", &["m[]|x[]"]),
    // An ambient released by an `open` is entered by a waiting mover, or enters.
    ("a[in b] | open c | c[open_ | b[in_ a]]", &["b[a[]]"]),
    ("open c | c[open_ | a[in b]] | b[in_ a]", &["b[a[]]"]),
    // A waiting `open` is enabled when its target gains an `open_`.
    ("open n | n[in_ x.open_] | x[in n]", &["x[]"]),
    // An ambient that arrives by `in` is opened by the ambient it entered.
    ("p[open n | in_ n] | n[in p.open_]", &["p[]"]),
    // A named co-capability admits that name only.
    ("a[in b] | b[in_ c]", &["a[in b]|b[in_ c]"]),
    ("m[x[out m] | out_ y]", &["m[out_ y|x[out m]]"]),
    // Wildcards: one `in_` admits `a`, its continuation admits `c`.
    ("a[in b] | c[in b] | b[in_.in_]", &["b[a[]|c[]]"]),
    ("m[x[out m] | y[out m] | out_.out_]", &["m[]|x[]|y[]"]),
    // A named and a wildcard co-capability compete for one mover.
    (
        "a[in b.x[]] | b[in_ a.p[] | in_.q[]]",
        &["b[a[x[]]|in_ a.p[]|q[]]", "b[a[x[]]|in_.q[]|p[]]"],
    ),
    (
        "m[x[out m.a[]] | out_ x.p[] | out_.q[]]",
        &["m[out_ x.p[]|q[]]|x[a[]]", "m[out_.q[]|p[]]|x[a[]]"],
    ),
    // Two same-named movers race for one `in_` (the whitepaper's race).
    ("a[in b] | a[in b] | b[in_ a]", &["a[in b]|b[a[]]"]),
    (
        "a[in b.c[]] | a[in b.d[]] | b[in_ a]",
        &["a[in b.c[]]|b[a[d[]]]", "a[in b.d[]]|b[a[c[]]]"],
    ),
    // Two same-named ambients can be opened; one `open`.
    (
        "open a.x[] | a[open_.p[]] | a[open_.q[]]",
        &["a[open_.p[]]|q[]|x[]", "a[open_.q[]]|p[]|x[]"],
    ),
    // `open a` and `a`'s `in b` compete for `a`.
    (
        "a[open_ | in b] | b[in_ a] | open a",
        &["b[a[open_]]|open a", "b[in_ a]|in b"],
    ),
    // Of two siblings named `b`, only one admits `a`; of two named `a`, only one
    // can be opened (both orders, as a schedule may meet them in either).
    ("a[in b] | b[] | b[in_ a]", &["b[]|b[a[]]"]),
    ("a[in b] | b[in_ a] | b[]", &["b[]|b[a[]]"]),
    ("open a.x[] | a[open_] | a[]", &["a[]|x[]"]),
    ("open a.x[] | a[] | a[open_]", &["a[]|x[]"]),
    // The mover already holds the co-capability its new siblings wait for
    // (both orders): arriving by `in` or by `out` must wake them.
    ("n[in p | open_] | p[open n | in_ n]", &["p[]"]),
    ("p[open n | in_ n] | n[in p | open_]", &["p[]"]),
    ("n[in m | in_ k] | m[in_ n | k[in n]]", &["m[n[k[]]]"]),
    ("m[in_ n | k[in n]] | n[in m | in_ k]", &["m[n[k[]]]"]),
    ("q[n[out q | open_] | out_ n] | open n", &["q[]"]),
    ("open n | q[n[out q | open_] | out_ n]", &["q[]"]),
    // Same-named ambients entering each other: one enters, then nothing is left.
    ("a[in a | in_ a] | a[in a | in_ a]", &["a[a[in_ a]|in a]"]),
    // A mover's other capabilities act from where it has got to.
    ("a[in b | in c] | b[in_ a | c[in_ a]]", &["b[c[a[]]]"]),
    // `out m` leaves only a parent named `m`.
    ("m[x[out n] | out_ x]", &["m[out_ x|x[out n]]"]),
    // Out of nested ambients, one level at a time.
    ("m[n[k[out n.out m] | out_ k] | out_ k]", &["k[]|m[n[]]"]),
    ("m[a[out m.in b] | out_ a] | b[in_ a]", &["b[a[]]|m[]"]),
    ("a[in b.out b] | b[in_ a.out_ a]", &["a[]|b[]"]),
    // Moving an ambient does not make its children siblings of the new ones.
    (
        "a[in b | c[in d]] | b[in_ a | d[in_ c]]",
        &["b[a[c[in d]]|d[in_ c]]"],
    ),
];

/// The same program with every parallel composition in reverse order.
fn mirrored(ast: &Ast) -> Ast {
    let mut builder = Builder::new();
    let mut pending: Vec<(usize, NodeId)> = ast.roots().map(|id| (0, id)).collect();
    while let Some((parent, id)) = pending.pop() {
        let node = ast.node(id);
        let name = node.name().map(|s| ast.name_text(s).to_string());
        let head = match node.kind() {
            NodeKind::Ambient => Head::Amb(name.expect("ambients are named")),
            NodeKind::Cap(kind) => Head::Cap(kind, name),
        };
        let copy = builder.push(parent, head);
        pending.extend(ast.children(Some(id)).map(|child| (copy, child)));
    }
    builder.finish()
}

/// Each program, and its mirror image (so a schedule meets the parts in both
/// orders), has exactly the listed normal forms; the engine reaches one of them
/// through reference steps, and so do the first, the last and alternating redexes.
#[test]
fn tricky_programs() {
    let programs = TRICKY.iter().flat_map(|&(source, expected)| {
        let program = Program::parse(source);
        let mirror = Program::new(mirrored(&program.ast));
        assert!(mirrored(&mirror.ast).same_structure(&program.ast));
        [(program, expected), (mirror, expected)]
    });
    for (program, expected) in programs {
        let source = &program.text;
        let exploration = explore(&program.ast, MAX_STATES).unwrap();
        assert_eq!(exploration.normal_forms, expected, "explorer on {source}");
        let replayed = replay(&program).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            expected.contains(&replayed.normal_form.as_str()),
            "{source}: the engine reaches {}",
            replayed.normal_form
        );
        let (normal_form, steps) = engine_normal_form(&program).unwrap();
        assert_eq!(normal_form, replayed.normal_form);
        assert_eq!(steps, steps_between(&program.ast, &normal_form));
        for order in [vec![0], vec![usize::MAX], vec![1, 0]] {
            let (reached, _) = random_order(&program, &order).unwrap();
            assert!(
                expected.contains(&reached.as_str()),
                "{source}: order {order:?} reaches {reached}"
            );
        }
    }
}
