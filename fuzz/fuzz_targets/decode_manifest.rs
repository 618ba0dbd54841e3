//! Decodes arbitrary bytes as a manifest (`Manifest::decode`). Errors are fine; panics
//! are bugs. Two paths run on every input.
//!
//! **Raw**: the input itself is decoded. What decodes must re-encode to exactly the
//! input bytes (only the canonical DAG-CBOR is accepted), have the CID of those bytes,
//! keys strictly increasing by encoding, each re-reading to itself and `allows`ed,
//! be a consistent root (no parent; nonce, time and signature) or slice (parent and
//! name; no nonce, time or signature), and have a signing input laid out as
//! `spec/events.md` §9 says (the domain, a zero byte, `0x88`, then the encoding's items
//! without the trailing `58 40` signature, or a slice's trailing null). The input with
//! a byte appended or its last byte removed is refused. Every accessor, `Debug` and
//! `verify_signature` run; a verification error is rule `signature` (a slice's always
//! `Unsigned`), and a signature that verifies does not verify in the event domain.
//!
//! **Structured**: the input's bytes choose a valid root or slice manifest (fields,
//! integer widths, keys from a pool of four fixed keys and arbitrary curve points,
//! one of the four as signer or creator), which is made (a root signed), encoded,
//! decoded back and verified.
//! Then:
//!
//! - one byte of the encoding is changed, removed or inserted at a position the input
//!   chooses; the result is refused, or decodes to a manifest that re-encodes to
//!   exactly the mutated bytes (all raw checks above) and fails `verify_signature`. A
//!   changed byte of a root's signature always decodes, with the same signed fields;
//! - for a root, on half of the inputs (signing is what costs), one signed field
//!   (program, name, keys, creator, nonce, time) is changed: the changed manifest,
//!   with the original signature spliced in, decodes and fails `verify_signature`.

#![no_main]

use std::sync::LazyLock;

use amb_bytecode::Cid;
use amb_log::{Domain, Manifest, ManifestError, PublicKey, SigningKey, signing_input};
use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};

/// Length of the encoded signature at the end of an encoding: `58 40` and 64 bytes.
const SIG_ITEM: usize = 66;

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
    match Manifest::decode(data) {
        Ok(manifest) => {
            let _ = check_manifest(&manifest, data, true);
            let mut longer = data.to_vec();
            longer.push(0);
            assert!(
                Manifest::decode(&longer).is_err(),
                "accepted a trailing byte"
            );
            assert!(
                Manifest::decode(&data[..data.len() - 1]).is_err(),
                "accepted a truncated manifest"
            );
        }
        Err(error) => check_error(&error),
    }
    let _ = structured(data);
});

fn check_error(error: &ManifestError) {
    let _ = error.to_string();
    assert!(matches!(error.rule(), "cbor" | "signature"), "{error:?}");
}

