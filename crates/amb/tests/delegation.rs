//! Delegated runs across real nodes on loopback (`spec/network.md` §8), each
//! delegate walking only its order (its part of the plan; its store never holds
//! the program): the acceptance scenario of the string-concat monoid with `string_concat` on a second
//! node and a late observer; a host killed mid-run and restarted; a deployer and
//! its host both stopped mid-run and restarted, each resuming its walk; a deployer
//! killed between the two halves of a cross-host step, resuming past it; a host
//! gone for good; two movers on two hosts racing for one co-capability on a third;
//! and the scenario under a seeded fault layer with loss, duplicates and
//! reordering; and a JavaScript program whose function `add` runs on a second node.

mod common;

use std::collections::HashSet;

use common::{
    failure, json_of,
    node::{Home, Node, deploy},
};
use serde_json::Value;

const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

/// `amb value ADDRESS --node N --json`.
fn value(node: &Node, address: &str) -> Value {
    let out = node.client(&["value", address, "--json", "--wait", "60"]);
    assert!(
        out.status.success(),
        "{}\n--- log of {}:\n{}",
        String::from_utf8_lossy(&out.stdout),
        node.peer_id,
        node.log()
    );
    json_of(&out)
}

/// What `amb reduce --json` says of a file.
fn reduced(home: &Home, file: &str) -> Value {
    let out = common::node::amb_command(home.sandbox())
        .args(["reduce", file, "--json"])
        .output()
        .expect("amb runs");
    json_of(&out)
}

/// With the node stopped: `amb verify` passes on its store, which holds `events`
/// events of the run, each (log, seq) once; returns the writers' keys.
fn check_store(home: &Home, address: &str, events: u64) -> HashSet<String> {
    let log = home.stored_run(address);
    assert_eq!(log.len() as u64, events);
    log.iter()
        .map(|e| e["writer"].as_str().unwrap().to_string())
        .collect()
}

/// Starts B on `home_b`, dialing A, with the fault layer aborting it (as a SIGKILL
/// would) once it has signed 10 events; A deploys the monoid with `string_concat`
/// on B; waits until B has crashed. Returns the address and B's peer id.
fn deploy_to_a_crashing_host(a: &Node, home_b: &Home, file: &str) -> (String, String) {
    let mut b = Node::start(
        home_b,
        &[a.address()],
        &["--faults", "seed=1,crash_after=10"],
        &[],
    );
    a.wait_peer(&b.peer_id);
    let address = deploy(a, file, &[("string_concat", &b)]);
    let exit = b.wait_exit();
    assert!(!exit.success(), "B crashed: {exit:?}");
    (address, b.peer_id.clone())
}

