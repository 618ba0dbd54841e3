//! DAG-CBOR building blocks shared by every format of the protocol: blocks here, and
//! manifests and events in `amb-log` (`spec/bytecode.md` §6-7, `spec/events.md`).
//!
//! Writing goes through serde and ciborium: [`Link`] writes a CID as a DAG-CBOR link
//! (tag 42 over `0x00 ||` the binary CID), [`Bytes`] writes a byte string. Reading
//! parses one item into a [`Value`] ([`read_item`]) and then checks its shape with the
//! `expect_*` helpers, which name the place of the first problem. A format's decoder
//! then re-encodes what it read and refuses input that differs: that comparison is
//! what makes every accepted object have exactly one byte form.

use std::fmt;

use ciborium::{Value, tag::Required};
use serde::{Serialize, Serializer};

use crate::{
    block::{Opcode, Primitive, Target},
    cid::Cid,
};

/// The CBOR tag of a DAG-CBOR link.
pub const LINK_TAG: u64 = 42;

/// Serializes a CID as a DAG-CBOR link: tag 42 over the byte string `0x00 ||` binary
/// CID (`d8 2a 58 25 00 01 71 1e 20 …`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link(pub Cid);

impl Serialize for Link {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut link = [0u8; 37];
        link[1..].copy_from_slice(&self.0.to_bytes());
        Required::<_, LINK_TAG>(Bytes(&link)).serialize(s)
    }
}

/// Serializes a slice as a CBOR byte string (serde writes `&[u8]` as an array).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Serializes a value into a fresh buffer. Writing to memory does not fail.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    into_vec(value, &mut out);
    out
}

/// Appends the CBOR of a value to `out`.
pub fn into_vec<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    ciborium::into_writer(value, out).expect("encoding into memory does not fail");
}

/// Reads exactly one CBOR item: refuses malformed CBOR and bytes after the item. The
/// error says what is wrong.
pub fn read_item(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = bytes;
    let value: Value = ciborium::from_reader(&mut reader).map_err(|e| e.to_string())?;
    if !reader.is_empty() {
        return Err(format!("{} bytes after the end of the item", reader.len()));
    }
    Ok(value)
}

/// What [`decode_canonical`] refuses before and after a format reads the item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Framing {
    /// Longer than the format's limit.
    #[error("{size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not one well-formed CBOR item ([`read_item`]).
    #[error("not well-formed CBOR: {0}")]
    Cbor(String),
    /// Not the canonical encoding of what it holds.
    #[error("not the canonical encoding (DAG-CBOR: shortest integers, definite lengths)")]
    NotCanonical,
}

/// Decodes an object of a canonical format from untrusted bytes: refuses more than
/// `limit` bytes, reads one CBOR item, lets `read` check its shape and build the
/// object, and refuses the input unless `encode` gives back exactly the same bytes.
/// That last comparison is what gives every accepted object one byte form.
pub fn decode_canonical<T, E: From<Framing>>(
    bytes: &[u8],
    limit: usize,
    read: impl FnOnce(Value) -> Result<T, E>,
    encode: impl FnOnce(&T) -> Vec<u8>,
) -> Result<T, E> {
    if bytes.len() > limit {
        return Err(Framing::TooLarge {
            size: bytes.len(),
            limit,
        }
        .into());
    }
    let value = read_item(bytes).map_err(Framing::Cbor)?;
    let object = read(value)?;
    if encode(&object) != bytes {
        return Err(Framing::NotCanonical.into());
    }
    Ok(object)
}

/// A CBOR item that is not what the format expects there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct ShapeError {
    /// Where: `event`, `event refs[3]`, `instruction 2 prev`…
    pub place: String,
    /// What is wrong.
    pub problem: String,
}

/// A [`ShapeError`].
pub fn shape(place: impl fmt::Display, problem: impl Into<String>) -> ShapeError {
    ShapeError {
        place: place.to_string(),
        problem: problem.into(),
    }
}

