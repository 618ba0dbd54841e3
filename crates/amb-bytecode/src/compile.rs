//! AST → blocks: one block per ambient plus the program's root block.
//!
//! Ambients are compiled children first (AST node ids from high to low), so a
//! parent's `deploy` can name its child's CID. Identical ambients give identical
//! blocks and are stored once; each `deploy` of them stays a separate instruction.

use std::collections::{HashMap, HashSet};

use amb_syntax::{Ast, CapKind, NodeId, NodeKind, Span};

use crate::{
    block::{Block, Instruction, Opcode, Target},
    cid::Cid,
    codec::BlockLimits,
};

/// A compiled program: its root CID and every distinct block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledProgram {
    /// CID of the root block: the program's CID.
    pub root: Cid,
    /// Distinct blocks with their CIDs, each after every block it deploys; the root
    /// block is last.
    pub blocks: Vec<(Cid, Vec<u8>)>,
}

impl CompiledProgram {
    /// Total encoded size of the blocks.
    pub fn total_bytes(&self) -> usize {
        self.blocks.iter().map(|(_, b)| b.len()).sum()
    }
}

/// Why a program could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// One ambient's block is larger than [`BlockLimits::max_block_bytes`].
    #[error(
        "the block of `{ambient}` (written at byte {}) is {size} bytes, more than the limit of {limit} (max_block_bytes); split its body into nested ambients",
        span.start
    )]
    BlockTooLarge {
        /// The ambient's name (`<root>` for the program's top level).
        ambient: String,
        /// Where it is written.
        span: Span,
        /// Its encoded size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// One ambient has more instructions than [`BlockLimits::max_instructions`].
    #[error(
        "`{ambient}` (written at byte {}) compiles to {count} instructions, more than the limit of {limit} (max_instructions)",
        span.start
    )]
    TooManyInstructions {
        /// The ambient's name.
        ambient: String,
        /// Where it is written.
        span: Span,
        /// Its instruction count.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// Compiles a program with the default [`BlockLimits`].
pub fn compile(ast: &Ast) -> Result<CompiledProgram, CompileError> {
    compile_with_limits(ast, &BlockLimits::default())
}

/// Where each AST node went: its instruction's index in its block, and each
/// ambient's own block. Made by [`compile_with_map`] for the executor, whose events
/// name the instruction they execute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeMap {
    /// By AST node index: for a capability, the index of its instruction in the block
    /// it is written in; for an ambient, the index of its `deploy` in its parent's
    /// block.
    pub instruction: Vec<u32>,
    /// By AST node index: an ambient's own block (`None` for capabilities).
    pub block: Vec<Option<Cid>>,
}

/// Compiles a program.
pub fn compile_with_limits(
    ast: &Ast,
    limits: &BlockLimits,
) -> Result<CompiledProgram, CompileError> {
    compile_inner(ast, limits, None)
}

/// Compiles a program and reports where each AST node went.
pub fn compile_with_map(
    ast: &Ast,
    limits: &BlockLimits,
) -> Result<(CompiledProgram, NodeMap), CompileError> {
    let mut map = NodeMap {
        instruction: vec![0; ast.len()],
        block: vec![None; ast.len()],
    };
    let compiled = compile_inner(ast, limits, Some(&mut map))?;
    Ok((compiled, map))
}

fn compile_inner(
    ast: &Ast,
    limits: &BlockLimits,
    mut map: Option<&mut NodeMap>,
) -> Result<CompiledProgram, CompileError> {
    let mut compiler = Compiler {
        ast,
        limits,
        targets: (0..ast.name_count())
            .map(|i| Target::for_name(ast.name_text(ast.symbol_at(i))))
            .collect(),
        child_cids: HashMap::default(),
        seen: HashSet::default(),
        blocks: Vec::new(),
        stack: Vec::new(),
        reversed: Vec::new(),
    };
    for index in (0..ast.len()).rev() {
        let id = ast.node_id(index);
        if ast.node(id).kind() == NodeKind::Ambient {
            let cid = compiler.compile_block(Some(id), map.as_deref_mut())?;
            compiler.child_cids.insert(id, cid);
            if let Some(map) = map.as_deref_mut() {
                map.block[index] = Some(cid);
            }
        }
    }
    let root = compiler.compile_block(None, map)?;
    Ok(CompiledProgram {
        root,
        blocks: compiler.blocks,
    })
}

struct Compiler<'a> {
    ast: &'a Ast,
    limits: &'a BlockLimits,
    /// The target of each name, by symbol index.
    targets: Vec<Target>,
    /// CIDs of compiled ambients whose parent is not compiled yet.
    child_cids: HashMap<NodeId, Cid, foldhash::fast::RandomState>,
    seen: HashSet<Cid, foldhash::fast::RandomState>,
    blocks: Vec<(Cid, Vec<u8>)>,
    stack: Vec<(NodeId, u32)>,
    reversed: Vec<NodeId>,
}

