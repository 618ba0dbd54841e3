//! `amb node`, `amb info`, `amb deploy` and `amb value` end to end, with real node
//! processes on loopback (`spec/network.md` §1, §5, §7): each node prints one JSON
//! `ready` line; a program deployed through one node is read, verified, through
//! another; errors are clear and exit non-zero; the live event stream reports each
//! stored event once; SIGTERM stops a node cleanly with every event committed; a
//! node restarted after SIGKILL or SIGTERM serves, counts and syncs every program
//! it stored, and finishes a deployment it was killed in the middle of. A node's
//! memory is bounded by its settings over a thousand deployments; a program over
//! the default deploy limits is refused naming the limit; a panic in one program's
//! check fails that program alone.

mod common;
use common::{
    corpus, failure, json_of,
    node::{Home, Node, WAIT, amb_command, keys, wait_until},
    text,
};

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, ErrorKind, Read, Write},
    net::TcpStream,
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

use amb_bytecode::Cid;
use serde_json::{Value, json};

const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

/// A server-sent event.
#[derive(Debug)]
struct Sse {
    event: String,
    data: String,
}

/// Opens `GET url` as a server-sent event stream; returns once the server has
/// answered (so the node's subscription exists), with a channel of its events.
fn open_events(url: &str) -> mpsc::Receiver<Sse> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(WAIT)
        .build();
    let response = agent.get(url).call().expect("the event stream opens");
    assert_eq!(response.status(), 200);
    assert!(
        response.content_type().starts_with("text/event-stream"),
        "{}",
        response.content_type()
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(response.into_reader());
        let (mut event, mut data) = (String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if line.is_empty() {
                if !event.is_empty() || !data.is_empty() {
                    let sse = Sse {
                        event: std::mem::take(&mut event),
                        data: std::mem::take(&mut data),
                    };
                    if tx.send(sse).is_err() {
                        return;
                    }
                }
            } else if let Some(rest) = line.strip_prefix("event:") {
                event = rest.trim().to_string();
            } else if let Some(rest) = line.strip_prefix("data:") {
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
        }
    });
    rx
}

/// The next `stored` event of the stream, decoded.
fn next_stored(events: &mpsc::Receiver<Sse>) -> Value {
    loop {
        let sse = events
            .recv_timeout(WAIT)
            .expect("a stored event within the wait");
        assert_ne!(sse.event, "lagged", "the stream lagged: {sse:?}");
        if sse.event == "stored" {
            return serde_json::from_str(&sse.data).expect("JSON data");
        }
    }
}

/// POSTs JSON to the node's API.
fn post(url: &str, body: &Value) -> Value {
    ureq::AgentBuilder::new()
        .timeout(WAIT)
        .build()
        .post(url)
        .send_json(body)
        .expect("the API answers")
        .into_json()
        .expect("a JSON answer")
}

/// POSTs JSON to the node's API; the status and the body's text, whatever the status.
fn post_status(url: &str, body: &Value) -> (u16, String) {
    let answer = ureq::AgentBuilder::new()
        .timeout(WAIT)
        .build()
        .post(url)
        .send_json(body);
    match answer {
        Ok(response) => (response.status(), response.into_string().expect("a body")),
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_string().expect("a body"))
        }
        Err(e) => panic!("the API does not answer: {e}"),
    }
}

/// GETs from the node's API; the status and the body's text, whatever the status.
fn get_status(url: &str) -> (u16, String) {
    match ureq::AgentBuilder::new()
        .timeout(WAIT)
        .build()
        .get(url)
        .call()
    {
        Ok(response) => (response.status(), response.into_string().expect("a body")),
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_string().expect("a body"))
        }
        Err(e) => panic!("the API does not answer: {e}"),
    }
}

fn get(url: &str) -> Value {
    ureq::AgentBuilder::new()
        .timeout(WAIT)
        .build()
        .get(url)
        .call()
        .expect("the API answers")
        .into_json()
        .expect("a JSON answer")
}

#[test]
fn a_program_deployed_through_one_node_is_read_through_another() {
    let a = Node::fresh(&[]);
    let b = Node::fresh(&[a.address()]);

    let info = a.info();
    assert_eq!(info["peer_id"], a.peer_id.as_str());
    assert_eq!(info["listen"], json!(a.listen));
    assert!(info["peers"].is_array(), "{info}");
    assert!(info["refused"].is_object(), "{info}");
    a.wait_peer(&b.peer_id);
    b.wait_peer(&a.peer_id);

    let file = corpus(MONOID);
    let file = file.to_str().unwrap();
    let deployed = json_of(&a.client(&["deploy", file, "--json"]));
    assert_eq!(keys(&deployed), ["address"], "{deployed}");
    let address = deployed["address"].as_str().expect("an address");
    assert!(address.starts_with("/amb/"), "{deployed}");

    // B's event stream, filtered to the program, sees each event B stores once.
    let status = get(&format!("{}/v1/programs{}", a.api, &address[4..]));
    let count = status["events"].as_u64().expect("an event count") as usize;
    assert!(count > 0 && status["complete"] == true, "{status}");
    let stream = open_events(&format!("{}/v1/events?program={address}", b.api));

    let value = json_of(&b.client(&["value", address, "--json"]));
    assert_eq!(keys(&value), ["address", "normal_form", "value"], "{value}");
    assert_eq!(value["address"], address);
    assert_eq!(value["value"], "helloworld");
    let reduced = json_of(
        &amb_command(a.sandbox())
            .args(["reduce", file, "--json"])
            .output()
            .expect("amb reduce runs"),
    );
    assert_eq!(value["normal_form"], reduced["normal_form"]);

    let mut seen = HashSet::new();
    while seen.len() < count {
        let stored = next_stored(&stream);
        assert_eq!(stored["program"], &address[5..], "{stored}");
        assert!(seen.insert(stored["cid"].clone()), "stored twice: {stored}");
    }
    assert_eq!(b.info()["programs"], 1);
    assert!(a.more_stdout().is_empty());
    assert!(b.more_stdout().is_empty());
}

