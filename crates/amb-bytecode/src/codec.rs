//! Block encoding: deterministic CBOR (DAG-CBOR rules) written and read with ciborium.
//!
//! ```text
//! block       = [1, [instruction, ...]]          format version 1
//! instruction = [opcode, target, prev]
//! target      = text | uint | tag42(bytes) | null
//! prev        = uint (index of an earlier instruction) | null (create only)
//! ```
//!
//! Decoding checks everything ([`DecodeError`] names the instruction and the rule) and
//! then re-encodes: bytes that are not the one canonical encoding are refused, so a
//! block has exactly one byte form and one CID.

use serde::{Serialize, Serializer, ser::SerializeTuple};

use ciborium::Value;

use crate::{
    block::{Block, Instruction, Opcode, Target},
    cbor::{self, Framing, Link, ShapeError},
    cid::Cid,
};

/// The block format version written first in every block.
pub const FORMAT_VERSION: u64 = 1;

/// Limits on a block being decoded or compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    /// Largest encoded block. Default 4 MiB.
    pub max_block_bytes: usize,
    /// Most instructions in one block. Default 1,048,576.
    pub max_instructions: usize,
    /// Longest name. Default 1 MiB.
    pub max_name_bytes: usize,
}

impl Default for BlockLimits {
    fn default() -> BlockLimits {
        BlockLimits {
            max_block_bytes: 4 << 20,
            max_instructions: 1 << 20,
            max_name_bytes: 1 << 20,
        }
    }
}

/// Why bytes are not a valid block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Larger than [`BlockLimits::max_block_bytes`].
    #[error("block of {size} bytes is larger than the limit of {limit} bytes (max_block_bytes)")]
    TooLarge {
        /// Block size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not CBOR, or CBOR followed by more bytes.
    #[error("not well-formed CBOR: {0}")]
    Cbor(String),
    /// CBOR of the wrong shape.
    #[error("{place}: {problem}")]
    Shape {
        /// Where: `block`, `instruction 3`, `instruction 3 target`…
        place: String,
        /// What is wrong.
        problem: String,
    },
    /// An opcode outside 0..=7.
    #[error("instruction {index}: unknown opcode {opcode}")]
    UnknownOpcode {
        /// Instruction index.
        index: usize,
        /// The number found.
        opcode: u64,
    },
    /// A target that the opcode does not allow.
    #[error("instruction {index} ({op}): target {found} is not allowed; {rule}")]
    BadTarget {
        /// Instruction index.
        index: usize,
        /// The opcode's mnemonic.
        op: &'static str,
        /// What was found.
        found: String,
        /// What is allowed.
        rule: &'static str,
    },
    /// The first instruction is not a `create`, or a later one is.
    #[error("instruction {index}: {problem}")]
    Create {
        /// Instruction index.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// An edge to an instruction that does not exist.
    #[error("instruction {index}: edge to instruction {prev}, but the block has {len}")]
    DanglingEdge {
        /// Instruction index.
        index: usize,
        /// The edge target.
        prev: u64,
        /// Number of instructions.
        len: usize,
    },
    /// An edge to itself or a later instruction: a cycle, or not in topological order.
    #[error(
        "instruction {index}: edge to instruction {prev} does not point to an earlier instruction (cycles and forward edges are refused)"
    )]
    Cycle {
        /// Instruction index.
        index: usize,
        /// The edge target.
        prev: u64,
    },
    /// An edge to an instruction that cannot have a continuation.
    #[error("instruction {index}: follows instruction {prev}, a deploy, which has no continuation")]
    FollowsDeploy {
        /// Instruction index.
        index: usize,
        /// The deploy.
        prev: u32,
    },
    /// More instructions than [`BlockLimits::max_instructions`].
    #[error("block has {count} instructions, more than the limit of {limit} (max_instructions)")]
    TooManyInstructions {
        /// Count found.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Valid, but not the canonical encoding of its content.
    #[error("not the canonical encoding (DAG-CBOR: shortest integers, definite lengths)")]
    NotCanonical,
}

impl From<Framing> for DecodeError {
    fn from(e: Framing) -> DecodeError {
        match e {
            Framing::TooLarge { size, limit } => DecodeError::TooLarge { size, limit },
            Framing::Cbor(problem) => DecodeError::Cbor(problem),
            Framing::NotCanonical => DecodeError::NotCanonical,
        }
    }
}

