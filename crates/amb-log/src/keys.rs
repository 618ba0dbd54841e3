//! Ed25519 keys and signatures (`spec/events.md` §1).
//!
//! A public key is its 32-byte encoding, a signature 64 bytes. **The one validity
//! rule**: a signature is valid exactly when its public key is not of small order and
//! the ZIP-215 rule accepts it (`ed25519-zebra`: `S` canonical, `A` and `R` any
//! encodings of curve points, the cofactored equation `[8][S]B = [8]R + [8][k]A`).
//! ZIP-215 makes batch and single verification agree, so [`PublicKey::verify`] checks
//! one signature and [`BatchVerifier`] many with the same answer; every code path goes
//! through one of the two.
//!
//! Every signature is domain-separated: the signed bytes are the ASCII name of the
//! [`Domain`], a zero byte, then the payload (the canonical CBOR of the object without
//! its signature), so a manifest's signature can never pass for an event's.

use std::fmt;

use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};

/// What a signature is for: the first bytes of every signing input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Events: `amb-event-v2`.
    Event,
    /// Manifests: `amb-manifest-v2`.
    Manifest,
    /// Effect events (`spec/system.md` §6): `amb-event-v3`.
    Effect,
}

impl Domain {
    /// The ASCII domain name.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Event => "amb-event-v2",
            Domain::Manifest => "amb-manifest-v2",
            Domain::Effect => "amb-event-v3",
        }
    }
}

/// The bytes that are signed: the domain name, a zero byte, then `payload`.
pub fn signing_input(domain: Domain, payload: &[u8]) -> Vec<u8> {
    let name = domain.name().as_bytes();
    let mut input = Vec::with_capacity(name.len() + 1 + payload.len());
    input.extend_from_slice(name);
    input.push(0);
    input.extend_from_slice(payload);
    input
}

/// A signature: 64 bytes (`R || S`), not checked until verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// A signature from its bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Signature {
        Signature(bytes)
    }

    /// The 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// The 64 bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

/// A public key: a point of the Ed25519 curve, kept with its 32-byte encoding.
///
/// Ordered (and deduplicated in manifests) by its encoding. Any 32 bytes that decode
/// to a curve point are a `PublicKey`, including small-order points: those can be
/// listed but never sign anything, since the validity rule refuses them.
#[derive(Clone, Copy)]
pub struct PublicKey {
    key: ed25519_zebra::VerificationKey,
    small_order: bool,
}

impl PublicKey {
    /// The key encoded by `bytes`, or an error if they are not a curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        // Decompressing a point costs about a fifth of a signature check, and a log's
        // events all carry the same few keys: keep the last ones decompressed.
        thread_local! {
            static RECENT: std::cell::RefCell<std::collections::HashMap<[u8; 32], PublicKey>> =
                std::cell::RefCell::default();
        }
        if let Some(key) = RECENT.with(|r| r.borrow().get(bytes).copied()) {
            return Ok(key);
        }
        let point =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::NotAPoint)?;
        let key = PublicKey {
            key: ed25519_zebra::VerificationKey::try_from(*bytes)
                .map_err(|_| KeyError::NotAPoint)?,
            small_order: point.is_weak(),
        };
        RECENT.with(|r| {
            let mut recent = r.borrow_mut();
            if recent.len() >= 1024 {
                recent.clear();
            }
            recent.insert(*bytes, key);
        });
        Ok(key)
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        *self.as_bytes()
    }

    /// The 32-byte encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key
            .as_ref()
            .try_into()
            .expect("a verification key is 32 bytes")
    }

    /// Whether the key is a point of small order (one that signs nothing).
    pub fn is_small_order(&self) -> bool {
        self.small_order
    }

    /// Checks `sig` over `message` as given (no domain), under the protocol's one
    /// signature validity rule (`spec/events.md` §1): the `sys_verify` service
    /// (`spec/system.md` §1).
    pub fn verify_message(&self, message: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        if self.small_order {
            return Err(SignatureError);
        }
        self.key
            .verify(&ed25519_zebra::Signature::from_bytes(&sig.0), message)
            .map_err(|_| SignatureError)
    }

    /// Checks `sig` over [`signing_input`]`(domain, payload)`: the protocol's one
    /// signature validity rule (`spec/events.md` §1).
    pub fn verify(
        &self,
        domain: Domain,
        payload: &[u8],
        sig: &Signature,
    ) -> Result<(), SignatureError> {
        if self.small_order {
            return Err(SignatureError);
        }
        self.key
            .verify(
                &ed25519_zebra::Signature::from_bytes(&sig.0),
                &signing_input(domain, payload),
            )
            .map_err(|_| SignatureError)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &PublicKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &PublicKey) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        write_hex(f, self.as_bytes())?;
        f.write_str(")")
    }
}

