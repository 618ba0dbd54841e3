//! Events (`spec/events.md` §3): one signed step of one log.
//!
//! ```text
//! event = [1, log, seq, [opcode, target], at, refs, payload, creator, sig]
//! ```
//!
//! The signature covers the signing input: `amb-event-v2`, a zero byte, then the
//! canonical CBOR of the first eight items (an array of 8: header `0x88`). The event's
//! CID is the CID of the whole nine-item encoding, signature included. [`Event::decode`]
//! checks the shape, the op's target against its opcode (`spec/bytecode.md` §2), that
//! the refs are strictly increasing, and that the bytes are the one canonical
//! encoding; [`Event::verify_signature`] checks the signature. Every error names the
//! verification rule it breaks ([`EventError::rule`]).

use amb_bytecode::{
    BlockLimits, Cid, Opcode, Target,
    cbor::{self, Framing, ShapeError, TargetError},
};
use ciborium::Value;

use crate::keys::{
    BatchVerifier, Domain, KeyError, PublicKey, Signature, SignatureError, SigningKey,
};

/// The event format version, the first item of every event.
pub const EVENT_VERSION: u64 = 2;

/// The largest encoded event accepted: 4 MiB (an `in` event refers to the heads of
/// every log nested in the moving ambient, so refs can be many).
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// What an event records: an opcode and a target allowed for it (`spec/bytecode.md`
/// §2: `deploy` takes a CID link, `open_` the unused 0, and so on).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Op {
    opcode: Opcode,
    target: Target,
}

impl Op {
    /// An op, if `opcode` allows `target`.
    pub fn new(opcode: Opcode, target: Target) -> Result<Op, TargetError> {
        opcode.check_target(&target).map_err(|rule| TargetError {
            op: opcode.mnemonic(),
            found: format!("{target:?}"),
            rule,
        })?;
        Ok(Op { opcode, target })
    }

    /// `deploy` of a block.
    pub fn deploy(block: Cid) -> Op {
        Op {
            opcode: Opcode::Deploy,
            target: Target::Block(block),
        }
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        self.opcode
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }
}

/// The fields of an event that its writer chooses: everything but the creator and
/// the signature, which [`Event::sign`] adds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnsignedEvent {
    /// The log: its manifest's CID.
    pub log: Cid,
    /// Position in the log, from 0.
    pub seq: u64,
    /// What happened.
    pub op: Op,
    /// The instruction executed: instruction `.1` of the block whose instance the
    /// `deploy` event `.0` started; `None` for `create` and body `deploy` events.
    pub at: Option<(Cid, u32)>,
    /// Events this one refers to, as a set: [`Event::sign`] sorts them and drops
    /// duplicates.
    pub refs: Vec<Cid>,
    /// The CID of the slice's final value, on a log's last event (`spec/events.md` §6).
    pub payload: Option<Cid>,
}

/// A signed event. Made by [`Event::sign`] or [`Event::decode`], so its refs are
/// always strictly increasing and its op valid; its signature is checked only by
/// [`Event::verify_signature`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    body: UnsignedEvent,
    creator: PublicKey,
    sig: Signature,
}

/// Appends the canonical CBOR of an event's first eight items (an array of 8: the
/// payload of its signing input).
fn write_unsigned(out: &mut Vec<u8>, body: &UnsignedEvent, creator: &PublicKey) {
    use crate::cbor_write as w;
    w::array(out, 8);
    w::uint(out, EVENT_VERSION);
    w::link(out, &body.log);
    w::uint(out, body.seq);
    w::array(out, 2);
    w::uint(out, body.op.opcode as u64);
    w::target(out, &body.op.target);
    w::nullable(out, body.at.as_ref(), |out, (deploy, index)| {
        w::array(out, 2);
        w::link(out, deploy);
        w::uint(out, u64::from(*index));
    });
    w::array(out, body.refs.len());
    for r in &body.refs {
        w::link(out, r);
    }
    w::nullable(out, body.payload.as_ref(), w::link);
    w::bytes(out, creator.as_bytes());
}

/// Turns the 8-item array of [`write_unsigned`] into the event's 9-item encoding.
fn append_signature(unsigned: &mut Vec<u8>, sig: &Signature) {
    debug_assert_eq!(unsigned[0], 0x88, "an array of 8 items");
    unsigned[0] = 0x89;
    crate::cbor_write::bytes(unsigned, sig.as_bytes());
}

