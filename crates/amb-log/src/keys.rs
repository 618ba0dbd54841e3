//! Ed25519 keys and signatures (`spec/events.md` §1).
//!
//! A public key is its 32-byte encoding, a signature 64 bytes. **The one validity
//! rule**: a signature is valid exactly when `ed25519_dalek::VerifyingKey::verify_strict`
//! accepts it. [`PublicKey::verify`] is the only verification function of the crate
//! and every code path goes through it; there is no batch verification, and plain
//! `verify` (which accepts small-order keys and `R` values) is never called.
//!
//! Every signature is domain-separated: the signed bytes are the ASCII name of the
//! [`Domain`], a zero byte, then the payload (the canonical CBOR of the object without
//! its signature), so a manifest's signature can never pass for an event's.

use std::fmt;

use ed25519_dalek::Signer;

/// What a signature is for: the first bytes of every signing input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Events: `amb-event-v1`.
    Event,
    /// Manifests: `amb-manifest-v1`.
    Manifest,
}

impl Domain {
    /// The ASCII domain name.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Event => "amb-event-v1",
            Domain::Manifest => "amb-manifest-v1",
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
/// listed but never sign anything, since [`PublicKey::verify`] refuses them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// The key encoded by `bytes`, or an error if they are not a curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        // Decompressing a point costs about a fifth of a signature check, and a log's
        // events all carry the same few keys: keep the last ones decompressed.
        thread_local! {
            static RECENT: std::cell::RefCell<std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> =
                std::cell::RefCell::default();
        }
        if let Some(key) = RECENT.with(|r| r.borrow().get(bytes).copied()) {
            return Ok(PublicKey(key));
        }
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::NotAPoint)?;
        RECENT.with(|r| {
            let mut recent = r.borrow_mut();
            if recent.len() >= 1024 {
                recent.clear();
            }
            recent.insert(*bytes, key);
        });
        Ok(PublicKey(key))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The 32-byte encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Checks `sig` over [`signing_input`]`(domain, payload)` with `verify_strict`:
    /// the protocol's one signature validity rule (`spec/events.md` §1).
    pub fn verify(
        &self,
        domain: Domain,
        payload: &[u8],
        sig: &Signature,
    ) -> Result<(), SignatureError> {
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.0
            .verify_strict(&signing_input(domain, payload), &sig)
            .map_err(|_| SignatureError)
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

/// A signing key: the 32-byte secret seed of RFC 8032 and its public key. Its `Debug`
/// shows only the public key.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key of a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte secret seed. Keep it secret.
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs [`signing_input`]`(domain, payload)` (deterministic, RFC 8032).
    pub fn sign(&self, domain: Domain, payload: &[u8]) -> Signature {
        Signature(self.0.sign(&signing_input(domain, payload)).to_bytes())
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

/// A signature that `verify_strict` refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Ed25519 signature refused by verify_strict")]
pub struct SignatureError;

/// A forgery that plain Ed25519 verification accepts on every message and
/// `verify_strict` refuses: the identity point as public key, `R` = identity and
/// `S` = 0, so `[S]B = R + [k]A` holds whatever `k`. For tests.
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
    public.0.verify(message, &sig).is_ok()
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
        assert_eq!(signing_input(Domain::Event, b"xy"), b"amb-event-v1\0xy");
        assert_eq!(signing_input(Domain::Manifest, b""), b"amb-manifest-v1\0");
        // Deterministic, and equal to plain Ed25519 over the signing input.
        assert_eq!(key.sign(Domain::Event, b"payload"), sig);
        let dalek = ed25519_dalek::SigningKey::from_bytes(&key.to_seed());
        assert_eq!(
            dalek.sign(b"amb-event-v1\0payload").to_bytes(),
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
    fn bytes_that_are_not_a_point_are_not_a_key() {
        // y = 2 has no x on the curve.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert_eq!(PublicKey::from_bytes(&bytes), Err(KeyError::NotAPoint));
        let key = key().public_key();
        assert_eq!(PublicKey::from_bytes(key.as_bytes()), Ok(key));
    }
}