/// Asserts a failed `--json` command printed `{"error": {"kind", "message", …}}` on
/// stdout, of `kind`; returns the inner object.
fn json_error(output: &std::process::Output, kind: &str) -> Value {
    let out = text(&output.stdout);
    let json: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("not a JSON error ({e}): {out}"));
    let error = &json["error"];
    assert_eq!(error["kind"], kind, "{json}");
    assert!(error["message"].is_string(), "{json}");
    error.clone()
}

#[test]
fn deploy_and_value_fail_clearly() {
    let node = Node::fresh(&[]);
    let dir = tempfile::tempdir().unwrap();

    let bad = dir.path().join("unclosed.amb");
    std::fs::write(&bad, "x[]|\n\n  a[b[]").unwrap();
    let output = node.client(&["deploy", bad.to_str().unwrap(), "--json"]);
    let err = failure(&output);
    let place = format!("{}:3:8", bad.display());
    assert!(err.contains(&place), "no {place} in\n{err}");
    // With --json, stdout holds the error in the API's shape.
    let error = json_error(&output, "invalid");
    assert!(
        error["message"].as_str().unwrap().contains(&place),
        "{error}"
    );

    let unknown = format!("/amb/{}", Cid::of(b"no program has this address"));
    let started = Instant::now();
    let output = node.client(&["value", &unknown, "--wait", "2", "--json"]);
    let err = failure(&output);
    // The node's own error object.
    json_error(&output, "not-found");
    assert!(
        err.contains(&unknown),
        "the error names the address:\n{err}"
    );
    assert!(
        err.contains("could not be fetched within 2 s"),
        "the error says why:\n{err}"
    );
    assert!(started.elapsed() < WAIT, "{:?}", started.elapsed());

    let output = node.client(&["value", "/amb/not-a-cid", "--json"]);
    let err = failure(&output);
    assert!(err.contains("not-a-cid"), "{err}");

    // A program needing a system service the node does not offer (it lists the
    // ones it does) is refused, naming the service.
    let info = node.info();
    assert_eq!(info["services"], json!([]), "{info}");
    let random =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sys_random.amb");
    let output = node.client(&["deploy", random.to_str().unwrap(), "--json"]);
    let err = failure(&output);
    assert!(
        err.contains("sys_random") && err.contains("does not offer"),
        "{err}"
    );
    json_error(&output, "not-offered");
    let shown = node.client(&["info"]);
    assert!(
        text(&shown.stdout).contains("system services offered: none"),
        "{}",
        text(&shown.stdout)
    );
    // The node is unharmed by all this.
    assert_eq!(node.info()["peer_id"], node.peer_id.as_str());
}

#[test]
fn the_event_stream_reports_each_stored_event_exactly_once() {
    let node = Node::fresh(&[]);
    let source = std::fs::read_to_string(corpus(MONOID)).unwrap();
    let stream = open_events(&format!("{}/v1/events", node.api));

    let deploy = |name: &str| {
        post(
            &format!("{}/v1/deploy", node.api),
            &json!({ "source": source, "name": name }),
        )
    };
    let first = deploy("first");
    assert_eq!(
        keys(&first),
        ["address", "events", "normal_form", "steps", "value"],
        "{first}"
    );
    assert_eq!(first["value"], "helloworld");
    let events = first["events"].as_u64().expect("an event count") as usize;
    assert!(events > 0);
    let program = first["address"].as_str().unwrap()[5..].to_string();
    let creator = {
        let init = json_of(
            &amb_command(node.sandbox())
                .args(["init", "--home", &node.home(), "--json"])
                .output()
                .unwrap(),
        );
        init["public_key"].as_str().unwrap().to_string()
    };

    let mut seen = HashSet::new();
    while seen.len() < events {
        let stored = next_stored(&stream);
        assert_eq!(
            keys(&stored),
            ["cid", "creator", "log", "op", "program", "seq", "target"],
            "{stored}"
        );
        assert_eq!(stored["program"], program.as_str(), "{stored}");
        assert_eq!(stored["creator"], creator.as_str(), "{stored}");
        assert!(seen.insert(stored["cid"].clone()), "stored twice: {stored}");
    }
    // A second deployment marks the end of the first one's events: nothing more
    // of the first program comes before the second's.
    let second = deploy("second");
    let second_program = &second["address"].as_str().unwrap()[5..];
    assert_ne!(second_program, program);
    let next = next_stored(&stream);
    assert_eq!(next["program"], second_program, "{next}");
}

