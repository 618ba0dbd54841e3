//! The inspector's server side: how long `amb ui` (the same routes as a node's)
//! takes to answer a request for the state after step K of a program of about
//! 1,000,000 events, against a full replay in the same run.
//!
//! ```text
//! cargo build --release -p amb
//! taskset -c 1 cargo bench -p amb-bench --bench inspector
//! # knobs: AMB_BENCH_STEPS=210000 (about 10^6 events) AMB_BIN=<path of the amb binary>
//! ```
//!
//! `amb run` records the confluent program of `amb_bench::confluent` into a fresh
//! home. `amb ui` gets a `timeline_cache_mb` with room for its timeline. The baseline, a **full replay**, is `amb inspect ADDRESS --at LAST`: one
//! process that loads every event and replays them all (its wall time). Then `amb
//! ui` serves the store: the first request loads the program's timeline (its
//! `load_ms`, the figure of that load, and the request's wall time); then, for 64
//! seeded random steps, the **state** route (`/steps/K`, at most 2,000 tree nodes,
//! the term inline under 64 KiB, the redex and what the step changed) and the
//! **term** route (`/steps/K/term`), and for the first 16 of them the **diff**
//! route (`/diff?from=K-1&to=K`, the line diff of the two whole pretty terms):
//! each request's wall time and response bytes. Without `--bench` (as `cargo test
//! --all-targets` would run it) it makes a quick run of 1,800 steps.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use amb_bench::{
    Rng,
    confluent::{confluent_program, read_monoid},
    corpus_dir,
};
use serde_json::Value;

