//! The test vectors of `spec/events.md` §9, checked two ways:
//!
//! 1. independently of `amb-log`: the public key, every signature (verified, and
//!    recomputed, since Ed25519 signing is deterministic) with `ed25519-compact`, not
//!    `ed25519-dalek`; every signing input and encoding rebuilt from the listed fields
//!    with a CBOR writer in this file; every CID with the reference BLAKE3 and base32
//!    of `reference_blake3.rs`;
//! 2. against `amb-log`: it decodes each vector, re-encodes it to the same bytes,
//!    verifies it, signs the same fields to the same bytes, refuses the signatures the
//!    spec says to refuse, and rebuilds the whole run the event vectors come from.

use std::collections::BTreeMap;

use amb_bytecode::{Cid, Opcode, Target};
use amb_log::{
    Domain, EffectEvent, Event, Manifest, ManifestError, Op, PublicKey, Signature, SigningKey,
    UnsignedEffect, UnsignedEvent,
};
use amb_tests::reference_blake3::{self, independent_cid, independent_cid_bytes};

/// One fenced vector: `field: value` lines.
type Fields = BTreeMap<String, String>;

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/events.md");
    std::fs::read_to_string(path).expect("spec/events.md is readable")
}

/// Every ```` ```vector-KIND ```` block of the spec.
fn vectors(kind: &str) -> Vec<Fields> {
    spec()
        .split(&format!("```vector-{kind}\n"))
        .skip(1)
        .map(|fenced| {
            let body = fenced.split("```").next().unwrap();
            body.lines()
                .map(|line| {
                    let (field, value) = line.split_once(": ").expect("`field: value` lines");
                    (field.to_string(), value.to_string())
                })
                .collect()
        })
        .collect()
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex")
}

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .get(name)
        .unwrap_or_else(|| panic!("vector without `{name}`: {fields:?}"))
}

/// The items of `[a, b, …]`, `[]` for none.
fn list(text: &str) -> Vec<&str> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not a list: {text}"));
    if inner.is_empty() {
        Vec::new()
    } else {
        inner.split(", ").collect()
    }
}

/// A CBOR writer written from RFC 8949 for the few items the formats use, so the
/// vectors' bytes are checked against their fields without ciborium or serde.
mod cbor {
    use super::independent_cid_bytes;

    /// A head in its shortest form.
    pub(super) fn head(major: u8, n: u64) -> Vec<u8> {
        let m = major << 5;
        match n {
            0..=23 => vec![m | n as u8],
            24..=0xff => vec![m | 24, n as u8],
            0x100..=0xffff => [&[m | 25][..], &(n as u16).to_be_bytes()].concat(),
            0x1_0000..=0xffff_ffff => [&[m | 26][..], &(n as u32).to_be_bytes()].concat(),
            _ => [&[m | 27][..], &n.to_be_bytes()].concat(),
        }
    }

    pub(super) const NULL: u8 = 0xf6;

    pub(super) fn uint(n: u64) -> Vec<u8> {
        head(0, n)
    }

    pub(super) fn bytes(b: &[u8]) -> Vec<u8> {
        [head(2, b.len() as u64), b.to_vec()].concat()
    }

    pub(super) fn text(s: &str) -> Vec<u8> {
        [head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
    }

    pub(super) fn array(items: &[Vec<u8>]) -> Vec<u8> {
        [head(4, items.len() as u64), items.concat()].concat()
    }

    /// Tag 42 over `0x00 ||` the binary CID.
    pub(super) fn link(cid: &str) -> Vec<u8> {
        let binary = independent_cid_bytes(cid).unwrap_or_else(|| panic!("not our CID: {cid}"));
        [head(6, 42), bytes(&[&[0][..], &binary].concat())].concat()
    }

    /// `null`, or what `item` makes of the value.
    pub(super) fn nullable(value: &str, item: impl Fn(&str) -> Vec<u8>) -> Vec<u8> {
        if value == "null" {
            vec![NULL]
        } else {
            item(value)
        }
    }

    /// A target as the vectors write it: `null`, `"name"`, a code, or a CID.
    pub(super) fn target(value: &str) -> Vec<u8> {
        if value == "null" {
            vec![NULL]
        } else if let Some(name) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            text(name)
        } else if value.starts_with('b') {
            link(value)
        } else {
            uint(value.parse().expect("a code"))
        }
    }
}

