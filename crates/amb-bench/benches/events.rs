//! Signed events: write, verification and replay rates, and bytes on disk per event.
//!
//! ```text
//! taskset -c 1 cargo bench -p amb-bench --bench events
//! AMB_BENCH_STEPS=1000 AMB_BENCH_RUNS=1 cargo bench -p amb-bench --bench events   # quick
//! ```
//!
//! The program is the engine bench's confluent program (`amb_bench::confluent`, the
//! corpus's string-concat monoid read in place from `../shared/corpus` or
//! `AMB_CORPUS`) of `AMB_BENCH_STEPS` steps (default 10^5). It is parsed, compiled
//! (`compile_with_map`) and planned (`amb_vm::plan::plan`: the engine's run and the log
//! plan) as `amb run` does. Planning is timed on its own (warm-up, then the median
//! of `AMB_BENCH_RUNS` runs), since no phase below includes it.
//!
//! Each phase makes one untimed warm-up and `AMB_BENCH_RUNS` (default 5) timed runs.
//! In every run the raw baseline is timed just before the code under test, and the
//! ratio reported is the median of the per-run ratios, so a neighbour that slows the
//! machine for a while slows both. Phases (`AMB_BENCH_PHASES`, default all):
//!
//! * `write`: `amb_vm::record::record` into a fresh redb store (a new temporary
//!   directory per run; creating the store is not timed): the blocks, the manifests,
//!   and every event encoded, hashed, signed and committed in fsync'd batches.
//!   Baseline: `ed25519_dalek::SigningKey::sign` over the signing inputs of the
//!   recorded events (an evenly spread sample of at most [`SAMPLE`]). `record`
//!   commits each batch on a second thread while it signs the next. A note splits
//!   the wall time (on the CPU, counting every thread of the process, from
//!   `/proc/self/stat`; waiting for it, from `/proc/thread-self/schedstat`; blocked in
//!   I/O such as `fsync`), and gives the ratio counting CPU time only.
//! * `verify`: `amb_vm::verify::verify(&store, program)` on the recorded store: read,
//!   CID, decode, signatures (in batches), order, replay, final checks. Baseline: the
//!   validity rule's single check (`ed25519_zebra::VerificationKey::verify`, ZIP-215)
//!   over the same sample of signing inputs; a second row gives the ratio to the raw
//!   batch check of the same inputs (`ed25519_zebra::batch::Verifier`, timed in the
//!   same runs).
//! * `replay`: `Event::decode` of every event's stored bytes, then `Replay::apply`, in
//!   the verified order (`Verified::order`), with blocks and manifests from a preloaded
//!   in-memory `Source` (no store in the timed loop); and apply alone, on events
//!   decoded beforehand. Baseline: `Event::decode` of every event's bytes.
//! * `size`: the store's size on disk (allocated blocks, `Store::size_on_disk`, as
//!   `cargo bench -p amb-log --bench store_size` measures it; no compaction) after
//!   recording, less that of the new empty store, per event; also with the program's
//!   blocks stored beforehand (events and manifests only). Then, from redb's own
//!   statistics (the store closed and the file reopened with redb), the pages and
//!   stored bytes of each table per event.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it makes a quick run of
//! 10^3 steps, one timed run each.

use amb_bench::corpus_dir;

/// The `amb` binary's allocator, so that the bench measures what `amb run` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::{
    collections::HashMap,
    hint::black_box,
    sync::Arc,
    time::{Instant, SystemTime},
};

use amb_bench::confluent::{ConfluentProgram, confluent_program, read_monoid};
use amb_bytecode::{Block, BlockLimits, Cid, CompiledProgram};
use amb_engine::Limits;
use amb_log::{Event, Manifest, SigningKey, Store};
use amb_vm::{
    plan::Plan,
    record::{Recorded, record},
    replay::{Replay, Source},
};
use ed25519_dalek::Signer as _;
use tempfile::TempDir;

