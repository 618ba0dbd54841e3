//! Time travel on recorded programs: step 0 is the deployed program, the last step is
//! the engine's normal form, and every state is one legal reduction step (checked by
//! the naive reference reducer) from the one before.

use amb_log::{SigningKey, Store};
use amb_vm::travel::{Moment, Timeline, state_at};

mod common;
use common::{Recording, corpus_file as corpus, record_source};

/// Records `file` of the corpus into `store`.
fn record_file(file: &str, store: &Store) -> Recording {
    let key = SigningKey::from_seed(&[5; 32]);
    record_source(&corpus(file), store, &key, [9; 16]).unwrap()
}

#[test]
fn seeking_from_snapshots_gives_the_state_a_whole_replay_gives() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    let recording = record_file(
        "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb",
        &store,
    );
    let (program, steps) = (recording.recorded.program, recording.plan.steps);
    // One snapshot (step 0) only: every seek replays from the start.
    let whole = Timeline::load_with_interval(&store, program, Some(u64::MAX), &()).unwrap();
    assert_eq!(whole.snapshots(), 1);
    let expected: Vec<String> = (0..=steps)
        .map(|k| amb_syntax::to_compact_string(&whole.seek(Moment::Step(k)).unwrap().term))
        .collect();
    for interval in [1, 2, 3, 7] {
        let timeline = Timeline::load_with_interval(&store, program, Some(interval), &()).unwrap();
        assert_eq!(timeline.snapshots() as u64, steps / interval + 1);
        // Seek forwards, backwards and at random, from the same timeline.
        let mut ks: Vec<u64> = (0..=steps).chain((0..=steps).rev()).collect();
        ks.extend((0..=steps).map(|k| (k * 7919) % (steps + 1)));
        for k in ks {
            let snapshot = timeline.seek(Moment::Step(k)).unwrap();
            assert_eq!(snapshot.step, k);
            assert_eq!(
                amb_syntax::to_compact_string(&snapshot.term),
                expected[k as usize],
                "interval {interval}, step {k}"
            );
        }
    }
}

#[test]
fn every_step_is_a_legal_reduction_of_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    for file in [
        "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb",
        "ambientsprotocol-encoding-examples/functors/identity-functor.amb",
        "ambientsprotocol-whitepaper/ch05/20-call-return.amb",
    ] {
        let Recording {
            ast,
            plan,
            recorded,
            ..
        } = record_file(file, &store);
        let at = |k| state_at(&store, recorded.program, Moment::Step(k)).unwrap();
        let start = at(0);
        assert_eq!(start.step, 0);
        assert_eq!(start.total_steps, plan.steps, "{file}");
        assert_eq!(
            amb_syntax::to_compact_string(&start.term),
            amb_syntax::to_canonical_string(&ast),
            "{file}: step 0 is the deployed program"
        );
        let mut previous = start.term;
        for k in 1..=plan.steps {
            let snapshot = at(k);
            assert_eq!(snapshot.step, k);
            let before = amb_reference::Term::from_ast(&previous).unwrap();
            let successors: Vec<String> = amb_reference::successors(&before)
                .iter()
                .map(|t| t.canonical())
                .collect();
            let now = amb_syntax::to_compact_string(&snapshot.term);
            assert!(
                successors.contains(&now),
                "{file}: step {k} {now} is not one step from the state before"
            );
            previous = snapshot.term;
        }
        assert_eq!(
            amb_syntax::to_compact_string(&previous),
            amb_syntax::to_compact_string(&plan.final_term),
            "{file}"
        );
        // An event's moment is the step that holds it: seeking to the event gives the
        // same state as seeking to that step, and every step is reachable by event.
        let mut seen = std::collections::BTreeSet::new();
        for cid in &recorded.event_cids {
            let by_event = state_at(&store, recorded.program, Moment::Event(*cid)).unwrap();
            let by_step = at(by_event.step);
            assert_eq!(
                amb_syntax::to_compact_string(&by_event.term),
                amb_syntax::to_compact_string(&by_step.term)
            );
            seen.insert(by_event.step);
        }
        assert_eq!(
            seen.len() as u64,
            plan.steps + 1,
            "{file}: steps 0..=N all held by events"
        );
    }
}
