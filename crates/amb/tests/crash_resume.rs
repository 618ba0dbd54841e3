//! Crash safety of `amb run` end to end (spec/events.md §8): a process recording a long
//! program is killed with SIGKILL at random points, 20 times; after every kill the
//! store opens, `amb verify` passes on what was committed, saying incomplete (exit 3)
//! unless every event was (or says exactly that nothing was), and `amb run --resume ADDRESS` finishes the same program at the same address
//! to the same normal form, value, steps and events as an uninterrupted run, with no
//! fork: each `(log, seq)` once, and resuming a finished run changes nothing.
//!
//! The program is generated from the corpus's string-concat monoid (read in place from
//! `../shared/corpus`; the test fails when it is missing): `COPIES` copies, each alone
//! in an index ambient of a tuple, a tenth of them in a chain of nested tuples, so the
//! value is a known tuple of `"helloworld"` strings: 5,400 steps, 26,285 events in seven
//! batches, recorded in one to three seconds by a test build.
//!
//! Ten rounds of two kills share one home (one store, reopened after every kill): the
//! first kill hits `amb run FILE` (a new address each round), the second the
//! `amb run --resume` of that address, which is then resumed to the end and resumed
//! once more. A kill lands a delay after the `recording /amb/<cid>` line (read from
//! stderr, never guessed): a fraction drawn from a fixed seed of the time a whole
//! recording takes now (the median of the last three uninterrupted ones, so delays
//! follow the machine's load); the first delay is zero.