impl fmt::Display for PublicKey {
    /// Lower-case hex of the 32 bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.as_bytes())
    }
}

/// Checks many signatures at once, with the same answer as checking each with
/// [`PublicKey::verify`] (ZIP-215 makes the batch equation and the single one agree;
/// small-order keys are refused before queuing). Signatures by one key share one term
/// of the batch equation, so a batch of a single writer's events costs about a fifth
/// of checking them one by one.
///
/// A refused batch says only that some signature is invalid: to name it, check the
/// batch's signatures one by one ([`PublicKey::verify`]).
pub struct BatchVerifier {
    batch: ed25519_zebra::batch::Verifier,
    /// Signatures queued.
    len: usize,
    /// Whether a queued key is of small order (the batch is refused).
    refused: bool,
}

impl Default for BatchVerifier {
    fn default() -> BatchVerifier {
        BatchVerifier::new()
    }
}

impl fmt::Debug for BatchVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchVerifier")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl BatchVerifier {
    /// An empty batch.
    pub fn new() -> BatchVerifier {
        BatchVerifier {
            batch: ed25519_zebra::batch::Verifier::new(),
            len: 0,
            refused: false,
        }
    }

    /// Adds `sig` by `key` over [`signing_input`]`(domain, payload)`.
    pub fn queue(&mut self, key: &PublicKey, domain: Domain, payload: &[u8], sig: &Signature) {
        self.refused |= key.small_order;
        self.batch.queue((
            ed25519_zebra::VerificationKeyBytes::from(key.to_bytes()),
            ed25519_zebra::Signature::from_bytes(&sig.0),
            &signing_input(domain, payload),
        ));
        self.len += 1;
    }

    /// Signatures queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every queued signature is valid. The batch equation's coefficients come
    /// from the thread's cryptographic random generator.
    pub fn verify(self) -> Result<(), SignatureError> {
        if self.refused {
            return Err(SignatureError);
        }
        self.batch
            .verify(rand::thread_rng())
            .map_err(|_| SignatureError)
    }
}

