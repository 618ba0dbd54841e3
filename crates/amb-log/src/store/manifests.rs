//! Slice manifests in their compact stored form, in the `manifests` table by log
//! number (a slice manifest's CID is its log's id).
//!
//! A program has a slice manifest for about one event in eight, and as blocks keyed by
//! their digest they took about 55 bytes per event on disk (random keys leave pages
//! part full). Kept by log number they are written in order, and compactly: the
//! program block's digest, the name (length and bytes), the keys (count and 32 bytes
//! each), the creator as `index + 1` in the keys (or 0 and its 32 bytes), and the
//! parent `deploy` as `event number + 1` (or 0 and its digest when the store does not
//! hold it). Reading rebuilds the canonical bytes and checks them against the CID.
//! Root manifests (one per program, signed) stay in `blocks`.

use amb_bytecode::Cid;

use super::{
    entry::EventRef,
    rows::{get_varint, put_varint},
};
use crate::{Manifest, PublicKey};

/// Whether `bytes` may be a slice manifest (an array of 9 items, this version, a null
/// signature last), before decoding them.
pub(super) fn may_be_slice(bytes: &[u8]) -> bool {
    bytes.len() > 4
        && bytes[..2] == [0x89, crate::MANIFEST_VERSION as u8]
        && bytes[bytes.len() - 1] == 0xf6
}

/// Appends the compact form of a slice manifest whose parent is `parent`.
pub(super) fn put(out: &mut Vec<u8>, manifest: &Manifest, parent: EventRef) {
    out.extend_from_slice(manifest.program().digest());
    let name = manifest.name().unwrap_or_default();
    put_varint(out, name.len() as u64);
    out.extend_from_slice(name.as_bytes());
    put_varint(out, manifest.keys().len() as u64);
    for key in manifest.keys() {
        out.extend_from_slice(key.as_bytes());
    }
    match manifest.keys().iter().position(|k| k == manifest.creator()) {
        Some(index) => put_varint(out, index as u64 + 1),
        None => {
            put_varint(out, 0);
            out.extend_from_slice(manifest.creator().as_bytes());
        }
    }
    match parent {
        EventRef::Number(n) => put_varint(out, n + 1),
        EventRef::Cid(cid) => {
            put_varint(out, 0);
            out.extend_from_slice(cid.digest());
        }
    }
}

/// A slice manifest read back, its parent not resolved yet.
pub(super) struct Stored {
    program: Cid,
    name: String,
    keys: Vec<PublicKey>,
    creator: PublicKey,
    pub(super) parent: EventRef,
}

impl Stored {
    /// The manifest, its parent's CID given.
    pub(super) fn manifest(self, parent: Cid) -> Manifest {
        Manifest::new_slice(self.program, self.name, self.keys, self.creator, parent)
    }
}

/// Parses a compact slice manifest; `None` if the bytes are not one.
pub(super) fn parse(bytes: &[u8]) -> Option<Stored> {
    let mut pos = 0;
    let take = |len: usize, pos: &mut usize| -> Option<&[u8]> {
        let end = pos.checked_add(len)?;
        let taken = bytes.get(*pos..end)?;
        *pos = end;
        Some(taken)
    };
    let digest = |b: &[u8]| -> Option<[u8; 32]> { b.try_into().ok() };
    let program = Cid::from_digest(digest(take(32, &mut pos)?)?);
    let len = usize::try_from(get_varint(bytes, &mut pos)?).ok()?;
    let name = std::str::from_utf8(take(len, &mut pos)?).ok()?.to_string();
    let count = usize::try_from(get_varint(bytes, &mut pos)?).ok()?;
    let mut keys = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        keys.push(PublicKey::from_bytes(&digest(take(32, &mut pos)?)?).ok()?);
    }
    let creator = match get_varint(bytes, &mut pos)? {
        0 => PublicKey::from_bytes(&digest(take(32, &mut pos)?)?).ok()?,
        index => *keys.get(usize::try_from(index - 1).ok()?)?,
    };
    let parent = match get_varint(bytes, &mut pos)? {
        0 => EventRef::Cid(Cid::from_digest(digest(take(32, &mut pos)?)?)),
        n => EventRef::Number(n - 1),
    };
    (pos == bytes.len()).then_some(Stored {
        program,
        name,
        keys,
        creator,
        parent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn key(n: u8) -> PublicKey {
        SigningKey::from_seed(&[n; 32]).public_key()
    }

    #[test]
    fn slice_manifests_round_trip() {
        let parent = Cid::of(b"deploy");
        for (keys, creator, at) in [
            (vec![key(1)], key(1), EventRef::Number(0)),
            (vec![key(2), key(1)], key(2), EventRef::Number(1 << 40)),
            (vec![], key(3), EventRef::Cid(parent)),
        ] {
            let manifest =
                Manifest::new_slice(Cid::of(b"block"), "ä".into(), keys, creator, parent);
            assert!(may_be_slice(&manifest.encode()));
            let mut out = Vec::new();
            put(&mut out, &manifest, at);
            let stored = parse(&out).expect("parses");
            assert_eq!(stored.parent, at);
            assert_eq!(stored.manifest(parent), manifest);
            for len in 0..out.len() {
                assert!(parse(&out[..len]).is_none(), "{len}");
            }
            let mut longer = out.clone();
            longer.push(0);
            assert!(parse(&longer).is_none());
        }
        let root = Manifest::new_root(
            Cid::of(b"p"),
            None,
            vec![key(1)],
            &SigningKey::from_seed(&[1; 32]),
            [0; 16],
            1,
        );
        assert!(!may_be_slice(&root.encode()));
    }
}
