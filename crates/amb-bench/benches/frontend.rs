//! Front-end throughput: parse and compile of generated ROAM programs.
//!
//! ```text
//! taskset -c 1 cargo bench -p amb-bench --bench frontend
//! ```
//!
//! For each size (1 MB and 50 MB, MB = 10^6 bytes of source text) it generates a
//! program with [`amb_bench::generate`], then times, with one untimed warm-up each:
//!
//! * three raw baselines over the same bytes, so that ratios stay meaningful on a
//!   noisy machine: a memchr count of `[`, `std::str::from_utf8`, and BLAKE3
//!   hashing (one thread);
//! * `parse`: `amb_syntax::parse_with_limits` with the default limits;
//! * `compile`: `amb_bytecode::compile` on the already parsed AST;
//! * `parse+compile`: both, end to end;
//! * `fmt (parse+canonicalize+print)`: what `amb fmt` does between reading the file
//!   and writing its output: parse, sort the parts, print the canonical text
//!   streamed through a 64 KiB buffer (to a sink here, to standard output in `amb
//!   fmt`) (parse alone is its raw baseline: the row's ratio to `parse`).
//!
//! Each phase is measured in 5 runs (a run repeats the operation until it lasts at
//! least 50 ms, for the small inputs) and the median is reported in MB/s and as a
//! ratio to each baseline. Peak heap is measured by a counting global allocator:
//! before each operation the peak is reset to the current live bytes, and the peak
//! above that is reported as a multiple of the input size; the input text, and for
//! `compile` the AST, are allocated beforehand and not counted.
//!
//! Knobs (environment): `AMB_BENCH_SIZES` (MB, default `1,50`), `AMB_BENCH_RUNS`
//! (default 5), `AMB_BENCH_PHASES` (any of `baseline,parse,compile,e2e,fmt`; default all).
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a quick smoke
//! run on a small program.

use std::{hint::black_box, time::Instant};

use amb_bench::{
    Config, MB, Stats,
    counting_alloc::{self, CountingAlloc, reset_peak},
    generate, measure,
};
use amb_syntax::{Limits, NodeKind, parse_with_limits};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// One timed run: seconds per operation and peak heap above the bytes live before.
#[derive(Clone, Copy, Debug)]
struct Sample {
    secs: f64,
    peak_extra: usize,
}

/// The shortest timed run, in seconds.
const MIN_RUN_SECS: f64 = 0.05;

/// One untimed warm-up, then `runs` timed runs of `op`.
fn run_phase<T>(runs: usize, mut op: impl FnMut() -> T) -> Vec<Sample> {
    let start = Instant::now();
    drop(black_box(op()));
    let once = start.elapsed().as_secs_f64().max(1e-9);
    let reps = ((MIN_RUN_SECS / once).ceil() as usize).clamp(1, 100_000);
    (0..runs)
        .map(|_| {
            let mut total = 0.0;
            let mut peak_extra = 0;
            for _ in 0..reps {
                let base = reset_peak();
                let start = Instant::now();
                let out = black_box(op());
                total += start.elapsed().as_secs_f64();
                peak_extra = peak_extra.max(counting_alloc::peak() - base);
                drop(out);
            }
            Sample {
                secs: total / reps as f64,
                peak_extra,
            }
        })
        .collect()
}

/// Throughput figures of one phase.
#[derive(Clone, Debug)]
struct Figures {
    name: &'static str,
    median: f64,
    min: f64,
    max: f64,
    peak_ratio: f64,
}

