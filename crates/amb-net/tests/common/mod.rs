//! Helpers shared by the node's integration tests: in-process nodes on loopback
//! (each with its own key and a store in its own temporary directory), bounded
//! waits, and summaries of what a store holds of a program.
#![allow(dead_code, unreachable_pub)]

use std::{
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use amb_bytecode::Cid;
use amb_log::{Event, SigningKey, Store};
use amb_net::{NodeConfig, NodeEvent, NodeHandle, Ready, node::StoredSummary};
use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use tokio::sync::broadcast;

/// The corpus's string-concat monoid: reduces to `"helloworld"`.
pub const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

/// The longest any single wait of these tests may take: generous, for a loaded
/// 2-core machine; the normal case takes a fraction of it.
pub const WAIT: Duration = Duration::from_secs(60);

/// A file of the shared corpus (`../shared/corpus` beside the repository), read in
/// place; panics, never skips, when it is missing.
pub fn corpus(path: &str) -> String {
    let full = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| {
        panic!(
            "the shared corpus must be at ../shared/corpus: {}: {e}",
            full.display()
        )
    })
}

/// The settings of a test node: loopback, port 0, no mDNS, a fast heartbeat.
pub fn config(peers: Vec<Multiaddr>) -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        peers,
        mdns: false,
        heartbeat: Duration::from_millis(100),
        ..NodeConfig::default()
    }
}

/// A node running in this process, with its store in a directory of its own.
pub struct TestNode {
    pub handle: NodeHandle,
    pub ready: Ready,
    _dir: Option<tempfile::TempDir>,
}

/// An empty store in a temporary directory of its own.
pub fn new_store() -> (Arc<Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::create(dir.path().join("store.redb")).expect("a new store"));
    (store, dir)
}

impl TestNode {
    /// A node with a fresh key and an empty store.
    pub async fn start(config: NodeConfig) -> TestNode {
        let (store, dir) = new_store();
        let mut node = TestNode::start_on(config, SigningKey::generate(), store).await;
        node._dir = Some(dir);
        node
    }

    /// A node with the given key and store (whose directory the caller keeps).
    pub async fn start_on(config: NodeConfig, key: SigningKey, store: Arc<Store>) -> TestNode {
        let (handle, ready) = amb_net::start(config, key, store)
            .await
            .expect("the node starts");
        assert!(!ready.listen.is_empty(), "the node listens: {ready:?}");
        TestNode {
            handle,
            ready,
            _dir: None,
        }
    }

    /// A node connecting to `peers` at start.
    pub async fn with_peers(peers: &[&TestNode]) -> TestNode {
        TestNode::start(config(peers.iter().map(|p| p.address()).collect())).await
    }

    /// Its first listen address, with its peer id.
    pub fn address(&self) -> Multiaddr {
        let address: Multiaddr = self.ready.listen[0].parse().expect("a multiaddr");
        address.with(Protocol::P2p(self.peer_id()))
    }

    pub fn peer_id(&self) -> PeerId {
        self.handle.peer_id()
    }

    pub fn store(&self) -> &Arc<Store> {
        self.handle.store()
    }

    /// Whether `peer` is among its connected peers.
    pub async fn is_connected_to(&self, peer: PeerId) -> bool {
        let info = self.handle.info().await.expect("info");
        info.peers.iter().any(|p| p.peer_id == peer.to_string())
    }

    /// Waits until it is connected to `peer`.
    pub async fn wait_connected(&self, peer: PeerId) {
        wait_until("a connection", WAIT, || async {
            self.is_connected_to(peer).await.then_some(())
        })
        .await;
    }

    /// Waits until `peer` is subscribed to `program`'s topic, as this node sees it.
    pub async fn wait_topic_peer(&self, program: Cid, peer: PeerId) {
        wait_until("a topic subscription", WAIT, || async {
            let peers = self.handle.topic_peers(program).await.expect("topic peers");
            peers.contains(&peer).then_some(())
        })
        .await;
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Polls `probe` (every 50 ms) until it gives a value; panics naming `what` after
/// `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next node event that `pick` keeps, within `timeout`; panics naming `what`.
pub async fn next_event<T>(
    events: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    timeout: Duration,
    mut pick: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(timeout, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    panic!("the test fell {n} node events behind waiting for {what}")
                }
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("the node stopped while the test waited for {what}")
                }
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Stored events of `program` among a node event (empty for any other event).
pub fn stored_of(event: &NodeEvent, program: Cid) -> Vec<StoredSummary> {
    match event {
        NodeEvent::Stored(stored) => stored
            .iter()
            .filter(|s| s.program == program.to_string())
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// Every log of `program` in a store, with its length and head, sorted by log.
pub fn heads(store: &Store, program: Cid) -> Vec<(Cid, u64, Cid)> {
    let mut heads: Vec<(Cid, u64, Cid)> = store
        .program_logs(program)
        .expect("the program's logs")
        .into_iter()
        .filter_map(|log| {
            let (seq, head) = store.log_head(log).expect("a log head")?;
            Some((log, seq + 1, head))
        })
        .collect();
    heads.sort();
    heads
}

/// Every event of `program` in a store, decoded, with its CID.
pub fn events_of(store: &Store, program: Cid) -> Vec<(Cid, Event)> {
    let mut events = Vec::new();
    for log in store.program_logs(program).expect("the program's logs") {
        for stored in store.log_events(log).expect("a log's events") {
            let stored = stored.expect("a stored event");
            let event = Event::decode(&stored.bytes).expect("a stored event decodes");
            events.push((stored.cid, event));
        }
    }
    events
}
