//! Decodes arbitrary bytes as an event (`Event::decode`). Errors are fine; panics are
//! bugs. Two paths run on every input.
//!
//! **Raw**: the input itself is decoded. What decodes must re-encode to exactly the
//! input bytes (only the canonical DAG-CBOR is accepted), have the CID of those bytes,
//! refs strictly increasing (also as binary CIDs), an op that `Op::new` accepts, a
//! creator that is a curve point and re-reads to itself, and a signing input laid out
//! as `spec/events.md` §9 says (the domain, a zero byte, `0x88`, then the encoding's
//! items without the trailing `58 40` signature). The input with a byte appended or
//! its last byte removed is refused. Every accessor, `Debug` and `verify_signature`
//! run; a verification error is rule `signature`, and a signature that verifies does
//! not verify in the manifest domain.
//!
//! **Effect**: the input is also decoded as an effect event (`EffectEvent::decode`,
//! `spec/system.md` §6): what decodes re-encodes to exactly the input, has its CID,
//! and is never also an event of the other kinds; a verification error is rule
//! `signature`.
//!
//! **Structured**: the input's bytes choose a valid event (fields, integer widths,
//! one of four fixed keys), which is signed, encoded, decoded back and verified. Then:
//!
//! - one byte of the encoding is changed, removed or inserted at a position the input
//!   chooses; the result is refused, or decodes to an event that re-encodes to exactly
//!   the mutated bytes (all raw checks above) and fails `verify_signature`. A changed
//!   signature byte always decodes, with the same body and creator; a changed creator
//!   byte decodes exactly when the new 32 bytes are a curve point;
//! - on half of the inputs (signing is what costs), one signed field (log, seq, op,
//!   at, refs, payload or creator) is changed: the changed event, with the original
//!   signature spliced in, decodes and fails `verify_signature`.

#![no_main]

use std::sync::LazyLock;

use amb_bytecode::{BlockLimits, Cid, Opcode, Primitive, Target};
use amb_log::{
    Domain, EffectEvent, Event, EventError, Op, PublicKey, SigningKey, UnsignedEvent,
    signing_input,
};
use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};

/// Length of the encoded signature at the end of an encoding: `58 40` and 64 bytes.
const SIG_ITEM: usize = 66;
/// Length of the encoded creator before it: `58 20` and 32 bytes.
const CREATOR_ITEM: usize = 34;

/// The signing keys of the structured path: RFC 8032's test key 1 (the key of the
/// spec's vectors) and three others.
static KEYS: LazyLock<Vec<SigningKey>> = LazyLock::new(|| {
    let rfc = hex_seed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    [rfc, [1; 32], [7; 32], [0xfe; 32]]
        .iter()
        .map(SigningKey::from_seed)
        .collect()
});

fn hex_seed(hex: &str) -> [u8; 32] {
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    seed
}

fuzz_target!(|data: &[u8]| {
    match Event::decode(data) {
        Ok(event) => {
            let _ = check_event(&event, data, true);
            let mut longer = data.to_vec();
            longer.push(0);
            assert!(Event::decode(&longer).is_err(), "accepted a trailing byte");
            assert!(
                Event::decode(&data[..data.len() - 1]).is_err(),
                "accepted a truncated event"
            );
        }
        Err(error) => check_error(&error),
    }
    match EffectEvent::decode(data) {
        Ok(effect) => {
            assert_eq!(effect.encode(), data, "an effect re-encodes to other bytes");
            assert_eq!(effect.cid(), Cid::of(data));
            assert!(EffectEvent::looks_like(data));
            assert!(Event::decode(data).is_err(), "both an effect and an event");
            let _ = format!("{effect:?}");
            if let Err(error) = effect.verify_signature() {
                assert_eq!(error.rule(), "signature", "{error:?}");
            }
        }
        Err(error) => check_error(&error),
    }
    let _ = structured(data);
});

fn check_error(error: &EventError) {
    let _ = error.to_string();
    assert!(matches!(error.rule(), "cbor" | "signature"), "{error:?}");
}

