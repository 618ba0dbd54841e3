//! One event in a segment, in its compact stored form, and the segment as parsed.
//!
//! A segment is a sequence of entries for consecutive event numbers. Every entry
//! starts with `flags u8, log number, seq` (varints). Then:
//!
//! - **compact** (an event that decoded when it was written): its 32-byte digest (its
//!   CID), then its fields without their CBOR: a byte packing the opcode, the kind of
//!   target and whether `at` and `payload` are present; the target (a primitive's
//!   code, a name's length and bytes, or a block as a *dictionary reference*); `at` as
//!   an *event reference* and the instruction index; the refs (count, then event
//!   references, in the event's order); the payload's digest; the creator as a
//!   dictionary reference; the 64-byte signature.
//! - **raw** (bytes that are not an event, for instance the store tests' synthetic
//!   ones): `len, [cut], body`; when the bytes contain their log's digest, the body
//!   omits it and `cut` says where it goes back.
//!
//! An *event reference* is `number - referred number` (at least 1: events refer only
//! to earlier ones), or 0 followed by the referred CID's digest when that event is not
//! stored. A *dictionary reference* names a 32-byte value (a key, a block) of the
//! segment: 0 followed by a new value, which takes the next index, or `index + 1`. So
//! a segment names its writer's key once, and a block once however many `deploy`s of
//! the segment name it; a segment is always parsed from its start.
//!
//! Reading a compact entry rebuilds the event's canonical bytes (the refs' and `at`'s
//! CIDs come from the digests of the entries they name) and checks that they hash to
//! the stored digest, so a stored event is checked against its CID on every read.

use std::{collections::HashMap, sync::Arc};

use amb_bytecode::{Cid, Opcode, Primitive, Target};

use super::{
    StoreError,
    rows::{get_varint, put_varint},
};
use crate::{Event, Op, PublicKey, Signature, UnsignedEvent};

/// Entry flag: the event refers to its predecessor in its log.
pub(super) const FLAG_PREV: u8 = 1;
/// Entry flag: a raw entry (bytes that are not a decoded event).
pub(super) const FLAG_RAW: u8 = 2;
/// Entry flag (raw only): the body lacks the log's digest, which goes back at `cut`.
pub(super) const FLAG_CUT: u8 = 4;

const HAS_AT: u8 = 1 << 6;
const HAS_PAYLOAD: u8 = 1 << 7;

/// An event that an event names (a ref, `at`'s deploy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EventRef {
    /// A stored event, by number.
    Number(u64),
    /// An event the store does not hold (only `at` may name one), by CID.
    Cid(Cid),
}

/// An event's fields as the store keeps them.
#[derive(Clone, Debug)]
pub(super) struct Compact {
    /// The event's CID.
    pub(super) cid: Cid,
    pub(super) op: Op,
    pub(super) at: Option<(EventRef, u32)>,
    pub(super) refs: Vec<EventRef>,
    pub(super) payload: Option<Cid>,
    pub(super) creator: PublicKey,
    pub(super) sig: Signature,
}

impl Compact {
    /// The event, its refs and `at` resolved by `cid_of` (refs keep their order, which
    /// is the event's: strictly increasing, or the entry is damaged).
    pub(super) fn event(
        &self,
        log: Cid,
        seq: u64,
        mut cid_of: impl FnMut(EventRef) -> Result<Cid, StoreError>,
    ) -> Result<Event, StoreError> {
        let at = match self.at {
            Some((deploy, index)) => Some((cid_of(deploy)?, index)),
            None => None,
        };
        let refs = self
            .refs
            .iter()
            .map(|r| cid_of(*r))
            .collect::<Result<Vec<Cid>, StoreError>>()?;
        if !refs.windows(2).all(|pair| pair[0] < pair[1]) {
            return Err(StoreError::corrupt(format!(
                "event {}: its refs are not in order",
                self.cid
            )));
        }
        let body = UnsignedEvent {
            log,
            seq,
            op: self.op.clone(),
            at,
            refs,
            payload: self.payload,
        };
        Ok(Event::from_parts(body, self.creator, self.sig))
    }
}

/// What an entry holds.
#[derive(Clone, Debug)]
pub(super) enum Body {
    /// A decoded event's fields (boxed: they are much larger than a raw entry's).
    Compact(Box<Compact>),
    /// Bytes that are not an event; `cut`: where the log's digest goes back.
    Raw { cut: Option<usize>, body: Vec<u8> },
}

/// One entry of a segment.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) flags: u8,
    pub(super) log: u64,
    pub(super) seq: u64,
    pub(super) body: Body,
}