/// The 8 items a manifest signs, written from its fields.
fn manifest_items(f: &Fields) -> Vec<Vec<u8>> {
    vec![
        cbor::uint(2),
        cbor::link(field(f, "program")),
        cbor::nullable(field(f, "name"), cbor::text),
        cbor::array(
            &list(field(f, "keys"))
                .into_iter()
                .map(|k| cbor::bytes(&unhex(k)))
                .collect::<Vec<_>>(),
        ),
        cbor::bytes(&unhex(field(f, "creator"))),
        cbor::nullable(field(f, "parent"), cbor::link),
        cbor::nullable(field(f, "nonce"), |n| cbor::bytes(&unhex(n))),
        cbor::nullable(field(f, "time"), |t| cbor::uint(t.parse().unwrap())),
    ]
}

/// The 8 items an event signs, written from its fields.
fn event_items(f: &Fields) -> Vec<Vec<u8>> {
    let op = list(field(f, "op"));
    let op = cbor::array(&[cbor::uint(op[0].parse().unwrap()), cbor::target(op[1])]);
    let at = cbor::nullable(field(f, "at"), |at| {
        let at = list(at);
        cbor::array(&[cbor::link(at[0]), cbor::uint(at[1].parse().unwrap())])
    });
    let refs = list(field(f, "refs"))
        .into_iter()
        .map(cbor::link)
        .collect::<Vec<_>>();
    vec![
        cbor::uint(2),
        cbor::link(field(f, "log")),
        cbor::uint(field(f, "seq").parse().unwrap()),
        op,
        at,
        cbor::array(&refs),
        cbor::nullable(field(f, "payload"), cbor::link),
        cbor::bytes(&unhex(field(f, "creator"))),
    ]
}

fn seed() -> [u8; 32] {
    let keys = vectors("key");
    assert_eq!(keys.len(), 1, "one key vector");
    unhex(field(&keys[0], "seed")).try_into().unwrap()
}

/// Everything about a signed vector that needs no `amb-log`: the signing input and
/// encoding rebuilt from the fields, the signature verified and recomputed with
/// `ed25519-compact`, the CID with the reference BLAKE3.
fn check_independently(f: &Fields, domain: &str, items: Vec<Vec<u8>>) {
    let input = unhex(field(f, "signing-input"));
    let sig = unhex(field(f, "sig"));
    let encoding = unhex(field(f, "encoding"));
    let expected_input = [domain.as_bytes(), &[0], &cbor::array(&items)].concat();
    assert_eq!(
        hex::encode(&input),
        hex::encode(&expected_input),
        "signing input"
    );
    let expected_encoding = cbor::array(&[items, vec![cbor::bytes(&sig)]].concat());
    assert_eq!(
        hex::encode(&encoding),
        hex::encode(&expected_encoding),
        "encoding"
    );
    let public = ed25519_compact::PublicKey::from_slice(&unhex(field(f, "creator"))).unwrap();
    let signature = ed25519_compact::Signature::from_slice(&sig).unwrap();
    public
        .verify(&input, &signature)
        .expect("ed25519-compact verifies the signature");
    let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed()));
    assert_eq!(pair.pk, public, "signed by the vector key");
    assert_eq!(
        hex::encode(*pair.sk.sign(&input, None)),
        hex::encode(&sig),
        "deterministic signature recomputed"
    );
    assert_eq!(independent_cid(&encoding), field(f, "cid"), "CID");
}

/// Everything about an unsigned vector (a slice manifest) that needs no `amb-log`:
/// the encoding rebuilt from the fields, the signature null, the CID.
fn check_unsigned_independently(f: &Fields, items: Vec<Vec<u8>>) {
    assert_eq!(field(f, "sig"), "null", "a slice manifest is not signed");
    assert!(!f.contains_key("signing-input"), "nothing is signed");
    let encoding = unhex(field(f, "encoding"));
    let expected_encoding = cbor::array(&[items, vec![vec![cbor::NULL]]].concat());
    assert_eq!(
        hex::encode(&encoding),
        hex::encode(&expected_encoding),
        "encoding"
    );
    assert_eq!(independent_cid(&encoding), field(f, "cid"), "CID");
}

