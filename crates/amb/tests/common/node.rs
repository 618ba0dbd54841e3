//! Real `amb node` processes for the network tests: each with a home of its own
//! (kept across restarts), on loopback ports the system picks, mDNS off; the
//! ready line is read and checked; a node is killed when dropped.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{json_of, success};

/// The longest any one wait may take (a loaded 2-core machine); the normal case
/// takes a fraction of it.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// `amb` with no `AMB_*` setting from the environment and its default home inside
/// `sandbox`, so a test never touches the user's node. `AMB_TEST_BIN` runs another
/// build of it (the release one, for the inspector page's timing).
pub(crate) fn amb_command(sandbox: &Path) -> Command {
    let binary = std::env::var_os("AMB_TEST_BIN")
        .unwrap_or_else(|| std::ffi::OsString::from(env!("CARGO_BIN_EXE_amb")));
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars() {
        if key.starts_with("AMB_") {
            command.env_remove(key);
        }
    }
    command
        .env("XDG_DATA_HOME", sandbox)
        .env("HOME", sandbox)
        .stdin(Stdio::null());
    command
}

/// The keys of a JSON object, sorted.
pub(crate) fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Polls `probe` every 50 ms until it gives a value; panics after [`WAIT`].
pub(crate) fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A node's home: a temporary directory with `amb init` done, which outlives the
/// node processes started on it (a restart keeps the key and the store).
#[derive(Debug)]
pub(crate) struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub(crate) fn new() -> Home {
        Home::init(tempfile::tempdir().expect("a temporary directory"))
    }

    /// A home in a directory under `parent` (a small file system, say).
    pub(crate) fn new_in(parent: &Path) -> Home {
        Home::init(tempfile::tempdir_in(parent).expect("a temporary directory"))
    }

    fn init(dir: tempfile::TempDir) -> Home {
        let home = Home { dir };
        success(
            &amb_command(home.sandbox())
                .args(["init", "--home", &home.path()])
                .output()
                .expect("amb init runs"),
        );
        home
    }

    pub(crate) fn sandbox(&self) -> &Path {
        self.dir.path()
    }

    /// The `--home` directory.
    pub(crate) fn path(&self) -> String {
        self.dir
            .path()
            .join("home")
            .to_str()
            .expect("UTF-8")
            .to_string()
    }

    /// `amb ARGS --home HOME` (for commands that open the store: the node must be
    /// stopped).
    pub(crate) fn amb(&self, args: &[&str]) -> Output {
        amb_command(self.sandbox())
            .args(args)
            .args(["--home", &self.path()])
            .output()
            .expect("amb runs")
    }
}

impl Home {
    /// With the node stopped: the stored events of a run (`amb log --json`), after
    /// checking that each (log, seq) is there once (no fork) and that `amb verify`
    /// passes on exactly these events and says the run is complete.
    pub(crate) fn stored_run(&self, address: &str) -> Vec<Value> {
        let log = json_of(&self.amb(&["log", address, "--json"]));
        let log = log.as_array().expect("a list of events").clone();
        let places: std::collections::HashSet<(String, u64)> = log
            .iter()
            .map(|e| {
                (
                    e["log"].as_str().expect("a log").to_string(),
                    e["seq"].as_u64().expect("a seq"),
                )
            })
            .collect();
        assert_eq!(places.len(), log.len(), "a (log, seq) twice: a fork");
        let verified = success(&self.amb(&["verify", address]));
        assert!(
            verified.contains(&format!("{} events", log.len())),
            "{verified}"
        );
        assert!(verified.contains("\ncomplete\n"), "{verified}");
        log
    }
}

/// A running `amb node`; killed when dropped.
#[derive(Debug)]
pub(crate) struct Node {
    child: Child,
    sandbox: PathBuf,
    home: String,
    log: PathBuf,
    /// Whatever the node printed on stdout after its ready line.
    more_stdout: Arc<Mutex<String>>,
    /// The home, when the node owns it ([`Node::fresh`]).
    _owned: Option<Home>,
    pub(crate) peer_id: String,
    pub(crate) listen: Vec<String>,
    pub(crate) api: String,
    /// The inspector page's URL from the ready line (with `#token=…` when the
    /// bearer token is on).
    pub(crate) page: String,
}