#[test]
fn sigterm_stops_a_node_with_exit_0_and_its_events_committed() {
    let mut node = Node::fresh(&[]);
    let file = corpus(MONOID);
    let deployed = json_of(&node.client(&["deploy", file.to_str().unwrap(), "--json"]));
    let address = deployed["address"].as_str().unwrap().to_string();
    let status = node.terminate();
    assert_eq!(status.code(), Some(0), "log:\n{}", node.log());
    let verified = json_of(
        &amb_command(node.sandbox())
            .args(["verify", &address, "--home", &node.home(), "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(verified["address"], address.as_str());
}

/// `amb value ADDRESS --node N --json`.
fn value_on(node: &Node, address: &str) -> Value {
    json_of(&node.client(&["value", address, "--json", "--wait", "60"]))
}

#[test]
fn a_node_restarted_after_sigkill_or_sigterm_serves_every_program_it_stored() {
    let home = Home::new();
    let file = corpus(MONOID);
    let file = file.to_str().unwrap();
    let mut node = Node::start(&home, &[], &[], &[]);
    // The same text three times: three programs (each manifest has its own nonce).
    let addresses: Vec<String> = (0..3)
        .map(|_| {
            let deployed = json_of(&node.client(&["deploy", file, "--json"]));
            deployed["address"]
                .as_str()
                .expect("an address")
                .to_string()
        })
        .collect();
    assert_eq!(node.info()["programs"], 3);
    for stop in ["SIGKILL", "SIGTERM"] {
        let status = match stop {
            "SIGKILL" => node.kill(),
            _ => node.terminate(),
        };
        assert_eq!(status.success(), stop == "SIGTERM", "{stop}: {status:?}");
        node = Node::start(&home, &[], &[], &[]);
        assert_eq!(node.info()["programs"], 3, "after {stop}");
        for address in &addresses {
            let answer = value_on(&node, address);
            assert_eq!(answer["address"], address.as_str(), "after {stop}");
            assert_eq!(answer["value"], "helloworld", "after {stop}");
            let status = get(&format!("{}/v1/programs{}", node.api, &address[4..]));
            assert_eq!(status["complete"], true, "after {stop}: {status}");
        }
        // A new peer fetches every program through the restarted node.
        let fresh = Node::fresh(&[node.address()]);
        for address in &addresses {
            assert_eq!(value_on(&fresh, address)["value"], "helloworld");
        }
        assert_eq!(fresh.info()["programs"], 3);
    }
}

/// A program of `copies` renamed copies of the monoid, each in an index ambient of
/// a tuple: 86 events a copy, and one more.
fn long_program(copies: usize) -> String {
    let monoid = std::fs::read_to_string(corpus(MONOID)).unwrap();
    let parts: Vec<String> = (0..copies)
        .map(|i| format!("{i}[{}]", amb_bench::confluent::renamed_monoid(&monoid, i)))
        .collect();
    format!("tuple[{}]", parts.join("|\n"))
}

#[test]
fn a_deployer_killed_in_the_middle_of_a_run_finishes_it_at_restart() {
    let home = Home::new();
    let file = home.sandbox().join("long.amb");
    // More events than one walk signs at a time (4,096): the crash comes between.
    std::fs::write(&file, long_program(60)).unwrap();
    let file = file.to_str().unwrap();
    let expected = json_of(
        &amb_command(home.sandbox())
            .args(["reduce", file, "--json"])
            .output()
            .unwrap(),
    );
    // The fault layer aborts the node (as a SIGKILL would) once it has signed.
    let mut node = Node::start(&home, &[], &["--faults", "seed=1,crash_after=1"], &[]);
    let output = node.client(&["deploy", file, "--json"]);
    assert!(!output.status.success(), "the deploy died with its node");
    assert!(!node.wait_exit().success());
    let address = node.walked_address();
    let partial = json_of(&home.amb(&["log", &address, "--json"]));
    let partial = partial.as_array().expect("a list").len();
    assert!(
        partial > 0,
        "the crash came after a first batch was committed"
    );
    // Restarted, the node resumes its deployment: same address, the whole run.
    let node = Node::start(&home, &[], &[], &[]);
    let answer = value_on(&node, &address);
    assert_eq!(answer["address"], address.as_str());
    assert_eq!(answer["normal_form"], expected["normal_form"]);
    assert_eq!(answer["value"], expected["value"]);
    wait_until("the resumed walk logged", || {
        node.log()
            .contains(&format!("resuming the walk of {address}"))
            .then_some(())
    });
    drop(node);
    let log = home.stored_run(&address);
    assert!(log.len() > partial, "{} events", log.len());
}

// The API's guard, bounds and error shape (`spec/network.md` §7): hostile and
// malformed requests are sent as raw HTTP/1.1 on a `TcpStream`.

/// `host:port` of an API URL.
fn authority(api: &str) -> &str {
    api.trim_start_matches("http://")
}

/// One raw HTTP/1.1 exchange on a new connection (`Connection: close`, and `Host`
/// the API's own unless `headers` give one): the status and the JSON body.
fn exchange(
    api: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut stream = TcpStream::connect(authority(api)).expect("the API accepts");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {}\r\n", authority(api)));
    }
    for (key, value) in headers {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head}"));
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {head}\n{body}"))
    };
    (status, json)
}

/// Asserts an error answer of `status` and `kind` in the API's shape; returns the
/// `{"error"}` object.
fn api_error(answer: &(u16, Value), status: u16, kind: &str) -> Value {
    assert_eq!(answer.0, status, "{answer:?}");
    let error = &answer.1["error"];
    assert_eq!(error["kind"], kind, "{answer:?}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer:?}"
    );
    for key in keys(error) {
        assert!(
            ["kind", "message", "rule", "at"].contains(&key),
            "{answer:?}"
        );
    }
    error.clone()
}

#[test]
fn hostile_and_malformed_requests_get_json_errors_of_the_right_class() {
    let node = Node::fresh(&[]);
    let api = node.api.as_str();
    let port = authority(api).rsplit_once(':').unwrap().1;

    // DNS rebinding: a name that is not the API's; a cross-site browser request.
    let foreign = format!("rebound.example:{port}");
    let error = api_error(
        &exchange(api, "GET", "/v1/info", &[("Host", &foreign)], b""),
        403,
        "forbidden",
    );
    assert_eq!(error["rule"], "host");
    let json = ("Content-Type", "application/json");
    let cross = ("Origin", "http://evil.example");
    let error = api_error(
        &exchange(
            api,
            "POST",
            "/v1/deploy",
            &[json, cross],
            b"{\"source\":\"a[]\"}",
        ),
        403,
        "forbidden",
    );
    assert_eq!(error["rule"], "origin");
    // A loopback name with the API's port, and the API's own origin, pass.
    let localhost = format!("localhost:{port}");
    let origin = format!("http://localhost:{port}");
    let (status, info) = exchange(
        api,
        "GET",
        "/v1/info",
        &[("Host", &localhost), ("Origin", &origin)],
        b"",
    );
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["health"], json!({"ok": true}), "{info}");

    // axum's own refusals, in the same shape.
    let deploy =
        |headers: &[(&str, &str)], body: &[u8]| exchange(api, "POST", "/v1/deploy", headers, body);
    api_error(&deploy(&[json], b"{\"source\": "), 400, "malformed");
    api_error(
        &deploy(&[("Content-Type", "text/plain")], b"{}"),
        415,
        "content-type",
    );
    let error = api_error(&deploy(&[json], b"{\"name\": \"x\"}"), 422, "schema");
    assert!(
        error["message"].as_str().unwrap().contains("source"),
        "{error}"
    );
    api_error(
        &exchange(api, "GET", "/v2/nothing", &[], b""),
        404,
        "not-found",
    );
    api_error(&exchange(api, "GET", "/v1/deploy", &[], b""), 405, "method");

    // An empty program and a syntax error are refused before anything is stored.
    let error = api_error(
        &deploy(&[json], b"{\"source\": \"// only a comment\\n\"}"),
        400,
        "invalid",
    );
    assert_eq!(error["rule"], "empty");
    let error = api_error(
        &deploy(&[json], b"{\"source\": \"x[]|\\n\\n  a[b[]\"}"),
        400,
        "invalid",
    );
    assert_eq!(
        (&error["rule"], &error["at"]),
        (&json!("syntax"), &json!("3:8"))
    );

    // `wait_ms` above the cap, and one that is not a number.
    let unknown = Cid::of(b"no program has this address");
    let error = api_error(
        &exchange(
            api,
            "GET",
            &format!("/v1/programs/{unknown}/value?wait_ms=86400000"),
            &[],
            b"",
        ),
        400,
        "limit",
    );
    assert_eq!(error["rule"], "api_max_wait_ms");
    let path = format!("/v1/programs/{unknown}/value?wait_ms=soon");
    api_error(&exchange(api, "GET", &path, &[], b""), 400, "malformed");
    let error = api_error(
        &exchange(api, "GET", "/v1/programs/not-a-cid", &[], b""),
        400,
        "invalid",
    );
    assert!(
        error["message"].as_str().unwrap().contains("not-a-cid"),
        "{error}"
    );

    // `amb deploy` of a file over the API's body limit: exit 1 with the node's
    // message (not a broken pipe taken for success), and with `--json` the node's
    // error object on stdout.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.amb");
    let mut program = "a[] | ".repeat(400_000);
    program.push_str("a[]\n");
    std::fs::write(&big, program).unwrap();
    let output = node.client(&["deploy", big.to_str().unwrap()]);
    let err = failure(&output);
    assert!(
        err.contains("413") && err.contains("api_max_body_bytes"),
        "{err}"
    );
    let output = node.client(&["deploy", big.to_str().unwrap(), "--json"]);
    failure(&output);
    let error = json_error(&output, "limit");
    assert_eq!(error["rule"], "api_max_body_bytes", "{error}");

    // Nothing was stored, and the node serves on.
    assert_eq!(node.info()["programs"], 0);
}

