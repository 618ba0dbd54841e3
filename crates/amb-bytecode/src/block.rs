//! Blocks: one ambient's instructions, `(opcode, target)` with a causal edge each.
//!
//! A block starts with the `create` of its ambient (the program's root block creates
//! the anonymous root) and lists the ambient's own instructions by position, in
//! pre-order of the source. Each instruction but the `create` names the instruction
//! it follows (`prev`): the continuation of a capability follows that capability, and
//! the top-level parts of the body follow the `create`. Parallel parts are branches of
//! one instruction. A nested ambient is a `deploy` whose target is its own block's
//! CID, so a block reveals none of its children's contents.

use std::{fmt, sync::Arc};

use amb_syntax::CapKind;

use crate::cid::Cid;

/// Opcodes of the execution model and the calculus (whitepaper chapter 06).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Opcode {
    /// 0: create an ambient.
    Create = 0,
    /// 1: deploy a nested ambient's block.
    Deploy = 1,
    /// 2: `in n`.
    In = 2,
    /// 3: `in_ n`.
    InCo = 3,
    /// 4: `out n`.
    Out = 4,
    /// 5: `out_ n`.
    OutCo = 5,
    /// 6: `open n`.
    Open = 6,
    /// 7: `open_`.
    OpenCo = 7,
}

impl Opcode {
    /// The opcode of a number, if it is one.
    pub fn from_u64(value: u64) -> Option<Opcode> {
        Some(match value {
            0 => Opcode::Create,
            1 => Opcode::Deploy,
            2 => Opcode::In,
            3 => Opcode::InCo,
            4 => Opcode::Out,
            5 => Opcode::OutCo,
            6 => Opcode::Open,
            7 => Opcode::OpenCo,
            _ => return None,
        })
    }

    /// Whether the opcode takes `target` (`spec/bytecode.md` §2); if not, the rule.
    ///
    /// A name that is a primitive's name must be [`Target::Primitive`], never
    /// [`Target::Name`]: each name has one encoding.
    pub fn check_target(self, target: &Target) -> Result<(), &'static str> {
        use Target as T;
        match (self, target) {
            (_, T::Name(name)) if Primitive::from_name(name).is_some() => {
                Err("primitive names are written as their code")
            }
            (
                Opcode::Create | Opcode::InCo | Opcode::OutCo,
                T::Name(_) | T::Primitive(_) | T::None,
            )
            | (Opcode::In | Opcode::Out | Opcode::Open, T::Name(_) | T::Primitive(_))
            | (Opcode::Deploy, T::Block(_))
            | (Opcode::OpenCo, T::Unused) => Ok(()),
            _ => Err(self.target_rule()),
        }
    }

    /// Which targets the opcode takes, in words.
    pub fn target_rule(self) -> &'static str {
        match self {
            Opcode::Create => "create takes a name, a primitive code 0-3, or null for the root",
            Opcode::Deploy => "deploy takes a CID link (tag 42) to a dag-cbor BLAKE3-256 block",
            Opcode::In | Opcode::Out | Opcode::Open => "a name or a primitive code 0-3",
            Opcode::InCo | Opcode::OutCo => "a name, a primitive code 0-3, or null for any ambient",
            Opcode::OpenCo => "open_ takes no name; its target is always 0",
        }
    }

    /// The opcode of a capability.
    pub fn of_cap(cap: CapKind) -> Opcode {
        match cap {
            CapKind::In => Opcode::In,
            CapKind::InCo => Opcode::InCo,
            CapKind::Out => Opcode::Out,
            CapKind::OutCo => Opcode::OutCo,
            CapKind::Open => Opcode::Open,
            CapKind::OpenCo => Opcode::OpenCo,
        }
    }

    /// The capability kind of a capability opcode; `None` for `create` and `deploy`,
    /// which are not capabilities.
    pub fn cap_kind(self) -> Option<CapKind> {
        Some(match self {
            Opcode::In => CapKind::In,
            Opcode::InCo => CapKind::InCo,
            Opcode::Out => CapKind::Out,
            Opcode::OutCo => CapKind::OutCo,
            Opcode::Open => CapKind::Open,
            Opcode::OpenCo => CapKind::OpenCo,
            Opcode::Create | Opcode::Deploy => return None,
        })
    }

    /// Which half of a step the opcode's event is (`spec/events.md` §4): the first
    /// half (`in`, `out`, `open_`: written first, it starts the step) or the second
    /// (`in_`, `out_`, `open`: it refers to the first and completes the step). `None`
    /// for `create` and `deploy`, which are no step's half.
    pub fn half(self) -> Option<Half> {
        match self {
            Opcode::In | Opcode::Out | Opcode::OpenCo => Some(Half::First),
            Opcode::InCo | Opcode::OutCo | Opcode::Open => Some(Half::Second),
            Opcode::Create | Opcode::Deploy => None,
        }
    }

    /// Whether the opcode's event starts a step (its first half).
    pub fn starts_step(self) -> bool {
        self.half() == Some(Half::First)
    }

    /// Whether the opcode's event completes a step (its second half).
    pub fn completes_step(self) -> bool {
        self.half() == Some(Half::Second)
    }

    /// Whether the opcode is a co-capability (`in_`, `out_`, `open_`).
    pub fn is_co(self) -> bool {
        matches!(self, Opcode::InCo | Opcode::OutCo | Opcode::OpenCo)
    }

    /// The other half of the opcode's step: `in` and `in_`, `out` and `out_`, `open`
    /// and `open_` pair; `None` for `create` and `deploy`.
    pub fn dual(self) -> Option<Opcode> {
        Some(match self {
            Opcode::In => Opcode::InCo,
            Opcode::InCo => Opcode::In,
            Opcode::Out => Opcode::OutCo,
            Opcode::OutCo => Opcode::Out,
            Opcode::Open => Opcode::OpenCo,
            Opcode::OpenCo => Opcode::Open,
            Opcode::Create | Opcode::Deploy => return None,
        })
    }

    /// The mnemonic: `create`, `deploy`, `in`, `in_`, `out`, `out_`, `open`, `open_`.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Opcode::Create => "create",
            Opcode::Deploy => "deploy",
            Opcode::In => "in",
            Opcode::InCo => "in_",
            Opcode::Out => "out",
            Opcode::OutCo => "out_",
            Opcode::Open => "open",
            Opcode::OpenCo => "open_",
        }
    }
}