/// The checks of any decoded manifest against the bytes it was decoded from; returns
/// what `verify_signature` said.
fn check_manifest(
    manifest: &Manifest,
    bytes: &[u8],
    raw: bool,
) -> std::result::Result<(), ManifestError> {
    assert_eq!(
        manifest.encode(),
        bytes,
        "a decoded manifest re-encodes to other bytes: {manifest:?}"
    );
    assert_eq!(
        manifest.cid(),
        Cid::of(bytes),
        "CID is not the CID of the bytes"
    );

    let _ = manifest.program();
    let name = manifest.name();
    let keys = manifest.keys();
    for pair in keys.windows(2) {
        assert!(pair[0] < pair[1], "keys not strictly increasing");
        assert!(pair[0].as_bytes() < pair[1].as_bytes());
    }
    for key in keys {
        assert_eq!(PublicKey::from_bytes(key.as_bytes()).as_ref(), Ok(key));
        assert!(manifest.allows(key), "a listed key is not allowed");
    }
    let creator = manifest.creator();
    assert_eq!(
        PublicKey::from_bytes(creator.as_bytes()).as_ref(),
        Ok(creator)
    );
    assert_eq!(manifest.allows(creator), keys.contains(creator));
    assert_eq!(manifest.is_root(), manifest.parent().is_none());
    let (nonce, time) = (manifest.nonce(), manifest.time());
    if manifest.is_root() {
        assert!(
            nonce.is_some() && time.is_some(),
            "a root without nonce or time"
        );
    } else {
        assert!(name.is_some(), "a slice without a name");
        assert!(
            nonce.is_none() && time.is_none(),
            "a slice with a nonce or time"
        );
    }
    if raw {
        let _ = creator.to_string();
        let _ = format!("{manifest:?}");
    }

    // The layout of §9: header 0x89, a root's signature last as `58 40` and 64 bytes
    // (a slice's null), and the signing input the same items under header 0x88.
    assert_eq!(bytes[0], 0x89);
    let unsigned = match manifest.signature() {
        Some(sig) => {
            assert!(bytes.len() > SIG_ITEM);
            let unsigned = bytes.len() - SIG_ITEM;
            assert_eq!(bytes[unsigned..unsigned + 2], [0x58, 0x40]);
            assert_eq!(&bytes[unsigned + 2..], sig.as_bytes());
            unsigned
        }
        None => {
            assert_eq!(bytes[bytes.len() - 1], 0xf6, "a slice's signature is null");
            assert_eq!(
                manifest.verify_signature(),
                Err(ManifestError::Unsigned),
                "a slice manifest has no signature to verify"
            );
            return Err(ManifestError::Unsigned);
        }
    };
    let mut payload = vec![0x88];
    payload.extend_from_slice(&bytes[1..unsigned]);
    assert_eq!(
        manifest.signing_input(),
        signing_input(Domain::Manifest, &payload)
    );

    let verified = manifest.verify_signature();
    match &verified {
        Ok(()) if raw => assert!(
            creator
                .verify(
                    Domain::Event,
                    &payload,
                    manifest.signature().expect("a root")
                )
                .is_err(),
            "a manifest signature verifies in the event domain"
        ),
        Ok(()) => {}
        Err(error) => {
            check_error(error);
            assert!(matches!(error, ManifestError::Signature(_)), "{error:?}");
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
    Ok(if u.arbitrary()? {
        Cid::of(&[u.int_in_range(0..=7)?])
    } else {
        Cid::from_digest(u.arbitrary()?)
    })
}

fn name(u: &mut Unstructured) -> Result<Option<String>> {
    if u.ratio(1, 4)? {
        return Ok(None);
    }
    let len = u.int_in_range(0..=40)?;
    let mut name = String::new();
    for _ in 0..len {
        name.push(u.arbitrary()?);
    }
    Ok(Some(name))
}

/// Keys from the pool (so they repeat and need sorting) or arbitrary curve points
/// (small-order ones included).
fn keys(u: &mut Unstructured) -> Result<Vec<PublicKey>> {
    let count = u.int_in_range(0..=5)?;
    let mut keys = Vec::new();
    for _ in 0..count {
        if u.ratio(3, 4)? {
            keys.push(KEYS[u.choose_index(KEYS.len())?].public_key());
        } else if let Ok(key) = PublicKey::from_bytes(&u.arbitrary()?) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// What the structured path builds.
#[derive(Clone)]
struct Spec {
    root: bool,
    program: Cid,
    name: Option<String>,
    keys: Vec<PublicKey>,
    signer: usize,
    parent: Cid,
    nonce: [u8; 16],
    time: u64,
}

impl Spec {
    fn arbitrary(u: &mut Unstructured) -> Result<Spec> {
        Ok(Spec {
            root: u.arbitrary()?,
            program: cid(u)?,
            name: name(u)?,
            keys: keys(u)?,
            signer: u.choose_index(KEYS.len())?,
            parent: cid(u)?,
            nonce: u.arbitrary()?,
            time: int(u)?,
        })
    }

    fn build(&self) -> Manifest {
        let signer = &KEYS[self.signer];
        if self.root {
            Manifest::new_root(
                self.program,
                self.name.clone(),
                self.keys.clone(),
                signer,
                self.nonce,
                self.time,
            )
        } else {
            Manifest::new_slice(
                self.program,
                self.name.clone().unwrap_or_default(),
                self.keys.clone(),
                signer.public_key(),
                self.parent,
            )
        }
    }
}

fn structured(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    // The mutation first, so its bytes stay in place whatever the manifest takes.
    let mutation = u.int_in_range(0..=3)?;
    let position: u16 = u.arbitrary()?;
    let value: u8 = u.arbitrary()?;
    // 0-5: the signed field to change; 6-11: none (signing costs: half the inputs).
    let field = u.int_in_range(0..=11)?;
    let spec = Spec::arbitrary(&mut u)?;

    let manifest = spec.build();
    let bytes = manifest.encode();
    let mut sorted = spec.keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(manifest.keys(), sorted, "keys not sorted and deduplicated");
    assert_eq!(manifest.creator(), &KEYS[spec.signer].public_key());
    assert_eq!(manifest.is_root(), spec.root);
    assert_eq!(
        Manifest::decode(&bytes).as_ref(),
        Ok(&manifest),
        "a signed manifest does not decode to itself"
    );
    let expected = if spec.root {
        Ok(())
    } else {
        Err(ManifestError::Unsigned)
    };
    assert_eq!(
        check_manifest(&manifest, &bytes, false),
        expected,
        "a valid manifest fails"
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
    let decoded = Manifest::decode(&mutated);
    match &decoded {
        Err(error) => check_error(error),
        Ok(changed) => {
            assert_ne!(changed, &manifest);
            let verified = check_manifest(changed, &mutated, false);
            assert!(
                verified.is_err(),
                "a mutated manifest verifies: byte {position}, mutation {mutation}, value {value}"
            );
        }
    }
    if spec.root && mutation <= 1 && position >= bytes.len() - 64 {
        let changed = decoded.expect("any 64 bytes are a signature");
        assert_eq!(changed.signing_input(), manifest.signing_input());
    }

    // One signed field of a root changed, the original signature kept.
    if field > 5 || !spec.root {
        return Ok(());
    }
    let signature = manifest.signature().expect("a root is signed");
    let mut other = spec.clone();
    match field {
        0 => other.program = cid(&mut u)?,
        1 => other.name = name(&mut u)?,
        2 => other.keys = keys(&mut u)?,
        3 => other.signer = u.choose_index(KEYS.len())?,
        4 => other.nonce = u.arbitrary()?,
        _ => other.time = int(&mut u)?,
    }
    let resigned = other.build();
    if resigned.signing_input() == manifest.signing_input() {
        return Ok(());
    }
    let mut spliced = resigned.encode();
    let sig_at = spliced.len() - 64;
    spliced[sig_at..].copy_from_slice(signature.as_bytes());
    let changed = Manifest::decode(&spliced).expect("a valid manifest with another signature");
    assert_eq!(changed.signature(), Some(signature));
    assert!(
        check_manifest(&changed, &spliced, false).is_err(),
        "field {field} changed and the signature still verifies"
    );
    Ok(())
}
