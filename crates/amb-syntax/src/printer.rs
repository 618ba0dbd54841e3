//! Printers: the compact canonical text and an indented form for people.
//!
//! Both print the parts in the order the AST holds them; call
//! [`Ast::canonicalize`](crate::Ast::canonicalize) first (as [`to_canonical_string`]
//! does) for the canonical form of `spec/syntax.md`. The canonical order compares
//! parts as streams of byte chunks ([`Chunks`]); the compact text is written by one
//! walk over the sibling links (with the comments for `write_compact_with_comments`).

use std::{
    collections::HashMap,
    io::{self, Write},
};

use crate::ast::{Ast, CapKind, CommentPlace, NodeId, NodeKind, Symbol};

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

/// The comments of an AST by place, for the printers.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    start: Vec<u32>,
    before: HashMap<NodeId, Vec<u32>>,
    end: HashMap<Option<NodeId>, Vec<u32>>,
}

impl Notes {
    /// The comments of `ast` by place; `None` when it has none.
    fn of(ast: &Ast) -> Option<Notes> {
        if ast.comments().is_empty() {
            return None;
        }
        let mut notes = Notes::default();
        for (index, comment) in ast.comments().iter().enumerate() {
            let list = match comment.place {
                CommentPlace::Start => &mut notes.start,
                CommentPlace::Before(id) => notes.before.entry(id).or_default(),
                CommentPlace::End(owner) => notes.end.entry(owner).or_default(),
            };
            list.push(index as u32);
        }
        Some(notes)
    }

    fn before(&self, id: NodeId) -> &[u32] {
        self.before.get(&id).map_or(&[], Vec::as_slice)
    }

    fn end(&self, owner: Option<NodeId>) -> &[u32] {
        self.end.get(&owner).map_or(&[], Vec::as_slice)
    }
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

/// Writes the program in compact form, parts in their current order: the program's
/// text, without the source's comments (see [`write_compact_with_comments`]).
pub fn write_compact(ast: &Ast, out: &mut impl Write) -> io::Result<()> {
    write_compact_plain(ast, None, out)
}

/// [`write_compact`] with the source's comments (as `amb fmt` prints), each on a
/// line of its own: the header first, the others before their part or at the end of
/// their body.
pub fn write_compact_with_comments(ast: &Ast, out: &mut impl Write) -> io::Result<()> {
    let Some(notes) = Notes::of(ast) else {
        return write_compact_plain(ast, None, out);
    };
    for &index in &notes.start {
        out.write_all(b"//")?;
        out.write_all(ast.comments()[index as usize].text.as_bytes())?;
        out.write_all(b"\n")?;
    }
    write_compact_plain(ast, Some(&notes), out)?;
    for (n, &index) in notes.end(None).iter().enumerate() {
        if n > 0 || !ast.is_empty() {
            out.write_all(b"\n")?;
        }
        out.write_all(b"//")?;
        out.write_all(ast.comments()[index as usize].text.as_bytes())?;
    }
    Ok(())
}

/// Bytes gathered before each write to the output of [`write_compact_plain`].
const BUFFER: usize = 1 << 16;

/// Writes comments into `buffer`, each as `//text` and a line break.
fn push_comments(buffer: &mut Vec<u8>, ast: &Ast, comments: &[u32]) {
    for &index in comments {
        buffer.extend_from_slice(b"//");
        buffer.extend_from_slice(ast.comments()[index as usize].text.as_bytes());
        buffer.push(b'\n');
    }
}

/// The parts of [`write_compact`]: one walk over the sibling links with a stack of
/// the brackets to close, into a buffer written out in large pieces (no chunk a
/// node, no stack entry a part); with `notes`, the comments before parts and at the
/// ends of bodies too.
fn write_compact_plain(ast: &Ast, notes: Option<&Notes>, out: &mut impl Write) -> io::Result<()> {
    let Some(mut current) = ast.first_child(None) else {
        return Ok(());
    };
    let mut buffer: Vec<u8> = Vec::with_capacity(BUFFER + 256);
    // The parts whose bodies are being written, and what closes each (nothing for
    // a capability's single continuation).
    let mut open: Vec<(NodeId, Option<u8>)> = Vec::new();
    loop {
        let node = ast.node(current);
        let first = ast.first_child(Some(current));
        if let Some(notes) = notes {
            push_comments(&mut buffer, ast, notes.before(current));
        }
        match node.kind() {
            NodeKind::Ambient => {
                if let Some(name) = node.name() {
                    buffer.extend_from_slice(ast.printed_name(name).as_bytes());
                }
                buffer.push(b'[');
                if let Some(first) = first {
                    open.push((current, Some(b']')));
                    current = first;
                    continue;
                }
                if let Some(notes) = notes {
                    push_comments(&mut buffer, ast, notes.end(Some(current)));
                }
                buffer.push(b']');
            }
            NodeKind::Cap(cap) => {
                buffer.extend_from_slice(cap_text(cap, node.name().is_some()).as_bytes());
                if let Some(name) = node.name() {
                    buffer.extend_from_slice(ast.printed_name(name).as_bytes());
                }
                if let Some(first) = first {
                    if ast.next_sibling(first).is_some() {
                        buffer.extend_from_slice(b".(");
                        open.push((current, Some(b')')));
                    } else {
                        buffer.push(b'.');
                        open.push((current, None));
                    }
                    current = first;
                    continue;
                }
            }
        }
        if buffer.len() >= BUFFER {
            out.write_all(&buffer)?;
            buffer.clear();
        }
        // The part is written: on to its next sibling, or close what it ends.
        loop {
            if let Some(next) = ast.next_sibling(current) {
                buffer.push(b'|');
                current = next;
                break;
            }
            let Some((parent, closer)) = open.pop() else {
                return out.write_all(&buffer);
            };
            if let (Some(notes), Some(b']')) = (notes, closer) {
                push_comments(&mut buffer, ast, notes.end(Some(parent)));
            }
            buffer.extend(closer);
            current = parent;
        }
    }
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
    pretty(ast, None, out)
}

/// [`write_pretty`] with the source's comments (as `amb fmt --pretty` prints), each
/// on a line of its own at its part's indentation; a part with comments inside it is
/// never put on one line.
pub fn write_pretty_with_comments(ast: &Ast, out: &mut impl Write) -> io::Result<()> {
    pretty(ast, Notes::of(ast), out)
}

fn pretty(ast: &Ast, notes: Option<Notes>, out: &mut impl Write) -> io::Result<()> {
    let widths = compact_widths(ast);
    let blocked = notes
        .as_ref()
        .map_or_else(Vec::new, |notes| blocked(ast, notes));
    let mut printer = Pretty {
        ast,
        widths: &widths,
        notes: notes.as_ref(),
        blocked: &blocked,
        out,
        column: 0,
        scratch: Vec::new(),
    };
    printer.run()
}

/// Which nodes cannot print on one line because comments are inside them: at the
/// end of their body, or before or inside one of their children.
fn blocked(ast: &Ast, notes: &Notes) -> Vec<bool> {
    let mut commented = vec![false; ast.len()];
    let mut blocked = vec![false; ast.len()];
    for index in (0..ast.len()).rev() {
        let id = ast.node_id(index);
        blocked[index] =
            !notes.end(Some(id)).is_empty() || ast.children(Some(id)).any(|c| commented[c.index()]);
        commented[index] = blocked[index] || !notes.before(id).is_empty();
    }
    blocked
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
    /// The comments at the end of a body, each on a new line at an indentation.
    End(Option<NodeId>, usize),
}

struct Pretty<'a, W: Write> {
    ast: &'a Ast,
    widths: &'a [usize],
    notes: Option<&'a Notes>,
    /// By node: comments inside it (empty without comments).
    blocked: &'a [bool],
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

