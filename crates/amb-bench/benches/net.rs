//! The network: event propagation latency, sustained verified-event throughput,
//! delegated call round trips, and a late joiner's sync.
//!
//! ```text
//! taskset -c 1 cargo bench -p amb-bench --bench net
//! # knobs: AMB_BENCH_RUNS=5 AMB_BENCH_JOIN_RUNS=3 AMB_BENCH_EVENTS=100000
//! #        AMB_BENCH_LATENCY_EVENTS=2000 AMB_BENCH_PACE_US=10000 AMB_BENCH_WINDOW=4
//! #        AMB_BENCH_CALLS=20 AMB_BENCH_PHASES=latency,throughput,join,delegated
//! ```
//!
//! Every node runs in this process (one tokio runtime with two worker threads, plus
//! each node's intake thread) on `127.0.0.1` port 0, with mDNS off, a 100 ms
//! gossipsub heartbeat, static peers, a fresh `SigningKey::generate()` and a store in
//! a temporary directory of its own. Programs are the confluent programs of
//! `amb_bench::confluent` (copies of the corpus's string-concat monoid, read in place
//! from `../shared/corpus` or `AMB_CORPUS`), planned as `amb run` plans them, of the
//! number of copies whose event count is closest to the one asked for.
//!
//! Phases (`AMB_BENCH_PHASES`, default all):
//!
//! * `latency`: per run, two new nodes A and B. A stores a program of about
//!   `AMB_BENCH_LATENCY_EVENTS` (default 2,000) events (`store_program`), holds and
//!   follows it; B `fetch`es it while A has no event yet (so B holds it and follows
//!   its topic); once A's `topic_peers` lists B, A records the run into its store
//!   (`record_events`, untimed) and publishes the events in plan order, **one event
//!   per gossip message** (`publish_events` of a single event), one every
//!   `AMB_BENCH_PACE_US` µs (default 10,000). Latency of an event: from just before
//!   A's `publish_events` call to the moment B's `NodeEvent::Stored` naming it reaches
//!   a listener task on B (B checked and replayed it, then committed it). p50, p99
//!   and max per run; the table gives the median over runs. Before each run, the
//!   cost of a durable commit (of one block, and of nothing) is measured in a new
//!   store, since B's intake makes two per gossip message.
//! * `throughput` and `join` share one holder node A, on which a program of about
//!   `AMB_BENCH_EVENTS` (default 100,000) events is recorded once (`record`), then
//!   held. Each run times, in this order:
//!   * the baseline: `amb_vm::verify::verify` of A's store (events/s; one untimed
//!     warm-up before the first run);
//!   * `throughput` (`AMB_BENCH_RUNS`, default 5 runs): a new node B whose store
//!     holds the program's manifest and bytecode and no event (`store_program`
//!     before it starts: taking them with `sync_from` costs tens of seconds of
//!     per-block commits, see `join`) holds the program and follows its topic; once
//!     A sees B on the topic, A publishes every event in full gossip batches
//!     (`publish_events` over chunks of 512 events, in plan order). With
//!     `AMB_BENCH_WINDOW` = W > 0 (default 4), A publishes batch *i* only once B has
//!     stored the events of batches 0 to *i − W* (at most W batches published and
//!     not yet stored); 0 publishes everything at once. Throughput = events stored
//!     by B ÷ wall time from the first publication to B's last `Stored`; the ratio
//!     is to the same run's verify rate (target ≥ 0.5). The share of the wall time
//!     the process spent on a CPU (`/proc/self/stat`) is given for both;
//!   * `join` (`AMB_BENCH_JOIN_RUNS`, default 3 runs: each takes tens of seconds):
//!     a new node C connects to A, then `amb_net::fetch(&c, program)` is timed;
//!     `status(program).events` must then equal the event count. Before it, the
//!     cost of a durable one-block commit is measured in a new store, since `fetch`
//!     makes one per block it stores.
//! * `delegated`: two nodes A and B; `AMB_BENCH_CALLS` (default 20) times, after one
//!   untimed warm-up, A calls `deploy_delegated` on the corpus monoid with
//!   `("string_concat", B)`, and the time until A's walk is `done`
//!   (`NodeHandle::execution`, asked each time `walk_changes` says a walk moved) is taken; also the time
//!   until `deploy_delegated` returns (B has fetched the program and agreed). The
//!   hosts' plan (`delegation::prepare`, the plan both hosts walk) gives the events
//!   each host writes and how often control passes between them; A's store is
//!   checked to hold the same split by creator.
//!
//! Every wait has a timeout and panics saying what it waited for. Without `--bench`
//! (as `cargo test --all-targets` runs it) it makes a quick run: programs of about
//! 2,000 and 200 events, one run each, 2 calls.

