//! Printers: the compact canonical text and an indented form for people.
//!
//! Both print the parts in the order the AST holds them; call
//! [`Ast::canonicalize`](crate::Ast::canonicalize) first (as [`to_canonical_string`]
//! does) for the canonical form of `spec/syntax.md`. The compact text is produced as a
//! stream of byte chunks ([`Chunks`]), which is also what the canonical order compares.

use std::io::{self, Write};

use crate::ast::{Ast, CapKind, NodeId, NodeKind, Symbol};

/// One pending piece of output.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Item {
    /// A node and everything below it.
    Node(NodeId),
    /// A node, then `|` and its following siblings.
    List(NodeId),
    /// A name, as printed.
    Name(Symbol),
    /// Fixed text.
    Lit(&'static str),
}

/// The compact text of a subtree as a stream of byte chunks, without recursion.
#[derive(Debug)]
pub(crate) struct Chunks<'a, 's> {
    ast: &'a Ast,
    stack: &'s mut Vec<Item>,
}

impl<'a, 's> Chunks<'a, 's> {
    /// Chunks of `start`, using `stack` as scratch space (it is cleared).
    pub(crate) fn new(ast: &'a Ast, start: Item, stack: &'s mut Vec<Item>) -> Self {
        stack.clear();
        stack.push(start);
        Chunks { ast, stack }
    }
}

/// The keyword text of a capability, with the space before its name if it has one.
fn cap_text(cap: CapKind, named: bool) -> &'static str {
    match (cap, named) {
        (CapKind::In, _) => "in ",
        (CapKind::Out, _) => "out ",
        (CapKind::Open, _) => "open ",
        (CapKind::InCo, true) => "in_ ",
        (CapKind::InCo, false) => "in_",
        (CapKind::OutCo, true) => "out_ ",
        (CapKind::OutCo, false) => "out_",
        (CapKind::OpenCo, _) => "open_",
    }
}

impl<'a> Iterator for Chunks<'a, '_> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let ast = self.ast;
        loop {
            match self.stack.pop()? {
                Item::Lit(text) => return Some(text.as_bytes()),
                Item::Name(symbol) => return Some(ast.printed_name(symbol).as_bytes()),
                Item::List(id) => {
                    if let Some(next) = ast.next_sibling(id) {
                        self.stack.push(Item::List(next));
                        self.stack.push(Item::Lit("|"));
                    }
                    self.stack.push(Item::Node(id));
                }
                Item::Node(id) => {
                    let node = ast.node(id);
                    match node.kind() {
                        NodeKind::Ambient => {
                            self.stack.push(Item::Lit("]"));
                            if let Some(first) = ast.first_child(Some(id)) {
                                self.stack.push(Item::List(first));
                            }
                            self.stack.push(Item::Lit("["));
                            self.stack.push(Item::Name(node.name()?));
                        }
                        NodeKind::Cap(cap) => {
                            if let Some(first) = ast.first_child(Some(id)) {
                                if ast.next_sibling(first).is_none() {
                                    self.stack.push(Item::Node(first));
                                    self.stack.push(Item::Lit("."));
                                } else {
                                    self.stack.push(Item::Lit(")"));
                                    self.stack.push(Item::List(first));
                                    self.stack.push(Item::Lit(".("));
                                }
                            }
                            if let Some(name) = node.name() {
                                self.stack.push(Item::Name(name));
                            }
                            return Some(cap_text(cap, node.name().is_some()).as_bytes());
                        }
                    }
                }
            }
        }
    }
}

/// Writes the program in compact form, parts in their current order.
pub fn write_compact(ast: &Ast, out: &mut impl Write) -> io::Result<()> {
    let Some(first) = ast.first_child(None) else {
        return Ok(());
    };
    let mut stack = Vec::new();
    for chunk in Chunks::new(ast, Item::List(first), &mut stack) {
        out.write_all(chunk)?;
    }
    Ok(())
}

