//! The ROAM rules one by one, on small programs whose every result is written out.

use amb_reference::{
    CapKind, Exploration, Limits, Part, Redex, ReferenceError, Term, apply, explore,
    explore_with_limits, redexes, reduce_with, successors,
};

fn term(src: &str) -> Term {
    Term::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

/// The canonical texts of the one-step successors, sorted (duplicates kept).
fn next(src: &str) -> Vec<String> {
    let mut out: Vec<String> = successors(&term(src)).iter().map(Term::canonical).collect();
    out.sort();
    out
}

fn explored(src: &str) -> Exploration {
    explore(&amb_syntax::parse(src).unwrap(), 100_000).unwrap()
}

fn normal_forms(src: &str) -> Vec<String> {
    let e = explored(src);
    assert!(!e.truncated, "{src}");
    e.normal_forms
}

#[test]
fn in_moves_the_ambient_and_releases_both_continuations() {
    assert_eq!(
        next("a[in b.x[] | q[]] | b[in_ a.y[] | s[]]"),
        ["b[a[q[]|x[]]|s[]|y[]]"]
    );
    // Nested anywhere: closure under ambients.
    assert_eq!(next("z[w[a[in b]|b[in_ a]]]"), ["z[w[b[a[]]]]"]);
}

#[test]
fn in_needs_a_matching_co_capability() {
    assert!(next("a[in b] | b[in_ c]").is_empty());
    assert!(next("a[in b] | b[]").is_empty());
    assert!(next("a[in b] | c[in_ a]").is_empty());
    // The co-capability must be directly in m, not under a prefix or a child.
    assert!(next("a[in b] | b[open_.in_ a]").is_empty());
    assert!(next("a[in b] | b[c[in_ a]]").is_empty());
    // An ambient does not enter itself.
    assert!(next("b[in b | in_ b]").is_empty());
    // `in` at the top level has no ambient to move.
    assert!(next("in b | b[in_]").is_empty());
}

#[test]
fn wildcard_in_admits_any_ambient() {
    assert_eq!(next("a[in b.x[]] | b[in_.y[]]"), ["b[a[x[]]|y[]]"]);
    assert_eq!(
        next("a[in b] | c[in b] | b[in_]"),
        ["a[in b]|b[c[]]", "b[a[]]|c[in b]"]
    );
}

#[test]
fn out_moves_the_child_out_and_releases_both_continuations() {
    assert_eq!(
        next("m[n[out m.p[] | q[]] | out_ n.r[] | s[]]"),
        ["m[r[]|s[]]|n[p[]|q[]]"]
    );
    assert_eq!(next("z[m[n[out m]|out_ n]]"), ["z[m[]|n[]]"]);
    // Named out_ admits only that child; out must name the parent.
    assert!(next("m[n[out m] | out_ k]").is_empty());
    assert!(next("m[n[out k] | out_ n]").is_empty());
    assert!(next("k[m[n[out k]] | out_ n]").is_empty());
    // A top-level ambient has no parent to leave.
    assert!(next("n[out m] | out_ n").is_empty());
}

#[test]
fn wildcard_out_admits_any_child() {
    assert_eq!(next("m[n[out m.p[]] | out_.q[]]"), ["m[q[]]|n[p[]]"]);
}

#[test]
fn open_dissolves_the_boundary() {
    assert_eq!(
        next("p[open n.x[] | n[open_.y[] | z[] | in c] | k[]]"),
        ["p[in c|k[]|x[]|y[]|z[]]"]
    );
    // open_ must be directly in n.
    assert!(next("open n | n[c[open_]]").is_empty());
    assert!(next("open n | n[in a.open_]").is_empty());
    assert!(next("open n | m[open_]").is_empty());
}

#[test]
fn open_releases_capabilities_that_act_for_the_opener() {
    // y opens return[open_.in x] and so moves into x.
    let src = "x[in_ y] | y[open return | return[open_.in x] | data[]]";
    assert_eq!(next(src), ["x[in_ y]|y[data[]|in x]"]);
    assert_eq!(normal_forms(src), ["x[y[data[]]]"]);
    // The whitepaper's call/return shape.
    assert_eq!(
        normal_forms(
            "x[call[out x.in y.open_|return[open_.in x]]|out_ call.in_ y] \
             | y[in_ call.open call.open return]"
        ),
        ["x[y[]]"]
    );
}

#[test]
fn top_level_capabilities_act() {
    assert_eq!(next("open n.x[] | n[open_.y[] | z[]]"), ["x[]|y[]|z[]"]);
    assert_eq!(
        normal_forms("open n.open m | n[open_|m[open_.k[]]]"),
        ["k[]"]
    );
}

#[test]
fn a_continuation_does_not_act_before_its_prefix_fires() {
    let src = "open n.open m | m[open_] | n[open_]";
    assert_eq!(next(src), ["m[open_]|open m"]);
    assert_eq!(normal_forms(src), [""]);
    // The continuation of in_ x.n[P] is created inside m, not before.
    assert_eq!(next("a[in b] | b[in_ a.c[]]"), ["b[a[]|c[]]"]);
    assert!(next("in_ a.(a[in b] | b[in_ a])").is_empty());
}

#[test]
fn competing_redexes_are_never_both_applied() {
    // Two movers for one in_: each result has exactly one of them inside.
    let src = "a[in b|c[]] | a[in b|d[]] | b[in_ a]";
    assert_eq!(
        next(src),
        ["a[c[]|in b]|b[a[d[]]]", "a[d[]|in b]|b[a[c[]]]"]
    );
    // Two identical movers: two redexes, equal results, never both inside.
    assert_eq!(next("a[in b] | a[in b] | b[in_ a]"), ["a[in b]|b[a[]]"; 2]);
    assert_eq!(
        normal_forms("a[in b] | a[in b] | b[in_ a]"),
        ["a[in b]|b[a[]]"]
    );
    // Two openers for one ambient, one opener for two ambients.
    assert_eq!(normal_forms("open n | open n | n[open_]"), ["open n"]);
    assert_eq!(
        normal_forms("open n | n[open_.x[]] | n[open_.y[]]"),
        ["n[open_.x[]]|y[]", "n[open_.y[]]|x[]"]
    );
    // One capability, two co-capabilities in the same ambient: one is consumed.
    assert_eq!(
        normal_forms("a[in b] | b[in_ a.x[] | in_ a.y[]]"),
        ["b[a[]|in_ a.x[]|y[]]", "b[a[]|in_ a.y[]|x[]]"]
    );
    // Two children racing for one out_.
    assert_eq!(
        normal_forms("m[n[out m] | k[out m] | out_]"),
        ["k[]|m[n[out m]]", "m[k[out m]]|n[]"]
    );
}

#[test]
fn the_whitepaper_race_has_two_normal_forms() {
    let e = explored("a[in b|c[]] | a[in b|d[]] | b[in_ a]");
    assert_eq!(
        e.normal_forms,
        ["a[c[]|in b]|b[a[d[]]]", "a[d[]|in b]|b[a[c[]]]"]
    );
    assert_eq!(e.states, 3);
    assert_eq!(e.confluent, Some(false));
    assert!(!e.truncated);
}

#[test]
fn exploration_counts_states_and_truncates() {
    // d[c[]] | a[in c.in b...]: the whitepaper's sequential path, 4 states.
    let src = "a[in b.in c] | b[in_ a.in c] | c[in_ b.in_ a] | d[]";
    let full = explored(src);
    assert!(!full.truncated);
    assert_eq!(full.confluent, Some(true));
    let cut = explore(&amb_syntax::parse(src).unwrap(), full.states - 1).unwrap();
    assert!(cut.truncated);
    assert_eq!(cut.states, full.states - 1);
    assert_eq!(cut.confluent, None);
    let exact = explore(&amb_syntax::parse(src).unwrap(), full.states).unwrap();
    assert_eq!(exact, full);
    let none = explore(&amb_syntax::parse(src).unwrap(), 0).unwrap();
    assert!(none.truncated && none.states == 0 && none.normal_forms.is_empty());
    // The empty program is its own normal form.
    assert_eq!(normal_forms(""), [""]);
}

#[test]
fn json_has_exactly_the_cli_keys() {
    let e = explored("a[in b|c[]] | a[in b|d[]] | b[in_ a]");
    assert_eq!(
        e.to_json(),
        serde_json::json!({
            "normal_forms": ["a[c[]|in b]|b[a[d[]]]", "a[d[]|in b]|b[a[c[]]]"],
            "states": 3,
            "confluent": false,
            "truncated": false,
        })
    );
    let cut = explore(&amb_syntax::parse("a[in b] | b[in_ a]").unwrap(), 1).unwrap();
    let json = cut.to_json();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4);
    assert_eq!(json["confluent"], serde_json::Value::Null);
    assert_eq!(json["truncated"], true);
    assert_eq!(json["states"], 1);
}

