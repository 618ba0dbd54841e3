//! Any topological order of a run's events replays to the same state
//! (`spec/events.md` §4: refs make every dependency of an event explicit).
//!
//! Each program is recorded once; proptest then draws orders in which every event
//! comes after the events it refers to (repeatedly picking one of the events whose
//! refs are all placed), applies them one by one to a fresh [`Replay`], and checks
//! that every order is accepted and ends in the engine's final term, with the same
//! number of steps. `verify_events` (which sorts the events itself) is also given
//! the events in that order.

mod common;
use common::{corpus_file, record_source};
use std::collections::HashSet;

use amb_bytecode::Cid;
use amb_log::{Event, Manifest, SigningKey, Store};
use amb_vm::{
    plan::Plan,
    replay::{Replay, Source},
    verify::{StoreSource, check_event, verify_events},
};
use proptest::{
    collection::vec,
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};

const CASES: u32 = 96;

/// Programs whose concurrent events once broke replay in some orders:
/// - `c` is opened inside `a` while `a` enters `d`; the `in d` refers to `c`'s last
///   event, and `c` may be dissolved before the `in d` is replayed;
/// - `open a` moves `d` to the root before `d`'s `create` is replayed (it refers
///   only to its announcing deploy), and `d`'s next event refers to the `open a`.
/// - `arg` enters `a` while `return` leaves `b` into `arg`: `return`'s next event
///   goes to `a`'s log and refers to the `out_`, which may be replayed before `arg`
///   is in `a`;
/// - `g` is opened while `j` leaves `i` (a child of `g`) into `g`: `j`'s next event
///   refers to the `open g`, which may be replayed while `j` is still in `i`;
/// - the root opens `c` while the inner `a` leaves the outer one into `c`, or before
///   the inner `a` is even announced: its next event refers to the `open c`.
const CONCURRENT: [&str; 6] = [
    "a[in_] | open c | c[a[out_ | a[out a.in a]] | open_]",
    "a[b[open c | c[open_]] | in d] | d[in_ a]",
    "a[open_ | d[in_ c]] | c[in d] | open a",
    "a[open_ | d[in_ c]] | b[] | c[in d] | open a | f[in_] | g[i[out g] | in f.out_ i] | h[]",
    "arg[b[out_ | return[out b.n[]]] | in a] | a[in_]",
    "g[in_.(i[in_.out_.open_.open j] | open h)] | h[in g.(open_ | open_.j[in i.out i.open_])] | open i | open g",
];

/// The programs: the monoid, the identity functor, every runnable example of the
/// whitepaper's chapter 05, and [`CONCURRENT`].
fn programs() -> Vec<(String, String)> {
    let mut files = vec![
        "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb"
            .to_string(),
        "ambientsprotocol-encoding-examples/functors/identity-functor.amb".to_string(),
    ];
    let index = corpus_file("INDEX.tsv");
    let ch05: Vec<String> = index
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].starts_with("ambientsprotocol-whitepaper/ch05/")
                && cols.get(1) == Some(&"roam"))
            .then(|| cols[0].to_string())
        })
        .collect();
    assert_eq!(ch05.len(), 26, "the roam programs of ch05");
    files.extend(ch05);
    let mut programs: Vec<(String, String)> = files
        .into_iter()
        .map(|f| {
            let text = corpus_file(&f);
            (f, text)
        })
        .collect();
    programs.extend(CONCURRENT.iter().map(|p| (p.to_string(), p.to_string())));
    programs
}

/// A recorded run: its events (CID, decoded) and what the engine computed.
struct Run {
    program: Cid,
    manifest: Manifest,
    plan: Plan,
    events: Vec<(Cid, Event)>,
    raw: Vec<(Cid, Vec<u8>)>,
}

fn record_run(source: &str, store: &Store) -> Run {
    let key = SigningKey::from_seed(&[11; 32]);
    let recording = record_source(source, store, &key, Manifest::random_nonce()).unwrap();
    let raw = recording.raw(store);
    let events = raw
        .iter()
        .map(|(cid, bytes)| (*cid, check_event(*cid, bytes).unwrap()))
        .collect();
    Run {
        program: recording.recorded.program,
        manifest: recording.manifest,
        plan: recording.plan,
        events,
        raw,
    }
}

/// A topological order of the events: at each step, the `choices[k]`-th (modulo)
/// of the events whose refs are all placed, in plan order.
fn topological(events: &[(Cid, Event)], choices: &[u32]) -> Vec<usize> {
    let (mut waiting, dependents) = common::dependencies(events);
    let mut ready: Vec<usize> = (0..events.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(events.len());
    for k in 0..events.len() {
        assert!(!ready.is_empty(), "the refs form a cycle or leave the set");
        let pick = ready.remove(choices[k % choices.len()] as usize % ready.len());
        order.push(pick);
        for &d in &dependents[pick] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    order
}

/// Replays `run` in `order`; the canonical final term, or the violation.
fn replay_in(run: &Run, order: &[usize], source: &dyn Source) -> Result<(String, u64), String> {
    let mut replay = Replay::new(run.program, run.manifest.clone());
    for &i in order {
        let (cid, event) = &run.events[i];
        replay
            .apply(*cid, event, source)
            .map_err(|v| format!("event {i}: {v}"))?;
    }
    replay.finish(source).map_err(|v| format!("finish: {v}"))?;
    let mut term = replay.to_ast(source);
    term.canonicalize();
    Ok((amb_syntax::to_compact_string(&term), replay.steps()))
}

#[test]
fn every_topological_order_replays_to_the_engines_final_term() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    let source = StoreSource { store: &store };
    let mut failures = Vec::new();
    for (file, text) in programs() {
        let run = record_run(&text, &store);
        let expected = amb_syntax::to_compact_string(&run.plan.final_term);
        let n = run.events.len();
        // The plan order is one topological order.
        assert_eq!(
            replay_in(&run, &(0..n).collect::<Vec<_>>(), &source),
            Ok((expected.clone(), run.plan.steps)),
            "{file}: plan order"
        );
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&vec(any::<u32>(), n.max(1)), |choices| {
            let order = topological(&run.events, &choices);
            let distinct: HashSet<usize> = order.iter().copied().collect();
            prop_assert_eq!(distinct.len(), n);
            let replayed = replay_in(&run, &order, &source).map_err(TestCaseError::fail)?;
            prop_assert_eq!(&replayed, &(expected.clone(), run.plan.steps));
            // verify_events accepts the same events given in this order.
            let shuffled: Vec<(Cid, Vec<u8>)> = order.iter().map(|&i| run.raw[i].clone()).collect();
            let verified = verify_events(&source, run.program, &shuffled)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                amb_syntax::to_compact_string(&verified.term),
                expected.clone()
            );
            Ok(())
        });
        if let Err(e) = outcome {
            failures.push(format!("{file}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
