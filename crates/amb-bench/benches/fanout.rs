//! Fan-out (issue 12): a program of independent calls spread over many delegates,
//! every node a real `amb node` process (the release binary) on 127.0.0.1, mDNS
//! off; and the bytes each delegate receives against the bytes of its own part.
//!
//! ```text
//! cargo build --release -p amb
//! AMB_BIN=<target>/release/amb taskset -c 0,1 cargo bench -p amb-bench --bench fanout
//! # knobs: AMB_BENCH_CALLS=96 AMB_BENCH_DELEGATES=23 AMB_BENCH_PAD=10240 AMB_BENCH_ROUNDS=3
//! ```
//!
//! The program: `AMB_BENCH_CALLS` call/return pairs `f<i>[in_ a<i>.open a<i>.
//! s<i>x<pad>[]] | a<i>[in f<i>.open_]`, each function's body a child whose name
//! is `AMB_BENCH_PAD` bytes long (so each function's slice is over 10 KB), the
//! function `f<i>` delegated (`--delegate f<i>=<peer>`) to delegate `i mod
//! AMB_BENCH_DELEGATES`. First `amb run` of the file gives the expected normal
//! form. Then one node alone deploys it `AMB_BENCH_ROUNDS` times (no delegates):
//! the time from the deploy request until `GET /v1/programs/<cid>/value` answers.
//! Then the deployer and its delegates (each dialing the deployer) do the same with
//! the functions delegated; every value must be the local run's. After each
//! delegate said its walks are at their end, every node is stopped and:
//! `amb verify` passes (complete) on the deployer's home for every round; on each
//! delegate's store, the bytes of its parts (what it holds of the program: every
//! event of its logs, their slice manifests, and the bytecode blocks they name that
//! it holds) are summed, and compared with 2 × (all the program's bytes ÷
//! delegates) + 64 KiB, the program's bytes counted the same way on the deployer;
//! and the delegate's `received_bytes` (`amb info`: payload bytes of gossip and
//! request-response bodies it received, from before the first deployment to the
//! end) is divided by the bytes of its parts. Without `--bench` (as `cargo test
//! --all-targets` runs it) it makes a quick run: 12 calls on 3 delegates, 1 round.

mod process;

use std::{
    collections::BTreeSet,
    path::Path,
    time::{Duration, Instant},
};

use amb_bytecode::{Block, Cid};
use amb_log::{Event, Manifest, Store};
use process::{NodeProcess, WAIT, amb_binary};
use serde_json::{Value, json};

/// A knob: the number in the variable `name`, else `default`.
fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {v}"))
    })
}

/// The program's text: `calls` independent call/return pairs.
fn program(calls: usize, pad: usize) -> String {
    let padding = "y".repeat(pad);
    (0..calls)
        .map(|i| format!("f{i}[in_ a{i}.open a{i}.s{i}x{padding}[]] | a{i}[in f{i}.open_]"))
        .collect::<Vec<_>>()
        .join(" |\n")
}

