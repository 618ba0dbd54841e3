//! `amb reduce` and `amb explore` end to end: every ROAM program of the shared corpus
//! (read in place; the test fails when it is missing) and the examples the issue names.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

fn corpus() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
}

fn amb(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_amb"))
        .args(args)
        .output()
        .expect("amb runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (code, stdout, stderr) = amb(args);
    assert_eq!(code, 0, "amb {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// (file, kind, normal forms) of every row of INDEX.tsv.
fn index() -> Vec<(String, String, Vec<String>)> {
    let path = corpus().join("INDEX.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the shared corpus is missing at {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let forms = cols
                .get(3)
                .filter(|s| !s.is_empty())
                .map(|s| s.split(" ; ").map(String::from).collect())
                .unwrap_or_default();
            (cols[0].to_string(), cols[1].to_string(), forms)
        })
        .collect()
}

#[test]
fn every_corpus_program_reduces_to_a_listed_form_and_explores_to_exactly_the_set() {
    let mut failures = Vec::new();
    let roam: Vec<_> = index()
        .into_iter()
        .filter(|(_, k, _)| k == "roam")
        .collect();
    assert_eq!(roam.len(), 112);
    for (file, _, forms) in roam {
        let path = corpus().join(&file);
        let path = path.to_str().unwrap();
        let reduced = json(&["reduce", "--json", path]);
        let keys: Vec<&str> = reduced
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["normal_form", "value", "steps", "stuck"], "{file}");
        let nf = reduced["normal_form"].as_str().unwrap().to_string();
        if !forms.contains(&nf) {
            failures.push(format!("reduce {file}: {nf} not in {forms:?}"));
        }
        let explored = json(&["explore", "--json", path]);
        let keys: Vec<&str> = explored
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            ["normal_forms", "states", "confluent", "truncated"],
            "{file}"
        );
        let found: Vec<String> = explored["normal_forms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        if found != forms {
            failures.push(format!("explore {file}: {found:?} != {forms:?}"));
        }
        assert_eq!(explored["truncated"], Value::Bool(false), "{file}");
        assert_eq!(
            explored["confluent"],
            Value::Bool(forms.len() == 1),
            "{file}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn runnable_examples_reduce_to_their_stated_results() {
    let cases = [
        (
            "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb",
            "string[concat[left[string[hello[]]]|right[string[world[]]]]]",
            Value::from("helloworld"),
        ),
        (
            "ambientsprotocol-encoding-examples/functors/identity-functor.amb",
            "identity[int[length[string[hello[]]]]]",
            Value::Null,
        ),
        (
            "ambientsprotocol-whitepaper/ch05/10-func.amb",
            "result[]",
            Value::Null,
        ),
        (
            "ambientsprotocol-whitepaper/ch05/12-arg.amb",
            "func[input[]|open_]",
            Value::Null,
        ),
        (
            "ambientsprotocol-whitepaper/ch05/18-call.amb",
            "x[]|y[payload[]]",
            Value::Null,
        ),
        (
            "ambientsprotocol-whitepaper/ch05/20-call-return.amb",
            "x[y[]]",
            Value::Null,
        ),
        (
            "ambientsprotocol-whitepaper/ch05/15-message-hello-composed.amb",
            "message[string[hello[]]]",
            Value::Null,
        ),
        (
            "ambientsprotocol-whitepaper/ch05/16-constant-function.amb",
            "string[hello[]]",
            Value::from("hello"),
        ),
    ];
    for (file, normal_form, value) in cases {
        let path = corpus().join(file);
        let out = json(&["reduce", "--json", path.to_str().unwrap()]);
        assert_eq!(out["normal_form"], Value::from(normal_form), "{file}");
        assert_eq!(out["value"], value, "{file}");
    }
}

#[test]
fn race_example_has_two_normal_forms() {
    let path = corpus().join("ambientsprotocol-ambc/test/fixtures/ir/007.ambient");
    let out = json(&["explore", "--json", path.to_str().unwrap()]);
    assert_eq!(out["normal_forms"].as_array().unwrap().len(), 2);
    assert_eq!(out["confluent"], Value::Bool(false));
}

#[test]
fn limits_are_errors_and_traces_list_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.amb");
    std::fs::write(&file, "a[in b] | b[in_ a.in c] | c[in_ b]").unwrap();
    let file = file.to_str().unwrap();
    let (code, stdout, stderr) = amb(&["reduce", "--max-steps", "1", file]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("max_steps"), "{stderr}");
    let (code, stdout, _) = amb(&["reduce", "--trace", file]);
    assert_eq!(code, 0);
    assert!(stdout.contains("step 1: a#1 enters b#2"), "{stdout}");
    assert!(stdout.contains("step 2: b#2 enters c#3"), "{stdout}");
    assert!(stdout.contains("normal form: c[b[a[]]]"), "{stdout}");
    // A budget no reduction can keep is bad usage (exit 2), said before any work.
    let (code, _, stderr) = amb(&["reduce", "--max-memory", "16", file]);
    assert_eq!(code, 2);
    assert!(stderr.contains("16 bytes cannot be met"), "{stderr}");
    // A budget the engine outgrows is the engine's error (exit 1).
    let wide = dir.path().join("wide.amb");
    std::fs::write(&wide, "x[in_ y]|".repeat(100_000) + "y[]").unwrap();
    let (code, _, stderr) = amb(&["reduce", "--max-memory", "1048576", wide.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("max_memory_bytes"), "{stderr}");
    let (code, stdout, _) = amb(&["explore", "--max-states", "1", "--json", file]);
    assert_eq!(code, 0);
    let out: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(out["truncated"], Value::Bool(true));
    assert_eq!(out["confluent"], Value::Null);
}

/// An initialized home in a temporary directory (service calls use its store).
fn home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_str().unwrap();
    let (code, _, stderr) = amb(&["--home", path, "init"]);
    assert_eq!(code, 0, "{stderr}");
    dir
}

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_system_examples_reduce_with_their_effects() {
    let home = home();
    let h = home.path().to_str().unwrap();
    // BLAKE3 of the canonical encoding of "hello" (spec/system.md §3).
    let hash = json(&["--home", h, "--json", "reduce", &example("sys_hash.amb")]);
    let hello = "c5919eb25e32df3ac400757942250b6a9776c7b1ac1e8e465ec6ca0de8e4cb3f";
    assert_eq!(hash["normal_form"], format!("bytes[{hello}[]]"));
    assert_eq!(hash["effects"][0]["service"], "sys_hash");
    assert_eq!(hash["effects"][0]["argument"], "hello");
    assert_eq!(hash["effects"][0]["result"]["bytes"], hello);
    // Store and fetch: y ends with the value x stored.
    let put_get = json(&["--home", h, "--json", "reduce", &example("sys_put_get.amb")]);
    let form = put_get["normal_form"].as_str().unwrap();
    assert!(form.contains("y[string[kept[]]]"), "{form}");
    let services: Vec<&str> = put_get["effects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["sys_put", "sys_get"]);
    // Random: 16 bytes, another draw each run.
    let draw = || {
        let random = json(&["--home", h, "--json", "reduce", &example("sys_random.amb")]);
        random["effects"][0]["result"]["bytes"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (first, second) = (draw(), draw());
    assert_eq!(first.len(), 32, "{first}");
    assert_ne!(first, second);
}

#[test]
fn a_program_faking_a_service_ambient_is_refused_with_its_rule() {
    let home = home();
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.amb");
    std::fs::write(&fake, "x[open sys_hash] | sys_hash[open_|bytes[00[]]]").unwrap();
    let (code, stdout, stderr) = amb(&[
        "--home",
        home.path().to_str().unwrap(),
        "reduce",
        fake.to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{stdout}");
    assert!(stderr.contains("reserved-name"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
