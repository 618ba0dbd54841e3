//! Engine throughput: steps per second, memory per live ambient instance.
//!
//! Run with `taskset -c 1 cargo bench -p amb-bench --bench engine`. For each target
//! step count (10^3, 10^5, 10^6; `AMB_BENCH_STEPS` overrides, comma separated) it
//! builds the confluent program of `amb_bench::confluent` from the corpus monoid (read
//! in place from `../shared/corpus`, or `AMB_CORPUS`), parses it (untimed), then times
//! `Engine::new` + `Engine::run` (instantiation and reduction, engine only) 5 times
//! (`AMB_BENCH_RUNS`) and reports the median. Each run must take exactly the expected
//! number of steps and end in the expected normal form size.
//!
//! Memory per live instance is the counting allocator's peak above the bytes live
//! before `Engine::new`, divided by the most ambient instances alive at once during
//! the run (sampled after every step).
//!
//! Baseline, measured in the same run: a hash-map round of the kind a step does
//! (insert, lookup, remove of a `(u32, u32)` key in a `hashbrown` map), reported as
//! operations per second, so that steps/s can be read as a ratio.

use amb_bench::{corpus_dir, median};
use std::{hint::black_box, time::Instant};

use amb_bench::{
    confluent::{confluent_program, read_monoid},
    counting_alloc::{self, CountingAlloc, reset_peak},
};
use amb_engine::{Engine, Limits};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Hash-map rounds per second (insert, get, remove), the raw baseline.
fn baseline_rounds_per_sec(runs: usize) -> f64 {
    let n = 1_000_000u32;
    let samples = (0..runs)
        .map(|_| {
            let mut map: hashbrown::HashMap<(u32, u32), u32> = hashbrown::HashMap::default();
            let start = Instant::now();
            for i in 0..n {
                map.insert((i, i ^ 0x5bd1), i);
                black_box(map.get(&(i / 2, (i / 2) ^ 0x5bd1)));
                if i % 2 == 1 {
                    map.remove(&(i - 1, (i - 1) ^ 0x5bd1));
                }
            }
            black_box(&map);
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(samples)
}

struct Measured {
    steps_per_sec: f64,
    bytes_per_live: f64,
    max_live: usize,
    steps: u64,
}

fn measure(ast: &amb_syntax::Ast, expected_steps: u64, runs: usize) -> Measured {
    let mut rates = Vec::new();
    let mut bytes_per_live: f64 = 0.0;
    let mut max_live = 0;
    for _ in 0..=runs {
        let base = reset_peak();
        let start = Instant::now();
        let mut engine = Engine::new(ast, Limits::default()).expect("within limits");
        let mut live = engine.live_ambients();
        let steps = engine
            .run(|e, _| live = live.max(e.live_ambients()))
            .expect("within limits");
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(
            steps, expected_steps,
            "the program is confluent with a known length"
        );
        assert!(!engine.is_stuck(), "every copy reaches its value");
        rates.push(steps as f64 / secs);
        let peak = counting_alloc::peak() - base;
        bytes_per_live = bytes_per_live.max(peak as f64 / live as f64);
        max_live = live;
        drop(black_box(engine));
    }
    rates.remove(0); // warm-up
    Measured {
        steps_per_sec: median(rates),
        bytes_per_live,
        max_live,
        steps: expected_steps,
    }
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let targets: Vec<u64> = std::env::var("AMB_BENCH_STEPS")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().parse().expect("step counts"))
                .collect()
        })
        .unwrap_or_else(|| {
            if bench_mode {
                vec![1_000, 100_000, 1_000_000]
            } else {
                vec![1_000]
            }
        });
    let runs: usize = std::env::var("AMB_BENCH_RUNS")
        .ok()
        .map_or(if bench_mode { 5 } else { 1 }, |s| {
            s.parse().expect("a number")
        });
    let monoid = read_monoid(&corpus_dir()).expect("the corpus monoid is readable");
    let baseline = baseline_rounds_per_sec(runs);
    println!("## Engine: steps per second and memory per live ambient\n");
    println!(
        "baseline: {:.0} hash-map rounds/s (insert+get+remove)\n",
        baseline
    );
    println!(
        "| target steps | copies (nested) | steps | median steps/s | ÷ baseline | max live ambients | peak bytes ÷ live ambient |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for target in targets {
        let program = confluent_program(&monoid, target);
        let ast = amb_syntax::parse(&program.text).expect("the generated program parses");
        let m = measure(&ast, program.steps, runs);
        println!(
            "| {target} | {} ({}) | {} | {:.0} | {:.3} | {} | {:.1} |",
            program.copies,
            program.nested,
            m.steps,
            m.steps_per_sec,
            m.steps_per_sec / baseline,
            m.max_live,
            m.bytes_per_live
        );
    }
}