/// Most signing inputs the signature baselines use.
const SAMPLE: usize = 20_000;

/// Secret seed of the bench's key.
const SEED: [u8; 32] = [7; 32];

// ----- knobs and statistics -----

struct Knobs {
    steps: u64,
    runs: usize,
    phases: Vec<String>,
}

impl Knobs {
    fn from_env() -> Knobs {
        let bench = std::env::args().any(|a| a == "--bench");
        let steps = std::env::var("AMB_BENCH_STEPS")
            .ok()
            .map_or(if bench { 100_000 } else { 1_000 }, |s| {
                s.trim().parse().expect("AMB_BENCH_STEPS: a number")
            });
        let runs = std::env::var("AMB_BENCH_RUNS")
            .ok()
            .map_or(if bench { 5 } else { 1 }, |s| {
                s.trim().parse().expect("AMB_BENCH_RUNS: a number")
            });
        let phases = std::env::var("AMB_BENCH_PHASES")
            .unwrap_or_else(|_| "write,verify,replay,size".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Knobs {
            steps,
            runs: runs.max(1),
            phases,
        }
    }

    fn wants(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

/// Median, minimum and maximum of some samples.
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: &[f64]) -> Spread {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Spread {
        median: sorted[sorted.len() / 2],
        min: sorted[0],
        max: sorted[sorted.len() - 1],
    }
}

/// Rates of the code under test and of its baseline, one pair per timed run.
#[derive(Debug, Default)]
struct Paired {
    baseline: Vec<f64>,
    measured: Vec<f64>,
}

impl Paired {
    fn ratio(&self) -> f64 {
        let ratios: Vec<f64> = self
            .measured
            .iter()
            .zip(&self.baseline)
            .map(|(m, b)| m / b)
            .collect();
        spread(&ratios).median
    }
}

/// `runs` runs of the baseline followed by the code under test; each closure returns
/// its rate (events per second). The caller has warmed both up.
fn timed(
    runs: usize,
    mut baseline: impl FnMut() -> f64,
    mut measured: impl FnMut() -> f64,
) -> Paired {
    let mut out = Paired::default();
    for _ in 0..runs {
        out.baseline.push(baseline());
        out.measured.push(measured());
    }
    out
}

/// One untimed warm-up of each, then [`timed`].
fn paired(
    runs: usize,
    mut baseline: impl FnMut() -> f64,
    mut measured: impl FnMut() -> f64,
) -> Paired {
    baseline();
    measured();
    timed(runs, baseline, measured)
}

/// Events per second of `count` events in `secs`.
fn rate(count: usize, secs: f64) -> f64 {
    count as f64 / secs.max(1e-12)
}

/// The process's seconds on a CPU (every thread, finished ones included: `record`
/// commits on a second thread), from `/proc/self/stat` in clock ticks of 10 ms, and
/// this thread's seconds waiting for a CPU, from `/proc/thread-self/schedstat`
/// (Linux; `None` elsewhere).
fn sched_secs() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime
    // and stime fields 14 and 15.
    let mut after_name = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = after_name.next()?.parse().ok()?;
    let stime: u64 = after_name.next()?.parse().ok()?;
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let waiting: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(((utime + stime) as f64 / 100.0, waiting as f64 / 1e9))
}

/// How a timed interval went: wall seconds, and the shares of it spent on the CPU,
/// waiting for the CPU (a busy neighbour) and blocked (I/O: `fsync`, page faults).
#[derive(Clone, Copy, Debug, Default)]
struct Split {
    secs: f64,
    on_cpu: f64,
    runqueue: f64,
}

impl Split {
    fn blocked(&self) -> f64 {
        (1.0 - self.on_cpu - self.runqueue).max(0.0)
    }
}

/// Runs `op`, timing it and splitting its wall time.
fn split_time<T>(op: impl FnOnce() -> T) -> (T, Split) {
    let before = sched_secs();
    let start = Instant::now();
    let out = op();
    let secs = start.elapsed().as_secs_f64();
    let split = match (before, sched_secs()) {
        (Some((c0, w0)), Some((c1, w1))) => Split {
            secs,
            on_cpu: (c1 - c0) / secs,
            runqueue: (w1 - w0) / secs,
        },
        _ => Split {
            secs,
            on_cpu: 1.0,
            runqueue: 0.0,
        },
    };
    (out, split)
}

/// A note on the medians of some splits.
fn describe_splits(what: &str, splits: &[Split]) -> String {
    let share = |f: fn(&Split) -> f64| {
        let values: Vec<f64> = splits.iter().map(f).collect();
        spread(&values).median * 100.0
    };
    format!(
        "{what}: wall time {:.0} % on the CPU, {:.0} % waiting for the CPU, {:.0} % blocked (I/O, fsync) (medians; on the CPU: the whole process, `/proc/self/stat`; waiting: this thread, `/proc/thread-self/schedstat`)",
        share(|s| s.on_cpu),
        share(|s| s.runqueue),
        share(Split::blocked),
    )
}

// ----- the program -----

/// The program, compiled and planned, with the key and manifest that record it.
struct Program {
    generated: ConfluentProgram,
    compiled: CompiledProgram,
    plan: Plan,
    key: SigningKey,
    manifest: Manifest,
    compile_secs: f64,
    /// Seconds of `plan`, one per timed run.
    plan_secs: Vec<f64>,
}

fn prepare(steps: u64, runs: usize) -> Program {
    let monoid = read_monoid(&corpus_dir()).expect("the corpus monoid is readable");
    let generated = confluent_program(&monoid, steps);
    let ast = amb_syntax::parse(&generated.text).expect("the generated program parses");
    let start = Instant::now();
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default())
        .expect("the generated program compiles");
    let compile_secs = start.elapsed().as_secs_f64();
    let mut plan_secs = Vec::new();
    let mut plan = None;
    for _ in 0..=runs {
        let start = Instant::now();
        let planned = amb_vm::plan::plan(&ast, &compiled, &map, Limits::default())
            .expect("the program runs within the limits");
        plan_secs.push(start.elapsed().as_secs_f64());
        plan = Some(planned);
    }
    plan_secs.remove(0); // warm-up
    let plan = plan.expect("planned at least once");
    assert_eq!(plan.steps, generated.steps, "the program is confluent");
    let key = SigningKey::from_seed(&SEED);
    let manifest = Manifest::new_root(
        compiled.root,
        Some("bench".into()),
        vec![key.public_key()],
        &key,
        [1; 16],
        1_700_000_000_000,
    );
    Program {
        generated,
        compiled,
        plan,
        key,
        manifest,
        compile_secs,
        plan_secs,
    }
}