fn figures(name: &'static str, bytes: usize, samples: &[Sample]) -> Figures {
    let mut rates: Vec<f64> = samples
        .iter()
        .map(|s| bytes as f64 / MB as f64 / s.secs)
        .collect();
    rates.sort_by(f64::total_cmp);
    let peak = samples.iter().map(|s| s.peak_extra).max().unwrap_or(0);
    Figures {
        name,
        median: rates[rates.len() / 2],
        min: rates[0],
        max: rates[rates.len() - 1],
        peak_ratio: peak as f64 / bytes as f64,
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if !bench {
        smoke();
        return;
    }
    let sizes: Vec<f64> = env_list("AMB_BENCH_SIZES", "1,50")
        .iter()
        .map(|s| s.parse().expect("AMB_BENCH_SIZES: numbers of MB"))
        .collect();
    let runs: usize = std::env::var("AMB_BENCH_RUNS")
        .ok()
        .map_or(5, |s| s.parse().expect("AMB_BENCH_RUNS: a number"));
    let phases = env_list("AMB_BENCH_PHASES", "baseline,parse,compile,e2e,fmt");
    let wants = |p: &str| phases.iter().any(|q| q == p);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# amb front-end benchmark");
    println!();
    println!(
        "{runs} timed runs per phase (median reported), one untimed warm-up; \
         {cpus} CPU(s) available to this process (pin with `taskset -c 1`)."
    );
    let limits = Limits::default();
    let mut verdicts = Vec::new();
    for size in sizes {
        let target = (size * MB as f64) as usize;
        let start = Instant::now();
        let generated = generate(&Config::new(target));
        let gen_secs = start.elapsed().as_secs_f64();
        let generated_depths = (generated.tree_depth, generated.chain_depth);
        let text = generated.text.into_bytes();
        let stats = measure(&text);
        let ast = parse_with_limits(&text, &limits).expect("generated programs parse");
        // The block statistics need a compile; skip it when only parse is measured,
        // so that a `/usr/bin/time -v` run of the parse phase sees the parse alone.
        let compiled = (wants("compile") || wants("e2e"))
            .then(|| amb_bytecode::compile(&ast).expect("generated programs compile"));
        describe(
            size,
            &stats,
            &ast,
            compiled.as_ref(),
            gen_secs,
            &generated_depths,
        );
        drop(compiled);
        let ast = wants("compile").then_some(ast);

        let bytes = text.len();
        let mut rows: Vec<Figures> = Vec::new();
        if wants("baseline") {
            let s = run_phase(runs, || memchr::memchr_iter(b'[', black_box(&text)).count());
            rows.push(figures("baseline: memchr count of `[`", bytes, &s));
            let s = run_phase(runs, || std::str::from_utf8(black_box(&text)).is_ok());
            rows.push(figures("baseline: std::str::from_utf8", bytes, &s));
            let s = run_phase(runs, || blake3::hash(black_box(&text)));
            rows.push(figures("baseline: BLAKE3 hash", bytes, &s));
        }
        if wants("parse") {
            let s = run_phase(runs, || {
                parse_with_limits(black_box(&text), &limits).expect("parses")
            });
            rows.push(figures("parse", bytes, &s));
        }
        if let Some(ast) = &ast {
            let s = run_phase(runs, || {
                amb_bytecode::compile(black_box(ast)).expect("compiles")
            });
            rows.push(figures("compile (AST → blocks)", bytes, &s));
        }
        drop(ast);
        if wants("e2e") {
            let s = run_phase(runs, || {
                let ast = parse_with_limits(black_box(&text), &limits).expect("parses");
                let compiled = amb_bytecode::compile(&ast).expect("compiles");
                (ast, compiled)
            });
            rows.push(figures("parse+compile", bytes, &s));
        }
        if wants("fmt") {
            let s = run_phase(runs, || fmt(black_box(&text), &limits, CountingSink(0)).0);
            rows.push(figures("fmt (parse+canonicalize+print)", bytes, &s));
        }
        print_table(&rows);
        for row in &rows {
            match row.name {
                "parse" => {
                    verdicts.push(verdict(size, "parse ≥ 100 MB/s", row.median >= 100.0));
                    verdicts.push(verdict(
                        size,
                        "parse peak heap ≤ 8× input",
                        row.peak_ratio <= 8.0,
                    ));
                }
                "compile (AST → blocks)" => {
                    verdicts.push(verdict(size, "compile ≥ 20 MB/s", row.median >= 20.0));
                }
                "fmt (parse+canonicalize+print)" => {
                    verdicts.push(verdict(
                        size,
                        "fmt end to end ≥ 50 MB/s",
                        row.median >= 50.0,
                    ));
                }
                _ => {}
            }
        }
    }
    if !verdicts.is_empty() {
        println!("\n## Targets\n");
        for v in verdicts {
            println!("- {v}");
        }
    }
    println!(
        "\nProcess heap high-water mark (counting allocator): {:.1} MB",
        counting_alloc::high_water() as f64 / MB as f64
    );
}

/// What `amb fmt FILE` does with the file's bytes: parse, canonical order, the
/// canonical text (and its final newline) streamed out through a 64 KiB buffer
/// into `out` (a sink in the bench; `amb fmt` streams to standard output).
fn fmt<W: std::io::Write>(text: &[u8], limits: &Limits, out: W) -> W {
    let mut ast = parse_with_limits(text, limits).expect("parses");
    ast.canonicalize();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    amb_syntax::write_compact_with_comments(&ast, &mut out).expect("writes");
    std::io::Write::write_all(&mut out, b"\n").expect("writes");
    out.into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .expect("flushed")
}

/// A writer that keeps nothing and counts the bytes.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += black_box(buf).len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn verdict(size: f64, what: &str, ok: bool) -> String {
    format!("{size} MB: {what}: {}", if ok { "met" } else { "NOT met" })
}

