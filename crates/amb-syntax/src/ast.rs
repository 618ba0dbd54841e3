//! The arena AST: ambients and capability prefixes, names interned, spans kept.
//!
//! A program is a parallel composition of *parts*. A part is an ambient `n[P]` (whose
//! children are the parts of `P`) or a capability prefix `M.P` (whose children are the
//! parts of its continuation `P`; none for a bare `M`). Groups `(P|Q)` leave no node:
//! their parts join the enclosing composition, or the continuation they follow.
//!
//! Nodes live in one vector and link to their first child and next sibling, so a node
//! costs 24 bytes whatever the program. Invariant: a node's id is greater than its
//! parent's, so visiting ids from high to low visits children before parents.

use std::fmt;

use crate::{
    interner::Interner,
    name::{is_bare_name, quote_name},
};

const NONE: u32 = u32::MAX;

/// A byte range in the source text (`start..end`). Nodes built from bytecode have an
/// empty span at 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: u32,
    /// Byte offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
}

/// An interned name. Two symbols of one [`Ast`] are equal exactly when their texts are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(u32);

impl Symbol {
    /// The symbol's index in its AST's name table.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Identifies a node of one [`Ast`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The node's index in its AST (pre-order of construction).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The six capabilities and co-capabilities of ROAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CapKind {
    /// `in n`: enter sibling `n`.
    In,
    /// `in_ n` (or `in_` alone, the wildcard): let `n` enter.
    InCo,
    /// `out n`: leave parent `n`.
    Out,
    /// `out_ n` (or `out_` alone, the wildcard): let child `n` leave.
    OutCo,
    /// `open n`: dissolve sibling `n`.
    Open,
    /// `open_`: allow being opened. Takes no name.
    OpenCo,
}

impl CapKind {
    /// The keyword as written in source.
    pub fn keyword(self) -> &'static str {
        match self {
            CapKind::In => "in",
            CapKind::InCo => "in_",
            CapKind::Out => "out",
            CapKind::OutCo => "out_",
            CapKind::Open => "open",
            CapKind::OpenCo => "open_",
        }
    }

    /// Whether the capability must have a target name (`in`, `out`, `open`).
    pub fn requires_name(self) -> bool {
        matches!(self, CapKind::In | CapKind::Out | CapKind::Open)
    }

    /// Whether the capability may have a target name (all but `open_`).
    pub fn allows_name(self) -> bool {
        self != CapKind::OpenCo
    }

    /// The keyword for a word of source text, if it is one.
    pub fn from_keyword(word: &[u8]) -> Option<CapKind> {
        Some(match word {
            b"in" => CapKind::In,
            b"in_" => CapKind::InCo,
            b"out" => CapKind::Out,
            b"out_" => CapKind::OutCo,
            b"open" => CapKind::Open,
            b"open_" => CapKind::OpenCo,
            _ => return None,
        })
    }
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// An ambient `n[P]`; it always has a name.
    Ambient,
    /// A capability prefix `M.P`; the name is its target, absent for `open_` and the
    /// nameless wildcards `in_` / `out_`.
    Cap(CapKind),
}

/// One node of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    first_child: u32,
    next_sibling: u32,
    name: u32,
    span: Span,
    kind: NodeKind,
}

impl Node {
    /// Ambient or capability.
    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The ambient's name or the capability's target.
    pub fn name(&self) -> Option<Symbol> {
        (self.name != NONE).then_some(Symbol(self.name))
    }

    /// Where the node was written.
    pub fn span(&self) -> Span {
        self.span
    }

    /// Whether the node has children (an ambient body or a continuation).
    pub fn has_children(&self) -> bool {
        self.first_child != NONE
    }
}

/// Where a `//` comment of the source is kept: at the start of the program (the
/// comments before its first part: a header), before a part (it moves with the part
/// when parts are sorted), or at the end of an ambient's body (`None`: of the
/// program).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommentPlace {
    /// Before everything else (the comments before the program's first part).
    Start,
    /// On the lines before this part.
    Before(NodeId),
    /// After the last part of this ambient's body (`None`: of the program).
    End(Option<NodeId>),
}

/// A `//` comment: where it is kept, and its text after `//` up to the end of its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// Where it is kept.
    pub place: CommentPlace,
    /// Its text after `//`, without the line break.
    pub text: Box<str>,
}

/// A parsed program: an arena of nodes, a table of names and the source's comments.
#[derive(Clone, Default)]
pub struct Ast {
    nodes: Vec<Node>,
    names: Interner,
    /// The printed form of each name: `None` when it prints bare.
    quoted: Vec<Option<Box<str>>>,
    root_first: u32,
    /// Last child of each node (and of the root, at the end) while building.
    tails: Vec<u32>,
    root_tail: u32,
    /// The comments, in source order.
    comments: Vec<Comment>,
}