/// The compact form of the program, parts in their current order.
pub fn to_compact_string(ast: &Ast) -> String {
    let mut out = Vec::new();
    write_compact(ast, &mut out).expect("writing to a vector does not fail");
    String::from_utf8(out).expect("names are UTF-8")
}

/// The canonical form of `spec/syntax.md`: compact, parts sorted. Clones the AST;
/// call [`Ast::canonicalize`] and [`write_compact`] to avoid the copy.
pub fn to_canonical_string(ast: &Ast) -> String {
    let mut copy = ast.clone();
    copy.canonicalize();
    to_compact_string(&copy)
}

/// Line width the pretty printer aims for.
const WIDTH: usize = 80;
/// Deepest indentation, in levels; deeper levels print at this indentation.
const MAX_INDENT_LEVELS: usize = 32;

/// Writes the program indented for people, parts in their current order: a node
/// whose compact text fits on the line stays on one line, others open one line per
/// part. Parsing the output gives the same program.
pub fn write_pretty(ast: &Ast, out: &mut impl Write) -> io::Result<()> {
    let widths = compact_widths(ast);
    let mut printer = Pretty {
        ast,
        widths: &widths,
        out,
        column: 0,
        scratch: Vec::new(),
    };
    printer.run()
}

/// The pretty form of the program, parts in their current order.
pub fn to_pretty_string(ast: &Ast) -> String {
    let mut out = Vec::new();
    write_pretty(ast, &mut out).expect("writing to a vector does not fail");
    String::from_utf8(out).expect("names are UTF-8")
}

/// The length in characters of each node's compact text, children before parents.
fn compact_widths(ast: &Ast) -> Vec<usize> {
    let mut widths = vec![0usize; ast.len()];
    for index in (0..ast.len()).rev() {
        let id = ast.node_id(index);
        let node = ast.node(id);
        let name_width = node
            .name()
            .map_or(0, |s| ast.printed_name(s).chars().count());
        let (mut body, mut count) = (0usize, 0usize);
        for child in ast.children(Some(id)) {
            body += widths[child.index()];
            count += 1;
        }
        body += count.saturating_sub(1);
        widths[index] = match node.kind() {
            NodeKind::Ambient => name_width + 2 + body,
            NodeKind::Cap(cap) => {
                let head = cap_text(cap, node.name().is_some()).len() + name_width;
                match count {
                    0 => head,
                    1 => head + 1 + body,
                    _ => head + 3 + body,
                }
            }
        };
    }
    widths
}

#[derive(Clone, Copy, Debug)]
enum PrettyItem {
    Node(NodeId, usize),
    /// Parts one per line at an indentation, separated by `|`.
    Lines(NodeId, usize),
    Lit(&'static str),
    Newline(usize),
}

struct Pretty<'a, W: Write> {
    ast: &'a Ast,
    widths: &'a [usize],
    out: &'a mut W,
    column: usize,
    scratch: Vec<Item>,
}