/// The `amb` binary's allocator, so that the bench measures what `amb node` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use amb_bench::{
    confluent::{MONOID_FILE, MONOID_STEPS, confluent_program, read_monoid},
    corpus_dir, median,
};
use amb_bytecode::{BlockLimits, Cid, CompiledProgram, Opcode};
use amb_engine::Limits;
use amb_log::{Event, Manifest, SigningKey, Store};
use amb_net::{
    NodeConfig, NodeEvent, NodeHandle,
    deploy::publish_events,
    wire::{Deployment, MAX_BATCH_EVENTS, SyncRequest},
};
use amb_vm::plan::Plan;
use serde_bytes::ByteBuf;
use tempfile::TempDir;
use tokio::{
    sync::{Notify, broadcast::error::RecvError},
    task::block_in_place,
};

/// The longest any single wait may take (connections, subscriptions, a fetch, a
/// delegated call): generous for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

/// How long B may go without storing anything before a transfer is declared stuck.
const STALL: Duration = Duration::from_secs(30);

// ----- knobs and statistics -----

struct Knobs {
    runs: usize,
    join_runs: usize,
    events: u64,
    latency_events: u64,
    pace: Duration,
    calls: usize,
    window: usize,
    phases: Vec<String>,
}

impl Knobs {
    fn from_env() -> Knobs {
        let bench = std::env::args().any(|a| a == "--bench");
        let number = |name: &str, bench_default: u64, quick_default: u64| -> u64 {
            std::env::var(name).ok().map_or(
                if bench { bench_default } else { quick_default },
                |s| {
                    s.trim()
                        .parse()
                        .unwrap_or_else(|_| panic!("{name}: a number, not `{s}`"))
                },
            )
        };
        let phases = std::env::var("AMB_BENCH_PHASES")
            .unwrap_or_else(|_| "latency,throughput,join,delegated".into())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        Knobs {
            runs: number("AMB_BENCH_RUNS", 5, 1).max(1) as usize,
            join_runs: number("AMB_BENCH_JOIN_RUNS", 3, 1) as usize,
            events: number("AMB_BENCH_EVENTS", 100_000, 2_000).max(100),
            latency_events: number("AMB_BENCH_LATENCY_EVENTS", 2_000, 200).max(100),
            pace: Duration::from_micros(number("AMB_BENCH_PACE_US", 10_000, 10_000)),
            calls: number("AMB_BENCH_CALLS", 20, 2).max(1) as usize,
            window: number("AMB_BENCH_WINDOW", 4, 4) as usize,
            phases,
        }
    }

