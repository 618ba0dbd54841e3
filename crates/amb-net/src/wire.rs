//! What peers say to each other (`spec/network.md` §2 and §3): gossip batches of
//! signed events on a program's topic, and the sync protocol's requests and
//! responses. Everything is CBOR (serde); CIDs travel in their 36-byte binary form.
//! Every size is bounded, and the bounds are constants here.

use amb_bytecode::Cid;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The sync protocol's name.
pub const SYNC_PROTOCOL: &str = "/amb/sync/2";
/// The delegation protocol's name.
pub const DELEGATE_PROTOCOL: &str = "/amb/delegate/1";
/// Most events in one gossip batch.
pub const MAX_BATCH_EVENTS: usize = 512;
/// Most bytes of one gossip message (gossipsub's max transmit size).
pub const MAX_GOSSIP_BYTES: usize = 1 << 20;
/// Most events in one sync response.
pub const MAX_RESPONSE_EVENTS: usize = 4096;
/// Most bytes of events or blocks in one sync response (the codec allows more, for
/// the CBOR framing).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;
/// Most bytes of one sync request.
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Most CIDs or ranges in one sync request.
pub const MAX_REQUEST_ITEMS: usize = 4096;

/// The gossip topic of a program: its address.
pub fn topic_name(program: Cid) -> String {
    format!("/amb/{program}")
}

/// A batch of events published on a program's topic, with the blocks they need
/// (slice manifests, value blocks) that a subscriber may not have yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GossipBatch {
    /// The program (root manifest CID) the events belong to.
    #[serde(with = "cid_bytes")]
    pub program: Cid,
    /// Makes a re-announcement of the same events a new message (gossipsub drops
    /// identical bytes as duplicates).
    pub nonce: u64,
    /// Blocks the events need, each under the CID of its bytes.
    #[serde(default)]
    pub blocks: Vec<ByteBuf>,
    /// Signed events, each in its canonical encoding.
    pub events: Vec<ByteBuf>,
    /// On an order's topic only: the CIDs of the order's bare refs that its maker
    /// tells the host, each with its index among them (`spec/network.md` §8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub told: Vec<(u64, ByteBuf)>,
}

impl GossipBatch {
    /// The batch's bytes.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Reads a batch, refusing anything malformed or above the bounds.
    pub fn decode(bytes: &[u8]) -> Result<GossipBatch, DecodeError> {
        if bytes.len() > MAX_GOSSIP_BYTES {
            return Err(DecodeError::TooLarge {
                bytes: bytes.len(),
                max: MAX_GOSSIP_BYTES,
            });
        }
        let batch: GossipBatch = ciborium::from_reader(bytes).map_err(|e| DecodeError::Cbor {
            what: "a gossip batch",
            detail: e.to_string(),
        })?;
        if batch.events.len() > MAX_BATCH_EVENTS {
            return Err(DecodeError::TooManyEvents {
                events: batch.events.len(),
                max: MAX_BATCH_EVENTS,
            });
        }
        Ok(batch)
    }
}

/// A sync request: what a peer asks another for, walking back from the heads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The heads of every log of a program.
    Heads {
        /// The program.
        #[serde(with = "cid_bytes")]
        program: Cid,
    },
    /// Events by position: for each range, the events of `log` with `from <= seq <
    /// to`, newest first, as many as fit the response bounds.
    Events {
        /// The address the asker reads under (a program's or a slice's): every
        /// log asked for must be within its grant (`grant.rs`).
        #[serde(with = "cid_bytes")]
        under: Cid,
        /// The ranges.
        ranges: Vec<Range>,
    },
    /// Blocks (bytecode and manifests) by CID.
    Blocks {
        /// The address the asker reads under (a program's or a slice's): every
        /// block asked for must be within its grant (`grant.rs`).
        #[serde(with = "cid_bytes")]
        under: Cid,
        /// The CIDs.
        #[serde(with = "cid_list")]
        cids: Vec<Cid>,
    },
    /// Bytes received that are no request (or more than a request may have):
    /// never sent, made by the codec on receipt so that the asker is answered
    /// `Refused` with reason `malformed` (`codec.rs`).
    #[serde(skip)]
    Malformed(String),
}

