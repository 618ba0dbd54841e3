//! `amb run` and `amb verify` end to end: a run deploys to a fresh address, prints
//! what `amb reduce` prints plus the address and the number of events, and its events
//! verify; unknown addresses and uninitialized homes are clear errors (exit 1).

mod common;
use common::corpus;
use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// Asserts exit 0 and returns stdout.
fn success(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Asserts exit 1 without a panic and returns stderr.
fn failure(output: &Output) -> String {
    let err = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {err}",
        text(&output.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    err
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
        let verified = json(&node.amb(&["verify", address, "--json"]));
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