/// The checks of any decoded event against the bytes it was decoded from; returns
/// what `verify_signature` said.
fn check_event(event: &Event, bytes: &[u8], raw: bool) -> std::result::Result<(), EventError> {
    assert_eq!(
        event.encode(),
        bytes,
        "a decoded event re-encodes to other bytes: {event:?}"
    );
    assert_eq!(
        event.cid(),
        Cid::of(bytes),
        "CID is not the CID of the bytes"
    );

    let body = event.body();
    assert_eq!(event.log(), body.log);
    assert_eq!(event.seq(), body.seq);
    assert_eq!(event.at(), body.at);
    assert_eq!(event.refs(), &body.refs[..]);
    assert_eq!(event.payload(), body.payload);
    let op = event.op();
    assert_eq!(
        Op::new(op.opcode(), op.target().clone()).as_ref(),
        Ok(op),
        "decoded an op that Op::new refuses"
    );
    if let Target::Name(name) = op.target() {
        assert!(name.len() <= BlockLimits::default().max_name_bytes);
    }
    for pair in event.refs().windows(2) {
        assert!(pair[0] < pair[1], "refs not strictly increasing");
        assert!(
            pair[0].to_bytes() < pair[1].to_bytes(),
            "refs not strictly increasing as binary CIDs"
        );
    }
    let creator = event.creator();
    assert_eq!(
        PublicKey::from_bytes(creator.as_bytes()).as_ref(),
        Ok(creator),
        "creator does not re-read to itself"
    );
    if raw {
        let _ = creator.to_string();
        let _ = format!("{event:?}");
    }

    // The layout of §9: header 0x89, the signature last as `58 40` and 64 bytes, and
    // the signing input the same items under header 0x88.
    assert!(bytes.len() > SIG_ITEM + CREATOR_ITEM);
    let unsigned = bytes.len() - SIG_ITEM;
    assert_eq!(bytes[0], 0x89);
    assert_eq!(bytes[unsigned..unsigned + 2], [0x58, 0x40]);
    assert_eq!(&bytes[unsigned + 2..], event.signature().as_bytes());
    assert_eq!(bytes[unsigned - CREATOR_ITEM..unsigned - 32], [0x58, 0x20]);
    assert_eq!(&bytes[unsigned - 32..unsigned], creator.as_bytes());
    let mut payload = vec![0x88];
    payload.extend_from_slice(&bytes[1..unsigned]);
    let input = event.signing_input();
    assert_eq!(input, signing_input(Domain::Event, &payload));

    let verified = event.verify_signature();
    match &verified {
        Ok(()) if raw => assert!(
            creator
                .verify(Domain::Manifest, &payload, event.signature())
                .is_err(),
            "an event signature verifies in the manifest domain"
        ),
        Ok(()) => {}
        Err(error) => {
            check_error(error);
            assert!(matches!(error, EventError::Signature(_)), "{error:?}");
        }
    }
    verified
}

/// An unsigned integer of a width the input chooses, so that every CBOR integer
/// header (immediate, 1, 2, 4 and 8 bytes) shows up.
fn int(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=4)? {
        0 => u.int_in_range(0..=23)?,
        1 => u.arbitrary::<u8>()?.into(),
        2 => u.arbitrary::<u16>()?.into(),
        3 => u.arbitrary::<u32>()?.into(),
        _ => u.arbitrary::<u64>()?,
    })
}

fn cid(u: &mut Unstructured) -> Result<Cid> {
    // Half the time a CID from a small pool, so refs repeat and collide.
    Ok(if u.arbitrary()? {
        Cid::of(&[u.int_in_range(0..=7)?])
    } else {
        Cid::from_digest(u.arbitrary()?)
    })
}

fn name(u: &mut Unstructured) -> Result<String> {
    let len = u.int_in_range(0..=40)?;
    let mut name = String::new();
    for _ in 0..len {
        name.push(u.arbitrary()?);
    }
    Ok(name)
}

fn op(u: &mut Unstructured) -> Result<Op> {
    let opcode = Opcode::from_u64(u.int_in_range(0..=7)?).unwrap();
    let target = match u.int_in_range(0..=4)? {
        0 => Target::Name(name(u)?.into()),
        1 => Target::Primitive(Primitive::from_u64(u.int_in_range(0..=3)?).unwrap()),
        2 => Target::Block(cid(u)?),
        3 => Target::None,
        _ => Target::Unused,
    };
    Ok(Op::new(opcode, target).unwrap_or_else(|_| {
        let fallback = match opcode {
            Opcode::Deploy => Target::Block(Cid::of(b"block")),
            Opcode::OpenCo => Target::Unused,
            _ => Target::Name("a".into()),
        };
        Op::new(opcode, fallback).unwrap()
    }))
}

