//! Discovery by Kademlia (`spec/network.md` §1, §3): a node that provides a
//! program is found through the DHT by a node that was told only of another peer,
//! and that node fetches, verifies and reads the program; a node started on a
//! store that already holds runs announces, counts and serves them, and follows
//! the one that is not over.

mod common;

use amb_bytecode::{BlockLimits, Cid};
use amb_engine::Limits;
use amb_log::{Manifest, SigningKey};
use common::{MONOID, TestNode, WAIT, corpus, new_store};

/// A new node told only of `b` that has found `provider` as a provider of
/// `program` through the DHT.
async fn found_through(b: &TestNode, provider: &TestNode, program: Cid) -> TestNode {
    let c = TestNode::with_peers(&[b]).await;
    c.wait_connected(b.peer_id()).await;
    common::wait_until("a provider found through the DHT", WAIT, || async {
        let providers = c.handle.find_providers(program).await.unwrap_or_default();
        providers.contains(&provider.peer_id()).then_some(())
    })
    .await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_found_through_the_dht_and_read_from() {
    let a = TestNode::with_peers(&[]).await;
    let b = TestNode::with_peers(&[&a]).await;
    b.wait_connected(a.peer_id()).await;
    let deployed = amb_net::deploy(&a.handle, corpus(MONOID), None, Limits::default())
        .await
        .expect("deploys");
    let program = deployed.program;
    // C is told only of B, which does not hold the program: the DHT names A as its
    // provider (A announced it to the peers closest to the key, B among them).
    let c = found_through(&b, &a, program).await;
    let value = amb_net::value(&c.handle, program, WAIT)
        .await
        .expect("found and read");
    assert_eq!(value.value, serde_json::json!("helloworld"));
    assert!(c.is_connected_to(a.peer_id()).await, "C reached A");
    let status = c.handle.status(program).await.unwrap();
    assert_eq!(status.events as u64, deployed.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_on_a_store_announces_counts_serves_and_follows_its_runs() {
    // A run recorded into a store with no node running (as `amb run --home` does).
    let (store, _dir) = new_store();
    let key = SigningKey::generate();
    let ast = amb_syntax::parse(corpus(MONOID)).unwrap();
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
    let plan = amb_vm::plan::plan(&ast, &compiled, &map, Limits::default()).unwrap();
    let deployment = |nonce| {
        Manifest::new_root(
            compiled.root,
            None,
            vec![key.public_key()],
            &key,
            [nonce; 16],
            1,
        )
    };
    let manifest = deployment(7);
    amb_vm::record::record(&plan, &compiled, &manifest, &key, &store).unwrap();
    let program = manifest.cid();
    // A second deployment of it whose run has not started: not over.
    let open = deployment(8);
    amb_vm::record::store_program(&compiled, &open, &store).unwrap();
    store.register_log(open.cid(), open.cid()).unwrap();

    let a = TestNode::start_on(common::config(vec![]), key, store).await;
    assert_eq!(a.handle.info().await.unwrap().programs, 2);
    let own = amb_net::value(&a.handle, program, WAIT)
        .await
        .expect("A reads its own run");
    assert_eq!(own.value, serde_json::json!("helloworld"));
    // C, told only of B, finds A through the DHT: A announced what its store holds.
    let b = TestNode::with_peers(&[&a]).await;
    b.wait_connected(a.peer_id()).await;
    // A follows the topic of the run that is not over.
    b.wait_topic_peer(open.cid(), a.peer_id()).await;
    let c = found_through(&b, &a, program).await;
    let value = amb_net::value(&c.handle, program, WAIT)
        .await
        .expect("found and read");
    assert_eq!(value.normal_form, own.normal_form);
}