impl<W: Write> Pretty<'_, W> {
    fn write(&mut self, text: &str) -> io::Result<()> {
        self.column += text.chars().count();
        self.out.write_all(text.as_bytes())
    }

    fn newline(&mut self, indent: usize) -> io::Result<()> {
        let spaces = 2 * indent.min(MAX_INDENT_LEVELS);
        self.out.write_all(b"\n")?;
        self.out.write_all(" ".repeat(spaces).as_bytes())?;
        self.column = spaces;
        Ok(())
    }

    fn run(&mut self) -> io::Result<()> {
        let Some(first) = self.ast.first_child(None) else {
            return Ok(());
        };
        let mut stack = vec![PrettyItem::Lit("\n"), PrettyItem::Lines(first, 0)];
        while let Some(item) = stack.pop() {
            match item {
                PrettyItem::Lit(text) => self.write(text)?,
                PrettyItem::Newline(indent) => self.newline(indent)?,
                PrettyItem::Lines(id, indent) => {
                    if let Some(next) = self.ast.next_sibling(id) {
                        stack.push(PrettyItem::Lines(next, indent));
                        stack.push(PrettyItem::Newline(indent));
                        stack.push(PrettyItem::Lit("|"));
                    }
                    stack.push(PrettyItem::Node(id, indent));
                }
                PrettyItem::Node(id, indent) => self.node(id, indent, &mut stack)?,
            }
        }
        Ok(())
    }

    fn node(&mut self, id: NodeId, indent: usize, stack: &mut Vec<PrettyItem>) -> io::Result<()> {
        let ast = self.ast;
        if self.column + self.widths[id.index()] <= WIDTH {
            let mut scratch = std::mem::take(&mut self.scratch);
            for chunk in Chunks::new(ast, Item::Node(id), &mut scratch) {
                self.column += chunk.len();
                self.out.write_all(chunk)?;
            }
            self.scratch = scratch;
            return Ok(());
        }
        let node = ast.node(id);
        let name = node.name().map(|s| ast.printed_name(s));
        match node.kind() {
            NodeKind::Ambient => {
                self.write(name.unwrap_or_default())?;
                self.write("[")?;
                if let Some(first) = ast.first_child(Some(id)) {
                    stack.push(PrettyItem::Lit("]"));
                    stack.push(PrettyItem::Newline(indent));
                    stack.push(PrettyItem::Lines(first, indent + 1));
                    stack.push(PrettyItem::Newline(indent + 1));
                } else {
                    self.write("]")?;
                }
            }
            NodeKind::Cap(cap) => {
                self.write(cap_text(cap, name.is_some()))?;
                self.write(name.unwrap_or_default())?;
                if let Some(first) = ast.first_child(Some(id)) {
                    if ast.next_sibling(first).is_none() {
                        self.write(".")?;
                        stack.push(PrettyItem::Node(first, indent));
                    } else {
                        self.write(".(")?;
                        stack.push(PrettyItem::Lit(")"));
                        stack.push(PrettyItem::Newline(indent));
                        stack.push(PrettyItem::Lines(first, indent + 1));
                        stack.push(PrettyItem::Newline(indent + 1));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse, to_canonical_string};

    use super::*;

    #[test]
    fn compact_keeps_order() {
        let ast = parse("b[] | a[ in x . ( c[] | d[] ) ]").unwrap();
        assert_eq!(to_compact_string(&ast), "b[]|a[in x.(c[]|d[])]");
    }

    #[test]
    fn canonical_examples() {
        let cases = [
            (
                "a[in b|c[]] | a[in b|d[]] | b[in_ a]",
                "a[c[]|in b]|a[d[]|in b]|b[in_ a]",
            ),
            ("call[out a.in b|open_]", "call[open_|out a.in b]"),
            ("in a.(b[])", "in a.b[]"),
            ("in a.(b[]|(c[]|open_))", "in a.(b[]|c[]|open_)"),
            ("a[in_ |out_ x]", "a[in_|out_ x]"),
            ("\"hello world\"[] | \"abc\"[]", "\"hello world\"[]|abc[]"),
            ("", ""),
            ("()", ""),
            ("in a.()", "in a"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                to_canonical_string(&parse(input).unwrap()),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn pretty_breaks_long_lines_and_reparses() {
        let src = "string_concat[in_ call.open call.(func[left[in_ arg.open arg.in string.in concat]|right[in_ arg.open arg.in string.in concat]|string[concat[in_ left|in_ right]|in_ left|in_ right]|open_]|open return.open_)]";
        let ast = parse(src).unwrap();
        let pretty = to_pretty_string(&ast);
        assert_eq!(
            pretty,
            "string_concat[\n  in_ call.open call.(\n    func[\n      left[in_ arg.open arg.in string.in concat]|\n      right[in_ arg.open arg.in string.in concat]|\n      string[concat[in_ left|in_ right]|in_ left|in_ right]|\n      open_\n    ]|\n    open return.open_\n  )\n]\n"
        );
        assert!(parse(&pretty).unwrap().same_structure(&ast));
    }
}