impl Node {
    /// `amb node` on `home`, listening on loopback (its API too, unless `extra`
    /// has `--api`), without mDNS, dialing `peers`, with `extra` arguments and `env`
    /// variables; returns once its ready line is read and checked.
    pub(crate) fn start(
        home: &Home,
        peers: &[String],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Node {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = home.sandbox().join(format!("node-{n}.log"));
        let mut command = amb_command(home.sandbox());
        command.args([
            "node",
            "--home",
            &home.path(),
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
        ]);
        if !extra.contains(&"--api") {
            command.args(["--api", "127.0.0.1:0"]);
        }
        for peer in peers {
            command.args(["--peer", peer]);
        }
        command.args(extra).envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("a log file"))
            .spawn()
            .expect("amb node starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let more_stdout = Arc::new(Mutex::new(String::new()));
        let more = Arc::clone(&more_stdout);
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep reading, so the node never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                more.lock().unwrap().push_str(&line);
            }
        });
        let mut node = Node {
            child,
            sandbox: home.sandbox().to_path_buf(),
            home: home.path(),
            log,
            more_stdout,
            _owned: None,
            peer_id: String::new(),
            listen: Vec::new(),
            api: String::new(),
            page: String::new(),
        };
        let line = match rx.recv_timeout(WAIT) {
            Ok(Some(Ok(line))) => line,
            other => panic!(
                "no ready line from amb node ({other:?}); its log:\n{}",
                node.log()
            ),
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the ready line is not JSON ({e}): {line}"));
        assert_eq!(ready["event"], "ready", "{ready}");
        node.peer_id = ready["peer_id"].as_str().expect("a peer id").to_string();
        node.listen = ready["listen"]
            .as_array()
            .expect("a listen list")
            .iter()
            .map(|a| a.as_str().expect("an address").to_string())
            .collect();
        node.api = ready["api"].as_str().expect("an API URL").to_string();
        node.page = ready["page"].as_str().unwrap_or_default().to_string();
        assert!(
            !node.listen.is_empty() && node.api.starts_with("http://"),
            "{ready}"
        );
        node
    }

    /// A node on a home of its own, made for it.
    pub(crate) fn fresh(peers: &[String]) -> Node {
        let home = Home::new();
        let mut node = Node::start(&home, peers, &[], &[]);
        node._owned = Some(home);
        node
    }

    /// Its `--home` directory.
    pub(crate) fn home(&self) -> String {
        self.home.clone()
    }

    /// The directory its home is in (the sandbox of `amb_command`).
    pub(crate) fn sandbox(&self) -> &Path {
        &self.sandbox
    }

    /// What it printed on stdout after its ready line.
    pub(crate) fn more_stdout(&self) -> String {
        self.more_stdout.lock().unwrap().clone()
    }

    /// Its first address, with its peer id, for `--peer`.
    pub(crate) fn address(&self) -> String {
        format!("{}/p2p/{}", self.listen[0], self.peer_id)
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `amb ARGS --node URL`.
    pub(crate) fn client(&self, args: &[&str]) -> Output {
        amb_command(&self.sandbox)
            .args(args)
            .args(["--node", &self.api])
            .output()
            .expect("amb runs")
    }

    /// `amb info --json`.
    pub(crate) fn info(&self) -> Value {
        json_of(&self.client(&["info", "--json"]))
    }

    /// The address of the first program its log says it walks (`walking
    /// /amb/…`): for a node that died before it could answer a deploy.
    pub(crate) fn walked_address(&self) -> String {
        let log = self.log();
        log.split_whitespace()
            .find(|word| word.starts_with("/amb/"))
            .unwrap_or_else(|| panic!("the node said what it walks:\n{log}"))
            .to_string()
    }

    /// Waits until its `amb info` lists `peer`.
    pub(crate) fn wait_peer(&self, peer: &str) {
        wait_until("a peer in amb info", || {
            self.info()["peers"]
                .as_array()
                .expect("a peer list")
                .iter()
                .any(|p| p["peer_id"] == peer)
                .then_some(())
        });
    }

    /// Its resident memory now, in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the node's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in the node's status:\n{status}"))
    }

    /// Whether the process still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits until the process exits by itself.
    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let child = &mut self.child;
        wait_until("the node to exit", || child.try_wait().expect("try_wait"))
    }

    /// Kills it with SIGKILL and waits for the exit status.
    pub(crate) fn kill(&mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL is sent");
        self.wait_exit()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        self.wait_exit()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `amb deploy FILE --node A --delegate NAME=PEER… --json`: the address.
pub(crate) fn deploy(node: &Node, file: &str, delegates: &[(&str, &Node)]) -> String {
    let mut args = vec!["deploy".to_string(), file.to_string(), "--json".to_string()];
    for (name, host) in delegates {
        args.push("--delegate".into());
        args.push(format!("{name}={}", host.peer_id));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = node.client(&args);
    if !out.status.success() {
        let logs: Vec<String> = std::iter::once(node)
            .chain(delegates.iter().map(|(_, host)| *host))
            .map(|n| format!("--- log of {}:\n{}", n.peer_id, n.log()))
            .collect();
        panic!(
            "deploy failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            logs.join("\n")
        );
    }
    let answer = json_of(&out);
    answer["address"].as_str().expect("an address").to_string()
}