/// What `amb-log` makes of a vector it decoded: the same bytes, CID and signing
/// input, and a valid signature.
fn check_library(f: &Fields, encoding: Vec<u8>, cid: Cid, signing_input: Vec<u8>, valid: bool) {
    assert_eq!(hex::encode(encoding), field(f, "encoding"));
    assert_eq!(cid.to_string(), field(f, "cid"));
    assert_eq!(hex::encode(signing_input), field(f, "signing-input"));
    assert!(valid, "amb-log verifies the signature");
}

fn cid(text: &str) -> Cid {
    text.parse().unwrap()
}

fn public_key(hex: &str) -> PublicKey {
    PublicKey::from_bytes(&unhex(hex).try_into().unwrap()).unwrap()
}

#[test]
fn key_vector() {
    let keys = vectors("key");
    let public = field(&keys[0], "public");
    let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(seed()));
    assert_eq!(hex::encode(*pair.pk), public);
    let key = SigningKey::from_seed(&seed());
    assert_eq!(hex::encode(key.public_key().as_bytes()), public);
}

#[test]
fn manifest_vectors() {
    let manifests = vectors("manifest");
    assert!(
        manifests.len() >= 3,
        "a program manifest, its root log's and a slice's"
    );
    for f in &manifests {
        let manifest = Manifest::decode(&unhex(field(f, "encoding"))).unwrap();
        // Making a manifest of the listed fields gives the same manifest.
        let keys = list(field(f, "keys")).into_iter().map(public_key).collect();
        let name = Some(field(f, "name")).filter(|n| *n != "null");
        let key = SigningKey::from_seed(&seed());
        let made = match field(f, "parent") {
            "null" if field(f, "sig") == "null" => {
                // A root log manifest: derived from the program manifest it names.
                check_unsigned_independently(f, manifest_items(f));
                let program = &manifests[0];
                let program_cid = independent_cid_bytes(field(program, "cid")).unwrap();
                assert_eq!(field(f, "derived-from"), field(program, "cid"));
                let nonce = reference_blake3::derive_key(
                    "amb 2 root log nonce from program address",
                    &program_cid,
                );
                assert_eq!(field(f, "nonce"), hex::encode(&nonce[..16]));
                assert_eq!(
                    amb_log::ROOT_LOG_CONTEXT,
                    "amb 2 root log nonce from program address"
                );
                for same in ["program", "keys", "creator"] {
                    assert_eq!(field(f, same), field(program, same), "{same}");
                }
                assert_eq!(manifest.kind(), amb_log::Kind::RootLog);
                Manifest::decode(&unhex(field(program, "encoding")))
                    .unwrap()
                    .root_log()
                    .unwrap()
            }
            "null" => {
                check_independently(f, "amb-manifest-v2", manifest_items(f));
                check_library(
                    f,
                    manifest.encode(),
                    manifest.cid(),
                    manifest.signing_input(),
                    manifest.verify_signature().is_ok(),
                );
                Manifest::new_root(
                    cid(field(f, "program")),
                    name.map(str::to_string),
                    keys,
                    &key,
                    unhex(field(f, "nonce")).try_into().unwrap(),
                    field(f, "time").parse().unwrap(),
                )
            }
            parent => {
                check_unsigned_independently(f, manifest_items(f));
                assert_eq!(hex::encode(manifest.encode()), field(f, "encoding"));
                assert_eq!(manifest.cid().to_string(), field(f, "cid"));
                assert_eq!(manifest.signature(), None);
                assert_eq!(manifest.verify_signature(), Err(ManifestError::Unsigned));
                Manifest::new_slice(
                    cid(field(f, "program")),
                    name.unwrap().to_string(),
                    keys,
                    key.public_key(),
                    cid(parent),
                )
            }
        };
        assert_eq!(made, manifest);
        // The source compiles to the program.
        if let Some(source) = f.get("source") {
            let compiled = amb_bytecode::compile(&amb_syntax::parse(source).unwrap()).unwrap();
            assert_eq!(compiled.root.to_string(), field(f, "program"));
        }
    }
}