/// A short description of a CBOR item for error messages: `integer 7`, `a map`…
pub fn describe(value: &Value) -> String {
    match value {
        Value::Integer(i) => format!("integer {}", i128::from(*i)),
        Value::Bytes(b) => format!("byte string of {} bytes", b.len()),
        Value::Float(_) => "a float".into(),
        Value::Text(t) => format!("text {:?}", t.chars().take(40).collect::<String>()),
        Value::Bool(b) => format!("{b}"),
        Value::Null => "null".into(),
        Value::Tag(tag, _) => format!("tag {tag}"),
        Value::Array(a) => format!("array of {}", a.len()),
        Value::Map(_) => "a map".into(),
        _ => "an unknown CBOR item".into(),
    }
}

/// The unsigned integer an item is, if it is one.
pub fn uint(value: &Value) -> Option<u64> {
    match value {
        Value::Integer(i) => u64::try_from(i128::from(*i)).ok(),
        _ => None,
    }
}

/// The CID an item links to, if it is a DAG-CBOR link to a CID of ours.
pub fn link(value: &Value) -> Option<Cid> {
    let Value::Tag(LINK_TAG, inner) = value else {
        return None;
    };
    let Value::Bytes(bytes) = inner.as_ref() else {
        return None;
    };
    let (&0, cid) = bytes.split_first()? else {
        return None;
    };
    Cid::from_bytes(cid).ok()
}

/// The items of an array of exactly `N` items.
pub fn expect_array<const N: usize>(
    value: Value,
    place: &dyn fmt::Display,
) -> Result<[Value; N], ShapeError> {
    let items = expect_list(value, place)?;
    items.try_into().map_err(|items: Vec<Value>| {
        shape(place, format!("expected {N} items, found {}", items.len()))
    })
}

/// The items of an array of any length.
pub fn expect_list(value: Value, place: &dyn fmt::Display) -> Result<Vec<Value>, ShapeError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(shape(
            place,
            format!("expected an array, found {}", describe(&other)),
        )),
    }
}

/// An unsigned integer.
pub fn expect_uint(value: &Value, place: &dyn fmt::Display) -> Result<u64, ShapeError> {
    uint(value).ok_or_else(|| {
        shape(
            place,
            format!("expected an unsigned integer, found {}", describe(value)),
        )
    })
}

/// A DAG-CBOR link to a CID of ours (dag-cbor, BLAKE3-256).
pub fn expect_link(value: &Value, place: &dyn fmt::Display) -> Result<Cid, ShapeError> {
    link(value).ok_or_else(|| {
        shape(
            place,
            format!(
                "expected a CID link (tag 42 over 0x00 and a dag-cbor BLAKE3-256 CID), found {}",
                describe(value)
            ),
        )
    })
}

/// A byte string of exactly `N` bytes.
pub fn expect_bytes<const N: usize>(
    value: &Value,
    place: &dyn fmt::Display,
) -> Result<[u8; N], ShapeError> {
    match value {
        Value::Bytes(bytes) => bytes.as_slice().try_into().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        shape(
            place,
            format!(
                "expected a byte string of {N} bytes, found {}",
                describe(value)
            ),
        )
    })
}

/// Text.
pub fn expect_text(value: Value, place: &dyn fmt::Display) -> Result<String, ShapeError> {
    match value {
        Value::Text(text) => Ok(text),
        other => Err(shape(
            place,
            format!("expected text, found {}", describe(&other)),
        )),
    }
}

/// `None` for null, else what `read` makes of the item.
pub fn nullable<T, E>(
    value: Value,
    read: impl FnOnce(Value) -> Result<T, E>,
) -> Result<Option<T>, E> {
    match value {
        Value::Null => Ok(None),
        other => read(other).map(Some),
    }
}