impl From<ShapeError> for DecodeError {
    fn from(e: ShapeError) -> DecodeError {
        DecodeError::Shape {
            place: e.place,
            problem: e.problem,
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Target::Name(name) => s.serialize_str(name),
            Target::Primitive(p) => s.serialize_u8(*p as u8),
            Target::Unused => s.serialize_u8(0),
            Target::None => s.serialize_none(),
            Target::Block(cid) => Link(*cid).serialize(s),
        }
    }
}

impl Serialize for Instruction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&(self.op as u8))?;
        t.serialize_element(&self.target)?;
        t.serialize_element(&self.prev)?;
        t.end()
    }
}

impl Serialize for Block {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&FORMAT_VERSION)?;
        t.serialize_element(&self.instructions)?;
        t.end()
    }
}

impl Block {
    /// The canonical CBOR bytes of the block.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 12 * self.instructions.len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical CBOR bytes of the block to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        cbor::into_vec(self, out);
    }

    /// The block's bytes and CID.
    pub fn encode_with_cid(&self) -> (Cid, Vec<u8>) {
        let bytes = self.encode();
        (Cid::of(&bytes), bytes)
    }

    /// Decodes and validates a block with the default limits.
    pub fn decode(bytes: &[u8]) -> Result<Block, DecodeError> {
        Block::decode_with_limits(bytes, &BlockLimits::default())
    }

    /// Decodes and validates a block.
    pub fn decode_with_limits(bytes: &[u8], limits: &BlockLimits) -> Result<Block, DecodeError> {
        cbor::decode_canonical(
            bytes,
            limits.max_block_bytes,
            |value| block_from_value(value, limits),
            Block::encode,
        )
    }
}

fn block_from_value(value: Value, limits: &BlockLimits) -> Result<Block, DecodeError> {
    let [version, instructions] = cbor::expect_array(value, &"block")?;
    if cbor::uint(&version) != Some(FORMAT_VERSION) {
        return Err(cbor::shape(
            "block version",
            format!(
                "expected {FORMAT_VERSION}, found {}",
                cbor::describe(&version)
            ),
        )
        .into());
    }
    let items = cbor::expect_list(instructions, &"block instructions")?;
    if items.len() > limits.max_instructions {
        return Err(DecodeError::TooManyInstructions {
            count: items.len(),
            limit: limits.max_instructions,
        });
    }
    if items.is_empty() {
        return Err(DecodeError::Create {
            index: 0,
            problem: "a block starts with a create, but this one is empty",
        });
    }
    let mut block = Block {
        instructions: Vec::with_capacity(items.len()),
    };
    let len = items.len();
    for (index, item) in items.into_iter().enumerate() {
        let instruction = instruction_from_value(index, item, &block, len, limits)?;
        block.instructions.push(instruction);
    }
    Ok(block)
}

