//! A program as verified, decoded blocks: loading by CID, back to an AST, and the
//! readable listing of `amb compile --explain`.

use std::{collections::HashMap, fmt::Write};

use amb_syntax::{Ast, NodeId, Span};

use crate::{
    block::{Block, Opcode, Target},
    cid::Cid,
    codec::{BlockLimits, DecodeError},
    compile::CompiledProgram,
};

/// Limits on loading a whole program from blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramLimits {
    /// Limits on each block.
    pub block: BlockLimits,
    /// Most AST nodes the program may expand to. Blocks are shared by CID, so a few
    /// blocks can describe a huge tree; this bounds it. Default 10,000,000.
    pub max_nodes: usize,
}

impl Default for ProgramLimits {
    fn default() -> ProgramLimits {
        ProgramLimits {
            block: BlockLimits::default(),
            max_nodes: 10_000_000,
        }
    }
}

/// Why blocks do not form a program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A block the program needs is not available.
    #[error("block {0} is missing")]
    MissingBlock(Cid),
    /// A block's bytes do not hash to its CID.
    #[error("block {expected}: bytes hash to {actual}")]
    CidMismatch {
        /// The CID asked for.
        expected: Cid,
        /// The CID of the bytes.
        actual: Cid,
    },
    /// A block is not valid bytecode.
    #[error("block {cid}: {error}")]
    Decode {
        /// The block.
        cid: Cid,
        /// What is wrong.
        error: DecodeError,
    },
    /// The root block creates a named ambient, or a deployed block an anonymous one.
    #[error("block {cid}: {problem}")]
    Structure {
        /// The block.
        cid: Cid,
        /// What is wrong.
        problem: &'static str,
    },
    /// The program expands to more nodes than [`ProgramLimits::max_nodes`].
    #[error("program expands to more than {limit} ambients and capabilities (max_nodes)")]
    TooManyNodes {
        /// The limit.
        limit: usize,
    },
}

/// A program's decoded blocks, each checked against its CID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    root: Cid,
    blocks: HashMap<Cid, Block>,
}

impl Program {
    /// Loads the program rooted at `root`, fetching each block's bytes with `get`.
    pub fn load<B: AsRef<[u8]>>(
        root: Cid,
        mut get: impl FnMut(&Cid) -> Option<B>,
        limits: &BlockLimits,
    ) -> Result<Program, LoadError> {
        let mut blocks = HashMap::new();
        let mut pending = vec![root];
        while let Some(cid) = pending.pop() {
            if blocks.contains_key(&cid) {
                continue;
            }
            let bytes = get(&cid).ok_or(LoadError::MissingBlock(cid))?;
            let bytes = bytes.as_ref();
            let actual = Cid::of(bytes);
            if actual != cid {
                return Err(LoadError::CidMismatch {
                    expected: cid,
                    actual,
                });
            }
            let block = Block::decode_with_limits(bytes, limits)
                .map_err(|error| LoadError::Decode { cid, error })?;
            let named = block.created_name().is_some();
            if named == (cid == root) {
                return Err(LoadError::Structure {
                    cid,
                    problem: if named {
                        "the root block must create the anonymous root (null)"
                    } else {
                        "a deployed block must create a named ambient"
                    },
                });
            }
            pending.extend(block.children());
            blocks.insert(cid, block);
        }
        Ok(Program { root, blocks })
    }

    /// Decodes a freshly compiled program.
    pub fn from_compiled(compiled: &CompiledProgram) -> Result<Program, LoadError> {
        let map: HashMap<Cid, &[u8]> = compiled
            .blocks
            .iter()
            .map(|(cid, bytes)| (*cid, bytes.as_slice()))
            .collect();
        Program::load(
            compiled.root,
            |cid| map.get(cid).copied(),
            &BlockLimits::default(),
        )
    }

    /// The root CID.
    pub fn root(&self) -> Cid {
        self.root
    }

    /// A block by CID.
    pub fn block(&self, cid: &Cid) -> Option<&Block> {
        self.blocks.get(cid)
    }

    /// Number of distinct blocks.
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The distinct blocks in depth-first order from the root, each once.
    pub fn blocks_in_order(&self) -> Vec<Cid> {
        let mut order = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![self.root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            order.push(cid);
            let children: Vec<Cid> = self.blocks[&cid].children().collect();
            stack.extend(children.into_iter().rev());
        }
        order
    }

    /// The program as an AST (spans are empty).
    pub fn to_ast(&self, limits: &ProgramLimits) -> Result<Ast, LoadError> {
        let mut ast = Ast::new();
        let mut pending: Vec<(Cid, Option<NodeId>)> = vec![(self.root, None)];
        let mut nodes: Vec<Option<NodeId>> = Vec::new();
        while let Some((cid, owner)) = pending.pop() {
            let block = &self.blocks[&cid];
            nodes.clear();
            nodes.push(owner);
            for instruction in &block.instructions[1..] {
                if ast.len() >= limits.max_nodes {
                    return Err(LoadError::TooManyNodes {
                        limit: limits.max_nodes,
                    });
                }
                let prev = instruction
                    .prev
                    .expect("validated: only create has no prev");
                let parent = nodes[prev as usize];
                let node = match (&instruction.op, &instruction.target) {
                    (Opcode::Deploy, Target::Block(child)) => {
                        let name = self.blocks[child]
                            .created_name()
                            .expect("validated: deployed blocks are named");
                        let symbol = ast.intern(name);
                        let node = ast.push_ambient(parent, symbol, Span::default());
                        pending.push((*child, Some(node)));
                        node
                    }
                    (op, target) => {
                        let cap = op.cap_kind().expect("validated: create comes first");
                        let symbol = target.name().map(|n| ast.intern(n));
                        ast.push_cap(parent, cap, symbol, Span::default())
                    }
                };
                nodes.push(Some(node));
            }
        }
        ast.finish_building();
        Ok(ast)
    }

    /// A readable listing of every block: each instruction as its numeric tuple, its
    /// mnemonic and the instruction it follows.
    pub fn explain(&self) -> String {
        let order = self.blocks_in_order();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "program {} ({} block{})",
            self.root,
            order.len(),
            if order.len() == 1 { "" } else { "s" }
        );
        for cid in order {
            let block = &self.blocks[&cid];
            let title = block.created_name().unwrap_or("<root>");
            let _ = writeln!(out, "\nblock {cid}  {title}");
            for (index, instruction) in block.instructions.iter().enumerate() {
                let tuple = format!("({}, {:?})", instruction.op as u8, instruction.target);
                let readable = match &instruction.target {
                    Target::Block(child) => format!(
                        "deploy {}[…]",
                        self.blocks[child].created_name().unwrap_or_default()
                    ),
                    Target::Name(_) | Target::Primitive(_) => format!(
                        "{} {}",
                        instruction.op.mnemonic(),
                        instruction.target.name().unwrap_or_default()
                    ),
                    Target::None | Target::Unused => instruction.op.mnemonic().to_string(),
                };
                let after = instruction
                    .prev
                    .map_or(String::new(), |p| format!("after #{p}"));
                let _ = writeln!(out, "  #{index:<3} {tuple:<24} {readable:<28} {after}");
            }
        }
        out
    }
}