impl fmt::Debug for Ast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ast")
            .field("nodes", &self.nodes.len())
            .field("names", &self.names.len())
            .field("canonical", &crate::printer::to_canonical_string(self))
            .finish()
    }
}

impl Ast {
    /// An empty program (the process `0`).
    pub fn new() -> Ast {
        Ast {
            root_first: NONE,
            root_tail: NONE,
            ..Ast::default()
        }
    }

    /// Creates an AST with room for about `nodes` nodes.
    pub fn with_capacity(nodes: usize) -> Ast {
        let mut ast = Ast::new();
        ast.nodes.reserve(nodes);
        ast.tails.reserve(nodes);
        ast
    }

    /// Interns a name.
    pub fn intern(&mut self, text: &str) -> Symbol {
        let (index, added) = self.names.intern(text);
        if added {
            self.quoted
                .push((!is_bare_name(text)).then(|| quote_name(text).into()));
        }
        Symbol(index)
    }

    /// The symbol of a name, if the program uses it.
    pub fn lookup(&self, text: &str) -> Option<Symbol> {
        self.names.lookup(text).map(Symbol)
    }

    /// The text of a name.
    pub fn name_text(&self, symbol: Symbol) -> &str {
        self.names.get(symbol.0)
    }

    /// The name as printed: bare when it fits the bare-name grammar, quoted otherwise.
    pub fn printed_name(&self, symbol: Symbol) -> &str {
        match &self.quoted[symbol.index()] {
            Some(quoted) => quoted,
            None => self.names.get(symbol.0),
        }
    }

    /// The symbol at an index of the name table (`0..name_count()`).
    pub fn symbol_at(&self, index: usize) -> Symbol {
        assert!(index < self.names.len(), "symbol index out of range");
        Symbol(index as u32)
    }

    /// The comments of the source, in source order (the printers keep them).
    pub fn comments(&self) -> &[Comment] {
        &self.comments
    }

    /// Keeps a comment at `place` (`text` is what follows `//` on its line).
    pub fn push_comment(&mut self, place: CommentPlace, text: &str) {
        self.comments.push(Comment {
            place,
            text: text.into(),
        });
    }

    /// Number of distinct names.
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the program is the empty process.
    pub fn is_empty(&self) -> bool {
        self.root_first == NONE
    }

    /// The id of the node at an index (`0..len()`).
    pub fn node_id(&self, index: usize) -> NodeId {
        assert!(index < self.nodes.len(), "node index out of range");
        NodeId(index as u32)
    }

