//! `amb run`, `amb verify`, `amb log` and `amb inspect` end to end: a run deploys to a
//! fresh address, prints what `amb reduce` prints plus the address and the number of
//! events, and its events verify (complete), list and travel (unverified unless
//! `--verify`); unknown addresses and uninitialized homes are clear errors (exit 1,
//! with `--json` an `{"error"}` on stdout); a closed output pipe ends a command
//! quietly; and a store with one byte flipped or cut short never makes `amb verify`
//! panic, nor pass unless it says complete with the original events and normal form.

mod common;
use common::{corpus, failure, node::wait_until, output_within, success, text};
use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Instant,
};

use amb_bytecode::Cid;
use serde_json::Value;

/// Runs `amb` with no `AMB_HOME` and the default data directory inside `data`, so a
/// test never touches the user's node.
fn amb(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_amb"))
        .args(args)
        .env_remove("AMB_HOME")
        .env("XDG_DATA_HOME", data)
        .env("HOME", data)
        .stdin(Stdio::null())
        .output()
        .expect("amb runs")
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&success(output)).expect("JSON output")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

/// A temporary data directory and an initialized home inside it.
struct Node {
    tmp: tempfile::TempDir,
    home: PathBuf,
}

impl Node {
    fn init() -> Node {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let home = tmp.path().join("home");
        success(&amb(&["init", "--home", s(&home)], tmp.path()));
        Node { tmp, home }
    }

    fn amb(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--home", s(&self.home)]);
        amb(&all, self.tmp.path())
    }

    /// `amb ARGS --home HOME` as a command, to run with a timeout or read in part.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_amb"));
        command
            .args(args)
            .args(["--home", s(&self.home)])
            .env_remove("AMB_HOME")
            .env("XDG_DATA_HOME", self.tmp.path())
            .env("HOME", self.tmp.path())
            .stdin(Stdio::null());
        command
    }

    fn store(&self) -> PathBuf {
        self.home.join("store.redb")
    }
}

#[test]
fn run_prints_the_address_and_what_reduce_prints_and_the_run_verifies() {
    let node = Node::init();
    for file in [
        MONOID,
        "ambientsprotocol-encoding-examples/functors/identity-functor.amb",
        "ambientsprotocol-whitepaper/ch05/18-call.amb",
        "ambientsprotocol-whitepaper/ch05/07-parallel-caps-nondeterministic.amb",
    ] {
        let path = corpus(file);
        let run = json(&node.amb(&["run", s(&path), "--json"]));
        let keys: Vec<&str> = run
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["address", "normal_form", "value", "steps", "events"],
            "{file}"
        );
        let reduced = json(&amb(&["reduce", s(&path), "--json"], node.tmp.path()));
        for key in ["normal_form", "value", "steps"] {
            assert_eq!(run[key], reduced[key], "{file}: {key}");
        }
        let events = run["events"].as_u64().expect("a count");
        assert!(events >= 2, "{file}: {events} events");
        let address = run["address"].as_str().expect("text");
        let cid = address.strip_prefix("/amb/").expect("/amb/<cid>");
        cid.parse::<Cid>().expect("a CID");

        // The run verifies: text and JSON forms.
        let verifying = node.amb(&["verify", address]);
        let out = success(&verifying);
        // Piped: no progress bar.
        assert_eq!(
            text(&verifying.stderr),
            "",
            "{file}: stderr of a piped verify"
        );
        assert!(
            out.starts_with(&format!("verified {address}: {events} events")),
            "{out}"
        );
        assert!(out.contains("\ncomplete\n"), "{out}");
        let verified = json(&node.amb(&["verify", address, "--json"]));
        assert_eq!(verified["complete"], true, "{file}");
        assert!(verified.get("stops_at").is_none(), "{file}");
        assert_eq!(verified["address"], address, "{file}");
        assert_eq!(verified["events"], events, "{file}");
        assert_eq!(verified["steps"], run["steps"], "{file}");
        assert_eq!(verified["normal_form"], run["normal_form"], "{file}");
        // The bare CID is accepted too.
        success(&node.amb(&["verify", cid]));
    }
}

