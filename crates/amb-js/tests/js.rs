//! The JavaScript compiler end to end: each program is compiled, reduced by the
//! engine and its value read by the VM, as `amb reduce --json` does.
//!
//! - the js2amb fixtures (`../shared/corpus/aphelionz-js2amb`, `vvp-js2amb`): the
//!   JavaScript each encodes, written in the subset, reduces to the fixture's value;
//!   those that cannot be written in the subset are refusals (the table says which);
//! - a suite of programs whose value must be what Node.js gives for the same file
//!   (`JSON.stringify((0, eval)(source))`), run with the real `node` binary;
//! - refusals with their exact line:column;
//! - the property test: random programs generated as trees, the compiled program's
//!   value against the evaluator `amb_js::eval` over the same tree;
//! - confluence: every interleaving of small compiled programs reaches one normal
//!   form (the reference reducer's exhaustive search).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use amb_engine::{Engine, Limits};
use amb_js::{
    JsError,
    ast::{Const, Expr, ExprKind, Pos, Program},
    eval::Value,
};
use proptest::prelude::*;
use serde_json::Value as Json;

fn corpus() -> PathBuf {
    if let Some(dir) = std::env::var_os("AMB_CORPUS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// Reduces a ROAM program; its value as JSON (`null` when it has none) and steps.
fn reduce(ast: &amb_syntax::Ast) -> (Json, u64) {
    let mut engine = Engine::new(ast, Limits::default()).expect("the engine starts");
    let steps = engine
        .run(|_, _| {})
        .expect("the reduction ends within the limits");
    assert!(
        !engine.is_stuck(),
        "stuck: {}",
        amb_syntax::to_compact_string(&engine.to_ast())
    );
    let normal = engine.to_ast();
    let value = amb_vm::value_of(&normal).map_or(Json::Null, |v| v.to_json());
    (value, steps)
}

/// `amb reduce --json` of a JavaScript text: the value.
fn run_js(source: &str) -> Json {
    let compiled =
        amb_js::compile(source).unwrap_or_else(|e| panic!("{}", e.render(source, "test.js")));
    reduce(&compiled.ast).0
}

// ---------------------------------------------------------------------------
// The js2amb fixtures.

/// Every js2amb fixture: its JavaScript in the subset, or why it is refused.
const FIXTURES: &[(&str, Result<&str, &str>)] = &[
    (
        "aphelionz-js2amb/test/fixtures/js/abstractions/001-string_concat.ambient",
        Ok("const string_concat = () => (l, r) => l + r;\nstring_concat()(\"hello\", \"world\")"),
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/001-constant_function.ambient",
        Ok("const a = () => \"hello\";\na()"),
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/002-fcall_const_func.ambient",
        Ok("const a = () => \"hello\";\nconst b = () => a();\nb()"),
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/003-assign_fvar.ambient",
        Ok("const a = () => \"hello\";\nconst b = a;\nb()"),
    ),
    // `c = b = a` keeps an assignment chain: refused (assignment).
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/004-assign_fvar_alias.ambient",
        Err("const a = () => \"hello\";\nconst c = b = a;\nc()"),
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/005-return_ref_constant.ambient",
        Ok("const a = \"hello\";\nconst b = () => a;\nb()"),
    ),
    (
        "aphelionz-js2amb/test/fixtures/js/lang_features/006-fcall_fcall.ambient",
        Ok("const a = () => \"hello\";\nconst b = a();\nconst c = () => b;\nc()"),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/abstractions/001-string_concat.ambient",
        Ok("const string_concat = () => (l, r) => l + r;\nstring_concat()(\"hello\", \"world\")"),
    ),
    // Uses `rec X.`: the fixture itself does not reduce; the JavaScript does.
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/abstractions/001-string_concat_associative.ambient",
        Ok(
            "const string_concat = () => (l, r) => l + r;\nstring_concat()(string_concat()(\"hello\", \"world\"), \"again\")",
        ),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/abstractions/002-int_sum.ambient",
        Ok("const int_sum = () => (a, b) => a + b;\nint_sum()(1, 1)"),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/001-constant_function.ambient",
        Ok("const a = () => \"hello\";\na()"),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/002-fcall_const_func.ambient",
        Ok("const a = () => \"hello\";\nconst b = () => a();\nb()"),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/003-assign_fvar.ambient",
        Ok("const a = () => \"hello\";\nconst b = a;\nb()"),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/004-assign_fvar_alias.ambient",
        Err("const a = () => \"hello\";\nconst c = b = a;\nc()"),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/005-return_ref_constant.ambient",
        Ok("const a = \"hello\";\nconst b = () => a;\nb()"),
    ),
    (
        "vvp-js2amb/feat_compiler-testing/test/fixtures/js/lang_features/006-fcall_fcall.ambient",
        Ok("const a = () => \"hello\";\nconst b = a();\nconst c = () => b;\nc()"),
    ),
    (
        "vvp-js2amb/feat_compiler-work/test/fixtures/js/abstractions/001-string_concat.ambient",
        Ok("const string_concat = () => (l, r) => l + r;\nstring_concat()(\"hello\", \"world\")"),
    ),
    // Declarations only, no call: the subset needs a final expression.
    (
        "vvp-js2amb/feat_compiler-work/test/fixtures/js/lang_features/001-single-function-declaration.ambient",
        Err("const a = () => \"a\";"),
    ),
    (
        "vvp-js2amb/feat_compiler-work/test/fixtures/js/lang_features/002-multiple-function-declarations.ambient",
        Err("const a = () => \"a\";\nconst b = () => \"b\";"),
    ),
    (
        "vvp-js2amb/feat_compiler-work/test/fixtures/js/lang_features/003-string-function-declarations.ambient",
        Err(
            "const a = () => \"a\";\nconst b = () => \"b\";\nconst c = () => \"a\" + \"b\";\nconst d = () => \"a\" + \"b\" + \"c\";",
        ),
    ),
    (
        "vvp-js2amb/feat_compiler-work/test/fixtures/js/lang_features/004-int-function-declarations.ambient",
        Err("const a = () => 42;\nconst b = () => 2 + 2;\nconst c = () => 2 * 2;"),
    ),
    // Calls an undefined `a`, and uses `let`.
    (
        "vvp-js2amb/feat_compiler-work/test/fixtures/js/lang_features/005-function-call.ambient",
        Err("a();\nlet b = a();"),
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/abstractions/001-string_concat.ambient",
        Ok("const string_concat = () => (l, r) => l + r;\nstring_concat()(\"hello\", \"world\")"),
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/lang_features/001-single-function-declaration.ambient",
        Err("const a = () => \"a\";"),
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/lang_features/002-multiple-function-declarations.ambient",
        Err("const a = () => \"a\";\nconst b = () => \"b\";"),
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/lang_features/003-string-function-declarations.ambient",
        Err(
            "const a = () => \"a\";\nconst b = () => \"b\";\nconst c = () => \"a\" + \"b\";\nconst d = () => \"a\" + \"b\" + \"c\";",
        ),
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/lang_features/004-int-function-declarations.ambient",
        Err("const a = () => 42;\nconst b = () => 2 + 2;\nconst c = () => 2 * 2;"),
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/lang_features/005-function-call.ambient",
        Err("a();\nlet b = a();"),
    ),
    // NBA syntax, not ROAM: the encodings of chapter IV's successor; their JavaScript
    // is the string monoid and function declarations above.
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/new_encoding/006-new-function-encodings.ambient",
        Err("const f = () => \"a\";"),
    ),
    (
        "vvp-js2amb/feat_nba-js2amb/test/fixtures/js/new_encoding/007-string-concat.ambient",
        Err("const f = (a, b) => a + b;"),
    ),
];