impl Program {
    fn events(&self) -> usize {
        self.plan.events.len()
    }

    /// Every block the run needs: the program's and the values'.
    fn blocks(&self) -> impl Iterator<Item = (Cid, &[u8])> {
        self.compiled
            .blocks
            .iter()
            .chain(&self.plan.value_blocks)
            .map(|(c, b)| (*c, b.as_slice()))
    }
}

// ----- recording -----

/// A program recorded into a new store in a temporary directory.
struct Recording {
    // Dropped before the directory that holds its file.
    store: Store,
    recorded: Recorded,
    time: Split,
    /// Size on disk before recording.
    size_before: u64,
    /// Length of the file before recording.
    len_before: u64,
    _dir: TempDir,
}

/// Records `program` into a new store; with `blocks_first`, the program's blocks are
/// stored (untimed) before, so the growth is that of the manifests and events.
fn record_fresh(program: &Program, blocks_first: bool) -> Recording {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::create(dir.path().join("events.redb")).expect("a new store");
    if blocks_first {
        store.put_blocks(program.blocks()).expect("blocks stored");
    }
    let size_before = store.size_on_disk().expect("the store's size");
    let len_before = store.file_len().expect("the store's length");
    let (recorded, time) = split_time(|| {
        record(
            &program.plan,
            &program.compiled,
            &program.manifest,
            &program.key,
            &store,
        )
        .expect("recording succeeds")
    });
    assert_eq!(recorded.events as usize, program.events());
    Recording {
        store,
        recorded,
        time,
        size_before,
        len_before,
        _dir: dir,
    }
}

