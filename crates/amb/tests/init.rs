//! `amb init`: the key and configuration are created once, at the default location
//! or where `--home` / `AMB_HOME` say, and a later init never replaces the key.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
};

mod common;
use common::{failure, json_of, text};

/// Runs `amb` with a controlled environment: no `AMB_HOME` unless given, and the
/// default data directory inside `data`.
fn amb(args: &[&str], data: &Path, amb_home: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amb"));
    command
        .args(args)
        .env_remove("AMB_HOME")
        .env("XDG_DATA_HOME", data)
        .env("HOME", data)
        .stdin(Stdio::null());
    if let Some(home) = amb_home {
        command.env("AMB_HOME", home);
    }
    command.output().expect("amb runs")
}

/// Asserts success and returns the parsed `--json` output.
fn json(output: &Output) -> serde_json::Value {
    json_of(output)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn first_init_creates_key_and_config_second_keeps_them() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path();
    let home = data.join("amb");

    let first = json(&amb(&["init", "--json"], data, None));
    let keys: Vec<_> = first.as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, ["home", "peer_id", "public_key", "created"]);
    assert_eq!(first["home"], s(&home));
    assert_eq!(first["created"], true);
    let public_key = first["public_key"].as_str().expect("hex").to_string();
    assert_eq!(public_key.len(), 64);
    assert!(public_key.bytes().all(|b| b.is_ascii_hexdigit()));
    // The identity as everywhere else: the peer id of that key.
    let peer_id = first["peer_id"].as_str().expect("a peer id").to_string();
    assert!(
        peer_id.starts_with("12D3KooW") && peer_id.len() > 40,
        "{peer_id}"
    );

    let key = std::fs::read(home.join("key")).expect("the key file");
    assert_eq!(key.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The API's bearer token: 64 hex digits, readable by its owner only.
    let token = std::fs::read_to_string(home.join("api_token")).expect("the token file");
    assert_eq!(token.trim().len(), 64, "{token}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("api_token"))
            .expect("token")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config");
    assert!(config.contains("store = \"store.redb\""), "{config}");
    assert!(home.join("store.redb").exists());

    let second = json(&amb(&["init", "--json"], data, None));
    assert_eq!(second["created"], false);
    assert_eq!(second["public_key"], public_key.as_str());
    assert_eq!(std::fs::read(home.join("key")).expect("key"), key);
    let kept = std::fs::read_to_string(home.join("api_token")).expect("the token file");
    assert_eq!(kept, token, "a later init keeps the token");

    // The text form says what happened.
    let output = amb(&["init"], data, None);
    assert_eq!(output.status.code(), Some(0));
    let out = text(&output.stdout);
    assert!(out.starts_with("already initialized "), "{out}");
    assert!(out.contains(&format!("public key: {public_key}")), "{out}");
    assert!(out.contains(&format!("peer id: {peer_id}")), "{out}");
    assert_eq!(second["peer_id"], peer_id.as_str());
}

#[test]
fn amb_home_and_the_flag_override_the_default_and_the_flag_wins() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path().join("data");
    let env_home = tmp.path().join("from-env");
    let flag_home = tmp.path().join("from-flag");

    let by_env = json(&amb(&["init", "--json"], &data, Some(&env_home)));
    assert_eq!(by_env["home"], s(&env_home));
    assert!(env_home.join("key").exists());

    let by_flag = json(&amb(
        &["init", "--json", "--home", s(&flag_home)],
        &data,
        Some(&env_home),
    ));
    assert_eq!(by_flag["home"], s(&flag_home));
    assert_eq!(by_flag["created"], true);
    assert!(flag_home.join("key").exists());
    assert_ne!(by_flag["public_key"], by_env["public_key"]);
    // Neither touched the default location.
    assert!(!data.join("amb").exists());
}

#[test]
fn a_corrupt_key_is_a_clear_error_and_is_left_alone() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let home = tmp.path().join("h");
    json(&amb(
        &["init", "--json", "--home", s(&home)],
        tmp.path(),
        None,
    ));
    std::fs::write(home.join("key"), b"not a key").expect("write");

    let err = failure(&amb(&["init", "--home", s(&home)], tmp.path(), None));
    assert!(err.contains("corrupt key file"), "{err}");
    assert!(err.contains("9 bytes, expected 32"), "{err}");
    assert!(err.contains(s(&home.join("key"))), "{err}");
    assert_eq!(std::fs::read(home.join("key")).expect("key"), b"not a key");

    // A broken configuration names the file and the problem.
    std::fs::remove_file(home.join("key")).expect("remove");
    json(&amb(
        &["init", "--json", "--home", s(&home)],
        tmp.path(),
        None,
    ));
    std::fs::write(home.join("config.toml"), "store = [\n").expect("write");
    let err = failure(&amb(&["init", "--home", s(&home)], tmp.path(), None));
    assert!(err.contains("invalid configuration"), "{err}");
    assert!(err.contains("config.toml"), "{err}");
}

#[test]
fn a_home_that_cannot_be_created_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let file = tmp.path().join("a file");
    std::fs::write(&file, b"").expect("write");
    let home = file.join("home");
    let err = failure(&amb(&["init", "--home", s(&home)], tmp.path(), None));
    assert!(err.contains("creating"), "{err}");
}

#[test]
fn commands_that_make_a_homes_content_create_it_and_readers_refuse_a_missing_one() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let data = tmp.path();
    let missing = data.join("never-made");
    let address = format!("/amb/{}", amb_bytecode::Cid::of(b"no program"));
    // The readers refuse, naming the home and what makes one, and create nothing.
    for args in [
        vec!["ls"],
        vec!["log", &address],
        vec!["inspect", &address, "--at", "1"],
        vec!["verify", &address],
        vec!["export", &address, "-o", "out.car"],
        vec!["ui", "--api", "127.0.0.1:0"],
    ] {
        let mut with_home = args.clone();
        with_home.extend(["--home", s(&missing), "--json"]);
        let out = amb(&with_home, data, None);
        let err = failure(&out);
        assert!(
            err.contains(s(&missing)) && err.contains("amb init"),
            "{args:?}: {err}"
        );
        let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(error["error"]["kind"], "invalid", "{args:?}: {error}");
        assert!(!missing.exists(), "{args:?} created the home");
    }
    // `run` and `import` create it, saying so on stderr, and use it.
    let program = data.join("p.amb");
    std::fs::write(&program, "a[in b] | b[in_ a]").expect("written");
    let run = amb(
        &["run", s(&program), "--home", s(&missing), "--json"],
        data,
        None,
    );
    assert!(
        text(&run.stderr).contains(&format!("created the home {}", s(&missing))),
        "{run:?}"
    );
    let address = json(&run)["address"]
        .as_str()
        .expect("an address")
        .to_string();
    assert!(missing.join("key").is_file());
    let car = data.join("p.car");
    json(&amb(
        &[
            "export",
            &address,
            "-o",
            s(&car),
            "--home",
            s(&missing),
            "--json",
        ],
        data,
        None,
    ));
    let other = data.join("imported-into");
    let import = amb(
        &["import", s(&car), "--home", s(&other), "--json"],
        data,
        None,
    );
    assert!(
        text(&import.stderr).contains("created the home"),
        "{import:?}"
    );
    assert_eq!(json(&import)["address"], address.as_str());
    // A second run does not say it again.
    let again = amb(&["run", s(&program), "--home", s(&missing)], data, None);
    assert!(
        !text(&again.stderr).contains("created the home"),
        "{again:?}"
    );
}
