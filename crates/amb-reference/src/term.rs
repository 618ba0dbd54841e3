//! The term: an owned tree of parts, converted from and to `amb_syntax::Ast`.

use std::fmt;

use amb_syntax::{Ast, CapKind, NodeId, NodeKind, Span};

use crate::ReferenceError;

/// Resource limits of the reference reducer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting accepted, ambients and prefixes each counting one level (as
    /// [`Ast::depth`] counts). Anything deeper is refused with
    /// [`ReferenceError::TooDeep`] before anything else is done with it. A reduction
    /// step deepens a term by at most one level, and every state is measured again
    /// before it is used. Default 2,000.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_depth: 2_000 }
    }
}

/// One part of a parallel composition.
///
/// `Clone`, `Drop`, `PartialEq` and `Debug` are written by hand without recursion, so
/// no operation of this crate needs a stack proportional to the nesting; the depth
/// limit is a second guard. (Because of the hand-written `Drop`, move the fields out
/// with `std::mem::take`, not by destructuring.)
pub enum Part {
    /// An ambient `name[body]`.
    Amb {
        /// The ambient's name. Not an identity: siblings may share it.
        name: String,
        /// The parts of its process.
        body: Vec<Part>,
    },
    /// A capability prefix `kind target.cont`.
    Cap {
        /// Which of the six (co-)capabilities.
        kind: CapKind,
        /// The target name; `None` for `open_` and the wildcards `in_` / `out_`.
        target: Option<String>,
        /// The continuation's parts. They do not act until the prefix fires.
        cont: Vec<Part>,
    },
}

/// A whole program: the parts of its top-level composition.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Term {
    /// The top-level parts.
    pub parts: Vec<Part>,
}

impl Part {
    /// An ambient.
    pub fn amb(name: &str, body: Vec<Part>) -> Part {
        Part::Amb {
            name: name.to_string(),
            body,
        }
    }

    /// A capability prefix.
    pub fn cap(kind: CapKind, target: Option<&str>, cont: Vec<Part>) -> Part {
        Part::Cap {
            kind,
            target: target.map(str::to_string),
            cont,
        }
    }

    /// The parts under this one: an ambient's body or a prefix's continuation.
    pub fn children(&self) -> &[Part] {
        match self {
            Part::Amb { body, .. } => body,
            Part::Cap { cont, .. } => cont,
        }
    }

    /// The parts under this one, mutably.
    pub fn children_mut(&mut self) -> &mut Vec<Part> {
        match self {
            Part::Amb { body, .. } => body,
            Part::Cap { cont, .. } => cont,
        }
    }

    /// This part with other children: same kind and name.
    fn with_children(&self, children: Vec<Part>) -> Part {
        match self {
            Part::Amb { name, .. } => Part::Amb {
                name: name.clone(),
                body: children,
            },
            Part::Cap { kind, target, .. } => Part::Cap {
                kind: *kind,
                target: target.clone(),
                cont: children,
            },
        }
    }

    /// Whether the two parts have the same kind and name (children not compared).
    fn same_head(&self, other: &Part) -> bool {
        match (self, other) {
            (Part::Amb { name: a, .. }, Part::Amb { name: b, .. }) => a == b,
            (
                Part::Cap {
                    kind: ka,
                    target: ta,
                    ..
                },
                Part::Cap {
                    kind: kb,
                    target: tb,
                    ..
                },
            ) => ka == kb && ta == tb,
            _ => false,
        }
    }
}

impl Clone for Part {
    /// Copies the tree bottom-up with an explicit stack.
    fn clone(&self) -> Part {
        enum Step<'a> {
            Enter(&'a Part),
            Build(&'a Part),
        }
        let mut work = vec![Step::Enter(self)];
        let mut built: Vec<Part> = Vec::new();
        while let Some(step) = work.pop() {
            match step {
                Step::Enter(part) => {
                    work.push(Step::Build(part));
                    work.extend(part.children().iter().rev().map(Step::Enter));
                }
                Step::Build(part) => {
                    let children = built.split_off(built.len() - part.children().len());
                    built.push(part.with_children(children));
                }
            }
        }
        built.pop().expect("the copy of the root")
    }
}

impl Drop for Part {
    /// Frees the tree with an explicit stack: each part is dropped with no children.
    fn drop(&mut self) {
        let mut pending = std::mem::take(self.children_mut());
        while let Some(mut part) = pending.pop() {
            pending.append(part.children_mut());
        }
    }
}

impl PartialEq for Part {
    /// Same tree, children in the same order. Iterative.
    fn eq(&self, other: &Part) -> bool {
        let mut pairs = vec![(self, other)];
        while let Some((a, b)) = pairs.pop() {
            if !a.same_head(b) || a.children().len() != b.children().len() {
                return false;
            }
            pairs.extend(a.children().iter().zip(b.children()));
        }
        true
    }
}

impl Eq for Part {}

impl fmt::Debug for Part {
    /// The compact text of the part, e.g. `Part(a[in b])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let single = Term {
            parts: vec![self.clone()],
        };
        write!(f, "Part({})", single.compact_or_error())
    }
}

impl fmt::Debug for Term {
    /// The compact text of the term, parts in their order, e.g. `Term(a[]|b[])`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Term({})", self.compact_or_error())
    }
}