    /// A node by id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The top-level parts of the program, in order.
    pub fn roots(&self) -> Children<'_> {
        Children {
            ast: self,
            next: self.root_first,
        }
    }

    /// The children of a node, in order; the top-level parts for `None`.
    pub fn children(&self, parent: Option<NodeId>) -> Children<'_> {
        let next = match parent {
            Some(id) => self.nodes[id.index()].first_child,
            None => self.root_first,
        };
        Children { ast: self, next }
    }

    /// The sibling after a node.
    pub fn next_sibling(&self, id: NodeId) -> Option<NodeId> {
        let next = self.nodes[id.index()].next_sibling;
        (next != NONE).then_some(NodeId(next))
    }

    /// The first child of a node; the first top-level part for `None`.
    pub fn first_child(&self, parent: Option<NodeId>) -> Option<NodeId> {
        let first = match parent {
            Some(id) => self.nodes[id.index()].first_child,
            None => self.root_first,
        };
        (first != NONE).then_some(NodeId(first))
    }

    /// Adds an ambient as the last child of `parent` (a top-level part for `None`).
    pub fn push_ambient(&mut self, parent: Option<NodeId>, name: Symbol, span: Span) -> NodeId {
        self.push(parent, NodeKind::Ambient, name.0, span)
    }

    /// Adds a capability as the last child of `parent` (a top-level part for `None`).
    ///
    /// # Panics
    /// When the target does not fit the capability (`open_` with a name, `in`, `out`
    /// or `open` without one): a programming error of the caller.
    pub fn push_cap(
        &mut self,
        parent: Option<NodeId>,
        cap: CapKind,
        target: Option<Symbol>,
        span: Span,
    ) -> NodeId {
        assert!(
            (target.is_some() || !cap.requires_name()) && (target.is_none() || cap.allows_name()),
            "capability {cap:?} with target {target:?}"
        );
        self.push(
            parent,
            NodeKind::Cap(cap),
            target.map_or(NONE, |s| s.0),
            span,
        )
    }

    fn push(&mut self, parent: Option<NodeId>, kind: NodeKind, name: u32, span: Span) -> NodeId {
        let id = self.nodes.len() as u32;
        assert!(id != NONE, "AST node count overflow");
        self.nodes.push(Node {
            first_child: NONE,
            next_sibling: NONE,
            name,
            span,
            kind,
        });
        self.tails.push(NONE);
        let (first, tail) = match parent {
            Some(p) => {
                debug_assert!(p.0 < id);
                (
                    &mut self.nodes[p.index()].first_child,
                    &mut self.tails[p.index()],
                )
            }
            None => (&mut self.root_first, &mut self.root_tail),
        };
        let previous = *tail;
        *tail = id;
        if previous == NONE {
            *first = id;
        } else {
            self.nodes[previous as usize].next_sibling = id;
        }
        NodeId(id)
    }

    /// Drops the bookkeeping used while building (4 bytes a node). The node array
    /// keeps its capacity: shrinking it copies it whole under an allocator that
    /// cannot remap (mimalloc, `amb`'s), a tenth of `amb fmt`'s time at 50 MB, and
    /// the room reserved past the last node was never written, so it is not
    /// resident.
    pub fn finish_building(&mut self) {
        self.tails = Vec::new();
    }

    /// Replaces the child list of `parent` with `order`, which must be a permutation
    /// of its current children.
    pub(crate) fn relink_children(&mut self, parent: Option<NodeId>, order: &[NodeId]) {
        let mut next = NONE;
        for id in order.iter().rev() {
            self.nodes[id.index()].next_sibling = next;
            next = id.0;
        }
        match parent {
            Some(p) => self.nodes[p.index()].first_child = next,
            None => self.root_first = next,
        }
        if let Some(last) = order.last() {
            let tail = match parent {
                Some(p) => self.tails.get_mut(p.index()),
                None => Some(&mut self.root_tail),
            };
            if let Some(tail) = tail {
                *tail = last.0;
            }
        }
    }

    /// Whether two programs have the same tree: same kinds, same name texts, children
    /// in the same order. Spans are ignored. Canonicalize both first to compare up to
    /// the order of parallel parts.
    pub fn same_structure(&self, other: &Ast) -> bool {
        let mut stack = vec![(self.root_first, other.root_first)];
        while let Some((mut a, mut b)) = stack.pop() {
            loop {
                match (a == NONE, b == NONE) {
                    (true, true) => break,
                    (false, false) => {}
                    _ => return false,
                }
                let (na, nb) = (&self.nodes[a as usize], &other.nodes[b as usize]);
                if na.kind != nb.kind {
                    return false;
                }
                let name_a = na.name().map(|s| self.name_text(s));
                let name_b = nb.name().map(|s| other.name_text(s));
                if name_a != name_b {
                    return false;
                }
                stack.push((na.first_child, nb.first_child));
                a = na.next_sibling;
                b = nb.next_sibling;
            }
        }
        true
    }

    /// The deepest nesting of the program: ambients and prefixes each count one level.
    pub fn depth(&self) -> usize {
        let mut depth = vec![0u32; self.nodes.len()];
        let mut max = 0;
        for index in 0..self.nodes.len() {
            let d = depth[index] + 1;
            max = max.max(d);
            let mut child = self.nodes[index].first_child;
            while child != NONE {
                depth[child as usize] = d;
                child = self.nodes[child as usize].next_sibling;
            }
        }
        max as usize
    }
}

/// Iterator over a node's children.
#[derive(Clone, Debug)]
pub struct Children<'a> {
    ast: &'a Ast,
    next: u32,
}

impl Iterator for Children<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        if self.next == NONE {
            return None;
        }
        let id = NodeId(self.next);
        self.next = self.ast.nodes[self.next as usize].next_sibling;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_is_small() {
        assert_eq!(std::mem::size_of::<Node>(), 24);
    }

    #[test]
    fn builder_links_children_in_order() {
        let mut ast = Ast::new();
        let a = ast.intern("a");
        let b = ast.intern("b");
        let root = ast.push_ambient(None, a, Span::default());
        let first = ast.push_cap(Some(root), CapKind::In, Some(b), Span::default());
        let second = ast.push_ambient(Some(root), b, Span::default());
        assert_eq!(
            ast.children(Some(root)).collect::<Vec<_>>(),
            [first, second]
        );
        assert_eq!(ast.roots().collect::<Vec<_>>(), [root]);
        assert_eq!(ast.intern("a"), a);
        assert_eq!(ast.depth(), 2);
    }
}