impl Event {
    /// Signs `body` with `key`: sorts the refs by binary CID and drops duplicates,
    /// records the key's public key as the creator, and signs the signing input.
    pub fn sign(body: UnsignedEvent, key: &SigningKey) -> Event {
        Event::sign_encoded(body, key).0
    }

    /// [`Event::sign`], with the event's encoding (made from the signed bytes: the
    /// 8-item array of the signing input becomes the 9-item array with the signature).
    pub fn sign_encoded(body: UnsignedEvent, key: &SigningKey) -> (Event, Vec<u8>) {
        let mut bytes = Vec::with_capacity(256);
        let event = Event::sign_into(body, key, &mut bytes);
        (event, bytes)
    }

    /// [`Event::sign_encoded`] into a buffer: `out` is cleared, then holds the
    /// encoding.
    pub(crate) fn sign_into(mut body: UnsignedEvent, key: &SigningKey, out: &mut Vec<u8>) -> Event {
        // `Cid` orders by digest; every CID of ours has the same 4-byte prefix, so
        // that is the order of the binary CIDs.
        body.refs.sort_unstable();
        body.refs.dedup();
        let creator = key.public_key();
        out.clear();
        write_unsigned(out, &body, &creator);
        let sig = key.sign(Domain::Event, out);
        append_signature(out, &sig);
        Event { body, creator, sig }
    }

    /// The fields the writer chose.
    pub fn body(&self) -> &UnsignedEvent {
        &self.body
    }

    /// The log: its manifest's CID.
    pub fn log(&self) -> Cid {
        self.body.log
    }

    /// Position in the log.
    pub fn seq(&self) -> u64 {
        self.body.seq
    }

    /// The op.
    pub fn op(&self) -> &Op {
        &self.body.op
    }

    /// The instruction executed: (the `deploy` event that started the block
    /// instance, the instruction's index).
    pub fn at(&self) -> Option<(Cid, u32)> {
        self.body.at
    }

    /// The refs, strictly increasing by binary CID.
    pub fn refs(&self) -> &[Cid] {
        &self.body.refs
    }

    /// The payload.
    pub fn payload(&self) -> Option<Cid> {
        self.body.payload
    }

    /// The writer's public key.
    pub fn creator(&self) -> &PublicKey {
        &self.creator
    }

    /// The signature.
    pub fn signature(&self) -> &Signature {
        &self.sig
    }

    /// The canonical encoding, signature included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends [`Event::encode`] to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        write_unsigned(out, &self.body, &self.creator);
        out[start] = 0x89;
        crate::cbor_write::bytes(out, self.sig.as_bytes());
    }

    /// An event from fields known to be valid (the store's compact form of an event
    /// that decoded when it was written): refs strictly increasing, the op valid.
    pub(crate) fn from_parts(body: UnsignedEvent, creator: PublicKey, sig: Signature) -> Event {
        debug_assert!(body.refs.windows(2).all(|w| w[0] < w[1]));
        Event { body, creator, sig }
    }

    /// The event's CID: the CID of [`Event::encode`].
    pub fn cid(&self) -> Cid {
        Cid::of(&self.encode())
    }

    /// The bytes that are signed: `amb-event-v2`, a zero byte, and the canonical
    /// CBOR of the event without its signature.
    pub fn signing_input(&self) -> Vec<u8> {
        crate::keys::signing_input(Domain::Event, &unsigned_cbor(&self.body, &self.creator))
    }

    /// Queues the signature in a batch: [`BatchVerifier::verify`] then answers as
    /// [`Event::verify_signature`] would for each event queued.
    pub fn queue_signature(&self, batch: &mut BatchVerifier) {
        batch.queue(
            &self.creator,
            Domain::Event,
            &unsigned_cbor(&self.body, &self.creator),
            &self.sig,
        );
    }

    /// Checks the signature with the validity rule of `spec/events.md` §1 (rule
    /// `signature`).
    pub fn verify_signature(&self) -> Result<(), EventError> {
        self.creator
            .verify(
                Domain::Event,
                &unsigned_cbor(&self.body, &self.creator),
                &self.sig,
            )
            .map_err(EventError::Signature)
    }

    /// Decodes an event from untrusted bytes: at most [`MAX_EVENT_BYTES`], the shape
    /// of `spec/events.md` §3, a target allowed for the opcode, refs strictly
    /// increasing, the creator a curve point, and exactly the canonical bytes. Does
    /// not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<Event, EventError> {
        cbor::decode_canonical(bytes, MAX_EVENT_BYTES, event_from_value, Event::encode)
    }
}