#[test]
fn the_monoid_runs_to_helloworld() {
    let node = Node::init();
    let run = json(&node.amb(&["run", s(&corpus(MONOID)), "--json"]));
    assert_eq!(run["value"], "helloworld");
    assert_eq!(
        run["normal_form"],
        "string[concat[left[string[hello[]]]|right[string[world[]]]]]"
    );
    // The text form says the same.
    let out = success(&node.amb(&["run", s(&corpus(MONOID))]));
    assert!(out.starts_with("address: /amb/"), "{out}");
    assert!(out.contains("value: \"helloworld\""), "{out}");
}

#[test]
fn running_a_file_twice_deploys_two_programs() {
    let node = Node::init();
    let path = corpus(MONOID);
    let first = json(&node.amb(&["run", s(&path), "--json"]));
    let second = json(&node.amb(&["run", s(&path), "--json"]));
    assert_ne!(first["address"], second["address"]);
    assert_eq!(first["events"], second["events"]);
    assert_eq!(first["normal_form"], second["normal_form"]);
    for run in [&first, &second] {
        success(&node.amb(&["verify", run["address"].as_str().unwrap()]));
    }
}

#[test]
fn verifying_an_unknown_address_is_a_clear_error() {
    let node = Node::init();
    // A well-formed address of nothing stored.
    let unknown = format!("/amb/{}", Cid::of(b"no such program"));
    let err = failure(&node.amb(&["verify", &unknown]));
    assert!(err.contains(&unknown), "{err}");
    assert!(err.contains("no valid program manifest is stored"), "{err}");
    // Not an address at all.
    let err = failure(&node.amb(&["verify", "/amb/not-a-cid"]));
    assert!(
        err.contains("is not an address of the form /amb/<cid>"),
        "{err}"
    );
    // A stored block that is not a manifest: the program's root bytecode block.
    let path = corpus(MONOID);
    json(&node.amb(&["run", s(&path), "--json"]));
    let block = success(&amb(&["compile", s(&path)], node.tmp.path()));
    let block = format!("/amb/{}", block.trim());
    let err = failure(&node.amb(&["verify", &block]));
    assert!(err.contains("no valid program manifest is stored"), "{err}");
    // With --json, the failure is also a JSON error on stdout.
    for (address, kind) in [
        (unknown.as_str(), "not-found"),
        ("/amb/not-a-cid", "invalid"),
    ] {
        let out = node.amb(&["verify", address, "--json"]);
        failure(&out);
        let error: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
        assert_eq!(error["error"]["kind"], kind, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(address)),
            "{error}"
        );
    }
}

#[test]
fn run_and_verify_without_init_tell_to_run_amb_init() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let home = tmp.path().join("never-initialized");
    let path = corpus(MONOID);
    let err = failure(&amb(
        &["run", s(&path), "--json", "--home", s(&home)],
        tmp.path(),
    ));
    assert!(err.contains("run `amb init`"), "{err}");
    assert!(err.contains(s(&home)), "{err}");
    // Nothing was created.
    assert!(!home.exists());
    // Without --home: the default location, also uninitialized.
    let err = failure(&amb(&["run", s(&path)], tmp.path()));
    assert!(err.contains("run `amb init`"), "{err}");
    let unknown = format!("/amb/{}", Cid::of(b"x"));
    let err = failure(&amb(&["verify", &unknown, "--home", s(&home)], tmp.path()));
    assert!(err.contains("run `amb init`"), "{err}");
}