/// A range of positions in a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The log.
    #[serde(with = "cid_bytes")]
    pub log: Cid,
    /// The first position wanted.
    pub from: u64,
    /// One past the last position wanted.
    pub to: u64,
}

/// The head of one log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The log.
    #[serde(with = "cid_bytes")]
    pub log: Cid,
    /// The log's length (the head's seq + 1).
    pub len: u64,
    /// The head event.
    #[serde(with = "cid_bytes")]
    pub head: Cid,
}

/// A sync response.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The program's logs and their heads (logs with no event yet are left out).
    Heads {
        /// The heads.
        heads: Vec<Head>,
        /// Whether the peer knows the run to be over (it is complete, or the peer's
        /// walk of its plan is at its end): whoever has every event below these
        /// heads has the whole run.
        #[serde(default)]
        done: bool,
    },
    /// Events, each its canonical encoding (a peer checks every one).
    Events {
        /// The events found, at most the bounds; a range cut short is asked again.
        events: Vec<ByteBuf>,
    },
    /// Blocks, each under the CID of its bytes; those not held are left out.
    Blocks {
        /// The blocks found.
        blocks: Vec<ByteBuf>,
    },
    /// The peer does not hold this program.
    Unknown,
    /// The request is refused.
    Refused {
        /// Why.
        reason: SyncRefusal,
        /// Why, in words (may be empty).
        #[serde(default)]
        detail: String,
    },
}

/// Why a sync request is refused; on the wire, the string each variant names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SyncRefusal {
    /// The request is no request of the protocol, or more than 1 MiB.
    #[serde(rename = "malformed")]
    Malformed,
    /// The request asks for more items than a request may (4096 CIDs or ranges).
    #[serde(rename = "limit")]
    Limit,
    /// The node's store failed while answering.
    #[serde(rename = "store")]
    Store,
    /// The request asks for a log or block outside the grant of the address it
    /// names (`spec/network.md` §3, "Grants").
    #[serde(rename = "not-entitled")]
    NotEntitled,
}

/// Why a delegation request is refused; on the wire, the string each variant
/// names (the words of a refusal are in its `detail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DelegateRefusal {
    /// `Reserve`: the step is applied already.
    #[serde(rename = "taken")]
    Taken,
    /// `Reserve`: the co-capability is held for another mover.
    #[serde(rename = "reserved")]
    Reserved,
    /// `Reserve`: no walk of that program here (yet), or no such plan event.
    #[serde(rename = "unknown")]
    Unknown,
    /// `Reserve`: this host does not write that event; `Host`: this node is not a
    /// delegate of the deployment.
    #[serde(rename = "not-host")]
    NotHost,
    /// `Reserve`: that event is not the second half of a cross-host step whose
    /// first half the asker writes; `Host`: this node hosts for nobody
    /// (`accept_delegations = false`), not for the asker (`order_makers`), or the
    /// order's root log is not the asker's.
    #[serde(rename = "not-allowed")]
    NotAllowed,
    /// The queue the request goes to is full: ask again.
    #[serde(rename = "busy")]
    Busy,
    /// `Host`: the deployment is over one of this node's limits (named in the
    /// detail: `max_deploy_steps`, `max_deploy_events`).
    #[serde(rename = "limit")]
    Limit,
    /// `Host`: fetching the program, planning the run or starting the walk failed
    /// (the detail says why).
    #[serde(rename = "failed")]
    Failed,
    /// The request is no request of the protocol.
    #[serde(rename = "malformed")]
    Malformed,
}

impl SyncRefusal {
    /// The reason's name, as the wire has it.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRefusal::Malformed => "malformed",
            SyncRefusal::Limit => "limit",
            SyncRefusal::Store => "store",
            SyncRefusal::NotEntitled => "not-entitled",
        }
    }
}