/// An op as the vectors write it.
fn op(text: &str) -> Op {
    let parts = list(text);
    let opcode = Opcode::from_u64(parts[0].parse().unwrap()).unwrap();
    let target = match parts[1] {
        "null" => Target::None,
        "0" if opcode == Opcode::OpenCo => Target::Unused,
        t if t.starts_with('"') => Target::for_name(t.trim_matches('"')),
        t if t.starts_with('b') => Target::Block(cid(t)),
        t => Target::Primitive(amb_bytecode::Primitive::from_u64(t.parse().unwrap()).unwrap()),
    };
    Op::new(opcode, target).unwrap()
}

#[test]
fn event_vectors() {
    let events = vectors("event");
    assert!(events.len() >= 2);
    let key = SigningKey::from_seed(&seed());
    for f in &events {
        check_independently(f, "amb-event-v2", event_items(f));

        let event = Event::decode(&unhex(field(f, "encoding"))).unwrap();
        check_library(
            f,
            event.encode(),
            event.cid(),
            event.signing_input(),
            event.verify_signature().is_ok(),
        );
        let at = Some(field(f, "at")).filter(|a| *a != "null").map(|at| {
            let at = list(at);
            (cid(at[0]), at[1].parse().unwrap())
        });
        let signed = Event::sign(
            UnsignedEvent {
                log: cid(field(f, "log")),
                seq: field(f, "seq").parse().unwrap(),
                op: op(field(f, "op")),
                at,
                refs: list(field(f, "refs")).into_iter().map(cid).collect(),
                payload: Some(field(f, "payload")).filter(|p| *p != "null").map(cid),
            },
            &key,
        );
        assert_eq!(signed, event);
        assert_eq!(event.creator(), &key.public_key());
    }
}

/// The 8 items an effect event signs (`spec/system.md` §6), written from its fields.
fn effect_items(f: &Fields) -> Vec<Vec<u8>> {
    let refs = list(field(f, "refs"))
        .into_iter()
        .map(cbor::link)
        .collect::<Vec<_>>();
    vec![
        cbor::uint(3),
        cbor::link(field(f, "log")),
        cbor::uint(field(f, "seq").parse().unwrap()),
        cbor::text(field(f, "service")),
        cbor::link(field(f, "args")),
        cbor::link(field(f, "result")),
        cbor::array(&refs),
        cbor::bytes(&unhex(field(f, "creator"))),
    ]
}

#[test]
fn effect_vectors() {
    let effects = vectors("effect");
    assert!(!effects.is_empty());
    let key = SigningKey::from_seed(&seed());
    for f in &effects {
        check_independently(f, "amb-event-v3", effect_items(f));
        let effect = EffectEvent::decode(&unhex(field(f, "encoding"))).unwrap();
        check_library(
            f,
            effect.encode(),
            effect.cid(),
            effect.signing_input(),
            effect.verify_signature().is_ok(),
        );
        let signed = EffectEvent::sign(
            UnsignedEffect {
                log: cid(field(f, "log")),
                seq: field(f, "seq").parse().unwrap(),
                service: field(f, "service").to_string(),
                args: cid(field(f, "args")),
                result: cid(field(f, "result")),
                refs: list(field(f, "refs")).into_iter().map(cid).collect(),
            },
            &key,
        );
        assert_eq!(signed, effect);
        assert!(Event::decode(&unhex(field(f, "encoding"))).is_err());
    }
}