#[test]
fn a_slow_client_is_cut_off_and_requests_over_the_bound_are_busy() {
    let home = Home::new();
    let node = Node::start(
        &home,
        &[],
        &[],
        &[
            ("AMB_NODE_API_HEADER_TIMEOUT_SECS", "1"),
            ("AMB_NODE_API_MAX_REQUESTS", "2"),
        ],
    );
    let api = node.api.as_str();

    // A client sending its request head a byte at a time is disconnected before it
    // ends it (the head never ends).
    let mut slow = TcpStream::connect(authority(api)).unwrap();
    let start = format!(
        "GET /v1/info HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
        authority(api)
    );
    slow.write_all(start.as_bytes()).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let began = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        assert!(
            began.elapsed() < WAIT,
            "the node kept a slow client's connection open"
        );
        if slow.write_all(b"a").is_err() {
            break;
        }
        match slow.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        // The slow client's pace.
        std::thread::sleep(Duration::from_millis(100));
    }

    // Two requests held open (values of a program nobody has, with a long wait)
    // fill `api_max_requests`; the next is answered 503 at once. A held request
    // that raced a probe for a place, and was answered, is sent again.
    let unknown = Cid::of(b"nobody has this program");
    let hold = || {
        let mut stream = TcpStream::connect(authority(api)).unwrap();
        let head = format!(
            "GET /v1/programs/{unknown}/value?wait_ms=30000 HTTP/1.1\r\nHost: {}\r\n\r\n",
            authority(api)
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream
    };
    let answered = |stream: &TcpStream| {
        stream.set_nonblocking(true).unwrap();
        let peeked = stream.peek(&mut [0u8; 1]);
        stream.set_nonblocking(false).unwrap();
        !matches!(peeked, Err(e) if e.kind() == ErrorKind::WouldBlock)
    };
    let mut held: Vec<TcpStream> = (0..2).map(|_| hold()).collect();
    let busy = wait_until("a request over api_max_requests", || {
        for stream in &mut held {
            if answered(stream) {
                *stream = hold();
            }
        }
        let answer = exchange(api, "GET", "/v1/info", &[], b"");
        (answer.0 == 503).then_some(answer)
    });
    let error = api_error(&busy, 503, "busy");
    assert_eq!(error["rule"], "api_max_requests");
    // Their places come back once they end (answered, or their clients gone).
    drop(held);
    wait_until("the API to answer again", || {
        (exchange(api, "GET", "/v1/info", &[], b"").0 == 200).then_some(())
    });
}