/// The fixture's own value where it has one (reduced by the engine), else `None`.
fn fixture_value(path: &Path) -> Option<Json> {
    let text = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the corpus must be at ../shared/corpus)",
            path.display()
        )
    });
    let ast = amb_syntax::parse(&text).ok()?;
    let mut engine = Engine::new(&ast, Limits::default()).ok()?;
    engine.run(|_, _| {}).ok()?;
    let value = amb_vm::value_of(&engine.to_ast()).ok()?;
    Some(value.to_json())
}

#[test]
fn js2amb_fixtures_compile_to_their_values_or_are_refused() {
    let mut compiled = 0;
    for (file, js) in FIXTURES {
        let path = corpus().join(file);
        let fixture = fixture_value(&path);
        match js {
            Ok(source) => {
                let ours = run_js(source);
                match (file, &fixture) {
                    // Written with `iN[]` ints, which are not int literals: no value.
                    (f, None) if f.ends_with("002-int_sum.ambient") => assert_eq!(ours, 2),
                    (f, None) if f.ends_with("001-string_concat_associative.ambient") => {
                        assert_eq!(ours, "helloworldagain")
                    }
                    (_, Some(expected)) => assert_eq!(&ours, expected, "{file}"),
                    (_, None) => panic!("{file}: the fixture has no value"),
                }
                compiled += 1;
            }
            Err(source) => {
                let error = amb_js::compile(source).expect_err(file);
                let _ = error.pos();
            }
        }
    }
    assert_eq!(compiled, 16, "fixtures written in the subset");
    // Every js2amb fixture is listed.
    for repo in ["aphelionz-js2amb", "vvp-js2amb"] {
        let mut stack = vec![corpus().join(repo)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "ambient") {
                    let rel = path
                        .strip_prefix(corpus())
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string();
                    assert!(
                        FIXTURES.iter().any(|(f, _)| *f == rel),
                        "{rel} is not in the table"
                    );
                }
            }
        }
    }
}

