//! Discovery on the local network (`spec/network.md` §1): two nodes with mDNS on
//! and no static peer find each other and connect.
//!
//! libp2p's mDNS runs on every non-loopback interface and answers a query only
//! with the listen addresses of the interface it came on, so the nodes listen on
//! every interface (`0.0.0.0`), as `amb node` does by default: a node listening on
//! loopback only is never advertised. This needs a multicast-capable interface
//! (this sandbox has `eth0`); without one the test fails rather than skips.

mod common;

use std::time::Duration;

use amb_net::{NodeConfig, NodeEvent};
use common::{TestNode, WAIT, next_event, wait_until};

fn mdns_config() -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/0.0.0.0/tcp/0".parse().unwrap()],
        peers: Vec::new(),
        mdns: true,
        heartbeat: Duration::from_millis(100),
        ..NodeConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_with_no_peers_find_each_other_by_mdns() {
    let a = TestNode::start(mdns_config()).await;
    let mut a_events = a.handle.subscribe_events();
    let b = TestNode::start(mdns_config()).await;
    let (a_id, b_id) = (a.peer_id(), b.peer_id());

    // A hears of B (found by its own mDNS, or dialed by B, which found A).
    next_event(&mut a_events, "A to find or meet B", WAIT, |e| match e {
        NodeEvent::Discovered(p) | NodeEvent::Connected(p) if p == b_id => Some(()),
        _ => None,
    })
    .await;
    wait_until("both nodes to list each other as peers", WAIT, || async {
        (a.is_connected_to(b_id).await && b.is_connected_to(a_id).await).then_some(())
    })
    .await;
}
