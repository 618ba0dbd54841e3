//! Discovery by Kademlia (`spec/network.md` §1, §3): a node that provides a
//! program is found through the DHT by a node that was told only of another peer,
//! and that node fetches, verifies and reads the program.

mod common;

use amb_engine::Limits;
use common::{MONOID, TestNode, WAIT, corpus};

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
    let c = TestNode::with_peers(&[&b]).await;
    c.wait_connected(b.peer_id()).await;
    common::wait_until("A to be found as a provider", WAIT, || async {
        let providers = c.handle.find_providers(program).await.unwrap_or_default();
        providers.contains(&a.peer_id()).then_some(())
    })
    .await;
    let value = amb_net::value(&c.handle, program, WAIT)
        .await
        .expect("found and read");
    assert_eq!(value.value, serde_json::json!("helloworld"));
    assert!(c.is_connected_to(a.peer_id()).await, "C reached A");
    let status = c.handle.status(program).await.unwrap();
    assert_eq!(status.events as u64, deployed.events);
}