#[test]
fn log_lists_every_event_and_inspect_travels_from_the_deployed_program_to_the_normal_form() {
    let node = Node::init();
    let file = node.tmp.path().join("p.amb");
    std::fs::write(&file, "a[in b.open_] | b[in_ a.open a] | open b").expect("written");
    let run = json(&node.amb(&["run", s(&file), "--json"]));
    let address = run["address"].as_str().expect("an address");
    let steps = run["steps"].as_u64().expect("steps");
    assert_eq!(steps, 2);

    // `amb log --json`: every event, each (log, seq) once, in an order where refs come
    // first; `--dot` is a Graphviz digraph with an edge per ref. Unverified, and said
    // so, unless `--verify`.
    let listed = node.amb(&["log", address, "--json"]);
    assert_eq!(text(&listed.stderr), "unverified (run amb verify)\n");
    let verified = node.amb(&["log", address, "--json", "--verify"]);
    assert_eq!(text(&verified.stderr), "");
    assert_eq!(success(&verified), success(&listed));
    let log = json(&listed);
    let events = log.as_array().expect("a list");
    assert_eq!(events.len() as u64, run["events"].as_u64().expect("events"));
    let mut seen = std::collections::HashSet::new();
    for event in events {
        for r in event["refs"].as_array().expect("refs") {
            assert!(seen.contains(r.as_str().expect("a CID")), "refs come first");
        }
        seen.insert(event["cid"].as_str().expect("a CID").to_string());
    }
    let places: std::collections::HashSet<(String, u64)> = events
        .iter()
        .map(|e| (e["log"].to_string(), e["seq"].as_u64().expect("seq")))
        .collect();
    assert_eq!(places.len(), events.len(), "no two events at one place");
    let dot = success(&node.amb(&["log", address, "--dot"]));
    assert!(dot.starts_with("digraph"), "{dot}");
    let refs: usize = events
        .iter()
        .map(|e| e["refs"].as_array().unwrap().len())
        .sum();
    assert_eq!(dot.matches(" -> ").count(), refs, "{dot}");

    // `amb inspect --at K --json`: step 0 is the deployed program, the last step the
    // normal form, past the last is the last; a step's second half names its step.
    let at = |k: &str| json(&node.amb(&["inspect", address, "--at", k, "--json"]));
    assert_eq!(at("0")["term"], "a[in b.open_]|b[in_ a.open a]|open b");
    assert_eq!(at("0")["step"], 0);
    assert_eq!(at(&steps.to_string())["term"], run["normal_form"]);
    assert_eq!(at("99")["step"], steps);
    let second_halves: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e["op"].as_str(), Some("in_" | "out_" | "open")))
        .map(|e| e["cid"].as_str().expect("a CID"))
        .collect();
    assert_eq!(second_halves.len() as u64, steps);
    for (k, cid) in second_halves.iter().enumerate() {
        assert_eq!(at(cid)["step"], k as u64 + 1, "the step of {cid}");
    }
    let inspected = node.amb(&["inspect", address, "--at", "1"]);
    assert_eq!(text(&inspected.stderr), "unverified (run amb verify)\n");
    let shown = success(&inspected);
    assert!(shown.starts_with(&format!("step 1 of {steps}")), "{shown}");
    let verified = node.amb(&["inspect", address, "--at", "1", "--verify"]);
    assert_eq!(text(&verified.stderr), "");
    assert_eq!(success(&verified), shown);

    // `--diff`: what one step changed, as removed and added lines.
    let diff = success(&node.amb(&["inspect", address, "--diff", "0", "1"]));
    assert!(diff.starts_with("--- step 0\n+++ step 1"), "{diff}");
    assert!(diff.lines().any(|l| l.starts_with('-')) && diff.lines().any(|l| l.starts_with('+')));

    // Bad moments are clear errors.
    let err = failure(&node.amb(&["inspect", address, "--at", "not-a-step"]));
    assert!(
        err.contains("neither a step number nor an event CID"),
        "{err}"
    );
    let other = Cid::of(b"no such event").to_string();
    let err = failure(&node.amb(&["inspect", address, "--at", &other]));
    assert!(err.contains("is not an event of this program"), "{err}");
}

