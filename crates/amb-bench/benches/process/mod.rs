//! `amb node` processes for the benches that run the release binary (`soak.rs`,
//! `fanout.rs`): each on a home made by `amb init` in a temporary directory,
//! listening on `127.0.0.1` port 0, its API on port 0, mDNS off; its ready line
//! read; its log kept in a file; killed when dropped. Also the process's memory.

// Each bench uses a part of it.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;

/// The longest any one wait may take.
pub(crate) const WAIT: Duration = Duration::from_secs(120);

/// The path in the variable `name`, else `default`.
pub(crate) fn path_from(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The `amb` binary: `AMB_BIN`, else the workspace's release build.
pub(crate) fn amb_binary() -> PathBuf {
    let path = path_from(
        "AMB_BIN",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/release/amb"),
    );
    assert!(
        path.is_file(),
        "no amb binary at {}: run `cargo build --release -p amb` first, or set AMB_BIN",
        path.display()
    );
    path
}

/// A field of `/proc/<pid>/status`, in KiB.
pub(crate) fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the node's status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in the node's status"))
}

/// An `amb` command with no `AMB_*` variable of the environment, on `home`.
fn amb_command(amb: &Path, home: &Path) -> Command {
    let mut command = Command::new(amb);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AMB_")) {
        command.env_remove(key);
    }
    command.stdin(Stdio::null()).arg("--home").arg(home);
    command
}

/// The node process; killed when dropped.
pub(crate) struct NodeProcess {
    child: Child,
    amb: PathBuf,
    pub(crate) api: String,
    pub(crate) peer_id: String,
    pub(crate) listen: Vec<String>,
    pub(crate) home: PathBuf,
    pub(crate) store: PathBuf,
    pub(crate) log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProcess {
    /// `amb node` on a new home, dialing `peers`, with `env` variables set.
    pub(crate) fn start(amb: &Path, peers: &[String], env: &[(&str, &str)]) -> NodeProcess {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let home = dir.path().join("home");
        let log = dir.path().join("node.log");
        let init = amb_command(amb, &home)
            .arg("init")
            .output()
            .expect("amb init runs");
        assert!(init.status.success(), "amb init: {init:?}");
        let mut command = amb_command(amb, &home);
        command.args([
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api",
            "127.0.0.1:0",
            "--no-mdns",
        ]);
        for peer in peers {
            command.args(["--peer", peer]);
        }
        let mut child = command
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("amb node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let line = match rx.recv_timeout(WAIT) {
            Ok(Some(Ok(line))) => line,
            other => panic!("no ready line from amb node: {other:?}"),
        };
        let ready: Value = serde_json::from_str(&line).expect("a JSON ready line");
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        NodeProcess {
            child,
            amb: amb.to_path_buf(),
            api: ready["api"].as_str().expect("the API's URL").to_string(),
            peer_id: ready["peer_id"].as_str().unwrap_or_default().to_string(),
            listen: strings(&ready["listen"]),
            store: home.join("store.redb"),
            home,
            log,
            _dir: dir,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its first address with its peer id, for `--peer`.
    pub(crate) fn address(&self) -> String {
        format!("{}/p2p/{}", self.listen[0], self.peer_id)
    }

    /// What it logged so far.
    pub(crate) fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// POSTs JSON; the status and the body.
    pub(crate) fn post(&self, route: &str, body: &Value) -> (u16, Value) {
        let agent = ureq::AgentBuilder::new().timeout(WAIT).build();
        match agent.post(&format!("{}{route}", self.api)).send_json(body) {
            Ok(r) => (r.status(), r.into_json().expect("a JSON answer")),
            Err(ureq::Error::Status(status, r)) => (status, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("the API does not answer: {e}"),
        }
    }

    pub(crate) fn get(&self, route: &str) -> Value {
        self.try_get(route)
            .unwrap_or_else(|(status, body)| panic!("GET {route}: {status} {body}"))
    }

    /// GETs JSON: the body, or the status and the body of an error.
    pub(crate) fn try_get(&self, route: &str) -> Result<Value, (u16, Value)> {
        let agent = ureq::AgentBuilder::new().timeout(WAIT).build();
        match agent.get(&format!("{}{route}", self.api)).call() {
            Ok(r) => Ok(r.into_json().expect("a JSON answer")),
            Err(ureq::Error::Status(status, r)) => {
                Err((status, r.into_json().unwrap_or(Value::Null)))
            }
            Err(e) => panic!("the API does not answer: {e}"),
        }
    }

    /// Sends SIGTERM and waits until the process exits (its store is closed).
    pub(crate) fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = self.child.wait().expect("the node exits");
        assert!(status.success(), "the node exited with {status}");
    }

    /// `amb ARGS --home HOME` (the node stopped, for commands that open the store).
    pub(crate) fn offline(&self, args: &[&str]) -> Output {
        amb_command(&self.amb, &self.home)
            .args(args)
            .output()
            .expect("amb runs")
    }
}