#[test]
fn the_whitepaper_string_monoid_written_in_js_reduces_to_helloworld() {
    let source = "// the string monoid of chapter III\nconst string_concat = (left_, right_) => left_ + right_;\nconst program = () => string_concat(\"hello\", \"world\");\nprogram()";
    let compiled = amb_js::compile(source).unwrap();
    let (value, _) = reduce(&compiled.ast);
    assert_eq!(value, "helloworld");
    // The value comes out of the reduction: the compiler wrote no `helloworld`.
    assert!(!compiled.roam.contains("helloworld"));
    assert!(compiled.roam.contains("string_concat["));
    // The source map names the call and the function.
    let call = compiled
        .map
        .marks
        .iter()
        .find(|m| m.what == "function")
        .unwrap();
    assert!(call.pos.line >= 2, "{call:?}");
}

/// The generated text is normative (`spec/js.md` §6): two programs written out.
#[test]
fn the_generated_text_is_the_one_the_spec_gives() {
    let add = amb_js::compile("const add = (a, b) => a + b;\nadd(2, 3)").unwrap();
    assert_eq!(
        add.roam,
        "call[in add.open_.return[open_.in func]\
         |a-0[in int.in plus.in left.open_|int[2[]]]\
         |b-1[in int.in plus.in right.open_|int[3[]]]]\
         |func[in_ add.open add.open_]|open func\
         |add[in_ call.open call.(open return.open_\
         |int[in_ a-0|in_ b-1|plus[in_ a-0|in_ b-1|left[in_ a-0.open a-0]|right[in_ b-1.open b-1]]])]"
    );
    // A parameter passed on: the caller's carrier enters `call` (which waits for
    // it) and the callee's carrier, which opens it before it moves.
    let pass = amb_js::compile("const g = x => x;\nconst f = y => g(y);\nf(\"hi\")").unwrap();
    assert_eq!(
        pass.roam,
        "call[in f.open_.return[open_.in func]|y-1[in call.in x-0.open_|string[hi[]]]]\
         |func[in_ f.open f.open_]|open func\
         |f[in_ call.open call.(open return.open_\
         |call[in_ y-1.in g.open_.return[open_.in func]|x-0[in_ y-1.open y-1.open_]]\
         |func[in_ g.open g.open_]|open func\
         |g[in_ call.open call.(open return.open_|open x-0)])]"
    );
    assert_eq!(reduce(&pass.ast).0, "hi");
}

/// Every order of the steps, not only the engine's, reaches the one value: the
/// reference reducer explores all interleavings of small compiled programs.
#[test]
fn compiled_programs_are_confluent() {
    let programs = [
        "const add = (a, b) => a + b;\nadd(2, 3)",
        "const g = x => x;\nconst f = y => g(y);\nf(\"hi\")",
        "const cat = (l, r) => l + r;\nconst p = () => cat(\"hello\", \"world\");\np()",
        "const twice = (f, x) => f(f(x));\nconst dbl = x => x * 2;\ntwice(dbl, 3)",
        "const sq = x => x * x;\n[sq(2), sq(3)]",
        "const adder = a => b => a + b;\nadder(1)(2)",
    ];
    for source in programs {
        let compiled = amb_js::compile(source).unwrap();
        let explored = amb_reference::explore(&compiled.ast, 200_000).unwrap();
        assert!(!explored.truncated, "{source}: {} states", explored.states);
        assert_eq!(
            explored.normal_forms.len(),
            1,
            "{source}: {:?}",
            explored.normal_forms
        );
        assert_eq!(explored.confluent, Some(true), "{source}");
    }
}

