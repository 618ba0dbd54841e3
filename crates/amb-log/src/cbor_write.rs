//! Canonical CBOR written straight into a buffer: the few items events use (heads in
//! their shortest form, byte and text strings, DAG-CBOR links, targets).
//!
//! Events are encoded twice per write (signing input and encoding share one buffer)
//! and once per read from the store (which rebuilds them from their compact form), so
//! they skip serde. What this writes is exactly what `amb_bytecode::cbor` writes
//! through serde and ciborium (the unit tests compare both on every item kind, and
//! `event.rs` on whole events).

use amb_bytecode::{Cid, Target};

/// The CBOR null.
pub(crate) const NULL: u8 = 0xf6;

/// A head of `major` type with argument `n`, in its shortest form.
pub(crate) fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// An unsigned integer.
pub(crate) fn uint(out: &mut Vec<u8>, n: u64) {
    head(out, 0, n);
}

/// A byte string.
pub(crate) fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

/// A text string.
pub(crate) fn text(out: &mut Vec<u8>, t: &str) {
    head(out, 3, t.len() as u64);
    out.extend_from_slice(t.as_bytes());
}

/// An array head of `len` items.
pub(crate) fn array(out: &mut Vec<u8>, len: usize) {
    head(out, 4, len as u64);
}

/// A DAG-CBOR link: tag 42 over the byte string `0x00 ||` the binary CID.
pub(crate) fn link(out: &mut Vec<u8>, cid: &Cid) {
    out.extend_from_slice(&[0xd8, 0x2a, 0x58, 0x25, 0x00]);
    out.extend_from_slice(&cid.to_bytes());
}

/// `null`, or what `item` writes of the value.
pub(crate) fn nullable<T>(out: &mut Vec<u8>, value: Option<T>, item: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(value) => item(out, value),
        None => out.push(NULL),
    }
}

/// An instruction's target as `spec/bytecode.md` §2 encodes it.
pub(crate) fn target(out: &mut Vec<u8>, target: &Target) {
    match target {
        Target::Name(name) => text(out, name),
        Target::Primitive(p) => uint(out, *p as u64),
        Target::Block(cid) => link(out, cid),
        Target::None => out.push(NULL),
        Target::Unused => uint(out, 0),
    }
}

#[cfg(test)]
mod tests {
    use amb_bytecode::{
        Primitive,
        cbor::{self, Bytes, Link},
    };

    use super::*;

    fn written(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn writes_what_serde_writes() {
        for n in [
            0,
            1,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX,
        ] {
            assert_eq!(written(|o| uint(o, n)), cbor::to_vec(&n), "{n}");
            assert_eq!(written(|o| array(o, n as usize)), {
                let mut head = cbor::to_vec(&n);
                head[0] |= 0x80;
                head
            });
        }
        for len in [0, 1, 23, 24, 64, 300, 70_000] {
            let b = vec![7u8; len];
            assert_eq!(written(|o| bytes(o, &b)), cbor::to_vec(&Bytes(&b)));
            let t = "a".repeat(len);
            assert_eq!(written(|o| text(o, &t)), cbor::to_vec(&t));
        }
        let cid = Cid::of(b"x");
        assert_eq!(written(|o| link(o, &cid)), cbor::to_vec(&Link(cid)));
        for t in [
            Target::Name("a".into()),
            Target::Primitive(Primitive::Return),
            Target::Block(cid),
            Target::None,
            Target::Unused,
        ] {
            assert_eq!(written(|o| target(o, &t)), cbor::to_vec(&t), "{t:?}");
        }
        assert_eq!(written(|o| nullable(o, None::<u64>, uint)), [NULL]);
        assert_eq!(written(|o| nullable(o, Some(3), uint)), [3]);
    }
}
