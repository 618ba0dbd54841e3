//! An order's bytes (`spec/network.md` §8, `Host`): CBOR, the same order always
//! giving the same bytes, so that its CID names it. Reading one checks everything
//! a walk relies on (every reference points back, every log is announced before
//! its events, every index is in range, every operation is valid), so that bytes
//! from a peer cannot make a walk misbehave.

use amb_bytecode::{Cid, Opcode, Primitive, Target};
use amb_log::{Op, PublicKey};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{LogId, Order, OrderEvent, OrderLog, Ref};
use crate::{plan::PlannedEffect, system::service::is_service_name};

/// The version of the encoding (2: events carry what an `effect` event records).
const VERSION: u8 = 2;

/// Why bytes are not an order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// Not the order's CBOR, or another version.
    #[error("not an order: {0}")]
    Cbor(String),
    /// A field is out of range or inconsistent.
    #[error("order event {event}: {rule}")]
    Event {
        /// The event (or log, for a log's rule), by index.
        event: usize,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A log is inconsistent.
    #[error("order log {log}: {rule}")]
    Log {
        /// The log, by index.
        log: usize,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A host's key is not an Ed25519 public key.
    #[error("order host {0}: not an Ed25519 public key")]
    Key(usize),
}

#[derive(Serialize, Deserialize)]
struct WireOrder {
    version: u8,
    hosts: Vec<ByteBuf>,
    logs: Vec<WireLog>,
    events: Vec<WireEvent>,
    bare: u64,
    reserve: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct WireLog(Option<String>, ByteBuf, WireLogId, u32, Vec<u32>);

#[derive(Serialize, Deserialize)]
enum WireLogId {
    #[serde(rename = "given")]
    Given(ByteBuf),
    #[serde(rename = "announced")]
    Announced(u64),
}

#[derive(Serialize, Deserialize)]
struct WireEvent(
    u32,
    u64,
    u8,
    WireTarget,
    Option<(WireRef, u32)>,
    Vec<WireRef>,
    Option<ByteBuf>,
    u32,
    Option<WireEffect>,
);

/// What an `effect` event records: the service, the argument's and the result's
/// value block CIDs.
#[derive(Serialize, Deserialize)]
struct WireEffect(String, ByteBuf, ByteBuf);

/// A reference: `(0, i)` an event of the order, `(1, i)` a bare ref.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct WireRef(u8, u64);

#[derive(Serialize, Deserialize)]
enum WireTarget {
    #[serde(rename = "name")]
    Name(String),
    #[serde(rename = "primitive")]
    Primitive(u8),
    #[serde(rename = "block")]
    Block(ByteBuf),
    #[serde(rename = "none")]
    None,
    #[serde(rename = "unused")]
    Unused,
}

fn cid_bytes(cid: Cid) -> ByteBuf {
    ByteBuf::from(cid.to_bytes().to_vec())
}

fn wire_ref(reference: Ref) -> WireRef {
    match reference {
        Ref::Held(i) => WireRef(0, i as u64),
        Ref::Bare(i) => WireRef(1, i as u64),
    }
}

fn wire_target(target: &Target) -> WireTarget {
    match target {
        Target::Name(name) => WireTarget::Name(name.to_string()),
        Target::Primitive(p) => WireTarget::Primitive(*p as u8),
        Target::Block(cid) => WireTarget::Block(cid_bytes(*cid)),
        Target::None => WireTarget::None,
        Target::Unused => WireTarget::Unused,
    }
}

impl Order {
    /// The order's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let wire = WireOrder {
            version: VERSION,
            hosts: self
                .hosts
                .iter()
                .map(|k| ByteBuf::from(k.to_bytes().to_vec()))
                .collect(),
            logs: self
                .logs
                .iter()
                .map(|log| {
                    WireLog(
                        log.name.clone(),
                        cid_bytes(log.block),
                        match log.id {
                            LogId::Given(cid) => WireLogId::Given(cid_bytes(cid)),
                            LogId::Announced(e) => WireLogId::Announced(e as u64),
                        },
                        log.host as u32,
                        log.keys.iter().map(|&k| k as u32).collect(),
                    )
                })
                .collect(),
            events: self
                .events
                .iter()
                .map(|e| {
                    WireEvent(
                        e.log as u32,
                        e.seq,
                        e.opcode as u8,
                        wire_target(&e.target),
                        e.at.map(|(anchor, i)| (wire_ref(anchor), i)),
                        e.refs.iter().map(|&r| wire_ref(r)).collect(),
                        e.payload.map(cid_bytes),
                        e.writer as u32,
                        e.effect.as_ref().map(|effect| {
                            WireEffect(
                                effect.service.clone(),
                                cid_bytes(effect.args),
                                cid_bytes(effect.result),
                            )
                        }),
                    )
                })
                .collect(),
            bare: self.bare as u64,
            reserve: self.reserve.iter().map(|&i| i as u64).collect(),
        };
        let mut out = Vec::new();
        ciborium::into_writer(&wire, &mut out).expect("writing to a vector cannot fail");
        out
    }

    /// The order's name: the CID of its bytes.
    pub fn name(&self) -> Cid {
        Cid::of(&self.encode())
    }

    /// Reads an order, checking that a walk can follow it.
    pub fn decode(bytes: &[u8]) -> Result<Order, OrderError> {
        let wire: WireOrder =
            ciborium::from_reader(bytes).map_err(|e| OrderError::Cbor(e.to_string()))?;
        if wire.version != VERSION {
            return Err(OrderError::Cbor(format!("version {}", wire.version)));
        }
        let hosts = wire
            .hosts
            .iter()
            .enumerate()
            .map(|(i, k)| {
                <[u8; 32]>::try_from(k.as_slice())
                    .ok()
                    .and_then(|k| PublicKey::from_bytes(&k).ok())
                    .ok_or(OrderError::Key(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let host = |h: u32| (h as usize) < hosts.len();
        let cid = |b: &ByteBuf| Cid::from_bytes(b).ok();
        let mut logs = Vec::with_capacity(wire.logs.len());
        for (l, WireLog(name, block, id, log_host, keys)) in wire.logs.into_iter().enumerate() {
            let bad = |rule| OrderError::Log { log: l, rule };
            let block = cid(&block).ok_or(bad("its block is no CID"))?;
            let id = match id {
                WireLogId::Given(c) => LogId::Given(cid(&c).ok_or(bad("its id is no CID"))?),
                WireLogId::Announced(e) => LogId::Announced(e as usize),
            };
            if !host(log_host) || !keys.iter().all(|&k| host(k)) {
                return Err(bad("a host out of range"));
            }
            logs.push(OrderLog {
                name,
                block,
                id,
                host: log_host as usize,
                keys: keys.into_iter().map(|k| k as usize).collect(),
            });
        }
        let bare = wire.bare as usize;
        let mut events = Vec::with_capacity(wire.events.len());
        for (i, WireEvent(log, seq, opcode, target, at, refs, payload, writer, effect)) in
            wire.events.into_iter().enumerate()
        {
            let bad = |rule| OrderError::Event { event: i, rule };
            let reference = |r: WireRef| match r {
                WireRef(0, j) if (j as usize) < i => Ok(Ref::Held(j as usize)),
                WireRef(1, j) if (j as usize) < bare => Ok(Ref::Bare(j as usize)),
                _ => Err(bad("a reference that does not point back")),
            };
            let log = log as usize;
            let Some(info) = logs.get(log) else {
                return Err(bad("its log is out of range"));
            };
            if let LogId::Announced(announce) = info.id {
                let announced = announce < i
                    && events
                        .get(announce)
                        .is_some_and(|e: &OrderEvent| e.opcode == Opcode::Deploy);
                if !announced {
                    return Err(bad("its log is not announced by an earlier deploy"));
                }
            }
            let opcode = Opcode::from_u64(opcode as u64).ok_or(bad("no such opcode"))?;
            let target = match target {
                WireTarget::Name(n) => Target::Name(n.into()),
                WireTarget::Primitive(p) => Target::Primitive(
                    Primitive::from_u64(p as u64).ok_or(bad("no such primitive"))?,
                ),
                WireTarget::Block(b) => {
                    Target::Block(cid(&b).ok_or(bad("a block that is no CID"))?)
                }
                WireTarget::None => Target::None,
                WireTarget::Unused => Target::Unused,
            };
            Op::new(opcode, target.clone()).map_err(|_| bad("an invalid operation"))?;
            if !host(writer) {
                return Err(bad("its writer is out of range"));
            }
            let at = match at {
                Some((anchor, index)) => Some((reference(anchor)?, index)),
                None => None,
            };
            let refs = refs
                .into_iter()
                .map(reference)
                .collect::<Result<Vec<_>, _>>()?;
            let payload = match payload {
                Some(p) => Some(cid(&p).ok_or(bad("a payload that is no CID"))?),
                None => None,
            };
            let effect = match effect {
                Some(WireEffect(service, args, result)) => {
                    if !is_service_name(&service) || at.is_some() || payload.is_some() {
                        return Err(bad(
                            "an effect of no service, or with an instruction or a payload",
                        ));
                    }
                    Some(PlannedEffect {
                        service,
                        args: cid(&args).ok_or(bad("an effect's args is no CID"))?,
                        result: cid(&result).ok_or(bad("an effect's result is no CID"))?,
                    })
                }
                None => None,
            };
            events.push(OrderEvent {
                log,
                seq,
                opcode,
                target,
                at,
                refs,
                payload,
                writer: writer as usize,
                effect,
            });
        }
        let reserve = wire
            .reserve
            .into_iter()
            .map(|i| i as usize)
            .collect::<Vec<_>>();
        if let Some(&i) = reserve.iter().find(|&&i| i >= events.len()) {
            return Err(OrderError::Event {
                event: i,
                rule: "a reservation of no event",
            });
        }
        Ok(Order {
            events,
            logs,
            bare,
            hosts,
            reserve,
        })
    }
}
