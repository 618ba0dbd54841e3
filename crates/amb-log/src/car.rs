//! CAR v1 files (Content Addressable aRchives, as IPFS tools read them): a header,
//! then blocks, each under its CID (`spec/events.md` §10).
//!
//! The header is `varint(len)` then the dag-cbor map `{"roots": [cid], "version": 1}`
//! (a CID as tag 42 over its bytes with a leading `0x00`); each block is
//! `varint(len(cid) + len(bytes))`, the binary CID, the bytes. [`write_car`] writes
//! one; [`read_car`] reads one back, refusing (with the byte offset) a file that is
//! not CAR v1, and a block whose bytes do not hash to its CID.

use std::io::{self, Write};

use amb_bytecode::Cid;

/// A CAR file's contents: its root and its blocks, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Car {
    /// The root (for `amb export`, the program manifest's CID).
    pub root: Cid,
    /// The blocks, each checked against its CID.
    pub blocks: Vec<(Cid, Vec<u8>)>,
}

/// Why bytes are not a CAR v1 file of ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CarError {
    /// The file ends inside a length, the header or a block.
    #[error("the file ends early at byte {at}: {what} is cut off")]
    Truncated {
        /// Where.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// The header is not `{"roots": [cid], "version": 1}`.
    #[error("the header is not a CAR v1 header with one root: {0}")]
    Header(String),
    /// A block's CID is not one of ours.
    #[error("the CID of the block at byte {at} is not valid: {reason}")]
    Cid {
        /// Where the block starts.
        at: usize,
        /// Why.
        reason: String,
    },
    /// A block's bytes do not hash to its CID.
    #[error("the block at byte {at} does not match its CID {cid}: its bytes hash to {actual}")]
    Mismatch {
        /// Where the block starts.
        at: usize,
        /// The CID the file gives.
        cid: Cid,
        /// The CID of the bytes.
        actual: Cid,
    },
}

/// The length of our binary CIDs.
const CID_BYTES: usize = 36;

fn write_varint(out: &mut impl Write, mut value: u64) -> io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    out.write_all(&buf[..n])
}

/// The header's dag-cbor bytes for one root.
fn header(root: Cid) -> Vec<u8> {
    let mut out = Vec::with_capacity(60);
    out.push(0xa2); // a map of 2, keys in dag-cbor order (shorter first)
    out.push(0x65);
    out.extend_from_slice(b"roots");
    out.push(0x81); // an array of 1
    out.extend_from_slice(&[0xd8, 0x2a]); // tag 42: a CID
    out.extend_from_slice(&[0x58, CID_BYTES as u8 + 1, 0x00]);
    out.extend_from_slice(&root.to_bytes());
    out.push(0x67);
    out.extend_from_slice(b"version");
    out.push(0x01);
    out
}

/// Writes a CAR v1 file with one root and `blocks` in the order given.
pub fn write_car<'b>(
    root: Cid,
    blocks: impl IntoIterator<Item = (Cid, &'b [u8])>,
    out: &mut impl Write,
) -> io::Result<()> {
    let header = header(root);
    write_varint(out, header.len() as u64)?;
    out.write_all(&header)?;
    for (cid, bytes) in blocks {
        write_varint(out, (CID_BYTES + bytes.len()) as u64)?;
        out.write_all(&cid.to_bytes())?;
        out.write_all(bytes)?;
    }
    Ok(())
}

/// Reads a varint at `*at`, moving past it.
fn read_varint(bytes: &[u8], at: &mut usize, what: &'static str) -> Result<u64, CarError> {
    let start = *at;
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or(CarError::Truncated { at: start, what })?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(CarError::Header(format!(
        "the length at byte {start} is too long"
    )))
}

/// `len` bytes at `*at`, moving past them.
fn take<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    len: u64,
    what: &'static str,
) -> Result<&'a [u8], CarError> {
    let start = *at;
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| start.checked_add(len))
        .filter(|end| *end <= bytes.len())
        .ok_or(CarError::Truncated { at: start, what })?;
    *at = end;
    Ok(&bytes[start..end])
}