/// Every stored event's bytes, by CID.
fn stored_events(recording: &Recording) -> HashMap<Cid, Vec<u8>> {
    let store = &recording.store;
    let mut events = HashMap::new();
    for log in store
        .program_logs(recording.recorded.program)
        .expect("logs")
    {
        for stored in store.log_events(log).expect("a log") {
            let stored = stored.expect("an event");
            events.insert(stored.cid, stored.bytes);
        }
    }
    assert_eq!(events.len(), recording.recorded.event_cids.len());
    events
}

/// The signing inputs of an evenly spread sample of at most [`SAMPLE`] events.
fn sample_inputs(recording: &Recording) -> Vec<Vec<u8>> {
    let stored = stored_events(recording);
    let cids = &recording.recorded.event_cids;
    let every = cids.len().div_ceil(SAMPLE).max(1);
    cids.iter()
        .step_by(every)
        .map(|cid| {
            Event::decode(&stored[cid])
                .expect("a stored event decodes")
                .signing_input()
        })
        .collect()
}

// ----- baselines -----

/// Raw Ed25519 signatures per second over `inputs`.
fn sign_rate(key: &ed25519_dalek::SigningKey, inputs: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    for input in inputs {
        black_box(key.sign(black_box(input)));
    }
    rate(inputs.len(), start.elapsed().as_secs_f64())
}

/// Raw single signature checks per second over `signed`, under the protocol's
/// validity rule (ZIP-215, `ed25519_zebra::VerificationKey::verify`).
fn verify_rate(
    key: &ed25519_zebra::VerificationKey,
    signed: &[(Vec<u8>, ed25519_zebra::Signature)],
) -> f64 {
    let start = Instant::now();
    for (input, sig) in signed {
        key.verify(sig, black_box(input))
            .expect("a valid signature");
    }
    rate(signed.len(), start.elapsed().as_secs_f64())
}

/// Raw batch signature checks per second over `signed`, under the same rule
/// (`ed25519_zebra::batch::Verifier`, batches of `amb_vm::verify`'s size).
fn batch_verify_rate(
    key: &ed25519_zebra::VerificationKey,
    signed: &[(Vec<u8>, ed25519_zebra::Signature)],
) -> f64 {
    let key = ed25519_zebra::VerificationKeyBytes::from(*key);
    let start = Instant::now();
    for chunk in signed.chunks(amb_vm::verify::SIGNATURE_BATCH) {
        let mut batch = ed25519_zebra::batch::Verifier::new();
        for (input, sig) in chunk {
            batch.queue((key, *sig, black_box(input)));
        }
        batch.verify(rand::thread_rng()).expect("valid signatures");
    }
    rate(signed.len(), start.elapsed().as_secs_f64())
}

/// Raw `Event::decode` per second over `events`.
fn decode_rate(events: &[(Cid, Vec<u8>)]) -> f64 {
    let start = Instant::now();
    for (_, bytes) in events {
        black_box(Event::decode(black_box(bytes)).expect("a stored event decodes"));
    }
    rate(events.len(), start.elapsed().as_secs_f64())
}

// ----- replay -----

/// Blocks and manifests, decoded and held in memory.
#[derive(Debug, Default)]
struct MemorySource {
    blocks: HashMap<Cid, Arc<Block>>,
    manifests: HashMap<Cid, Arc<Manifest>>,
}

impl Source for MemorySource {
    fn block(&self, cid: &Cid) -> Option<Arc<Block>> {
        self.blocks.get(cid).cloned()
    }

    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        self.manifests.get(cid).cloned()
    }
}

