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
            [
                "address",
                "normal_form",
                "value",
                "steps",
                "events",
                "stuck"
            ],
            "{file}"
        );
        let reduced = json(&amb(&["reduce", s(&path), "--json"], node.tmp.path()));
        for key in ["normal_form", "value", "steps", "stuck"] {
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
    assert!(err.contains(&format!("no program {unknown} here")), "{err}");
    // Not an address at all.
    let err = failure(&node.amb(&["verify", "/amb/not-a-cid"]));
    assert!(
        err.contains("`/amb/not-a-cid` is not a program address"),
        "{err}"
    );
    // A bytecode CID (`amb compile`) where an address is expected: said so.
    let path = corpus(MONOID);
    json(&node.amb(&["run", s(&path), "--json"]));
    let block = success(&amb(&["compile", s(&path)], node.tmp.path()));
    let block = block.trim();
    for args in [
        vec!["verify", block],
        vec!["run", "--resume", block],
        vec!["log", block],
        vec!["inspect", block, "--at", "0"],
        vec!["export", block, "-o", "x.car"],
    ] {
        let err = failure(&node.amb(&args));
        assert!(
            err.contains(&format!(
                "{block} is a bytecode CID (`amb compile`), not a program address (`amb run`/`deploy`)"
            )),
            "{args:?}: {err}"
        );
    }
    // A prefix of a stored program's bytecode CID is named as one too.
    let err = failure(&node.amb(&["verify", &block[..12]]));
    assert!(
        err.contains(&format!("{block} is a bytecode CID (`amb compile`)")),
        "{err}"
    );
    // A CID prefix too short for an event is not called a program address.
    let run = json(&node.amb(&["run", s(&path), "--json"]));
    let address = run["address"].as_str().unwrap();
    let err = failure(&node.amb(&["inspect", address, "--at", "bafyr4i"]));
    assert!(err.contains("`bafyr4i` is not an event CID"), "{err}");
    // An unknown address gets one wording everywhere.
    for args in [
        vec!["verify", unknown.as_str()],
        vec!["run", "--resume", unknown.as_str()],
        vec!["log", unknown.as_str()],
        vec!["inspect", unknown.as_str(), "--at", "0"],
        vec!["export", unknown.as_str(), "-o", "x.car"],
    ] {
        let err = failure(&node.amb(&args));
        assert!(
            err.contains(&format!("no program {unknown} here")),
            "{args:?}: {err}"
        );
    }
    // With --json, the failure is also a JSON error on stdout.
    for (address, kind) in [
        (unknown.as_str(), "not-found"),
        ("/amb/not-a-cid", "invalid"),
        (block, "invalid"),
    ] {
        let out = node.amb(&["verify", address, "--json"]);
        failure(&out);
        // Printed once.
        assert_eq!(
            text(&out.stdout).lines().count(),
            1,
            "{}",
            text(&out.stdout)
        );
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
fn run_creates_a_missing_home_and_verify_without_one_says_to_run_amb_init() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let home = tmp.path().join("never-initialized");
    let unknown = format!("/amb/{}", Cid::of(b"x"));
    let err = failure(&amb(&["verify", &unknown, "--home", s(&home)], tmp.path()));
    assert!(err.contains("run `amb init`"), "{err}");
    assert!(!home.exists());
    // `amb run` makes the home it needs, and says so on stderr.
    let path = corpus(MONOID);
    let out = amb(&["--home", s(&home), "run", s(&path), "--json"], tmp.path());
    let run = json(&out);
    assert_eq!(run["value"], "helloworld");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("created the home {}", home.display())),
        "{err}"
    );
    assert!(err.contains("peer id 12D3KooW"), "{err}");
    assert!(home.join("key").is_file());
    // The second run uses it without a word about it.
    let again = amb(&["run", s(&path), "--home", s(&home)], tmp.path());
    success(&again);
    assert!(!text(&again.stderr).contains("created the home"));
    // The default home too (in the data directory).
    let out = amb(&["run", s(&path)], tmp.path());
    success(&out);
    assert!(
        text(&out.stderr).contains("created the home"),
        "{}",
        text(&out.stderr)
    );
    assert!(tmp.path().join("amb").is_dir());
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
    // A step past the end is refused, naming the last step.
    let err = failure(&node.amb(&["inspect", address, "--at", "99"]));
    assert!(
        err.contains(&format!("step 99 is past the end: the run of {address} has {steps} steps (the last is step {steps})")),
        "{err}"
    );
    assert_eq!(
        invalid_kind(&node.amb(&["inspect", address, "--at", "99", "--json"])),
        "invalid"
    );
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

    // `--diff`: what one step changed, as removed and added lines; with --json the
    // same lines as `{"from", "to", "lines"}`.
    let diff = success(&node.amb(&["inspect", address, "--diff", "0", "1"]));
    assert!(diff.starts_with("--- step 0\n+++ step 1"), "{diff}");
    assert!(diff.lines().any(|l| l.starts_with('-')) && diff.lines().any(|l| l.starts_with('+')));
    let diff_json = json(&node.amb(&["inspect", address, "--diff", "0", "1", "--json"]));
    assert_eq!(
        (diff_json["from"].clone(), diff_json["to"].clone()),
        (0.into(), 1.into())
    );
    let lines: Vec<&str> = diff_json["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l.as_str().expect("a line"))
        .collect();
    assert_eq!(lines, diff.lines().skip(2).collect::<Vec<_>>());

    // Bad moments are clear errors.
    let err = failure(&node.amb(&["inspect", address, "--at", "not-a-step"]));
    assert!(
        err.contains("`not-a-step` is neither a step number nor an event of the program"),
        "{err}"
    );
    let other = Cid::of(b"no such event").to_string();
    let err = failure(&node.amb(&["inspect", address, "--at", &other]));
    assert!(
        err.contains(&format!("no event {other} in {address}")),
        "{err}"
    );
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

/// `amb ls --json`'s programs.
fn listed(node: &Node) -> Vec<Value> {
    let list = json(&node.amb(&["ls", "--json"]));
    list["programs"].as_array().expect("a program list").clone()
}

#[test]
fn ls_lists_the_store_and_short_prefixes_name_programs_and_events() {
    let node = Node::init();
    assert!(listed(&node).is_empty());
    assert!(success(&node.amb(&["ls"])).starts_with("no programs"));
    let file = node.tmp.path().join("p.amb");
    std::fs::write(&file, "a[in b.open_] | b[in_ a.open a]").expect("written");
    let stuck = node.tmp.path().join("stuck.amb");
    std::fs::write(&stuck, "a[in nowhere]").expect("written");
    let run = json(&node.amb(&["run", s(&file), "--json"]));
    let stuck_run = json(&node.amb(&["run", s(&stuck), "--json"]));
    assert_eq!(
        (run["stuck"].clone(), stuck_run["stuck"].clone()),
        (false.into(), true.into())
    );
    let address = run["address"].as_str().expect("an address");

    // Both programs, with their names, statuses and counts; `created` is recent.
    let programs = listed(&node);
    assert_eq!(programs.len(), 2, "{programs:?}");
    let entry = programs
        .iter()
        .find(|p| p["address"] == address)
        .expect("listed");
    assert_eq!(entry["name"], "p");
    assert_eq!(entry["status"], "complete");
    assert_eq!(entry["events"], run["events"]);
    assert_eq!(entry["steps"], run["steps"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let created = entry["created"].as_u64().expect("a creation time");
    assert!(created <= now && now - created < 600_000, "{entry}");
    let other = programs
        .iter()
        .find(|p| p["address"] != address)
        .expect("listed");
    assert_eq!(
        (other["name"].clone(), other["status"].clone()),
        ("stuck".into(), "stuck".into())
    );
    let table = success(&node.amb(&["ls"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(address) && l.contains(" complete ")),
        "{table}"
    );
    // `--home` before the subcommand (a global option) works the same.
    let before = amb(&["--home", s(&node.home), "ls", "--json"], node.tmp.path());
    assert_eq!(json(&before)["programs"].as_array().map(Vec::len), Some(2));

    // A unique prefix of an address (16 characters, as listed) is accepted anywhere
    // an address is.
    let cid = &address[5..];
    let short = &cid[..16];
    let verified = json(&node.amb(&["verify", short, "--json"]));
    assert_eq!(verified["address"], address);
    let log = json(&node.amb(&["log", &format!("/amb/{short}"), "--json"]));
    assert_eq!(
        log.as_array().map(Vec::len),
        run["events"].as_u64().map(|n| n as usize)
    );

    // `amb log` shows each event by a 16-character prefix, which `inspect --at`
    // takes; writers are shown by the last 8 characters of their peer id, and the
    // JSON form has the writer's key, peer id and signature.
    let peer = json(&node.amb(&["init", "--json"]))["peer_id"]
        .as_str()
        .expect("a peer id")
        .to_string();
    assert!(peer.starts_with("12D3KooW"), "{peer}");
    let text_log = success(&node.amb(&["log", short]));
    let first = text_log.lines().nth(1).expect("an event line");
    assert!(
        first.contains(&format!("writer {}", &peer[peer.len() - 8..])),
        "{first}"
    );
    for event in log.as_array().expect("events") {
        assert_eq!(event["peer"], peer.as_str());
        assert_eq!(event["writer"].as_str().map(str::len), Some(64));
        assert_eq!(event["signature"].as_str().map(str::len), Some(128));
    }
    let last = log.as_array().unwrap().last().unwrap();
    let last_cid = last["cid"].as_str().expect("a CID");
    let listed_prefix = text_log
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("the last event's prefix");
    assert_eq!(listed_prefix.len(), 16);
    assert!(last_cid.starts_with(listed_prefix));
    let by_prefix = json(&node.amb(&["inspect", short, "--at", listed_prefix, "--json"]));
    let by_cid = json(&node.amb(&["inspect", short, "--at", last_cid, "--json"]));
    assert_eq!(by_prefix, by_cid);
    // Too short to name anything.
    let err = failure(&node.amb(&["verify", "bafyr4i"]));
    assert!(err.contains("is not a program address"), "{err}");
}

#[test]
fn an_ambiguous_prefix_lists_the_programs_it_starts() {
    let node = Node::init();
    let file = node.tmp.path().join("tiny.amb");
    std::fs::write(&file, "a[]").expect("written");
    // 33 addresses: two share their first 8 characters (7 are `bafyr4i`, the 8th
    // one of 32).
    let mut addresses: Vec<String> = Vec::new();
    let (one, two) = loop {
        let run = json(&node.amb(&["run", s(&file), "--json", "--quiet"]));
        let address = run["address"].as_str().expect("an address").to_string();
        let twin = addresses
            .iter()
            .find(|a| a[5..13] == address[5..13])
            .cloned();
        if let Some(twin) = twin {
            break (twin, address);
        }
        addresses.push(address);
        assert!(
            addresses.len() <= 32,
            "33 addresses without a shared prefix"
        );
    };
    let prefix = &one[5..13];
    let out = node.amb(&["verify", prefix, "--json"]);
    let err = failure(&out);
    assert!(err.contains(&format!("`{prefix}` is ambiguous")), "{err}");
    assert!(err.contains(&one) && err.contains(&two), "{err}");
    let error: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(error["error"]["kind"], "invalid");
}

#[test]
fn mistakes_are_refused_before_any_work() {
    let node = Node::init();
    let dir = node.tmp.path();
    // Empty and comment-only programs: nothing to run, unless asked.
    for (name, text) in [
        ("empty.amb", ""),
        ("comments.amb", "// only a comment\n  \n"),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).expect("written");
        let err = failure(&node.amb(&["run", s(&file)]));
        assert!(
            err.contains("holds no program (it is empty or only comments)"),
            "{err}"
        );
        // The user's input, refused before any work: kind `invalid`.
        assert_eq!(
            invalid_kind(&node.amb(&["run", s(&file), "--json"])),
            "invalid"
        );
        let run = json(&node.amb(&["run", s(&file), "--allow-empty", "--json"]));
        assert_eq!(run["steps"], 0);
    }
    assert_eq!(
        listed(&node).len(),
        2,
        "only the two allowed runs are stored"
    );
    // compile, reduce and explore refuse it the same way (`--allow-empty` accepts it).
    let empty = dir.join("empty.amb");
    for command in ["compile", "reduce", "explore"] {
        let out = amb(&[command, s(&empty), "--json"], dir);
        assert_eq!(invalid_kind(&out), "invalid", "{command}");
        assert!(
            text(&out.stderr).contains("holds no program (it is empty or only comments)"),
            "{command}: {}",
            text(&out.stderr)
        );
        success(&amb(&[command, s(&empty), "--allow-empty"], dir));
    }
    // A refused run leaves no home behind.
    let data = tempfile::tempdir().expect("a directory");
    failure(&amb(&["run", s(&empty)], data.path()));
    assert!(
        !data.path().join("amb").exists(),
        "a refused run created the default home"
    );
    // A memory budget no reduction can keep: bad usage (exit 2), named.
    let file = dir.join("p.amb");
    std::fs::write(&file, "a[in b] | b[]").expect("written");
    let out = node.amb(&["reduce", s(&file), "--max-memory", "1000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("1000 bytes cannot be met"),
        "{}",
        text(&out.stderr)
    );
    // A block over max_block_bytes is refused before compiling: 200,000 parts.
    let wide = dir.join("wide.amb");
    std::fs::write(&wide, "a[]|".repeat(200_000) + "a[]").expect("written");
    let started = Instant::now();
    let err = failure(&amb(
        &["compile", s(&wide), "--max-block-bytes", "100000"],
        dir,
    ));
    assert!(
        err.contains("the block of the program's root would be more than 100000 bytes (max_block_bytes): refused before compiling"),
        "{err}"
    );
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    // Over the default limit (4 MiB), `amb run` refuses it the same way.
    std::fs::write(&wide, "a[]|".repeat(120_000) + "a[]").expect("written");
    let err = failure(&node.amb(&["run", s(&wide)]));
    assert!(err.contains("refused before compiling"), "{err}");
    assert_eq!(
        invalid_kind(&node.amb(&["run", s(&wide), "--json"])),
        "invalid"
    );
    // Printing takes one file.
    assert_eq!(
        invalid_kind(&node.amb(&["fmt", s(&file), s(&file), "--json"])),
        "invalid"
    );
}

/// The `kind` of a failed command's `--json` error.
fn invalid_kind(out: &std::process::Output) -> String {
    failure(out);
    let error: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    error["error"]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no kind: {error}"))
        .to_string()
}

#[test]
fn json_and_quiet_cover_runs_reductions_and_traces() {
    let node = Node::init();
    let file = node.tmp.path().join("p.amb");
    std::fs::write(&file, "a[in b.open_] | b[in_ a.open a] | open b").expect("written");
    // --quiet leaves the normal form out; --verify verifies right after the run.
    let run = json(&node.amb(&["run", s(&file), "--json", "--quiet", "--verify"]));
    assert!(run.get("normal_form").is_none(), "{run}");
    assert_eq!(run["verified"], true);
    let out = success(&node.amb(&["run", s(&file), "--quiet", "--verify"]));
    assert!(!out.contains("normal form"), "{out}");
    assert!(
        out.contains(&format!("verified: {} events", run["events"])),
        "{out}"
    );
    // reduce --trace --json: the trace is part of the JSON, one object a step.
    let reduced = json(&amb(
        &["reduce", s(&file), "--trace", "--json"],
        node.tmp.path(),
    ));
    let trace = reduced["trace"].as_array().expect("a trace");
    assert_eq!(trace.len() as u64, reduced["steps"].as_u64().unwrap());
    assert_eq!(trace[0]["step"], 1);
    assert_eq!(trace[0]["rule"], "in");
    assert_eq!(
        (trace[0]["subject"].clone(), trace[0]["object"].clone()),
        ("a".into(), "b".into())
    );
    let quiet = success(&amb(&["reduce", s(&file), "--quiet"], node.tmp.path()));
    assert!(!quiet.contains("normal form"), "{quiet}");
    // verify --quiet too, in text and JSON.
    let address = run["address"].as_str().unwrap();
    let out = success(&node.amb(&["verify", address, "--quiet"]));
    assert!(
        out.contains("complete") && !out.contains("normal form"),
        "{out}"
    );
    let verified = json(&node.amb(&["verify", address, "--quiet", "--json"]));
    assert!(verified.get("normal_form").is_none(), "{verified}");
    assert_eq!(verified["complete"], true);
    // compile, explore and fmt answer in JSON too; errors in the API's shape.
    let compiled = json(&amb(&["compile", s(&file), "--json"], node.tmp.path()));
    assert!(
        compiled["cid"]
            .as_str()
            .is_some_and(|c| c.starts_with("bafyr4i"))
    );
    let explored = json(&amb(&["explore", s(&file), "--json"], node.tmp.path()));
    assert!(explored["normal_forms"].is_array());
    let formatted = json(&amb(&["fmt", s(&file), "--json"], node.tmp.path()));
    assert_eq!(formatted["text"], "a[in b.open_]|b[in_ a.open a]|open b\n");
    let bad = node.tmp.path().join("bad.amb");
    std::fs::write(&bad, "a[").expect("written");
    for command in ["fmt", "compile", "reduce", "run"] {
        let out = node.amb(&[command, s(&bad), "--json"]);
        failure(&out);
        let error: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
        assert_eq!(error["error"]["kind"], "invalid", "{command}: {error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("bad.amb:1:3"),
            "{error}"
        );
    }
}

/// Runs the independent CAR reader (`.ci/car-reader`, `@ipld/car`) on `file`: its
/// `{"version", "roots", "blocks", "mismatches"}`. Fails, never skips, without it.
fn car_reader(file: &Path) -> Value {
    let reader = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/car-reader");
    assert!(
        reader.join("node_modules/@ipld/car").is_dir(),
        "the CAR reader is not installed: run `npm ci` in {} (.ci/run does)",
        reader.display()
    );
    let out = Command::new("node")
        .arg(reader.join("read.mjs"))
        .arg(file)
        .output()
        .expect("node runs (install Node.js)");
    serde_json::from_str(&success(&out)).expect("the reader's JSON")
}

#[test]
fn a_program_exported_to_a_car_file_imports_into_another_home_and_verifies() {
    let a = Node::init();
    let run = json(&a.amb(&["run", s(&corpus(MONOID)), "--json"]));
    let address = run["address"].as_str().expect("an address");
    let car = a.tmp.path().join("monoid.car");
    let exported = json(&a.amb(&["export", &address[..21], "-o", s(&car), "--json"]));
    assert_eq!(exported["address"], address);
    assert_eq!(exported["events"], run["events"]);

    // The independent reader: CAR v1, the program manifest as root, every CID the
    // hash of its block.
    let read = car_reader(&car);
    assert_eq!(read["version"], 1);
    assert_eq!(read["roots"], serde_json::json!([&address[5..]]));
    assert_eq!(read["mismatches"], serde_json::json!([]));
    let blocks = read["blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len() as u64, exported["blocks"].as_u64().unwrap());
    assert_eq!(blocks[0]["cid"], &address[5..]);
    let log = json(&a.amb(&["log", address, "--json"]));
    let cids: std::collections::HashSet<&str> =
        blocks.iter().map(|b| b["cid"].as_str().unwrap()).collect();
    for event in log.as_array().unwrap() {
        assert!(cids.contains(event["cid"].as_str().unwrap()), "{event}");
    }

    // Into a fresh home: verified, stored, and the same value.
    let b = Node::init();
    let imported = json(&b.amb(&["import", s(&car), "--json"]));
    assert_eq!(imported["address"], address);
    assert_eq!(imported["complete"], true);
    assert_eq!(imported["normal_form"], run["normal_form"]);
    let verified = json(&b.amb(&["verify", address, "--json"]));
    assert_eq!(verified["events"], run["events"]);
    assert_eq!(verified["normal_form"], run["normal_form"]);
    assert_eq!(listed(&b)[0]["status"], "complete");
    // Importing again stores nothing new; --quiet leaves the normal form out.
    let again = json(&b.amb(&["import", s(&car), "--json", "--quiet"]));
    assert_eq!(again["new_events"], 0);
    assert!(again.get("normal_form").is_none(), "{again}");
    let out = success(&b.amb(&["import", s(&car), "--quiet"]));
    assert!(
        out.starts_with("imported ") && !out.contains("normal form"),
        "{out}"
    );
}

#[test]
fn a_forged_or_incomplete_car_file_is_refused_and_nothing_is_stored() {
    let a = Node::init();
    let run = json(&a.amb(&["run", s(&corpus(MONOID)), "--json"]));
    let address = run["address"].as_str().expect("an address");
    let car = a.tmp.path().join("monoid.car");
    success(&a.amb(&["export", address, "-o", s(&car)]));
    let original = amb_log::read_car(&std::fs::read(&car).unwrap()).expect("reads");
    let events: Vec<usize> = original
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, (_, bytes))| amb_log::Event::decode(bytes).is_ok())
        .map(|(i, _)| i)
        .collect();
    let write = |name: &str, blocks: &[(Cid, Vec<u8>)]| {
        let path = a.tmp.path().join(name);
        let mut out = Vec::new();
        amb_log::write_car(
            original.root,
            blocks.iter().map(|(c, b)| (*c, b.as_slice())),
            &mut out,
        )
        .unwrap();
        std::fs::write(&path, out).unwrap();
        path
    };
    let b = Node::init();
    let refused = |path: &Path, kind: &str| -> Value {
        let out = b.amb(&["import", s(path), "--json"]);
        let err = failure(&out);
        assert!(
            err.contains("nothing was stored") || kind == "invalid",
            "{err}"
        );
        let error: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
        assert_eq!(error["error"]["kind"], kind, "{error}");
        assert!(listed(&b).is_empty(), "nothing stored");
        error["error"].clone()
    };

    // A forged signature: the event's bytes changed (and its CID with them).
    let mut forged = original.blocks.clone();
    let (_, bytes) = &mut forged[events[3]];
    let at = bytes.len() - 5;
    bytes[at] ^= 0x55;
    let forged_cid = Cid::of(bytes);
    forged[events[3]].0 = forged_cid;
    let error = refused(&write("forged.car", &forged), "refused");
    assert!(error["rule"].is_string(), "{error}");
    assert!(error["at"].is_string(), "{error}");

    // The last event missing: the run is cut short, which a rule names.
    let mut cut = original.blocks.clone();
    let last = cut.remove(*events.last().unwrap()).0;
    let error = refused(&write("cut.car", &cut), "refused");
    assert!(error["rule"].is_string(), "{error}");
    assert_ne!(error["at"], last.to_string());

    // A block whose bytes are not its CID's: the file itself is refused.
    let mut bytes = std::fs::read(&car).unwrap();
    let end = bytes.len() - 3;
    bytes[end] ^= 1;
    let flipped = a.tmp.path().join("flipped.car");
    std::fs::write(&flipped, bytes).unwrap();
    let error = refused(&flipped, "invalid");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("does not match its CID"),
        "{error}"
    );
    // The original still imports.
    success(&b.amb(&["import", s(&car)]));
}

/// The commands of the README's quick start: the first `sh` block after its
/// `## Quick start` heading.
fn quick_start() -> Vec<String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(readme).expect("README.md");
    let section = &readme[readme.find("## Quick start").expect("a quick start")..];
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");
    block.lines().map(str::to_string).collect()
}

#[test]
fn the_readme_quick_start_runs_as_written() {
    let commands = quick_start();
    assert_eq!(
        commands[0], "cargo install --path crates/amb",
        "{commands:?}"
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let home = tmp.path().join("home");
    let mut outputs = String::new();
    // The commands after the install, with the binary just built and a fresh home.
    for line in &commands[1..] {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "amb", "{line}");
        let out = Command::new(env!("CARGO_BIN_EXE_amb"))
            .args(&words[1..])
            .current_dir(&repo)
            .env("AMB_HOME", &home)
            .stdin(Stdio::null())
            .output()
            .expect("amb runs");
        outputs.push_str(&success(&out));
        assert!(
            text(&out.stderr).contains("created the home"),
            "{}",
            text(&out.stderr)
        );
    }
    assert!(outputs.contains("value: \"helloworld\""), "{outputs}");
    assert!(outputs.contains("address: /amb/bafyr4i"), "{outputs}");
    assert!(outputs.contains("verified: "), "{outputs}");
    // Every example file the README names exists.
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    for word in readme.split(|c: char| c.is_whitespace() || c == '`') {
        if let Some(path) = word
            .strip_prefix("examples/")
            .filter(|p| p.ends_with(".amb") && !p.contains('*'))
        {
            assert!(
                repo.join("examples").join(path).is_file(),
                "examples/{path}"
            );
        }
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

#[test]
fn programs_calling_services_run_verify_and_replay_elsewhere_without_performing_effects() {
    let a = Node::init();
    // BLAKE3 of "hello" (spec/system.md §3): recomputed by the verifier.
    let hello = "c5919eb25e32df3ac400757942250b6a9776c7b1ac1e8e465ec6ca0de8e4cb3f";
    let hash = json(&a.amb(&["run", "--verify", "--json", s(&example("sys_hash.amb"))]));
    assert_eq!(hash["value"]["bytes"], hello, "{hash}");
    assert_eq!(hash["verified"], true);
    let checked = json(&a.amb(&["verify", "--json", hash["address"].as_str().unwrap()]));
    assert_eq!(checked["effects"][0]["service"], "sys_hash");
    assert_eq!(checked["effects"][0]["trust"], "recomputed");
    assert_eq!(checked["trusted"], serde_json::json!([]));
    assert_eq!(checked["effects_performed"], 0);
    // Store and fetch: both recomputed, y ends with the value x stored.
    let put_get = json(&a.amb(&["run", "--verify", "--json", s(&example("sys_put_get.amb"))]));
    assert!(
        put_get["normal_form"]
            .as_str()
            .unwrap()
            .contains("y[string[kept[]]]"),
        "{put_get}"
    );
    // Random: trusted as signed by this node, and the same value on another
    // home that imports the run, which performs nothing.
    let random = json(&a.amb(&["run", "--json", s(&example("sys_random.amb"))]));
    let address = random["address"].as_str().unwrap();
    let drawn = random["value"]["bytes"].as_str().unwrap().to_string();
    assert_eq!(drawn.len(), 32, "{random}");
    let checked = json(&a.amb(&["verify", "--json", address]));
    let key = amb_log::Home::at(&a.home).load().expect("the home").key;
    assert_eq!(checked["trusted"][0]["service"], "sys_random", "{checked}");
    assert_eq!(
        checked["trusted"][0]["creator"],
        key.public_key().to_string(),
        "{checked}"
    );
    // The peer id `amb log` gives the writer of the node's events.
    let events = json(&a.amb(&["log", "--json", address]));
    assert_eq!(
        checked["trusted"][0]["peer"], events[0]["peer"],
        "{checked}"
    );
    assert_eq!(checked["effects_performed"], 0);
    let text = success(&a.amb(&["verify", address]));
    assert!(
        text.contains("sys_random of 16") && text.contains("trusted, signed by"),
        "{text}"
    );
    let car = a.tmp.path().join("random.car");
    success(&a.amb(&["export", address, "-o", s(&car)]));
    let b = Node::init();
    let imported = json(&b.amb(&["import", s(&car), "--json"]));
    assert_eq!(imported["normal_form"], format!("bytes[{drawn}[]]"));
    assert_eq!(imported["effects_performed"], 0);
    let again = json(&b.amb(&["verify", "--json", address]));
    assert_eq!(again["effects"][0]["result"]["bytes"], drawn.as_str());
    // Time travel shows the recorded result right after the effect's step.
    let step = again["effects"][0]["after_step"]
        .as_u64()
        .unwrap()
        .to_string();
    let shown = success(&b.amb(&["inspect", address, "--at", &step]));
    assert!(shown.contains(&drawn), "{shown}");
    let log = success(&b.amb(&["log", address]));
    assert!(log.contains("effect sys_random"), "{log}");

    // A get of a block nobody holds ends, after its timeout, in the failure value.
    let nobody = Cid::of(b"a block nobody holds");
    let file = a.tmp.path().join("get.amb");
    std::fs::write(&file, calling("sys_get", &format!("string[{nobody}[]]"))).unwrap();
    let started = Instant::now();
    let got = json(&a.amb(&[
        "run",
        "--verify",
        "--json",
        "--effect-timeout-ms",
        "200",
        s(&file),
    ]));
    assert_eq!(got["value"]["failure"], "timeout", "{got}");
    assert_eq!(got["verified"], true);
    let took = started.elapsed();
    assert!(took.as_millis() >= 200 && took.as_secs() < 20, "{took:?}");
}

/// A program whose `x` calls `service` with `arg`, opened last so the result is the
/// program's value (as the examples do).
fn calling(service: &str, arg: &str) -> String {
    format!(
        "{service}[in_ call.open call.open return.open_]|x[call[arg[{arg}]|out x.in {service}.open_|return[open_.in x]]|out_ call.in_ {service}.open {service}.open_]|open x"
    )
}

#[test]
fn a_forged_effect_is_refused_naming_its_rule() {
    use amb_log::{AnyEvent, EffectEvent};
    use amb_vm::{system::value_block, value::Value as Typed};
    let a = Node::init();
    let key = amb_log::Home::at(&a.home).load().expect("the home").key;
    // Calls with no return: the effect is its log's last event, which no other
    // event refers to, so it can be swapped for a forged one.
    let without_return = |service: &str, arg: &str| {
        format!(
            "{service}[in_ call.open call.open return.open_]|x[call[arg[{arg}]|out x.in {service}.open_]|out_ call.in_ {service}]"
        )
    };
    let b = Node::init();
    // Runs `program`, swaps its effect event for `forge`'s (re-signed by `signer`,
    // the forged result's blocks added), imports the file into b: the error.
    let forged = |name: &str,
                  program: String,
                  signer: &amb_log::SigningKey,
                  result: Option<Typed>|
     -> Value {
        let file = a.tmp.path().join(format!("{name}.amb"));
        std::fs::write(&file, program).unwrap();
        let run = json(&a.amb(&[
            "run",
            "--verify",
            "--json",
            "--effect-timeout-ms",
            "100",
            s(&file),
        ]));
        let car = a.tmp.path().join(format!("{name}.car"));
        success(&a.amb(&["export", run["address"].as_str().unwrap(), "-o", s(&car)]));
        let mut original = amb_log::read_car(&std::fs::read(&car).unwrap()).unwrap();
        let at = original
            .blocks
            .iter()
            .position(|(_, bytes)| matches!(AnyEvent::decode(bytes), Ok(AnyEvent::Effect(_))))
            .expect("an effect event");
        let Ok(AnyEvent::Effect(effect)) = AnyEvent::decode(&original.blocks[at].1) else {
            unreachable!()
        };
        let mut body = effect.body().clone();
        if let Some(result) = &result {
            let (cid, blocks) = value_block(result).unwrap();
            body.result = cid;
            original.blocks.extend(blocks);
        }
        let swapped = EffectEvent::sign(body, signer);
        original.blocks[at] = (swapped.cid(), swapped.encode());
        let path = a.tmp.path().join(format!("{name}-forged.car"));
        let mut out = Vec::new();
        amb_log::write_car(
            original.root,
            original.blocks.iter().map(|(c, b)| (*c, b.as_slice())),
            &mut out,
        )
        .unwrap();
        std::fs::write(&path, out).unwrap();
        let refused = b.amb(&["import", s(&path), "--json"]);
        let message = failure(&refused);
        assert!(message.contains("nothing was stored"), "{message}");
        let error: Value = serde_json::from_slice(&refused.stdout).expect("a JSON error");
        assert_eq!(error["error"]["at"], swapped.cid().to_string(), "{error}");
        error["error"].clone()
    };
    // A forged hash result.
    let hash = forged(
        "hash",
        without_return("sys_hash", "string[hello[]]"),
        &key,
        Some(Typed::Bytes(vec![0; 32])),
    );
    assert_eq!(hash["rule"], "effect", "{hash}");
    assert!(
        hash["message"].as_str().unwrap().contains("sys_hash of"),
        "{hash}"
    );
    // A get answered with a block other than the one its CID names.
    let asked = value_block(&Typed::String("kept".into())).unwrap().0;
    let get = forged(
        "get",
        without_return("sys_get", &format!("string[{asked}[]]")),
        &key,
        Some(Typed::String("swapped".into())),
    );
    assert_eq!(get["rule"], "effect", "{get}");
    assert!(
        get["message"]
            .as_str()
            .unwrap()
            .contains("do not hash to the CID asked for"),
        "{get}"
    );
    // Signed by a key the log's manifest does not list.
    let stranger = amb_log::SigningKey::from_seed(&[42; 32]);
    let key_rule = forged(
        "stranger",
        without_return("sys_hash", "string[hello[]]"),
        &stranger,
        None,
    );
    assert_eq!(key_rule["rule"], "key", "{key_rule}");
    // A result over max_result_bytes (65,536 bytes of its canonical encoding).
    let large = forged(
        "large",
        without_return("sys_random", "int[4[]]"),
        &key,
        Some(Typed::Bytes(vec![7; 40_000])),
    );
    assert_eq!(large["rule"], "effect", "{large}");
    assert!(
        large["message"]
            .as_str()
            .unwrap()
            .contains("max_result_bytes"),
        "{large}"
    );
    assert!(listed(&b).is_empty(), "nothing stored");
}
