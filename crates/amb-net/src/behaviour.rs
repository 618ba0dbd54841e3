//! The libp2p behaviours a node runs, and how each is set up (`spec/network.md`
//! §1): gossipsub (signed, strict, application-validated, BLAKE3 message ids, peer
//! scoring), the sync protocol (request-response, CBOR), Kademlia, identify, ping,
//! mDNS (optional), connection limits and a block list for banned peers.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, identity, kad, mdns,
    ping, request_response,
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
};

use crate::{
    codec::{Codec, Received},
    config::NodeConfig,
    error::BehaviourError,
    wire::{
        DELEGATE_PROTOCOL, DelegateRequest, DelegateResponse, MAX_GOSSIP_BYTES, MAX_REQUEST_BYTES,
        MAX_RESPONSE_BYTES, SYNC_PROTOCOL, SyncRequest, SyncResponse,
    },
};

/// The identify protocol's version string.
pub const PROTOCOL_VERSION: &str = "/amb/1.0.0";

/// Every behaviour of a node.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) gossipsub:
        gossipsub::Behaviour<gossipsub::IdentityTransform, gossipsub::AllowAllSubscriptionFilter>,
    pub(crate) sync: request_response::Behaviour<Codec<SyncRequest, SyncResponse>>,
    pub(crate) delegate: request_response::Behaviour<Codec<DelegateRequest, DelegateResponse>>,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Behaviour")
    }
}

impl Behaviour {
    /// The behaviours for `key` under `config`; the request-response codecs count
    /// the bytes they read in `received`.
    pub fn new(
        key: &identity::Keypair,
        config: &NodeConfig,
        received: &Received,
    ) -> Result<Behaviour, BehaviourError> {
        let peer_id = key.public().to_peer_id();
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(blake3::hash(&m.data).as_bytes().to_vec())
            })
            .max_transmit_size(MAX_GOSSIP_BYTES + 4096)
            .mesh_n_low(1)
            .mesh_n(2)
            .mesh_n_high(4)
            .mesh_outbound_min(0)
            .heartbeat_interval(config.heartbeat)
            .build()
            .map_err(|e| BehaviourError::Gossipsub(format!("configuration: {e}")))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(|e| BehaviourError::Gossipsub(e.to_string()))?;
        gossipsub
            .with_peer_score(
                Behaviour::peer_score(),
                gossipsub::PeerScoreThresholds::default(),
            )
            .map_err(|e| BehaviourError::Gossipsub(format!("peer scoring: {e}")))?;
        let sync = request_response::Behaviour::with_codec(
            Codec::new(
                MAX_REQUEST_BYTES as u64,
                (MAX_RESPONSE_BYTES + (1 << 20)) as u64,
            )
            .counting(received),
            [(
                StreamProtocol::new(SYNC_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(config.request_timeout),
        );
        // libp2p's defaults for this protocol: requests of 1 MiB, answers of 10 MiB.
        let delegate = request_response::Behaviour::with_codec(
            Codec::new(1 << 20, 10 << 20).counting(received),
            [(
                StreamProtocol::new(DELEGATE_PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(config.request_timeout),
        );
        let records = kad::store::MemoryStoreConfig {
            max_provided_keys: config.max_provider_records,
            ..Default::default()
        };
        let mut kad = kad::Behaviour::new(
            peer_id,
            kad::store::MemoryStore::with_config(peer_id, records),
        );
        kad.set_mode(Some(kad::Mode::Server));
        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(BehaviourError::Mdns)?,
            )
        } else {
            None
        };
        Ok(Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established(Some(config.max_connections))
                    .with_max_established_per_peer(Some(2)),
            ),
            blocked: allow_block_list::Behaviour::default(),
            gossipsub,
            sync,
            delegate,
            kad,
            identify: identify::Behaviour::new(identify::Config::new(
                PROTOCOL_VERSION.into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
            mdns: Toggle::from(mdns),
        })
    }

    /// gossipsub's peer score parameters: its defaults, except that peers on
    /// loopback are exempt from the IP colocation penalty. Every peer on this
    /// machine has the address 127.0.0.1, and past 10 peers on one address each
    /// weighs −5 × surplus²: with 16 local peers, −180, under the graylist
    /// threshold (−80), so their gossip was ignored and every event went through
    /// the 750 ms nudges (the fan-out bench, `BENCHMARKS.md`).
    fn peer_score() -> gossipsub::PeerScoreParams {
        gossipsub::PeerScoreParams {
            ip_colocation_factor_whitelist: [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
            .into(),
            ..Default::default()
        }
    }

    /// The score parameters of a program's topic (`spec/network.md` §4). Only
    /// invalid messages count: each weighs −5, squared as gossipsub counts them
    /// (4 of them reach the graylist threshold of −80), decaying by 0.9 a heartbeat.
    /// Time in the mesh earns at most 1 point (1 per minute), and first deliveries
    /// at most 2, so a peer's good behaviour cannot hide its invalid messages; a
    /// quiet topic costs nobody anything (no mesh delivery penalties).
    pub fn topic_score() -> gossipsub::TopicScoreParams {
        gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 1.0,
            time_in_mesh_quantum: Duration::from_secs(60),
            time_in_mesh_cap: 1.0,
            first_message_deliveries_weight: 0.1,
            first_message_deliveries_decay: 0.9,
            first_message_deliveries_cap: 20.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -5.0,
            invalid_message_deliveries_decay: 0.9,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providing(max_provider_records: usize, programs: u32) -> Result<(), kad::store::Error> {
        let key = identity::Keypair::generate_ed25519();
        let config = NodeConfig {
            mdns: false,
            max_provider_records,
            ..NodeConfig::default()
        };
        let mut behaviour =
            Behaviour::new(&key, &config, &Received::default()).expect("the behaviours");
        for i in 0..programs {
            let program = amb_bytecode::Cid::of(&i.to_le_bytes());
            behaviour
                .kad
                .start_providing(kad::RecordKey::new(&program.to_bytes()))?;
        }
        Ok(())
    }

    #[test]
    fn the_dht_provides_past_1024_programs_up_to_its_setting() {
        // At libp2p's default bound (1,024) the 1,025th program is refused.
        assert!(providing(1024, 1025).is_err());
        // The node's default keeps 2,000 and more; its setting is the bound.
        providing(NodeConfig::default().max_provider_records, 2_000).expect("2,000 programs");
        assert!(matches!(
            providing(1_500, 2_000),
            Err(kad::store::Error::MaxProvidedKeys)
        ));
    }
}