#[test]
fn apply_refuses_a_redex_that_is_not_there() {
    let t = term("a[in b] | b[in_ a]");
    let found = redexes(&t);
    assert_eq!(
        found,
        [Redex::In {
            at: vec![],
            mover: 0,
            cap: 0,
            target: 1,
            co: 0
        }]
    );
    assert_eq!(apply(&t, &found[0]).unwrap().canonical(), "b[a[]]");
    let wrong = Redex::Open {
        at: vec![],
        cap: 0,
        opened: 1,
        co: 0,
    };
    assert_eq!(
        apply(&t, &wrong),
        Err(ReferenceError::IllegalRedex(wrong.clone()))
    );
}

#[test]
fn reduce_with_follows_the_chosen_order() {
    let src = "a[in b|c[]] | a[in b|d[]] | b[in_ a]";
    let first = reduce_with(term(src), |_| 0, 100).unwrap();
    let last = reduce_with(term(src), |r| r.len() - 1, 100).unwrap();
    assert!(first.normal && last.normal);
    assert_eq!(first.trace.len(), 1);
    let mut both = [first.term.canonical(), last.term.canonical()];
    both.sort();
    assert_eq!(both, ["a[c[]|in b]|b[a[d[]]]", "a[d[]|in b]|b[a[c[]]]"]);
    // Running out of steps is not a normal form.
    let stopped = reduce_with(term("a[in b.in c] | b[in_ a] | c[]"), |_| 0, 0).unwrap();
    assert!(!stopped.normal && stopped.trace.is_empty());
    assert_eq!(
        reduce_with(term(src), |_| 7, 100),
        Err(ReferenceError::ChoiceOutOfRange {
            choice: 7,
            count: 2
        })
    );
}