impl DelegateRefusal {
    /// The reason's name, as the wire has it.
    pub fn as_str(self) -> &'static str {
        match self {
            DelegateRefusal::Taken => "taken",
            DelegateRefusal::Reserved => "reserved",
            DelegateRefusal::Unknown => "unknown",
            DelegateRefusal::NotHost => "not-host",
            DelegateRefusal::NotAllowed => "not-allowed",
            DelegateRefusal::Busy => "busy",
            DelegateRefusal::Limit => "limit",
            DelegateRefusal::Failed => "failed",
            DelegateRefusal::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for SyncRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for DelegateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A deployment whose slices run on several hosts: every host computes the same
/// plan from it and the program's stored blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The program (root manifest CID).
    #[serde(with = "cid_bytes")]
    pub program: Cid,
    /// The hosts' Ed25519 keys, the deployer's first.
    pub hosts: Vec<ByteBuf>,
    /// Ambient names delegated, with their host's index.
    pub delegated: Vec<(String, u32)>,
    /// The engine's step limit for the run.
    pub max_steps: u64,
}

impl Deployment {
    /// The deployment's bytes (CBOR; the same deployment always gives the same
    /// bytes), as a node keeps it to resume its walk after a restart.
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Reads a deployment kept by [`Deployment::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Deployment, DecodeError> {
        ciborium::from_reader(bytes).map_err(|e| DecodeError::Cbor {
            what: "a deployment",
            detail: e.to_string(),
        })
    }
}

/// What a host keeps of an order it walks, to resume the walk after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptOrder {
    /// The order's bytes.
    pub order: ByteBuf,
    /// The maker's (the deployer's) Ed25519 key.
    pub maker: ByteBuf,
}

impl KeptOrder {
    /// Its bytes (CBOR).
    pub fn encode(&self) -> Vec<u8> {
        to_cbor(self)
    }

    /// Reads what [`KeptOrder::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<KeptOrder, DecodeError> {
        ciborium::from_reader(bytes).map_err(|e| DecodeError::Cbor {
            what: "a kept order",
            detail: e.to_string(),
        })
    }
}

/// A delegation request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DelegateRequest {
    /// Will you walk this order, your part of a deployment (and run it)?
    /// Idempotent: a host that walks it already says yes again.
    Host {
        /// The order's bytes (`amb_vm::order::Order::encode`); its CID names it.
        /// It gives the id of the program's root log (derived from the program
        /// address, which the host does not learn).
        order: ByteBuf,
        /// The bytecode blocks of the host's grant, and the value blocks of the
        /// payloads of its events.
        blocks: Vec<ByteBuf>,
    },
    /// Reserve the co-capability that event `second` of the walk named `walk`
    /// consumes, for the step whose first half the asker is about to write (or,
    /// from an order's maker, arranges for another host).
    Reserve {
        /// The walk: a program address (a whole plan) or an order's name.
        #[serde(with = "cid_bytes")]
        walk: Cid,
        /// The index, in that walk, of the step's second half.
        second: u64,
    },
    /// From a host to the maker of its order: have the co-capability of the step
    /// whose first half is event `first` of the order reserved for it.
    Arrange {
        /// The order's name.
        #[serde(with = "cid_bytes")]
        order: Cid,
        /// The index, in the order, of the step's first half.
        first: u64,
    },
    /// The events of an order from its index `from` on that the asked node holds
    /// (the maker: every one its host does not write, with the bare refs' CIDs;
    /// the host: its own), for a walk that gossip left waiting.
    Feed {
        /// The order's name.
        #[serde(with = "cid_bytes")]
        order: Cid,
        /// The first index wanted.
        from: u64,
    },
    /// Bytes received that are no request: never sent, made by the codec on
    /// receipt so that the asker is answered `Refused` with reason `malformed`.
    #[serde(skip)]
    Malformed(String),
}

/// A delegation answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DelegateResponse {
    /// The answer to `Feed`: signed events, and bare refs' CIDs by index.
    Events {
        /// Signed events, each in its canonical encoding, in order.
        events: Vec<ByteBuf>,
        /// Bare refs' CIDs, each with its index among the order's bare refs.
        told: Vec<(u64, ByteBuf)>,
    },
    /// Yes: hosting; or the reservation is held for this long (ms).
    Granted {
        /// For a reservation: how long it is held, in ms (0 for `Host`).
        expires_ms: u64,
    },
    /// No.
    Refused {
        /// Why.
        reason: DelegateRefusal,
        /// Why, in words (may be empty).
        #[serde(default)]
        detail: String,
    },
}