/// The half of a step an event is (`spec/events.md` §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Half {
    /// Written first: `in`, `out`, `open_`.
    First,
    /// Written second, referring to the first: `in_`, `out_`, `open`.
    Second,
}

/// The protocol primitives, whose names are encoded as codes (chapter 06).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Primitive {
    /// 0: `func`.
    Func = 0,
    /// 1: `call`.
    Call = 1,
    /// 2: `arg`.
    Arg = 2,
    /// 3: `return`.
    Return = 3,
}

impl Primitive {
    /// The primitive named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "func" => Primitive::Func,
            "call" => Primitive::Call,
            "arg" => Primitive::Arg,
            "return" => Primitive::Return,
            _ => return None,
        })
    }

    /// The primitive of a code, if it is one.
    pub fn from_u64(code: u64) -> Option<Primitive> {
        Some(match code {
            0 => Primitive::Func,
            1 => Primitive::Call,
            2 => Primitive::Arg,
            3 => Primitive::Return,
            _ => return None,
        })
    }

    /// The primitive's ambient name.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Func => "func",
            Primitive::Call => "call",
            Primitive::Arg => "arg",
            Primitive::Return => "return",
        }
    }
}

/// The target of an instruction, tagged by its CBOR type (`spec/bytecode.md`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// An ambient name that is not a primitive: a CBOR text string.
    Name(Arc<str>),
    /// A primitive name (`func`, `call`, `arg`, `return`): its code as an unsigned int.
    Primitive(Primitive),
    /// A nested ambient's block, for `deploy`: a CID link (CBOR tag 42).
    Block(Cid),
    /// No target: the root's `create` and the wildcard `in_` / `out_` (CBOR null).
    None,
    /// The unused target of `open_`: always the unsigned int 0 (chapter 06).
    Unused,
}

impl Target {
    /// The target for an ambient name: its primitive code, or the name itself.
    pub fn for_name(name: &str) -> Target {
        match Primitive::from_name(name) {
            Some(primitive) => Target::Primitive(primitive),
            None => Target::Name(name.into()),
        }
    }

    /// The ambient name a target stands for, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Target::Name(name) => Some(name),
            Target::Primitive(p) => Some(p.name()),
            _ => None,
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name(name) => write!(f, "{name:?}"),
            Target::Primitive(p) => write!(f, "{}", *p as u8),
            Target::Block(cid) => write!(f, "{cid}"),
            Target::None => f.write_str("null"),
            Target::Unused => f.write_str("0"),
        }
    }
}

/// One instruction: `(opcode, target)` and the index of the instruction it follows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Instruction {
    /// What to do.
    pub op: Opcode,
    /// On what.
    pub target: Target,
    /// The instruction this one follows (its causal edge); `None` only for `create`.
    pub prev: Option<u32>,
}

/// The instructions of one ambient.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Block {
    /// In pre-order; the first is the `create`.
    pub instructions: Vec<Instruction>,
}

impl Block {
    /// The `create` target: the ambient's name, or `None` for the program root.
    pub fn created_name(&self) -> Option<&str> {
        self.instructions.first().and_then(|i| i.target.name())
    }

    /// The root block of a program made of one ambient, whose block is `block`:
    /// `create` of the anonymous root, then `deploy` of the ambient.
    pub fn single_deploy(block: Cid) -> Block {
        Block {
            instructions: vec![
                Instruction {
                    op: Opcode::Create,
                    target: Target::None,
                    prev: None,
                },
                Instruction {
                    op: Opcode::Deploy,
                    target: Target::Block(block),
                    prev: Some(0),
                },
            ],
        }
    }

    /// The CIDs of the blocks this block deploys, in instruction order (with repeats).
    pub fn children(&self) -> impl Iterator<Item = Cid> + '_ {
        self.instructions.iter().filter_map(|i| match i.target {
            Target::Block(cid) if i.op == Opcode::Deploy => Some(cid),
            _ => None,
        })
    }
}