/// A process that is killed if the test ends before it does.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_token_guards_the_api_where_it_is_on() {
    let home = Home::new();
    let token_file = std::path::Path::new(&home.path()).join("api_token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    let bearer = format!("Bearer {token}");

    // On loopback, when asked: every route, reads included.
    let node = Node::start(&home, &[], &["--api-token"], &[]);
    let api = node.api.as_str();
    api_error(
        &exchange(api, "GET", "/v1/info", &[], b""),
        401,
        "unauthorized",
    );
    let wrong = ("Authorization", "Bearer 0123");
    api_error(
        &exchange(api, "GET", "/v1/info", &[wrong], b""),
        401,
        "unauthorized",
    );
    let right = ("Authorization", bearer.as_str());
    assert_eq!(exchange(api, "GET", "/v1/info", &[right], b"").0, 200);
    // The CLI sends the token of --home, or of AMB_API_TOKEN.
    let err = failure(&node.client(&["info", "--json"]));
    assert!(err.contains("401"), "{err}");
    json_of(&node.client(&["info", "--json", "--home", &home.path()]));
    json_of(
        &amb_command(home.sandbox())
            .args(["info", "--json", "--node", api])
            .env("AMB_API_TOKEN", &token)
            .output()
            .unwrap(),
    );
    drop(node);

    // Beyond loopback it is always on, and the node says so in its log.
    let node = Node::start(&home, &[], &["--api", "0.0.0.0:0"], &[]);
    let api = node.api.as_str();
    api_error(
        &exchange(api, "GET", "/v1/info", &[], b""),
        401,
        "unauthorized",
    );
    assert_eq!(exchange(api, "GET", "/v1/info", &[right], b"").0, 200);
    assert!(node.log().contains("beyond loopback"), "{}", node.log());
    drop(node);

    // Without a token file, a node refuses to listen beyond loopback: exit 1.
    std::fs::remove_file(&token_file).unwrap();
    let mut node = Running(
        amb_command(home.sandbox())
            .args(["node", "--home", &home.path(), "--api", "0.0.0.0:0"])
            .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = wait_until("the node to refuse to start", || node.0.try_wait().unwrap());
    let mut err = String::new();
    node.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("api_token") && err.contains("amb init"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A disk that can be filled and freed again: a tmpfs of 48 MiB filled with a file
/// of zeros (a real full disk; mounting needs root, which CI has), or, where this
/// process may not mount, the store's own disk-full switch (`amb_log`'s
/// `DISK_FULL_WHILE_ENV`: every write of the node's store fails with ENOSPC while
/// a flag file exists). The test's assertions are the same on both.
enum FullDisk {
    Tmpfs(tempfile::TempDir),
    Switch(tempfile::TempDir),
}

impl FullDisk {
    fn new() -> FullDisk {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        if output.status.success() {
            FullDisk::Tmpfs(dir)
        } else {
            eprintln!(
                "mounting a tmpfs failed ({}): the store's disk-full switch stands in",
                text(&output.stderr).trim()
            );
            FullDisk::Switch(dir)
        }
    }

    /// Where the node's home goes.
    fn path(&self) -> &std::path::Path {
        match self {
            FullDisk::Tmpfs(dir) | FullDisk::Switch(dir) => dir.path(),
        }
    }

    /// The filler file (tmpfs), or the switch's flag file.
    fn filler(&self) -> std::path::PathBuf {
        self.path().join("filler")
    }

    /// What the node's environment needs.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            FullDisk::Tmpfs(_) => Vec::new(),
            FullDisk::Switch(_) => vec![(
                amb_log::DISK_FULL_WHILE_ENV,
                self.filler().display().to_string(),
            )],
        }
    }

    /// Fills the disk: zeros until the file system is full, or the flag file.
    fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        if let FullDisk::Switch(_) = self {
            return;
        }
        for size in [1 << 20, 4096, 1] {
            let chunk = vec![0u8; size];
            loop {
                match file.write_all(&chunk).and_then(|()| file.sync_all()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("filling the disk: {e}"),
                }
            }
        }
    }

    /// Space returns.
    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        if let FullDisk::Tmpfs(dir) = self {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(dir.path())
                .status();
        }
    }
}

#[test]
fn a_full_disk_is_the_nodes_failure_and_it_recovers_when_space_returns() {
    let disk = FullDisk::new();
    let home = Home::new_in(disk.path());
    let env = disk.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let node = Node::start(&home, &[], &[], &env);
    let api = node.api.as_str();
    let source = std::fs::read_to_string(corpus(MONOID)).unwrap();
    let deploy = |name: &str| {
        let body = json!({ "source": source, "name": name }).to_string();
        let json = ("Content-Type", "application/json");
        exchange(api, "POST", "/v1/deploy", &[json], body.as_bytes())
    };
    let health = || exchange(api, "GET", "/v1/info", &[], b"").1["health"].clone();
    assert_eq!(deploy("before").0, 200);
    assert_eq!(health(), json!({"ok": true}));

    disk.fill();
    // The store may have room left inside its file: deploy until a write fails.
    let failed = (0..50)
        .map(|n| deploy(&format!("full-{n}")))
        .find(|answer| answer.0 != 200)
        .expect("a deploy fails once the disk is full");
    // The node's own failure, of a full disk: 507.
    let error = api_error(&failed, 507, "storage");
    assert_eq!(error["rule"], "disk-full", "{error}");
    let unhealthy = health();
    assert_eq!(unhealthy["ok"], false, "{unhealthy}");
    let store = unhealthy["store"].as_str().unwrap_or_default();
    assert!(store.starts_with("disk full: "), "{unhealthy}");

    // Space returns: the next deploy succeeds, without a restart.
    disk.free();
    let again = deploy("after");
    assert_eq!(again.0, 200, "{again:?}");
    assert_eq!(health(), json!({"ok": true}));
    drop(node);
}

