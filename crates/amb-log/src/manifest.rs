//! Manifests (`spec/events.md` §2): which program a log runs and who may write it.
//!
//! ```text
//! manifest = [2, program, name, keys, creator, parent, nonce, time, sig]
//! ```
//!
//! There are three kinds ([`Kind`]):
//!
//! A **program** manifest has `parent` null, carries a random 16-byte `nonce` and the
//! creation `time`, so every deployment is a new program, and is signed by its
//! creator: the signature covers `amb-manifest-v2`, a zero byte, and the canonical
//! CBOR of the first eight items (an array of 8). Its CID is the program's address
//! `/amb/<cid>`, a read capability: it names no log, and no event contains it.
//!
//! The **root log** manifest is derived from the program manifest
//! ([`Manifest::root_log`]): the same program, keys and creator, no name, parent, time
//! or signature, and as `nonce` 16 bytes derived one way from the address (BLAKE3 in
//! key-derivation mode). Its CID is the root log's id. So whoever holds the address
//! computes the root log's id, and whoever holds only events of the root log cannot
//! compute the address.
//!
//! A log's id is its manifest's CID (a root log or a slice manifest).
//!
//! A **slice** manifest names the `deploy` event that announced its ambient instance as
//! `parent`, has no nonce or time, and no signature (`sig` null): its log's first event
//! (the `create`, which names the manifest's CID as its log) is signed by the
//! manifest's `creator`, and that signature covers it. The verifier checks that rule
//! (`amb_vm::replay`), since it needs the log's events.

use amb_bytecode::{
    Cid,
    cbor::{self, Bytes, Framing, Link, ShapeError},
};
use ciborium::Value;
use rand::RngCore;
use serde::{Serialize, Serializer, ser::SerializeTuple};

use crate::keys::{Domain, KeyError, PublicKey, Signature, SignatureError, SigningKey};

/// The manifest format version, the first item of every manifest.
pub const MANIFEST_VERSION: u64 = 2;

/// The BLAKE3 key-derivation context of a root log's nonce (`spec/events.md` §2).
pub const ROOT_LOG_CONTEXT: &str = "amb 2 root log nonce from program address";

/// What a manifest is (`spec/events.md` §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A deployment's signed manifest: its CID is the program address.
    Program,
    /// The root log's manifest, derived from the program manifest.
    RootLog,
    /// A slice's manifest, naming the `deploy` that announced it.
    Slice,
}

/// The largest encoded manifest accepted: 4 MiB.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A manifest. Made by [`Manifest::new_root`], [`Manifest::new_slice`] or
/// [`Manifest::decode`], so its keys are sorted and unique and it is a consistent
/// root (signed) or slice (unsigned); a root's signature is checked only by
/// [`Manifest::verify_signature`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Manifest {
    program: Cid,
    name: Option<String>,
    keys: Vec<PublicKey>,
    creator: PublicKey,
    parent: Option<Cid>,
    nonce: Option<[u8; 16]>,
    time: Option<u64>,
    /// The creator's signature: a root's; `None` for a slice.
    sig: Option<Signature>,
}

/// The CBOR array of a manifest: 8 items without the signature, 9 with it (a slice's
/// ninth item is null).
struct Wire<'a> {
    manifest: &'a Manifest,
    signed: bool,
}

struct Keys<'a>(&'a [PublicKey]);

impl Serialize for Keys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|key| Bytes(key.as_bytes())))
    }
}

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.manifest;
        let mut t = s.serialize_tuple(if self.signed { 9 } else { 8 })?;
        t.serialize_element(&MANIFEST_VERSION)?;
        t.serialize_element(&Link(m.program))?;
        t.serialize_element(&m.name)?;
        t.serialize_element(&Keys(&m.keys))?;
        t.serialize_element(&Bytes(m.creator.as_bytes()))?;
        t.serialize_element(&m.parent.map(Link))?;
        t.serialize_element(&m.nonce.as_ref().map(|n| Bytes(n)))?;
        t.serialize_element(&m.time)?;
        if self.signed {
            t.serialize_element(&m.sig.as_ref().map(|sig| Bytes(sig.as_bytes())))?;
        }
        t.end()
    }
}