/// What replay starts from: the source, and the events' bytes in verified order.
struct ReplayInput {
    source: MemorySource,
    program: Cid,
    events: Vec<(Cid, Vec<u8>)>,
}

fn replay_input(program: &Program, recording: &Recording, order: &[Cid]) -> ReplayInput {
    let blocks = program
        .blocks()
        .filter_map(|(cid, bytes)| Some((cid, Arc::new(Block::decode(bytes).ok()?))))
        .collect();
    let manifests = recording
        .recorded
        .log_cids
        .iter()
        .map(|cid| {
            let bytes = recording
                .store
                .get_block(*cid)
                .expect("read")
                .expect("stored");
            (
                *cid,
                Arc::new(Manifest::decode(&bytes).expect("a stored manifest")),
            )
        })
        .collect();
    let mut by_cid = stored_events(recording);
    let events = order
        .iter()
        .map(|cid| (*cid, by_cid.remove(cid).expect("a stored event")))
        .collect();
    ReplayInput {
        source: MemorySource { blocks, manifests },
        program: recording.recorded.program,
        events,
    }
}

impl ReplayInput {
    fn start(&self) -> Replay {
        let manifest = self.source.manifests[&self.program].clone();
        Replay::new(self.program, manifest)
    }

    /// Decodes and applies every event; returns the rate and the replay.
    fn decode_and_apply(&self) -> (f64, Replay) {
        let mut replay = self.start();
        let start = Instant::now();
        for (cid, bytes) in &self.events {
            let event = Event::decode(bytes).expect("a stored event decodes");
            replay
                .apply(*cid, &event, &self.source)
                .expect("a verified event applies");
        }
        let secs = start.elapsed().as_secs_f64();
        (rate(self.events.len(), secs), replay)
    }

    /// Applies events decoded beforehand.
    fn apply_only(&self, decoded: &[Event]) -> f64 {
        let mut replay = self.start();
        let start = Instant::now();
        for ((cid, _), event) in self.events.iter().zip(decoded) {
            replay
                .apply(*cid, event, &self.source)
                .expect("a verified event applies");
        }
        let secs = start.elapsed().as_secs_f64();
        black_box(replay);
        rate(self.events.len(), secs)
    }
}

// ----- the phases -----

/// A line of the results table.
struct Row {
    phase: &'static str,
    timed: &'static str,
    rates: Spread,
    baseline_name: &'static str,
    baseline: Spread,
    ratio: f64,
    target: Option<f64>,
}

impl Row {
    fn new(
        phase: &'static str,
        timed: &'static str,
        baseline_name: &'static str,
        paired: &Paired,
        target: Option<f64>,
    ) -> Row {
        Row {
            phase,
            timed,
            rates: spread(&paired.measured),
            baseline_name,
            baseline: spread(&paired.baseline),
            ratio: paired.ratio(),
            target,
        }
    }

    fn print(&self) {
        let verdict = self.target.map_or("–".to_string(), |t| {
            let met = if self.ratio >= t {
                "met"
            } else {
                "**not met**"
            };
            format!("≥ {t} {met}")
        });
        println!(
            "| {} | {} | {:.0} | {:.0}–{:.0} | {}: {:.0} | {:.3} | {verdict} |",
            self.phase,
            self.timed,
            self.rates.median,
            self.rates.min,
            self.rates.max,
            self.baseline_name,
            self.baseline.median,
            self.ratio,
        );
    }
}