#[test]
fn a_list_of_independent_calls_reduces_to_its_list() {
    let source = format!(
        "const sq = x => x * x;\n[{}]",
        (0..100)
            .map(|i| format!("sq({i})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let value = run_js(&source);
    let expected: Vec<i64> = (0..100).map(|i| i * i).collect();
    assert_eq!(value, serde_json::json!(expected));
}

#[test]
fn source_map_points_generated_ambients_at_js_places() {
    let source = "const add = (a, b) => a + b;\nadd(2,\n  3)";
    let compiled = amb_js::compile(source).unwrap();
    let mut seen = Vec::new();
    for i in 0..compiled.ast.len() {
        let id = compiled.ast.node_id(i);
        if let Some(mark) = compiled.map.node(&compiled.ast, id) {
            let name = compiled
                .ast
                .node(id)
                .name()
                .map(|s| compiled.ast.name_text(s).to_string());
            seen.push((
                name.unwrap_or_default(),
                mark.what,
                mark.pos.line,
                mark.pos.column,
            ));
        }
    }
    assert!(
        seen.contains(&("add".into(), "function", 1, 13)),
        "{seen:?}"
    );
    assert!(seen.contains(&("call".into(), "call", 2, 1)), "{seen:?}");
    assert!(
        seen.iter()
            .any(|(n, w, l, c)| n.starts_with("b-") && *w == "argument" && (*l, *c) == (3, 3)),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(n, w, l, c)| n == "int" && *w == "value" && (*l, *c) == (1, 23)),
        "{seen:?}"
    );
}

// ---------------------------------------------------------------------------
// The Node.js suite.

fn node_suite() -> Vec<String> {
    let mut programs: Vec<String> = [
        // strings
        "\"hello\"",
        "'single' + \"double\"",
        "\"a\" + \"b\" + \"c\"",
        "\"esc\\n\\t\\\"q\\\" \\\\ \\u00e9\"",
        "\"\"",
        "\"héllo wörld\".length",
        "const greet = name => \"hello, \" + name;\ngreet(\"ambients\")",
        "const s = \"abc\";\n(s + s).length",
        "const wrap = (l, s, r) => l + s + r;\nwrap(\"[\", \"x\", \"]\")",
        "/* comment */ const a = 'x'; // trailing\na + a // end",
        // ints
        "42",
        "-7",
        "2 + 3",
        "2 * 3 + 4",
        "2 * (3 + 4)",
        "-(5 * 6)",
        "const add = (a, b) => a + b;\nadd(2, 3)",
        "const sq = x => x * x;\nsq(12)",
        "const neg = x => -x;\nneg(neg(9))",
        "const big = 1000000 * 1000000;\nbig + 1",
        "const f = (a, b, c) => a * b + c;\nf(3, 4, 5)",
        "const x = 10;\nconst y = x * x;\ny + x",
        // floats
        "2.5",
        "1.5 + 2.25",
        "0.1 + 0.2",
        "3.0 * 0.5",
        "-1.25 * 4.0",
        "const half = x => x * 0.5;\nhalf(7.0)",
        "1e3 * 2.5",
        "const avg = (a, b) => (a + b) * 0.5;\navg(1.0, 4.0)",
        // booleans
        "true",
        "false",
        "const t = () => true;\n[t(), false]",
        // lists
        "[]",
        "[1, 2, 3]",
        "[\"a\", \"b\"]",
        "[[1, 2], [3], []]",
        "[1, 2, 3].length",
        "[[1], [2, 3]].length + [].length",
        "const pair = (a, b) => [a, b];\npair(\"x\", \"y\")",
        "const three = x => [x, x + 1, x + 2];\nthree(7)",
        "[1.5, 2.5]",
        "[true, false, true]",
        // curried and higher-order functions
        "const adder = a => b => a + b;\nadder(1)(2)",
        "const adder = a => b => a + b;\nconst inc = adder(1);\n[inc(1), inc(10)]",
        "const twice = (f, x) => f(f(x));\nconst dbl = x => x * 2;\ntwice(dbl, 5)",
        "const compose = (f, g) => x => f(g(x));\nconst inc = x => x + 1;\nconst sq = x => x * x;\ncompose(sq, inc)(3)",
        "const apply = (f, x) => f(x);\napply(s => s + \"!\", \"hi\")",
        "const id = x => x;\n[id(1), id(2)]",
        "const id = x => x;\nid(\"a\") + id(\"b\")",
        "const id = x => x;\nid(id)(5)",
        "const k = a => b => a;\nk(\"kept\")(\"dropped\")",
        "const flip = f => (a, b) => f(b, a);\nconst cat = (a, b) => a + b;\nflip(cat)(\"x\", \"y\")",
        "const mk = n => () => n * 10;\nmk(4)()",
        "const curry = f => a => b => f(a, b);\nconst mul = (a, b) => a * b;\ncurry(mul)(6)(7)",
        "const thrice = f => x => f(f(f(x)));\nthrice(x => x + \"a\")(\"\")",
        "((x) => x * 3)(5)",
        "const len = s => s.length;\n[len(\"abc\"), len([1, 2])]",
        // block bodies
        "const f = x => { const y = x + 1; return y * y; };\nf(4)",
        "const g = (a, b) => {\n  const s = a + b;\n  const t = s * 2;\n  return [s, t];\n};\ng(1, 2)",
        "const h = s => { const twice = s + s; return twice.length; };\nh(\"abc\")",
        "const outer = x => { const inner = y => x + y; return inner(10); };\nouter(5)",
        "const mk = p => { const q = p + \"!\"; return r => q + r; };\nmk(\"a\")(\"b\")",
        // calls as arguments, independent calls
        "const inc = x => x + 1;\ninc(inc(inc(0)))",
        "const add = (a, b) => a + b;\nadd(add(1, 2), add(3, 4))",
        "const sq = x => x * x;\nsq(2) + sq(3) * sq(4)",
        "const f = x => [x, x * 2];\n[f(1), f(2)]",
        "const concat = (a, b) => a + b;\nconcat(\"a\", \"b\")"
            .replace("concat", "cat")
            .leak(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A 20-deep call chain.
    let mut chain = String::from("const f0 = x => x + 1;\n");
    for i in 1..20 {
        chain.push_str(&format!("const f{i} = x => f{}(x) * 2;\n", i - 1));
    }
    chain.push_str("f19(1)");
    programs.push(chain);
    // 100 independent calls in one array.
    programs.push(format!(
        "const sq = x => x * x + 1;\n[{}]",
        (0..100)
            .map(|i| format!("sq({i})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    programs
}

/// What Node.js gives for each program: `JSON.stringify((0, eval)(source))`.
fn node_values(programs: &[String]) -> Vec<Json> {
    let script = "const fs = require('fs');\nconst sources = JSON.parse(fs.readFileSync(0, 'utf8'));\nprocess.stdout.write(JSON.stringify(sources.map(s => JSON.stringify((0, eval)(s)))));\n";
    let mut child = Command::new("node")
        .args(["-e", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the `node` binary (Node.js) must be installed: .ci/run installs Debian's nodejs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(programs).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed: {out:?}");
    let texts: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect()
}

/// JSON values equal, numbers compared numerically (`3` and `3.0` are equal).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

#[test]
fn programs_reduce_to_what_node_gives() {
    let programs = node_suite();
    assert!(programs.len() >= 60, "{} programs", programs.len());
    let expected = node_values(&programs);
    for (source, want) in programs.iter().zip(&expected) {
        let got = run_js(source);
        assert!(same(&got, want), "{source}\n  amb:  {got}\n  node: {want}");
    }
}

// ---------------------------------------------------------------------------
// Refusals.

#[test]
fn refusals_name_the_line_and_column() {
    let cases: &[(&str, (u32, u32), &str)] = &[
        ("const a = 1;\nif (a) { a }\na", (2, 1), "if statement"),
        ("const f = x => x ? 1 : 2;\nf(true)", (1, 16), "conditional"),
        ("let a = 1;\na", (1, 1), "let declaration"),
        ("var a = 1;\na", (1, 1), "var declaration"),
        ("const a = 1;\nfor (;;) {}\na", (2, 1), "loop"),
        ("const a = 1;\na = 2;\na", (2, 1), "assignment"),
        ("const f = x => f(x);\nf(1)", (1, 16), "recursion"),
        ("class A {}\n1", (1, 1), "class"),
        ("const f = () => this;\nf()", (1, 17), "`this`"),
        ("const s = \"abc\";\ns.toUpperCase()", (2, 1), "method call"),
        ("const a = 1;\nb + a", (2, 1), "unknown name `b`"),
        ("const call = () => 1;\ncall()", (1, 7), "reserved"),
        ("const string = \"s\";\nstring", (1, 7), "reserved"),
        ("const sys_x = 1;\nsys_x", (1, 7), "reserved"),
        ("const f = (concat) => concat;\nf(1)", (1, 12), "reserved"),
        ("\"a\" + 1", (1, 1), "no implicit conversion"),
        ("1 + 2.5", (1, 1), "no implicit conversion"),
        ("const f = x => x;\n  f", (2, 3), "program value"),
        ("const a = [1, \"b\"];\na", (1, 15), "one type"),
        ("const f = (a, b) => a;\nf(1)", (2, 1), "argument"),
        ("\"abc\" * 2", (1, 1), "expected int or float"),
        (
            "const x = 9223372036854775808;\nx",
            (1, 11),
            "signed 64-bit",
        ),
        ("const o = {a: 1};\no", (1, 11), "object literal"),
        (
            "const a = () => { return 1; };\nconst b = function () { return 2; };\na()",
            (2, 11),
            "function expression",
        ),
        (
            "const f = x => { const y = 1; };\nf(1)",
            (1, 16),
            "without `return`",
        ),
        ("1 - 2", (1, 1), "operator `-`"),
        ("const a = 1;\nconst a = 2;\na", (2, 7), "declared twice"),
        ("const a = b;\nconst b = 1;\na", (1, 11), "recursion"),
        ("const x = 1;", (1, 1), "last statement"),
        (
            "const f = (x) => {\n  let y = x;\n  return y;\n};\nf(1)",
            (2, 3),
            "let declaration",
        ),
        ("const s = \"é\";\n  s.foo", (2, 3), "member `.foo`"),
        ("const a = [1, 2];\na[0]", (2, 1), "indexing"),
        ("0x10", (1, 1), "decimal"),
        ("const a = 1;\n(a", (2, 3), "syntax error"),
        // An inner declaration hides the outer one before it is bound (JS's TDZ).
        (
            "const x = 1;\nconst f = () => { const y = x; const x = 2; return y; };\nf()",
            (2, 29),
            "recursion",
        ),
    ];
    assert!(cases.len() >= 15);
    for (source, (line, column), words) in cases {
        let error: JsError = amb_js::compile(source).expect_err(source);
        let pos = error.pos();
        let message = error.to_string();
        assert_eq!(
            (pos.line, pos.column),
            (*line, *column),
            "{source}: {message}"
        );
        assert!(
            message.contains(words),
            "{source}: {message:?} lacks {words:?}"
        );
        let rendered = error.render(source, "app.js");
        assert!(
            rendered.contains(&format!("app.js:{line}:{column}")),
            "{rendered}"
        );
    }
}

// ---------------------------------------------------------------------------
// The property test: random programs against the evaluator.

/// A small deterministic generator of typed programs.
struct Gen {
    state: u64,
    fresh: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum T {
    Int,
    Float,
    Str,
    ListInt,
    Fn(Vec<T>, Box<T>),
}

const P: Pos = Pos { line: 1, column: 1 };

fn e(kind: ExprKind) -> Expr {
    Expr::new(kind, P)
}

impl Gen {
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn name(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn data_type(&mut self) -> T {
        match self.below(4) {
            0 => T::Int,
            1 => T::Float,
            2 => T::Str,
            _ => T::ListInt,
        }
    }

    fn expr(&mut self, ty: &T, env: &[(String, T)], depth: u32) -> Expr {
        let vars: Vec<&String> = env
            .iter()
            .filter(|(_, t)| t == ty)
            .map(|(n, _)| n)
            .collect();
        // Functions that give `ty` when called once (`f(a)`) or twice (`f(a)(b)`).
        let mut funcs: Vec<(String, Vec<Vec<T>>)> = Vec::new();
        for (n, t) in env {
            if let T::Fn(ps, r) = t {
                if **r == *ty {
                    funcs.push((n.clone(), vec![ps.clone()]));
                } else if let T::Fn(qs, r2) = &**r {
                    if **r2 == *ty {
                        funcs.push((n.clone(), vec![ps.clone(), qs.clone()]));
                    }
                }
            }
        }
        if let T::Fn(ps, r) = ty {
            // A function: a variable of the type, or an arrow.
            if !vars.is_empty() && self.below(2) == 0 {
                return e(ExprKind::Var(
                    vars[self.below(vars.len() as u64) as usize].clone(),
                ));
            }
            return self.arrow(ps, r, env, depth.saturating_sub(1));
        }
        let choice = if depth == 0 {
            self.below(2)
        } else {
            self.below(8)
        };
        match (choice, ty) {
            (1, _) if !vars.is_empty() => e(ExprKind::Var(
                vars[self.below(vars.len() as u64) as usize].clone(),
            )),
            (2 | 3, _) if !funcs.is_empty() => {
                let (f, lists) = funcs[self.below(funcs.len() as u64) as usize].clone();
                let mut call = e(ExprKind::Var(f));
                for params in lists {
                    let args = params
                        .iter()
                        .map(|p| self.expr(p, env, depth - 1))
                        .collect();
                    call = e(ExprKind::Call {
                        callee: Box::new(call),
                        args,
                    });
                }
                call
            }
            (4, T::Int | T::Float | T::Str) => e(ExprKind::Add(
                Box::new(self.expr(ty, env, depth - 1)),
                Box::new(self.expr(ty, env, depth - 1)),
            )),
            (5, T::Int | T::Float) => e(ExprKind::Mul(
                Box::new(self.expr(ty, env, depth - 1)),
                Box::new(self.expr(ty, env, depth - 1)),
            )),
            (6, T::Int) => {
                let of = if self.below(2) == 0 {
                    T::Str
                } else {
                    T::ListInt
                };
                e(ExprKind::Length(Box::new(self.expr(&of, env, depth - 1))))
            }
            (6, T::Float) => e(ExprKind::Neg(Box::new(self.expr(ty, env, depth - 1)))),
            (7, _) => {
                // An inline function applied: `((p) => body)(arg)`.
                let pt = self.data_type();
                let p = self.name("p");
                let mut inner = env.to_vec();
                inner.push((p.clone(), pt.clone()));
                let body = self.expr(ty, &inner, depth - 1);
                let arg = self.expr(&pt, env, depth - 1);
                let arrow = e(ExprKind::Arrow {
                    params: vec![(p, P)],
                    consts: Vec::new(),
                    body: Box::new(body),
                });
                e(ExprKind::Call {
                    callee: Box::new(arrow),
                    args: vec![arg],
                })
            }
            _ => self.literal(ty, env, depth),
        }
    }

    /// A parameter's type: data, or now and then a function of one data argument.
    fn any_type(&mut self) -> T {
        if self.below(5) == 0 {
            T::Fn(vec![self.data_type()], Box::new(self.data_type()))
        } else {
            self.data_type()
        }
    }

    /// `(p…) => body` of type `(ps) => r`, sometimes with a block body.
    fn arrow(&mut self, ps: &[T], r: &T, env: &[(String, T)], depth: u32) -> Expr {
        let params: Vec<(String, T)> = ps.iter().map(|t| (self.name("x"), t.clone())).collect();
        let mut inner = env.to_vec();
        inner.extend(params.iter().cloned());
        let mut consts = Vec::new();
        if self.below(4) == 0 {
            let ty = self.data_type();
            let value = self.expr(&ty, &inner, depth);
            let name = self.name("k");
            consts.push(Const {
                name: name.clone(),
                pos: P,
                value,
            });
            inner.push((name, ty));
        }
        let body = self.expr(r, &inner, depth);
        e(ExprKind::Arrow {
            params: params.into_iter().map(|(n, _)| (n, P)).collect(),
            consts,
            body: Box::new(body),
        })
    }

    fn literal(&mut self, ty: &T, env: &[(String, T)], depth: u32) -> Expr {
        match ty {
            T::Int => e(ExprKind::Int(self.below(41) as i64 - 20)),
            T::Float => e(ExprKind::Float((self.below(81) as f64 - 40.0) / 4.0)),
            T::Str => {
                let words = ["", "a", "bc", "héllo", "x y", "\"q\"", "tab\t"];
                e(ExprKind::Str(
                    words[self.below(words.len() as u64) as usize].to_string(),
                ))
            }
            T::ListInt => {
                let n = self.below(4);
                let items = (0..n)
                    .map(|_| {
                        if depth == 0 {
                            self.literal(&T::Int, env, 0)
                        } else {
                            self.expr(&T::Int, env, depth - 1)
                        }
                    })
                    .collect();
                e(ExprKind::Array(items))
            }
            T::Fn(..) => unreachable!(),
        }
    }

    fn program(&mut self) -> Program {
        let mut env: Vec<(String, T)> = Vec::new();
        let mut consts = Vec::new();
        for _ in 0..self.below(4) {
            let name = self.name("f");
            if self.below(3) == 0 {
                let ty = self.data_type();
                let value = self.expr(&ty, &env, 2);
                consts.push(Const {
                    name: name.clone(),
                    pos: P,
                    value,
                });
                env.push((name, ty));
                continue;
            }
            let params: Vec<T> = (0..self.below(3) + 1).map(|_| self.any_type()).collect();
            // Now and then curried: the result is a function of one more argument.
            let result = if self.below(4) == 0 {
                T::Fn(vec![self.data_type()], Box::new(self.data_type()))
            } else {
                self.data_type()
            };
            let arrow = self.arrow(&params, &result, &env, 3);
            consts.push(Const {
                name: name.clone(),
                pos: P,
                value: arrow,
            });
            env.push((name, T::Fn(params, Box::new(result))));
        }
        let ty = self.data_type();
        let body = self.expr(&ty, &env, 3);
        Program { consts, body }
    }
}

/// The program as JavaScript text, every subexpression in parentheses.
fn to_js(program: &Program) -> String {
    fn expr(x: &Expr, out: &mut String) {
        match &x.kind {
            ExprKind::Str(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            ExprKind::Int(n) => out.push_str(&format!("({n})")),
            ExprKind::Float(f) => out.push_str(&format!("({f:?})")),
            ExprKind::Bool(b) => out.push_str(&b.to_string()),
            ExprKind::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    expr(item, out);
                }
                out.push(']');
            }
            ExprKind::Var(n) => out.push_str(n),
            ExprKind::Arrow {
                params,
                consts,
                body,
            } => {
                let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
                out.push_str(&format!("(({}) => ", names.join(", ")));
                if consts.is_empty() {
                    expr(body, out);
                } else {
                    out.push_str("{ ");
                    for c in consts {
                        out.push_str(&format!("const {} = ", c.name));
                        expr(&c.value, out);
                        out.push_str("; ");
                    }
                    out.push_str("return ");
                    expr(body, out);
                    out.push_str("; }");
                }
                out.push(')');
            }
            ExprKind::Call { callee, args } => {
                expr(callee, out);
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    expr(a, out);
                }
                out.push(')');
            }
            ExprKind::Add(a, b) | ExprKind::Mul(a, b) => {
                out.push('(');
                expr(a, out);
                out.push_str(if matches!(x.kind, ExprKind::Add(..)) {
                    " + "
                } else {
                    " * "
                });
                expr(b, out);
                out.push(')');
            }
            ExprKind::Neg(a) => {
                out.push_str("(-");
                expr(a, out);
                out.push(')');
            }
            ExprKind::Length(a) => {
                out.push('(');
                expr(a, out);
                out.push_str(").length");
            }
        }
    }
    let mut out = String::new();
    for c in &program.consts {
        out.push_str(&format!("const {} = ", c.name));
        expr(&c.value, &mut out);
        out.push_str(";\n");
    }
    expr(&program.body, &mut out);
    out
}

fn json_of(value: &Value) -> Json {
    match value {
        Value::Str(s) => Json::from(s.clone()),
        Value::Int(n) => Json::from(*n),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Bool(b) => Json::from(*b),
        Value::List(items) => Json::Array(items.iter().map(json_of).collect()),
    }
}

proptest! {
    // 256 cases (PROPTEST_CASES sets another number).
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn compiled_programs_reduce_to_the_evaluators_value(seed in 1u64..u64::MAX) {
        let mut generator = Gen { state: seed, fresh: 0 };
        let program = generator.program();
        let source = to_js(&program);
        if std::env::var_os("AMB_JS_SHOW").is_some() {
            eprintln!("{source}\n--");
        }
        let expected = amb_js::eval::evaluate(&program).map_or(Json::Null, |v| json_of(&v));
        let compiled = amb_js::compile(&source).map_err(|e| TestCaseError::fail(e.render(&source, "gen.js")))?;
        let (got, _) = reduce(&compiled.ast);
        prop_assert!(same(&got, &expected), "{}\n  amb:  {}\n  eval: {}", source, got, expected);
        // Built as a tree and compiled from its text: the same program.
        prop_assert_eq!(amb_js::compile_program(&program).map(|c| c.roam).ok(), Some(compiled.roam));
    }
}
