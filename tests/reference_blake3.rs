//! Independent references for the spec's test vectors: a BLAKE3-256, RFC 4648 base32
//! and CIDv1 text written here from their specifications, not with the `blake3` or
//! `cid` crates that the libraries use. `spec_vectors.rs` (blocks) and
//! `event_vectors.rs` (manifests and events) recompute every published CID with them.
//!
//! The BLAKE3 is kept deliberately simple: hash mode, no key, whole input in memory,
//! the chunk tree built recursively.

const IV: [u32; 8] = [
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
];
const MSG_PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const PARENT: u32 = 4;
const ROOT: u32 = 8;
const DERIVE_KEY_CONTEXT: u32 = 32;
const DERIVE_KEY_MATERIAL: u32 = 64;
const BLOCK_LEN: usize = 64;
const CHUNK_LEN: usize = 1024;

#[allow(clippy::too_many_arguments)]
fn g(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize, x: u32, y: u32) {
    s[a] = s[a].wrapping_add(s[b]).wrapping_add(x);
    s[d] = (s[d] ^ s[a]).rotate_right(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_right(12);
    s[a] = s[a].wrapping_add(s[b]).wrapping_add(y);
    s[d] = (s[d] ^ s[a]).rotate_right(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_right(7);
}

fn round(s: &mut [u32; 16], m: &[u32; 16]) {
    g(s, 0, 4, 8, 12, m[0], m[1]);
    g(s, 1, 5, 9, 13, m[2], m[3]);
    g(s, 2, 6, 10, 14, m[4], m[5]);
    g(s, 3, 7, 11, 15, m[6], m[7]);
    g(s, 0, 5, 10, 15, m[8], m[9]);
    g(s, 1, 6, 11, 12, m[10], m[11]);
    g(s, 2, 7, 8, 13, m[12], m[13]);
    g(s, 3, 4, 9, 14, m[14], m[15]);
}

fn compress(cv: &[u32; 8], block: &[u32; 16], counter: u64, len: u32, flags: u32) -> [u32; 16] {
    let mut s = [
        cv[0],
        cv[1],
        cv[2],
        cv[3],
        cv[4],
        cv[5],
        cv[6],
        cv[7],
        IV[0],
        IV[1],
        IV[2],
        IV[3],
        counter as u32,
        (counter >> 32) as u32,
        len,
        flags,
    ];
    let mut m = *block;
    for r in 0..7 {
        round(&mut s, &m);
        if r < 6 {
            m = std::array::from_fn(|i| m[MSG_PERMUTATION[i]]);
        }
    }
    for i in 0..8 {
        s[i] ^= s[i + 8];
        s[i + 8] ^= cv[i];
    }
    s
}

fn words(bytes: &[u8]) -> [u32; 16] {
    let mut padded = [0u8; BLOCK_LEN];
    padded[..bytes.len()].copy_from_slice(bytes);
    std::array::from_fn(|i| u32::from_le_bytes(padded[4 * i..4 * i + 4].try_into().unwrap()))
}

/// The last compression of a node, before the ROOT flag is decided.
struct Output {
    cv: [u32; 8],
    block: [u32; 16],
    counter: u64,
    len: u32,
    flags: u32,
}

impl Output {
    fn chaining_value(&self) -> [u32; 8] {
        let s = compress(&self.cv, &self.block, self.counter, self.len, self.flags);
        std::array::from_fn(|i| s[i])
    }

    fn root_hash(&self) -> [u8; 32] {
        let s = compress(&self.cv, &self.block, 0, self.len, self.flags | ROOT);
        let mut out = [0u8; 32];
        for i in 0..8 {
            out[4 * i..4 * i + 4].copy_from_slice(&s[i].to_le_bytes());
        }
        out
    }
}

fn chunk(bytes: &[u8], counter: u64, key: &[u32; 8], mode: u32) -> Output {
    let blocks: Vec<&[u8]> = if bytes.is_empty() {
        vec![&[]]
    } else {
        bytes.chunks(BLOCK_LEN).collect()
    };
    let mut cv = *key;
    let last = blocks.len() - 1;
    for (i, block) in blocks.iter().enumerate() {
        let mut flags = mode | if i == 0 { CHUNK_START } else { 0 };
        if i == last {
            flags |= CHUNK_END;
            return Output {
                cv,
                block: words(block),
                counter,
                len: block.len() as u32,
                flags,
            };
        }
        let s = compress(&cv, &words(block), counter, BLOCK_LEN as u32, flags);
        cv = std::array::from_fn(|j| s[j]);
    }
    unreachable!("the last block returns")
}

/// The subtree over `chunks` chunks starting at chunk index `first`.
fn node(input: &[u8], first: u64, chunks: u64, key: &[u32; 8], mode: u32) -> Output {
    if chunks == 1 {
        return chunk(input, first, key, mode);
    }
    // The left subtree holds the largest power of two of chunks that leaves at
    // least one for the right: the highest power of two not above chunks - 1.
    let left = 1u64 << (63 - (chunks - 1).leading_zeros());
    let split = (left as usize) * CHUNK_LEN;
    let l = node(&input[..split], first, left, key, mode).chaining_value();
    let r = node(&input[split..], first + left, chunks - left, key, mode).chaining_value();
    let mut block = [0u32; 16];
    block[..8].copy_from_slice(&l);
    block[8..].copy_from_slice(&r);
    Output {
        cv: *key,
        block,
        counter: 0,
        len: BLOCK_LEN as u32,
        flags: PARENT | mode,
    }
}

/// The BLAKE3-256 hash of `input`.
pub fn hash(input: &[u8]) -> [u8; 32] {
    hash_with(input, &IV, 0)
}

fn hash_with(input: &[u8], key: &[u32; 8], mode: u32) -> [u8; 32] {
    let chunks = input.len().div_ceil(CHUNK_LEN).max(1) as u64;
    node(input, 0, chunks, key, mode).root_hash()
}

/// BLAKE3's key derivation mode: `derive_key(context, material)`, 32 bytes.
pub fn derive_key(context: &str, material: &[u8]) -> [u8; 32] {
    let context_key = hash_with(context.as_bytes(), &IV, DERIVE_KEY_CONTEXT);
    let key: [u32; 8] = std::array::from_fn(|i| {
        u32::from_le_bytes(context_key[4 * i..4 * i + 4].try_into().unwrap())
    });
    hash_with(material, &key, DERIVE_KEY_MATERIAL)
}

/// RFC 4648 base32, lower case, no padding.
pub fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | byte as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// CIDv1 text: multibase `b`, then version 1, dag-cbor 0x71, blake3 0x1e, length 32.
pub fn independent_cid(block: &[u8]) -> String {
    let mut binary = vec![0x01, 0x71, 0x1e, 0x20];
    binary.extend_from_slice(&hash(block));
    format!("b{}", base32_lower(&binary))
}

/// The bytes of RFC 4648 base32 text, lower case, no padding; `None` if it is not
/// (a character outside the alphabet, or non-zero bits left over at the end).
pub fn base32_lower_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    (buffer == 0).then_some(out)
}

/// The binary CID of CIDv1 text of ours (`b` and base32 of `01 71 1e 20` and a
/// 32-byte digest); `None` for anything else.
pub fn independent_cid_bytes(text: &str) -> Option<[u8; 36]> {
    let binary = base32_lower_decode(text.strip_prefix('b')?)?;
    let binary: [u8; 36] = binary.try_into().ok()?;
    (binary[..4] == [0x01, 0x71, 0x1e, 0x20]).then_some(binary)
}