/// Records `runs` times (after a warm-up) against the raw sign rate; keeps the last
/// recording, and notes how the time splits.
fn write_phase(
    program: &Program,
    runs: usize,
    keep: &mut Option<Recording>,
    notes: &mut Vec<String>,
) -> Row {
    eprintln!("write: {runs} timed runs after a warm-up");
    // The warm-up recording gives the baseline's messages.
    let inputs = sample_inputs(&record_fresh(program, false));
    let raw = ed25519_dalek::SigningKey::from_bytes(&SEED);
    sign_rate(&raw, &inputs);
    let mut splits = Vec::new();
    let mut baseline_cpu = Vec::new();
    let paired = timed(
        runs,
        || {
            let (rate, split) = split_time(|| sign_rate(&raw, &inputs));
            baseline_cpu.push(split.on_cpu);
            rate
        },
        || {
            let recording = record_fresh(program, false);
            splits.push(recording.time);
            *keep = Some(recording);
            rate(program.events(), splits[splits.len() - 1].secs)
        },
    );
    let on_cpu: Vec<f64> = splits
        .iter()
        .zip(paired.baseline.iter().zip(&baseline_cpu))
        .map(|(split, (sign, sign_cpu))| {
            rate(program.events(), split.secs * split.on_cpu) / (sign / sign_cpu)
        })
        .collect();
    notes.push(format!(
        "{}; counting only time on the CPU (of both), `record` ÷ `sign` = {:.3} (median)",
        describe_splits("write", &splits),
        spread(&on_cpu).median
    ));
    Row::new(
        "write",
        "`record` (encode, hash, sign, commit)",
        "`sign`",
        &paired,
        Some(0.7),
    )
}

/// Verifies the recorded store `runs` times (after a warm-up) against the raw rates
/// of the validity rule, one signature at a time (the target's baseline) and in
/// batches (a second row); returns the verified order too.
fn verify_phase(
    recording: &Recording,
    runs: usize,
    notes: &mut Vec<String>,
) -> ([Row; 2], Vec<Cid>) {
    eprintln!("verify: {runs} timed runs after a warm-up");
    let raw = ed25519_dalek::SigningKey::from_bytes(&SEED);
    let signed: Vec<_> = sample_inputs(recording)
        .into_iter()
        .map(|input| {
            let sig = ed25519_zebra::Signature::from_bytes(&raw.sign(&input).to_bytes());
            (input, sig)
        })
        .collect();
    let public = ed25519_zebra::VerificationKey::try_from(raw.verifying_key().to_bytes())
        .expect("a public key");
    let mut order = Vec::new();
    let mut splits = Vec::new();
    let mut batch_rates = Vec::new();
    let paired = paired(
        runs,
        || {
            batch_rates.push(batch_verify_rate(&public, &signed));
            verify_rate(&public, &signed)
        },
        || {
            let (verified, split) = split_time(|| {
                amb_vm::verify::verify(&recording.store, recording.recorded.program)
                    .expect("the recorded program verifies")
            });
            assert_eq!(verified.events, recording.recorded.events);
            order = verified.order;
            splits.push(split);
            rate(recording.recorded.events as usize, split.secs)
        },
    );
    notes.push(describe_splits("verify", &splits[1..]));
    let against_batches = Paired {
        baseline: batch_rates[1..].to_vec(),
        measured: paired.measured.clone(),
    };
    let rows = [
        Row::new(
            "verify",
            "`verify` (read, CID, decode, signature, order, replay)",
            "single `verify` (ZIP-215)",
            &paired,
            Some(0.7),
        ),
        Row::new(
            "verify",
            "the same runs",
            "batch `verify` (ZIP-215, 1,024 per batch)",
            &against_batches,
            None,
        ),
    ];
    (rows, order)
}

/// The verified order, by one untimed verification.
fn verified_order(recording: &Recording) -> Vec<Cid> {
    amb_vm::verify::verify(&recording.store, recording.recorded.program)
        .expect("the recorded program verifies")
        .order
}