fn unsigned_cbor(body: &UnsignedEvent, creator: &PublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_unsigned(&mut out, body, creator);
    out
}

fn event_from_value(value: Value) -> Result<Event, EventError> {
    let [version, log, seq, op, at, refs, payload, creator, sig] =
        cbor::expect_array(value, &"event")?;
    let version = cbor::expect_uint(&version, &"event version")?;
    if version != EVENT_VERSION {
        return Err(cbor::shape(
            "event version",
            format!("expected {EVENT_VERSION}, found {version}"),
        )
        .into());
    }
    let log = cbor::expect_link(&log, &"event log")?;
    let seq = cbor::expect_uint(&seq, &"event seq")?;
    let op = op_from_value(op)?;
    let at = cbor::nullable(at, |at| -> Result<_, ShapeError> {
        let [deploy, index] = cbor::expect_array(at, &"event at")?;
        let deploy = cbor::expect_link(&deploy, &"event at deploy")?;
        let index = cbor::expect_uint(&index, &"event at index")?;
        let index = u32::try_from(index).map_err(|_| {
            cbor::shape(
                "event at index",
                format!("instruction index {index} is above 2^32 - 1"),
            )
        })?;
        Ok((deploy, index))
    })?;
    let refs = refs_from_value(refs, "event")?;
    let payload = cbor::nullable(payload, |p| cbor::expect_link(&p, &"event payload"))?;
    let (creator, sig) = signer_from_values(&creator, &sig, "event")?;
    Ok(Event {
        body: UnsignedEvent {
            log,
            seq,
            op,
            at,
            refs,
            payload,
        },
        creator,
        sig,
    })
}

/// The refs of an event (`kind`: `event` or `effect`, for the places in errors):
/// links, strictly increasing.
pub(crate) fn refs_from_value(refs: Value, kind: &str) -> Result<Vec<Cid>, EventError> {
    let refs = cbor::expect_list(refs, &format_args!("{kind} refs"))?
        .iter()
        .enumerate()
        .map(|(i, r)| cbor::expect_link(r, &format_args!("{kind} refs[{i}]")))
        .collect::<Result<Vec<Cid>, _>>()?;
    if let Some(index) = refs.windows(2).position(|w| w[0] >= w[1]) {
        return Err(EventError::RefsOrder { index: index + 1 });
    }
    Ok(refs)
}

/// The creator (a curve point) and the signature of an event.
pub(crate) fn signer_from_values(
    creator: &Value,
    sig: &Value,
    kind: &str,
) -> Result<(PublicKey, Signature), EventError> {
    let creator = cbor::expect_bytes::<32>(creator, &format_args!("{kind} creator"))?;
    let creator = PublicKey::from_bytes(&creator).map_err(EventError::Creator)?;
    let sig = Signature::from_bytes(cbor::expect_bytes::<64>(sig, &format_args!("{kind} sig"))?);
    Ok((creator, sig))
}

fn op_from_value(value: Value) -> Result<Op, EventError> {
    let [opcode, target] = cbor::expect_array(value, &"event op")?;
    let code = cbor::expect_uint(&opcode, &"event op opcode")?;
    let opcode = Opcode::from_u64(code)
        .ok_or_else(|| cbor::shape("event op opcode", format!("unknown opcode {code}")))?;
    // Names are bounded as in blocks: an op's target is an instruction's target.
    let target = cbor::target_from_value(opcode, &target, BlockLimits::default().max_name_bytes)?;
    Ok(Op { opcode, target })
}

/// Why bytes are not a valid event, or an event's signature is not valid. Each
/// variant breaks one rule of `spec/events.md` §7, named by [`EventError::rule`], so a
/// verifier reports `event <cid>: rule <rule>: <error>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Too large, not one CBOR item, or not the canonical encoding (rule `cbor`).
    #[error(transparent)]
    Framing(#[from] Framing),
    /// CBOR of the wrong shape (rule `cbor`).
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A target that the op's opcode does not allow (rule `cbor`).
    #[error("event op: {0}")]
    Op(#[from] TargetError),
    /// Refs not strictly increasing by binary CID (rule `cbor`).
    #[error(
        "event refs[{index}] is not greater than refs[{}]: refs are strictly increasing by binary CID",
        index - 1
    )]
    RefsOrder {
        /// The first ref not greater than the one before it (at least 1).
        index: usize,
    },
    /// The creator is not a curve point, so nothing it signs is valid (rule
    /// `signature`).
    #[error("event creator: {0}")]
    Creator(KeyError),
    /// The validity rule (`spec/events.md` §1) refuses the signature (rule `signature`).
    #[error("{0}")]
    Signature(SignatureError),
}

