//! The indexed engine on every ROAM program of the shared corpus: the default
//! schedule reaches one of the normal forms the independent explorer lists, and the
//! same steps on every run.

use amb_engine::{Engine, Limits};
use amb_tests::{Kind, index};

#[test]
fn engine_reaches_a_listed_normal_form_for_every_corpus_program() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in index().into_iter().filter(|e| e.kind == Kind::Roam) {
        let ast = amb_syntax::parse(entry.read()).expect("roam files parse");
        let (out, _) = amb_engine::reduce(&ast, Limits::default()).expect("within limits");
        let normal_form = amb_syntax::to_canonical_string(&out);
        if !entry.normal_forms.contains(&normal_form) {
            failures.push(format!(
                "{}: reached {normal_form}\n  listed: {:?}",
                entry.file, entry.normal_forms
            ));
        }
        checked += 1;
    }
    assert_eq!(checked, 112);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn engine_schedule_is_deterministic_on_the_corpus() {
    for entry in index().into_iter().filter(|e| e.kind == Kind::Roam) {
        let ast = amb_syntax::parse(entry.read()).unwrap();
        let trace = || {
            let mut engine = Engine::new(&ast, Limits::default()).unwrap();
            let mut steps = Vec::new();
            engine.run(|_, step| steps.push(*step)).unwrap();
            steps
        };
        assert_eq!(trace(), trace(), "{}", entry.file);
    }
}
