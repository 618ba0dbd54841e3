//! Time travel: seeking to any step of a program of about 1,000,000 events.
//!
//! Run with `taskset -c 1 cargo bench -p amb-bench --bench seek`. It records the
//! confluent program of `amb_bench::confluent` (copies of the corpus monoid, read in
//! place from `../shared/corpus` or `AMB_CORPUS`) with `AMB_BENCH_STEPS` steps
//! (default 210,000: about 1,000,000 events) into a fresh store, then:
//!
//! * loads a [`Timeline`] with the default snapshots (about 800) and one with a single
//!   snapshot (step 0 only), reporting load time and the memory each holds;
//! * the raw baseline, a **full replay**: bringing the single-snapshot timeline to the
//!   last step, which replays every event from the deployed program (in memory, events
//!   already decoded and checked);
//! * **seeks**: the replay state at 64 seeded random steps of the snapshot timeline per
//!   run ([`Timeline::replay_at`]), and, separately, **rendering** each of those states
//!   as a canonical term (`to_ast` + `canonicalize`, what `amb inspect` prints), whose
//!   cost grows with the size of the state, not with the history.
//!
//! Each figure is the median of `AMB_BENCH_RUNS` runs (default 5); seeks report the
//! median and the slowest of all, and the slowest as a fraction of a full replay.

use amb_bench::{corpus_dir, median};
use std::time::Instant;

use amb_bench::{
    Rng,
    confluent::{confluent_program, read_monoid},
    counting_alloc::{self, CountingAlloc},
};
use amb_bytecode::BlockLimits;
use amb_engine::Limits;
use amb_log::{Manifest, SigningKey, Store};
use amb_vm::travel::{Moment, Timeline};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Records the confluent program of `steps` steps; returns the store and program.
fn record_program(dir: &std::path::Path, steps: u64) -> (Store, amb_bytecode::Cid, u64) {
    let monoid = read_monoid(&corpus_dir()).expect("the corpus monoid at ../shared/corpus");
    let program = confluent_program(&monoid, steps);
    let ast = amb_syntax::parse(&program.text).expect("the generated program parses");
    let (compiled, map) =
        amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).expect("compiles");
    let plan = amb_vm::plan::plan(&ast, &compiled, &map, Limits::default()).expect("runs");
    let key = SigningKey::from_seed(&[7; 32]);
    let manifest = Manifest::new_root(
        compiled.root,
        None,
        vec![key.public_key()],
        &key,
        [1; 16],
        1,
    );
    let store = Store::create(dir.join("store.redb")).expect("a store");
    let recorded =
        amb_vm::record::record(&plan, &compiled, &manifest, &key, &store).expect("recorded");
    (store, recorded.program, recorded.events)
}

fn main() {
    let steps = env_or("AMB_BENCH_STEPS", 210_000);
    let runs = env_or("AMB_BENCH_RUNS", 5).max(1) as usize;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let start = Instant::now();
    let (store, program, events) = record_program(dir.path(), steps);
    eprintln!(
        "recorded {events} events in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let before = counting_alloc::current();
    let start = Instant::now();
    let timeline = Timeline::load(&store, program, &()).expect("loads");
    let load_s = start.elapsed().as_secs_f64();
    let timeline_mb = (counting_alloc::current() - before) as f64 / 1e6;
    let before = counting_alloc::current();
    let whole = Timeline::load_with_interval(&store, program, Some(u64::MAX), &()).expect("loads");
    let whole_mb = (counting_alloc::current() - before) as f64 / 1e6;
    let total = timeline.total_steps();

    let mut full = Vec::new();
    let mut seeks = Vec::new();
    let mut renders = Vec::new();
    let mut rng = Rng::new(0x5eec);
    for _ in 0..runs {
        let start = Instant::now();
        let last = whole.replay_at(Moment::Step(total)).expect("replays");
        full.push(start.elapsed().as_secs_f64());
        assert_eq!(last.steps(), total);
        for _ in 0..64 {
            let k = rng.below(total as usize + 1) as u64;
            let start = Instant::now();
            let state = timeline.replay_at(Moment::Step(k)).expect("seeks");
            seeks.push(start.elapsed().as_secs_f64());
            assert_eq!(state.steps(), k);
            let start = Instant::now();
            let mut term = state.to_ast(timeline.source());
            term.canonicalize();
            renders.push((start.elapsed().as_secs_f64(), term.len()));
        }
    }
    let full_s = median(full);
    let slowest = seeks.iter().copied().fold(0.0, f64::max);
    let seek_median = median(seeks);
    let render_median = median(renders.iter().map(|r| r.0).collect());
    let (render_slowest, render_nodes) = renders
        .iter()
        .copied()
        .fold((0.0, 0), |a, r| if r.0 > a.0 { r } else { a });
    println!(
        "| events | steps | snapshots | load with snapshots | timeline memory | single-snapshot memory |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {events} | {total} | {} | {load_s:.2} s | {timeline_mb:.0} MB | {whole_mb:.0} MB |",
        timeline.snapshots()
    );
    println!();
    println!(
        "| full replay (baseline) | seek median | seek slowest | slowest / full replay | render median | render slowest (nodes) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {:.0} ms | {:.2} ms | {:.2} ms | 1/{:.0} | {:.1} ms | {:.1} ms ({render_nodes}) |",
        full_s * 1e3,
        seek_median * 1e3,
        slowest * 1e3,
        full_s / slowest,
        render_median * 1e3,
        render_slowest * 1e3,
    );
}