    fn wants(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

/// Nearest-rank percentile `p` (0–100) of some samples.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn min_max(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// `1234567` as `1,234,567`.
fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.round());
    let (sign, digits) = digits.split_at(usize::from(digits.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Seconds this process (every node, every thread) has spent on a CPU, user and
/// system, from `/proc/self/stat` (Linux, 100 ticks a second; 0 elsewhere).
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces) start at `state`;
    // `utime` and `stime` are the 12th and 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

// ----- nodes -----

/// A node of this process, with its store in a temporary directory of its own.
struct Node {
    handle: NodeHandle,
    /// Its listen address with its peer id.
    address: String,
    // Dropped after the node is told to stop (see `Drop`).
    _dir: TempDir,
}

impl Node {
    /// A new node dialing `peers`; returns once it and each peer see the connection.
    async fn start(peers: &[&Node]) -> Node {
        Node::start_with(peers, |_| {}).await
    }

    /// [`Node::start`], with `prepare` run on its new store before the node starts.
    async fn start_with(peers: &[&Node], prepare: impl FnOnce(&Store)) -> Node {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(Store::create(dir.path().join("store.redb")).expect("a new store"));
        prepare(&store);
        let config = NodeConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a listen address")],
            peers: peers
                .iter()
                .map(|p| p.address.parse().expect("a peer address"))
                .collect(),
            mdns: false,
            heartbeat: Duration::from_millis(100),
            ..NodeConfig::default()
        };
        let (handle, ready) = amb_net::start(config, SigningKey::generate(), store)
            .await
            .expect("the node starts");
        let listen = ready.listen.first().expect("the node listens");
        let node = Node {
            address: format!("{listen}/p2p/{}", handle.peer_id()),
            handle,
            _dir: dir,
        };
        for peer in peers {
            node.wait_connected(peer).await;
            peer.wait_connected(&node).await;
        }
        node
    }

    async fn wait_connected(&self, other: &Node) {
        let want = other.handle.peer_id().to_string();
        let handle = &self.handle;
        wait_until("a connection between two nodes", WAIT, || {
            let want = want.clone();
            async move {
                let info = handle.info().await.expect("node info");
                info.peers.iter().any(|p| p.peer_id == want).then_some(())
            }
        })
        .await;
    }

    /// Waits until `other` is subscribed to `program`'s topic, as this node sees it.
    async fn wait_topic_peer(&self, program: Cid, other: &Node) {
        let want = other.handle.peer_id();
        let handle = &self.handle;
        wait_until(
            "the peer's subscription to the topic",
            WAIT,
            || async move {
                let peers = handle.topic_peers(program).await.expect("topic peers");
                peers.contains(&want).then_some(())
            },
        )
        .await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Polls `probe` every millisecond until it gives a value; panics naming `what` past
/// `timeout`.
async fn wait_until<T, Fut: Future<Output = Option<T>>>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ----- watching a node store events -----

/// What a listener on a node's events saw of one program.
#[derive(Default)]
struct Arrivals {
    stored: AtomicUsize,
    /// Events the listener missed (the broadcast channel lagged).
    lagged: AtomicU64,
    seen: Mutex<Seen>,
    notify: Notify,
}

#[derive(Default)]
struct Seen {
    /// When the last event was stored.
    last: Option<Instant>,
    /// When each event was stored, by CID (only when asked for).
    at: HashMap<String, Instant>,
}

/// A task that listens to a node's `Stored` events of one program.
struct Listener {
    arrivals: Arc<Arrivals>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    fn start(node: &Node, program: Cid, keep_times: bool) -> Listener {
        let mut events = node.handle.subscribe_events();
        let arrivals = Arc::new(Arrivals::default());
        let out = Arc::clone(&arrivals);
        let program = program.to_string();
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(NodeEvent::Stored(summaries)) => {
                        let now = Instant::now();
                        let mut count = 0;
                        {
                            let mut seen = out.seen.lock().expect("the listener's lock");
                            for s in summaries.iter().filter(|s| s.program == program) {
                                count += 1;
                                if keep_times {
                                    seen.at.entry(s.cid.clone()).or_insert(now);
                                }
                            }
                            if count > 0 {
                                seen.last = Some(now);
                            }
                        }
                        if count > 0 {
                            out.stored.fetch_add(count, Ordering::SeqCst);
                            out.notify.notify_waiters();
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        out.lagged.fetch_add(n, Ordering::SeqCst);
                        out.notify.notify_waiters();
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        Listener { arrivals, task }
    }

    fn stored(&self) -> usize {
        self.arrivals.stored.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` events are stored; panics if the listener lagged or
    /// nothing was stored for [`STALL`].
    async fn wait_stored(&self, n: usize, what: &str) {
        let mut count = self.stored();
        let mut moved = Instant::now();
        loop {
            let notified = self.arrivals.notify.notified();
            let now_count = self.stored();
            let lagged = self.arrivals.lagged.load(Ordering::SeqCst);
            assert!(
                lagged == 0,
                "{what}: the listener fell {lagged} node events behind"
            );
            if now_count >= n {
                return;
            }
            if now_count != count {
                count = now_count;
                moved = Instant::now();
            } else if moved.elapsed() > STALL {
                panic!(
                    "{what}: {now_count} of {n} events stored, and none for {STALL:?} (gossip messages lost?)"
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ----- programs -----

/// A confluent program, compiled and planned.
struct Planned {
    compiled: CompiledProgram,
    plan: Plan,
    copies: usize,
}

impl Planned {
    fn events(&self) -> usize {
        self.plan.events.len()
    }
}

fn plan_copies(monoid: &str, copies: u64) -> Planned {
    let generated = confluent_program(monoid, copies * MONOID_STEPS);
    let ast = amb_syntax::parse(&generated.text).expect("the generated program parses");
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default())
        .expect("the generated program compiles");
    let plan = amb_vm::plan::plan(&ast, &compiled, &map, Limits::default())
        .expect("the program runs within the limits");
    assert_eq!(plan.steps, generated.steps, "the program is confluent");
    Planned {
        compiled,
        plan,
        copies: generated.copies,
    }
}

/// The confluent program whose event count is closest to `events` (events per copy
/// measured on 100 copies).
fn plan_about(monoid: &str, events: u64) -> Planned {
    let sample = plan_copies(monoid, 100);
    let per_copy = sample.events() as f64 / 100.0;
    let copies = ((events as f64 / per_copy).round() as u64).max(1);
    plan_copies(monoid, copies)
}

/// A new program manifest for `planned`, listing and signed by `key`.
fn manifest_for(planned: &Planned, key: &SigningKey, name: &str) -> Manifest {
    let time = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Manifest::new_root(
        planned.compiled.root,
        Some(name.into()),
        vec![key.public_key()],
        key,
        Manifest::random_nonce(),
        time,
    )
}

// ----- 1. propagation latency -----

/// One latency run: each event's latency, in ms, in plan order.
async fn latency_run(planned: &Planned, pace: Duration) -> Vec<f64> {
    let a = Node::start(&[]).await;
    let b = Node::start(&[&a]).await;
    let key = a.handle.key().clone();
    let manifest = manifest_for(planned, &key, "net-latency");
    let store = Arc::clone(a.handle.store());
    let program = amb_vm::record::store_program(&planned.compiled, &manifest, &store)
        .expect("A stores the program");
    a.handle.hold(program).await.expect("A holds the program");
    a.handle.follow(program).expect("A follows the topic");
    // B takes the program while A has no event of it: B holds it and follows.
    let fetched = tokio::time::timeout(WAIT, amb_net::fetch(&b.handle, program))
        .await
        .expect("B's fetch of the program timed out")
        .expect("B fetches the program");
    assert_eq!(fetched.stored, 0, "A had no event to give");
    a.wait_topic_peer(program, &b).await;

    let recorded = block_in_place(|| {
        amb_vm::record::record_events(&planned.plan, &manifest, &key, &store, &())
    })
    .expect("A records the run");
    let cids = recorded.event_cids;
    let listener = Listener::start(&b, program, true);
    let mut published = Vec::with_capacity(cids.len());
    let start = tokio::time::Instant::now();
    for (i, cid) in cids.iter().enumerate() {
        tokio::time::sleep_until(start + pace * i as u32).await;
        published.push(Instant::now());
        publish_events(&a.handle, program, std::slice::from_ref(cid))
            .await
            .expect("A publishes an event");
    }
    listener
        .wait_stored(cids.len(), "B storing the paced events")
        .await;
    let seen = listener.arrivals.seen.lock().expect("the listener's lock");
    cids.iter()
        .zip(&published)
        .map(|(cid, sent)| {
            let at = seen
                .at
                .get(&cid.to_string())
                .unwrap_or_else(|| panic!("B never reported event {cid}"));
            ms(at.saturating_duration_since(*sent))
        })
        .collect()
}

struct LatencyResult {
    events: usize,
    p50: Vec<f64>,
    p99: Vec<f64>,
    max: Vec<f64>,
    /// Seconds of a durable commit of one block, and of an empty one, per run.
    commits: Vec<(f64, f64)>,
}

fn latency_phase(rt: &tokio::runtime::Runtime, monoid: &str, knobs: &Knobs) -> LatencyResult {
    let planned = plan_about(monoid, knobs.latency_events);
    println!(
        "latency: {} copies, {} events, one per message every {} µs, {} runs",
        planned.copies,
        planned.events(),
        knobs.pace.as_micros(),
        knobs.runs
    );
    let mut result = LatencyResult {
        events: planned.events(),
        p50: Vec::new(),
        p99: Vec::new(),
        max: Vec::new(),
        commits: Vec::new(),
    };
    let sample = sample_blocks(&planned.compiled, 100);
    for run in 0..knobs.runs {
        result.commits.push(commit_secs(&sample));
        let latencies = rt.block_on(latency_run(&planned, knobs.pace));
        let (p50, p99, max) = (
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            min_max(&latencies).1,
        );
        println!("  run {run}: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms");
        result.p50.push(p50);
        result.p99.push(p99);
        result.max.push(max);
    }
    result
}

// ----- 2. throughput, and 4. the late joiner -----

/// The holder: a node with a large program recorded in its store, held.
struct Holder {
    node: Node,
    program: Cid,
    manifest: Manifest,
    cids: Vec<Cid>,
}

async fn holder(planned: &Planned) -> Holder {
    let node = Node::start(&[]).await;
    let key = node.handle.key().clone();
    let manifest = manifest_for(planned, &key, "net-throughput");
    let store = Arc::clone(node.handle.store());
    let recorded = block_in_place(|| {
        amb_vm::record::record(&planned.plan, &planned.compiled, &manifest, &key, &store)
    })
    .expect("A records the program");
    let program = recorded.program;
    node.handle
        .hold(program)
        .await
        .expect("A holds the program");
    node.handle.mark_finished(program);
    node.handle.follow(program).expect("A follows the topic");
    Holder {
        node,
        program,
        manifest,
        cids: recorded.event_cids,
    }
}

/// The single-node baseline: `verify` of the holder's store, events/s.
/// The share of its wall time the process spent on a CPU comes with it.
fn verify_rate(holder: &Holder) -> (f64, f64) {
    let cpu = process_cpu_secs();
    let start = Instant::now();
    let verified =
        amb_vm::verify::verify(holder.node.handle.store(), holder.program).expect("A verifies");
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu;
    assert_eq!(verified.events as usize, holder.cids.len());
    (verified.events as f64 / secs, cpu / secs)
}

/// One throughput run: events stored by a new follower per second, and the share
/// of that time this process spent on a CPU.
async fn throughput_run(holder: &Holder, compiled: &CompiledProgram, window: usize) -> (f64, f64) {
    let a = &holder.node;
    let program = holder.program;
    // B starts with the program's manifest and bytecode in its store, and no event
    // (taking them from A with `sync_from` and no heads costs tens of seconds here,
    // one durable commit per block: see the join phase), holds it and follows the
    // topic.
    let b = Node::start_with(&[a], |store| {
        amb_vm::record::store_program(compiled, &holder.manifest, store)
            .expect("B stores the program's blocks");
    })
    .await;
    b.handle.hold(program).await.expect("B holds the program");
    assert_eq!(
        b.handle.status(program).await.expect("B's status").events,
        0
    );
    b.handle.follow(program).expect("B follows the topic");
    a.wait_topic_peer(program, &b).await;

    let listener = Listener::start(&b, program, false);
    let total = holder.cids.len();
    let cpu = process_cpu_secs();
    let start = Instant::now();
    for (i, chunk) in holder.cids.chunks(MAX_BATCH_EVENTS).enumerate() {
        if window > 0 && i >= window {
            // At most `window` batches published and not yet stored by B.
            listener
                .wait_stored(
                    (i + 1 - window) * MAX_BATCH_EVENTS,
                    "B catching up with the window",
                )
                .await;
        }
        publish_events(&a.handle, program, chunk)
            .await
            .expect("A publishes a batch");
    }
    listener.wait_stored(total, "B storing every event").await;
    let cpu = process_cpu_secs() - cpu;
    let wall = start.elapsed().as_secs_f64();
    let last = listener
        .arrivals
        .seen
        .lock()
        .expect("the listener's lock")
        .last
        .expect("B stored events");
    let secs = last.duration_since(start).as_secs_f64();
    let status = b.handle.status(program).await.expect("B's status");
    assert_eq!(status.events, total, "B applied every event once");
    assert!(status.complete, "B holds the complete run");
    let info = b.handle.info().await.expect("B's info");
    assert!(info.refused.is_empty(), "B refused: {:?}", info.refused);
    (total as f64 / secs, cpu / wall)
}

/// Mean seconds of one durable commit in a new store: of one block
/// (`Store::put_block`, as `fetch` stores each block it receives), and of no block
/// at all (`put_blocks` of nothing, as the intake does for a gossip batch without
/// blocks before it writes the batch's events); `blocks.len()` of each.
fn commit_secs(blocks: &[(Cid, Vec<u8>)]) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::create(dir.path().join("store.redb")).expect("a new store");
    let start = Instant::now();
    for (cid, bytes) in blocks {
        store.put_block(*cid, bytes).expect("a block stored");
    }
    let one = start.elapsed().as_secs_f64() / blocks.len() as f64;
    let start = Instant::now();
    for _ in blocks {
        store
            .put_blocks(std::iter::empty())
            .expect("nothing stored");
    }
    let empty = start.elapsed().as_secs_f64() / blocks.len() as f64;
    (one, empty)
}

/// Up to `n` of a program's bytecode blocks.
fn sample_blocks(compiled: &CompiledProgram, n: usize) -> Vec<(Cid, Vec<u8>)> {
    compiled
        .blocks
        .iter()
        .take(n)
        .map(|(c, b)| (*c, b.clone()))
        .collect()
}

/// One late-joiner run: seconds of `fetch` by a new node connected to the holder,
/// and seconds this process spent on a CPU meanwhile.
async fn join_run(holder: &Holder) -> (f64, f64) {
    let c = Node::start(&[&holder.node]).await;
    let cpu = process_cpu_secs();
    let start = Instant::now();
    let fetched = tokio::time::timeout(WAIT * 5, amb_net::fetch(&c.handle, holder.program))
        .await
        .expect("C's fetch of the large program timed out")
        .expect("C fetches the program");
    let secs = start.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu;
    assert_eq!(fetched.stored, holder.cids.len());
    let status = c.handle.status(holder.program).await.expect("C's status");
    assert_eq!(status.events, holder.cids.len(), "C applied every event");
    assert!(status.complete, "C holds the complete run");
    (secs, cpu)
}

#[derive(Default)]
struct BigResult {
    events: usize,
    logs: usize,
    steps: u64,
    /// Blocks a late joiner stores one by one: the program manifest, its bytecode
    /// blocks, the slice manifests.
    blocks: usize,
    verify: Vec<f64>,
    /// Share of each verify's wall time on a CPU.
    verify_cpu: Vec<f64>,
    throughput: Vec<f64>,
    /// Share of each throughput run's wall time on a CPU (both nodes).
    throughput_cpu: Vec<f64>,
    join_secs: Vec<f64>,
    /// Seconds on a CPU during each join's fetch (both nodes).
    join_cpu: Vec<f64>,
    /// Seconds of one block's durable commit, one per join run.
    commit_secs: Vec<f64>,
}

impl BigResult {
    fn ratios(&self, of: &[f64]) -> Vec<f64> {
        of.iter().zip(&self.verify).map(|(m, b)| m / b).collect()
    }
}

fn big_phase(rt: &tokio::runtime::Runtime, monoid: &str, knobs: &Knobs) -> BigResult {
    let planned = plan_about(monoid, knobs.events);
    println!(
        "throughput/join: {} copies, {} steps, {} events in {} logs, {} runs, window {} batches of {}",
        planned.copies,
        planned.plan.steps,
        planned.events(),
        planned.plan.logs.len(),
        knobs.runs,
        knobs.window,
        MAX_BATCH_EVENTS
    );
    let holder = rt.block_on(holder(&planned));
    let mut result = BigResult {
        events: planned.events(),
        logs: planned.plan.logs.len(),
        steps: planned.plan.steps,
        blocks: 1 + planned.compiled.blocks.len() + (planned.plan.logs.len() - 1),
        ..BigResult::default()
    };
    let sample = sample_blocks(&planned.compiled, 100);
    let _ = verify_rate(&holder); // warm-up
    for run in 0..knobs.runs.max(knobs.join_runs) {
        let (verify, verify_cpu) = verify_rate(&holder);
        result.verify.push(verify);
        result.verify_cpu.push(verify_cpu);
        let mut line = format!("  run {run}: verify {} events/s", thousands(verify));
        if knobs.wants("throughput") && run < knobs.runs {
            let (rate, cpu) = rt.block_on(throughput_run(&holder, &planned.compiled, knobs.window));
            line += &format!(
                ", two-node {} events/s ({:.3}; on a CPU {:.0} %)",
                thousands(rate),
                rate / verify,
                cpu * 100.0
            );
            result.throughput.push(rate);
            result.throughput_cpu.push(cpu);
        }
        if knobs.wants("join") && run < knobs.join_runs {
            let (commit, _) = commit_secs(&sample);
            let (secs, cpu) = rt.block_on(join_run(&holder));
            line += &format!(
                ", join {secs:.2} s ({} events/s; on a CPU {cpu:.1} s; one block's commit {:.2} ms)",
                thousands(result.events as f64 / secs),
                commit * 1e3
            );
            result.join_secs.push(secs);
            result.join_cpu.push(cpu);
            result.commit_secs.push(commit);
        }
        println!("{line}");
    }
    rt.block_on(async move { drop(holder) });
    result
}

// ----- 3. delegated calls -----

struct DelegatedResult {
    /// Request-response round trips A → B on the same connection (a `Heads`
    /// request for a program B does not know), the loopback baseline.
    round_trip_ms: Vec<f64>,
    granted_ms: Vec<f64>,
    done_ms: Vec<f64>,
    events: usize,
    by_writer: [usize; 2],
    passes: usize,
    cross_steps: usize,
}

/// Events per writer, writer changes along the plan, and cross-host steps.
fn control(plan: &Plan) -> ([usize; 2], usize, usize) {
    let mut by_writer = [0; 2];
    for e in &plan.events {
        by_writer[e.writer] += 1;
    }
    let passes = plan
        .events
        .windows(2)
        .filter(|w| w[0].writer != w[1].writer)
        .count();
    let cross = plan
        .events
        .windows(2)
        .enumerate()
        .filter(|(i, w)| {
            matches!(w[0].opcode, Opcode::In | Opcode::Out | Opcode::OpenCo)
                && amb_vm::verify::is_second_half(w[1].opcode)
                && w[1].refs.contains(i)
                && w[0].writer != w[1].writer
        })
        .count();
    (by_writer, passes, cross)
}

async fn delegated_calls(source: &str, calls: usize) -> DelegatedResult {
    let a = Node::start(&[]).await;
    let b = Node::start(&[&a]).await;
    let b_peer = b.handle.peer_id();
    let mut result = DelegatedResult {
        round_trip_ms: Vec::new(),
        granted_ms: Vec::new(),
        done_ms: Vec::new(),
        events: 0,
        by_writer: [0; 2],
        passes: 0,
        cross_steps: 0,
    };
    for i in 0..=calls {
        let program = Cid::of(format!("no such program {i}").as_bytes());
        let start = Instant::now();
        a.handle
            .request(b_peer, SyncRequest::Heads { program })
            .await
            .expect("B answers a Heads request");
        if i > 0 {
            result.round_trip_ms.push(ms(start.elapsed()));
        }
    }
    for call in 0..=calls {
        // Told of every move of A's walks: no polling that would load A's intake.
        let mut changes = a.handle.walk_changes();
        let start = Instant::now();
        let deployed = tokio::time::timeout(
            WAIT,
            amb_net::deploy::deploy_delegated(
                &a.handle,
                source.to_string(),
                Some(format!("delegated-{call}")),
                Limits::default(),
                vec![("string_concat".into(), b_peer)],
            ),
        )
        .await
        .expect("deploy_delegated timed out")
        .expect("A deploys with B hosting string_concat");
        let granted = start.elapsed();
        let program = deployed.program;
        // B walks its order, not the program: A's walk at its end is the run over.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = a.handle.execution(program).await.expect("execution status");
            if let Some(failed) = status.as_ref().and_then(|s| s.failed.as_ref()) {
                panic!("A's walk failed: {failed}");
            }
            if status.is_some_and(|s| s.done) {
                break;
            }
            tokio::time::timeout_at(deadline, changes.changed())
                .await
                .expect("timed out waiting for A's walk of the delegated run")
                .expect("A runs");
        }
        if call > 0 {
            result.done_ms.push(ms(start.elapsed()));
            result.granted_ms.push(ms(granted));
        }
        if call == 1 {
            // The plan both hosts walk, and A's store's split by creator.
            let deployment = Deployment {
                program,
                hosts: [&a, &b]
                    .iter()
                    .map(|n| ByteBuf::from(n.handle.key().public_key().to_bytes().to_vec()))
                    .collect(),
                delegated: vec![("string_concat".into(), 1)],
                max_steps: Limits::default().max_steps,
            };
            let (walk, _) = amb_net::delegation::prepare(
                a.handle.store(),
                &deployment,
                &a.handle.key().public_key(),
            )
            .expect("the hosts' plan");
            let (by_writer, passes, cross) = control(walk.plan());
            result.events = walk.plan().events.len();
            result.by_writer = by_writer;
            result.passes = passes;
            result.cross_steps = cross;
            let store = a.handle.store();
            let mut by_creator = [0; 2];
            for log in store.program_logs(program).expect("the program's logs") {
                for stored in store.log_events(log).expect("a log's events") {
                    let stored = stored.expect("a stored event");
                    let event = Event::decode(&stored.bytes).expect("a stored event decodes");
                    let writer = usize::from(*event.creator() != a.handle.key().public_key());
                    by_creator[writer] += 1;
                }
            }
            assert_eq!(by_creator, by_writer, "A's store splits as the plan does");
        }
    }
    result
}

// ----- main -----

fn main() {
    // `RUST_LOG=amb_net::timing=trace` times the nodes' jobs, gossip and requests.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_writer(std::io::stderr)
            .init();
    }
    let knobs = Knobs::from_env();
    let monoid = read_monoid(&corpus_dir()).expect("the corpus monoid is readable");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();

    let latency = knobs
        .wants("latency")
        .then(|| latency_phase(&rt, &monoid, &knobs));
    let big =
        (knobs.wants("throughput") || knobs.wants("join")).then(|| big_phase(&rt, &monoid, &knobs));
    let delegated = knobs.wants("delegated").then(|| {
        let source = std::fs::read_to_string(corpus_dir().join(MONOID_FILE))
            .expect("the corpus monoid is readable");
        println!("delegated: {} calls after a warm-up", knobs.calls);
        rt.block_on(delegated_calls(&source, knobs.calls))
    });
    println!();

    if let Some(l) = &latency {
        println!(
            "Propagation, A → B, one event per gossip message, {} events per run, one every {} µs (median of {} runs; min–max of the runs):",
            thousands(l.events as f64),
            knobs.pace.as_micros(),
            knobs.runs
        );
        println!("| p50 ms | p99 ms | max ms |");
        println!("|---:|---:|---:|");
        let cell = |v: &[f64]| {
            let (lo, hi) = min_max(v);
            format!("{:.2} ({lo:.2}–{hi:.2})", median(v.to_vec()))
        };
        println!("| {} | {} | {} |", cell(&l.p50), cell(&l.p99), cell(&l.max));
        println!();
        let one = median(l.commits.iter().map(|c| c.0 * 1e3).collect());
        let empty = median(l.commits.iter().map(|c| c.1 * 1e3).collect());
        println!(
            "* B's intake makes two durable commits per gossip message (the batch's blocks, even when there are none, then its events); in a new store of this machine, in the same runs, a commit of one block took {one:.2} ms and an empty commit {empty:.2} ms (medians)."
        );
        println!();
    }
    if let Some(r) = &big {
        println!(
            "Program of {} events ({} steps, {} logs); medians of {} runs, min–max; ratios are medians of per-run ratios:",
            thousands(r.events as f64),
            thousands(r.steps as f64),
            thousands(r.logs as f64),
            knobs.runs
        );
        println!("| measure | events/s | min–max | ÷ verify (same run) | target |");
        println!("|---|---:|---:|---:|---|");
        let (lo, hi) = min_max(&r.verify);
        println!(
            "| baseline: `verify` on A | {} | {}–{} | 1 | – |",
            thousands(median(r.verify.clone())),
            thousands(lo),
            thousands(hi)
        );
        if !r.throughput.is_empty() {
            let ratio = median(r.ratios(&r.throughput));
            let (lo, hi) = min_max(&r.throughput);
            let verdict = if ratio >= 0.5 { "met" } else { "**not met**" };
            println!(
                "| gossip A → B, stored by B (window {}) | {} | {}–{} | {ratio:.3} | ≥ 0.5 {verdict} |",
                knobs.window,
                thousands(median(r.throughput.clone())),
                thousands(lo),
                thousands(hi)
            );
        }
        if !r.join_secs.is_empty() {
            let rates: Vec<f64> = r.join_secs.iter().map(|s| r.events as f64 / s).collect();
            let (lo, hi) = min_max(&rates);
            let (slo, shi) = min_max(&r.join_secs);
            println!(
                "| late joiner C: `fetch`, {:.2} s ({slo:.2}–{shi:.2}; {} runs) | {} | {}–{} | {:.3} | – |",
                median(r.join_secs.clone()),
                r.join_secs.len(),
                thousands(median(rates.clone())),
                thousands(lo),
                thousands(hi),
                median(r.ratios(&rates))
            );
        }
        println!();
        if !r.throughput_cpu.is_empty() {
            let per_cpu: Vec<f64> = r
                .throughput
                .iter()
                .zip(&r.throughput_cpu)
                .zip(r.verify.iter().zip(&r.verify_cpu))
                .map(|((t, tc), (v, vc))| (t / tc) / (v / vc))
                .collect();
            println!(
                "* Throughput: A and B share one core; the process was on a CPU for {:.0} % of the transfer's wall time, and for {:.0} % of verify's (medians; the rest is the core taken by other processes, or waiting for I/O or the peer). Per CPU second, two-node ÷ verify = {:.3} (median of per-run ratios). No gossip message was lost: B stored every event from gossip alone, with no sync.",
                median(r.throughput_cpu.iter().map(|c| c * 100.0).collect()),
                median(r.verify_cpu.iter().map(|c| c * 100.0).collect()),
                median(per_cpu)
            );
        }
        if !r.commit_secs.is_empty() {
            let commits: Vec<f64> = r.commit_secs.iter().map(|c| c * 1e3).collect();
            let (lo, hi) = min_max(&commits);
            println!(
                "* The late joiner's `fetch` stores {} blocks (program manifest, bytecode, slice manifests), each in a durable commit of its own (`Store::put_block`); a one-block commit in a new store took {:.2} ms ({lo:.2}–{hi:.2}) just before each fetch. The process (both nodes, every thread) was on a CPU for {:.0} % of the fetch's wall time (median of the runs).",
                thousands(r.blocks as f64),
                median(commits.clone()),
                median(
                    r.join_cpu
                        .iter()
                        .zip(&r.join_secs)
                        .map(|(c, s)| 100.0 * c / s)
                        .collect()
                ),
            );
            println!();
        }
    }
    if let Some(d) = &delegated {
        let (lo, hi) = min_max(&d.done_ms);
        println!(
            "Delegated call (corpus monoid, `string_concat` on B), {} calls:",
            d.done_ms.len()
        );
        println!(
            "| request round trip A → B, p50 ms | deploy_delegated returns, p50 ms | A's walk done, p50 ms | p90 ms | min–max ms | events (A / B) | control passes | cross-host steps |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {:.2} | {:.1} | {:.1} | {:.1} | {lo:.1}–{hi:.1} | {} ({} / {}) | {} | {} |",
            percentile(&d.round_trip_ms, 50.0),
            percentile(&d.granted_ms, 50.0),
            percentile(&d.done_ms, 50.0),
            percentile(&d.done_ms, 90.0),
            d.events,
            d.by_writer[0],
            d.by_writer[1],
            d.passes,
            d.cross_steps
        );
        println!();
    }
    println!("whole bench: {:.1} s", started.elapsed().as_secs_f64());
    rt.shutdown_timeout(Duration::from_secs(5));
}