impl Manifest {
    /// The program manifest of a new deployment of `program` (the root block's CID):
    /// `keys` may write the root log (sorted and deduplicated here), `signer` signs,
    /// `nonce` should be fresh ([`Manifest::random_nonce`]) and `time` is the
    /// creation time in Unix milliseconds. `name` is an optional label.
    pub fn new_root(
        program: Cid,
        name: Option<String>,
        keys: Vec<PublicKey>,
        signer: &SigningKey,
        nonce: [u8; 16],
        time: u64,
    ) -> Manifest {
        let mut manifest = Manifest::unsigned(
            program,
            name,
            keys,
            signer.public_key(),
            None,
            Some(nonce),
            Some(time),
        );
        manifest.sig = Some(signer.sign(Domain::Manifest, &manifest.unsigned_cbor()));
        manifest
    }

    /// The root log's manifest of this program manifest (`None` for another kind):
    /// the same program, keys and creator; no name, parent, time or signature; as
    /// nonce the first 16 bytes of BLAKE3's key derivation, context
    /// [`ROOT_LOG_CONTEXT`], over the binary CID of this manifest.
    pub fn root_log(&self) -> Option<Manifest> {
        (self.kind() == Kind::Program).then(|| {
            let derived = blake3::derive_key(ROOT_LOG_CONTEXT, &self.cid().to_bytes());
            let mut nonce = [0u8; 16];
            nonce.copy_from_slice(&derived[..16]);
            Manifest::unsigned(
                self.program,
                None,
                self.keys.clone(),
                self.creator,
                None,
                Some(nonce),
                None,
            )
        })
    }

    /// The manifest of a slice: the ambient instance named `name` running `program`
    /// (its block's CID), announced by the `deploy` event `parent`, made by `creator`
    /// (a writer of the announcing event's log, who signs the slice log's first
    /// event). It carries no signature.
    pub fn new_slice(
        program: Cid,
        name: String,
        keys: Vec<PublicKey>,
        creator: PublicKey,
        parent: Cid,
    ) -> Manifest {
        Manifest::unsigned(program, Some(name), keys, creator, Some(parent), None, None)
    }

    fn unsigned(
        program: Cid,
        name: Option<String>,
        mut keys: Vec<PublicKey>,
        creator: PublicKey,
        parent: Option<Cid>,
        nonce: Option<[u8; 16]>,
        time: Option<u64>,
    ) -> Manifest {
        keys.sort_unstable();
        keys.dedup();
        Manifest {
            program,
            name,
            keys,
            creator,
            parent,
            nonce,
            time,
            sig: None,
        }
    }

    /// 16 bytes from the operating system's random source, for a root's nonce.
    pub fn random_nonce() -> [u8; 16] {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        nonce
    }

    /// The CID of the bytecode block the log runs.
    pub fn program(&self) -> Cid {
        self.program
    }

    /// The ambient's name (a slice's), or the root's optional label.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The keys allowed to write the log, sorted by encoding, no duplicates.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Whether `key` may write the log.
    pub fn allows(&self, key: &PublicKey) -> bool {
        self.keys.binary_search(key).is_ok()
    }

    /// The key that made the manifest: a root's signer; for a slice, the signer of
    /// its log's first event.
    pub fn creator(&self) -> &PublicKey {
        &self.creator
    }

    /// The `deploy` event that announced the slice; `None` for the root.
    pub fn parent(&self) -> Option<Cid> {
        self.parent
    }

    /// Whether this is a program manifest or a root log manifest (no parent).
    pub fn is_root(&self) -> bool {
        self.parent.is_none()
    }

    /// Which kind of manifest this is.
    pub fn kind(&self) -> Kind {
        match (self.parent, self.sig) {
            (Some(_), _) => Kind::Slice,
            (None, Some(_)) => Kind::Program,
            (None, None) => Kind::RootLog,
        }
    }

    /// The root's nonce.
    pub fn nonce(&self) -> Option<[u8; 16]> {
        self.nonce
    }

    /// The root's creation time, Unix milliseconds.
    pub fn time(&self) -> Option<u64> {
        self.time
    }