/// Replays the verified events `runs` times (after a warm-up) against the raw decode
/// rate, with and without decoding; notes the time of `Replay::finish`.
fn replay_phase(
    input: &ReplayInput,
    steps: u64,
    runs: usize,
    notes: &mut Vec<String>,
) -> (Row, Row) {
    eprintln!("replay: {runs} timed runs after a warm-up, with and without decoding");
    let mut finish_secs = Vec::new();
    let full = paired(
        runs,
        || decode_rate(&input.events),
        || {
            let (rate, replay) = input.decode_and_apply();
            assert_eq!(replay.steps(), steps, "the replay takes every step");
            let start = Instant::now();
            replay.finish(&input.source).expect("the replay finishes");
            finish_secs.push(start.elapsed().as_secs_f64());
            rate
        },
    );
    notes.push(format!(
        "`Replay::finish` after the replay (payload checks: final term, compile), not in the rate: median {:.1} ms",
        spread(&finish_secs).median * 1e3
    ));
    let decoded: Vec<Event> = input
        .events
        .iter()
        .map(|(_, bytes)| Event::decode(bytes).expect("a stored event decodes"))
        .collect();
    let apply = paired(
        runs,
        || decode_rate(&input.events),
        || input.apply_only(&decoded),
    );
    (
        Row::new(
            "replay",
            "`Event::decode` + `Replay::apply`",
            "`Event::decode`",
            &full,
            Some(0.5),
        ),
        Row::new(
            "replay",
            "`Replay::apply` alone",
            "`Event::decode`",
            &apply,
            None,
        ),
    )
}

/// Bytes on disk per event of a recording: (size on disk, file length) growth.
fn growth_per_event(recording: &Recording) -> (f64, f64) {
    let events = recording.recorded.events as f64;
    let size = recording.store.size_on_disk().expect("the store's size");
    let len = recording.store.file_len().expect("the store's length");
    (
        (size - recording.size_before) as f64 / events,
        (len - recording.len_before) as f64 / events,
    )
}

/// Where the bytes of a store go, by redb table, per event (from redb's own stats).
/// Consumes the recording: redb opens a file only once, so the store is closed first.
fn table_breakdown(recording: Recording) {
    use redb::{ReadableTableMetadata as _, TableHandle as _};
    let events = recording.recorded.events as f64;
    let Recording { store, _dir, .. } = recording;
    let path = store.path().to_path_buf();
    drop(store);
    let db = redb::Database::open(&path).expect("the store reopens");
    let write = db.begin_write().expect("a transaction");
    let stats = write.stats().expect("database stats");
    write.abort().expect("abort");
    let page = stats.page_size() as f64;
    println!();
    println!(
        "| redb table | entries | pages ÷ event (bytes) | stored key+value bytes ÷ event | fragmented ÷ event |"
    );
    println!("|---|---:|---:|---:|---:|");
    let read = db.begin_read().expect("a read transaction");
    let mut used = 0;
    for handle in read.list_tables().expect("tables") {
        let table = read.open_untyped_table(handle.clone()).expect("a table");
        let t = table.stats().expect("table stats");
        let pages = t.leaf_pages() + t.branch_pages();
        used += pages;
        println!(
            "| `{}` | {} | {:.1} | {:.1} | {:.1} |",
            handle.name(),
            table.len().expect("length"),
            pages as f64 * page / events,
            t.stored_bytes() as f64 / events,
            t.fragmented_bytes() as f64 / events,
        );
    }
    println!(
        "| all pages allocated (tables, redb metadata, freed pages kept) | – | {:.1} | {:.1} | {:.1} |",
        stats.allocated_pages() as f64 * page / events,
        stats.stored_bytes() as f64 / events,
        stats.fragmented_bytes() as f64 / events,
    );
    println!(
        "\n{:.1} bytes per event are pages allocated to no table (redb's own trees, and pages freed by copy-on-write that the file keeps)",
        stats.allocated_pages().saturating_sub(used) as f64 * page / events
    );
}

