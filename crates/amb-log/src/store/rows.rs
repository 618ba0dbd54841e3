//! The index rows of the store: a log's event numbers by seq (`log_events`), the
//! events that refer to an event (`children`), and the LEB128 varints they (and the
//! segments) are written with.

/// Index rows of `log_events` and `children` cover this many seqs or events.
pub(super) const CHUNK: u64 = 64;

/// A row of `log_events`: the event numbers of seqs `chunk * CHUNK ..` of one log.
/// Encoded as a 64-bit mask of the seqs present (little-endian), then each present
/// event number as a zigzag varint of its difference from the one before (from 0).
#[derive(Clone, Debug)]
pub(super) struct LogChunk {
    present: u64,
    numbers: [u64; CHUNK as usize],
}

impl Default for LogChunk {
    fn default() -> LogChunk {
        LogChunk {
            present: 0,
            numbers: [0; CHUNK as usize],
        }
    }
}

impl LogChunk {
    pub(super) fn get(&self, seq: u64) -> Option<u64> {
        let bit = seq % CHUNK;
        (self.present >> bit & 1 == 1).then(|| self.numbers[bit as usize])
    }

    pub(super) fn set(&mut self, seq: u64, number: u64) {
        let bit = seq % CHUNK;
        self.present |= 1 << bit;
        self.numbers[bit as usize] = number;
    }

    /// `(seq, event number)` in seq order; `None` if the row's number is too large
    /// for its seqs (a damaged key).
    pub(super) fn seqs(&self, chunk_no: u64) -> Option<impl Iterator<Item = (u64, u64)> + '_> {
        let base = chunk_no.checked_mul(CHUNK)?;
        Some(
            self.present()
                .map(move |bit| (base + bit, self.numbers[bit as usize])),
        )
    }

    /// The bits of the seqs present, in order.
    fn present(&self) -> impl Iterator<Item = u64> + '_ {
        (0..CHUNK).filter(|bit| self.present >> bit & 1 == 1)
    }

    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.present.to_le_bytes());
        let mut previous = 0u64;
        for number in self.present().map(|bit| self.numbers[bit as usize]) {
            let delta = number.wrapping_sub(previous) as i64;
            put_varint(out, ((delta << 1) ^ (delta >> 63)) as u64);
            previous = number;
        }
    }

    pub(super) fn decode(row: &[u8]) -> Option<LogChunk> {
        let mask = row.get(..8)?;
        let present = u64::from_le_bytes(mask.try_into().ok()?);
        let mut chunk = LogChunk {
            present,
            numbers: [0; CHUNK as usize],
        };
        let mut pos = 8;
        let mut previous = 0u64;
        for bit in 0..CHUNK {
            if present >> bit & 1 == 1 {
                let zigzag = get_varint(row, &mut pos)?;
                let delta = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
                previous = previous.wrapping_add(delta as u64);
                chunk.numbers[bit as usize] = previous;
            }
        }
        (pos == row.len()).then_some(chunk)
    }
}

/// A row of `children`: `(parent, child)` event number pairs for the parents
/// `chunk * CHUNK ..`. Encoded, sorted, as the parent's offset in the chunk (a byte)
/// then `child - parent - 1` as a varint (a child is always written after its parent).
#[derive(Clone, Debug, Default)]
pub(super) struct ChildChunk {
    pub(super) pairs: Vec<(u64, u64)>,
}

impl ChildChunk {
    /// The children of one parent, in write order.
    pub(super) fn of(&self, parent: u64) -> impl Iterator<Item = u64> + '_ {
        self.pairs
            .iter()
            .filter(move |(p, _)| *p == parent)
            .map(|(_, child)| *child)
    }

    pub(super) fn encode(&mut self, chunk_no: u64, out: &mut Vec<u8>) {
        self.pairs.sort_unstable();
        self.pairs.dedup();
        for &(parent, child) in &self.pairs {
            out.push((parent - chunk_no * CHUNK) as u8);
            put_varint(out, child - parent - 1);
        }
    }

    pub(super) fn decode(chunk_no: u64, row: &[u8]) -> Option<ChildChunk> {
        let base = chunk_no.checked_mul(CHUNK)?;
        let mut pairs = Vec::new();
        let mut pos = 0;
        while pos < row.len() {
            let offset = u64::from(row[pos]);
            pos += 1;
            if offset >= CHUNK {
                return None;
            }
            let parent = base + offset;
            let child = parent
                .checked_add(1)?
                .checked_add(get_varint(row, &mut pos)?)?;
            pairs.push((parent, child));
        }
        Some(ChildChunk { pairs })
    }
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(super) fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_rows_round_trip_and_refuse_garbage() {
        let mut chunk = LogChunk::default();
        for (seq, number) in [(130, 9_000_000), (128, 5), (191, 6), (160, u64::MAX)] {
            chunk.set(seq, number);
        }
        let mut row = Vec::new();
        chunk.encode(&mut row);
        let back = LogChunk::decode(&row).expect("decodes");
        let seqs: Vec<_> = back.seqs(2).expect("in range").collect();
        assert!(back.seqs(u64::MAX / CHUNK + 1).is_none());
        assert_eq!(
            seqs,
            [(128, 5), (130, 9_000_000), (160, u64::MAX), (191, 6)]
        );
        assert_eq!(back.get(130), Some(9_000_000));
        assert_eq!(back.get(131), None);
        for bad in [
            &row[..row.len() - 1],
            &[row.clone(), vec![0]].concat()[..],
            &[1, 2],
        ] {
            assert!(LogChunk::decode(bad).is_none(), "{bad:?}");
        }

        let mut children = ChildChunk {
            pairs: vec![(70, 1000), (64, 65), (70, 71), (64, 65)],
        };
        row.clear();
        children.encode(1, &mut row);
        let back = ChildChunk::decode(1, &row).expect("decodes");
        assert_eq!(back.of(70).collect::<Vec<_>>(), [71, 1000]);
        assert_eq!(back.of(64).collect::<Vec<_>>(), [65]);
        assert!(ChildChunk::decode(1, &[64, 0]).is_none());
        assert!(ChildChunk::decode(1, &[3]).is_none());
        assert!(ChildChunk::decode(u64::MAX, &[0, 0]).is_none());
    }

    #[test]
    fn varints_round_trip_and_refuse_garbage() {
        let mut out = Vec::new();
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            out.clear();
            put_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        let mut pos = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80], &mut pos), None);
    }
}