/// A target that its opcode does not allow (`spec/bytecode.md` §2).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{op}: target {found} is not allowed; {rule}")]
pub struct TargetError {
    /// The opcode's mnemonic.
    pub op: &'static str,
    /// What was found.
    pub found: String,
    /// What is allowed.
    pub rule: &'static str,
}

/// Reads the target of an instruction with opcode `op` (`spec/bytecode.md` §2): text
/// for a name (at most `max_name_bytes` long, never a primitive's name), an unsigned
/// integer 0-3 for a primitive (0 is the unused target of `open_`), a CID link, or
/// null; then checks that `op` allows it ([`Opcode::check_target`]).
pub fn target_from_value(
    op: Opcode,
    value: &Value,
    max_name_bytes: usize,
) -> Result<Target, TargetError> {
    let bad = |found: String, rule| TargetError {
        op: op.mnemonic(),
        found,
        rule,
    };
    let target = match value {
        Value::Null => Target::None,
        Value::Text(name) if name.len() > max_name_bytes => {
            return Err(bad(
                format!("text of {} bytes", name.len()),
                "names are at most max_name_bytes long",
            ));
        }
        Value::Text(name) => Target::Name(name.as_str().into()),
        Value::Tag(..) => match link(value) {
            Some(cid) => Target::Block(cid),
            None => return Err(bad(describe(value), op.target_rule())),
        },
        _ => match uint(value) {
            Some(0) if op == Opcode::OpenCo => Target::Unused,
            Some(code) => match Primitive::from_u64(code) {
                Some(p) => Target::Primitive(p),
                None => return Err(bad(describe(value), op.target_rule())),
            },
            None => return Err(bad(describe(value), op.target_rule())),
        },
    };
    op.check_target(&target)
        .map_err(|rule| bad(describe(value), rule))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_tag_42_over_a_zero_and_the_binary_cid() {
        let cid = Cid::of(b"x");
        let bytes = to_vec(&Link(cid));
        assert_eq!(
            &bytes[..9],
            [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x1e, 0x20]
        );
        let value = read_item(&bytes).unwrap();
        assert_eq!(link(&value), Some(cid));
        assert_eq!(expect_link(&value, &"here"), Ok(cid));
        // Without the 0x00 prefix it is not a link.
        let bare = Value::Tag(42, Box::new(Value::Bytes(cid.to_bytes().to_vec())));
        assert_eq!(link(&bare), None);
        assert!(expect_link(&bare, &"here").is_err());
    }

    #[test]
    fn shapes_name_the_place() {
        let err = expect_array::<2>(Value::Array(vec![Value::Null]), &"event").unwrap_err();
        assert_eq!(err.to_string(), "event: expected 2 items, found 1");
        let err = expect_bytes::<4>(&Value::Bytes(vec![1, 2]), &"sig").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sig: expected a byte string of 4 bytes, found byte string of 2 bytes"
        );
        assert_eq!(
            read_item(&[0xf6, 0x00]),
            Err("1 bytes after the end of the item".into())
        );
    }

    #[test]
    fn targets_follow_the_opcode_table() {
        let text = |s: &str| Value::Text(s.into());
        let int = |i: u64| Value::Integer(i.into());
        assert_eq!(
            target_from_value(Opcode::OpenCo, &int(0), 16),
            Ok(Target::Unused)
        );
        assert_eq!(
            target_from_value(Opcode::In, &int(0), 16),
            Ok(Target::Primitive(Primitive::Func))
        );
        assert!(target_from_value(Opcode::In, &Value::Null, 16).is_err());
        assert!(target_from_value(Opcode::In, &text("call"), 16).is_err());
        assert!(target_from_value(Opcode::In, &text("toolong"), 4).is_err());
        assert!(target_from_value(Opcode::Deploy, &text("a"), 16).is_err());
        assert_eq!(
            target_from_value(Opcode::InCo, &Value::Null, 16),
            Ok(Target::None)
        );
    }
}
