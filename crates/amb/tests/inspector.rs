//! The time-travel inspector (issue 13, `spec/network.md` §7 "Reading programs"):
//! its read routes against real `amb node` processes (every route, paging,
//! errors), `--node` on `log`, `inspect`, `verify`, and the page in a real
//! headless Chromium driven over WebDriver (chromedriver, spoken to with `ureq`):
//! the program list, stepping through every step of the corpus monoid and of a
//! delegated run checking the term against `amb inspect --at K --json --node`,
//! deep links across a reload, the stuck explanation, the live list, and the DOM
//! bound on a 10^5-event program. Chromium and chromedriver must be installed
//! (`.ci/run` installs them): without them these tests fail, never skip.
//! Screenshots of each view are saved under `target/inspector-screenshots/`.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    failure, json_of,
    node::{Home, Node, WAIT, amb_command, deploy, wait_until},
    success,
};
use serde_json::{Value, json};

const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";
/// A corpus program that is stuck alone: the call site of `message("hello")`.
const STUCK: &str = "ambientsprotocol-ambc/test/fixtures/ir/011.ambient";

// ----- HTTP -----

/// GET `url`: the status and the JSON body.
fn get(url: &str) -> (u16, Value) {
    let agent = ureq::AgentBuilder::new().timeout(WAIT).build();
    match agent.get(url).call() {
        Ok(response) => (response.status(), response.into_json().expect("JSON")),
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_json().expect("a JSON error"))
        }
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// GET `url`, which must answer 200.
fn ok(url: &str) -> Value {
    let (status, body) = get(url);
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// GET `url`, which must fail with `status` and `kind`.
fn refused(url: &str, status: u16, kind: &str) -> Value {
    let (got, body) = get(url);
    assert_eq!(got, status, "GET {url}: {body}");
    assert_eq!(body["error"]["kind"], kind, "GET {url}: {body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{body}"
    );
    body
}

fn cid(address: &str) -> &str {
    address.trim_start_matches("/amb/")
}

/// `amb inspect ADDRESS --at K --json --node URL`'s term.
fn inspected_term(node: &Node, address: &str, step: u64) -> String {
    let k = step.to_string();
    let answer = json_of(&node.client(&["inspect", address, "--at", &k, "--json"]));
    assert_eq!(answer["step"], step, "{answer}");
    answer["term"].as_str().expect("a term").to_string()
}

// ----- the browser -----

/// A headless Chromium driven by its own chromedriver; both end when dropped.
struct Browser {
    driver: Child,
    url: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
            );
        }
        let mut driver = Command::new("/usr/bin/chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = driver.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx.recv_timeout(WAIT).expect("chromedriver says its port");
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut browser = Browser {
            driver,
            url: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            _profile: profile,
        };
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        )])
        .collect::<Vec<_>>();
        let session = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}
            }}}),
        );
        browser.session = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let agent = ureq::AgentBuilder::new().timeout(WAIT * 2).build();
        let url = format!("{}{path}", self.url);
        let answer = match method {
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            _ => agent.post(&url).send_json(body),
        };
        match answer {
            Ok(response) => response.into_json::<Value>().expect("JSON")["value"].clone(),
            Err(ureq::Error::Status(status, response)) => {
                panic!(
                    "WebDriver {method} {path}: {status} {}",
                    response.into_string().unwrap_or_default()
                )
            }
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    fn open(&self, url: &str) {
        self.call(
            "POST",
            &format!("/session/{}/url", self.session),
            json!({ "url": url }),
        );
    }

    fn refresh(&self) {
        self.call(
            "POST",
            &format!("/session/{}/refresh", self.session),
            json!({}),
        );
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    fn eval(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            json!({ "script": script, "args": args }),
        )
    }

    /// Waits until `script` returns something other than null or false.
    fn wait_for(&self, what: &str, script: &str) -> Value {
        wait_until(what, || {
            let value = self.eval(script, json!([]));
            (!value.is_null() && value != json!(false)).then_some(value)
        })
    }

    /// Presses a key in the page, as a person would.
    fn press(&self, key: &str) {
        self.eval(
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: arguments[0], bubbles: true}))",
            json!([key]),
        );
    }

    /// Waits until the program view shows step `k`; its term.
    fn term_at(&self, k: u64) -> String {
        self.wait_for(
            &format!("the page to show step {k}"),
            &format!(
                "const t = document.getElementById('term'); \
                 return document.body.dataset.ready === 'step-{k}' && t && t.dataset.step === '{k}' ? t.textContent : null"
            ),
        )
        .as_str()
        .expect("text")
        .to_string()
    }

    /// Saves a screenshot under `target/inspector-screenshots/NAME.png`.
    fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.call(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            Value::Null,
        );
        let bytes = base64_decode(encoded.as_str().expect("base64"));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target dir")
            .join("inspector-screenshots");
        std::fs::create_dir_all(&dir).expect("a screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &bytes).expect("the screenshot is written");
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build();
            let _ = agent
                .delete(&format!("{}/session/{}", self.url, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (what WebDriver's screenshots are in).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=' && *c != b'\n').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// Steps the open program view from 0 to its last step with the → key, checking
/// at each step that the term shown is `amb inspect --at K --json --node`'s;
/// returns the page's render times (ms).
fn step_through(browser: &Browser, node: &Node, address: &str, steps: u64) -> Vec<f64> {
    let mut times = Vec::new();
    assert_eq!(browser.term_at(0), inspected_term(node, address, 0));
    for k in 1..=steps {
        browser.press("ArrowRight");
        let shown = browser.term_at(k);
        assert_eq!(shown, inspected_term(node, address, k), "step {k}");
        times.push(
            browser
                .eval("return window.inspector.renderMs", json!([]))
                .as_f64()
                .expect("a render time"),
        );
    }
    // Past the last step, → stays there.
    browser.press("ArrowRight");
    assert_eq!(browser.term_at(steps), inspected_term(node, address, steps));
    times
}

// ----- the tests -----

#[test]
fn the_read_routes_answer_page_and_refuse_with_4xx() {
    let file = common::corpus(MONOID);
    let home = Home::new();
    let mut node = Node::start(&home, &[], &[], &[]);
    let api = node.api.clone();
    let first = deploy(&node, file.to_str().unwrap(), &[]);
    let stuck = deploy(&node, common::corpus(STUCK).to_str().unwrap(), &[]);

    // The program list, in the shape `amb ls` reads, paged.
    let all = ok(&format!("{api}/v1/programs"));
    assert_eq!(all["next"], Value::Null, "{all}");
    let programs = all["programs"].as_array().expect("programs");
    assert_eq!(programs.len(), 2, "{all}");
    let monoid = &programs[0];
    assert_eq!(monoid["address"], first.as_str());
    assert_eq!(monoid["name"], "locally-evaluated-string-concat");
    assert_eq!(monoid["status"], "complete");
    assert_eq!(monoid["events"], 86);
    assert_eq!(monoid["steps"], 18);
    assert_eq!(monoid["hosts"], json!([node.peer_id]));
    assert!(monoid["created"].as_u64().is_some(), "{monoid}");
    assert_eq!(programs[1]["status"], "stuck", "{all}");
    let page = ok(&format!("{api}/v1/programs?limit=1"));
    assert_eq!(page["programs"].as_array().unwrap().len(), 1);
    assert_eq!(page["next"], first.as_str());
    let rest = ok(&format!("{api}/v1/programs?limit=1&after={first}"));
    assert_eq!(rest["programs"][0]["address"], stuck.as_str());
    assert_eq!(rest["next"], Value::Null);

    // Events, paged, in `amb log`'s order, with their step and signature.
    let program = cid(&first);
    let head = ok(&format!("{api}/v1/programs/{program}/events?limit=50"));
    assert_eq!(head["total"], 86);
    assert_eq!(head["events"].as_array().unwrap().len(), 50);
    assert_eq!(head["next"], 49);
    let tail = ok(&format!(
        "{api}/v1/programs/{program}/events?limit=50&after=49"
    ));
    assert_eq!(tail["events"].as_array().unwrap().len(), 36);
    assert_eq!(tail["next"], Value::Null);
    assert_eq!(tail["events"][0]["index"], 50);
    let event = &head["events"][0];
    assert_eq!(event["peer"], node.peer_id.as_str());
    assert_eq!(event["verified"], true);
    assert_eq!(event["signature"].as_str().unwrap().len(), 128);
    assert_eq!(event["step"], 0);

    // A state: the tree, the redex, the term as `amb inspect` gives it.
    let state = ok(&format!("{api}/v1/programs/{program}/steps/3"));
    assert_eq!(state["step"], 3);
    assert_eq!(state["total_steps"], 18);
    assert_eq!(state["term"], inspected_term(&node, &first, 3).as_str());
    assert_eq!(state["redex"]["second"]["op"], "open", "{state}");
    assert_eq!(state["redex"]["first"]["op"], "open_", "{state}");
    let nodes = state["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["kind"] == "ambient"
        && n["name"] == "string_concat"
        && n["host"] == node.peer_id.as_str()));
    assert!(
        nodes
            .iter()
            .any(|n| n["kind"] == "cap" && n["enabled"] == false)
    );
    // Counted without building the tree: every node fits here, the term is inline.
    assert_eq!(state["total_nodes"], state["shown"], "{state}");
    assert_eq!(
        state["term_bytes"].as_u64().unwrap() as usize,
        state["term"].as_str().unwrap().len()
    );
    // What the step changed: the two capabilities of its redex, consumed (live
    // nodes of step 2 with those ids, of the redex events' ops and target), among
    // what it removed; what it added is in the tree of step 3.
    let changes = &state["changes"];
    let removed = changes["removed"].as_array().expect("removed");
    let consumed: Vec<&Value> = removed.iter().filter(|r| r["redex"] == true).collect();
    assert_eq!(consumed.len(), 2, "{changes}");
    let before = ok(&format!("{api}/v1/programs/{program}/steps/2"));
    let before_nodes = before["nodes"].as_array().unwrap();
    for half in ["first", "second"] {
        let event = &state["redex"][half];
        let r = consumed
            .iter()
            .find(|c| c["cap"] == event["op"])
            .unwrap_or_else(|| panic!("the {half} half's capability in {changes}"));
        if event["op"] == "open" {
            assert_eq!(r["name"], event["target"], "{changes}");
        }
        assert!(
            before_nodes
                .iter()
                .any(|n| n["id"] == r["id"] && n["kind"] == "cap" && n["cap"] == r["cap"]),
            "{r} in step 2"
        );
        assert!(!nodes.iter().any(|n| n["id"] == r["id"]), "{r} consumed");
    }
    let added = changes["added"].as_array().expect("added");
    assert!(!added.is_empty(), "{changes}");
    for id in added {
        assert!(nodes.iter().any(|n| n["id"] == *id), "{id} in step 3");
    }
    assert_eq!(
        before["changes"]["removed"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["redex"] == true)
            .count(),
        2
    );
    assert_eq!(
        ok(&format!("{api}/v1/programs/{program}/steps/0"))["changes"],
        Value::Null
    );
    // Bounded: a small max_nodes hides subtrees, fetched by path.
    let small = ok(&format!("{api}/v1/programs/{program}/steps/3?max_nodes=5"));
    assert!(small["shown"].as_u64().unwrap() <= 5, "{small}");
    let hidden = small["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["hidden"].as_u64().is_some())
        .expect("a hidden subtree")
        .clone();
    let path = hidden["path"].as_str().unwrap();
    let deeper = ok(&format!(
        "{api}/v1/programs/{program}/steps/3?max_nodes=5&path={path}"
    ));
    assert!(
        deeper["nodes"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{path}."))
    );
    // The first level is paged: `more` says where the next page starts.
    let one = ok(&format!("{api}/v1/programs/{program}/steps/0?max_nodes=1"));
    assert_eq!(one["nodes"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["more"]["from"], 1, "{one}");
    let next = ok(&format!(
        "{api}/v1/programs/{program}/steps/0?max_nodes=1&from=1"
    ));
    assert_eq!(next["nodes"][0]["path"], "1", "{next}");
    // The end: the value, and no stuck explanation.
    let end = ok(&format!("{api}/v1/programs/{program}/steps/18"));
    assert_eq!(end["value"], "helloworld");
    assert_eq!(end["stuck"], Value::Null);
    // The stuck program's end names what waits.
    let stuck_end = ok(&format!("{api}/v1/programs/{}/steps/0", cid(&stuck)));
    let reasons: Vec<&str> = stuck_end["stuck"]["waiting"]
        .as_array()
        .expect("a stuck explanation")
        .iter()
        .map(|w| w["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"`func` offers no `open_`"), "{reasons:?}");
    // The term route, by step and by event CID; the diff; the peers.
    let term = ok(&format!("{api}/v1/programs/{program}/steps/3/term"));
    assert_eq!(term["term"], state["term"]);
    let second = state["redex"]["second"]["cid"].as_str().unwrap();
    let by_event = ok(&format!("{api}/v1/programs/{program}/steps/{second}/term"));
    assert_eq!(by_event["step"], 3);
    let diff = ok(&format!("{api}/v1/programs/{program}/diff?from=2&to=3"));
    let lines = diff["lines"].as_array().unwrap();
    assert!(lines.iter().any(|l| l.as_str().unwrap().starts_with('+')));
    assert!(lines.iter().any(|l| l.as_str().unwrap().starts_with('-')));
    let peers = ok(&format!("{api}/v1/peers"));
    let me = &peers["peers"][0];
    assert_eq!(me["peer_id"], node.peer_id.as_str());
    assert_eq!(me["self"], true);
    assert!(me["slices"].as_array().unwrap().len() >= 2, "{peers}");
    // The page and its files.
    let page = ureq::get(&format!("{api}/programs/{program}?step=3"))
        .call()
        .unwrap();
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let script = ureq::get(&format!("{api}/assets/app.js")).call().unwrap();
    assert!(
        script
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );

    // Errors: 4xx with a message.
    let unknown = "bafyr4iam27l4lqmecure2bf43y3wonvh6z5r5kzspocgeuxo33ipcwu72a";
    refused(
        &format!("{api}/v1/programs/{unknown}/steps/1"),
        404,
        "not-found",
    );
    refused(
        &format!("{api}/v1/programs/{unknown}/events"),
        404,
        "not-found",
    );
    let out = refused(
        &format!("{api}/v1/programs/{program}/steps/19"),
        400,
        "invalid",
    );
    assert_eq!(out["error"]["rule"], "step-range");
    refused(
        &format!("{api}/v1/programs/not-a-cid/steps/1"),
        400,
        "invalid",
    );
    refused(
        &format!("{api}/v1/programs/{program}/steps/x!/term"),
        400,
        "malformed",
    );
    refused(
        &format!("{api}/v1/programs/{program}/steps/{unknown}/term"),
        404,
        "not-found",
    );
    refused(
        &format!("{api}/v1/programs/{program}/steps/3?path=9.9"),
        404,
        "not-found",
    );
    refused(
        &format!("{api}/v1/programs/{program}/events?limit=100000"),
        400,
        "limit",
    );
    refused(
        &format!("{api}/v1/programs/{program}/events?after=x"),
        400,
        "malformed",
    );
    refused(
        &format!("{api}/v1/programs/{program}/diff?from=1"),
        400,
        "malformed",
    );
    refused(&format!("{api}/assets/nothing.js"), 404, "not-found");

    // --node on log, inspect, verify: what the local form prints.
    let remote_log = success(&node.client(&["log", &first, "--json"]));
    let remote_text = success(&node.client(&["log", &first]));
    let remote_dot = success(&node.client(&["log", &first, "--dot"]));
    let remote_verify = success(&node.client(&["verify", &first, "--json"]));
    let remote_verify_text = success(&node.client(&["verify", &first]));
    let remote_inspect = success(&node.client(&["inspect", &first, "--at", "7"]));
    let remote_diff = success(&node.client(&["inspect", &first, "--diff", "6", "7"]));
    let stuck_verify = node.client(&["verify", &stuck]);
    failure(&node.client(&["inspect", unknown, "--at", "1", "--json"]));
    assert!(node.terminate().success());
    assert_eq!(remote_log, success(&home.amb(&["log", &first, "--json"])));
    assert_eq!(remote_text, success(&home.amb(&["log", &first])));
    assert_eq!(remote_dot, success(&home.amb(&["log", &first, "--dot"])));
    assert_eq!(
        remote_verify,
        success(&home.amb(&["verify", &first, "--json"]))
    );
    assert_eq!(remote_verify_text, success(&home.amb(&["verify", &first])));
    assert_eq!(
        remote_inspect,
        success(&home.amb(&["inspect", &first, "--at", "7"]))
    );
    assert_eq!(
        remote_diff,
        success(&home.amb(&["inspect", &first, "--diff", "6", "7"]))
    );
    let local_stuck = home.amb(&["verify", &stuck]);
    assert_eq!(stuck_verify.status.code(), local_stuck.status.code());
    assert_eq!(stuck_verify.stdout, local_stuck.stdout);
}

#[test]
fn the_page_steps_through_the_monoid_and_a_delegated_run_and_deep_links_survive_a_reload() {
    let file = common::corpus(MONOID);
    let file = file.to_str().unwrap();
    let a = Node::fresh(&[]);
    let b = Node::fresh(&[a.address()]);
    a.wait_peer(&b.peer_id);
    let local = deploy(&a, file, &[]);
    let delegated = deploy(&a, file, &[("string_concat", &b)]);
    // The delegated run is over on A once its value is there.
    json_of(&a.client(&["value", &delegated, "--json", "--wait", "60"]));
    let browser = Browser::start();

    // The list shows both programs; a click opens one.
    browser.open(&a.api);
    browser.wait_for(
        "the list",
        "return document.body.dataset.ready === 'list' && document.querySelectorAll('#programs tbody tr').length === 2",
    );
    browser.screenshot("list");
    browser.eval(
        "document.querySelector(`tr[data-address='${arguments[0]}'] a`).click()",
        json!([local]),
    );
    let mut times = step_through(&browser, &a, &local, 18);
    browser.wait_for(
        "the value at the end",
        "const v = document.getElementById('value'); return v && v.textContent",
    );
    browser.screenshot("program-end");

    // At step 3 (`open` of an `open_`), the tree marks what the step changed: the
    // two capabilities it consumed, ghosted and highlighted as its redex (exactly
    // the redex events' ops and target), what it removed ghosted, what it added.
    browser.open(&format!("{}/programs/{}?step=3", a.api, cid(&local)));
    browser.term_at(3);
    let redex = ok(&format!("{}/v1/programs/{}/steps/3", a.api, cid(&local)))["redex"].clone();
    let mut expected: Vec<String> = ["first", "second"]
        .iter()
        .map(|half| {
            let e = &redex[*half];
            match e["op"].as_str().unwrap() {
                "open_" => "open_".to_string(),
                op => format!("{op} {}", e["target"].as_str().unwrap()),
            }
        })
        .collect();
    expected.sort();
    let marks = browser.eval(
        "const t = document.getElementById('tree'); return { \
           redex: Array.from(t.querySelectorAll('.redex')).filter(e => e.classList.contains('chip')).map(c => c.textContent).sort(), \
           ghosted: Array.from(t.querySelectorAll('.chip.redex')).every(c => c.classList.contains('removed') && c.closest('.capgroup.removed')), \
           removed: t.querySelectorAll('.removed').length, \
           added: t.querySelectorAll('.amb.added, .capgroup.added').length }",
        json!([]),
    );
    assert_eq!(marks["redex"], json!(expected), "{marks}");
    assert_eq!(marks["ghosted"], true, "{marks}");
    assert!(marks["removed"].as_u64().unwrap() > 2, "{marks}");
    assert!(marks["added"].as_u64().unwrap() >= 1, "{marks}");
    browser.screenshot("program-changes");

    // The delegated run, on the deployer: two hosts, each its colour.
    browser.open(&format!("{}/programs/{}", a.api, cid(&delegated)));
    times.extend(step_through(&browser, &a, &delegated, 18));
    let hosts = browser.eval(
        "return Array.from(document.querySelectorAll('#legend span')).length",
        json!([]),
    );
    assert_eq!(hosts, 2, "two hosts in the legend");

    // On the delegate B, the page shows its part, not the program: the slices it
    // holds (string_concat with its address), and no step to replay.
    let parts = ok(&format!("{}/v1/programs", b.api));
    let part = parts["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["address"].as_str().unwrap().to_string())
        .find(|p| *p != delegated)
        .unwrap_or_else(|| panic!("B's part in {parts}"));
    browser.open(&format!("{}/programs/{}", b.api, cid(&part)));
    let slices = browser.wait_for(
        "B's part",
        "return document.body.dataset.ready === 'part' && Array.from(document.querySelectorAll('#slices tbody tr')).map(r => r.dataset.slice)",
    );
    assert!(
        slices
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "string_concat"),
        "{slices}"
    );
    let shown = browser.eval(
        "return document.getElementById('app').textContent",
        json!([]),
    );
    assert!(
        !shown.as_str().unwrap().contains(cid(&delegated)),
        "B's page names the program address"
    );
    browser.screenshot("part");

    // The peers route ties each slice to the host that writes its log now: a slice
    // A created that moved into one of B's (control transfer) is B's, and B wrote
    // its last event.
    let moving = a.sandbox().join("moving.amb");
    std::fs::write(&moving, "a[in b.open_] | b[in_ a.open a]").unwrap();
    let moved_run = deploy(&a, moving.to_str().unwrap(), &[("b", &b)]);
    json_of(&a.client(&["value", &moved_run, "--json", "--wait", "60"]));
    let peers = ok(&format!("{}/v1/peers", a.api));
    let of = |peer: &str| -> Vec<Value> {
        peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["peer_id"] == peer)
            .unwrap_or_else(|| panic!("{peer} in {peers}"))["slices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["program"] == moved_run.as_str())
            .cloned()
            .collect()
    };
    let moved: Vec<Value> = of(&b.peer_id)
        .into_iter()
        .filter(|s| s["creator"] == a.peer_id.as_str())
        .collect();
    assert_eq!(moved.len(), 1, "`a`, A's, now hosted by B: {peers}");
    assert_eq!(moved[0]["name"], "a", "{peers}");
    let events = ok(&format!(
        "{}/v1/programs/{}/events?limit=10000",
        a.api,
        cid(&moved_run)
    ));
    for slice in &moved {
        let last = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["log"] == slice["log"])
            .max_by_key(|e| e["seq"].as_u64().unwrap())
            .expect("events of the slice");
        assert_eq!(last["peer"], b.peer_id.as_str(), "{slice}: {last}");
        assert!(
            !of(&a.peer_id).iter().any(|s| s["log"] == slice["log"]),
            "{slice} is listed once"
        );
    }

    // A deep link opens that step, and a reload shows the same view.
    browser.open(&format!("{}/programs/{}?step=7", a.api, cid(&delegated)));
    let at_7 = browser.term_at(7);
    assert_eq!(at_7, inspected_term(&a, &delegated, 7));
    browser.press("ArrowLeft");
    browser.term_at(6);
    let url = browser.eval("return location.href", json!([]));
    assert!(url.as_str().unwrap().ends_with("?step=6"), "{url}");
    browser.refresh();
    assert_eq!(browser.term_at(6), inspected_term(&a, &delegated, 6));
    // An event of the DAG shows its fields.
    browser.wait_for(
        "the event DAG",
        "return document.querySelectorAll('#dag g.ev').length > 0",
    );
    browser.eval(
        "document.querySelector('#dag g.ev.current').dispatchEvent(new MouseEvent('click', {bubbles: true}))",
        json!([]),
    );
    let detail = browser.wait_for(
        "the event's fields",
        "return document.getElementById('event-detail').textContent || null",
    );
    let detail: Value = serde_json::from_str(detail.as_str().unwrap()).expect("JSON fields");
    assert_eq!(detail["verified"], true);
    assert!(detail["signature"].as_str().is_some(), "{detail}");
    browser.screenshot("program-step");

    let first = times[0];
    times.sort_by(f64::total_cmp);
    eprintln!(
        "page update after a step move: p50 {:.1} ms, slowest {:.1} ms over {} moves (the first {first:.1} ms)",
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
}

#[test]
fn the_page_explains_a_stuck_program_and_the_live_list_receives_a_later_deploy() {
    let node = Node::fresh(&[]);
    let stuck = deploy(&node, common::corpus(STUCK).to_str().unwrap(), &[]);
    let browser = Browser::start();
    browser.open(&format!("{}/programs/{}", node.api, cid(&stuck)));
    browser.term_at(0);
    let waiting = browser.wait_for(
        "the stuck explanation",
        "const s = document.getElementById('stuck'); return s && s.textContent",
    );
    let waiting = waiting.as_str().unwrap();
    for said in [
        "open func in the top level",
        "`func` offers no `open_`",
        "in func in arg: no sibling `func` to enter",
    ] {
        assert!(waiting.contains(said), "{said:?} in {waiting}");
    }
    browser.screenshot("stuck");

    // The list follows the node's event stream: a deploy made after it opened
    // appears without a reload.
    browser.open(&node.api);
    browser.wait_for(
        "the live list",
        "return document.body.dataset.ready === 'list' && window.inspector.live === 'on'",
    );
    let later = deploy(&node, common::corpus(MONOID).to_str().unwrap(), &[]);
    browser.wait_for(
        "the later program in the list",
        &format!("return document.querySelector(`tr[data-address='{later}']`) !== null"),
    );
    let received = browser.eval("return window.inspector.received", json!([]));
    assert!(received.as_u64().unwrap() >= 86, "{received}");
}

#[test]
fn amb_ui_keeps_at_most_5000_tree_nodes_in_the_page_on_a_large_program() {
    // About 10^5 events: copies of the monoid, recorded by `amb run`.
    let monoid = std::fs::read_to_string(common::corpus(MONOID)).unwrap();
    let program = amb_bench::confluent::confluent_program(&monoid, 21_000);
    let home = Home::new();
    let file = home.sandbox().join("large.amb");
    std::fs::write(&file, &program.text).unwrap();
    let run = json_of(&home.amb(&["run", file.to_str().unwrap(), "--json"]));
    let address = run["address"].as_str().unwrap().to_string();
    let events = run["events"].as_u64().unwrap();
    assert!(events >= 100_000, "{events} events");
    let steps = run["steps"].as_u64().unwrap();
    // `amb ui` over the store, with no peer.
    let mut ui = amb_command(home.sandbox())
        .args(["ui", "--home", &home.path(), "--api", "127.0.0.1:0"])
        // Room to keep the program's timeline (about 4 KiB per event).
        .env("AMB_NODE_TIMELINE_CACHE_MB", "1024")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("amb ui starts");
    let mut line = String::new();
    BufReader::new(ui.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).expect("a ready line");
    let api = ready["api"].as_str().unwrap().to_string();
    let browser = Browser::start();
    let count = "return document.querySelectorAll('#tree .amb, #tree .capgroup').length";
    for k in [0, steps / 2, steps] {
        browser.open(&format!("{api}/programs/{}?step={k}", cid(&address)));
        let started = Instant::now();
        browser.wait_for(
            &format!("step {k}"),
            &format!("return document.body.dataset.ready === 'step-{k}'"),
        );
        let shown = browser.eval(count, json!([])).as_u64().unwrap();
        assert!(shown > 0 && shown <= 5000, "step {k}: {shown} tree nodes");
        assert!(started.elapsed() < WAIT);
    }
    // Moving step by step keeps the bound too.
    browser.open(&format!(
        "{api}/programs/{}?step={}",
        cid(&address),
        steps / 3
    ));
    for k in steps / 3..steps / 3 + 3 {
        browser.wait_for(
            &format!("step {k}"),
            &format!("return document.body.dataset.ready === 'step-{k}'"),
        );
        let shown = browser.eval(count, json!([])).as_u64().unwrap();
        assert!(shown > 0 && shown <= 5000, "step {k}: {shown} tree nodes");
        browser.press("ArrowRight");
    }
    // Expanding hidden subtrees stays within the bound.
    let mut expanded = 0;
    for _ in 0..5 {
        let clicked = browser.eval(
            "const b = document.querySelector('#tree button.hidden-more:not(.done)');              if (!b) return false; window.clicked = b; b.click(); return true",
            json!([]),
        );
        if clicked != json!(true) {
            break;
        }
        // Done when the button is replaced by the subtree, or says it may not.
        let outcome = browser.wait_for(
            "the expansion",
            "const b = window.clicked; if (!b.isConnected) return 'expanded';              if (b.textContent.startsWith('too many')) { b.classList.add('done'); return 'refused'; } return null",
        );
        if outcome == "expanded" {
            expanded += 1;
        }
        let shown = browser.eval(count, json!([])).as_u64().unwrap();
        assert!(shown <= 5000, "{shown} tree nodes");
    }
    assert!(expanded >= 1, "a hidden subtree could be expanded");
    assert!(
        browser
            .eval("return document.querySelector('#term-url') !== null || document.getElementById('term').textContent.length > 0", json!([]))
            == json!(true)
    );
    browser.screenshot("large");
    let _ = ui.kill();
    let _ = ui.wait();
}

#[test]
fn the_page_works_on_a_node_whose_api_needs_the_bearer_token() {
    let home = Home::new();
    let node = Node::start(&home, &[], &["--api-token"], &[]);
    let token = std::fs::read_to_string(std::path::Path::new(&home.path()).join("api_token"))
        .expect("the home's token")
        .trim()
        .to_string();
    // The ready line gives the page with the token in its fragment.
    assert_eq!(
        node.page,
        format!("{}/#token={token}", node.api),
        "{}",
        node.page
    );
    // The API refuses a request without the token; the page and its files need none.
    refused(&format!("{}/v1/programs", node.api), 401, "unauthorized");
    for path in ["/", "/assets/app.js"] {
        let page = ureq::get(&format!("{}{path}", node.api))
            .call()
            .expect("the page");
        assert_eq!(page.status(), 200);
    }
    // The CLI with the token.
    let with_token = |args: &[&str]| {
        amb_command(home.sandbox())
            .args(args)
            .args(["--node", &node.api])
            .env("AMB_API_TOKEN", &token)
            .output()
            .expect("amb runs")
    };
    let file = common::corpus(MONOID);
    let deployed = json_of(&with_token(&["deploy", file.to_str().unwrap(), "--json"]));
    let address = deployed["address"].as_str().unwrap().to_string();
    let term_at = |k: u64| {
        let answer = json_of(&with_token(&[
            "inspect",
            &address,
            "--at",
            &k.to_string(),
            "--json",
        ]));
        answer["term"].as_str().unwrap().to_string()
    };

    let browser = Browser::start();
    browser.open(&node.page);
    browser.wait_for(
        "the list, live, through the token",
        "return document.body.dataset.ready === 'list' && window.inspector.live === 'on' && document.querySelectorAll('#programs tbody tr').length === 1",
    );
    // The token left the address bar; the tab keeps it.
    let url = browser.eval("return location.href", json!([]));
    assert!(!url.as_str().unwrap().contains("token"), "{url}");
    let kept = browser.eval("return sessionStorage.getItem('amb-api-token')", json!([]));
    assert_eq!(kept, token.as_str());
    // The live list receives a deploy made after it opened (the stream sends the
    // token too).
    let later = json_of(&with_token(&[
        "deploy",
        common::corpus(STUCK).to_str().unwrap(),
        "--json",
    ]));
    let later = later["address"].as_str().unwrap().to_string();
    browser.wait_for(
        "the later program in the list",
        &format!("return document.querySelector(`tr[data-address='{later}']`) !== null"),
    );
    // A program view steps with the token.
    browser.eval(
        "document.querySelector(`tr[data-address='${arguments[0]}'] a`).click()",
        json!([address]),
    );
    assert_eq!(browser.term_at(0), term_at(0));
    browser.press("ArrowRight");
    assert_eq!(browser.term_at(1), term_at(1));
    browser.screenshot("token");
    // Without the token (another tab's storage), the page asks for it.
    browser.eval("sessionStorage.clear()", json!([]));
    browser.refresh();
    browser.wait_for(
        "the page to ask for the token",
        "return document.getElementById('token-form') !== null",
    );
    browser.eval(
        "document.getElementById('token').value = arguments[0]; document.getElementById('token-form').requestSubmit()",
        json!([token]),
    );
    assert_eq!(browser.term_at(1), term_at(1));
}