/// A program whose normal form is larger than a pipe's buffer (64 KiB): 1,000 empty
/// ambients with 80-character names, and no step.
fn wide_program() -> String {
    (0..1000)
        .map(|i| format!("{}_{i:04}[]", "w".repeat(75)))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn a_closed_output_pipe_ends_verify_log_and_inspect_quietly() {
    // `amb verify --json ADDRESS | head -c 300`: the reader takes 300 bytes and goes
    // away while the command still writes: it must end with status 0, not panic.
    let node = Node::init();
    let file = node.tmp.path().join("wide.amb");
    std::fs::write(&file, wide_program()).expect("written");
    let run = json(&node.amb(&["run", s(&file), "--json"]));
    let address = run["address"].as_str().expect("an address");
    let normal_form = run["normal_form"].as_str().expect("a normal form");
    assert!(normal_form.len() > 80_000, "{} bytes", normal_form.len());
    for args in [
        &["verify", address, "--json"][..],
        &["verify", address],
        &["log", address, "--json"],
        &["log", address],
        &["inspect", address, "--at", "0", "--json"],
        &["inspect", address, "--at", "0"],
    ] {
        let what = args.join(" ");
        let mut child = node
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("amb starts");
        let mut head = [0u8; 300];
        child
            .stdout
            .take()
            .expect("piped")
            .read_exact(&mut head)
            .unwrap_or_else(|e| panic!("{what}: reading 300 bytes: {e}"));
        // The read end is closed here (dropped).
        let mut stderr = child.stderr.take().expect("piped");
        let err = std::thread::spawn(move || {
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            err
        });
        let status = wait_until(&what, || child.try_wait().expect("waiting"));
        let err = err.join().expect("stderr read");
        assert_eq!(status.code(), Some(0), "{what}: {status}, stderr: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

/// Byte flips of the tamper test.
const FLIPS: usize = 150;
/// Truncations of the tamper test.
const TRUNCATIONS: usize = 20;
/// Steps of the tamper test's program (a few thousand events: each verify is quick).
const TAMPER_STEPS: u64 = 1_000;

/// What one `amb verify --json` of a tampered store says, judged against the
/// original's verification: `intact` (exit 0: complete, with the original events,
/// logs, steps and normal form), `incomplete` (exit 3), or the failure's kind and rule
/// (exit 1); an error for anything else (a panic, exit 0 with other content, output
/// that is not the JSON promised).
fn judge(out: &Output, original: &Value) -> Result<String, String> {
    let err = text(&out.stderr);
    if err.contains("panicked") || out.status.code() == Some(101) {
        let first: Vec<&str> = err.lines().take(2).collect();
        return Err(format!("{}: {}", out.status, first.join(" ")));
    }
    let said: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{}: not JSON ({e}): {}{err}", out.status, text(&out.stdout)))?;
    match out.status.code() {
        Some(0) => {
            if said["complete"] != true {
                return Err(format!("exit 0 without `complete`: {said}"));
            }
            for key in ["events", "logs", "steps", "normal_form"] {
                if said[key] != original[key] {
                    return Err(format!("exit 0 with another {key}: {}", said[key]));
                }
            }
            Ok("intact".into())
        }
        Some(3) if said["complete"] == false && said["stops_at"]["event"].is_string() => {
            Ok("incomplete".into())
        }
        Some(1) => {
            let error = &said["error"];
            let kind = error["kind"].as_str().ok_or(format!("no kind: {said}"))?;
            if !error["message"].is_string() {
                return Err(format!("no message: {said}"));
            }
            match (kind, error["rule"].as_str(), error["at"].is_string()) {
                ("refused", Some(rule), true) => Ok(format!("refused {rule}")),
                ("refused", ..) => Err(format!("a refusal without its rule and event: {said}")),
                _ => Ok(kind.to_string()),
            }
        }
        _ => Err(format!("{}: {said}", out.status)),
    }
}

#[test]
fn a_tampered_store_never_panics_and_verifies_only_when_whole() {
    // The issue 11 reproduction: a real run of a generated program; then, from a
    // fixed seed, copies of its store with one byte flipped or cut short, each verified
    // by `amb verify --json` in a second home: never a panic (status 101), and exit 0
    // only when it says complete with exactly the original events, logs, steps and
    // normal form.
    let started = Instant::now();
    let node = Node::init();
    let monoid = std::fs::read_to_string(corpus(MONOID)).expect("the monoid");
    let program = amb_bench::confluent::confluent_program(&monoid, TAMPER_STEPS);
    let file = node.tmp.path().join("tamper.amb");
    std::fs::write(&file, &program.text).expect("written");
    let run = json(&node.amb(&["run", s(&file), "--json"]));
    let address = run["address"].as_str().expect("an address").to_string();
    let original = json(&node.amb(&["verify", &address, "--json"]));
    assert_eq!(original["complete"], true);
    assert_eq!(original["steps"], program.steps);
    let pristine = std::fs::read(node.store()).expect("the store");
    eprintln!(
        "{} steps, {} events, a store of {} bytes, in {} ms",
        program.steps,
        original["events"],
        pristine.len(),
        started.elapsed().as_millis()
    );

    let trial = Node::init();
    let mut rng = amb_bench::Rng::new(0x7a3b_e4d1_0000_0011);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    let mut log_checked = false;
    for t in 0..FLIPS + TRUNCATIONS {
        let mut bytes = pristine.clone();
        let what = if t < FLIPS {
            let at = rng.below(bytes.len());
            let bit = 1u8 << rng.below(8);
            bytes[at] ^= bit;
            format!("trial {t}: byte {at} ^ {bit:#04x}")
        } else {
            let len = rng.below(bytes.len());
            bytes.truncate(len);
            format!("trial {t}: cut to {len} bytes")
        };
        std::fs::write(trial.store(), &bytes).expect("the tampered store");
        let out = output_within(&mut trial.command(&["verify", &address, "--json"]), &what);
        // Every tenth store is also listed unverified: never a panic, and said so.
        if t % 10 == 0 {
            let listed = output_within(&mut trial.command(&["log", &address, "--json"]), &what);
            let err = text(&listed.stderr);
            let said = listed.status.code() == Some(0) && err == "unverified (run amb verify)\n";
            if !(said || listed.status.code() == Some(1) && !err.contains("panicked")) {
                failures.push(format!("{what}: amb log: {}: {err}", listed.status));
            }
        }
        match judge(&out, &original) {
            Ok(outcome) => {
                // `amb log --verify` fails as `amb verify` does (once is enough).
                if outcome.starts_with("refused") && !log_checked {
                    let listed = trial.amb(&["log", &address, "--json", "--verify"]);
                    let said: Value = serde_json::from_slice(&out.stdout).expect("JSON");
                    let listed_said: Value =
                        serde_json::from_slice(&listed.stdout).expect("a JSON error");
                    assert_eq!(listed.status.code(), Some(1), "{what}: amb log --verify");
                    assert_eq!(
                        listed_said["error"], said["error"],
                        "{what}: amb log --verify"
                    );
                    log_checked = true;
                }
                *outcomes.entry(outcome).or_default() += 1;
            }
            Err(failure) => failures.push(format!("{what}: {failure}")),
        }
    }
    eprintln!(
        "{FLIPS} flips and {TRUNCATIONS} truncations in {} s: {outcomes:?}; {} failed",
        started.elapsed().as_secs(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} trials failed:\n{}",
        failures.len(),
        FLIPS + TRUNCATIONS,
        failures.join("\n")
    );
}

/// A store truncated to half its size: every command that opens it exits 1 saying the
/// store is damaged, names the file, never panics, and leaves the file as it was.
#[test]
fn a_truncated_store_is_damaged_for_every_command_that_opens_it() {
    let node = Node::init();
    let run = json(&node.amb(&["run", s(&corpus(MONOID)), "--json"]));
    let address = run["address"].as_str().expect("an address").to_string();
    let store = node.home.join(amb_log::DEFAULT_STORE_FILE);
    let len = std::fs::metadata(&store).expect("the store").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .expect("open the store")
        .set_len(len / 2)
        .expect("truncate");
    let left = std::fs::read(&store).expect("read the store");
    let damaged = format!("the store at {} is damaged", s(&store));
    for args in [
        &["verify", &address][..],
        &["log", &address],
        &["inspect", &address, "--at", "0"],
        &["run", "--resume", &address],
    ] {
        let err = failure(&node.amb(args));
        assert!(err.contains(&damaged), "{args:?}: {err}");
    }
    // The node refuses to start.
    let mut child = common::node::amb_command(node.tmp.path())
        .args(["node", "--api", "127.0.0.1:0", "--no-mdns"])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--home", s(&node.home)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("amb node starts");
    common::node::wait_until("the node to exit", || child.try_wait().expect("try_wait"));
    let err = failure(&child.wait_with_output().expect("its output"));
    assert!(err.contains(&damaged), "node: {err}");
    assert_eq!(std::fs::read(&store).expect("read the store"), left);
}