fn at(u: &mut Unstructured) -> Result<Option<(Cid, u32)>> {
    Ok(if u.arbitrary()? {
        Some((cid(u)?, int(u)? as u32))
    } else {
        None
    })
}

fn refs(u: &mut Unstructured) -> Result<Vec<Cid>> {
    let count = u.int_in_range(0..=6)?;
    (0..count).map(|_| cid(u)).collect()
}

fn payload(u: &mut Unstructured) -> Result<Option<Cid>> {
    Ok(if u.arbitrary()? { Some(cid(u)?) } else { None })
}

fn structured(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    // The mutation first, so its bytes stay in place whatever the event takes.
    let mutation = u.int_in_range(0..=3)?;
    let position: u16 = u.arbitrary()?;
    let value: u8 = u.arbitrary()?;
    // 0-6: the signed field to change; 7-13: none (signing costs: half the inputs).
    let field = u.int_in_range(0..=13)?;
    let key = &KEYS[u.choose_index(KEYS.len())?];
    let body = UnsignedEvent {
        log: cid(&mut u)?,
        seq: int(&mut u)?,
        op: op(&mut u)?,
        at: at(&mut u)?,
        refs: refs(&mut u)?,
        payload: payload(&mut u)?,
    };

    let event = Event::sign(body.clone(), key);
    let bytes = event.encode();
    let mut sorted = body.refs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(event.refs(), sorted, "sign did not sort and dedup the refs");
    assert_eq!(event.creator(), &key.public_key());
    assert_eq!(
        Event::decode(&bytes).as_ref(),
        Ok(&event),
        "a signed event does not decode to itself"
    );
    assert_eq!(
        check_event(&event, &bytes, false),
        Ok(()),
        "a signed event fails"
    );

    // One byte changed, removed or inserted.
    let position = usize::from(position) % bytes.len();
    let mut mutated = bytes.clone();
    match mutation {
        0 | 1 => mutated[position] ^= value.max(1),
        2 => {
            mutated.remove(position);
        }
        _ => mutated.insert(position, value),
    }
    let decoded = Event::decode(&mutated);
    match &decoded {
        Err(error) => check_error(error),
        Ok(changed) => {
            assert_ne!(changed, &event);
            let verified = check_event(changed, &mutated, false);
            assert!(
                verified.is_err(),
                "a mutated event verifies: byte {position}, mutation {mutation}, value {value}"
            );
        }
    }
    if mutation <= 1 {
        let unsigned = bytes.len() - SIG_ITEM;
        let creator = unsigned - 32..unsigned;
        if position >= unsigned + 2 {
            let changed = decoded.expect("any 64 bytes are a signature");
            assert_eq!(changed.body(), event.body());
            assert_eq!(changed.creator(), event.creator());
        } else if creator.contains(&position) {
            let key: [u8; 32] = mutated[creator].try_into().unwrap();
            let point = PublicKey::from_bytes(&key).is_ok();
            assert_eq!(
                decoded.is_ok(),
                point,
                "creator byte changed: decode and curve point disagree: {decoded:?}"
            );
            if let Ok(changed) = decoded {
                assert_eq!(changed.body(), event.body());
                assert_eq!(changed.signature(), event.signature());
            }
        }
    }

    // One signed field changed, the original signature kept.
    if field > 6 {
        return Ok(());
    }
    let mut other = body.clone();
    let mut signer = key;
    match field {
        0 => other.log = cid(&mut u)?,
        1 => other.seq = int(&mut u)?,
        2 => other.op = op(&mut u)?,
        3 => other.at = at(&mut u)?,
        4 => other.refs = refs(&mut u)?,
        5 => other.payload = payload(&mut u)?,
        _ => signer = &KEYS[u.choose_index(KEYS.len())?],
    }
    let resigned = Event::sign(other, signer);
    if resigned.body() == event.body() && resigned.creator() == event.creator() {
        return Ok(());
    }
    let mut spliced = resigned.encode();
    let sig_at = spliced.len() - 64;
    spliced[sig_at..].copy_from_slice(event.signature().as_bytes());
    let changed = Event::decode(&spliced).expect("a valid event with another signature");
    assert_eq!(changed.signature(), event.signature());
    assert!(
        check_event(&changed, &spliced, false).is_err(),
        "field {field} changed and the signature still verifies"
    );
    Ok(())
}