    /// The signature: a root's; `None` for a slice.
    pub fn signature(&self) -> Option<&Signature> {
        self.sig.as_ref()
    }

    fn unsigned_cbor(&self) -> Vec<u8> {
        cbor::to_vec(&Wire {
            manifest: self,
            signed: false,
        })
    }

    /// The canonical encoding, signature included.
    pub fn encode(&self) -> Vec<u8> {
        cbor::to_vec(&Wire {
            manifest: self,
            signed: true,
        })
    }

    /// The manifest's CID: the id of its log (for a program manifest, the address).
    pub fn cid(&self) -> Cid {
        Cid::of(&self.encode())
    }

    /// The bytes a root's signature covers: `amb-manifest-v2`, a zero byte, and the
    /// canonical CBOR of the manifest without its signature (the same layout for a
    /// slice, which is not signed).
    pub fn signing_input(&self) -> Vec<u8> {
        crate::keys::signing_input(Domain::Manifest, &self.unsigned_cbor())
    }

    /// Checks a root's signature with the validity rule (`spec/events.md` §1). A slice
    /// manifest has none ([`ManifestError::Unsigned`]): the signature of its log's
    /// first event covers it.
    pub fn verify_signature(&self) -> Result<(), ManifestError> {
        let sig = self.sig.as_ref().ok_or(ManifestError::Unsigned)?;
        self.creator
            .verify(Domain::Manifest, &self.unsigned_cbor(), sig)
            .map_err(ManifestError::Signature)
    }

    /// Decodes a manifest from untrusted bytes: at most [`MAX_MANIFEST_BYTES`], the
    /// shape of `spec/events.md` §2, keys sorted and unique and all curve points, a
    /// consistent root (parent null; nonce, time and signature present) or slice
    /// (parent, a name; no nonce, time or signature), and exactly the canonical bytes.
    /// Does not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        cbor::decode_canonical(
            bytes,
            MAX_MANIFEST_BYTES,
            manifest_from_value,
            Manifest::encode,
        )
    }
}

fn manifest_from_value(value: Value) -> Result<Manifest, ManifestError> {
    let [
        version,
        program,
        name,
        keys,
        creator,
        parent,
        nonce,
        time,
        sig,
    ] = cbor::expect_array(value, &"manifest")?;
    let version = cbor::expect_uint(&version, &"manifest version")?;
    if version != MANIFEST_VERSION {
        return Err(cbor::shape(
            "manifest version",
            format!("expected {MANIFEST_VERSION}, found {version}"),
        )
        .into());
    }
    let program = cbor::expect_link(&program, &"manifest program")?;
    let name = cbor::nullable(name, |n| cbor::expect_text(n, &"manifest name"))?;
    let keys = cbor::expect_list(keys, &"manifest keys")?
        .iter()
        .enumerate()
        .map(|(index, key)| {
            let bytes = cbor::expect_bytes::<32>(key, &format_args!("manifest keys[{index}]"))?;
            PublicKey::from_bytes(&bytes).map_err(|error| ManifestError::Key { index, error })
        })
        .collect::<Result<Vec<PublicKey>, _>>()?;
    if let Some(index) = keys.windows(2).position(|w| w[0] >= w[1]) {
        return Err(ManifestError::KeysOrder { index: index + 1 });
    }
    let creator = cbor::expect_bytes::<32>(&creator, &"manifest creator")?;
    let creator = PublicKey::from_bytes(&creator).map_err(ManifestError::Creator)?;
    let parent = cbor::nullable(parent, |p| cbor::expect_link(&p, &"manifest parent"))?;
    let nonce = cbor::nullable(nonce, |n| cbor::expect_bytes::<16>(&n, &"manifest nonce"))?;
    let time = cbor::nullable(time, |t| cbor::expect_uint(&t, &"manifest time"))?;
    let sig = cbor::nullable(sig, |s| cbor::expect_bytes::<64>(&s, &"manifest sig"))?
        .map(Signature::from_bytes);
    let problem = match (parent, nonce, time, &sig, &name) {
        (None, Some(_), Some(_), Some(_), _)
        | (None, Some(_), None, None, None)
        | (Some(_), None, None, None, Some(_)) => None,
        (None, ..) => Some(
            "a manifest without parent is a program manifest (nonce, time, signature) or a root log manifest (nonce; no name, time or signature)",
        ),
        (Some(_), None, None, None, None) => {
            Some("a slice manifest (with a parent) names its ambient")
        }
        (Some(_), ..) => {
            Some("a slice manifest (with a parent) has no nonce, no time and no signature")
        }
    };
    if let Some(problem) = problem {
        return Err(ManifestError::RootOrSlice { problem });
    }
    Ok(Manifest {
        program,
        name,
        keys,
        creator,
        parent,
        nonce,
        time,
        sig,
    })
}

