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

/// A node of a term read breadth first, as the views give it: its path, and what it
/// is (`name` of an ambient, `cap target` of a capability).
fn breadth_first(ast: &amb_syntax::Ast) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::new();
    for (i, child) in ast.children(None).enumerate() {
        queue.push_back((child, i.to_string()));
    }
    while let Some((node, path)) = queue.pop_front() {
        let n = ast.node(node);
        let name = n.name().map(|s| ast.name_text(s)).unwrap_or("");
        let what = match n.kind() {
            amb_syntax::NodeKind::Ambient => name.to_string(),
            amb_syntax::NodeKind::Cap(cap) => format!("{} {name}", cap.keyword()),
        };
        for (i, child) in ast.children(Some(node)).enumerate() {
            queue.push_back((child, format!("{path}.{i}")));
        }
        out.push((path, what));
    }
    out
}

fn view_text(node: &amb_vm::replay::ViewNode) -> String {
    match &node.kind {
        amb_vm::replay::ViewKind::Ambient { name, .. } => name.to_string(),
        amb_vm::replay::ViewKind::Cap { kind, target, .. } => {
            format!("{} {}", kind.keyword(), target.as_deref().unwrap_or(""))
        }
    }
}

#[test]
fn the_views_of_a_state_read_the_term_in_parts_and_name_what_a_step_changed() {
    use amb_vm::replay::{NodeRef, changes};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    for file in [
        "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb",
        "ambientsprotocol-encoding-examples/functors/identity-functor.amb",
        "ambientsprotocol-whitepaper/ch05/20-call-return.amb",
    ] {
        let recording = record_file(file, &store);
        let timeline = Timeline::load(&store, recording.recorded.program, &()).unwrap();
        let source = timeline.source();
        for k in 0..=timeline.total_steps() {
            let replay = timeline.replay_at(Moment::Step(k)).unwrap();
            let ast = replay.to_ast(source);
            let expected = breadth_first(&ast);
            // The whole view is the term, breadth first, path by path.
            let whole = replay.tree_view(source, &[], 0, usize::MAX).unwrap();
            let got: Vec<(String, String)> = whole
                .nodes
                .iter()
                .map(|n| (n.path.clone(), view_text(n)))
                .collect();
            assert_eq!(got, expected, "{file} step {k}");
            assert_eq!(
                replay.census(source, 10, usize::MAX).nodes,
                ast.len(),
                "{file} step {k}"
            );
            // A bounded view hides children, which their path gives.
            let small = replay.tree_view(source, &[], 0, 4).unwrap();
            assert!(small.nodes.len() <= 4);
            for node in small.nodes.iter().filter(|n| n.hidden > 0) {
                let path: Vec<usize> = node.path.split('.').map(|p| p.parse().unwrap()).collect();
                let deeper = replay.tree_view(source, &path, 0, usize::MAX).unwrap();
                let first_level = deeper.nodes.iter().filter(|n| n.parent.is_none()).count();
                assert_eq!(first_level, node.hidden, "{file} step {k} {}", node.path);
                let prefix = format!("{}.", node.path);
                let under: Vec<_> = expected
                    .iter()
                    .filter(|(p, _)| p.starts_with(&prefix))
                    .collect();
                assert_eq!(
                    deeper.nodes.len(),
                    under.len(),
                    "{file} step {k} {}",
                    node.path
                );
            }
            assert!(replay.tree_view(source, &[999], 0, 4).is_err());
            if k == 0 {
                continue;
            }
            // The two capabilities of step k's redex: live nodes before, removed by it.
            let (first, second) = timeline.redex(k).unwrap();
            let at_of = |cid: &amb_bytecode::Cid| {
                timeline
                    .events()
                    .iter()
                    .find(|(c, _)| c == cid)
                    .and_then(|(_, e)| e.as_op()?.at())
                    .unwrap()
            };
            let consumed = vec![at_of(&first.unwrap()), at_of(&second)];
            let before = timeline.replay_at(Moment::Step(k - 1)).unwrap();
            let changed = changes(&before, &replay, &consumed);
            let before_ids: Vec<NodeRef> = before
                .tree_view(source, &[], 0, usize::MAX)
                .unwrap()
                .nodes
                .iter()
                .filter_map(|n| n.id)
                .collect();
            let after_ids: Vec<NodeRef> = whole.nodes.iter().filter_map(|n| n.id).collect();
            for (d, i) in &consumed {
                let id = NodeRef::Instruction(*d, *i);
                assert!(before_ids.contains(&id), "{file} step {k}");
                assert!(!after_ids.contains(&id), "{file} step {k}");
                assert!(
                    changed.removed.iter().any(|r| r.id == id),
                    "{file} step {k}: {changed:?}"
                );
            }
            // What is added is in the state after; what is removed was in the one before.
            for id in &changed.added {
                assert!(after_ids.contains(id), "{file} step {k}: {id:?}");
            }
            for removed in &changed.removed {
                assert!(before_ids.contains(&removed.id), "{file} step {k}");
                // A capability named removed is gone (consumed), not moved by an `open`.
                if let NodeRef::Instruction(..) = removed.id {
                    assert!(!after_ids.contains(&removed.id), "{file} step {k}");
                }
            }
            // Only the top of a new subtree is marked: nothing added is inside an
            // ambient that is new since the state before.
            for node in &whole.nodes {
                let Some(id) = node.id.filter(|id| changed.added.contains(id)) else {
                    continue;
                };
                let mut parent = node.parent;
                while let Some(p) = parent {
                    assert!(
                        whole.nodes[p]
                            .id
                            .is_none_or(|pid| before_ids.contains(&pid)
                                || !matches!(pid, NodeRef::Ambient(_))),
                        "{file} step {k}: {id:?} is inside a new ambient"
                    );
                    parent = whole.nodes[p].parent;
                }
            }
        }
    }
}