fn describe(
    size: f64,
    stats: &Stats,
    ast: &amb_syntax::Ast,
    compiled: Option<&amb_bytecode::CompiledProgram>,
    gen_secs: f64,
    &(tree_depth, chain_depth): &(usize, usize),
) {
    let ambients = (0..ast.len())
        .filter(|&i| ast.node(ast.node_id(i)).kind() == NodeKind::Ambient)
        .count();
    println!("\n## {size} MB program\n");
    println!(
        "- {} bytes, {} lines, generated in {:.0} ms",
        stats.bytes,
        stats.lines,
        gen_secs * 1e3
    );
    println!(
        "- {} ambients, {} capabilities ({} AST nodes), {} distinct names",
        ambients,
        ast.len() - ambients,
        ast.len(),
        ast.name_count()
    );
    println!(
        "- average body per ambient: {:.1} bytes including nested ambients, \
         {:.1} bytes own (each byte once); {:.1} source bytes per ambient",
        stats.avg_body_bytes(),
        stats.avg_own_body_bytes(),
        stats.bytes_per_ambient()
    );
    println!(
        "- nesting: tree up to {} ambients deep, plus a chain of {} nested ambients \
         (deepest bracket nesting {}); {} quoted names, {} comments",
        tree_depth, chain_depth, stats.max_depth, stats.quoted_names, stats.comments
    );
    if let Some(compiled) = compiled {
        let largest = compiled
            .blocks
            .iter()
            .map(|(_, b)| b.len())
            .max()
            .unwrap_or(0);
        println!(
            "- compiled: {} distinct blocks, {} bytes of CBOR, largest block {} bytes",
            compiled.blocks.len(),
            compiled.total_bytes(),
            largest
        );
    }
    println!();
}

fn print_table(rows: &[Figures]) {
    let base = |name: &str| {
        rows.iter()
            .find(|r| r.name.contains(name))
            .map(|r| r.median)
    };
    let bases = [base("memchr"), base("from_utf8"), base("BLAKE3")];
    println!(
        "| phase | median MB/s | min–max MB/s | ÷ memchr | ÷ from_utf8 | ÷ BLAKE3 | peak heap ÷ input |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let ratios: Vec<String> = bases
            .iter()
            .map(|b| b.map_or("–".to_string(), |b| format!("{:.4}", row.median / b)))
            .collect();
        println!(
            "| {} | {:.1} | {:.1}–{:.1} | {} | {} | {} | {:.2}× |",
            row.name, row.median, row.min, row.max, ratios[0], ratios[1], ratios[2], row.peak_ratio
        );
    }
}

/// A quick check that the bench's pieces work, for `cargo test --all-targets`.
fn smoke() {
    let config = Config {
        deep_chain: 100,
        ..Config::new(50_000)
    };
    let text = generate(&config).text;
    let ast = parse_with_limits(text.as_bytes(), &Limits::default()).expect("parses");
    let samples = run_phase(1, || amb_bytecode::compile(&ast).expect("compiles"));
    let row = figures("compile", text.len(), &samples);
    assert!(row.median > 0.0 && row.peak_ratio > 0.0);
    let formatted = fmt(text.as_bytes(), &Limits::default(), Vec::new());
    let mut canonical = ast.clone();
    canonical.canonicalize();
    // The streamed text is the canonical text with the comments (the generator
    // writes some), as printed whole.
    let mut expected = Vec::new();
    amb_syntax::write_compact_with_comments(&canonical, &mut expected).expect("in memory");
    expected.push(b'\n');
    assert_eq!(formatted, expected);
    println!("smoke run of the frontend bench: ok (pass --bench for the measurements)");
}