/// Why bytes are not a valid manifest, or a manifest's signature is not valid.
/// [`ManifestError::rule`] names the broken rule as for events (`cbor` or
/// `signature`); a verifier reports a bad log manifest under rule `log-id`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Too large, not one CBOR item, or not the canonical encoding (rule `cbor`).
    #[error(transparent)]
    Framing(#[from] Framing),
    /// CBOR of the wrong shape.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A listed key that is not a curve point.
    #[error("manifest keys[{index}]: {error}")]
    Key {
        /// Its position in `keys`.
        index: usize,
        /// Why.
        error: KeyError,
    },
    /// Keys not sorted, or repeated.
    #[error(
        "manifest keys[{index}] is not greater than keys[{}]: keys are sorted, without duplicates",
        index - 1
    )]
    KeysOrder {
        /// The first key not greater than the one before it (at least 1).
        index: usize,
    },
    /// Neither a consistent root nor a consistent slice.
    #[error("{problem}")]
    RootOrSlice {
        /// What is inconsistent.
        problem: &'static str,
    },
    /// The creator is not a curve point, so nothing it signs is valid.
    #[error("manifest creator: {0}")]
    Creator(KeyError),
    /// The validity rule (`spec/events.md` §1) refuses the signature.
    #[error("{0}")]
    Signature(SignatureError),
    /// A slice manifest has no signature of its own to check.
    #[error(
        "a slice manifest carries no signature: its log's first event, signed by its creator, covers it"
    )]
    Unsigned,
}