/// A signing key: the 32-byte secret seed of RFC 8032, its expansion (the secret
/// scalar and nonce prefix) and its public key, both computed once. Its `Debug`
/// shows only the public key.
pub struct SigningKey {
    seed: ed25519_dalek::SigningKey,
    expanded: ExpandedSecretKey,
    public: PublicKey,
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> SigningKey {
        SigningKey::of(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key of a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey::of(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    fn of(seed: ed25519_dalek::SigningKey) -> SigningKey {
        let expanded = ExpandedSecretKey::from(seed.as_bytes());
        let public = PublicKey::from_bytes(seed.verifying_key().as_bytes())
            .expect("a signing key's public key is a curve point");
        SigningKey {
            seed,
            expanded,
            public,
        }
    }

    /// The 32-byte secret seed. Keep it secret.
    pub fn to_seed(&self) -> [u8; 32] {
        self.seed.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs [`signing_input`]`(domain, payload)` (deterministic, RFC 8032).
    pub fn sign(&self, domain: Domain, payload: &[u8]) -> Signature {
        self.sign_message(&signing_input(domain, payload))
    }

    /// Signs `message` as given, with no domain (deterministic, RFC 8032): what
    /// [`PublicKey::verify_message`] checks.
    pub fn sign_message(&self, message: &[u8]) -> Signature {
        let signature =
            raw_sign::<sha2::Sha512>(&self.expanded, message, &self.seed.verifying_key());
        Signature(signature.to_bytes())
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> SigningKey {
        SigningKey::of(self.seed.clone())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey {{ public: {} }}", self.public_key())
    }
}

/// 32 bytes that are not an Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes do not decode to a point of the curve.
    #[error("not an Ed25519 public key (the 32 bytes are not a curve point)")]
    NotAPoint,
}

/// A signature that the validity rule refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Ed25519 signature refused (ZIP-215, small-order keys refused)")]
pub struct SignatureError;

/// A forgery that verification without the small-order check accepts on every
/// message (plain Ed25519, and bare ZIP-215): the identity point as public key,
/// `R` = identity and `S` = 0, so `[S]B = R + [k]A` holds whatever `k`. For tests.
#[cfg(test)]
pub(crate) fn small_order_forgery() -> (PublicKey, Signature) {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let public = PublicKey::from_bytes(&identity).expect("the identity is a curve point");
    (public, Signature(sig))
}

/// Checks the layout of §9: the signing input is the domain, a zero byte and the
/// 8-item array (header `0x88`) whose items are the encoding's (header `0x89`)
/// without the trailing signature (`58 40` and 64 bytes). For tests.
#[cfg(test)]
pub(crate) fn assert_signing_layout(domain: Domain, input: &[u8], encoding: &[u8]) {
    let prefix = domain.name().len() + 1;
    let unsigned = encoding.len() - 66;
    assert_eq!(input[..prefix], signing_input(domain, b"")[..]);
    assert_eq!((input[prefix], encoding[0]), (0x88, 0x89));
    assert_eq!(input[prefix + 1..], encoding[1..unsigned]);
    assert_eq!(encoding[unsigned..unsigned + 2], [0x58, 0x40]);
}

/// Whether ed25519-dalek's plain `verify` (never used outside tests) accepts.
#[cfg(test)]
pub(crate) fn plain_verify_accepts(public: &PublicKey, message: &[u8], sig: &Signature) -> bool {
    use ed25519_dalek::Verifier as _;
    let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
    let key = ed25519_dalek::VerifyingKey::from_bytes(public.as_bytes()).expect("a point");
    key.verify(message, &sig).is_ok()
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1, test 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn key() -> SigningKey {
        SigningKey::from_seed(&hex::decode(SEED).unwrap().try_into().unwrap())
    }

    #[test]
    fn seed_and_public_key_match_rfc_8032() {
        let key = key();
        assert_eq!(hex::encode(key.public_key().as_bytes()), PUBLIC);
        assert_eq!(hex::encode(key.to_seed()), SEED);
        assert_eq!(key.public_key().to_string(), PUBLIC);
        assert!(!format!("{key:?}").contains(SEED));
    }

    #[test]
    fn sign_then_verify_with_domain_separation() {
        let key = key();
        let sig = key.sign(Domain::Event, b"payload");
        let public = key.public_key();
        assert_eq!(public.verify(Domain::Event, b"payload", &sig), Ok(()));
        // Another domain, payload or key refuses it.
        assert_eq!(
            public.verify(Domain::Manifest, b"payload", &sig),
            Err(SignatureError)
        );
        assert_eq!(
            public.verify(Domain::Event, b"payloaD", &sig),
            Err(SignatureError)
        );
        let other = SigningKey::generate().public_key();
        assert_eq!(
            other.verify(Domain::Event, b"payload", &sig),
            Err(SignatureError)
        );
        // The signing input is the domain, a zero byte, the payload.
        assert_eq!(signing_input(Domain::Event, b"xy"), b"amb-event-v2\0xy");
        assert_eq!(signing_input(Domain::Manifest, b""), b"amb-manifest-v2\0");
        // Deterministic, and equal to plain Ed25519 over the signing input.
        assert_eq!(key.sign(Domain::Event, b"payload"), sig);
        let dalek = ed25519_dalek::SigningKey::from_bytes(&key.to_seed());
        assert_eq!(
            ed25519_dalek::Signer::sign(&dalek, b"amb-event-v2\0payload").to_bytes(),
            sig.to_bytes()
        );
    }

    #[test]
    fn every_flipped_bit_of_a_signature_is_refused() {
        let key = key();
        let sig = key.sign(Domain::Event, b"m");
        for bit in 0..512 {
            let mut bytes = sig.to_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                key.public_key()
                    .verify(Domain::Event, b"m", &Signature::from_bytes(bytes)),
                Err(SignatureError),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn non_canonical_s_is_refused() {
        // S + L has the same value mod L: a malleated signature. verify_strict (and
        // dalek's plain verify) refuse S >= L.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = key();
        let sig = key.sign(Domain::Event, b"m").to_bytes();
        let mut bytes = sig;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = sig[32 + i] as u16 + L[i] as u16 + carry;
            bytes[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "S + L fits 256 bits");
        assert_eq!(
            key.public_key()
                .verify(Domain::Event, b"m", &Signature::from_bytes(bytes)),
            Err(SignatureError)
        );
    }

    #[test]
    fn small_order_key_accepted_by_plain_verify_is_refused() {
        let (public, sig) = small_order_forgery();
        let message = signing_input(Domain::Event, b"anything");
        assert!(
            plain_verify_accepts(&public, &message, &sig),
            "plain verify accepts the forgery (the point of this test)"
        );
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(public.as_bytes()).unwrap();
        let forged = ed25519_dalek::Signature::from_bytes(sig.as_bytes());
        assert!(dalek.verify_strict(&message, &forged).is_err());
        assert_eq!(
            public.verify(Domain::Event, b"anything", &sig),
            Err(SignatureError)
        );
    }

    #[test]
    fn a_batch_agrees_with_single_checks() {
        let (alice, bob) = (key(), SigningKey::from_seed(&[9; 32]));
        let signed: Vec<(PublicKey, Vec<u8>, Signature)> = (0..40u8)
            .map(|i| {
                let signer = if i % 3 == 0 { &bob } else { &alice };
                let payload = vec![i; usize::from(i)];
                let sig = signer.sign(Domain::Event, &payload);
                (signer.public_key(), payload, sig)
            })
            .collect();
        let batch_of = |items: &[(PublicKey, Vec<u8>, Signature)]| {
            let mut batch = BatchVerifier::new();
            for (key, payload, sig) in items {
                batch.queue(key, Domain::Event, payload, sig);
            }
            assert_eq!(batch.len(), items.len());
            batch.verify()
        };
        assert_eq!(batch_of(&signed), Ok(()));
        assert_eq!(batch_of(&[]), Ok(()));
        // One flipped bit anywhere (signature, payload, domain) refuses the batch, as
        // it refuses that signature alone.
        for victim in [0, 17, 39] {
            let mut forged = signed.clone();
            let mut bytes = forged[victim].2.to_bytes();
            bytes[40] ^= 4;
            forged[victim].2 = Signature::from_bytes(bytes);
            assert_eq!(batch_of(&forged), Err(SignatureError), "signature {victim}");
            let (key, payload, sig) = &forged[victim];
            assert_eq!(key.verify(Domain::Event, payload, sig), Err(SignatureError));
            let mut moved = signed.clone();
            moved[victim].1.push(0);
            assert_eq!(batch_of(&moved), Err(SignatureError), "payload {victim}");
        }
        let mut batch = BatchVerifier::new();
        let (key, payload, sig) = &signed[1];
        batch.queue(key, Domain::Manifest, payload, sig);
        assert_eq!(batch.verify(), Err(SignatureError));
    }

    #[test]
    fn a_batch_refuses_the_small_order_forgery() {
        let (public, sig) = small_order_forgery();
        assert!(public.is_small_order());
        assert!(!key().public_key().is_small_order());
        let mut batch = BatchVerifier::new();
        batch.queue(&public, Domain::Event, b"anything", &sig);
        assert_eq!(batch.verify(), Err(SignatureError));
    }

    #[test]
    fn signing_matches_rfc_8032() {
        // RFC 8032 §7.1, test 1: the empty message, signed without a domain. The
        // signing input of our API always has one, so sign its bytes with the
        // expanded key directly.
        let key = key();
        let sig = raw_sign::<sha2::Sha512>(&key.expanded, b"", &key.seed.verifying_key());
        assert_eq!(
            hex::encode(sig.to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn bytes_that_are_not_a_point_are_not_a_key() {
        // y = 2 has no x on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert_eq!(PublicKey::from_bytes(&bytes), Err(KeyError::NotAPoint));
        let key = key().public_key();
        assert_eq!(PublicKey::from_bytes(key.as_bytes()), Ok(key));
    }
}
