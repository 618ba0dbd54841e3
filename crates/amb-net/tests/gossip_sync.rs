//! Nodes in one process, over real TCP on loopback (`spec/network.md` §2, §3, §5):
//! a program deployed on one node is read on another (fetched by sync, verified,
//! replayed); events published on a program's topic reach a node that holds the
//! program and are stored there, a re-announcement of them stores nothing and
//! refuses nothing; and late joiners sync small and large programs from whichever
//! peer holds them.

mod common;

use std::collections::HashSet;

use amb_bench::confluent::{MONOID_STEPS, confluent_program};
use amb_engine::Limits;
use amb_log::SigningKey;
use amb_net::{
    NodeEvent,
    deploy::publish_events,
    sync::{Heads, sync_from},
};
use common::{
    MONOID, TestNode, WAIT, corpus, events_of, heads, new_store, next_event, stored_of, wait_until,
};
use serde_json::json;

/// The stored manifest `cid` of `store`.
fn manifest_at(store: &amb_log::Store, cid: amb_bytecode::Cid) -> amb_log::Manifest {
    amb_log::Manifest::decode(&store.get_block(cid).unwrap().unwrap()).unwrap()
}

/// The log of `program`'s slice named `name` in `store` (its address).
fn slice_named(
    store: &amb_log::Store,
    program: amb_bytecode::Cid,
    name: &str,
) -> amb_bytecode::Cid {
    let root_log = manifest_at(store, program).root_log().unwrap().cid();
    store
        .program_logs(program)
        .unwrap()
        .into_iter()
        .find(|log| *log != root_log && manifest_at(store, *log).name() == Some(name))
        .unwrap_or_else(|| panic!("no slice {name}"))
}

/// A request for every event of `log` under the address `under`.
fn all_events(under: amb_bytecode::Cid, log: amb_bytecode::Cid) -> amb_net::wire::SyncRequest {
    amb_net::wire::SyncRequest::Events {
        under,
        ranges: vec![amb_net::wire::Range {
            log,
            from: 0,
            to: u64::MAX,
        }],
    }
}