#[test]
fn refused_signatures() {
    let refused = vectors("refused");
    assert!(refused.len() >= 2);
    for f in &refused {
        let public: [u8; 32] = unhex(field(f, "public")).try_into().unwrap();
        let input = unhex(field(f, "signing-input"));
        let sig: [u8; 64] = unhex(field(f, "sig")).try_into().unwrap();
        let why = field(f, "why");
        // ed25519-compact refuses it too (as a weak key or a non-canonical S).
        let compact = ed25519_compact::PublicKey::new(public);
        assert!(
            compact
                .verify(&input, &ed25519_compact::Signature::new(sig))
                .is_err(),
            "{why}"
        );
        // amb-log refuses it.
        let payload = input
            .strip_prefix(b"amb-event-v2\0".as_slice())
            .expect("an event signing input");
        let key = PublicKey::from_bytes(&public).expect("a curve point");
        assert!(
            key.verify(Domain::Event, payload, &Signature::from_bytes(sig))
                .is_err(),
            "{why}"
        );
        // The small-order vector is the one plain `verify` accepts.
        if why.contains("small-order") {
            use ed25519_dalek::Verifier as _;
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
            assert!(
                dalek
                    .verify(&input, &ed25519_dalek::Signature::from_bytes(&sig))
                    .is_ok()
            );
        }
    }
}

/// Rebuilds the run of `open a|a[open_]` that the event vectors come from, as §4 of
/// the spec lays it out, and checks the listed events and the CIDs they name.
#[test]
fn the_run_behind_the_event_vectors() {
    let text = spec();
    let manifest = &vectors("manifest")[0];
    let compiled =
        amb_bytecode::compile(&amb_syntax::parse(field(manifest, "source")).unwrap()).unwrap();
    let root = compiled.root;
    let a_block = compiled
        .blocks
        .iter()
        .map(|(cid, _)| *cid)
        .find(|cid| *cid != root)
        .unwrap();
    let key = SigningKey::from_seed(&seed());
    let pk = key.public_key();
    let program = Manifest::decode(&unhex(field(manifest, "encoding"))).unwrap();
    let root_log = program.root_log().unwrap();
    let event = |log, seq, op, at, refs: Vec<Cid>| {
        Event::sign(
            UnsignedEvent {
                log,
                seq,
                op,
                at,
                refs,
                payload: None,
            },
            &key,
        )
    };
    let log = root_log.cid();
    // Root log: create, body deploy, announcing deploy of `a` (instruction 2).
    let e0 = event(
        log,
        0,
        Op::new(Opcode::Create, Target::None).unwrap(),
        None,
        vec![],
    );
    let e1 = event(log, 1, Op::deploy(root), None, vec![e0.cid()]);
    let e2 = event(
        log,
        2,
        Op::deploy(a_block),
        Some((e1.cid(), 2)),
        vec![e1.cid()],
    );
    // `a`'s log: create, body deploy, open_ (instruction 1).
    let slice = Manifest::new_slice(a_block, "a".into(), vec![pk], pk, e2.cid());
    let a = slice.cid();
    let a0 = event(a, 0, op("[0, \"a\"]"), None, vec![e2.cid()]);
    let a1 = event(a, 1, Op::deploy(a_block), None, vec![a0.cid()]);
    let a2 = event(a, 2, op("[7, 0]"), Some((a1.cid(), 1)), vec![a1.cid()]);
    // The step's other half: `open a` (instruction 1) in the root log.
    let e3 = event(
        log,
        3,
        op("[6, \"a\"]"),
        Some((e1.cid(), 1)),
        vec![e2.cid(), a2.cid()],
    );
    let events = vectors("event");
    assert_eq!(
        hex::encode(root_log.encode()),
        field(&vectors("manifest")[1], "encoding")
    );
    assert_eq!(
        hex::encode(slice.encode()),
        field(&vectors("manifest")[2], "encoding")
    );
    assert_eq!(hex::encode(e0.encode()), field(&events[0], "encoding"));
    assert_eq!(hex::encode(e3.encode()), field(&events[1], "encoding"));
    for (what, cid) in [
        ("a block", a_block),
        ("seq 1", e1.cid()),
        ("seq 2", e2.cid()),
        ("a's manifest", slice.cid()),
        ("a seq 0", a0.cid()),
        ("a seq 1", a1.cid()),
        ("a seq 2", a2.cid()),
    ] {
        assert!(
            text.contains(&format!("`{cid}`")),
            "spec/events.md §9 lists {what} as {cid}"
        );
    }
}
