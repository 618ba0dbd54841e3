//! The JavaScript compiler: compile throughput against parsing alone, and what the
//! generated programs cost to run (reduction steps and signed events per call),
//! next to the js2amb encodings of the same programs where the corpus has one.
//!
//! ```text
//! taskset -c 1 cargo bench -p amb-bench --bench js
//! ```
//!
//! Throughput: a generated program of about 1 MB of JavaScript (top-level functions
//! over strings, ints, floats and lists, each called once from one final array) is
//! parsed by `oxc_parser` alone, then compiled end to end by `amb_js::compile`
//! (parse, check, specialise, write ROAM, parse the ROAM back); 5 runs each after a
//! warm-up, the median in KB/s (KB = 1,000 bytes of JavaScript).
//!
//! Costs: each program is compiled, reduced by the engine and planned as signed
//! events (`amb_vm::plan::plan`, one host); steps and events are exact counts.
//! Without `--bench` (as `cargo test --all-targets` runs it) it runs small sizes once.

use std::{hint::black_box, time::Instant};

use amb_engine::Limits;

/// A program of about `bytes` bytes of JavaScript, and how many calls it makes.
fn generate(bytes: usize) -> (String, usize) {
    let mut out = String::new();
    let mut calls = Vec::new();
    let mut i = 0;
    while out.len() < bytes {
        let text = match i % 4 {
            0 => format!(
                "const f{i} = (a, b) => {{\n  const s = a + \" and \" + b;\n  return s + s;\n}};\n"
            ),
            1 => format!("const f{i} = (x, y) => x * y + (x + {i}) * 2; // ints\n"),
            2 => format!("const f{i} = (x) => [x * 1.5, x + 0.25, -x];\n"),
            _ => format!("const f{i} = (xs, s) => xs.length + s.length * {i};\n"),
        };
        out.push_str(&text);
        calls.push(match i % 4 {
            0 => format!("f{i}(\"a{i}\", \"b\").length"),
            1 => format!("f{i}({i}, 3)"),
            2 => format!("f{i}(2.5).length"),
            _ => format!("f{i}([1, 2, {i}], \"abc\")"),
        });
        i += 1;
    }
    out.push('[');
    out.push_str(&calls.join(", "));
    out.push_str("]\n");
    (out, calls.len())
}

fn median_secs(runs: usize, mut op: impl FnMut()) -> f64 {
    op();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            op();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn throughput(bytes: usize, runs: usize) {
    let (source, calls) = generate(bytes);
    let parse = median_secs(runs, || {
        let allocator = oxc_allocator::Allocator::default();
        let parsed =
            oxc_parser::Parser::new(&allocator, &source, oxc_span::SourceType::cjs()).parse();
        assert!(parsed.errors.is_empty());
        black_box(parsed.program.body.len());
    });
    let mut roam_len = 0;
    let compile = median_secs(runs, || {
        let compiled = amb_js::compile(&source).expect("the generated program compiles");
        roam_len = compiled.roam.len();
        black_box(compiled);
    });
    let kb = source.len() as f64 / 1000.0;
    println!(
        "| {:.0} KB of JS, {calls} functions | oxc parse alone | {:.0} KB/s |",
        kb,
        kb / parse
    );
    println!(
        "| | amb_js::compile (parse, check, specialise, write, re-parse ROAM: {:.1} MB) | {:.0} KB/s ({:.1}× parse time) |",
        roam_len as f64 / 1e6,
        kb / compile,
        compile / parse
    );
}

/// Steps and one-host signed events of a ROAM program.
fn costs(ast: &amb_syntax::Ast) -> (u64, usize, String) {
    let (compiled, map) =
        amb_bytecode::compile_with_map(ast, &amb_bytecode::BlockLimits::default())
            .expect("the program compiles to bytecode");
    let plan =
        amb_vm::plan::plan(ast, &compiled, &map, Limits::default()).expect("the program runs");
    let value =
        amb_vm::value_of(&plan.final_term).map_or("null".to_string(), |v| v.to_json().to_string());
    (plan.steps, plan.events.len(), value)
}

fn row(name: &str, js: &str, calls: usize, js2amb: Option<&str>) {
    let compiled = amb_js::compile(js).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (steps, events, value) = costs(&compiled.ast);
    let theirs = js2amb.map_or("—".to_string(), |file| {
        let path = amb_bench::corpus_dir().join(file);
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ast = amb_syntax::parse(&text).expect("the fixture parses");
        let (s, e, v) = costs(&ast);
        format!("{s} steps, {e} events (value {v})")
    });
    let per = calls.max(1) as f64;
    let value = if value.len() > 40 {
        format!("{}…", &value[..30])
    } else {
        value
    };
    println!(
        "| {name} | {steps} | {events} | {:.1} / {:.1} | {value} | {theirs} |",
        steps as f64 / per,
        events as f64 / per
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (bytes, runs, wide) = if bench {
        (1_000_000, 5, 1000)
    } else {
        (20_000, 1, 50)
    };
    println!("| program | compiler | throughput |\n|---|---|---|");
    throughput(bytes, runs);
    println!();
    println!(
        "| program | steps | signed events | per call (steps / events) | value | js2amb encoding |"
    );
    println!("|---|---|---|---|---|---|");
    let fixtures = "aphelionz-js2amb/test/fixtures/js";
    row(
        "`a()`, a constant function",
        "const a = () => \"hello\";\na()",
        1,
        Some(&format!(
            "{fixtures}/lang_features/001-constant_function.ambient"
        )),
    );
    row(
        "`b()` calling `a()`",
        "const a = () => \"hello\";\nconst b = () => a();\nb()",
        2,
        Some(&format!(
            "{fixtures}/lang_features/002-fcall_const_func.ambient"
        )),
    );
    row(
        "`string_concat()(\"hello\", \"world\")`",
        "const string_concat = () => (l, r) => l + r;\nstring_concat()(\"hello\", \"world\")",
        1,
        Some(&format!(
            "{fixtures}/abstractions/001-string_concat.ambient"
        )),
    );
    row(
        "`add(2, 3)`",
        "const add = (a, b) => a + b;\nadd(2, 3)",
        1,
        None,
    );
    let mut chain = String::from("const f0 = x => x + 1;\n");
    for i in 1..20 {
        chain.push_str(&format!("const f{i} = x => f{}(x) + 1;\n", i - 1));
    }
    chain.push_str("f19(0)");
    row("20-deep call chain `f19(0)`", &chain, 20, None);
    let independent = format!(
        "const inc = x => x + 1;\n[{}]",
        (0..wide)
            .map(|i| format!("inc({i})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    row(
        &format!("{wide} independent calls `[inc(0), …]`"),
        &independent,
        wide,
        None,
    );
}
