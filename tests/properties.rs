//! Property tests over random ROAM programs (`spec/syntax.md` §properties,
//! `spec/bytecode.md`).
//!
//! A program is generated as a tree (ambients and capabilities, names from a small pool
//! that includes the protocol primitives, keywords used as names, and names that need
//! quoting), then written out in a random *non-canonical* style: random whitespace and
//! `//` comments between tokens, redundant groups around parts, runs of parts and
//! continuations, empty groups, `M.()` for a bare capability, and quoted spellings (with
//! random escapes) of names that could print bare. Then:
//! - the text parses, to exactly the generated tree;
//! - the canonical form is a fixed point and reparses to the same tree up to the order
//!   of parallel parts; the pretty form reparses to the same tree, order kept;
//! - compile → `Program::from_compiled` → `to_ast` gives back the tree, order kept;
//!   every block decodes, re-encodes to the same bytes, and hashes to its CID;
//! - compiling is deterministic (twice, and from an AST whose names were interned in
//!   another order), and trees that differ get different CIDs;
//! - two permutations of the same parallel parts give one canonical text and, compiled
//!   after `canonicalize`, one CID.

use amb_bytecode::{Block, Cid, CompiledProgram, Program, ProgramLimits};
use amb_syntax::{
    Ast, CapKind, NodeId, Span, parse, to_canonical_string, to_compact_string, to_pretty_string,
};
use proptest::prelude::*;

/// A part of a generated program.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// `name[parts]`.
    Ambient(String, Vec<Part>),
    /// `keyword target.(parts)`.
    Cap(CapKind, Option<String>, Vec<Part>),
}

/// The name pool: short names, the four primitives, keywords as names, a number,
/// names that must be quoted (space, quote, backslash, controls, non-ASCII, empty).
const NAMES: &[&str] = &[
    "a",
    "b",
    "x",
    "a-b",
    "42",
    "func",
    "call",
    "arg",
    "return",
    "in",
    "open_",
    "hello world",
    "a\"b",
    "back\\slash",
    "tab\there\n",
    "été",
    "",
    "c1\u{85}",
    "a.b|c[]",
];

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES).prop_map(str::to_string)
}

/// A capability with its target: `in`/`out`/`open` always named, `in_`/`out_`
/// named or the wildcard, `open_` never named.
fn cap_head() -> impl Strategy<Value = (CapKind, Option<String>)> {
    prop_oneof![
        (
            prop_oneof![Just(CapKind::In), Just(CapKind::Out), Just(CapKind::Open)],
            name()
        )
            .prop_map(|(cap, n)| (cap, Some(n))),
        (
            prop_oneof![Just(CapKind::InCo), Just(CapKind::OutCo)],
            prop::option::of(name())
        ),
        Just((CapKind::OpenCo, None)),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    let leaf = prop_oneof![
        name().prop_map(|n| Part::Ambient(n, Vec::new())),
        cap_head().prop_map(|(cap, target)| Part::Cap(cap, target, Vec::new())),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            (name(), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(n, parts)| Part::Ambient(n, parts)),
            (cap_head(), prop::collection::vec(inner, 0..3))
                .prop_map(|((cap, target), parts)| Part::Cap(cap, target, parts)),
        ]
    })
}

fn program() -> impl Strategy<Value = Vec<Part>> {
    prop::collection::vec(part(), 0..5)
}

/// The AST of a generated program, built directly (not parsed).
fn build(parts: &[Part]) -> Ast {
    fn go(ast: &mut Ast, parent: Option<NodeId>, parts: &[Part]) {
        for part in parts {
            match part {
                Part::Ambient(name, children) => {
                    let symbol = ast.intern(name);
                    let id = ast.push_ambient(parent, symbol, Span::default());
                    go(ast, Some(id), children);
                }
                Part::Cap(cap, target, children) => {
                    let symbol = target.as_deref().map(|t| ast.intern(t));
                    let id = ast.push_cap(parent, *cap, symbol, Span::default());
                    go(ast, Some(id), children);
                }
            }
        }
    }
    let mut ast = Ast::new();
    go(&mut ast, None, parts);
    ast.finish_building();
    ast
}