/// Whether `answer` refuses as `not-entitled`.
fn not_entitled(answer: &amb_net::wire::SyncResponse) -> bool {
    matches!(
        answer,
        amb_net::wire::SyncResponse::Refused {
            reason: amb_net::wire::SyncRefusal::NotEntitled,
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_deployed_on_one_node_is_read_and_verified_on_another() {
    let a = TestNode::start(common::config(vec![])).await;
    let deployed = amb_net::deploy(
        &a.handle,
        corpus(MONOID),
        Some("string-concat".into()),
        Limits::default(),
    )
    .await
    .expect("deploying the monoid");
    assert_eq!(deployed.value, json!("helloworld"));
    assert!(deployed.events > 0);

    let b = TestNode::with_peers(&[&a]).await;
    let read = amb_net::value(&b.handle, deployed.program, WAIT)
        .await
        .expect("B reads the value");
    assert_eq!(read.address, format!("/amb/{}", deployed.program));
    assert_eq!(read.value, json!("helloworld"));
    assert_eq!(read.normal_form, deployed.normal_form);

    // B's store holds the whole run, and it verifies on its own.
    assert_eq!(
        heads(b.store(), deployed.program),
        heads(a.store(), deployed.program)
    );
    let verified = amb_vm::verify::verify(b.store(), deployed.program).expect("B's copy verifies");
    assert_eq!(verified.events, deployed.events);
    assert_eq!(
        amb_syntax::to_compact_string(&verified.term),
        deployed.normal_form
    );
    let status = b.handle.status(deployed.program).await.unwrap();
    assert!(status.held && status.complete, "{status:?}");
    assert_eq!(status.events as u64, deployed.events);
    // Every event B holds came in a sync answer: B counted at least their bytes,
    // and not many times over (the monoid's blocks are a few KiB).
    let event_bytes: usize = b
        .store()
        .program_logs(deployed.program)
        .unwrap()
        .into_iter()
        .flat_map(|log| b.store().log_events(log).unwrap())
        .map(|event| event.unwrap().bytes.len())
        .sum();
    let received = b.handle.info().await.unwrap().received_bytes as usize;
    assert!(
        (event_bytes..4 * event_bytes + (64 << 10)).contains(&received),
        "B received {received} bytes for {event_bytes} bytes of events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossiped_events_are_stored_once_and_a_late_joiner_syncs_through_a_peer() {
    // P1 and P2 run on a node that then stops; A restarts on the same key and
    // store, so no gossip cache anywhere holds their first announcements: every
    // event B gets below comes from A's explicit publications.
    let (store, _dir) = new_store();
    let key = SigningKey::generate();
    let deployer = TestNode::start_on(common::config(vec![]), key.clone(), store.clone()).await;
    let p1 = amb_net::deploy(
        &deployer.handle,
        corpus(MONOID),
        Some("p1".into()),
        Limits::default(),
    )
    .await
    .expect("deploying P1");
    let p2 = amb_net::deploy(
        &deployer.handle,
        corpus(MONOID),
        Some("p2".into()),
        Limits::default(),
    )
    .await
    .expect("deploying P2");
    assert_ne!(p1.program, p2.program);
    drop(deployer);
    let a = TestNode::start_on(common::config(vec![]), key, store).await;
    for p in [p1.program, p2.program] {
        a.handle.hold(p).await.expect("A holds its programs again");
        a.handle.follow(p).unwrap();
    }
    let order = |program| {
        amb_vm::verify::verify(a.store(), program)
            .expect("A's copy verifies")
            .order
    };
    let (order1, order2) = (order(p1.program), order(p2.program));
    assert_eq!(order1.len() as u64, p1.events);

    // B takes only the programs' manifests and bytecode (a sync with no heads),
    // holds them with no event, and follows their topics.
    let b = TestNode::with_peers(&[&a]).await;
    b.wait_connected(a.peer_id()).await;
    for p in [p1.program, p2.program] {
        let no_heads = Heads {
            heads: Vec::new(),
            done: false,
        };
        sync_from(&b.handle, a.peer_id(), p, &no_heads)
            .await
            .expect("B takes a program's blocks");
        assert!(b.handle.status(p).await.unwrap().held);
        assert_eq!(b.handle.status(p).await.unwrap().events, 0);
        b.handle.follow(p).unwrap();
        a.wait_topic_peer(p, b.peer_id()).await;
    }

    // A publishes P1's events (in the replay order, a topological one): B stores
    // every one of them, once, and P1 is complete there without any sync.
    let mut b_events = b.handle.subscribe_events();
    publish_events(&a.handle, p1.program, &order1)
        .await
        .expect("A publishes P1");
    let mut got = HashSet::new();
    while got.len() < order1.len() {
        let stored = next_event(&mut b_events, "P1's events on B", WAIT, |e| {
            Some(stored_of(&e, p1.program)).filter(|s| !s.is_empty())
        })
        .await;
        for summary in stored {
            assert!(got.insert(summary.cid.clone()), "stored twice: {summary:?}");
        }
    }
    let expected: HashSet<String> = order1.iter().map(|c| c.to_string()).collect();
    assert_eq!(got, expected);
    let status = b.handle.status(p1.program).await.unwrap();
    assert!(
        status.complete,
        "gossip alone completes P1 on B: {status:?}"
    );
    let read = amb_net::value(&b.handle, p1.program, WAIT).await.unwrap();
    assert_eq!(read.value, json!("helloworld"));
    assert_eq!(read.normal_form, p1.normal_form);

    // A re-announces P1 (new nonces, so new messages): B stores nothing and
    // refuses nothing. P2's events, published after them on the same connection
    // and judged after them by B's intake, mark the point where B is done.
    publish_events(&a.handle, p1.program, &order1)
        .await
        .expect("A re-announces P1");
    publish_events(&a.handle, p2.program, &order2)
        .await
        .expect("A publishes P2");
    let mut marker = 0;
    while marker < order2.len() {
        marker += next_event(&mut b_events, "P2's events on B", WAIT, |e| {
            if let NodeEvent::Refused { peer, rule } = &e {
                panic!("B refused a message of {peer}: rule {rule}");
            }
            let again = stored_of(&e, p1.program);
            assert!(again.is_empty(), "B stored P1's events again: {again:?}");
            Some(stored_of(&e, p2.program).len()).filter(|n| *n > 0)
        })
        .await;
    }
    assert_eq!(marker, order2.len());
    for node in [&a, &b] {
        let info = node.handle.info().await.unwrap();
        assert!(info.refused.is_empty(), "{:?}", info.refused);
        assert!(info.banned.is_empty(), "{:?}", info.banned);
    }
    assert_eq!(
        b.store().event_count().unwrap(),
        p1.events + p2.events,
        "B holds each event once"
    );

    // A leaves; C, which knows only B, gets P1 from B.
    a.handle.shutdown();
    wait_until("B to see A leave", WAIT, || async {
        (!b.is_connected_to(a.peer_id()).await).then_some(())
    })
    .await;
    let c = TestNode::with_peers(&[&b]).await;
    c.wait_connected(b.peer_id()).await;
    let fetched = amb_net::fetch(&c.handle, p1.program)
        .await
        .expect("C fetches P1");
    assert_eq!(fetched.peer, b.peer_id());
    assert_eq!(fetched.stored as u64, p1.events);
    let read = amb_net::value(&c.handle, p1.program, WAIT).await.unwrap();
    assert_eq!(read.value, json!("helloworld"));
    assert_eq!(read.normal_form, p1.normal_form);
    assert_eq!(heads(c.store(), p1.program), heads(a.store(), p1.program));
    amb_vm::verify::verify(c.store(), p1.program).expect("C's copy verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_syncs_a_large_program_event_for_event() {
    const COPIES: u64 = 50;
    let program = confluent_program(&corpus(MONOID), COPIES * MONOID_STEPS);
    assert_eq!(program.copies as u64, COPIES);

    let a = TestNode::start(common::config(vec![])).await;
    let deployed = amb_net::deploy(
        &a.handle,
        program.text.clone(),
        Some("confluent-50".into()),
        Limits::default(),
    )
    .await
    .expect("deploying 50 monoids");
    assert_eq!(deployed.steps, program.steps);

    let b = TestNode::with_peers(&[&a]).await;
    let read = amb_net::value(&b.handle, deployed.program, WAIT)
        .await
        .expect("B reads the large program");
    assert_eq!(read.normal_form, deployed.normal_form);
    assert_eq!(read.value, deployed.value);

    // Every log has the same length and head on both nodes, and both stores hold
    // the same events, each once.
    let on_a = heads(a.store(), deployed.program);
    let on_b = heads(b.store(), deployed.program);
    assert!(on_a.len() > COPIES as usize, "{} logs", on_a.len());
    assert_eq!(on_a, on_b);
    assert_eq!(a.store().event_count().unwrap(), deployed.events);
    assert_eq!(b.store().event_count().unwrap(), deployed.events);
    let cids = |node: &TestNode| -> HashSet<_> {
        events_of(node.store(), deployed.program)
            .into_iter()
            .map(|(cid, _)| cid)
            .collect()
    };
    assert_eq!(cids(&a), cids(&b));
    let verified = amb_vm::verify::verify(b.store(), deployed.program).expect("B's copy verifies");
    assert_eq!(verified.events, deployed.events);
    assert_eq!(verified.steps, deployed.steps);
}

/// A sync request for events or blocks is answered only within the grant of the
/// address it names (`spec/network.md` §3, "Grants"): a peer that knows only a
/// slice address reads that slice, never the program manifest, the root log or the
/// program's root block; a CID that is no address grants nothing; the node counts
/// each refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_knows_only_a_slice_address_reads_that_slice_and_nothing_above_it() {
    use amb_bytecode::Cid;
    use amb_net::wire::{SyncRequest, SyncResponse};

    let a = TestNode::start(common::config(vec![])).await;
    let deployed = amb_net::deploy(&a.handle, corpus(MONOID), None, Limits::default())
        .await
        .expect("deploying the monoid");
    let program = deployed.program;
    let store = a.store();
    let program_manifest = manifest_at(store, program);
    let root_log = program_manifest.root_log().unwrap().cid();
    let slice = slice_named(store, program, "string_concat");
    let slice_block = manifest_at(store, slice).program();

    let b = TestNode::with_peers(&[&a]).await;
    b.wait_connected(a.peer_id()).await;
    let ask = |request: SyncRequest| {
        let b = &b.handle;
        let peer = a.peer_id();
        async move { b.request(peer, request).await.expect("an answer") }
    };
    let events = all_events;

    // Its own heads, manifest, bytecode and events.
    let answer = ask(SyncRequest::Heads { program: slice }).await;
    let SyncResponse::Heads { heads, .. } = &answer else {
        panic!("{answer:?}");
    };
    let logs: HashSet<Cid> = heads.iter().map(|h| h.log).collect();
    assert!(logs.contains(&slice), "{heads:?}");
    assert!(!logs.contains(&root_log), "{heads:?}");
    let answer = ask(SyncRequest::Blocks {
        under: slice,
        cids: vec![slice, slice_block],
    })
    .await;
    assert!(
        matches!(&answer, SyncResponse::Blocks { blocks } if blocks.len() == 2),
        "{answer:?}"
    );
    let answer = ask(events(slice, slice)).await;
    assert!(
        matches!(&answer, SyncResponse::Events { events } if !events.is_empty()),
        "{answer:?}"
    );
    // Nothing above it.
    let refused = [
        ask(SyncRequest::Blocks {
            under: slice,
            cids: vec![program],
        })
        .await,
        ask(SyncRequest::Blocks {
            under: slice,
            cids: vec![program_manifest.program()],
        })
        .await,
        ask(events(slice, root_log)).await,
    ];
    for answer in &refused {
        assert!(not_entitled(answer), "{answer:?}");
    }
    // An event's or a root log's CID is no address.
    let answer = ask(SyncRequest::Blocks {
        under: root_log,
        cids: vec![program],
    })
    .await;
    assert!(matches!(answer, SyncResponse::Unknown), "{answer:?}");
    // The program address reads it all.
    let answer = ask(SyncRequest::Blocks {
        under: program,
        cids: vec![program, root_log, slice, program_manifest.program()],
    })
    .await;
    assert!(
        matches!(&answer, SyncResponse::Blocks { blocks } if blocks.len() == 4),
        "{answer:?}"
    );
    let info = a.handle.info().await.unwrap();
    assert_eq!(
        info.refused.get("not-entitled"),
        Some(&3),
        "{:?}",
        info.refused
    );
}

/// A delegate knows its own slices' addresses (it works out their manifests) and
/// the CIDs its order tells it; asking the deployer, under its own slice, for a
/// sibling's bytecode or events, or for the root block, is refused `not-entitled`
/// and counted, and a log id is no address (`spec/network.md` §3, "Grants").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegate_asking_for_a_siblings_block_or_events_is_refused() {
    use amb_net::wire::{SyncRequest, SyncResponse};

    let a = TestNode::start(common::config(vec![])).await;
    let b = TestNode::with_peers(&[&a]).await;
    let c = TestNode::with_peers(&[&a]).await;
    a.wait_connected(b.peer_id()).await;
    a.wait_connected(c.peer_id()).await;
    let source = "d[] | f1[in_ a1.open a1.m1[]] | a1[in f1.open_] \
                  | f2[in_ a2.open a2.m2[]] | a2[in f2.open_]";
    let deployed = amb_net::deploy::deploy_delegated(
        &a.handle,
        source.to_string(),
        None,
        Limits::default(),
        vec![("f1".into(), b.peer_id()), ("f2".into(), c.peer_id())],
    )
    .await
    .expect("A deploys with B hosting f1 and C hosting f2");
    let program = deployed.program;
    let value = amb_net::value(&a.handle, program, WAIT)
        .await
        .expect("the run's value on A");
    assert!(value.normal_form.contains("m1[]"), "{}", value.normal_form);

    let store = a.store();
    let manifest_of = |cid| manifest_at(store, cid);
    let root_log = manifest_of(program).root_log().unwrap().cid();
    let (own, sibling) = (
        slice_named(store, program, "f1"),
        slice_named(store, program, "f2"),
    );
    let ask = |request: SyncRequest| {
        let b = &b.handle;
        let peer = a.peer_id();
        async move { b.request(peer, request).await.expect("an answer") }
    };
    let events = all_events;
    // Its own slice it may read (a positive control).
    let answer = ask(events(own, own)).await;
    assert!(
        matches!(&answer, SyncResponse::Events { events } if !events.is_empty()),
        "{answer:?}"
    );
    let refused = [
        ask(SyncRequest::Blocks {
            under: own,
            cids: vec![manifest_of(sibling).program()],
        })
        .await,
        ask(SyncRequest::Blocks {
            under: own,
            cids: vec![sibling],
        })
        .await,
        ask(events(own, sibling)).await,
        ask(SyncRequest::Blocks {
            under: own,
            cids: vec![manifest_of(program).program()],
        })
        .await,
    ];
    for answer in &refused {
        assert!(not_entitled(answer), "{answer:?}");
    }
    // The root log's id, which its order gives it, is no address.
    let answer = ask(events(root_log, root_log)).await;
    assert!(matches!(answer, SyncResponse::Unknown), "{answer:?}");
    let info = a.handle.info().await.unwrap();
    assert_eq!(
        info.refused.get("not-entitled"),
        Some(&4),
        "{:?}",
        info.refused
    );
}

/// A holder of a program reads a slice's value by the slice's address (the
/// payload of its log's last event, `spec/events.md` §6); a peer that holds none
/// of the slice is told where to ask, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_value_is_read_where_the_slice_is_held() {
    let a = TestNode::start(common::config(vec![])).await;
    let source = "d[] | f1[in_ a1.open a1.m1[]] | a1[in f1.open_]";
    let deployed = amb_net::deploy(&a.handle, source.to_string(), None, Limits::default())
        .await
        .expect("deploying");
    let program = deployed.program;
    let slice = slice_named(a.store(), program, "f1");
    let on_a = amb_net::value(&a.handle, slice, WAIT)
        .await
        .expect("f1's value on A");
    assert_eq!(on_a.normal_form, "f1[m1[]]");
    let b = TestNode::with_peers(&[&a]).await;
    b.wait_connected(a.peer_id()).await;
    let started = std::time::Instant::now();
    let error = amb_net::value(&b.handle, slice, WAIT)
        .await
        .expect_err("B holds none of f1");
    assert!(error.to_string().contains("a slice's address"), "{error}");
    assert!(
        started.elapsed() < WAIT / 2,
        "answered without waiting it out"
    );
}

/// A delegate counts the payload bytes it receives (`received_bytes` in `amb
/// info`): its order and blocks, and the events it is fed. Its function's body
/// has a name of 8 KiB, which must cross, and not many times: it is in about
/// three of the blocks of the delegate's part (about 3.4 × 8 KiB received in
/// all); its part sent twice would pass the bound of 6 × 8 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegate_counts_the_bytes_it_receives() {
    let a = TestNode::start(common::config(vec![])).await;
    let b = TestNode::with_peers(&[&a]).await;
    a.wait_connected(b.peer_id()).await;
    let pad = 8 << 10;
    let source = format!(
        "f1[in_ a1.open a1.m1{}[]] | a1[in f1.open_]",
        "x".repeat(pad)
    );
    let before = b.handle.info().await.unwrap().received_bytes as usize;
    let deployed = amb_net::deploy::deploy_delegated(
        &a.handle,
        source,
        None,
        Limits::default(),
        vec![("f1".into(), b.peer_id())],
    )
    .await
    .expect("A deploys with B hosting f1");
    amb_net::value(&a.handle, deployed.program, WAIT)
        .await
        .expect("the run's value on A");
    let received = b.handle.info().await.unwrap().received_bytes as usize - before;
    assert!(
        (pad..6 * pad).contains(&received),
        "B received {received} bytes for a part with a name of {pad} bytes"
    );
    assert!(a.handle.info().await.unwrap().received_bytes > 0);
}

/// Sixteen peers on one machine share the address 127.0.0.1: gossipsub's IP
/// colocation penalty (−5 × surplus² past 10 peers on one address, −180 here)
/// would put each under the graylist threshold (−80) and its gossip would be
/// ignored. Loopback addresses are exempt (`Behaviour::peer_score`), so every
/// local peer keeps a score above it, and a deployment's events reach them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_local_peers_are_not_penalised_for_sharing_an_address() {
    let a = TestNode::start(common::config(vec![])).await;
    let mut peers = Vec::new();
    for _ in 0..16 {
        peers.push(TestNode::with_peers(&[&a]).await);
    }
    for peer in &peers {
        a.wait_connected(peer.peer_id()).await;
    }
    let scores = wait_until("a score for each of the 16 peers", WAIT, || async {
        let info = a.handle.info().await.ok()?;
        let scores: Vec<f64> = info.peers.iter().filter_map(|p| p.score).collect();
        (scores.len() >= 16).then_some(scores)
    })
    .await;
    let lowest = scores.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(lowest > -80.0, "a local peer scored {lowest}: {scores:?}");
}