/// The one root of a CAR v1 header.
fn parse_header(header: &[u8]) -> Result<Cid, CarError> {
    use ciborium::Value;
    let value: Value =
        ciborium::from_reader(header).map_err(|e| CarError::Header(e.to_string()))?;
    let Value::Map(entries) = value else {
        return Err(CarError::Header("not a map".into()));
    };
    let field = |name: &str| {
        entries
            .iter()
            .find(|(key, _)| key.as_text() == Some(name))
            .map(|(_, value)| value)
    };
    match field("version").and_then(Value::as_integer) {
        Some(version) if version == 1.into() => {}
        _ => return Err(CarError::Header("its version is not 1".into())),
    }
    let roots = field("roots")
        .and_then(Value::as_array)
        .ok_or_else(|| CarError::Header("no roots".into()))?;
    let [Value::Tag(42, cid)] = roots.as_slice() else {
        return Err(CarError::Header(format!(
            "{} roots; an export has one, the program manifest",
            roots.len()
        )));
    };
    let bytes = cid
        .as_bytes()
        .and_then(|b| b.strip_prefix(&[0u8]))
        .ok_or_else(|| CarError::Header("the root is not a CID".into()))?;
    Cid::from_bytes(bytes).map_err(|e| CarError::Header(format!("the root: {e}")))
}

/// Reads a CAR v1 file: its root and its blocks, each checked against its CID.
pub fn read_car(bytes: &[u8]) -> Result<Car, CarError> {
    let mut at = 0;
    let header_len = read_varint(bytes, &mut at, "the header's length")?;
    let root = parse_header(take(bytes, &mut at, header_len, "the header")?)?;
    let mut blocks = Vec::new();
    while at < bytes.len() {
        let start = at;
        let len = read_varint(bytes, &mut at, "a block's length")?;
        let section = take(bytes, &mut at, len, "a block")?;
        if section.len() < CID_BYTES {
            return Err(CarError::Cid {
                at: start,
                reason: format!("the block is {} bytes, shorter than a CID", section.len()),
            });
        }
        let (cid, data) = section.split_at(CID_BYTES);
        let cid = Cid::from_bytes(cid).map_err(|e| CarError::Cid {
            at: start,
            reason: e.to_string(),
        })?;
        let actual = Cid::of(data);
        if actual != cid {
            return Err(CarError::Mismatch {
                at: start,
                cid,
                actual,
            });
        }
        blocks.push((cid, data.to_vec()));
    }
    Ok(Car { root, blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Cid, Vec<(Cid, Vec<u8>)>) {
        let blocks: Vec<(Cid, Vec<u8>)> = (0..3u8)
            .map(|i| {
                let bytes = vec![0x80 + i; 200 * usize::from(i)];
                (Cid::of(&bytes), bytes)
            })
            .collect();
        (blocks[0].0, blocks)
    }

    fn written(root: Cid, blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        write_car(
            root,
            blocks.iter().map(|(c, b)| (*c, b.as_slice())),
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn a_written_file_reads_back() {
        let (root, blocks) = sample();
        let car = read_car(&written(root, &blocks)).unwrap();
        assert_eq!(car, Car { root, blocks });
    }

    #[test]
    fn a_forged_or_cut_file_is_refused_with_its_place() {
        let (root, blocks) = sample();
        let file = written(root, &blocks);
        let mut forged = file.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(
            matches!(read_car(&forged), Err(CarError::Mismatch { cid, .. }) if cid == blocks[2].0)
        );
        assert!(matches!(
            read_car(&file[..file.len() - 10]),
            Err(CarError::Truncated {
                what: "a block",
                ..
            })
        ));
        assert!(matches!(
            read_car(b""),
            Err(CarError::Truncated { at: 0, .. })
        ));
        assert!(matches!(
            read_car(&[3, 0xa0, 0, 0]),
            Err(CarError::Header(_))
        ));
    }
}