/// The `amb` binary: `AMB_BIN`, else the workspace's release build.
fn amb_binary() -> PathBuf {
    let path = std::env::var_os("AMB_BIN").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/release/amb"
            ))
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no amb binary at {}: run `cargo build --release -p amb` first, or set AMB_BIN",
        path.display()
    );
    path
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// GET `url`: the wall time and the body.
fn timed_get(agent: &ureq::Agent, url: &str) -> (f64, String) {
    let started = Instant::now();
    let mut body = String::new();
    std::io::Read::read_to_string(
        &mut agent
            .get(url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .into_reader(),
        &mut body,
    )
    .expect("a body");
    (ms(started.elapsed()), body)
}

fn summary(name: &str, mut times: Vec<f64>, bytes: &[usize], full: f64) {
    times.sort_by(f64::total_cmp);
    let p50 = times[times.len() / 2];
    let slowest = times[times.len() - 1];
    let mean_bytes = bytes.iter().sum::<usize>() / bytes.len();
    let max_bytes = bytes.iter().max().copied().unwrap_or(0);
    println!(
        "| {name} | {p50:.1} ms | {slowest:.1} ms | {:.4} | {mean_bytes} | {max_bytes} |",
        slowest / full
    );
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let steps: u64 = std::env::var("AMB_BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1_800 } else { 210_000 });
    let amb = amb_binary();
    // `AMB_BENCH_DIR` keeps the recorded home there and reuses it on the next run
    // (to profile the server without recording again).
    let kept = std::env::var_os("AMB_BENCH_DIR").map(PathBuf::from);
    let temporary = tempfile::tempdir().expect("a temporary directory");
    let dir = kept
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let home = dir.join("home");
    let recorded_run = dir.join("run.json");
    let command = |args: &[&str]| {
        let mut command = Command::new(&amb);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AMB_")) {
            command.env_remove(key);
        }
        command.args(args).arg("--home").arg(&home);
        command
    };
    let ok = |mut command: Command| {
        let out = command.output().expect("amb runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let (run, recorded): (Value, f64) = match std::fs::read_to_string(&recorded_run) {
        Ok(text) if kept.is_some() => (serde_json::from_str(&text).expect("JSON"), 0.0),
        _ => {
            std::fs::create_dir_all(&dir).expect("the bench directory");
            ok(command(&["init"]));
            let monoid = read_monoid(&corpus_dir()).expect("the corpus monoid");
            let program = confluent_program(&monoid, steps);
            let file = dir.join("program.amb");
            std::fs::write(&file, &program.text).expect("the program is written");
            let started = Instant::now();
            let out = ok(command(&["run", file.to_str().expect("UTF-8"), "--json"]));
            std::fs::write(&recorded_run, &out).expect("the run is kept");
            (
                serde_json::from_str(&out).expect("JSON"),
                ms(started.elapsed()),
            )
        }
    };
    let address = run["address"].as_str().expect("an address").to_string();
    let cid = address.trim_start_matches("/amb/").to_string();
    let total = run["steps"].as_u64().expect("steps");
    println!(
        "program: {} events, {total} steps (recorded in {recorded:.0} ms)",
        run["events"]
    );

    // The baseline: a full replay, in one process.
    let last = total.to_string();
    let started = Instant::now();
    ok(command(&["inspect", &address, "--at", &last, "--json"]));
    let full = ms(started.elapsed());

    // Room for the program's timeline (about 4 KiB per event).
    let cache_mb = ((run["events"].as_u64().expect("events") * 4096) >> 20) + 64;
    let mut ui = command(&["ui", "--api", "127.0.0.1:0"])
        .env("AMB_NODE_TIMELINE_CACHE_MB", cache_mb.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("amb ui starts");
    let mut line = String::new();
    BufReader::new(ui.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("a ready line");
    let ready: Value = serde_json::from_str(&line).expect("a JSON ready line");
    let api = ready["api"].as_str().expect("an API URL").to_string();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(600))
        .build();
    let (first, body) = timed_get(&agent, &format!("{api}/v1/programs/{cid}/steps/0"));
    let load: Value = serde_json::from_str(&body).expect("JSON");
    println!(
        "full replay (amb inspect --at {total}): {full:.0} ms; timeline load: {} ms (first request {first:.0} ms)",
        load["load_ms"]
    );
    let mut rng = Rng::new(42);
    let (mut state_ms, mut state_bytes, mut term_ms, mut term_bytes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut diff_ms, mut diff_bytes) = (Vec::new(), Vec::new());
    let mut largest = 0;
    for i in 0..64 {
        let k = rng.below(total as usize + 1);
        let (t, body) = timed_get(
            &agent,
            &format!("{api}/v1/programs/{cid}/steps/{k}?max_nodes=2000"),
        );
        state_ms.push(t);
        state_bytes.push(body.len());
        if t > 100.0 {
            println!("state request {i} (step {k}) took {t:.1} ms");
        }
        let state: Value = serde_json::from_str(&body).expect("JSON");
        // Counted only up to 21,845 nodes (null past it).
        if state["total_nodes"].is_null() {
            largest += 1;
        }
        if i < 16 && k > 0 {
            let (t, body) = timed_get(
                &agent,
                &format!("{api}/v1/programs/{cid}/diff?from={}&to={k}", k - 1),
            );
            diff_ms.push(t);
            diff_bytes.push(body.len());
        }
        let (t, body) = timed_get(&agent, &format!("{api}/v1/programs/{cid}/steps/{k}/term"));
        term_ms.push(t);
        term_bytes.push(body.len());
    }
    println!("| route | p50 | slowest | slowest ÷ full replay | mean bytes | max bytes |");
    println!("|---|---|---|---|---|---|");
    summary(
        "state `/steps/K` (≤ 2,000 nodes)",
        state_ms,
        &state_bytes,
        full,
    );
    summary("term `/steps/K/term`", term_ms, &term_bytes, full);
    summary("diff `/diff?from=K-1&to=K`", diff_ms, &diff_bytes, full);
    println!("states over 21,845 tree nodes (total_nodes null): {largest} of 64");
    let _ = ui.kill();
    let _ = ui.wait();
}