#[test]
fn hand_built_terms_are_checked() {
    let bad = Term {
        parts: vec![Part::cap(CapKind::In, None, vec![])],
    };
    assert!(format!("{bad:?}").contains("malformed"));
    assert!(matches!(
        reduce_with(bad, |_| 0, 10),
        Err(ReferenceError::BadCapability {
            kind: CapKind::In,
            ..
        })
    ));
    let good = Term {
        parts: vec![
            Part::amb("a", vec![Part::cap(CapKind::In, Some("b"), vec![])]),
            Part::amb("b", vec![Part::cap(CapKind::InCo, None, vec![])]),
        ],
    };
    assert_eq!(
        reduce_with(good, |_| 0, 10).unwrap().term.canonical(),
        "b[a[]]"
    );
}

/// `depth` nested ambients `a[a[...a[]...]]` with a redex at the bottom.
fn nested(depth: usize) -> String {
    let mut src = String::new();
    for _ in 0..depth - 2 {
        src.push_str("a[");
    }
    src.push_str("x[in y]|y[in_ x]");
    for _ in 0..depth - 2 {
        src.push(']');
    }
    src
}

#[test]
fn deep_programs_are_refused_before_recursion() {
    let limit = Limits::default().max_depth;
    assert_eq!(limit, 2_000);
    // At the limit: explored. (The step moves x below y but consumes the prefix
    // below x, so the depth stays at the limit.)
    let ok = amb_syntax::parse(nested(limit)).unwrap();
    assert_eq!(ok.depth(), limit);
    let e = explore(&ok, 100).unwrap();
    assert_eq!(e.states, 2);
    assert_eq!(e.confluent, Some(true));
    // Past the limit, and far past it: a clear error, no stack overflow.
    for depth in [limit + 1, 100_000] {
        let ast = amb_syntax::parse(nested(depth)).unwrap();
        assert_eq!(
            explore(&ast, 100),
            Err(ReferenceError::TooDeep { depth, limit })
        );
        assert_eq!(
            Term::from_ast(&ast),
            Err(ReferenceError::TooDeep { depth, limit })
        );
    }
    // Nothing recurses over the tree, so with a raised limit a program 20,000
    // levels deep is explored on a test thread's ordinary stack.
    let deep = amb_syntax::parse(nested(20_000)).unwrap();
    let raised = Limits { max_depth: 20_000 };
    let e = explore_with_limits(&deep, 100, &raised).unwrap();
    assert_eq!((e.states, e.normal_forms.len()), (2, 1));
    let t = Term::from_ast_with_limits(&deep, &raised).unwrap();
    let copy = t.clone();
    assert_eq!(copy, t);
    assert!(format!("{copy:?}").starts_with("Term(a[a[a["));
    let stepped = successors(&t);
    assert_eq!(stepped.len(), 1);
    assert_ne!(stepped[0], t);
    // A step that deepens the term past the limit is refused too.
    let tight = Limits { max_depth: 3 };
    let grows = amb_syntax::parse("a[in b|c[d[]]] | b[in_ a]").unwrap();
    assert_eq!(grows.depth(), 3);
    assert_eq!(
        explore_with_limits(&grows, 100, &tight),
        Err(ReferenceError::TooDeep { depth: 4, limit: 3 })
    );
}
