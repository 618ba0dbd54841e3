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
    io::{BufRead, BufReader},
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

#[test]
fn deploy_and_value_fail_clearly() {
    let node = Node::fresh(&[]);
    let dir = tempfile::tempdir().unwrap();

    let bad = dir.path().join("unclosed.amb");
    std::fs::write(&bad, "x[]|\n\n  a[b[]").unwrap();
    let output = node.client(&["deploy", bad.to_str().unwrap(), "--json"]);
    let err = failure(&output);
    assert_eq!(text(&output.stdout), "");
    let place = format!("{}:3:8", bad.display());
    assert!(err.contains(&place), "no {place} in\n{err}");

    let unknown = format!("/amb/{}", Cid::of(b"no program has this address"));
    let started = Instant::now();
    let output = node.client(&["value", &unknown, "--wait", "2", "--json"]);
    let err = failure(&output);
    assert_eq!(text(&output.stdout), "");
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

/// A node's memory is bounded by its settings, not by how many programs it ran
/// (`spec/network.md` §1, "Bounds"): over 1,000 small deployments to one node
/// process, its resident memory grows by less than 20 MB between deployment 200
/// and deployment 1,000, and ends under 300 MB; every 50th value is read back.
#[test]
fn a_thousand_deploys_keep_the_nodes_memory_bounded() {
    let home = Home::new();
    // The allocator returns freed memory at once: resident memory is then memory in
    // use, not also what was freed and is not yet given back (which varies by tens
    // of MB from one moment to the next).
    let node = Node::start(&home, &[], &[], &[("MIMALLOC_PURGE_DELAY", "0")]);
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