#[test]
fn the_monoid_runs_across_two_nodes_and_a_late_observer_verifies_it() {
    let file = common::corpus(MONOID);
    let file = file.to_str().unwrap();
    let (home_a, home_b, home_c) = (Home::new(), Home::new(), Home::new());
    let mut a = Node::start(&home_a, &[], &[], &[]);
    let mut b = Node::start(&home_b, &[a.address()], &[], &[]);
    a.wait_peer(&b.peer_id);
    let address = deploy(&a, file, &[("string_concat", &b)]);
    let on_a = value(&a, &address);
    // C joins late and only observes, with the program address.
    let mut c = Node::start(&home_c, &[a.address()], &[], &[]);
    let on_c = value(&c, &address);
    let expected = reduced(&home_a, file);
    for answer in [&on_a, &on_c] {
        assert_eq!(answer["address"], address.as_str());
        assert_eq!(answer["value"], "helloworld");
        assert_eq!(answer["normal_form"], expected["normal_form"]);
    }
    let status = json_of(&c.client(&["info", "--json"]));
    assert_eq!(status["refused"], serde_json::json!({}), "{status}");
    // `func` opens string_concat before the end: B's slice has no value of its
    // own, and B says so once its walk is over (not after the wait).
    let slice = slice_address(&b, "string_concat");
    let out = b.client(&["value", &slice, "--json", "--wait", "60"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("has no value"), "{said}");
    for node in [&mut a, &mut b, &mut c] {
        assert!(node.terminate().success());
    }
    // The deployer's and the observer's stores hold the whole run, verify, and
    // have events of both writers.
    let writers = check_store(&home_c, &address, 86);
    assert_eq!(writers.len(), 2, "A and B both wrote: {writers:?}");
    assert_eq!(check_store(&home_a, &address, 86), writers);
    // B walked its order alone: it never held the program. Told the address
    // afterwards, it reads the value like any peer (its part joins the program).
    assert_never_held(&home_b, &address);
    let a = Node::start(&home_a, &[], &[], &[]);
    let b = Node::start(&home_b, &[a.address()], &[], &[]);
    assert_eq!(value(&b, &address)["value"], "helloworld");
    drop((a, b));
    assert_eq!(check_store(&home_b, &address, 86), writers);
}

/// With the node stopped: its store does not know the program `address` (a
/// delegate walks its order, which never names the program).
fn assert_never_held(home: &Home, address: &str) {
    let out = home.amb(&["log", address, "--json"]);
    assert!(
        !out.status.success(),
        "the delegate's store holds {address}"
    );
}

#[test]
fn a_javascript_add_delegated_to_a_second_node_runs_there() {
    let (home_a, home_b) = (Home::new(), Home::new());
    let file = home_a.sandbox().join("add.js");
    std::fs::write(&file, "const add = (a, b) => a + b;\nadd(2, 3)\n").unwrap();
    let file = file.to_str().unwrap();
    let mut a = Node::start(&home_a, &[], &[], &[]);
    let mut b = Node::start(&home_b, &[a.address()], &[], &[]);
    a.wait_peer(&b.peer_id);
    let address = deploy(&a, file, &[("add", &b)]);
    let on_a = value(&a, &address);
    let expected = reduced(&home_a, file);
    assert_eq!(on_a["value"], 5, "{on_a}");
    assert_eq!(on_a["normal_form"], expected["normal_form"]);
    for node in [&mut a, &mut b] {
        assert!(node.terminate().success());
    }
    // `add`'s events were written by B, the rest by A; A's store holds them all.
    let events = expected["steps"].as_u64().unwrap();
    let writers = check_store(&home_a, &address, events_of(&home_a, &address));
    assert_eq!(
        writers.len(),
        2,
        "A and B both wrote: {writers:?} ({events} steps)"
    );
    assert_never_held(&home_b, &address);
}

#[test]
fn a_host_killed_mid_run_resumes_at_restart_with_nothing_lost_or_forked() {
    let file = common::corpus(MONOID);
    let file = file.to_str().unwrap();
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = Node::start(&home_a, &[], &[], &[]);
    let (address, _) = deploy_to_a_crashing_host(&a, &home_b, file);
    // B restarts on the same home and resumes its order (A would also ask it
    // again); the run completes.
    let b = Node::start(&home_b, &[a.address()], &[], &[]);
    common::node::wait_until("B resumed its order", || {
        b.log().contains("resuming the walk of").then_some(())
    });
    let c = Node::start(&Home::new(), &[a.address()], &[], &[]);
    let on_c = value(&c, &address);
    assert_eq!(on_c["value"], "helloworld");
    assert_eq!(value(&a, &address)["value"], "helloworld");
    drop((a, b, c));
    let writers = check_store(&home_a, &address, 86);
    assert_eq!(writers.len(), 2);
    assert_never_held(&home_b, &address);
}

#[test]
fn a_deployer_and_its_host_both_restarted_resume_their_walks() {
    let file = common::corpus(MONOID);
    let file = file.to_str().unwrap();
    let (home_a, home_b) = (Home::new(), Home::new());
    let mut a = Node::start(&home_a, &[], &[], &[]);
    // B dies in the middle of its part (as by SIGKILL); A is stopped by SIGTERM
    // while its walk waits for B.
    let (address, _) = deploy_to_a_crashing_host(&a, &home_b, file);
    assert!(a.terminate().success());
    // Both restart: each resumes its own walk from its store.
    let a = Node::start(&home_a, &[], &[], &[]);
    let b = Node::start(&home_b, &[a.address()], &[], &[]);
    let answer = value(&a, &address);
    assert_eq!(answer["address"], address.as_str());
    assert_eq!(answer["value"], "helloworld");
    for node in [&a, &b] {
        common::node::wait_until("the walk resumed", || {
            node.log().contains("resuming the walk of").then_some(())
        });
    }
    assert!(a.log().contains(&format!("resuming the walk of {address}")));
    assert_eq!(a.info()["programs"], 1);
    drop((a, b));
    assert_eq!(check_store(&home_a, &address, 86).len(), 2);
    assert_never_held(&home_b, &address);
}

#[test]
fn a_deployer_killed_after_a_cross_host_step_resumes_past_it() {
    let (home_a, home_b) = (Home::new(), Home::new());
    let file = home_a.sandbox().join("move.amb");
    std::fs::write(&file, "a[in c.x[]] | c[in_.open_] | open c").unwrap();
    let file = file.to_str().unwrap();
    // `c` runs on B. A signs six events, then its `in c` once B has reserved its
    // `in_` for `a`, then, once B has signed `in_` and `open_`, its `open c`: the
    // fault layer aborts A right after committing that eighth event.
    let mut a = Node::start(&home_a, &[], &["--faults", "seed=1,crash_after=8"], &[]);
    let b = Node::start(&home_b, &[a.address()], &[], &[]);
    a.wait_peer(&b.peer_id);
    let delegate = format!("c={}", b.peer_id);
    let _ = a.client(&["deploy", file, "--delegate", &delegate, "--json"]);
    assert!(!a.wait_exit().success());
    let address = a.walked_address();
    let stored = json_of(&home_a.amb(&["log", &address, "--json"]));
    let stored = stored.as_array().expect("a list of events");
    assert!(
        stored
            .iter()
            .any(|e| e["op"] == "open" && e["target"] == "c"),
        "A committed its `open c`: {stored:?}"
    );
    // Restarted, A signs its `in c` again (the same bytes) without asking B to
    // reserve the `in_` that B has consumed since (B would refuse: `taken`).
    let a = Node::start(&home_a, &[b.address()], &[], &[]);
    assert_eq!(value(&a, &address)["normal_form"], "a[x[]]");
    // A's own walk reaches its end (the value alone could come from B's).
    let status = format!("{}/v1/programs/{}", a.api, &address[5..]);
    common::node::wait_until("A's walk at its end", || {
        let status: Value = ureq::get(&status).call().ok()?.into_json().ok()?;
        (status["execution"]["done"] == true).then_some(())
    });
    drop((a, b));
    let events = events_of(&home_a, &address);
    assert_eq!(check_store(&home_a, &address, events).len(), 2);
    assert_never_held(&home_b, &address);
}

#[test]
fn a_host_gone_for_good_fails_the_run_with_a_clear_error() {
    let file = common::corpus(MONOID);
    let file = file.to_str().unwrap();
    let (home_a, home_b) = (Home::new(), Home::new());
    let a = Node::start(&home_a, &[], &[], &[("AMB_NODE_PEER_TIMEOUT_SECS", "2")]);
    let (address, b_peer) = deploy_to_a_crashing_host(&a, &home_b, file);
    let error = failure(&a.client(&["value", &address, "--json", "--wait", "60"]));
    assert!(error.contains("peer timeout"), "{error}");
    assert!(error.contains(&b_peer), "names the host: {error}");
}

#[test]
fn two_movers_on_two_hosts_race_for_one_co_capability_on_a_third() {
    let (home_a, home_b, home_c) = (Home::new(), Home::new(), Home::new());
    let file = home_a.sandbox().join("race.amb");
    std::fs::write(&file, "a[in c.x[]] | b[in c.y[]] | c[in_]").unwrap();
    let file = file.to_str().unwrap();
    let mut a = Node::start(&home_a, &[], &[], &[]);
    let mut b = Node::start(&home_b, &[a.address()], &[], &[]);
    let mut c = Node::start(&home_c, &[a.address(), b.address()], &[], &[]);
    a.wait_peer(&b.peer_id);
    a.wait_peer(&c.peer_id);
    // `a` stays on A (the deployer), `b` runs on B, `c` on C.
    let address = deploy(&a, file, &[("b", &b), ("c", &c)]);
    // D observes with the program address.
    let d = Node::start(&Home::new(), &[a.address()], &[], &[]);
    let answers: Vec<Value> = [&a, &d].iter().map(|n| value(n, &address)).collect();
    let normal_form = answers[0]["normal_form"].as_str().unwrap().to_string();
    // Exactly one mover is inside c; the other still holds its `in c`.
    let winners = ["c[a[x[]]]", "c[b[y[]]]"]
        .iter()
        .filter(|w| normal_form.contains(*w))
        .count();
    assert_eq!(winners, 1, "{normal_form}");
    assert!(normal_form.contains("[in c."), "{normal_form}");
    // It is one of the normal forms `amb explore` lists.
    let out = common::node::amb_command(home_a.sandbox())
        .args(["explore", file, "--json"])
        .output()
        .expect("amb runs");
    let explored = json_of(&out);
    let listed = explored["normal_forms"].as_array().expect("normal forms");
    assert_eq!(listed.len(), 2, "{explored}");
    assert!(
        listed.iter().any(|n| n == normal_form.as_str()),
        "{normal_form} not in {explored}"
    );
    for answer in &answers {
        assert_eq!(answer["normal_form"], normal_form.as_str());
    }
    for node in [&mut a, &mut b, &mut c] {
        assert!(node.terminate().success());
    }
    drop(d);
    let writers = check_store(&home_a, &address, events_of(&home_a, &address));
    assert_eq!(writers.len(), 3, "A, B and C each wrote: {writers:?}");
    for home in [&home_b, &home_c] {
        assert_never_held(home, &address);
    }
}

#[test]
fn the_scenario_survives_loss_duplicates_and_reordering() {
    let file = common::corpus(MONOID);
    let file = file.to_str().unwrap();
    let faults = |seed: u64| format!("seed={seed},drop=0.1,duplicate=0.1,delay_ms=40");
    let (home_a, home_b, home_c) = (Home::new(), Home::new(), Home::new());
    let (fa, fb, fc) = (faults(11), faults(12), faults(13));
    let mut a = Node::start(&home_a, &[], &["--faults", &fa], &[]);
    let mut b = Node::start(&home_b, &[a.address()], &["--faults", &fb], &[]);
    let mut c = Node::start(
        &home_c,
        &[a.address(), b.address()],
        &["--faults", &fc],
        &[],
    );
    a.wait_peer(&b.peer_id);
    // Several runs, so that the layer meets enough messages to drop some.
    let mut addresses = Vec::new();
    for _ in 0..5 {
        let address = deploy(&a, file, &[("string_concat", &b)]);
        for node in [&a, &c] {
            assert_eq!(value(node, &address)["value"], "helloworld");
        }
        addresses.push(address);
    }
    // B's walk of each order reached its end too (what gossip lost, B asked its
    // maker for, after the maker's walk was over as well).
    common::node::wait_until("B's five walks at their end", || {
        (b.log().matches("the walk is at its end").count() == addresses.len()).then_some(())
    });
    // The layer did drop and duplicate messages on the way.
    let counts: Vec<Value> = [&a, &b, &c]
        .iter()
        .map(|n| n.info()["faults"].clone())
        .collect();
    let total = |key: &str| counts.iter().map(|c| c[key].as_u64().unwrap()).sum::<u64>();
    assert!(
        total("dropped") > 0 && total("duplicated") > 0,
        "{counts:?}"
    );
    for node in [&mut a, &mut b, &mut c] {
        assert!(node.terminate().success());
    }
    for home in [&home_a, &home_c] {
        for address in &addresses {
            assert_eq!(check_store(home, address, 86).len(), 2);
        }
    }
    for address in &addresses {
        assert_never_held(&home_b, address);
    }
}

#[test]
fn eight_calls_on_eight_delegates_each_learn_only_their_own_function() {
    let home_a = Home::new();
    let mut a = Node::start(&home_a, &[], &[], &[]);
    let homes: Vec<Home> = (0..8).map(|_| Home::new()).collect();
    let mut delegates: Vec<Node> = homes
        .iter()
        .map(|home| Node::start(home, &[a.address()], &[], &[]))
        .collect();
    for delegate in &delegates {
        a.wait_peer(&delegate.peer_id);
    }
    // Eight independent calls: `a<i>` enters `f<i>`, which opens it. Each
    // function's body holds its own marker; the deployer's `d` never moves.
    let file = home_a.sandbox().join("calls.amb");
    let mut source = String::from("d[deployersecret[]]");
    for i in 1..=8 {
        source.push_str(&format!(
            " | f{i}[in_ a{i}.open a{i}.secret{i}x[]] | a{i}[in f{i}.open_]"
        ));
    }
    std::fs::write(&file, &source).unwrap();
    let file = file.to_str().unwrap();
    let names: Vec<String> = (1..=8).map(|i| format!("f{i}")).collect();
    let hosting: Vec<(&str, &Node)> = names.iter().map(String::as_str).zip(&delegates).collect();
    let address = deploy(&a, file, &hosting);
    let expected = reduced(&home_a, file);
    assert_eq!(value(&a, &address)["normal_form"], expected["normal_form"]);
    // A late third party with the program address reads and verifies it all.
    let home_late = Home::new();
    let mut late = Node::start(&home_late, &[a.address()], &[], &[]);
    assert_eq!(
        value(&late, &address)["normal_form"],
        expected["normal_form"]
    );
    for delegate in &delegates {
        common::node::wait_until("the delegate's walk at its end", || {
            delegate
                .log()
                .contains("the walk is at its end")
                .then_some(())
        });
        let info = delegate.info();
        assert_eq!(info["outside_grant"], 0, "{info}");
        assert_eq!(info["refused"], serde_json::json!({}), "{info}");
    }
    // Each delegate reads its function's slice value (the deployer too).
    for (i, delegate) in delegates.iter().enumerate() {
        let name = format!("f{}", i + 1);
        let slice = slice_address(delegate, &name);
        let expected = format!("{name}[secret{}x[]]", i + 1);
        for node in [delegate, &a] {
            let answer = value(node, &slice);
            assert_eq!(answer["normal_form"], expected.as_str(), "{answer}");
        }
    }
    for node in delegates.iter_mut().chain([&mut a, &mut late]) {
        assert!(node.terminate().success());
    }
    let writers = check_store(&home_a, &address, events_of(&home_a, &address));
    assert_eq!(writers.len(), 9, "the deployer and each delegate wrote");
    assert_eq!(
        check_store(&home_late, &address, events_of(&home_a, &address)),
        writers
    );
    // What each delegate's home holds, byte for byte: its own marker (the check
    // sees names), no other function's, not the deployer's, not the address.
    let program: amb_bytecode::Cid = address[5..].parse().expect("a CID");
    for (i, home) in homes.iter().enumerate() {
        let bytes = bytes_under(std::path::Path::new(&home.path()));
        let holds = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        let own = format!("secret{}x", i + 1);
        assert!(holds(own.as_bytes()), "delegate {} lacks {own}", i + 1);
        for j in (1..=8).filter(|&j| j != i + 1) {
            let other = format!("secret{j}x");
            assert!(!holds(other.as_bytes()), "delegate {} holds {other}", i + 1);
        }
        assert!(
            !holds(b"deployersecret"),
            "delegate {} holds d's marker",
            i + 1
        );
        assert!(
            !holds(&address.as_bytes()[5..]),
            "delegate {} holds the address",
            i + 1
        );
        assert!(
            !holds(&program.to_bytes()),
            "delegate {} holds the address",
            i + 1
        );
        assert_never_held(home, &address);
    }
}

/// The address of the slice `name` that the delegate `node` hosts, found as its
/// user would: the one part `amb ls` lists, whose log named `name` is the slice.
fn slice_address(node: &Node, name: &str) -> String {
    let listed = json_of(&node.client(&["ls", "--json"]));
    let programs = listed["programs"].as_array().expect("a list");
    assert_eq!(programs.len(), 1, "{listed}");
    let part = programs[0]["address"].as_str().expect("an address");
    let events = json_of(&node.client(&["log", part, "--json"]));
    let log = events
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["log_name"] == name)
        .and_then(|e| e["log"].as_str())
        .unwrap_or_else(|| panic!("no log {name} in {events}"));
    format!("/amb/{log}")
}

/// Every file's bytes under `dir`, concatenated.
fn bytes_under(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            bytes.extend(bytes_under(&path));
        } else {
            bytes.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    bytes
}

/// The number of events of a stored program (the node stopped).
fn events_of(home: &Home, address: &str) -> u64 {
    json_of(&home.amb(&["log", address, "--json"]))
        .as_array()
        .expect("a list")
        .len() as u64
}