/// What a store holds of `part` (a program on the deployer, an order's name on a
/// delegate): the bytes of its stored blocks (manifests and the bytecode its slice
/// manifests and events name, each once) and of its events.
fn held_bytes(store: &Store, part: Cid) -> (u64, u64) {
    let snapshot = store.snapshot().expect("a snapshot");
    let (mut blocks, mut events) = (0u64, 0u64);
    let mut wanted = Vec::new();
    if let Some(bytes) = store.get_block(part).expect("reading a block") {
        if let Ok(manifest) = Manifest::decode(&bytes) {
            blocks += bytes.len() as u64;
            wanted.push(manifest.program());
        }
    }
    for log in store.program_logs(part).expect("the part's logs") {
        if let Some(manifest) = snapshot.get_manifest(log).expect("reading a manifest") {
            if log != part {
                blocks += manifest.encode().len() as u64;
                wanted.push(manifest.program());
            }
        }
        for event in store.log_events(log).expect("the log's events") {
            let event = event.expect("a stored event");
            events += event.bytes.len() as u64;
            let decoded = Event::decode(&event.bytes).expect("a stored event decodes");
            wanted.extend(decoded.payload());
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(cid) = wanted.pop() {
        if !seen.insert(cid) {
            continue;
        }
        // A ref leaving the part stays a CID: its block is not held.
        let Some(bytes) = store.get_block(cid).expect("reading a block") else {
            continue;
        };
        if let Ok(block) = Block::decode(&bytes) {
            blocks += bytes.len() as u64;
            wanted.extend(block.children());
        }
    }
    (blocks, events)
}

/// Every part a stopped node's store holds, with its bytes (blocks + events).
fn parts(home: &Path) -> Vec<(Cid, u64)> {
    let store = Store::open(home.join("store.redb")).expect("the store opens");
    store
        .programs()
        .expect("the store's programs")
        .into_iter()
        .map(|part| {
            let (blocks, events) = held_bytes(&store, part);
            (part, blocks + events)
        })
        .collect()
}

/// Deploys `source` on `node` (delegating `delegate`'s names), waits until its
/// status says the run is complete (polled every 10 ms) and reads its value: the
/// value's normal form, the address and the time from the deploy request to the
/// value. A run not complete after [`run_wait`] panics with its status and the logs
/// of `hosts` that show a problem.
fn deploy_and_read(
    node: &NodeProcess,
    source: &str,
    name: &str,
    delegate: &Value,
    hosts: &[NodeProcess],
) -> (String, String, Duration) {
    let started = Instant::now();
    let (status, deployed) = node.post(
        "/v1/deploy",
        &json!({ "source": source, "name": name, "delegate": delegate }),
    );
    assert_eq!(status, 200, "deploy: {deployed}\n{}", node.logged());
    let address = deployed["address"]
        .as_str()
        .expect("an address")
        .to_string();
    let cid = &address[5..];
    loop {
        let status = node.get(&format!("/v1/programs/{cid}"));
        let walked = status["execution"].is_null() || status["execution"]["done"] == true;
        if status["complete"] == true && walked {
            break;
        }
        if started.elapsed() > run_wait() {
            let waited = status["execution"]["waiting_for"].as_str().unwrap_or("-");
            let logs: Vec<String> = std::iter::once(node)
                .chain(hosts.iter().filter(|h| h.peer_id == waited))
                .map(|n| {
                    let log = n.logged();
                    let tail: Vec<&str> = log.lines().rev().take(40).collect();
                    format!(
                        "--- {} (last lines, newest first):\n{}",
                        n.peer_id,
                        tail.join("\n")
                    )
                })
                .collect();
            panic!(
                "{address} not over after {:?}: {status}\n{}",
                run_wait(),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let value = node
        .try_get(&format!("/v1/programs/{cid}/value?wait_ms=60000"))
        .unwrap_or_else(|(status, body)| {
            panic!(
                "{address} complete but no value: {status} {body}\n{}",
                node.logged()
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    let took = started.elapsed();
    let normal_form = value["normal_form"]
        .as_str()
        .unwrap_or_else(|| panic!("no value: {value}"));
    (normal_form.to_string(), address, took)
}

/// The longest a run may take (`AMB_BENCH_WAIT_SECS`, default 120).
fn run_wait() -> Duration {
    Duration::from_secs(knob("AMB_BENCH_WAIT_SECS", 120) as u64)
}

/// Waits until `probe` holds, polling every 50 ms; panics after [`WAIT`].
fn wait_until(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !probe() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The environment of the deployer: room for the program's text.
const DEPLOYER_ENV: [(&str, &str); 2] = [
    ("AMB_NODE_MAX_DEPLOY_BYTES", "16777216"),
    ("AMB_NODE_API_MAX_BODY_BYTES", "33554432"),
];

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let calls = knob("AMB_BENCH_CALLS", if bench { 96 } else { 12 });
    let delegates = knob("AMB_BENCH_DELEGATES", if bench { 23 } else { 3 }).min(calls);
    let pad = knob("AMB_BENCH_PAD", 10_240);
    let rounds = knob("AMB_BENCH_ROUNDS", if bench { 3 } else { 1 });
    let amb = amb_binary();
    let source = program(calls, pad);
    println!(
        "{calls} calls over {delegates} delegates, bodies padded to {pad} bytes, {rounds} rounds; \
         program text {} bytes",
        source.len()
    );

    // The expected value: a local `amb run` of the file.
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let file = scratch.path().join("fanout.amb");
    std::fs::write(&file, &source).expect("the program file");
    let run = std::process::Command::new(&amb)
        .arg("run")
        .arg(&file)
        .args(["--json", "--home"])
        .arg(scratch.path().join("home"))
        .output()
        .expect("amb run runs");
    assert!(run.status.success(), "amb run: {run:?}");
    let run: Value = serde_json::from_slice(&run.stdout).expect("amb run --json");
    let expected = run["normal_form"]
        .as_str()
        .expect("a normal form")
        .to_string();

    // One node alone.
    let alone = NodeProcess::start(&amb, &[], &DEPLOYER_ENV);
    let mut alone_ms = Vec::new();
    for round in 0..rounds {
        let (normal_form, _, took) =
            deploy_and_read(&alone, &source, &format!("alone-{round}"), &json!({}), &[]);
        assert_eq!(normal_form, expected, "the lone node's value");
        println!("alone, round {round}: {:.1} ms", ms(took));
        alone_ms.push(ms(took));
    }
    drop(alone);

    // The deployer and its delegates.
    let started = Instant::now();
    let mut deployer = NodeProcess::start(&amb, &[], &DEPLOYER_ENV);
    let mut hosts: Vec<NodeProcess> = (0..delegates)
        .map(|_| NodeProcess::start(&amb, &[deployer.address()], &[]))
        .collect();
    wait_until("every delegate connected to the deployer", || {
        let info = deployer.get("/v1/info");
        let peers = info["peers"].as_array().cloned().unwrap_or_default();
        hosts
            .iter()
            .all(|h| peers.iter().any(|p| p["peer_id"] == h.peer_id.as_str()))
    });
    println!(
        "{} node processes started and connected in {:.1} s",
        delegates + 1,
        started.elapsed().as_secs_f64()
    );
    let received = |node: &NodeProcess| {
        node.get("/v1/info")["received_bytes"]
            .as_u64()
            .expect("received_bytes")
    };
    let received_before: Vec<u64> = hosts.iter().map(received).collect();
    let delegate: serde_json::Map<String, Value> = (0..calls)
        .map(|i| (format!("f{i}"), json!(hosts[i % delegates].peer_id)))
        .collect();
    let delegate = Value::Object(delegate);
    let mut fanned_ms = Vec::new();
    let mut addresses = Vec::new();
    for round in 0..rounds {
        let (normal_form, address, took) = deploy_and_read(
            &deployer,
            &source,
            &format!("fanout-{round}"),
            &delegate,
            &hosts,
        );
        assert_eq!(normal_form, expected, "the delegated run's value");
        println!("delegated, round {round}: {:.1} ms", ms(took));
        fanned_ms.push(ms(took));
        addresses.push(address);
    }
    for host in &hosts {
        wait_until("every delegate's walks at their end", || {
            host.logged().matches("the walk is at its end").count() >= rounds
        });
    }
    let mut received_delta = Vec::new();
    for (host, before) in hosts.iter().zip(&received_before) {
        let info = host.get("/v1/info");
        assert_eq!(info["outside_grant"], 0, "{info}");
        assert_eq!(info["refused"], json!({}), "{info}");
        received_delta.push(received(host) - before);
    }
    deployer.stop();
    for host in &mut hosts {
        host.stop();
    }

    // Every log verifies on the deployer, for every round.
    let mut all_bytes = Vec::new();
    for address in &addresses {
        let verified = deployer.offline(&["verify", address, "--json"]);
        assert!(
            verified.status.success(),
            "amb verify {address}: {verified:?}"
        );
        let verified: Value = serde_json::from_slice(&verified.stdout).expect("amb verify --json");
        assert_eq!(verified["complete"], true, "{verified}");
        let program: Cid = address[5..].parse().expect("a CID");
        let whole = parts(&deployer.home)
            .into_iter()
            .find(|(part, _)| *part == program)
            .expect("the deployer holds the program");
        all_bytes.push(whole.1);
        println!(
            "{address}: verified, complete, {} events in {} logs; {} bytes (blocks + events)",
            verified["events"], verified["logs"], whole.1
        );
    }
    let all = all_bytes.iter().sum::<u64>() as f64 / rounds as f64;
    let bound = 2.0 * all / delegates as f64 + 65_536.0;

    println!();
    println!("| setup | rounds | deploy → value p50 (ms) | calls/s |");
    println!("|---|---:|---:|---:|");
    for (setup, times) in [
        ("one node alone".to_string(), &alone_ms),
        (
            format!("{} nodes, {delegates} delegates", delegates + 1),
            &fanned_ms,
        ),
    ] {
        let p50 = median(times.clone());
        println!(
            "| {setup} | {rounds} | {p50:.1} | {:.1} |",
            calls as f64 / p50 * 1e3
        );
    }
    println!();
    println!(
        "all slice bytes (the program's blocks + events) {all:.0}; bound per delegate \
         2 × (all ÷ {delegates}) + 64 KiB = {bound:.0}"
    );
    println!();
    println!(
        "| delegate | functions | parts | held bytes per part (max) | held ÷ bound | received bytes | received ÷ held |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    let mut over = 0;
    for (d, (host, got)) in hosts.iter().zip(&received_delta).enumerate() {
        let held = parts(&host.home);
        assert_eq!(held.len(), rounds, "delegate {d} holds one part a round");
        let largest = held.iter().map(|(_, b)| *b).max().unwrap_or(0);
        let total: u64 = held.iter().map(|(_, b)| *b).sum();
        let ratio = *got as f64 / total as f64;
        ratios.push(ratio);
        over += usize::from(largest as f64 > bound);
        println!(
            "| {d} | {} | {} | {largest} | {:.2} | {got} | {ratio:.2} |",
            (0..calls).filter(|i| i % delegates == d).count(),
            held.len(),
            largest as f64 / bound,
        );
    }
    println!();
    println!(
        "received ÷ held: median {:.2}, max {:.2} (target ≤ 1.5); delegates over the held bound: {over}",
        median(ratios.clone()),
        ratios.iter().copied().fold(0.0, f64::max)
    );
}