/// A small deterministic generator (splitmix64) for the writing style, seeded by
/// proptest so that a failing case is reproducible.
struct Style {
    state: u64,
    /// How noisy this program's text is, 0..=3.
    noise: u64,
}

impl Style {
    fn new(seed: u64) -> Style {
        let mut style = Style {
            state: seed,
            noise: 0,
        };
        style.noise = style.below(4);
        style
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability about `noise`/8 (never for the quietest style).
    fn sometimes(&mut self) -> bool {
        self.below(8) < self.noise
    }

    /// Trivia between two tokens: nothing, spaces, newlines, or comments.
    fn ws(&mut self, out: &mut String) {
        if !self.sometimes() {
            return;
        }
        const TRIVIA: &[&str] = &[
            " ",
            "  ",
            "\n",
            "\t",
            "\r\n",
            "\n    ",
            " // a comment with ] ) [ ( | . \" in it\n",
            "//\n",
            "\n  // in a.b[]\n  ",
        ];
        out.push_str(TRIVIA[self.below(TRIVIA.len() as u64) as usize]);
    }

    /// At least one whitespace or comment: between a keyword and its target.
    fn ws1(&mut self, out: &mut String) {
        let before = out.len();
        self.ws(out);
        if out.len() == before {
            out.push(' ');
        }
    }

    /// A name: bare when it can be and the style says so, quoted otherwise, with
    /// random escapes.
    fn name(&mut self, name: &str, out: &mut String) {
        if amb_syntax::is_bare_name(name) && !self.sometimes() {
            out.push_str(name);
            return;
        }
        out.push('"');
        for ch in name.chars() {
            let escape_anyway = self.below(8) == 0;
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' if !escape_anyway => out.push_str("\\n"),
                '\t' if !escape_anyway => out.push_str("\\t"),
                c if c.is_control() || escape_anyway => {
                    let hex = if self.below(2) == 0 {
                        format!("{:x}", c as u32)
                    } else {
                        format!("{:X}", c as u32)
                    };
                    let zeros = self.below(7 - hex.len() as u64) as usize;
                    out.push_str(&format!("\\u{{{}{hex}}}", "0".repeat(zeros)));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// A part, possibly inside redundant groups.
    fn part(&mut self, part: &Part, out: &mut String) {
        let groups = if self.sometimes() { self.below(3) } else { 0 };
        for _ in 0..groups {
            out.push('(');
            self.ws(out);
        }
        match part {
            Part::Ambient(name, children) => {
                self.name(name, out);
                self.ws(out);
                out.push('[');
                self.ws(out);
                self.list(children, out);
                self.ws(out);
                out.push(']');
            }
            Part::Cap(cap, target, children) => {
                out.push_str(cap.keyword());
                if let Some(target) = target {
                    self.ws1(out);
                    self.name(target, out);
                }
                match children.len() {
                    // `M.()` is `M`.
                    0 if self.sometimes() => {
                        self.ws(out);
                        out.push('.');
                        self.ws(out);
                        out.push('(');
                        self.ws(out);
                        if self.sometimes() {
                            out.push_str("()");
                            self.ws(out);
                        }
                        out.push(')');
                    }
                    0 => {}
                    1 => {
                        self.ws(out);
                        out.push('.');
                        self.ws(out);
                        // `self.part` may add groups around the single part.
                        self.part(&children[0], out);
                    }
                    _ => {
                        self.ws(out);
                        out.push('.');
                        self.ws(out);
                        out.push('(');
                        self.ws(out);
                        self.list(children, out);
                        self.ws(out);
                        out.push(')');
                    }
                }
            }
        }
        for _ in 0..groups {
            self.ws(out);
            out.push(')');
        }
    }

    /// Parts separated by `|`, with random runs of them grouped and empty groups
    /// thrown in. An empty list is written as nothing or as `()`.
    fn list(&mut self, parts: &[Part], out: &mut String) {
        if parts.is_empty() {
            if self.sometimes() {
                out.push('(');
                self.ws(out);
                out.push(')');
            }
            return;
        }
        let mut i = 0;
        let mut first = true;
        while i < parts.len() {
            if !first {
                self.ws(out);
                out.push('|');
                self.ws(out);
            }
            first = false;
            if self.below(16) < self.noise {
                out.push_str("()");
                self.ws(out);
                out.push('|');
                self.ws(out);
            }
            let run = if parts.len() - i >= 2 && self.sometimes() {
                2 + self.below((parts.len() - i - 1) as u64) as usize
            } else {
                1
            };
            if run == 1 {
                self.part(&parts[i], out);
            } else {
                out.push('(');
                self.ws(out);
                self.list(&parts[i..i + run], out);
                self.ws(out);
                out.push(')');
            }
            i += run;
        }
    }

    /// A whole program.
    fn program(&mut self, parts: &[Part]) -> String {
        let mut out = String::new();
        if self.below(32) == 0 {
            out.push('\u{feff}');
        }
        self.ws(&mut out);
        self.list(parts, &mut out);
        self.ws(&mut out);
        if self.below(8) == 0 {
            out.push_str("// trailing comment, no newline");
        }
        out
    }

    /// The same program with every parallel composition randomly permuted.
    fn permute(&mut self, parts: &[Part]) -> Vec<Part> {
        let mut parts: Vec<Part> = parts
            .iter()
            .map(|part| match part {
                Part::Ambient(name, children) => {
                    Part::Ambient(name.clone(), self.permute(children))
                }
                Part::Cap(cap, target, children) => {
                    Part::Cap(*cap, target.clone(), self.permute(children))
                }
            })
            .collect();
        for i in (1..parts.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            parts.swap(i, j);
        }
        parts
    }
}

fn canonicalized(ast: &Ast) -> Ast {
    let mut copy = ast.clone();
    copy.canonicalize();
    copy
}

fn compiled(ast: &Ast) -> CompiledProgram {
    amb_bytecode::compile(ast).expect("small programs compile")
}

fn parsed(text: &str) -> Result<Ast, TestCaseError> {
    parse(text).map_err(|e| {
        TestCaseError::fail(format!(
            "does not parse:\n{}\ntext: {text:?}",
            e.render(text.as_bytes(), "<generated>")
        ))
    })
}

/// 256 cases, unless `PROPTEST_CASES` asks for another number (for a longer run).
fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        return default;
    }
    ProptestConfig {
        cases: 256,
        ..default
    }
}

proptest! {
    #![proptest_config(config())]

    /// Non-canonical text parses to exactly the generated tree; the canonical form is
    /// a fixed point and means the same program; the pretty form reparses.
    #[test]
    fn text_round_trips(parts in program(), seed in any::<u64>()) {
        let expected = build(&parts);
        let text = Style::new(seed).program(&parts);
        let ast = parsed(&text)?;
        prop_assert!(
            ast.same_structure(&expected),
            "parsed {:?} from {text:?}, generated {:?}",
            to_compact_string(&ast),
            to_compact_string(&expected)
        );

        let canonical = to_canonical_string(&ast);
        let reparsed = parsed(&canonical)?;
        prop_assert!(reparsed.is_canonical(), "{canonical:?} reparses out of order");
        prop_assert_eq!(&to_canonical_string(&reparsed), &canonical, "fmt is not idempotent");
        prop_assert_eq!(&to_compact_string(&reparsed), &canonical);
        prop_assert!(
            reparsed.same_structure(&canonicalized(&expected)),
            "parse(fmt(x)) {canonical:?} is not x up to order"
        );
        prop_assert!(canonicalized(&reparsed).same_structure(&canonicalized(&ast)));

        for source in [&ast, &reparsed] {
            let pretty = to_pretty_string(source);
            let back = parsed(&pretty)?;
            prop_assert!(
                back.same_structure(source),
                "pretty form {pretty:?} reparses to {:?}",
                to_compact_string(&back)
            );
        }
    }

    /// Compile, load and decompile give back the tree with its order; blocks are
    /// canonical CBOR addressed by their hash; compiling is deterministic.
    #[test]
    fn bytecode_round_trips(parts in program(), seed in any::<u64>()) {
        let expected = build(&parts);
        let text = Style::new(seed).program(&parts);
        let ast = parsed(&text)?;
        let program = compiled(&ast);

        prop_assert_eq!(program.blocks.last().map(|(cid, _)| *cid), Some(program.root));
        for (cid, bytes) in &program.blocks {
            prop_assert_eq!(Cid::of(bytes), *cid);
            let block = Block::decode(bytes)
                .map_err(|e| TestCaseError::fail(format!("block {cid} does not decode: {e}")))?;
            prop_assert_eq!(&block.encode(), bytes, "decode then encode changed block {}", cid);
            prop_assert_eq!(Block::decode(&block.encode()), Ok(block));
        }

        let loaded = Program::from_compiled(&program)
            .map_err(|e| TestCaseError::fail(format!("compiled blocks do not load: {e}")))?;
        let back = loaded
            .to_ast(&ProgramLimits::default())
            .map_err(|e| TestCaseError::fail(format!("does not decompile: {e}")))?;
        prop_assert!(
            back.same_structure(&ast),
            "decompiled {:?}, compiled {:?}",
            to_compact_string(&back),
            to_compact_string(&ast)
        );

        // Deterministic: twice from one AST, and from the directly built AST (names
        // interned in another order, no spans).
        prop_assert_eq!(&compiled(&ast), &program);
        prop_assert_eq!(compiled(&expected).root, program.root);
        // Text written in another style is the same program.
        let again = parsed(&Style::new(seed ^ 0x5555).program(&parts))?;
        prop_assert_eq!(compiled(&again).root, program.root);
    }

    /// Permuting parallel parts keeps the canonical text and, after `canonicalize`,
    /// the CID; without it, different trees get different CIDs.
    #[test]
    fn permutations_share_one_canonical_cid(parts in program(), seed in any::<u64>()) {
        let mut style = Style::new(seed);
        let permuted = style.permute(&parts);
        let a = parsed(&style.program(&parts))?;
        let b = parsed(&style.program(&permuted))?;
        prop_assert!(b.same_structure(&build(&permuted)));

        prop_assert_eq!(to_canonical_string(&a), to_canonical_string(&b));
        let (ca, cb) = (canonicalized(&a), canonicalized(&b));
        prop_assert!(ca.same_structure(&cb));
        prop_assert_eq!(compiled(&ca).root, compiled(&cb).root);

        let (raw_a, raw_b) = (compiled(&a).root, compiled(&b).root);
        prop_assert_eq!(
            raw_a == raw_b,
            a.same_structure(&b),
            "CIDs {} and {} for {:?} and {:?}",
            raw_a,
            raw_b,
            to_compact_string(&a),
            to_compact_string(&b)
        );
    }
}

/// The generator does produce what the properties are about (so they are not
/// vacuous): non-canonical text, groups, comments, quoted names, wildcards.
#[test]
fn the_style_is_really_non_canonical() {
    let parts = vec![
        Part::Ambient(
            "call".into(),
            vec![
                Part::Cap(
                    CapKind::Out,
                    Some("a".into()),
                    vec![Part::Cap(CapKind::In, Some("b".into()), Vec::new())],
                ),
                Part::Cap(CapKind::OpenCo, None, Vec::new()),
                Part::Cap(CapKind::InCo, None, Vec::new()),
            ],
        ),
        Part::Ambient("hello world".into(), Vec::new()),
    ];
    let expected = build(&parts);
    let mut seen = [false; 5];
    for seed in 0..200u64 {
        let text = Style::new(seed).program(&parts);
        let ast = parse(&text).unwrap_or_else(|e| panic!("{}", e.render(text.as_bytes(), "t")));
        assert!(ast.same_structure(&expected), "{text:?}");
        seen[0] |= text != to_canonical_string(&ast);
        seen[1] |= text.contains('(');
        seen[2] |= text.contains("//");
        seen[3] |= text.contains("\"call\"") || text.contains("\"a\"");
        seen[4] |= text.contains("\\u{");
    }
    assert_eq!(seen, [true; 5]);
    assert_eq!(
        to_canonical_string(&expected),
        "\"hello world\"[]|call[in_|open_|out a.in b]"
    );
}
