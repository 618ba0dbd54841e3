//! The soak: one `amb node` process (the release binary) takes thousands of small
//! deployments through its HTTP API, and its resident memory must stay bounded by
//! its settings; then the cost of refusing a program far over the deploy limits.
//!
//! ```text
//! cargo build --release -p amb
//! taskset -c 1 cargo bench -p amb-bench --bench soak
//! # knobs: AMB_BENCH_DEPLOYS=5000 AMB_BIN=<path of the amb binary>
//! ```
//!
//! The node runs on a home made by `amb init` in a temporary directory, listening
//! on `127.0.0.1` port 0, its API on port 0, mDNS off, with every other setting at
//! its default. First, on the fresh node, the 1.5 MB program nested 500,000 deep
//! (`a[a[…]]`) is deployed: the time until the node answers (a 413 naming
//! `max_deploy_bytes` is expected) and the node's peak resident memory (`VmHWM`)
//! before and after. Then `AMB_BENCH_DEPLOYS` (default 5,000) deployments of the
//! corpus's string-concat monoid, each under its own name (a new program each:
//! every manifest has a random nonce), one at a time; every 50th value is read back
//! and checked (`"helloworld"`). At 0 and every 1,000 deployments the table gives
//! the node's resident memory (`VmRSS` of `/proc/<pid>/status`), the deployments
//! per second over the last 1,000 (value reads included) and the size of the
//! store's file. Without `--bench` (as `cargo test --all-targets` would run it) it
//! makes a quick run of 100 deployments, reporting every 50.

/// The corpus's string-concat monoid: reduces to `"helloworld"`.
const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

mod process;

use std::time::Instant;

use process::{NodeProcess, amb_binary, path_from, proc_kib};
use serde_json::json;

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let deploys: usize = std::env::var("AMB_BENCH_DEPLOYS")
        .ok()
        .map(|v| v.parse().expect("AMB_BENCH_DEPLOYS is a number"))
        .unwrap_or(if bench { 5000 } else { 100 });
    let every = if bench { 1000 } else { 50 };
    let corpus = path_from(
        "AMB_CORPUS",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus"),
    );
    let monoid = std::fs::read_to_string(corpus.join(MONOID)).expect("the corpus's monoid");
    let node = NodeProcess::start(&amb_binary(), &[], &[]);
    let pid = node.pid();

    // The refusal of the 1.5 MB program nested 500,000 deep, on the fresh node.
    let depth = 500_000;
    let deep = format!("{}{}", "a[".repeat(depth), "]".repeat(depth));
    let peak_before = proc_kib(pid, "VmHWM");
    let started = Instant::now();
    let (status, answer) = node.post("/v1/deploy", &json!({ "source": deep }));
    let refusal = started.elapsed();
    let peak_after = proc_kib(pid, "VmHWM");
    assert!(
        (400..500).contains(&status) && answer.to_string().contains("max_deploy_"),
        "the deep program was not refused by a deploy limit: {status} {answer}"
    );
    println!(
        "refusing {} bytes nested {depth} deep: HTTP {status} in {:.1} ms; peak RSS {} MiB before, {} MiB after",
        deep.len(),
        refusal.as_secs_f64() * 1e3,
        mib(peak_before),
        mib(peak_after)
    );
    println!("{answer}");
    println!();
    println!("| deployments | RSS (MiB) | deployments/s (last {every}) | store (MiB) |");
    println!("|---:|---:|---:|---:|");
    let row = |n: usize, rate: Option<f64>| {
        let store = std::fs::metadata(&node.store).map_or(0, |m| m.len());
        println!(
            "| {n} | {} | {} | {:.1} |",
            mib(proc_kib(pid, "VmRSS")),
            rate.map_or("–".into(), |r| format!("{r:.1}")),
            store as f64 / (1 << 20) as f64
        );
    };
    row(0, None);
    let mut since = Instant::now();
    let whole = Instant::now();
    for i in 1..=deploys {
        let (status, deployed) = node.post(
            "/v1/deploy",
            &json!({ "source": monoid, "name": format!("soak-{i}") }),
        );
        assert_eq!(status, 200, "deployment {i}: {deployed}");
        if i % 50 == 0 {
            let cid = &deployed["address"].as_str().expect("an address")[5..];
            let value = node.get(&format!("/v1/programs/{cid}/value"));
            assert_eq!(value["value"], "helloworld", "deployment {i}: {value}");
        }
        if i % every == 0 {
            row(i, Some(every as f64 / since.elapsed().as_secs_f64()));
            since = Instant::now();
        }
    }
    println!();
    println!(
        "{deploys} deployments in {:.1} s ({:.1}/s); peak RSS {} MiB",
        whole.elapsed().as_secs_f64(),
        deploys as f64 / whole.elapsed().as_secs_f64(),
        mib(proc_kib(pid, "VmHWM"))
    );
}
