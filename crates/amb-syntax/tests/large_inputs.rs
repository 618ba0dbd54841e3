//! Size limits of `spec/syntax.md`: a 64 MB program and 100,000 levels of nesting are
//! parsed with the default limits; past a configured limit the error names it.

use amb_syntax::{Limits, SyntaxErrorKind, parse, parse_with_limits};

/// About `target` bytes of varied program text: many ambients with paths, nested
/// continuations, quoted names and comments.
fn program_of(target: usize) -> (Vec<u8>, usize) {
    let unit = "worker_17[in_ call.open call.(func[arg[in_ x.open x]|\"hello world\"[]]|open return.open_)|out_ job.in queue]|\n// a comment line\nqueue[in_ worker_17.open worker_17|int[42[]]]|\n";
    let mut text = Vec::with_capacity(target + unit.len() + 8);
    text.extend_from_slice(b"root[");
    let mut units = 0;
    while text.len() < target {
        text.extend_from_slice(unit.as_bytes());
        units += 1;
    }
    text.extend_from_slice(b"end[]]");
    (text, units)
}

#[test]
fn parses_64_megabytes() {
    let (text, units) = program_of(64_000_000);
    assert!(text.len() >= 64_000_000);
    let ast = parse(&text).expect("a 64 MB program parses with the default limits");
    // Each unit adds two parts to `root`, and `end[]` closes it.
    assert_eq!(ast.children(ast.first_child(None)).count(), 2 * units + 1);
}

#[test]
fn input_limit_is_configurable_and_named() {
    let (text, _) = program_of(10_000);
    let limits = Limits {
        max_input_bytes: 5_000,
        ..Limits::default()
    };
    let error = parse_with_limits(&text, &limits).unwrap_err();
    assert!(matches!(
        error.kind,
        SyntaxErrorKind::InputTooLarge { limit: 5_000, .. }
    ));
    assert!(error.to_string().contains("max_input_bytes"), "{error}");
}

#[test]
fn nesting_of_100_000_levels_in_every_form() {
    let depth = 100_000;
    let ambients = format!("{}{}", "a[".repeat(depth), "]".repeat(depth));
    assert_eq!(parse(&ambients).unwrap().depth(), depth);
    let mixed = format!("{}x[]{}", "in_ a.(b[]|c[".repeat(depth), "])".repeat(depth));
    let ast = parse(&mixed).unwrap();
    assert_eq!(ast.depth(), 2 * depth + 1);
    let mut canonical = ast.clone();
    canonical.canonicalize();
    let printed = amb_syntax::to_compact_string(&canonical);
    assert!(parse(&printed).unwrap().same_structure(&canonical));
}

#[test]
fn depth_limit_is_configurable_and_named() {
    let text = format!("{}{}", "a[".repeat(50), "]".repeat(50));
    let limits = Limits {
        max_depth: 49,
        ..Limits::default()
    };
    let error = parse_with_limits(text.as_bytes(), &limits).unwrap_err();
    assert_eq!(error.kind, SyntaxErrorKind::TooDeep { limit: 49 });
    assert!(error.to_string().contains("max_depth"), "{error}");
}