/// A node's memory is bounded by its settings, not by how many programs it ran
/// (`spec/network.md` §1, "Bounds"): over 1,000 small deployments to one node
/// process, its resident memory grows by less than 20 MB between deployment 200
/// and deployment 1,000, and ends under 300 MB; every 50th value is read back.
#[test]
fn a_thousand_deploys_keep_the_nodes_memory_bounded() {
    let home = Home::new();
    // The allocator returns freed memory at once: resident memory is then memory in
    // use, not also what was freed and is not yet given back (which varies by tens
    // of MB from one moment to the next). The store's page cache fills up to its
    // setting as the store grows (32 MiB by default, reached between deployments 200
    // and 1,000): a small one here keeps it out of what is measured, which is what
    // grows with the programs a node ran.
    let node = Node::start(
        &home,
        &[],
        &[],
        &[
            ("MIMALLOC_PURGE_DELAY", "0"),
            ("AMB_NODE_STORE_CACHE_MIB", "4"),
        ],
    );
    let source = std::fs::read_to_string(corpus(MONOID)).unwrap();
    let deploy = format!("{}/v1/deploy", node.api);
    let mut at_200 = 0;
    for i in 1..=1000 {
        let deployed = post(
            &deploy,
            &json!({ "source": source, "name": format!("p{i}") }),
        );
        if i % 50 == 0 {
            let cid = &deployed["address"].as_str().expect("an address")[5..];
            let value = get(&format!("{}/v1/programs/{cid}/value", node.api));
            assert_eq!(value["value"], "helloworld", "deployment {i}: {value}");
        }
        if i == 200 {
            at_200 = node.rss_kib();
        }
    }
    let at_1000 = node.rss_kib();
    eprintln!("resident memory: {at_200} KiB at deployment 200, {at_1000} KiB at 1,000");
    assert!(
        at_1000 < at_200 + 20 * 1024,
        "grew from {at_200} KiB to {at_1000} KiB"
    );
    assert!(at_1000 < 300 * 1024, "{at_1000} KiB");
    assert_eq!(node.info()["peer_id"], node.peer_id.as_str());
}

/// A program over the node's default deploy limits is refused before it is
/// compiled, with a 4xx naming the limit: too deep (`max_deploy_depth`), too big
/// (`max_deploy_bytes`, the 1.5 MB program nested 500,000 deep); a request may
/// lower the step limit (`max_steps`), and a run past it is refused the same way.
#[test]
fn deployments_over_the_default_limits_are_refused_naming_the_limit() {
    let node = Node::fresh(&[]);
    let deploy = format!("{}/v1/deploy", node.api);
    let nested = |depth: usize| format!("{}{}", "a[".repeat(depth), "]".repeat(depth));
    for (source, limit) in [
        (nested(20_000), "max_deploy_depth"),
        (nested(500_000), "max_deploy_bytes"),
    ] {
        let (status, body) = post_status(&deploy, &json!({ "source": source }));
        assert!((400..500).contains(&status), "{status}: {body}");
        assert!(body.contains(limit), "{limit} not named: {body}");
    }
    let monoid = std::fs::read_to_string(corpus(MONOID)).unwrap();
    let (status, body) = post_status(&deploy, &json!({ "source": monoid, "max_steps": 1 }));
    assert!((400..500).contains(&status), "{status}: {body}");
    assert!(body.contains("max_deploy_steps"), "{body}");
    // Under the limits, the same node deploys.
    let deployed = post(&deploy, &json!({ "source": monoid }));
    assert_eq!(deployed["value"], "helloworld", "{deployed}");
    assert_eq!(node.info()["programs"], 1);
}