impl Compiler<'_> {
    fn target(&self, id: NodeId) -> Target {
        match self.ast.node(id).name() {
            Some(s) => self.targets[s.index()].clone(),
            None => Target::None,
        }
    }

    /// Compiles the block of an ambient (or of the root for `None`).
    fn compile_block(
        &mut self,
        owner: Option<NodeId>,
        mut map: Option<&mut NodeMap>,
    ) -> Result<Cid, CompileError> {
        let ast = self.ast;
        let mut instructions = vec![Instruction {
            op: Opcode::Create,
            target: owner.map_or(Target::None, |id| self.target(id)),
            prev: None,
        }];
        self.push_children(owner, 0);
        while let Some((id, prev)) = self.stack.pop() {
            let index = instructions.len() as u32;
            if let Some(map) = map.as_deref_mut() {
                map.instruction[id.index()] = index;
            }
            let node = ast.node(id);
            let (op, target) = match node.kind() {
                NodeKind::Ambient => {
                    let cid = self
                        .child_cids
                        .remove(&id)
                        .expect("children are compiled before their parent");
                    (Opcode::Deploy, Target::Block(cid))
                }
                NodeKind::Cap(cap) => {
                    self.push_children(Some(id), index);
                    (opcode(cap), self.cap_target(cap, id))
                }
            };
            instructions.push(Instruction {
                op,
                target,
                prev: Some(prev),
            });
        }
        let describe = || {
            let ambient = owner.map_or("<root>".to_string(), |id| {
                ast.name_text(ast.node(id).name().expect("ambients have names"))
                    .to_string()
            });
            let span = owner.map_or(Span::default(), |id| ast.node(id).span());
            (ambient, span)
        };
        if instructions.len() > self.limits.max_instructions {
            let (ambient, span) = describe();
            return Err(CompileError::TooManyInstructions {
                ambient,
                span,
                count: instructions.len(),
                limit: self.limits.max_instructions,
            });
        }
        let (cid, bytes) = Block { instructions }.encode_with_cid();
        if bytes.len() > self.limits.max_block_bytes {
            let (ambient, span) = describe();
            return Err(CompileError::BlockTooLarge {
                ambient,
                span,
                size: bytes.len(),
                limit: self.limits.max_block_bytes,
            });
        }
        if self.seen.insert(cid) {
            self.blocks.push((cid, bytes));
        }
        Ok(cid)
    }

    fn cap_target(&self, cap: CapKind, id: NodeId) -> Target {
        match cap {
            CapKind::OpenCo => Target::Unused,
            _ => self.target(id),
        }
    }

    /// Schedules the children of `parent` so that they pop in source order.
    fn push_children(&mut self, parent: Option<NodeId>, prev: u32) {
        self.reversed.clear();
        self.reversed.extend(self.ast.children(parent));
        for &child in self.reversed.iter().rev() {
            self.stack.push((child, prev));
        }
    }
}

/// The opcode of a capability ([`Opcode::of_cap`]).
pub fn opcode(cap: CapKind) -> Opcode {
    Opcode::of_cap(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Program;

    #[test]
    fn node_map_points_at_each_instruction() {
        let ast = amb_syntax::parse("call[out a.in b|open_] | open call").unwrap();
        let (compiled, map) = compile_with_map(&ast, &BlockLimits::default()).unwrap();
        assert_eq!(compiled, compile(&ast).unwrap());
        let program = Program::from_compiled(&compiled).unwrap();
        for index in 0..ast.len() {
            let id = ast.node_id(index);
            let node = ast.node(id);
            match node.kind() {
                NodeKind::Ambient => {
                    let block = program.block(&map.block[index].unwrap()).unwrap();
                    assert_eq!(block.created_name(), Some("call"));
                    let root = program.block(&compiled.root).unwrap();
                    let deploy = &root.instructions[map.instruction[index] as usize];
                    assert_eq!(deploy.target, Target::Block(map.block[index].unwrap()));
                }
                NodeKind::Cap(cap) => {
                    assert_eq!(map.block[index], None);
                    // The capability's instruction has its opcode in one of the blocks.
                    let found = compiled.blocks.iter().any(|(cid, _)| {
                        let block = program.block(cid).unwrap();
                        block
                            .instructions
                            .get(map.instruction[index] as usize)
                            .is_some_and(|i| i.op == opcode(cap))
                    });
                    assert!(found, "{cap:?}");
                }
            }
        }
    }
}