fn size_phase(program: &Program, recording: &Recording) {
    eprintln!("size: one more recording, blocks stored first");
    let (all, all_len) = growth_per_event(recording);
    let (events_only, events_len) = growth_per_event(&record_fresh(program, true));
    let encoded: usize = stored_events(recording).values().map(Vec::len).sum();
    let blocks: usize = program.blocks().map(|(_, b)| b.len()).sum();
    let events = program.events() as f64;
    let verdict = if all <= 300.0 { "met" } else { "**not met**" };
    println!();
    println!(
        "| bytes per event | on disk | file length | encoded events | blocks (raw) | target |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    println!(
        "| everything recorded (blocks, manifests, events) | **{all:.1}** | {all_len:.1} | {:.1} | {:.1} | ≤ 300 {verdict} |",
        encoded as f64 / events,
        blocks as f64 / events,
    );
    println!(
        "| blocks stored before (manifests, events) | {events_only:.1} | {events_len:.1} | {:.1} | – | – |",
        encoded as f64 / events,
    );
}

// ----- the report -----

fn describe(program: &Program, runs: usize) {
    let generated = &program.generated;
    let plan = spread(&program.plan_secs);
    let events = program.events();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let date = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("## Signed events: write, verify, replay, bytes on disk\n");
    println!(
        "{runs} timed runs per phase after one warm-up, median reported; each run times its \
         baseline just before the code under test; {cpus} CPU(s) available to this process \
         (pin with `taskset -c 1`); Unix time {date}.\n"
    );
    println!(
        "program: confluent, {} copies ({} nested), **{} steps, {} events** in {} logs ({:.2} events per step), {} blocks",
        generated.copies,
        generated.nested,
        program.plan.steps,
        events,
        program.plan.logs.len(),
        events as f64 / program.plan.steps as f64,
        program.compiled.blocks.len(),
    );
    println!(
        "setup, not in any phase: compile {:.1} ms; **plan** (engine run + log plan) median {:.1} ms ({:.1}–{:.1}) = {:.0} steps/s, {:.0} events/s\n",
        program.compile_secs * 1e3,
        plan.median * 1e3,
        plan.min * 1e3,
        plan.max * 1e3,
        program.plan.steps as f64 / plan.median,
        events as f64 / plan.median,
    );
}

fn print_sample(recording: &Recording) {
    let sizes: Vec<f64> = sample_inputs(recording)
        .iter()
        .map(|i| i.len() as f64)
        .collect();
    let s = spread(&sizes);
    let mean = sizes.iter().sum::<f64>() / sizes.len() as f64;
    println!(
        "signing inputs (the signature baselines' messages, {} sampled): mean {mean:.0} bytes, median {:.0}, {:.0}–{:.0}\n",
        sizes.len(),
        s.median,
        s.min,
        s.max
    );
}

fn main() {
    let knobs = Knobs::from_env();
    let program = prepare(knobs.steps, knobs.runs);
    describe(&program, knobs.runs);
    let mut recording = None;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if knobs.wants("write") {
        rows.push(write_phase(
            &program,
            knobs.runs,
            &mut recording,
            &mut notes,
        ));
    }
    let recording = recording.unwrap_or_else(|| record_fresh(&program, false));
    print_sample(&recording);
    let mut order = None;
    if knobs.wants("verify") {
        let (verify_rows, verified) = verify_phase(&recording, knobs.runs, &mut notes);
        rows.extend(verify_rows);
        order = Some(verified);
    }
    if knobs.wants("replay") {
        let order = order.unwrap_or_else(|| verified_order(&recording));
        let input = replay_input(&program, &recording, &order);
        let (full, apply) = replay_phase(&input, program.plan.steps, knobs.runs, &mut notes);
        rows.extend([full, apply]);
    }
    if !rows.is_empty() {
        println!(
            "| phase | timed | median events/s | min–max | baseline: median ops/s | ÷ baseline | target |"
        );
        println!("|---|---|---:|---:|---:|---:|---|");
        rows.iter().for_each(Row::print);
        println!();
    }
    for note in notes {
        println!("* {note}");
    }
    if knobs.wants("size") {
        size_phase(&program, &recording);
        table_breakdown(recording);
    }
}