impl ManifestError {
    /// The rule broken: `cbor` (encoding and shape) or `signature`.
    pub fn rule(&self) -> &'static str {
        match self {
            ManifestError::Creator(_) | ManifestError::Signature(_) | ManifestError::Unsigned => {
                "signature"
            }
            ManifestError::Framing(_)
            | ManifestError::Shape(_)
            | ManifestError::Key { .. }
            | ManifestError::KeysOrder { .. }
            | ManifestError::RootOrSlice { .. } => "cbor",
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::keys::{
        assert_signing_layout, plain_verify_accepts, signing_input, small_order_forgery,
    };

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32])
    }

    fn root() -> Manifest {
        Manifest::new_root(
            Cid::of(b"program"),
            None,
            vec![
                key(2).public_key(),
                key(1).public_key(),
                key(2).public_key(),
            ],
            &key(1),
            [9; 16],
            1_700_000_000_000,
        )
    }

    fn slice() -> Manifest {
        Manifest::new_slice(
            Cid::of(b"block"),
            "a".into(),
            vec![key(1).public_key()],
            key(1).public_key(),
            Cid::of(b"deploy"),
        )
    }

    fn unhex(text: &str) -> Vec<u8> {
        hex::decode(text.split_whitespace().collect::<String>()).unwrap()
    }

    fn items(manifest: &Manifest) -> Vec<String> {
        let Value::Array(items) = cbor::read_item(&manifest.encode()).unwrap() else {
            unreachable!()
        };
        items.iter().map(|v| hex::encode(cbor::to_vec(v))).collect()
    }

    fn with(manifest: &Manifest, changes: &[(usize, &str)]) -> Result<Manifest, ManifestError> {
        let mut items = items(manifest);
        for (index, item) in changes {
            items[*index] = (*item).into();
        }
        let mut bytes = vec![0x80 + items.len() as u8];
        for item in &items {
            bytes.extend(unhex(item));
        }
        Manifest::decode(&bytes)
    }

    fn key_hex(key: &PublicKey) -> String {
        format!("5820{}", hex::encode(key.as_bytes()))
    }

    #[test]
    fn the_root_log_manifest_is_derived_one_way_from_the_address() {
        let program = root();
        let root_log = program.root_log().expect("a program manifest derives one");
        assert_eq!(program.kind(), Kind::Program);
        assert_eq!(root_log.kind(), Kind::RootLog);
        assert_eq!(slice().kind(), Kind::Slice);
        // Same program, keys and creator; nothing that names the program manifest.
        assert_eq!(root_log.program(), program.program());
        assert_eq!(root_log.keys(), program.keys());
        assert_eq!(root_log.creator(), program.creator());
        assert_eq!(
            (root_log.name(), root_log.parent(), root_log.time()),
            (None, None, None)
        );
        assert_eq!(root_log.signature(), None);
        let derived = blake3::derive_key(ROOT_LOG_CONTEXT, &program.cid().to_bytes());
        assert_eq!(root_log.nonce().unwrap()[..], derived[..16]);
        assert!(
            !root_log
                .encode()
                .windows(32)
                .any(|w| w == program.cid().digest()),
            "the root log manifest does not contain the address"
        );
        assert_ne!(root_log.cid(), program.cid());
        // It round-trips, derives nothing further, and another deployment of the
        // same program (another nonce) has another root log.
        assert_eq!(Manifest::decode(&root_log.encode()), Ok(root_log.clone()));
        assert_eq!(root_log.root_log(), None);
        assert_eq!(slice().root_log(), None);
        let other = Manifest::new_root(
            program.program(),
            None,
            program.keys().to_vec(),
            &key(1),
            [8; 16],
            1_700_000_000_000,
        );
        assert_ne!(other.root_log().unwrap().cid(), root_log.cid());
        // A root log manifest with a name, a time or a signature is refused.
        for change in [(2, "6161"), (7, "01")] {
            assert!(
                matches!(
                    with(&root_log, &[change]),
                    Err(ManifestError::RootOrSlice { .. })
                ),
                "{change:?}"
            );
        }
    }

    #[test]
    fn root_and_slice_round_trip_and_verify() {
        for manifest in [root(), slice()] {
            let bytes = manifest.encode();
            assert_eq!(Manifest::decode(&bytes), Ok(manifest.clone()));
            assert_eq!(manifest.cid(), Cid::of(&bytes));
        }
        let bytes = root().encode();
        assert_eq!(root().verify_signature(), Ok(()));
        assert_signing_layout(Domain::Manifest, &root().signing_input(), &bytes);
        // A slice's encoding ends with a null signature; it has nothing to verify.
        let bytes = slice().encode();
        assert_eq!((bytes[0], bytes[bytes.len() - 1]), (0x89, 0xf6));
        assert_eq!(slice().signature(), None);
        assert_eq!(slice().verify_signature(), Err(ManifestError::Unsigned));
        assert_eq!(ManifestError::Unsigned.rule(), "signature");
        let mut input = signing_input(Domain::Manifest, &[0x88]);
        input.extend_from_slice(&bytes[1..bytes.len() - 1]);
        assert_eq!(slice().signing_input(), input);
        let root = root();
        assert!(root.is_root());
        assert_eq!(root.keys().len(), 2, "deduplicated");
        assert!(root.keys()[0] < root.keys()[1], "sorted");
        assert!(root.allows(&key(2).public_key()));
        assert!(!root.allows(&key(3).public_key()));
        assert_eq!(root.nonce(), Some([9; 16]));
        assert_eq!(root.time(), Some(1_700_000_000_000));
        let slice = slice();
        assert!(!slice.is_root());
        assert_eq!(slice.name(), Some("a"));
        assert_eq!(slice.parent(), Some(Cid::of(b"deploy")));
        assert_ne!(Manifest::random_nonce(), Manifest::random_nonce());
    }

    #[test]
    fn every_decode_error_names_its_rule() {
        let root = root();
        let slice = slice();
        let keys = root.keys().to_vec();
        let deploy = hex::encode(cbor::to_vec(&Link(Cid::of(b"deploy"))));
        let not_a_point = format!("5820{}", "02".to_string() + &"00".repeat(31));
        let cases: Vec<(Result<Manifest, ManifestError>, &str, &str)> = vec![
            (Manifest::decode(b""), "not well-formed CBOR", "cbor"),
            (
                Manifest::decode(&unhex("820101")),
                "manifest: expected 9 items, found 2",
                "cbor",
            ),
            (
                Manifest::decode(&unhex("01")),
                "manifest: expected an array, found integer 1",
                "cbor",
            ),
            (
                with(&root, &[(0, "00")]),
                "manifest version: expected 2, found 0",
                "cbor",
            ),
            (
                with(&root, &[(1, "f6")]),
                "manifest program: expected a CID link",
                "cbor",
            ),
            (
                with(&root, &[(2, "01")]),
                "manifest name: expected text, found integer 1",
                "cbor",
            ),
            (
                with(&root, &[(3, "f6")]),
                "manifest keys: expected an array, found null",
                "cbor",
            ),
            (
                with(&root, &[(3, "8101")]),
                "manifest keys[0]: expected a byte string of 32",
                "cbor",
            ),
            (
                with(&root, &[(3, &format!("81{not_a_point}"))]),
                "manifest keys[0]: not an Ed25519 public key",
                "cbor",
            ),
            (
                with(
                    &root,
                    &[(3, &format!("82{}{}", key_hex(&keys[1]), key_hex(&keys[0])))],
                ),
                "manifest keys[1] is not greater than keys[0]",
                "cbor",
            ),
            (
                with(&root, &[(3, &format!("82{0}{0}", key_hex(&keys[0])))]),
                "manifest keys[1] is not greater than keys[0]",
                "cbor",
            ),
            (
                with(&root, &[(4, "4100")]),
                "manifest creator: expected a byte string of 32",
                "cbor",
            ),
            (
                with(&root, &[(4, &not_a_point)]),
                "manifest creator: not an Ed25519 public key",
                "signature",
            ),
            (
                with(&root, &[(5, "6161")]),
                "manifest parent: expected a CID link",
                "cbor",
            ),
            (
                with(&root, &[(6, "4100")]),
                "manifest nonce: expected a byte string of 16",
                "cbor",
            ),
            (
                with(&root, &[(7, "20")]),
                "manifest time: expected an unsigned integer",
                "cbor",
            ),
            (with(&root, &[(8, "5820")]), "not well-formed CBOR", "cbor"),
            (
                with(&root, &[(8, "4100")]),
                "manifest sig: expected a byte string of 64",
                "cbor",
            ),
            (
                with(&root, &[(8, "f6")]),
                "a manifest without parent is a program manifest (nonce, time, signature) or a root log manifest (nonce; no name, time or signature)",
                "cbor",
            ),
            (
                with(&root, &[(6, "f6")]),
                "a manifest without parent is a program manifest (nonce, time, signature) or a root log manifest (nonce; no name, time or signature)",
                "cbor",
            ),
            (
                with(&root, &[(7, "f6")]),
                "a manifest without parent is a program manifest (nonce, time, signature) or a root log manifest (nonce; no name, time or signature)",
                "cbor",
            ),
            (
                with(&root, &[(5, &deploy)]),
                "a slice manifest (with a parent) has no nonce, no time and no signature",
                "cbor",
            ),
            (
                with(&slice, &[(7, "01")]),
                "a slice manifest (with a parent) has no nonce, no time and no signature",
                "cbor",
            ),
            (
                with(&slice, &[(8, &format!("5840{}", "00".repeat(64)))]),
                "a slice manifest (with a parent) has no nonce, no time and no signature",
                "cbor",
            ),
            (
                with(&slice, &[(2, "f6")]),
                "a slice manifest (with a parent) names its ambient",
                "cbor",
            ),
            // Non-canonical: the keys' length as a 1-byte integer, the version as a
            // 2-byte one, the name as indefinite text, the keys as an indefinite array.
            (
                with(
                    &root,
                    &[(
                        3,
                        &format!("9802{}{}", key_hex(&keys[0]), key_hex(&keys[1])),
                    )],
                ),
                "not the canonical encoding",
                "cbor",
            ),
            (
                with(&root, &[(0, "1802")]),
                "not the canonical encoding",
                "cbor",
            ),
            (
                with(&slice, &[(2, "7f6161ff")]),
                "not the canonical encoding",
                "cbor",
            ),
            (
                with(
                    &slice,
                    &[(3, &format!("9f{}ff", key_hex(&slice.keys()[0])))],
                ),
                "not the canonical encoding",
                "cbor",
            ),
        ];
        for (result, expected, rule) in cases {
            let error = result.expect_err(expected);
            assert!(
                error.to_string().contains(expected),
                "{error} does not say {expected:?}"
            );
            assert_eq!(error.rule(), rule, "{error}");
        }
        let mut bytes = root.encode();
        bytes.push(0xf6);
        assert!(matches!(
            Manifest::decode(&bytes),
            Err(ManifestError::Framing(Framing::Cbor(_)))
        ));
        assert!(matches!(
            Manifest::decode(&vec![0; MAX_MANIFEST_BYTES + 1]),
            Err(ManifestError::Framing(Framing::TooLarge { .. }))
        ));
    }

    #[test]
    fn signature_failures() {
        let manifest = root();
        let bytes = manifest.encode();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            if let Ok(changed) = Manifest::decode(&flipped) {
                assert_eq!(
                    changed.verify_signature().unwrap_err().rule(),
                    "signature",
                    "bit {bit}"
                );
            }
        }
        // Signed by another key than the creator it names.
        let mut forged = manifest.clone();
        forged.sig = Some(key(2).sign(Domain::Manifest, &manifest.unsigned_cbor()));
        assert_eq!(
            forged.verify_signature(),
            Err(ManifestError::Signature(SignatureError))
        );
        // An event-domain signature over the same bytes.
        let mut cross = manifest.clone();
        cross.sig = Some(key(1).sign(Domain::Event, &manifest.unsigned_cbor()));
        assert!(cross.verify_signature().is_err());
        // The small-order forgery that plain `verify` accepts on any message.
        let (creator, sig) = small_order_forgery();
        let mut weak = manifest;
        weak.creator = creator;
        weak.sig = Some(sig);
        let weak = Manifest::decode(&weak.encode()).unwrap();
        assert!(plain_verify_accepts(&creator, &weak.signing_input(), &sig));
        assert_eq!(
            weak.verify_signature(),
            Err(ManifestError::Signature(SignatureError))
        );
    }

    fn arb_manifest() -> impl Strategy<Value = Manifest> {
        let cid = || any::<[u8; 32]>().prop_map(Cid::from_digest);
        (
            cid(),
            proptest::option::of(".{0,10}"),
            proptest::collection::vec(any::<u8>(), 0..5),
            1u8..=255,
            proptest::option::of(cid()),
            any::<[u8; 16]>(),
            any::<u64>(),
        )
            .prop_map(|(program, name, keys, signer, parent, nonce, time)| {
                let keys = keys.into_iter().map(|n| key(n).public_key()).collect();
                match parent {
                    None => Manifest::new_root(program, name, keys, &key(signer), nonce, time),
                    Some(parent) => Manifest::new_slice(
                        program,
                        name.unwrap_or_default(),
                        keys,
                        key(signer).public_key(),
                        parent,
                    ),
                }
            })
    }

    proptest! {
        #[test]
        fn decode_encode_round_trips(manifest in arb_manifest()) {
            let bytes = manifest.encode();
            prop_assert_eq!(Manifest::decode(&bytes), Ok(manifest.clone()));
            let verified = manifest.verify_signature();
            if manifest.is_root() {
                prop_assert_eq!(verified, Ok(()));
            } else {
                prop_assert_eq!(verified, Err(ManifestError::Unsigned));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(manifest) = Manifest::decode(&bytes) {
                prop_assert_eq!(manifest.encode(), bytes);
            }
        }
    }
}