    /// Writes `//text` of the comment at `index`.
    fn comment(&mut self, index: u32) -> io::Result<()> {
        self.out.write_all(b"//")?;
        self.out
            .write_all(self.ast.comments()[index as usize].text.as_bytes())
    }

    fn run(&mut self) -> io::Result<()> {
        for &index in self.notes.map_or(&[][..], |n| &n.start) {
            self.comment(index)?;
            self.newline(0)?;
        }
        let Some(first) = self.ast.first_child(None) else {
            // An empty program: only its comments, if any.
            for &index in self.notes.map_or(&[][..], |n| n.end(None)) {
                self.comment(index)?;
                self.out.write_all(b"\n")?;
            }
            return Ok(());
        };
        let mut stack = vec![
            PrettyItem::Lit("\n"),
            PrettyItem::End(None, 0),
            PrettyItem::Lines(first, 0),
        ];
        while let Some(item) = stack.pop() {
            match item {
                PrettyItem::Lit(text) => self.write(text)?,
                PrettyItem::Newline(indent) => self.newline(indent)?,
                PrettyItem::End(owner, indent) => {
                    for &index in self.notes.map_or(&[][..], |n| n.end(owner)) {
                        self.newline(indent)?;
                        self.comment(index)?;
                    }
                }
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
        if let Some(notes) = self.notes {
            for &index in notes.before(id) {
                self.comment(index)?;
                self.newline(indent)?;
            }
        }
        let blocked = self.blocked.get(id.index()).copied().unwrap_or(false);
        if !blocked && self.column + self.widths[id.index()] <= WIDTH {
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
                    stack.push(PrettyItem::End(Some(id), indent + 1));
                    stack.push(PrettyItem::Lines(first, indent + 1));
                    stack.push(PrettyItem::Newline(indent + 1));
                } else if blocked {
                    // Only comments in its body.
                    stack.push(PrettyItem::Lit("]"));
                    stack.push(PrettyItem::Newline(indent));
                    stack.push(PrettyItem::End(Some(id), indent + 1));
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
    fn the_plain_walk_prints_what_the_chunks_print() {
        for source in [
            "b[] | a[ in x . ( c[] | d[] ) ]",
            "in a.in b.(c[in_ d]|open_)|out_|\"q u\"[x[y[z[]]]|in_ w]",
            "a[]",
            "open_",
            "in a.(b[]|c[in d.e[]])|f[]",
        ] {
            let ast = parse(source).unwrap();
            let mut stack = Vec::new();
            let first = ast.first_child(None).unwrap();
            let chunks: Vec<u8> = Chunks::new(&ast, Item::List(first), &mut stack)
                .flat_map(|c| c.iter().copied())
                .collect();
            assert_eq!(to_compact_string(&ast).into_bytes(), chunks, "{source}");
        }
    }

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