impl Term {
    /// The compact text, or the reason a hand-built term has none.
    fn compact_or_error(&self) -> String {
        let unlimited = Limits {
            max_depth: usize::MAX,
        };
        match self.check(&unlimited) {
            Ok(()) => amb_syntax::to_compact_string(&self.to_ast()),
            Err(e) => format!("<malformed: {e}>"),
        }
    }
}

impl Term {
    /// Parses program text (with `amb_syntax`'s default limits) and converts it,
    /// refusing it when deeper than the default [`Limits`].
    pub fn parse(source: &str) -> Result<Term, ReferenceError> {
        Term::from_ast(&amb_syntax::parse(source)?)
    }

    /// Converts an AST with the default [`Limits`].
    pub fn from_ast(ast: &Ast) -> Result<Term, ReferenceError> {
        Term::from_ast_with_limits(ast, &Limits::default())
    }

    /// Converts an AST, refusing it when deeper than `limits.max_depth`.
    ///
    /// Iterative: nodes are visited from the highest id to the lowest, so (a node's id
    /// being greater than its parent's) every node's children are built before it.
    pub fn from_ast_with_limits(ast: &Ast, limits: &Limits) -> Result<Term, ReferenceError> {
        check_depth(ast.depth(), limits)?;
        let mut built: Vec<Option<Part>> = (0..ast.len()).map(|_| None).collect();
        let take = |built: &mut Vec<Option<Part>>, id: NodeId| {
            built[id.index()]
                .take()
                .expect("a child is built before its parent and used once")
        };
        for index in (0..ast.len()).rev() {
            let id = ast.node_id(index);
            let node = ast.node(id);
            let name = node.name().map(|s| ast.name_text(s).to_string());
            let children: Vec<Part> = ast
                .children(Some(id))
                .map(|child| take(&mut built, child))
                .collect();
            built[index] = Some(match node.kind() {
                NodeKind::Ambient => Part::Amb {
                    name: name.unwrap_or_default(),
                    body: children,
                },
                NodeKind::Cap(kind) => Part::Cap {
                    kind,
                    target: name,
                    cont: children,
                },
            });
        }
        Ok(Term {
            parts: ast.roots().map(|id| take(&mut built, id)).collect(),
        })
    }

    /// The equivalent AST, parts in this term's order. Iterative.
    ///
    /// # Panics
    /// On a hand-built capability with a target it cannot have (`open_ n`, `in`
    /// without a name); the public functions that take a term check it first.
    pub fn to_ast(&self) -> Ast {
        let mut ast = Ast::new();
        // Pre-order, children pushed in reverse so each parent gets them in order.
        let mut pending: Vec<(Option<NodeId>, &Part)> =
            self.parts.iter().rev().map(|part| (None, part)).collect();
        while let Some((parent, part)) = pending.pop() {
            let id = match part {
                Part::Amb { name, .. } => {
                    let symbol = ast.intern(name);
                    ast.push_ambient(parent, symbol, Span::default())
                }
                Part::Cap { kind, target, .. } => {
                    let symbol = target.as_deref().map(|t| ast.intern(t));
                    ast.push_cap(parent, *kind, symbol, Span::default())
                }
            };
            pending.extend(part.children().iter().rev().map(|child| (Some(id), child)));
        }
        ast
    }

    /// The canonical text (`amb_syntax::to_canonical_string`): the state's identity.
    pub fn canonical(&self) -> String {
        amb_syntax::to_canonical_string(&self.to_ast())
    }

    /// The deepest nesting, ambients and prefixes each counting one level (0 for the
    /// empty program). Iterative, so safe on any term.
    pub fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack: Vec<(&[Part], usize)> = vec![(&self.parts, 1)];
        while let Some((parts, level)) = stack.pop() {
            for part in parts {
                max = max.max(level);
                stack.push((part.children(), level + 1));
            }
        }
        max
    }

    /// Refuses the term when deeper than the limit or when a capability has a target
    /// it cannot have (`open_ n`, or `in`, `out`, `open` without a name). Iterative.
    pub(crate) fn check(&self, limits: &Limits) -> Result<(), ReferenceError> {
        check_depth(self.depth(), limits)?;
        let mut stack: Vec<&[Part]> = vec![&self.parts];
        while let Some(parts) = stack.pop() {
            for part in parts {
                if let Part::Cap { kind, target, .. } = part {
                    let fits = if target.is_some() {
                        kind.allows_name()
                    } else {
                        !kind.requires_name()
                    };
                    if !fits {
                        return Err(ReferenceError::BadCapability {
                            kind: *kind,
                            target: target.clone(),
                        });
                    }
                }
                stack.push(part.children());
            }
        }
        Ok(())
    }
}

fn check_depth(depth: usize, limits: &Limits) -> Result<(), ReferenceError> {
    if depth > limits.max_depth {
        return Err(ReferenceError::TooDeep {
            depth,
            limit: limits.max_depth,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_ast() {
        let src = "a[in b.(c[]|open_)] | b[in_ a.out_|out_ x] | open \"q r\".in_";
        let term = Term::parse(src).unwrap();
        let ast = amb_syntax::parse(src).unwrap();
        assert_eq!(term.canonical(), amb_syntax::to_canonical_string(&ast));
        assert!(term.to_ast().same_structure(&ast));
        assert_eq!(term.depth(), ast.depth());
        assert_eq!(Term::parse("").unwrap().depth(), 0);
    }
}
