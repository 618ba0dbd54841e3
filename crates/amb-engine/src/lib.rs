//! ROAM reduction at scale.
//!
//! [`Engine`] instantiates a program (an [`amb_syntax::Ast`]) as ambient and
//! capability instances with their own ids, and reduces it by the three rules of
//! `spec/semantics.md`, one [`Step`] at a time, in a deterministic order. Redexes are
//! found through indexes (children by name, co-capabilities by owner and name, wait
//! lists), never by scanning the tree, so a step costs amortized O(1) whatever the
//! program's size or depth. [`Limits`] bound the steps and memory of a run.
//!
//! The engine knows nothing of bytecode, events or values; it reads the AST and
//! reports steps.

mod engine;
mod limits;
mod state;

pub use engine::{BringInError, Engine, Rule, Step};
pub use limits::{EngineError, Limits};
pub use state::{AmbId, CapId};

/// Reduces a program to its normal form with the default schedule; returns the final
/// term and the number of steps.
pub fn reduce(
    ast: &amb_syntax::Ast,
    limits: Limits,
) -> Result<(amb_syntax::Ast, u64), EngineError> {
    let mut engine = Engine::new(ast, limits)?;
    let steps = engine.run(|_, _| {})?;
    Ok((engine.to_ast(), steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal_form(src: &str) -> (String, u64) {
        let ast = amb_syntax::parse(src).unwrap();
        let (out, steps) = reduce(&ast, Limits::default()).unwrap();
        (amb_syntax::to_canonical_string(&out), steps)
    }

    #[test]
    fn the_three_rules() {
        assert_eq!(normal_form("a[in b] | b[in_ a]"), ("b[a[]]".into(), 1));
        assert_eq!(normal_form("b[a[out b] | out_ a]"), ("a[]|b[]".into(), 1));
        assert_eq!(normal_form("open a | a[open_ | c[]]"), ("c[]".into(), 1));
    }

    #[test]
    fn continuations_are_released_by_their_prefix() {
        assert_eq!(
            normal_form("a[in b.in c] | b[in_ a.out_ a] | c[in_ a]"),
            ("b[a[in c]|out_ a]|c[in_ a]".into(), 1)
        );
        assert_eq!(
            normal_form("d[in_ c.open c] | c[in d.(b[] | open_)] | a[]"),
            ("a[]|d[b[]]".into(), 2)
        );
    }

    #[test]
    fn wildcards_admit_any_ambient() {
        assert_eq!(
            normal_form("a[in b.in_ | b[]] | b[in_]"),
            ("b[a[b[]|in_]]".into(), 1)
        );
        assert_eq!(normal_form("m[x[out m] | out_]"), ("m[]|x[]".into(), 1));
    }

    #[test]
    fn open_releases_content_into_the_opener() {
        // y opens return[open_.in x]; the released `in x` acts for y.
        assert_eq!(
            normal_form("x[in_ y] | y[return[open_.in x] | open return]"),
            ("x[y[]]".into(), 2)
        );
    }

    #[test]
    fn competing_redexes_fire_once() {
        let (nf, steps) = normal_form("a[in b|c[]] | a[in b|d[]] | b[in_ a]");
        assert_eq!(steps, 1);
        assert!(
            nf == "a[c[]|in b]|b[a[d[]]]" || nf == "a[d[]|in b]|b[a[c[]]]",
            "{nf}"
        );
    }

    #[test]
    fn limits_are_errors() {
        let ast = amb_syntax::parse("a[in b] | b[in_ a.in c] | c[in_ b]").unwrap();
        let limits = Limits {
            max_steps: 1,
            ..Limits::default()
        };
        assert_eq!(
            reduce(&ast, limits).unwrap_err(),
            EngineError::StepLimit { limit: 1 }
        );
        let limits = Limits {
            max_memory_bytes: 10,
            ..Limits::default()
        };
        assert!(matches!(
            reduce(&ast, limits).unwrap_err(),
            EngineError::MemoryLimit { .. }
        ));
    }

    #[test]
    fn same_steps_every_run() {
        let src = "a[in b|c[]] | a[in b|d[]] | b[in_ a.in_ a] | open b.open a";
        let run = || {
            let ast = amb_syntax::parse(src).unwrap();
            let mut engine = Engine::new(&ast, Limits::default()).unwrap();
            let mut steps = Vec::new();
            engine.run(|_, s| steps.push(*s)).unwrap();
            steps
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn origins_name_block_instances() {
        // `b[c[]]` is released by `in_ x` of a's block; `open_` moves into the root.
        let ast = amb_syntax::parse("a[in_ x.b[c[]]] | x[in a.open_]").unwrap();
        let mut engine = Engine::with_origins(&ast, Limits::default()).unwrap();
        let created: Vec<_> = engine.created().to_vec();
        let names: Vec<_> = created.iter().map(|&a| engine.ambient_name(a)).collect();
        assert_eq!(names, [Some("a"), Some("x")]);
        let serial_a = engine.ambient_serial(created[0]);
        assert_eq!(engine.ambient_origin(created[0]), 0);
        let step = engine.step().unwrap().unwrap();
        assert_eq!(engine.capability_origin(step.co_cap), serial_a);
        let created: Vec<_> = engine.created().to_vec();
        let names: Vec<_> = created.iter().map(|&a| engine.ambient_name(a)).collect();
        assert_eq!(names, [Some("b"), Some("c")]);
        // b was written in a's block; c in b's.
        assert_eq!(engine.ambient_origin(created[0]), serial_a);
        assert_eq!(
            engine.ambient_origin(created[1]),
            engine.ambient_serial(created[0])
        );
        let b_node = engine.ambient_node(created[0]).unwrap();
        assert_eq!(ast.name_text(ast.node(b_node).name().unwrap()), "b");
        assert_eq!(engine.children(AmbId::ROOT).count(), 1);
    }

    #[test]
    fn a_term_brought_in_replaces_a_value_and_takes_part_in_later_steps() {
        // s opens the call; the host then swaps s's `arg` for the result, and `out`
        // carries s (with the result) to the root.
        let ast = amb_syntax::parse("q[out_ s|s[open call.out q|call[open_|arg[v[]]]]]").unwrap();
        let mut engine = Engine::new(&ast, Limits::default()).unwrap();
        let q = engine.children(AmbId::ROOT).next();
        let s = engine.children(q.unwrap()).next().unwrap();
        // Not a child, a capability inside, a capability brought in: refused.
        let result = amb_syntax::parse("fresh[name[]]").unwrap();
        assert_eq!(engine.bring_in(s, q, &result), Err(BringInError::NotAChild));
        let with_cap = amb_syntax::parse("r[open_]").unwrap();
        assert_eq!(
            engine.bring_in(s, None, &with_cap),
            Err(BringInError::TermHoldsCapabilities)
        );
        let step = engine.step().unwrap().unwrap();
        assert_eq!(step.rule, Rule::Open);
        let arg = engine
            .children(s)
            .find(|&a| engine.ambient_name(a) == Some("arg"));
        let added = engine.bring_in(s, arg, &result).unwrap();
        assert_eq!(added.len(), 1);
        assert_eq!(engine.ambient_name(added[0]), Some("fresh"));
        // The name the program never had prints; the removed arg is gone.
        let canonical = |mut term: amb_syntax::Ast| {
            term.canonicalize();
            amb_syntax::to_compact_string(&term)
        };
        let expected = amb_syntax::parse("q[out_ s|s[out q|fresh[name[]]]]").unwrap();
        assert_eq!(canonical(engine.to_ast()), canonical(expected));
        while engine.step().unwrap().is_some() {}
        let expected = amb_syntax::parse("q[]|s[fresh[name[]]]").unwrap();
        assert_eq!(canonical(engine.to_ast()), canonical(expected));
        // A removed ambient holding a capability is refused.
        let ast = amb_syntax::parse("s[arg[open_]]").unwrap();
        let mut engine = Engine::new(&ast, Limits::default()).unwrap();
        let s = engine.children(AmbId::ROOT).next().unwrap();
        let arg = engine.children(s).next();
        assert_eq!(
            engine.bring_in(s, arg, &result),
            Err(BringInError::RemovedHoldsCapabilities)
        );
    }

    #[test]
    fn deep_programs_reduce() {
        let depth = 100_000;
        let src = format!(
            "{}x[in_ y]|y[in x]{}",
            "a[".repeat(depth),
            "]".repeat(depth)
        );
        let ast = amb_syntax::parse(&src).unwrap();
        let (out, steps) = reduce(&ast, Limits::default()).unwrap();
        assert_eq!(steps, 1);
        assert_eq!(out.depth(), depth + 2);
    }
}