mod common;
use common::corpus;
use std::{
    io::{BufRead, BufReader, Read},
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use amb_vm::record::BATCH_EVENTS;
use serde_json::{Value, json};

/// Copies of the monoid in the program (18 steps each).
const COPIES: usize = 200;
/// Rounds of two kills each.
const ROUNDS: usize = 10;
/// The seed of the kill delays.
const SEED: u64 = 0x00c0_ffee_5eed_0001;
/// The longest any one `amb` process may take (a debug build under load).
const PROCESS_TIMEOUT: Duration = Duration::from_secs(300);
/// Where the monoid lives inside the shared corpus.
const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";
/// What `amb verify` says about an address whose run committed no event yet.
const NO_EVENTS: &str = "no events of this program are stored";

// ----- the program -----

/// Copy `i` of the monoid (its own ambients renamed, so that copies never interact);
/// each copy runs alone inside an index ambient, which plays the role of the monoid's
/// top level and ends holding `string[…]`.
fn copy_of(monoid: &str, i: usize) -> String {
    amb_bench::confluent::renamed_monoid(monoid, i)
}

/// A confluent program of `copies` monoids and the JSON of its value:
/// `tuple[0[M]|…|f-1[M]|f[tuple[0[M]|1[tuple[…[tuple[0[M]]]]]]]]` with a tenth of the
/// copies in the nested chain.
fn program(monoid: &str, copies: usize) -> (String, Value) {
    let nested = copies / 10;
    assert!(nested > 0, "at least 10 copies");
    let flat = copies - nested;
    let hello = || Value::from("helloworld");
    let mut text = String::from("tuple[");
    let mut top = Vec::new();
    for i in 0..flat {
        text.push_str(&format!("{i}[{}]|\n", copy_of(monoid, i)));
        top.push(hello());
    }
    text.push_str(&format!("{flat}["));
    for level in 0..nested {
        text.push_str(&format!("tuple[0[{}]", copy_of(monoid, flat + level)));
        if level + 1 < nested {
            text.push_str("|1[");
        }
    }
    // Close the chain (every level's `tuple[`, every level's but the last's `1[`), then
    // `{flat}[` and the outer `tuple[`.
    text.push_str(&"]".repeat(nested));
    text.push_str(&"]".repeat(nested.saturating_sub(1)));
    text.push_str("]]\n");
    let mut chain = json!({ "tuple": [hello()] });
    for _ in 1..nested {
        chain = json!({ "tuple": [hello(), chain] });
    }
    top.push(chain);
    (text, json!({ "tuple": top }))
}

// ----- running `amb` -----

/// xorshift64*: the kill delays, reproducible from `SEED`.
struct Rng(u64);

impl Rng {
    /// A float uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A temporary directory with an initialized home; `amb` never sees the user's node.
struct Node {
    tmp: tempfile::TempDir,
    home: PathBuf,
}

impl Node {
    fn init() -> Node {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let home = tmp.path().join("home");
        let node = Node { tmp, home };
        let out = node.amb(&["init"]);
        success(&out, "amb init");
        node
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_amb"));
        command
            .args(args)
            .arg("--home")
            .arg(&self.home)
            .env_remove("AMB_HOME")
            .env("XDG_DATA_HOME", self.tmp.path())
            .env("HOME", self.tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn spawn(&self, args: &[&str]) -> Running {
        Running::spawn(self.command(args))
    }

    /// Runs `amb ARGS` to its end (with a timeout).
    fn amb(&self, args: &[&str]) -> Output {
        self.spawn(args).finish(&args.join(" "))
    }
}

/// A running `amb`: its stdout is collected by a thread, its stderr read line by line
/// by another and sent to `lines`, so no pipe ever fills and every wait can time out.
struct Running {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<()>,
    lines: mpsc::Receiver<String>,
    /// The stderr lines seen so far.
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut command: Command) -> Running {
        let mut child = command.spawn().expect("amb starts");
        let mut out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let stdout = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            out.read_to_end(&mut bytes).expect("reading stdout");
            bytes
        });
        let (send, lines) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            stdout,
            stderr,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for `recording /amb/<cid>` on stderr and returns the address.
    fn address(&mut self, what: &str) -> String {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let address = line
                        .split_once("recording /amb/")
                        .and_then(|(_, cid)| cid.split_whitespace().next())
                        .map(|cid| format!("/amb/{cid}"));
                    self.seen.push(line);
                    if let Some(address) = address {
                        return address;
                    }
                }
                Err(e) => {
                    // SIGKILL, then a wait that cannot hang; stderr is closed after it.
                    let _ = self.child.kill();
                    let status = self.child.wait().expect("waiting for amb");
                    let rest = self.lines.recv_timeout(Duration::from_secs(5));
                    self.seen.extend(rest);
                    self.seen.extend(self.lines.try_iter());
                    panic!(
                        "{what}: no `recording` line ({e}); {status}; stderr:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }

    /// Waits (with a timeout) for the process to end and returns its output.
    fn finish(mut self, what: &str) -> Output {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waiting for amb") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{what}: still running after {PROCESS_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self.stdout.join().expect("the stdout reader ends");
        self.stderr.join().expect("the stderr reader ends");
        self.seen.extend(self.lines.try_iter());
        let mut stderr = self.seen.join("\n").into_bytes();
        if !stderr.is_empty() {
            stderr.push(b'\n');
        }
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix); returns how the process ended.
    fn kill(mut self, what: &str) -> ExitStatus {
        // An error here means the process has already been reaped, which only `finish`
        // does; a process that exited by itself is still a zombie and takes the signal.
        self.child.kill().expect("SIGKILL");
        self.finish(what).status
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit 0 and returns stdout.
fn success(output: &Output, what: &str) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{what}: stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn json_of(output: &Output, what: &str) -> Value {
    serde_json::from_str(&success(output, what)).expect("JSON output")
}

/// The events committed for `address` after a kill, as `amb verify` sees them: it
/// must pass on whatever is committed (whole batches of whole steps, each of at least
/// `BATCH_EVENTS` events but the last), saying complete (exit 0) exactly when every
/// event is, else incomplete (exit 3) and where it stops; or, when nothing is, say
/// exactly that (not that the program is unknown: the address is announced only once
/// its manifest is stored).
fn committed(node: &Node, address: &str, total: u64, what: &str) -> u64 {
    let out = node.amb(&["verify", address, "--json"]);
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{what}: {err}");
    if out.status.code() == Some(1) && err.contains(NO_EVENTS) {
        assert_eq!(stored_events(node, address, what), 0, "{what}: {err}");
        return 0;
    }
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what}: amb verify: not JSON ({e}), {}: {}{err}",
            out.status,
            text(&out.stdout)
        )
    });
    assert_eq!(verified["address"], address, "{what}");
    let events = verified["events"].as_u64().expect("an event count");
    assert!(
        events == total || events >= BATCH_EVENTS as u64,
        "{what}: {events} events committed: less than a batch ({BATCH_EVENTS}), not all {total}"
    );
    let complete = events == total;
    assert_eq!(verified["complete"], complete, "{what}: {verified}");
    assert_eq!(
        out.status.code(),
        Some(if complete { 0 } else { 3 }),
        "{what}: the exit status of a run {}complete",
        if complete { "" } else { "in" }
    );
    if !complete {
        assert_eq!(verified["stops_at"]["events"], events, "{what}: {verified}");
        // `--allow-incomplete`: the same answer, exit 0.
        let allowed = node.amb(&["verify", address, "--json", "--allow-incomplete"]);
        assert_eq!(
            json_of(&allowed, &format!("{what}: --allow-incomplete")),
            verified
        );
    }
    events
}

/// The events of `address` in the store (`amb log`): no two at one `(log, seq)`, and
/// every log's seqs run 0, 1, … with no gap. None when not even a log is registered.
fn stored_events(node: &Node, address: &str, what: &str) -> u64 {
    let out = node.amb(&["log", address, "--json"]);
    if out.status.code() == Some(1) && text(&out.stderr).contains("no program") {
        return 0;
    }
    let log = json_of(&out, &format!("{what}: amb log"));
    let list = log.as_array().expect("a list of events");
    let mut places = std::collections::HashMap::<&str, Vec<u64>>::new();
    for event in list {
        let log = event["log"].as_str().expect("a log CID");
        places
            .entry(log)
            .or_default()
            .push(event["seq"].as_u64().expect("a seq"));
    }
    for (log, mut seqs) in places {
        seqs.sort_unstable();
        let expected: Vec<u64> = (0..seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{what}: seqs of log {log}");
    }
    list.len() as u64
}

/// Where a kill left the store.
#[derive(Debug, Default)]
struct Tally {
    /// Nothing of the run was committed.
    before: usize,
    /// Some batches were committed, not all.
    mid: usize,
    /// Everything was committed (or the process had already finished).
    after: usize,
}

impl Tally {
    fn add(&mut self, events: u64, total: u64) -> &'static str {
        if events == 0 {
            self.before += 1;
            "before any commit"
        } else if events < total {
            self.mid += 1;
            "mid-recording"
        } else {
            self.after += 1;
            "after completion"
        }
    }
}

/// Starts `amb ARGS`, waits until it announces its address, kills it `delay` later,
/// and checks what it left. Returns the address and the events committed.
fn kill_during(
    node: &Node,
    args: &[&str],
    delay: Duration,
    total: u64,
    tally: &mut Tally,
    kill: usize,
) -> (String, u64) {
    let what = format!("kill {kill} ({})", args.join(" "));
    let mut running = node.spawn(args);
    let address = running.address(&what);
    std::thread::sleep(delay);
    let status = running.kill(&what);
    assert!(
        status.signal() == Some(9) || status.code() == Some(0),
        "{what}: ended with {status}, neither killed nor done"
    );
    let events = committed(node, &address, total, &what);
    if status.code() == Some(0) {
        assert_eq!(
            events, total,
            "{what}: finished, yet not every event is stored"
        );
    }
    let place = tally.add(events, total);
    eprintln!(
        "{what}: killed {:>4} ms after the announcement: {place} ({events}/{total} events committed{})",
        delay.as_millis(),
        if status.code() == Some(0) {
            ", had exited"
        } else {
            ""
        }
    );
    (address, events)
}

/// Asserts that a finished run's JSON matches the reference, at `address`.
fn assert_same_run(run: &Value, reference: &Value, address: &str, what: &str) {
    assert_eq!(run["address"], address, "{what}: the address");
    for key in ["normal_form", "value", "steps", "events"] {
        assert_eq!(run[key], reference[key], "{what}: {key}");
    }
}

/// Runs `amb ARGS --json` (a run or a resume) to its end and returns its JSON and how
/// long it recorded, from its announcement to its exit.
fn record_to_end(node: &Node, args: &[&str], what: &str) -> (Value, String, Duration) {
    let mut running = node.spawn(args);
    let address = running.address(what);
    let recording = Instant::now();
    let out = running.finish(what);
    let took = recording.elapsed();
    (json_of(&out, what), address, took)
}

/// How long recording the whole program takes now: the median of the last three
/// uninterrupted recordings, so kill delays follow the machine's load.
fn pace(recordings: &[Duration]) -> Duration {
    let mut last: Vec<Duration> = recordings.iter().rev().take(3).copied().collect();
    last.sort_unstable();
    last[last.len() / 2]
}

#[test]
fn killed_runs_resume_to_the_same_value_without_a_fork() {
    let started = Instant::now();
    let monoid = std::fs::read_to_string(corpus(MONOID)).expect("the monoid");
    let work = tempfile::tempdir().expect("temporary directory");
    let file = work.path().join("long.amb");
    let (text, value) = program(&monoid, COPIES);
    std::fs::write(&file, text).expect("writing the program");
    let file = file.to_str().expect("UTF-8 path");

    // The reference: one uninterrupted run in its own home.
    let (reference, address, took) =
        record_to_end(&Node::init(), &["run", file, "--json"], "the reference run");
    assert_eq!(reference["address"], address);
    assert_eq!(reference["value"], value, "the reference run's value");
    assert_eq!(reference["steps"], 18 * COPIES as u64);
    let total = reference["events"].as_u64().expect("an event count");
    assert!(
        total > 3 * BATCH_EVENTS as u64,
        "{total} events: too few batches for kills to land between them"
    );
    eprintln!(
        "reference: {COPIES} copies, {} steps, {total} events, recorded in {} ms",
        reference["steps"],
        took.as_millis()
    );
    let mut recordings = vec![took];

    // Ten rounds of two kills in one home: the run, then its resume; then the resume
    // to the end, the checks, and a second resume that must change nothing.
    let node = Node::init();
    let mut rng = Rng(SEED);
    let mut tally = Tally::default();
    for round in 0..ROUNDS {
        let kill = 2 * round;
        let delay = if kill == 0 {
            Duration::ZERO
        } else {
            pace(&recordings).mul_f64(rng.unit())
        };
        let (address, first) = kill_during(&node, &["run", file], delay, total, &mut tally, kill);

        let delay = pace(&recordings).mul_f64(rng.unit());
        let resume = ["run", "--resume", &address];
        let (again, second) = kill_during(&node, &resume, delay, total, &mut tally, kill + 1);
        assert_eq!(
            again, address,
            "round {round}: the resume announces the same address"
        );
        assert!(
            second >= first,
            "round {round}: the resume lost events ({first} then {second})"
        );

        let what = format!("round {round}: the resume to the end");
        let resume = ["run", "--resume", &address, "--json"];
        let (resumed, again, took) = record_to_end(&node, &resume, &what);
        assert_eq!(again, address, "{what}");
        assert_same_run(&resumed, &reference, &address, &what);
        recordings.push(took);

        let what = format!("round {round}: verify after the resume");
        let verified = json_of(&node.amb(&["verify", &address, "--json"]), &what);
        assert_eq!(verified["events"], total, "{what}");
        assert_eq!(verified["steps"], reference["steps"], "{what}");
        assert_eq!(verified["normal_form"], reference["normal_form"], "{what}");

        // Resuming a finished run changes nothing: the same output, and still exactly
        // the reference's events, each (log, seq) once.
        let what = format!("round {round}: a second resume");
        let (again, _, took) = record_to_end(&node, &resume, &what);
        assert_eq!(again, resumed, "{what}");
        assert_eq!(stored_events(&node, &address, &what), total, "{what}");
        recordings.push(took);
    }

    eprintln!(
        "{} kills: {} before any commit, {} mid-recording, {} after completion; {} s in all",
        2 * ROUNDS,
        tally.before,
        tally.mid,
        tally.after,
        started.elapsed().as_secs()
    );
    assert!(
        tally.mid >= ROUNDS,
        "only {} of {} kills landed mid-recording: {tally:?}",
        tally.mid,
        2 * ROUNDS
    );
}