impl EventError {
    /// The rule of `spec/events.md` §7 that the event breaks: `cbor` or `signature`.
    pub fn rule(&self) -> &'static str {
        match self {
            EventError::Creator(_) | EventError::Signature(_) => "signature",
            EventError::Framing(_)
            | EventError::Shape(_)
            | EventError::Op(_)
            | EventError::RefsOrder { .. } => "cbor",
        }
    }
}

#[cfg(test)]
mod tests {
    use amb_bytecode::{Primitive, cbor::Link};
    use proptest::prelude::*;

    use super::*;
    use crate::keys::{assert_signing_layout, plain_verify_accepts, small_order_forgery};

    fn key() -> SigningKey {
        SigningKey::from_seed(&[7; 32])
    }

    fn cid(n: u8) -> Cid {
        Cid::of(&[n])
    }

    fn capability_event() -> Event {
        Event::sign(
            UnsignedEvent {
                log: cid(0),
                seq: 3,
                op: Op::new(Opcode::In, Target::Name("b".into())).unwrap(),
                at: Some((cid(1), 2)),
                refs: vec![cid(2), cid(3), cid(2)],
                payload: Some(cid(4)),
            },
            &key(),
        )
    }

    /// Hex with spaces and line breaks ignored.
    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text.split_whitespace().collect::<String>()).unwrap()
    }

    fn decode_hex(text: &str) -> Result<Event, EventError> {
        Event::decode(&unhex(text))
    }

    /// The encoding of an event with `items` in place of its CBOR items (hex each).
    fn with_items(items: &[&str]) -> Vec<u8> {
        let mut out = vec![0x80 + items.len() as u8];
        for item in items {
            out.extend(unhex(item));
        }
        out
    }

    /// The items of a valid event, in hex.
    fn items(event: &Event) -> Vec<String> {
        let Value::Array(items) = cbor::read_item(&event.encode()).unwrap() else {
            unreachable!()
        };
        items.iter().map(|v| hex::encode(cbor::to_vec(v))).collect()
    }

    fn replace(event: &Event, index: usize, item: &str) -> Result<Event, EventError> {
        let mut items = items(event);
        items[index] = item.into();
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        Event::decode(&with_items(&refs))
    }

    fn link_hex(cid: Cid) -> String {
        hex::encode(cbor::to_vec(&Link(cid)))
    }

    #[test]
    fn the_encoding_made_while_signing_is_the_encoding() {
        let event = capability_event();
        let (again, bytes) = Event::sign_encoded(event.body().clone(), &key());
        assert_eq!(again, event);
        assert_eq!(bytes, event.encode());
    }

    #[test]
    fn sign_sorts_refs_and_round_trips() {
        let event = capability_event();
        let mut sorted = vec![cid(2), cid(3)];
        sorted.sort();
        assert_eq!(event.refs(), sorted);
        assert_eq!(event.creator(), &key().public_key());
        let bytes = event.encode();
        assert_eq!(Event::decode(&bytes), Ok(event.clone()));
        assert_eq!(event.cid(), Cid::of(&bytes));
        assert_eq!(event.verify_signature(), Ok(()));
        assert_signing_layout(Domain::Event, &event.signing_input(), &bytes);
    }

    #[test]
    fn create_event_bytes() {
        let event = Event::sign(
            UnsignedEvent {
                log: cid(0),
                seq: 0,
                op: Op::new(Opcode::Create, Target::None).unwrap(),
                at: None,
                refs: vec![],
                payload: None,
            },
            &key(),
        );
        let bytes = event.encode();
        let expected_start = format!("8902{}00 8200f6 f6 80 f6 5820", link_hex(cid(0)));
        assert!(hex::encode(&bytes).starts_with(&expected_start.replace(' ', "")));
        assert_eq!(Event::decode(&bytes), Ok(event));
    }

    #[test]
    fn every_decode_error_names_its_rule() {
        let event = capability_event();
        let cases: Vec<(Result<Event, EventError>, &str)> = vec![
            (decode_hex(""), "not well-formed CBOR"),
            (decode_hex("f6"), "event: expected an array, found null"),
            (
                Event::decode(&with_items(&["01"; 8])),
                "event: expected 9 items, found 8",
            ),
            (
                replace(&event, 0, "01"),
                "event version: expected 2, found 1",
            ),
            (replace(&event, 1, "00"), "event log: expected a CID link"),
            (
                replace(
                    &event,
                    1,
                    &format!("d82a5824{}", hex::encode(cid(0).to_bytes())),
                ),
                "event log: expected a CID link",
            ),
            (
                replace(&event, 2, "20"),
                "event seq: expected an unsigned integer, found integer -1",
            ),
            (
                replace(&event, 3, "83026162f6"),
                "event op: expected 2 items, found 3",
            ),
            (
                replace(&event, 3, "82086162"),
                "event op opcode: unknown opcode 8",
            ),
            (
                replace(&event, 3, "8202f6"),
                "event op: in: target null is not allowed",
            ),
            (
                replace(&event, 3, "82076161"),
                "event op: open_: target text \"a\" is not allowed",
            ),
            (
                replace(&event, 3, "82016161"),
                "event op: deploy: target text \"a\"",
            ),
            (
                replace(&event, 3, "820264 63616c6c"),
                "primitive names are written as their code",
            ),
            (
                replace(&event, 3, "820204"),
                "event op: in: target integer 4",
            ),
            (
                replace(&event, 4, "8100"),
                "event at: expected 2 items, found 1",
            ),
            (
                replace(
                    &event,
                    4,
                    &format!("82{}1b0000000100000000", link_hex(cid(1))),
                ),
                "event at index: instruction index 4294967296 is above 2^32 - 1",
            ),
            (
                replace(&event, 4, "820000"),
                "event at deploy: expected a CID link",
            ),
            (
                replace(&event, 5, "a0"),
                "event refs: expected an array, found a map",
            ),
            (
                replace(&event, 5, "81f6"),
                "event refs[0]: expected a CID link",
            ),
            (
                replace(&event, 5, &format!("82{0}{0}", link_hex(cid(2)))),
                "event refs[1] is not greater than refs[0]",
            ),
            (
                replace(&event, 6, "6161"),
                "event payload: expected a CID link",
            ),
            (
                replace(&event, 7, "4100"),
                "event creator: expected a byte string of 32 bytes",
            ),
            (
                replace(
                    &event,
                    7,
                    &format!("5820{}", "02".to_string() + &"00".repeat(31)),
                ),
                "event creator: not an Ed25519 public key",
            ),
            (
                replace(&event, 8, "f6"),
                "event sig: expected a byte string of 64 bytes",
            ),
        ];
        for (result, expected) in cases {
            let error = result.expect_err(expected);
            assert!(
                error.to_string().contains(expected),
                "{error} does not say {expected:?}"
            );
            let rule = if expected.contains("creator: not") {
                "signature"
            } else {
                "cbor"
            };
            assert_eq!(error.rule(), rule, "{error}");
        }
        // Descending refs.
        let (lo, hi) = if cid(2) < cid(3) {
            (cid(2), cid(3))
        } else {
            (cid(3), cid(2))
        };
        let error = replace(&event, 5, &format!("82{}{}", link_hex(hi), link_hex(lo))).unwrap_err();
        assert_eq!(error, EventError::RefsOrder { index: 1 });
        // Trailing bytes.
        let mut bytes = event.encode();
        bytes.push(0);
        assert!(matches!(
            Event::decode(&bytes),
            Err(EventError::Framing(Framing::Cbor(_)))
        ));
        // Too large.
        let huge = vec![0u8; MAX_EVENT_BYTES + 1];
        assert_eq!(
            Event::decode(&huge),
            Err(EventError::Framing(Framing::TooLarge {
                size: MAX_EVENT_BYTES + 1,
                limit: MAX_EVENT_BYTES
            }))
        );
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let event = capability_event();
        let good = items(&event);
        let cases = [
            // seq 3 as a two-byte integer.
            (2, "1803".to_string()),
            // version 1 as a two-byte integer.
            (0, "1802".to_string()),
            // The op as an indefinite-length array.
            (3, "9f026162ff".to_string()),
            // The name as an indefinite-length text string.
            (3, "82027f6162ff".to_string()),
            // The at index as a two-byte integer.
            (4, format!("82{}1802", link_hex(cid(1)))),
            // The log link with a long-form tag.
            (1, format!("d9002a{}", &link_hex(cid(0))[4..])),
        ];
        for (index, item) in cases {
            let mut items = good.clone();
            items[index] = item.clone();
            let refs: Vec<&str> = items.iter().map(String::as_str).collect();
            assert_eq!(
                Event::decode(&with_items(&refs)),
                Err(EventError::Framing(Framing::NotCanonical)),
                "item {index} as {item}"
            );
        }
        // An indefinite-length top-level array.
        let mut bytes = vec![0x9f];
        bytes.extend(&event.encode()[1..]);
        bytes.push(0xff);
        assert_eq!(
            Event::decode(&bytes),
            Err(EventError::Framing(Framing::NotCanonical))
        );
    }

    #[test]
    fn signature_failures() {
        let event = capability_event();
        let bytes = event.encode();
        // Every bit flip of the signature or of the signed content that still
        // decodes fails verification.
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(changed) = Event::decode(&flipped) {
                let error = changed.verify_signature().unwrap_err();
                assert_eq!(error.rule(), "signature", "bit {bit}");
            }
        }
        // Another key's signature over the same body, with our creator.
        let other = Event::sign(event.body().clone(), &SigningKey::from_seed(&[8; 32]));
        let forged = Event {
            creator: *event.creator(),
            ..other
        };
        assert_eq!(
            forged.verify_signature(),
            Err(EventError::Signature(SignatureError))
        );
        // A manifest-domain signature over the same bytes is not an event signature.
        let manifest_sig = key().sign(
            Domain::Manifest,
            &unsigned_cbor(event.body(), event.creator()),
        );
        let cross = Event {
            sig: manifest_sig,
            ..event.clone()
        };
        assert!(cross.verify_signature().is_err());
    }

    #[test]
    fn small_order_creator_is_refused_by_verify_strict() {
        // A forgery that plain `verify` accepts on every message; verify_strict,
        // hence we, refuse it.
        let (creator, sig) = small_order_forgery();
        let event = Event {
            creator,
            sig,
            ..capability_event()
        };
        let decoded = Event::decode(&event.encode()).unwrap();
        assert!(plain_verify_accepts(
            &creator,
            &decoded.signing_input(),
            &sig
        ));
        assert_eq!(
            decoded.verify_signature(),
            Err(EventError::Signature(SignatureError))
        );
    }

    #[test]
    fn ops_are_checked() {
        assert!(Op::new(Opcode::OpenCo, Target::Primitive(Primitive::Func)).is_err());
        assert!(Op::new(Opcode::OpenCo, Target::Unused).is_ok());
        assert!(Op::new(Opcode::In, Target::Name("call".into())).is_err());
        assert!(Op::new(Opcode::Deploy, Target::None).is_err());
        assert_eq!(
            Op::deploy(cid(1)),
            Op::new(Opcode::Deploy, Target::Block(cid(1))).unwrap()
        );
    }

    fn arb_cid() -> impl Strategy<Value = Cid> {
        any::<[u8; 32]>().prop_map(Cid::from_digest)
    }

    pub(crate) fn arb_op() -> impl Strategy<Value = Op> {
        let name = "[a-z_0-9\"]{0,12}".prop_filter_map("not a primitive", |n| {
            Primitive::from_name(&n)
                .is_none()
                .then(|| Target::Name(n.as_str().into()))
        });
        let primitive = (0u64..4).prop_map(|c| Target::Primitive(Primitive::from_u64(c).unwrap()));
        let target = prop_oneof![
            name,
            primitive,
            Just(Target::None),
            Just(Target::Unused),
            arb_cid().prop_map(Target::Block),
        ];
        (0u64..8, target).prop_filter_map("allowed target", |(code, target)| {
            Op::new(Opcode::from_u64(code).unwrap(), target).ok()
        })
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            arb_cid(),
            any::<u64>(),
            arb_op(),
            proptest::option::of((arb_cid(), any::<u32>())),
            proptest::collection::vec(arb_cid(), 0..6),
            proptest::option::of(arb_cid()),
            any::<[u8; 32]>(),
        )
            .prop_map(|(log, seq, op, at, refs, payload, seed)| {
                Event::sign(
                    UnsignedEvent {
                        log,
                        seq,
                        op,
                        at,
                        refs,
                        payload,
                    },
                    &SigningKey::from_seed(&seed),
                )
            })
    }

    proptest! {
        #[test]
        fn decode_encode_round_trips(event in arb_event()) {
            let bytes = event.encode();
            prop_assert_eq!(Event::decode(&bytes), Ok(event.clone()));
            prop_assert_eq!(event.verify_signature(), Ok(()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(event) = Event::decode(&bytes) {
                prop_assert_eq!(event.encode(), bytes);
            }
        }
    }
}