/// A panic while checking one program's events (the fault layer's `panic_name`)
/// fails that program alone: its deployment and its value report the failure, its
/// status shows it, and the node goes on serving the other programs.
#[test]
fn a_panic_in_one_programs_check_fails_that_program_alone() {
    let home = Home::new();
    let mut node = Node::start(&home, &[], &["--faults", "seed=1,panic_name=boom"], &[]);
    let monoid = std::fs::read_to_string(corpus(MONOID)).unwrap();
    let deploy = format!("{}/v1/deploy", node.api);
    let before = post(&deploy, &json!({ "source": monoid, "name": "before" }));
    let (status, body) = post_status(&deploy, &json!({ "source": monoid, "name": "boom" }));
    assert!(status >= 400, "{status}: {body}");
    assert!(body.contains("failed while checking"), "{body}");
    let start = body.find("/amb/").expect("the error names the program") + 5;
    let boom: String = body[start..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let after = post(&deploy, &json!({ "source": monoid, "name": "after" }));

    let program = get(&format!("{}/v1/programs/{boom}", node.api));
    let failed = program["execution"]["failed"].as_str().unwrap_or_default();
    assert!(failed.contains("panic_name"), "{program}");
    assert_eq!(program["failed"], failed, "{program}");
    let (status, body) = get_status(&format!(
        "{}/v1/programs/{boom}/value?wait_ms=2000",
        node.api
    ));
    assert!(status >= 400, "{status}: {body}");
    assert!(body.contains("failed while checking"), "{body}");

    for deployed in [before, after] {
        let cid = &deployed["address"].as_str().expect("an address")[5..];
        let value = get(&format!("{}/v1/programs/{cid}/value", node.api));
        assert_eq!(value["value"], "helloworld", "{value}");
    }
    let info = node.info();
    assert_eq!(info["peer_id"], node.peer_id.as_str());
    assert_eq!(info["refused"]["internal"], 1, "{info}");
    assert!(node.is_running(), "log:\n{}", node.log());
}

#[test]
fn delegating_a_name_the_program_lacks_is_refused_and_nodes_log_what_they_do() {
    let a = Node::fresh(&[]);
    let b = Node::fresh(&[a.address()]);
    a.wait_peer(&b.peer_id);
    let file = corpus(MONOID);
    let file = file.to_str().unwrap();

    // A name no ambient of the program has: refused before anything is stored.
    let nosuch = format!("nosuch={}", b.peer_id);
    let output = a.client(&["deploy", file, "--delegate", &nosuch, "--json"]);
    let err = failure(&output);
    assert!(
        err.contains("the program has no ambient named `nosuch`"),
        "{err}"
    );
    json_error(&output, "invalid");
    let listed = json_of(&a.client(&["ls", "--json"]));
    assert_eq!(listed["programs"], json!([]), "nothing stored");
    // The node logs the refusal.
    wait_until("the refused deploy in A's log", || {
        a.log().contains("refused a deploy: ").then_some(())
    });

    // A real delegation: `amb ls --node` lists it, and both nodes log what happened.
    let address = common::node::deploy(&a, file, &[("string_concat", &b)]);
    let value = json_of(&b.client(&["value", &address, "--json"]));
    assert_eq!(value["value"], "helloworld");
    // A unique prefix is accepted through a node too.
    let by_prefix = json_of(&b.client(&["value", &address[5..25], "--json"]));
    assert_eq!(by_prefix["address"], address.as_str());
    let entry = wait_until("the program listed as complete on A", || {
        let listed = json_of(&a.client(&["ls", "--json"]));
        let entry = listed["programs"][0].clone();
        (entry["status"] == "complete").then_some(entry)
    });
    assert_eq!(entry["address"], address.as_str());
    assert_eq!(entry["name"], "locally-evaluated-string-concat");
    let table = text(&a.client(&["ls"]).stdout);
    assert!(table.contains(&address), "{table}");
    // Event prefixes, as `amb log` prints them, through a node too.
    let log = json_of(&a.client(&["log", &address, "--json"]));
    let last = log.as_array().and_then(|l| l.last()).expect("events")["cid"]
        .as_str()
        .expect("a CID")
        .to_string();
    let by_prefix = json_of(&a.client(&["inspect", &address, "--at", &last[..16], "--json"]));
    let by_cid = json_of(&a.client(&["inspect", &address, "--at", &last, "--json"]));
    assert_eq!(by_prefix, by_cid);
    wait_until(
        "A's log of the connection, deployment and delegation",
        || {
            let log = a.log();
            (log.contains("connected")
                && log.contains(&format!("deployed {address}"))
                && log.contains("the peer walks its order"))
            .then_some(())
        },
    );
    // B is given its order, never the program's address (which it knows only from
    // the `amb value` asked through it: its fetch, logged).
    wait_until("B's log of the delegation request", || {
        let log = b.log();
        let leaked = log
            .lines()
            .any(|line| line.contains(&address[5..]) && !line.contains("fetched /amb/"));
        (log.contains("asked to walk an order") && !leaked).then_some(())
    });

    // A peer that cannot be reached is warned about.
    let home = Home::new();
    let unreachable = format!("/ip4/127.0.0.1/tcp/1/p2p/{}", b.peer_id);
    let c = Node::start(&home, &[unreachable], &[], &[]);
    wait_until("a warning for the unreachable peer", || {
        c.log().contains("cannot reach the peer").then_some(())
    });
}

#[test]
fn deploy_info_and_value_use_the_default_node_address() {
    let node = Node::fresh(&[]);
    // No --node: AMB_NODE_URL, else http://127.0.0.1:4080.
    let info = json_of(
        &amb_command(node.sandbox())
            .args(["info", "--json"])
            .env("AMB_NODE_URL", &node.api)
            .output()
            .expect("amb runs"),
    );
    assert_eq!(info["peer_id"], node.peer_id.as_str());
    // Without either: a node whose API is at the default address answers. The port
    // is waited for while another process holds it (another run of this test). The
    // node's home does not exist: it creates it, and says so.
    let home = Home::missing();
    let default = wait_until("127.0.0.1:4080 to be free", || {
        std::net::TcpListener::bind("127.0.0.1:4080")
            .ok()
            .map(drop)?;
        Some(Node::start(&home, &[], &["--api", "127.0.0.1:4080"], &[]))
    });
    assert_eq!(default.api, "http://127.0.0.1:4080");
    assert!(
        default.log().contains("created the home"),
        "{}",
        default.log()
    );
    let without = |args: &[&str]| {
        amb_command(node.sandbox())
            .args(args)
            .env("AMB_NODE_URL", "")
            .output()
            .expect("amb runs")
    };
    let info = json_of(&without(&["info", "--json"]));
    assert_eq!(info["peer_id"], default.peer_id.as_str(), "{info}");
    assert_ne!(default.peer_id, node.peer_id);
    let monoid = corpus(MONOID);
    let deployed = json_of(&without(&[
        "deploy",
        monoid.to_str().expect("UTF-8"),
        "--json",
    ]));
    let address = deployed["address"].as_str().expect("an address");
    let value = json_of(&without(&["value", address, "--json"]));
    assert_eq!(value["address"], address, "{value}");
    // A read command stays local: the default home has no store.
    let err = failure(&without(&["ls"]));
    assert!(err.contains("amb init"), "{err}");

    // `amb export --node`: the node writes the CAR file from its store; imported
    // into a home of its own (created, as said on stderr), the program verifies and
    // reaches the normal form the node's value gives.
    let car = home.sandbox().join("exported.car");
    let car = car.to_str().expect("UTF-8");
    let exported = json_of(&without(&[
        "export",
        address,
        "-o",
        car,
        "--node",
        &default.api,
        "--json",
    ]));
    assert_eq!(exported["address"], address, "{exported}");
    assert!(exported["events"].as_u64().unwrap_or(0) > 0, "{exported}");
    let elsewhere = tempfile::tempdir().expect("a temporary directory");
    let imported = amb_command(elsewhere.path())
        .args(["import", car, "--json"])
        .output()
        .expect("amb runs");
    assert!(
        text(&imported.stderr).contains("created the home"),
        "{imported:?}"
    );
    let imported = json_of(&imported);
    assert_eq!(imported["address"], address, "{imported}");
    assert_eq!(imported["complete"], true, "{imported}");
    assert_eq!(imported["normal_form"], value["normal_form"], "{imported}");
    // An address the node does not hold is refused.
    let unknown = format!("/amb/{}", Cid::of(b"not a program"));
    let out = without(&["export", &unknown, "-o", car, "--node", &default.api]);
    assert!(failure(&out).contains("no program"), "{out:?}");
}

#[test]
fn a_node_holding_an_imported_run_with_effects_gives_its_recorded_random_value() {
    let a = Home::new();
    let random =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sys_random.amb");
    let run = json_of(&a.amb(&["run", random.to_str().unwrap(), "--json"]));
    let address = run["address"].as_str().unwrap();
    assert_eq!(run["value"]["bytes"].as_str().unwrap().len(), 32, "{run}");
    let car = a.sandbox().join("random.car");
    json_of(&a.amb(&["export", address, "-o", car.to_str().unwrap(), "--json"]));
    let b = Home::new();
    json_of(&b.amb(&["import", car.to_str().unwrap(), "--json"]));
    // The node replays the recorded effect: the same bytes, nothing drawn again.
    let node = Node::start(&b, &[], &[], &[]);
    let value = value_on(&node, address);
    assert_eq!(value["value"], run["value"], "{value}");
}

/// The `/amb/<cid>` in a command's text output.
fn address_in(out: &str) -> String {
    out.split_whitespace()
        .find(|word| word.starts_with("/amb/"))
        .unwrap_or_else(|| panic!("no address in {out}"))
        .to_string()
}

#[test]
fn the_readme_network_runs_as_written_and_a_node_that_fetched_a_program_exports_it() {
    // The README's network block with port 0 for every port: A; B dialing A; a
    // deploy through the default node address (here $AMB_NODE_URL) delegating to B;
    // the value and the list through B.
    let (home_a, home_b, home_c) = (Home::new(), Home::new(), Home::new());
    let a = Node::start(&home_a, &[], &[], &[]);
    let b = Node::start(&home_b, &[a.address()], &[], &[]);
    a.wait_peer(&b.peer_id);
    let monoid = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/monoid.amb");
    let monoid = monoid.to_str().unwrap();
    let delegate = format!("string_concat={}", b.peer_id);
    let deployed = amb_command(a.sandbox())
        .args(["deploy", monoid, "--delegate", &delegate])
        .env("AMB_NODE_URL", &a.api)
        .output()
        .expect("amb deploy runs");
    let address = address_in(&common::success(&deployed));
    let value = common::success(&b.client(&["value", &address]));
    assert!(value.contains(&format!("address: {address}")), "{value}");
    assert!(value.contains("value: "), "{value}");
    let listed = common::success(&b.client(&["ls"]));
    assert!(listed.contains(&address), "{listed}");

    // A third node fetches the program by its value; it can export it whole, through
    // its API (`--node` before the subcommand) and, stopped, from its home.
    let mut c = Node::start(&home_c, &[a.address()], &[], &[]);
    c.wait_peer(&a.peer_id);
    let fetched = json_of(&c.client(&["value", &address, "--json"]));
    assert_eq!(fetched["address"], address.as_str());
    let dir = tempfile::tempdir().unwrap();
    for (node, name) in [(&c, "c.car"), (&b, "b.car")] {
        let car = dir.path().join(name);
        let out = amb_command(node.sandbox())
            .args(["--node", &node.api, "export", &address, "-o"])
            .arg(&car)
            .args(["--json"])
            .output()
            .expect("amb export runs");
        assert!(
            out.status.success(),
            "{name}: {}\n--- its log:\n{}",
            text(&out.stderr),
            node.log()
        );
        let exported = json_of(&out);
        assert_eq!(exported["address"], address.as_str(), "{name}");
    }
    // Nodes log the fetch: the holder serving it, the fetcher storing it.
    wait_until("the fetch in both logs", || {
        (a.log().contains(&format!("serving events of {address}"))
            && c.log().contains(&format!("fetched {address}")))
        .then_some(())
    });
    assert!(
        !a.log().contains("serving the heads"),
        "heads at debug only"
    );

    // A bytecode CID, an unknown address and a step past the end read alike through
    // a node, `value` included; `value` says what it waits for.
    let block = common::success(
        &amb_command(a.sandbox())
            .args(["compile", monoid])
            .output()
            .unwrap(),
    );
    let block = block.trim();
    for args in [
        vec!["value", block, "--wait", "2"],
        vec!["verify", block],
        vec!["log", block],
        vec!["export", block, "-o", "x.car"],
    ] {
        let out = a.client(&args);
        let err = failure(&out);
        assert!(
            err.contains(&format!(
                "{block} is a bytecode CID (`amb compile`), not a program address"
            )),
            "{args:?}: {err}"
        );
    }
    let unknown = format!("/amb/{}", Cid::of(b"no peer holds this"));
    for args in [
        vec!["verify", unknown.as_str()],
        vec!["log", unknown.as_str()],
    ] {
        let err = failure(&a.client(&args));
        assert!(
            err.contains(&format!("no program {unknown} here")),
            "{args:?}: {err}"
        );
    }
    let err = failure(&a.client(&["verify", "nonsense"]));
    assert!(
        err.contains("no program whose address starts with `nonsense` here"),
        "{err}"
    );
    let started = Instant::now();
    let out = c.client(&["value", &unknown, "--wait", "2"]);
    let err = failure(&out);
    assert!(
        err.contains("is not on this node: it asks its peers for up to 2 s"),
        "{err}"
    );
    assert!(err.contains(&format!("no program {unknown} here")), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let err = failure(&a.client(&["inspect", &address, "--at", "99"]));
    assert!(err.contains("step 99 is past the end"), "{err}");

    let stopped = c.terminate();
    assert!(stopped.success(), "{stopped:?}");
    let car = dir.path().join("home-c.car");
    common::success(&home_c.amb(&["export", &address, "-o", car.to_str().unwrap()]));
    let imported = json_of(&Home::new().amb(&["import", car.to_str().unwrap(), "--json"]));
    assert_eq!(imported["complete"], true, "{imported}");
    assert_eq!(imported["normal_form"], fetched["normal_form"]);
}