impl Entry {
    /// A raw entry's bytes, the log's digest put back.
    pub(super) fn raw_bytes(cut: Option<usize>, body: &[u8], log: &Cid) -> Vec<u8> {
        match cut {
            None => body.to_vec(),
            Some(cut) => {
                let mut bytes = Vec::with_capacity(body.len() + 32);
                bytes.extend_from_slice(&body[..cut]);
                bytes.extend_from_slice(log.digest());
                bytes.extend_from_slice(&body[cut..]);
                bytes
            }
        }
    }
}

/// The 32-byte values a segment has named so far (for writing: their indices).
#[derive(Clone, Debug, Default)]
pub(super) struct Dictionary {
    values: Vec<[u8; 32]>,
    index: HashMap<[u8; 32], u64>,
}

impl Dictionary {
    /// Writes a reference to `value`, adding it if it is new.
    fn put(&mut self, out: &mut Vec<u8>, value: &[u8; 32]) {
        match self.index.get(value) {
            Some(&index) => put_varint(out, index + 1),
            None => {
                put_varint(out, 0);
                out.extend_from_slice(value);
                self.index.insert(*value, self.values.len() as u64);
                self.values.push(*value);
            }
        }
    }
}

/// Appends a compact entry for event `number`.
pub(super) fn put_compact(
    out: &mut Vec<u8>,
    dictionary: &mut Dictionary,
    number: u64,
    (flags, log, seq): (u8, u64, u64),
    compact: &Compact,
) {
    out.push(flags);
    put_varint(out, log);
    put_varint(out, seq);
    out.extend_from_slice(compact.cid.digest());
    let (kind, code) = match compact.op.target() {
        Target::None => (0, None),
        Target::Unused => (1, None),
        Target::Primitive(p) => (2, Some(*p as u8)),
        Target::Name(_) => (3, None),
        Target::Block(_) => (4, None),
    };
    let mut packed = compact.op.opcode() as u8 | kind << 3;
    if compact.at.is_some() {
        packed |= HAS_AT;
    }
    if compact.payload.is_some() {
        packed |= HAS_PAYLOAD;
    }
    out.push(packed);
    match compact.op.target() {
        Target::Name(name) => {
            put_varint(out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
        }
        Target::Block(block) => dictionary.put(out, block.digest()),
        _ => out.extend(code),
    }
    let put_ref = |out: &mut Vec<u8>, r: &EventRef| match r {
        EventRef::Number(n) => put_varint(out, number - n),
        EventRef::Cid(cid) => {
            put_varint(out, 0);
            out.extend_from_slice(cid.digest());
        }
    };
    if let Some((deploy, index)) = &compact.at {
        put_ref(out, deploy);
        put_varint(out, u64::from(*index));
    }
    put_varint(out, compact.refs.len() as u64);
    for r in &compact.refs {
        put_ref(out, r);
    }
    if let Some(payload) = &compact.payload {
        out.extend_from_slice(payload.digest());
    }
    dictionary.put(out, compact.creator.as_bytes());
    out.extend_from_slice(compact.sig.as_bytes());
}

/// Appends a raw entry.
pub(super) fn put_raw(
    out: &mut Vec<u8>,
    (flags, log, seq): (u8, u64, u64),
    cut: Option<usize>,
    body: &[u8],
) {
    out.push(flags | FLAG_RAW | if cut.is_some() { FLAG_CUT } else { 0 });
    put_varint(out, log);
    put_varint(out, seq);
    put_varint(out, body.len() as u64);
    if let Some(cut) = cut {
        put_varint(out, cut as u64);
    }
    out.extend_from_slice(body);
}

/// A segment's entries, parsed, and the dictionary they built (to go on writing it).
#[derive(Debug, Default)]
pub(super) struct Parsed {
    pub(super) entries: Vec<Entry>,
    pub(super) dictionary: Dictionary,
}

/// Parses a segment whose first entry is event number `start`; `None` if it is not
/// a well-formed segment.
pub(super) fn parse_segment(start: u64, segment: &[u8]) -> Option<Parsed> {
    let mut reader = Reader {
        bytes: segment,
        pos: 0,
    };
    let mut parsed = Parsed {
        entries: Vec::new(),
        dictionary: Dictionary::default(),
    };
    let mut keys: Vec<Option<PublicKey>> = Vec::new();
    while reader.pos < segment.len() {
        let number = start.checked_add(parsed.entries.len() as u64)?;
        let entry = reader.entry(number, &mut parsed.dictionary, &mut keys)?;
        parsed.entries.push(entry);
    }
    Some(parsed)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(byte)
    }

    fn varint(&mut self) -> Option<u64> {
        get_varint(self.bytes, &mut self.pos)
    }

    fn take(&mut self, len: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(len)?;
        let taken = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(taken)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn dictionary_value(&mut self, dictionary: &mut Dictionary) -> Option<[u8; 32]> {
        match self.varint()? {
            0 => {
                let value = self.array::<32>()?;
                dictionary
                    .index
                    .insert(value, dictionary.values.len() as u64);
                dictionary.values.push(value);
                Some(value)
            }
            index => dictionary
                .values
                .get(usize::try_from(index - 1).ok()?)
                .copied(),
        }
    }

    fn event_ref(&mut self, number: u64) -> Option<EventRef> {
        match self.varint()? {
            0 => Some(EventRef::Cid(Cid::from_digest(self.array::<32>()?))),
            back => Some(EventRef::Number(number.checked_sub(back)?)),
        }
    }

    fn entry(
        &mut self,
        number: u64,
        dictionary: &mut Dictionary,
        keys: &mut Vec<Option<PublicKey>>,
    ) -> Option<Entry> {
        let flags = self.byte()?;
        if flags & !(FLAG_PREV | FLAG_RAW | FLAG_CUT) != 0 {
            return None;
        }
        let log = self.varint()?;
        let seq = self.varint()?;
        let body = if flags & FLAG_RAW != 0 {
            let len = usize::try_from(self.varint()?).ok()?;
            let cut = if flags & FLAG_CUT != 0 {
                let cut = usize::try_from(self.varint()?).ok()?;
                Some((cut <= len).then_some(cut)?)
            } else {
                None
            };
            Body::Raw {
                cut,
                body: self.take(len)?.to_vec(),
            }
        } else if flags & FLAG_CUT != 0 {
            return None;
        } else {
            Body::Compact(Box::new(self.compact(number, dictionary, keys)?))
        };
        Some(Entry {
            flags,
            log,
            seq,
            body,
        })
    }

    fn compact(
        &mut self,
        number: u64,
        dictionary: &mut Dictionary,
        keys: &mut Vec<Option<PublicKey>>,
    ) -> Option<Compact> {
        let cid = Cid::from_digest(self.array::<32>()?);
        let packed = self.byte()?;
        let opcode = Opcode::from_u64(u64::from(packed & 7))?;
        let target = match packed >> 3 & 7 {
            0 => Target::None,
            1 => Target::Unused,
            2 => Target::Primitive(Primitive::from_u64(u64::from(self.byte()?))?),
            3 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Target::Name(Arc::from(std::str::from_utf8(self.take(len)?).ok()?))
            }
            4 => Target::Block(Cid::from_digest(self.dictionary_value(dictionary)?)),
            _ => return None,
        };
        let op = Op::new(opcode, target).ok()?;
        let at = if packed & HAS_AT != 0 {
            let deploy = self.event_ref(number)?;
            let index = u32::try_from(self.varint()?).ok()?;
            Some((deploy, index))
        } else {
            None
        };
        let count = usize::try_from(self.varint()?).ok()?;
        let mut refs = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            refs.push(self.event_ref(number)?);
        }
        let payload = if packed & HAS_PAYLOAD != 0 {
            Some(Cid::from_digest(self.array::<32>()?))
        } else {
            None
        };
        let creator = self.dictionary_value(dictionary)?;
        // Keys are decompressed once per segment.
        keys.resize(dictionary.values.len(), None);
        let slot = usize::try_from(*dictionary.index.get(&creator)?).ok()?;
        if keys[slot].is_none() {
            keys[slot] = Some(PublicKey::from_bytes(&creator).ok()?);
        }
        let creator = keys[slot]?;
        let sig = Signature::from_bytes(self.array::<64>()?);
        Some(Compact {
            cid,
            op,
            at,
            refs,
            payload,
            creator,
            sig,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn compact(n: u8, op: Op, at: Option<(EventRef, u32)>, refs: Vec<EventRef>) -> Compact {
        Compact {
            cid: Cid::of(&[n]),
            op,
            at,
            refs,
            payload: (n % 2 == 0).then(|| Cid::of(&[n, n])),
            creator: SigningKey::from_seed(&[n % 3; 32]).public_key(),
            sig: Signature::from_bytes([n; 64]),
        }
    }

    #[test]
    fn entries_round_trip_and_share_the_dictionary() {
        let block = Cid::of(b"block");
        let compacts = [
            compact(
                0,
                Op::new(Opcode::Create, Target::None).unwrap(),
                None,
                vec![],
            ),
            compact(
                1,
                Op::deploy(block),
                Some((EventRef::Cid(Cid::of(b"gone")), 2)),
                vec![EventRef::Number(10)],
            ),
            compact(
                2,
                Op::new(Opcode::In, Target::Name("über".into())).unwrap(),
                Some((EventRef::Number(11), 300)),
                vec![EventRef::Number(3), EventRef::Number(11)],
            ),
            compact(3, Op::deploy(block), None, vec![]),
            compact(
                4,
                Op::new(Opcode::In, Target::Primitive(Primitive::Arg)).unwrap(),
                None,
                vec![],
            ),
            compact(
                5,
                Op::new(Opcode::OpenCo, Target::Unused).unwrap(),
                None,
                vec![],
            ),
        ];
        let mut segment = Vec::new();
        let mut dictionary = Dictionary::default();
        for (i, c) in compacts.iter().enumerate() {
            let number = 11 + i as u64;
            put_compact(
                &mut segment,
                &mut dictionary,
                number,
                (FLAG_PREV, 7, i as u64),
                c,
            );
        }
        put_raw(&mut segment, (0, 8, 9), Some(2), b"abcd");
        put_raw(&mut segment, (FLAG_PREV, 8, 10), None, b"");
        // The block and the three keys each once.
        assert_eq!(dictionary.values.len(), 4);
        let parsed = parse_segment(11, &segment).expect("parses");
        assert_eq!(parsed.entries.len(), compacts.len() + 2);
        for (i, (entry, c)) in parsed.entries.iter().zip(&compacts).enumerate() {
            assert_eq!(
                (entry.flags, entry.log, entry.seq),
                (FLAG_PREV, 7, i as u64)
            );
            let Body::Compact(back) = &entry.body else {
                panic!("compact")
            };
            assert_eq!(
                (back.cid, &back.op, back.at, &back.refs, back.payload),
                (c.cid, &c.op, c.at, &c.refs, c.payload)
            );
            assert_eq!((back.creator, back.sig), (c.creator, c.sig));
        }
        let Body::Raw { cut, body } = &parsed.entries[6].body else {
            panic!("raw")
        };
        assert_eq!((*cut, &body[..]), (Some(2), &b"abcd"[..]));
        let log = Cid::of(b"log");
        let bytes = Entry::raw_bytes(*cut, body, &log);
        assert_eq!(&bytes[2..34], log.digest());
        assert_eq!(parsed.dictionary.values, dictionary.values);
    }

    proptest::proptest! {
        /// Any bytes, read as any of the store's own records, are refused or read,
        /// never a panic: segments (and the events and raw bytes of their entries),
        /// index rows, compact slice manifests.
        #[test]
        fn any_stored_bytes_are_read_or_refused_never_a_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            start in proptest::prelude::any::<u64>(),
        ) {
            use super::super::{manifests, rows::{ChildChunk, LogChunk}};
            if let Some(parsed) = parse_segment(start, &bytes) {
                for (i, entry) in parsed.entries.iter().enumerate() {
                    let log = Cid::of(&entry.log.to_be_bytes());
                    match &entry.body {
                        Body::Raw { cut, body } => {
                            let _ = Entry::raw_bytes(*cut, body, &log);
                        }
                        Body::Compact(compact) => {
                            let _ = compact.event(log, entry.seq, |r| match r {
                                EventRef::Number(n)
                                    if start.checked_add(i as u64).is_some_and(|at| n < at) =>
                                {
                                    Ok(Cid::of(&n.to_be_bytes()))
                                }
                                EventRef::Number(n) => Err(StoreError::corrupt(format!("{n}"))),
                                EventRef::Cid(cid) => Ok(cid),
                            }).map(|event| event.encode());
                        }
                    }
                }
            }
            if let Some(chunk) = LogChunk::decode(&bytes) {
                let _ = chunk.seqs(start).map(Iterator::count);
                let _ = chunk.get(start);
            }
            if let Some(mut children) = ChildChunk::decode(start, &bytes) {
                let _ = children.of(start).count();
                children.encode(start, &mut Vec::new());
            }
            if let Some(stored) = manifests::parse(&bytes) {
                let _ = stored.manifest(Cid::of(b"parent")).encode();
            }
        }
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        let mut segment = Vec::new();
        put_compact(
            &mut segment,
            &mut Dictionary::default(),
            5,
            (0, 1, 2),
            &compact(
                1,
                Op::deploy(Cid::of(b"b")),
                None,
                vec![EventRef::Number(4)],
            ),
        );
        assert!(parse_segment(5, &segment).is_some());
        // Every truncation, and a ref to before event 0.
        for len in 0..segment.len() {
            if len > 0 {
                assert!(parse_segment(5, &segment[..len]).is_none(), "{len}");
            }
        }
        assert!(
            parse_segment(0, &segment).is_none(),
            "refers before event 0"
        );
        for bad in [
            &[8u8, 0, 0][..],
            &[FLAG_CUT, 0, 0],
            &[FLAG_RAW | FLAG_CUT, 0, 0, 1, 2, 0],
        ] {
            assert!(parse_segment(0, bad).is_none(), "{bad:?}");
        }
        // Every single-byte change parses or is refused, never panics.
        for i in 0..segment.len() {
            for x in [1u8, 0x80, 0xff] {
                let mut changed = segment.clone();
                changed[i] ^= x;
                let _ = parse_segment(5, &changed);
            }
        }
    }
}
