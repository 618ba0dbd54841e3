//! Ambients bytecode: the instruction DAG of whitepaper chapter 06 as `spec/bytecode.md`
//! fixes it.
//!
//! [`compile`] turns a ROAM [`amb_syntax::Ast`] into blocks, one per ambient plus the
//! program's root block, each deterministic CBOR addressed by a [`Cid`] (CIDv1,
//! dag-cbor, BLAKE3-256). [`Block::decode`] validates untrusted bytes and never
//! panics; [`Program`] loads a whole program by CID, turns it back into an AST and
//! explains it.
//!
//! This crate does no I/O: callers hand it bytes and a way to fetch blocks.

mod block;
pub mod cbor;
mod cid;
mod codec;
mod compile;
mod program;

pub use block::{Block, Half, Instruction, Opcode, Primitive, Target};
pub use cid::{BLAKE3_256, CID_PREFIX, Cid, CidError, DAG_CBOR};
pub use codec::{BlockLimits, DecodeError, FORMAT_VERSION};
pub use compile::{
    CompileError, CompiledProgram, NodeMap, compile, compile_with_limits, compile_with_map, opcode,
};
pub use program::{LoadError, Program, ProgramLimits};