/// Why bytes from a peer (or kept by this node) are not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than the message may have.
    #[error("{bytes} bytes, more than {max}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// Not the message's CBOR.
    #[error("{what}: {detail}")]
    Cbor {
        /// Which message.
        what: &'static str,
        /// The decoder's words.
        detail: String,
    },
    /// More events than a batch may carry.
    #[error("{events} events, more than {max}")]
    TooManyEvents {
        /// Its events.
        events: usize,
        /// The bound.
        max: usize,
    },
}

/// A value's CBOR.
fn to_cbor(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing to a vector cannot fail");
    out
}

/// Serde for one CID as its binary form.
mod cid_bytes {
    use amb_bytecode::Cid;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use serde_bytes::ByteBuf;

    pub(super) fn serialize<S: Serializer>(cid: &Cid, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&cid.to_bytes())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Cid, D::Error> {
        let bytes = ByteBuf::deserialize(d)?;
        Cid::from_bytes(&bytes).map_err(D::Error::custom)
    }
}

/// Serde for a list of CIDs.
mod cid_list {
    use amb_bytecode::Cid;
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};
    use serde_bytes::{ByteBuf, Bytes};

    pub(super) fn serialize<S: Serializer>(cids: &[Cid], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(cids.len()))?;
        for cid in cids {
            seq.serialize_element(Bytes::new(&cid.to_bytes()))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cid>, D::Error> {
        let list = Vec::<ByteBuf>::deserialize(d)?;
        if list.len() > super::MAX_REQUEST_ITEMS {
            return Err(D::Error::custom("too many CIDs"));
        }
        list.iter()
            .map(|b| Cid::from_bytes(b).map_err(D::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_round_trips_and_oversized_ones_are_refused() {
        let batch = GossipBatch {
            program: Cid::of(b"p"),
            nonce: 7,
            blocks: vec![ByteBuf::from(vec![1, 2])],
            events: vec![ByteBuf::from(vec![3])],
            told: Vec::new(),
        };
        let back = GossipBatch::decode(&batch.encode()).unwrap();
        assert_eq!(back.program, batch.program);
        assert_eq!(back.events, batch.events);
        assert!(GossipBatch::decode(&[0xff; 3]).is_err());
        let big = GossipBatch {
            events: vec![ByteBuf::new(); MAX_BATCH_EVENTS + 1],
            ..batch
        };
        let error = GossipBatch::decode(&big.encode()).unwrap_err();
        assert!(
            matches!(error, DecodeError::TooManyEvents { events, max: MAX_BATCH_EVENTS } if events == MAX_BATCH_EVENTS + 1),
            "{error}"
        );
    }

    #[test]
    fn a_deployment_round_trips_and_garbage_is_refused() {
        let deployment = Deployment {
            program: Cid::of(b"p"),
            hosts: vec![ByteBuf::from(vec![1; 32]), ByteBuf::from(vec![2; 32])],
            delegated: vec![("string_concat".into(), 1)],
            max_steps: 10_000,
        };
        let bytes = deployment.encode();
        assert_eq!(bytes, deployment.clone().encode());
        assert_eq!(Deployment::decode(&bytes), Ok(deployment));
        assert!(Deployment::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
