//! The canonical order: every parallel composition's parts sorted by their printed
//! text in byte order (`spec/syntax.md`).
//!
//! Parts are compared by streaming their compact text chunk by chunk, so a comparison
//! costs as much as the common prefix of the two texts and no text is built. Children
//! are sorted before their parents (node ids from high to low), so a part's text is
//! final when it is compared.

use std::cmp::Ordering;

use crate::{
    ast::{Ast, NodeId},
    printer::{Chunks, Item},
};

impl Ast {
    /// Sorts the parts of every parallel composition into canonical order.
    pub fn canonicalize(&mut self) {
        let mut parts = Vec::new();
        let mut scratch = (Vec::new(), Vec::new());
        for index in (0..self.len()).rev() {
            let id = self.node_id(index);
            sort_children(self, Some(id), &mut parts, &mut scratch);
        }
        sort_children(self, None, &mut parts, &mut scratch);
    }

    /// Whether every composition's parts are already in canonical order.
    pub fn is_canonical(&self) -> bool {
        let mut scratch = (Vec::new(), Vec::new());
        let parents = (0..self.len()).map(|i| Some(self.node_id(i)));
        for parent in parents.chain([None]) {
            let mut children = self.children(parent);
            let Some(mut previous) = children.next() else {
                continue;
            };
            for child in children {
                if compare_parts(self, previous, child, &mut scratch) == Ordering::Greater {
                    return false;
                }
                previous = child;
            }
        }
        true
    }
}

fn sort_children(
    ast: &mut Ast,
    parent: Option<NodeId>,
    parts: &mut Vec<NodeId>,
    scratch: &mut (Vec<Item>, Vec<Item>),
) {
    let Some(first) = ast.first_child(parent) else {
        return;
    };
    if ast.next_sibling(first).is_none() {
        return;
    }
    parts.clear();
    parts.extend(ast.children(parent));
    let view: &Ast = ast;
    if parts
        .windows(2)
        .all(|w| compare_parts(view, w[0], w[1], scratch) != Ordering::Greater)
    {
        return;
    }
    parts.sort_by(|&a, &b| compare_parts(view, a, b, scratch));
    ast.relink_children(parent, parts);
}

/// Compares the compact texts of two subtrees in byte order.
fn compare_parts(
    ast: &Ast,
    a: NodeId,
    b: NodeId,
    scratch: &mut (Vec<Item>, Vec<Item>),
) -> Ordering {
    let mut left = Chunks::new(ast, Item::Node(a), &mut scratch.0);
    let mut right = Chunks::new(ast, Item::Node(b), &mut scratch.1);
    let (mut l, mut r): (&[u8], &[u8]) = (&[], &[]);
    loop {
        if l.is_empty() {
            match left.next() {
                Some(chunk) => {
                    l = chunk;
                    continue;
                }
                None => {
                    return if r.is_empty() && right.next().is_none() {
                        Ordering::Equal
                    } else {
                        Ordering::Less
                    };
                }
            }
        }
        if r.is_empty() {
            match right.next() {
                Some(chunk) => {
                    r = chunk;
                    continue;
                }
                None => return Ordering::Greater,
            }
        }
        let n = l.len().min(r.len());
        match l[..n].cmp(&r[..n]) {
            Ordering::Equal => {
                l = &l[n..];
                r = &r[n..];
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse, printer::to_compact_string};

    #[test]
    fn sorts_nested_compositions() {
        let mut ast = parse("z[b[]|a[]] | in x.(q[] | open_ | a[]) | a-b[] | a[]").unwrap();
        assert!(!ast.is_canonical());
        ast.canonicalize();
        assert!(ast.is_canonical());
        assert_eq!(
            to_compact_string(&ast),
            "a-b[]|a[]|in x.(a[]|open_|q[])|z[a[]|b[]]"
        );
    }

    #[test]
    fn prefix_of_another_sorts_first() {
        let mut ast = parse("ab[] | a[] | a[b[]] | a[]").unwrap();
        ast.canonicalize();
        assert_eq!(to_compact_string(&ast), "a[]|a[]|a[b[]]|ab[]");
    }
}
