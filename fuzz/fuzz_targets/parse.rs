//! Parses arbitrary bytes as ROAM text. Errors are fine; panics are bugs. When the
//! input parses, the printers, canonical order and bytecode round trip must agree:
//!
//! - the compact text reparses to the same tree (same order);
//! - the canonical text is a fixed point: parsing it and printing it canonically
//!   gives it back, and canonicalizing leaves an AST in canonical order;
//! - the pretty text reparses to the same tree, compared after canonicalizing both;
//! - compile → `Program::from_compiled` → `to_ast` gives the same tree, compared
//!   after canonicalizing both, and `explain` does not panic;
//! - every interned name is found again by its text;
//! - parsing under tight limits agrees with parsing under the modest ones: the same
//!   tree, the same error, or an error that is one of the limits;
//! - the limits are exact: the program's own node count and longest name pass, one
//!   less fails with `TooManyNodes` / `NameTooLong`, and a `max_depth` two below its
//!   nesting fails with `TooDeep`.

#![no_main]

use amb_bytecode::{Program, ProgramLimits, compile};
use amb_syntax::{
    Limits, SyntaxErrorKind, parse_with_limits, to_canonical_string, to_compact_string,
    to_pretty_string,
};
use libfuzzer_sys::fuzz_target;

fn limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 16,
        ..Limits::default()
    }
}

/// Printed text can be much longer than the input (escapes, and the pretty form's
/// indentation of one part per line), so it is reparsed with the default limits.
fn reparse_limits() -> Limits {
    Limits::default()
}

/// Limits small enough that fuzz inputs hit each of them.
fn tight_limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 12,
        max_depth: 6,
        max_name_bytes: 6,
        max_nodes: 24,
    }
}

fn is_limit(kind: &SyntaxErrorKind) -> bool {
    matches!(
        kind,
        SyntaxErrorKind::InputTooLarge { .. }
            | SyntaxErrorKind::TooDeep { .. }
            | SyntaxErrorKind::NameTooLong { .. }
            | SyntaxErrorKind::TooManyNodes { .. }
    )
}

fuzz_target!(|data: &[u8]| {
    let result = parse_with_limits(data, &limits());

    // A limit only ever stops a parse early: below every limit the result is the same.
    match (parse_with_limits(data, &tight_limits()), &result) {
        (Ok(tight), Ok(ast)) => assert!(tight.same_structure(ast), "tight limits changed the tree"),
        (Err(tight), _) if is_limit(&tight.kind) => {}
        (Err(tight), Err(error)) => assert_eq!(&tight, error, "tight limits changed the error"),
        (tight, _) => panic!("tight limits changed the outcome: {tight:?} vs {result:?}"),
    }

    let ast = match result {
        Ok(ast) => ast,
        Err(error) => {
            // Error reporting must not panic either.
            let _ = error.render(data, "fuzz.amb");
            let _ = error.to_string();
            return;
        }
    };

    // Each limit is exact: the program's own node count and longest name pass,
    // one less fails with that limit, and so does a depth two below its nesting.
    let nodes = ast.len();
    let longest = (0..ast.name_count())
        .map(|i| ast.name_text(ast.symbol_at(i)).len())
        .max()
        .unwrap_or(0);
    let exact = Limits {
        max_nodes: nodes,
        max_name_bytes: longest,
        ..limits()
    };
    let at_limit = parse_with_limits(data, &exact)
        .unwrap_or_else(|e| panic!("parse fails at its own node count and name length: {e}"));
    assert!(at_limit.same_structure(&ast));
    if nodes > 0 {
        let fewer = Limits {
            max_nodes: nodes - 1,
            ..limits()
        };
        let kind = parse_with_limits(data, &fewer)
            .map(|_| ())
            .unwrap_err()
            .kind;
        assert_eq!(kind, SyntaxErrorKind::TooManyNodes { limit: nodes - 1 });
    }
    if longest > 0 {
        let shorter = Limits {
            max_name_bytes: longest - 1,
            ..limits()
        };
        let kind = parse_with_limits(data, &shorter)
            .map(|_| ())
            .unwrap_err()
            .kind;
        assert!(
            matches!(kind, SyntaxErrorKind::NameTooLong { size, limit } if size == longest && limit == longest - 1),
            "{kind:?}"
        );
    }
    let depth = ast.depth();
    if depth >= 2 {
        // The deepest node's ancestors each hold a frame (ambient or prefix) open.
        let shallower = Limits {
            max_depth: depth - 2,
            ..limits()
        };
        let kind = parse_with_limits(data, &shallower)
            .map(|_| ())
            .unwrap_err()
            .kind;
        assert_eq!(kind, SyntaxErrorKind::TooDeep { limit: depth - 2 });
    }

    // The name table finds every name by its text.
    for index in 0..ast.name_count() {
        let symbol = ast.symbol_at(index);
        assert_eq!(
            ast.lookup(ast.name_text(symbol)),
            Some(symbol),
            "name table lookup"
        );
    }

    // Compact text, in the AST's own order.
    let compact = to_compact_string(&ast);
    let reparsed = parse_with_limits(compact.as_bytes(), &reparse_limits())
        .unwrap_or_else(|e| panic!("compact text does not reparse: {e}\n{compact:?}"));
    assert!(
        reparsed.same_structure(&ast),
        "compact text reparses to another tree:\n{compact:?}\n{:?}",
        to_compact_string(&reparsed)
    );

    // Canonical text is a fixed point.
    let canonical = to_canonical_string(&ast);
    let mut canon_ast = ast.clone();
    canon_ast.canonicalize();
    assert!(
        canon_ast.is_canonical(),
        "canonicalize left parts out of order: {canonical:?}"
    );
    assert_eq!(to_compact_string(&canon_ast), canonical);
    let again = parse_with_limits(canonical.as_bytes(), &reparse_limits())
        .unwrap_or_else(|e| panic!("canonical text does not reparse: {e}\n{canonical:?}"));
    assert!(
        again.is_canonical(),
        "canonical text reparses out of order: {canonical:?}"
    );
    assert_eq!(
        to_canonical_string(&again),
        canonical,
        "canonical printing is not idempotent"
    );

    // Pretty text reparses to the same tree, up to the order of parallel parts.
    let pretty = to_pretty_string(&ast);
    let mut pretty_ast = parse_with_limits(pretty.as_bytes(), &reparse_limits())
        .unwrap_or_else(|e| panic!("pretty text does not reparse: {e}\n{pretty}"));
    pretty_ast.canonicalize();
    assert!(
        pretty_ast.same_structure(&canon_ast),
        "pretty text reparses to another tree:\n{pretty}\ncanonical: {canonical:?}\nreparsed: {:?}",
        to_compact_string(&pretty_ast)
    );

    // Bytecode round trip.
    let compiled = compile(&ast).unwrap_or_else(|e| panic!("compile failed: {e}\n{canonical:?}"));
    let program = Program::from_compiled(&compiled)
        .unwrap_or_else(|e| panic!("compiled blocks do not load: {e}\n{canonical:?}"));
    let mut decompiled = program
        .to_ast(&ProgramLimits::default())
        .unwrap_or_else(|e| panic!("to_ast failed: {e}\n{canonical:?}"));
    decompiled.canonicalize();
    assert!(
        decompiled.same_structure(&canon_ast),
        "bytecode round trip changed the tree:\noriginal:   {canonical:?}\ndecompiled: {:?}",
        to_compact_string(&decompiled)
    );
    let _ = program.explain();
});