fn instruction_from_value(
    index: usize,
    value: Value,
    block: &Block,
    len: usize,
    limits: &BlockLimits,
) -> Result<Instruction, DecodeError> {
    let [op, target, prev] = cbor::expect_array(value, &format_args!("instruction {index}"))?;
    let code = cbor::expect_uint(&op, &format_args!("instruction {index} opcode"))?;
    let op = Opcode::from_u64(code).ok_or(DecodeError::UnknownOpcode {
        index,
        opcode: code,
    })?;
    match (index, op) {
        (0, Opcode::Create) | (1.., _) if (index == 0) == (op == Opcode::Create) => {}
        (0, _) => {
            return Err(DecodeError::Create {
                index,
                problem: "a block starts with a create",
            });
        }
        _ => {
            return Err(DecodeError::Create {
                index,
                problem: "only the first instruction of a block is a create",
            });
        }
    }
    let target = cbor::target_from_value(op, &target, limits.max_name_bytes).map_err(|e| {
        DecodeError::BadTarget {
            index,
            op: e.op,
            found: e.found,
            rule: e.rule,
        }
    })?;
    let prev = match (&prev, op) {
        (Value::Null, Opcode::Create) => None,
        (_, Opcode::Create) => {
            return Err(cbor::shape(
                format_args!("instruction {index} prev"),
                format!(
                    "a create follows nothing (null), found {}",
                    cbor::describe(&prev)
                ),
            )
            .into());
        }
        _ => {
            let p = cbor::uint(&prev).ok_or_else(|| {
                cbor::shape(
                    format_args!("instruction {index} prev"),
                    format!(
                        "expected an instruction index, found {}",
                        cbor::describe(&prev)
                    ),
                )
            })?;
            if p >= len as u64 {
                return Err(DecodeError::DanglingEdge {
                    index,
                    prev: p,
                    len,
                });
            }
            if p >= index as u64 {
                return Err(DecodeError::Cycle { index, prev: p });
            }
            let p = p as u32;
            if block.instructions[p as usize].op == Opcode::Deploy {
                return Err(DecodeError::FollowsDeploy { index, prev: p });
            }
            Some(p)
        }
    };
    Ok(Instruction { op, target, prev })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::Primitive;

    fn instr(op: Opcode, target: Target, prev: Option<u32>) -> Instruction {
        Instruction { op, target, prev }
    }

    /// The block of chapter 06's `call[out a.in b|open_]`.
    fn call_block() -> Block {
        Block {
            instructions: vec![
                instr(Opcode::Create, Target::Primitive(Primitive::Call), None),
                instr(Opcode::Out, Target::Name("a".into()), Some(0)),
                instr(Opcode::In, Target::Name("b".into()), Some(1)),
                instr(Opcode::OpenCo, Target::Unused, Some(0)),
            ],
        }
    }

    #[test]
    fn chapter_06_example_bytes() {
        let bytes = call_block().encode();
        assert_eq!(
            hex::encode(&bytes),
            "82 01 84 830001f6 8304616100 8302616201 83070000".replace(' ', "")
        );
        assert_eq!(Block::decode(&bytes), Ok(call_block()));
    }

    #[test]
    fn deploy_links_round_trip() {
        let child = Cid::of(b"child");
        let block = Block {
            instructions: vec![
                instr(Opcode::Create, Target::None, None),
                instr(Opcode::Deploy, Target::Block(child), Some(0)),
                instr(Opcode::InCo, Target::None, Some(0)),
            ],
        };
        let bytes = block.encode();
        assert_eq!(Block::decode(&bytes), Ok(block.clone()));
        assert_eq!(block.children().collect::<Vec<_>>(), [child]);
    }

    fn decode_hex(text: &str) -> Result<Block, DecodeError> {
        Block::decode(&hex::decode(text.replace(' ', "")).unwrap())
    }

    #[test]
    fn invalid_blocks_are_refused_with_the_rule() {
        // Unknown opcode 9.
        assert!(matches!(
            decode_hex("82 01 82 83 00 01 f6 83 09 61 61 00"),
            Err(DecodeError::UnknownOpcode {
                index: 1,
                opcode: 9
            })
        ));
        // Dangling edge to instruction 5.
        assert!(matches!(
            decode_hex("82 01 82 83 00 01 f6 83 02 61 61 05"),
            Err(DecodeError::DanglingEdge {
                index: 1,
                prev: 5,
                len: 2
            })
        ));
        // Self edge.
        assert!(matches!(
            decode_hex("82 01 82 83 00 01 f6 83 02 61 61 01"),
            Err(DecodeError::Cycle { index: 1, prev: 1 })
        ));
        // No create first.
        assert!(matches!(
            decode_hex("82 01 81 83 02 61 61 f6"),
            Err(DecodeError::Create { index: 0, .. })
        ));
        // open_ with a name.
        assert!(matches!(
            decode_hex("82 01 82 83 00 01 f6 83 07 61 61 00"),
            Err(DecodeError::BadTarget { index: 1, .. })
        ));
        // Primitive name spelled as text.
        assert!(matches!(
            decode_hex("82 01 81 83 00 64 63 61 6c 6c f6"),
            Err(DecodeError::BadTarget { index: 0, .. })
        ));
        // Non-minimal integer (version 1 as 0x18 0x01).
        assert_eq!(
            decode_hex("82 18 01 81 83 00 01 f6"),
            Err(DecodeError::NotCanonical)
        );
        // Trailing bytes.
        assert!(matches!(
            decode_hex("82 01 81 83 00 01 f6 00"),
            Err(DecodeError::Cbor(_))
        ));
        // Oversize.
        let limits = BlockLimits {
            max_block_bytes: 4,
            ..BlockLimits::default()
        };
        assert!(matches!(
            Block::decode_with_limits(&call_block().encode(), &limits),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
