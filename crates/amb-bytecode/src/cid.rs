//! Content identifiers: CIDv1, dag-cbor codec (0x71), BLAKE3-256 multihash (0x1e).
//!
//! Every block, manifest and event of the protocol is addressed this way, so a [`Cid`]
//! stores only the 32-byte digest; the binary and text forms are derived. Parsing
//! text accepts any valid CID and refuses, with the reason, one that is not ours.

use std::{fmt, str::FromStr};

/// Multicodec code of DAG-CBOR.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of BLAKE3 with a 32-byte digest.
pub const BLAKE3_256: u64 = 0x1e;
/// The binary CID prefix: version 1, dag-cbor, blake3, digest length 32.
pub const CID_PREFIX: [u8; 4] = [0x01, 0x71, 0x1e, 0x20];

/// A CIDv1 (dag-cbor, BLAKE3-256).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid([u8; 32]);

impl Cid {
    /// The CID of a block's bytes.
    pub fn of(bytes: &[u8]) -> Cid {
        Cid(*blake3::hash(bytes).as_bytes())
    }

    /// A CID from its BLAKE3 digest.
    pub fn from_digest(digest: [u8; 32]) -> Cid {
        Cid(digest)
    }

    /// The BLAKE3 digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// The binary CID: `01 71 1e 20` then the digest (36 bytes).
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(&CID_PREFIX);
        out[4..].copy_from_slice(&self.0);
        out
    }

    /// A CID from its binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Cid, CidError> {
        let cid = cid::Cid::try_from(bytes).map_err(|e| CidError::Malformed(e.to_string()))?;
        Cid::from_foreign(&cid)
    }

    fn from_foreign(cid: &cid::Cid) -> Result<Cid, CidError> {
        if cid.version() != cid::Version::V1 {
            return Err(CidError::NotOurs("version 0; expected CIDv1".into()));
        }
        if cid.codec() != DAG_CBOR {
            return Err(CidError::NotOurs(format!(
                "codec 0x{:x}; expected dag-cbor (0x71)",
                cid.codec()
            )));
        }
        let hash = cid.hash();
        if hash.code() != BLAKE3_256 || hash.size() != 32 {
            return Err(CidError::NotOurs(format!(
                "multihash 0x{:x} of {} bytes; expected blake3 (0x1e) of 32 bytes",
                hash.code(),
                hash.size()
            )));
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(hash.digest());
        Ok(Cid(digest))
    }

    fn to_foreign(self) -> cid::Cid {
        let hash = cid::multihash::Multihash::<64>::wrap(BLAKE3_256, &self.0)
            .expect("32 bytes fit a 64-byte multihash");
        cid::Cid::new_v1(DAG_CBOR, hash)
    }
}

/// Why bytes or text are not a CID of ours.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidError {
    /// Not a CID at all.
    #[error("malformed CID: {0}")]
    Malformed(String),
    /// A CID, but not dag-cbor with a BLAKE3-256 hash.
    #[error("unsupported CID: {0}")]
    NotOurs(String),
}

impl fmt::Display for Cid {
    /// Base32 lower case with the multibase prefix `b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_foreign().to_string())
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = CidError;

    fn from_str(text: &str) -> Result<Cid, CidError> {
        let cid = cid::Cid::try_from(text).map_err(|e| CidError::Malformed(e.to_string()))?;
        Cid::from_foreign(&cid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_round_trip() {
        let cid = Cid::of(b"hello");
        let text = cid.to_string();
        assert!(text.starts_with("bafyr4i"), "{text}");
        assert_eq!(text.parse::<Cid>(), Ok(cid));
        assert_eq!(Cid::from_bytes(&cid.to_bytes()), Ok(cid));
    }

    #[test]
    fn foreign_cids_are_refused_with_a_reason() {
        // A CIDv0 (sha2-256, dag-pb).
        let v0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
        assert!(matches!(v0.parse::<Cid>(), Err(CidError::NotOurs(_))));
        assert!(matches!(
            "hello".parse::<Cid>(),
            Err(CidError::Malformed(_))
        ));
    }
}
