//! Typed values of value ambients (`spec/values.md`).
//!
//! A *value* is an ambient with no capability anywhere inside it. The VM reads a value
//! ambient whose name is a primitive type (`string`, `int`, `float`, `bool`, `bytes`,
//! `char`, `tuple`, `list`) as a typed [`Value`], evaluating the operations of the types
//! (`concat`, `plus`, `multiply`, `length`, `cons`) on the way:
//! `string[concat[left[string[a[]]]|right[string[b[]]]]]` is `"ab"`. Anything else has
//! no value, and [`NotAValue`] says where and why.
//!
//! Evaluation is iterative: an explicit task stack drives the typed values and their
//! operations, and the sequence types (string, bytes, list) walk their `concat` / `cons`
//! spines in order into one buffer, so the cost is linear in the size of the term and
//! nesting is bounded by memory, never by the call stack. The order of parallel parts
//! never matters: operands and tuple elements are found by name.

use std::fmt;

use amb_syntax::{Ast, NodeId, NodeKind};

/// The deepest nesting of tuples and lists inside one value (`max_value_depth`): a
/// tuple or list that holds no tuple or list is at depth 1. Deeper terms have no value.
///
/// It keeps every value, and its JSON form, shallow enough for the recursive code of
/// other libraries: a tuple is two levels of JSON (an object and an array), so a value
/// prints within 64 nested arrays and objects, well inside the 127 that serde_json's
/// default parser reads, with room for an envelope around it.
pub const MAX_VALUE_DEPTH: usize = 32;

/// A typed value of one of the primitive types.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `string[…]`: Unicode text.
    String(String),
    /// `int[…]`: a signed 64-bit integer.
    Int(i64),
    /// `float[…]`: a finite IEEE 754 binary64 number.
    Float(f64),
    /// `bool[true[]]` or `bool[false[]]`.
    Bool(bool),
    /// `bytes[…]`: a byte string.
    Bytes(Vec<u8>),
    /// `char[…]`: one Unicode scalar value.
    Char(char),
    /// `tuple[0[…]|1[…]|…]`: a fixed sequence of values of any types.
    Tuple(Vec<Value>),
    /// `list[…]`: a sequence of values (of any types) built with `cons` and `concat`.
    List(Vec<Value>),
    /// `failure[…]`: a failed effect, with its reason (`spec/values.md` §3.9,
    /// `spec/system.md`).
    Failure(String),
}

impl Value {
    /// The primitive type of the value.
    pub fn type_of(&self) -> Type {
        match self {
            Value::String(_) => Type::String,
            Value::Int(_) => Type::Int,
            Value::Float(_) => Type::Float,
            Value::Bool(_) => Type::Bool,
            Value::Bytes(_) => Type::Bytes,
            Value::Char(_) => Type::Char,
            Value::Failure(_) => Type::Failure,
            Value::Tuple(_) => Type::Tuple,
            Value::List(_) => Type::List,
        }
    }

    /// The JSON form of the value (`spec/values.md` §5): a string is a JSON string, an
    /// int or a float a number, a bool `true`/`false`, bytes `{"bytes": HEX}` (lower
    /// case), a char `{"char": STRING}`, a tuple `{"tuple": [...]}`, a list an array.
    ///
    /// A non-finite float, which evaluation never produces, becomes `null`. Iterative:
    /// safe for values of any depth.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;

        struct Frame<'a> {
            items: std::slice::Iter<'a, Value>,
            out: Vec<J>,
            tuple: bool,
        }

        fn scalar(value: &Value) -> Option<J> {
            Some(match value {
                Value::String(s) => J::String(s.clone()),
                Value::Int(i) => J::from(*i),
                Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
                Value::Bool(b) => J::Bool(*b),
                Value::Bytes(bytes) => tagged("bytes", J::String(to_hex(bytes))),
                Value::Char(c) => tagged("char", J::String(c.to_string())),
                Value::Failure(reason) => tagged("failure", J::String(reason.clone())),
                Value::Tuple(_) | Value::List(_) => return None,
            })
        }

        fn open(value: &Value) -> Frame<'_> {
            let (items, tuple) = match value {
                Value::Tuple(items) => (items, true),
                Value::List(items) => (items, false),
                _ => unreachable!("only containers open a frame"),
            };
            Frame {
                items: items.iter(),
                out: Vec::with_capacity(items.len()),
                tuple,
            }
        }

        if let Some(json) = scalar(self) {
            return json;
        }
        let mut stack = vec![open(self)];
        loop {
            let top = stack
                .last_mut()
                .expect("the stack holds the value being built");
            match top.items.next() {
                Some(item) => match scalar(item) {
                    Some(json) => top.out.push(json),
                    None => {
                        let frame = open(item);
                        stack.push(frame);
                    }
                },
                None => {
                    let done = stack.pop().expect("the frame just inspected");
                    let array = J::Array(done.out);
                    let json = if done.tuple {
                        tagged("tuple", array)
                    } else {
                        array
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.out.push(json),
                        None => return json,
                    }
                }
            }
        }
    }
}

/// Prints the compact JSON form.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

fn tagged(tag: &str, inner: serde_json::Value) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert(tag.to_owned(), inner);
    serde_json::Value::Object(map)
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Whether `text` is a failure's reason: lower-case ASCII words joined by single
/// `-` (`spec/values.md` §3.9).
pub fn is_failure_reason(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('-')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// The primitive types, named by the ambient that holds a value of the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `string`
    String,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `bool`
    Bool,
    /// `bytes`
    Bytes,
    /// `char`
    Char,
    /// `tuple`
    Tuple,
    /// `list`
    List,
    /// `failure`
    Failure,
}

impl Type {
    /// Every primitive type.
    pub const ALL: [Type; 9] = [
        Type::String,
        Type::Int,
        Type::Float,
        Type::Bool,
        Type::Bytes,
        Type::Char,
        Type::Tuple,
        Type::List,
        Type::Failure,
    ];

    /// The type's ambient name.
    pub fn name(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Int => "int",
            Type::Float => "float",
            Type::Bool => "bool",
            Type::Bytes => "bytes",
            Type::Char => "char",
            Type::Tuple => "tuple",
            Type::List => "list",
            Type::Failure => "failure",
        }
    }

    /// The type an ambient name stands for, if it is a primitive type.
    pub fn from_name(name: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a term has no value, and where: the names of the ambients from the evaluated
/// ambient down to the one at fault.
///
/// Displays as `PATH: REASON`, e.g. `int/plus: expected left and right, found left
/// only` or `string: holds the capability open_ so it is not a value`; problems of the
/// whole program (no part, several parts) have an empty path and display the reason
/// alone. Long paths are shortened in the middle when displayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct NotAValue {
    path: Vec<String>,
    reason: Reason,
}

impl NotAValue {
    /// The names (as printed: quoted when not bare) of the ambients from the evaluated
    /// ambient down to the one at fault; empty for problems of the whole program.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// What is wrong.
    pub fn reason(&self) -> &Reason {
        &self.reason
    }
}

impl fmt::Display for NotAValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEAD: usize = 6;
        const TAIL: usize = 6;
        if !self.path.is_empty() {
            if self.path.len() <= HEAD + TAIL + 1 {
                write!(f, "{}", self.path.join("/"))?;
            } else {
                let skipped = self.path.len() - HEAD - TAIL;
                write!(
                    f,
                    "{}/…({skipped} more)…/{}",
                    self.path[..HEAD].join("/"),
                    self.path[self.path.len() - TAIL..].join("/")
                )?;
            }
            f.write_str(": ")?;
        }
        write!(f, "{}", self.reason)
    }
}

/// What makes a term have no value (`spec/values.md` §6).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The program is the empty process.
    #[error("the program is empty; a value is exactly one ambient")]
    EmptyProgram,
    /// The program has several top-level parts.
    #[error("the program has {count} top-level parts; a value is exactly one ambient")]
    SeveralParts {
        /// How many.
        count: usize,
    },
    /// A capability or co-capability somewhere inside: the term can still reduce.
    #[error("holds the capability {capability} so it is not a value")]
    Capability {
        /// The capability as written, e.g. `open_` or `in a`.
        capability: String,
    },
    /// The ambient's name is not a primitive type.
    #[error(
        "{name} is not a primitive type (string, int, float, bool, bytes, char, tuple, list, failure)"
    )]
    NotAType {
        /// The name, as printed.
        name: String,
    },
    /// An operand, element or length argument of the wrong type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the place takes, e.g. `a string value`.
        expected: String,
        /// What is there, e.g. `int[…]` or `hello[]`.
        found: String,
    },
    /// The wrong number of parts in a type, operation argument or tuple element.
    #[error("expected {expected}, found {found}")]
    Parts {
        /// What the place takes, e.g. `one part`.
        expected: &'static str,
        /// What is there, e.g. `2 parts`.
        found: String,
    },
    /// An operation without exactly its two operands.
    #[error("expected {first} and {second}, found {found}")]
    Operands {
        /// The first operand's name (`left`, `head`).
        first: &'static str,
        /// The second operand's name (`right`, `tail`).
        second: &'static str,
        /// The parts there are, e.g. `left only`.
        found: String,
    },
    /// A part that is neither a literal nor an operation of the type.
    #[error("{part} is not an operation of {ty}{hint}")]
    UnknownOperation {
        /// The type.
        ty: Type,
        /// The part, e.g. `minus[…]` or `nil[]`.
        part: String,
        /// What the type does take.
        hint: &'static str,
    },
    /// A literal name that does not fit the type's grammar.
    #[error("malformed {ty} literal {text}: {rule}")]
    MalformedLiteral {
        /// The type.
        ty: Type,
        /// The literal, as printed.
        text: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// `plus` or `multiply` of ints outside the i64 range.
    #[error("{op} of {left} and {right} overflows the int range (i64)")]
    IntOverflow {
        /// `plus` or `multiply`.
        op: &'static str,
        /// The left operand.
        left: i64,
        /// The right operand.
        right: i64,
    },
    /// A float literal or a float operation that is not finite.
    #[error("{what} is not a finite float")]
    NotFinite {
        /// The literal or the operation, e.g. `multiply of 1e300 and 1e300`.
        what: String,
    },
    /// A tuple part that is not one of the indices `0..n`.
    #[error("{problem}")]
    TupleIndex {
        /// What is wrong with the index.
        problem: String,
    },
    /// Tuples and lists nested deeper than [`MAX_VALUE_DEPTH`].
    #[error("tuples and lists nest more than {limit} deep (limit max_value_depth)")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
}

/// The value of a whole program: it must be exactly one top-level part, an ambient of a
/// primitive type with no capability anywhere inside.
///
/// `string[hello[]]` is `"hello"`; `identity[string[hello[]]]` has no value (its
/// ambient is not a primitive type), nor has `string[hello[]|open_]` (a capability).
pub fn value_of(ast: &Ast) -> Result<Value, NotAValue> {
    let mut roots = ast.roots();
    let Some(first) = roots.next() else {
        return Err(NotAValue {
            path: Vec::new(),
            reason: Reason::EmptyProgram,
        });
    };
    let count = 1 + roots.count();
    if let Some((cap, holder)) = find_capability(ast, ast.roots()) {
        return Err(capability_error(ast, cap, holder));
    }
    if count > 1 {
        return Err(NotAValue {
            path: Vec::new(),
            reason: Reason::SeveralParts { count },
        });
    }
    Evaluator::new(ast, first).run()
}

/// The value of one ambient of a program (and of everything inside it), by the same
/// rules as [`value_of`]. Paths in errors start at `node`.
///
/// # Panics
/// When `node` is not a node of `ast`.
pub fn value_of_node(ast: &Ast, node: NodeId) -> Result<Value, NotAValue> {
    if let Some((cap, holder)) = find_capability(ast, std::iter::once(node)) {
        return Err(capability_error_from(ast, node, cap, holder));
    }
    Evaluator::new(ast, node).run()
}

/// The JSON form of a program's value, or `null` when it has none.
pub fn value_json(ast: &Ast) -> serde_json::Value {
    value_of(ast).map_or(serde_json::Value::Null, |v| v.to_json())
}

/// The first capability in pre-order under `starts`, with the ambient holding it.
fn find_capability(
    ast: &Ast,
    starts: impl Iterator<Item = NodeId>,
) -> Option<(NodeId, Option<NodeId>)> {
    let mut stack: Vec<(NodeId, Option<NodeId>)> = starts.map(|id| (id, None)).collect();
    stack.reverse();
    let mut children = Vec::new();
    while let Some((node, parent)) = stack.pop() {
        if matches!(ast.node(node).kind(), NodeKind::Cap(_)) {
            return Some((node, parent));
        }
        children.clear();
        children.extend(ast.children(Some(node)));
        stack.extend(children.iter().rev().map(|&c| (c, Some(node))));
    }
    None
}

fn capability_text(ast: &Ast, cap: NodeId) -> String {
    let node = ast.node(cap);
    let NodeKind::Cap(kind) = node.kind() else {
        unreachable!("find_capability returns capabilities")
    };
    match node.name() {
        Some(target) => format!("{} {}", kind.keyword(), ast.printed_name(target)),
        None => kind.keyword().to_owned(),
    }
}

/// A capability found among the top-level parts: the path starts at its top-level part.
fn capability_error(ast: &Ast, cap: NodeId, holder: Option<NodeId>) -> NotAValue {
    let path = match holder {
        None => Vec::new(),
        Some(holder) => {
            let top = ast
                .roots()
                .find(|&root| path_ids(ast, root, holder).is_some())
                .expect("the holder is under a top-level part");
            names(ast, &path_ids(ast, top, holder).unwrap_or_default())
        }
    };
    NotAValue {
        path,
        reason: Reason::Capability {
            capability: capability_text(ast, cap),
        },
    }
}

fn capability_error_from(
    ast: &Ast,
    root: NodeId,
    cap: NodeId,
    holder: Option<NodeId>,
) -> NotAValue {
    let path = holder
        .and_then(|holder| path_ids(ast, root, holder))
        .map(|ids| names(ast, &ids))
        .unwrap_or_default();
    NotAValue {
        path,
        reason: Reason::Capability {
            capability: capability_text(ast, cap),
        },
    }
}

/// The nodes from `root` down to `target` (both included), if `target` is under `root`.
/// Iterative depth-first search; only used to report an error.
fn path_ids(ast: &Ast, root: NodeId, target: NodeId) -> Option<Vec<NodeId>> {
    let mut path: Vec<NodeId> = Vec::new();
    let mut stack = vec![(root, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        path.truncate(depth);
        path.push(node);
        if node == target {
            return Some(path);
        }
        stack.extend(ast.children(Some(node)).map(|c| (c, depth + 1)));
    }
    None
}

fn names(ast: &Ast, ids: &[NodeId]) -> Vec<String> {
    ids.iter()
        .map(|&id| {
            let node = ast.node(id);
            match (node.kind(), node.name()) {
                (NodeKind::Ambient, Some(name)) => ast.printed_name(name).to_owned(),
                (NodeKind::Cap(kind), _) => kind.keyword().to_owned(),
                (NodeKind::Ambient, None) => String::new(),
            }
        })
        .collect()
}

/// What an evaluation step expects at a place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// A typed value of any primitive type.
    Any,
    /// A typed value of this type.
    Is(Type),
    /// The argument of `length`: a string, bytes or list.
    Sized,
}

impl Want {
    fn accepts(self, ty: Type) -> bool {
        match self {
            Want::Any => true,
            Want::Is(want) => want == ty,
            Want::Sized => matches!(ty, Type::String | Type::Bytes | Type::List),
        }
    }

    fn describe(self) -> String {
        match self {
            Want::Any => "a value of a primitive type".to_owned(),
            Want::Is(ty) => format!("a value of type {ty} ({ty}[…])"),
            Want::Sized => "a string, bytes or list value".to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arith {
    Plus,
    Multiply,
}

impl Arith {
    fn name(self) -> &'static str {
        match self {
            Arith::Plus => "plus",
            Arith::Multiply => "multiply",
        }
    }

    fn from_name(name: &str) -> Option<Arith> {
        match name {
            "plus" => Some(Arith::Plus),
            "multiply" => Some(Arith::Multiply),
            _ => None,
        }
    }
}

/// One unit of pending work.
#[derive(Clone, Copy, Debug)]
enum Task {
    /// Evaluate the typed value at `node`; pushes one value.
    Eval { node: NodeId, want: Want },
    /// Pops the right then the left operand, pushes the result.
    Arith { node: NodeId, op: Arith, ty: Type },
    /// Pops a string, bytes or list, pushes its length.
    Length,
    /// Pops `len` values (first element deepest), pushes the tuple or list.
    Build { node: NodeId, ty: Type, len: usize },
}

struct Evaluator<'a> {
    ast: &'a Ast,
    root: NodeId,
    tasks: Vec<Task>,
    /// Finished values with their tuple/list nesting depth.
    values: Vec<(Value, usize)>,
    /// Scratch space for the parts of one ambient.
    parts: Vec<NodeId>,
}

type Step<T> = Result<T, NotAValue>;

impl<'a> Evaluator<'a> {
    fn new(ast: &'a Ast, root: NodeId) -> Evaluator<'a> {
        Evaluator {
            ast,
            root,
            tasks: Vec::new(),
            values: Vec::new(),
            parts: Vec::new(),
        }
    }

    fn run(mut self) -> Step<Value> {
        self.tasks.push(Task::Eval {
            node: self.root,
            want: Want::Any,
        });
        while let Some(task) = self.tasks.pop() {
            match task {
                Task::Eval { node, want } => self.eval(node, want)?,
                Task::Arith { node, op, ty } => self.arith(node, op, ty)?,
                Task::Length => {
                    let (value, _) = self.pop();
                    let len = match &value {
                        Value::String(s) => s.chars().count(),
                        Value::Bytes(b) => b.len(),
                        Value::List(items) => items.len(),
                        _ => unreachable!("length takes only sized values"),
                    };
                    // Rust allocations hold at most isize::MAX bytes, so this never
                    // saturates on a 32- or 64-bit target.
                    let len = i64::try_from(len).unwrap_or(i64::MAX);
                    self.values.push((Value::Int(len), 0));
                }
                Task::Build { node, ty, len } => {
                    let start = self.values.len() - len;
                    let mut depth = 0;
                    let items: Vec<Value> = self
                        .values
                        .drain(start..)
                        .map(|(value, d)| {
                            depth = depth.max(d);
                            value
                        })
                        .collect();
                    let depth = depth + 1;
                    if depth > MAX_VALUE_DEPTH {
                        return Err(self.fail(
                            node,
                            Reason::TooDeep {
                                limit: MAX_VALUE_DEPTH,
                            },
                        ));
                    }
                    let value = if ty == Type::Tuple {
                        Value::Tuple(items)
                    } else {
                        Value::List(items)
                    };
                    self.values.push((value, depth));
                }
            }
        }
        let (value, _) = self.pop();
        debug_assert!(self.values.is_empty());
        Ok(value)
    }

    fn pop(&mut self) -> (Value, usize) {
        self.values
            .pop()
            .expect("a task pops only values pushed for it")
    }

    /// An error at `node`, with the path from the evaluated root.
    fn fail(&self, node: NodeId, reason: Reason) -> NotAValue {
        let ids = path_ids(self.ast, self.root, node).unwrap_or_else(|| vec![node]);
        NotAValue {
            path: names(self.ast, &ids),
            reason,
        }
    }

    fn name(&self, node: NodeId) -> &'a str {
        self.ast
            .node(node)
            .name()
            .map_or("", |name| self.ast.name_text(name))
    }

    fn printed(&self, node: NodeId) -> String {
        self.ast
            .node(node)
            .name()
            .map_or_else(String::new, |name| self.ast.printed_name(name).to_owned())
    }

    fn is_leaf(&self, node: NodeId) -> bool {
        !self.ast.node(node).has_children()
    }

    /// How a part looks in a message: `hello[]`, `int[…]`, or a capability.
    fn describe(&self, node: NodeId) -> String {
        let n = self.ast.node(node);
        match n.kind() {
            NodeKind::Ambient if self.is_leaf(node) => format!("{}[]", self.printed(node)),
            NodeKind::Ambient => format!("{}[…]", self.printed(node)),
            NodeKind::Cap(_) => capability_text(self.ast, node),
        }
    }

    fn count_parts(&self, node: NodeId) -> usize {
        self.ast.children(Some(node)).count()
    }

    fn parts_found(count: usize) -> String {
        match count {
            0 => "no part".to_owned(),
            1 => "1 part".to_owned(),
            n => format!("{n} parts"),
        }
    }

    /// The parts of a type ambient that takes none or one (string, bytes, list).
    fn at_most_one(&self, node: NodeId, expected: &'static str) -> Step<Option<NodeId>> {
        let mut children = self.ast.children(Some(node));
        let first = children.next();
        if first.is_some() && children.next().is_some() {
            return Err(self.fail(
                node,
                Reason::Parts {
                    expected,
                    found: Self::parts_found(self.count_parts(node)),
                },
            ));
        }
        Ok(first)
    }

    /// The only part of an ambient that takes exactly one.
    fn exactly_one(&self, node: NodeId, expected: &'static str) -> Step<NodeId> {
        let mut children = self.ast.children(Some(node));
        match (children.next(), children.next()) {
            (Some(only), None) => Ok(only),
            _ => Err(self.fail(
                node,
                Reason::Parts {
                    expected,
                    found: Self::parts_found(self.count_parts(node)),
                },
            )),
        }
    }

    /// The two operand wrappers of an operation, found by name.
    fn operands(
        &mut self,
        op: NodeId,
        first: &'static str,
        second: &'static str,
    ) -> Step<(NodeId, NodeId)> {
        self.parts.clear();
        self.parts.extend(self.ast.children(Some(op)));
        if let [a, b] = self.parts[..] {
            let (na, nb) = (self.name(a), self.name(b));
            let ambients = matches!(self.ast.node(a).kind(), NodeKind::Ambient)
                && matches!(self.ast.node(b).kind(), NodeKind::Ambient);
            if ambients && na == first && nb == second {
                return Ok((a, b));
            }
            if ambients && na == second && nb == first {
                return Ok((b, a));
            }
        }
        let found = match &self.parts[..] {
            [] => "nothing".to_owned(),
            [only] if self.name(*only) == first || self.name(*only) == second => {
                format!("{} only", self.printed(*only))
            }
            parts => parts
                .iter()
                .map(|&p| self.printed(p))
                .collect::<Vec<_>>()
                .join(", "),
        };
        Err(self.fail(
            op,
            Reason::Operands {
                first,
                second,
                found,
            },
        ))
    }

    /// The single typed value inside an operand or element wrapper, checked against
    /// `want` by name (its content is checked when it is evaluated).
    fn content(&self, wrapper: NodeId, want: Want) -> Step<NodeId> {
        let inner = self.exactly_one(wrapper, "one part (a typed value)")?;
        let typed = matches!(self.ast.node(inner).kind(), NodeKind::Ambient)
            && Type::from_name(self.name(inner)).is_some_and(|ty| want.accepts(ty));
        if typed || want == Want::Any {
            // `Want::Any` reports a non-type when the element is evaluated.
            Ok(inner)
        } else {
            Err(self.fail(
                wrapper,
                Reason::WrongType {
                    expected: want.describe(),
                    found: self.describe(inner),
                },
            ))
        }
    }

    fn eval(&mut self, node: NodeId, want: Want) -> Step<()> {
        let ty = match self.ast.node(node).kind() {
            NodeKind::Ambient => Type::from_name(self.name(node)),
            NodeKind::Cap(_) => None,
        };
        let Some(ty) = ty else {
            let reason = match (want, self.ast.node(node).kind()) {
                (Want::Any, NodeKind::Ambient) => Reason::NotAType {
                    name: self.printed(node),
                },
                _ => Reason::WrongType {
                    expected: want.describe(),
                    found: self.describe(node),
                },
            };
            return Err(self.fail(node, reason));
        };
        if !want.accepts(ty) {
            return Err(self.fail(
                node,
                Reason::WrongType {
                    expected: want.describe(),
                    found: self.describe(node),
                },
            ));
        }
        match ty {
            Type::String => {
                let s = self.string(node)?;
                self.values.push((Value::String(s), 0));
            }
            Type::Bytes => {
                let b = self.bytes(node)?;
                self.values.push((Value::Bytes(b), 0));
            }
            Type::Bool => {
                let leaf = self.literal(node, ty)?;
                let b = match self.name(leaf) {
                    "true" => true,
                    "false" => false,
                    _ => return Err(self.malformed(node, leaf, ty, "expected true or false")),
                };
                self.values.push((Value::Bool(b), 0));
            }
            Type::Char => {
                let leaf = self.literal(node, ty)?;
                let mut chars = self.name(leaf).chars();
                let c = match (chars.next(), chars.next()) {
                    (Some(c), None) => c,
                    _ => {
                        return Err(self.malformed(
                            node,
                            leaf,
                            ty,
                            "expected exactly one Unicode scalar value",
                        ));
                    }
                };
                self.values.push((Value::Char(c), 0));
            }
            Type::Failure => {
                let leaf = self.literal(node, ty)?;
                let reason = self.name(leaf);
                if !is_failure_reason(reason) {
                    return Err(self.malformed(
                        node,
                        leaf,
                        ty,
                        "expected a reason: lower-case words joined by -",
                    ));
                }
                self.values.push((Value::Failure(reason.to_string()), 0));
            }
            Type::Int | Type::Float => self.number(node, ty)?,
            Type::Tuple => self.tuple(node)?,
            Type::List => self.list(node)?,
        }
        Ok(())
    }

    fn malformed(&self, node: NodeId, leaf: NodeId, ty: Type, rule: &'static str) -> NotAValue {
        self.fail(
            node,
            Reason::MalformedLiteral {
                ty,
                text: self.printed(leaf),
                rule,
            },
        )
    }

    /// The literal leaf of a type without operations (bool, char).
    fn literal(&self, node: NodeId, ty: Type) -> Step<NodeId> {
        let part = self.exactly_one(node, "one part (a literal n[])")?;
        if self.is_leaf(part) {
            Ok(part)
        } else {
            Err(self.fail(
                node,
                Reason::UnknownOperation {
                    ty,
                    part: self.describe(part),
                    hint: "; it has no operations, its literal is an empty ambient n[]",
                },
            ))
        }
    }

    /// A string: its `concat` tree walked in order into one buffer.
    fn string(&mut self, node: NodeId) -> Step<String> {
        let mut out = String::new();
        let mut stack = vec![node];
        while let Some(s) = stack.pop() {
            let Some(part) = self.at_most_one(s, "no part or one part (a literal or concat)")?
            else {
                continue;
            };
            if self.is_leaf(part) {
                out.push_str(self.name(part));
            } else if self.name(part) == "concat" {
                let (left, right) = self.operands(part, "left", "right")?;
                let want = Want::Is(Type::String);
                let (left, right) = (self.content(left, want)?, self.content(right, want)?);
                stack.push(right);
                stack.push(left);
            } else {
                return Err(self.fail(
                    s,
                    Reason::UnknownOperation {
                        ty: Type::String,
                        part: self.describe(part),
                        hint: "; a string holds a literal n[] or concat[left[…]|right[…]]",
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Bytes: lower-case hex literals, `concat` walked in order into one buffer.
    fn bytes(&mut self, node: NodeId) -> Step<Vec<u8>> {
        let mut out = Vec::new();
        let mut stack = vec![node];
        while let Some(b) = stack.pop() {
            let Some(part) = self.at_most_one(b, "no part or one part (a literal or concat)")?
            else {
                continue;
            };
            if self.is_leaf(part) {
                let text = self.name(part).as_bytes();
                if text.len() % 2 != 0 {
                    return Err(self.malformed(
                        b,
                        part,
                        Type::Bytes,
                        "expected an even number of hex digits",
                    ));
                }
                let digit = |c: u8| match c {
                    b'0'..=b'9' => Some(c - b'0'),
                    b'a'..=b'f' => Some(c - b'a' + 10),
                    _ => None,
                };
                out.reserve(text.len() / 2);
                for pair in text.chunks_exact(2) {
                    match (digit(pair[0]), digit(pair[1])) {
                        (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                        _ => {
                            return Err(self.malformed(
                                b,
                                part,
                                Type::Bytes,
                                "expected lower-case hex digits 0-9 a-f",
                            ));
                        }
                    }
                }
            } else if self.name(part) == "concat" {
                let (left, right) = self.operands(part, "left", "right")?;
                let want = Want::Is(Type::Bytes);
                let (left, right) = (self.content(left, want)?, self.content(right, want)?);
                stack.push(right);
                stack.push(left);
            } else {
                return Err(self.fail(
                    b,
                    Reason::UnknownOperation {
                        ty: Type::Bytes,
                        part: self.describe(part),
                        hint: "; bytes hold a hex literal n[] or concat[left[…]|right[…]]",
                    },
                ));
            }
        }
        Ok(out)
    }

    /// An int or a float: a literal, or an operation whose operands are queued.
    fn number(&mut self, node: NodeId, ty: Type) -> Step<()> {
        let part = self.exactly_one(node, "one part (a literal n[] or an operation)")?;
        if self.is_leaf(part) {
            let text = self.name(part);
            let value = if ty == Type::Int {
                Value::Int(parse_int(text).map_err(|rule| self.malformed(node, part, ty, rule))?)
            } else {
                let f = parse_float(text).map_err(|rule| self.malformed(node, part, ty, rule))?;
                if !f.is_finite() {
                    return Err(self.fail(
                        node,
                        Reason::NotFinite {
                            what: format!("the literal {}", self.printed(part)),
                        },
                    ));
                }
                Value::Float(f)
            };
            self.values.push((value, 0));
            return Ok(());
        }
        let name = self.name(part);
        if let Some(op) = Arith::from_name(name) {
            let (left, right) = self.operands(part, "left", "right")?;
            let want = Want::Is(ty);
            let (left, right) = (self.content(left, want)?, self.content(right, want)?);
            self.tasks.push(Task::Arith { node: part, op, ty });
            self.tasks.push(Task::Eval { node: right, want });
            self.tasks.push(Task::Eval { node: left, want });
            return Ok(());
        }
        if ty == Type::Int && name == "length" {
            let inner = self.content(part, Want::Sized)?;
            self.tasks.push(Task::Length);
            self.tasks.push(Task::Eval {
                node: inner,
                want: Want::Sized,
            });
            return Ok(());
        }
        let hint = if ty == Type::Int {
            "; an int holds a literal n[], plus[…], multiply[…] or length[…]"
        } else {
            "; a float holds a literal n[], plus[…] or multiply[…]"
        };
        Err(self.fail(
            node,
            Reason::UnknownOperation {
                ty,
                part: self.describe(part),
                hint,
            },
        ))
    }

    fn arith(&mut self, node: NodeId, op: Arith, ty: Type) -> Step<()> {
        let (right, _) = self.pop();
        let (left, _) = self.pop();
        let result = match (ty, left, right) {
            (Type::Int, Value::Int(l), Value::Int(r)) => {
                let result = match op {
                    Arith::Plus => l.checked_add(r),
                    Arith::Multiply => l.checked_mul(r),
                };
                Value::Int(result.ok_or_else(|| {
                    self.fail(
                        node,
                        Reason::IntOverflow {
                            op: op.name(),
                            left: l,
                            right: r,
                        },
                    )
                })?)
            }
            (Type::Float, Value::Float(l), Value::Float(r)) => {
                let result = match op {
                    Arith::Plus => l + r,
                    Arith::Multiply => l * r,
                };
                if !result.is_finite() {
                    return Err(self.fail(
                        node,
                        Reason::NotFinite {
                            what: format!(
                                "{} of {} and {}",
                                op.name(),
                                Value::Float(l),
                                Value::Float(r)
                            ),
                        },
                    ));
                }
                Value::Float(result)
            }
            _ => unreachable!("operands are checked by type before evaluation"),
        };
        self.values.push((result, 0));
        Ok(())
    }

    /// A tuple: parts named `0`..`n-1`, each holding one typed value.
    fn tuple(&mut self, node: NodeId) -> Step<()> {
        self.parts.clear();
        self.parts.extend(self.ast.children(Some(node)));
        let len = self.parts.len();
        let mut slots: Vec<Option<NodeId>> = vec![None; len];
        for &part in &self.parts {
            let text = self.name(part);
            let index = parse_index(text).ok_or_else(|| {
                self.fail(
                    node,
                    Reason::TupleIndex {
                        problem: format!(
                            "tuple part {} is not an index (0, 1, 2, … written in decimal)",
                            self.describe(part)
                        ),
                    },
                )
            })?;
            if index >= len {
                return Err(self.fail(
                    node,
                    Reason::TupleIndex {
                        problem: format!(
                            "index {text} is out of range: a tuple of {len} part(s) has the indices 0 to {}",
                            len - 1
                        ),
                    },
                ));
            }
            if slots[index].is_some() {
                return Err(self.fail(
                    node,
                    Reason::TupleIndex {
                        problem: format!("index {text} appears more than once"),
                    },
                ));
            }
            slots[index] = Some(part);
        }
        self.tasks.push(Task::Build {
            node,
            ty: Type::Tuple,
            len,
        });
        for slot in slots.into_iter().rev() {
            let wrapper = slot.expect("n distinct indices below n fill every slot");
            let inner = self.content(wrapper, Want::Any)?;
            self.tasks.push(Task::Eval {
                node: inner,
                want: Want::Any,
            });
        }
        Ok(())
    }

    /// A list: its `cons` / `concat` spine walked in order; the elements are queued.
    fn list(&mut self, node: NodeId) -> Step<()> {
        let mut elements = Vec::new();
        let mut stack = vec![node];
        while let Some(l) = stack.pop() {
            let Some(part) = self.at_most_one(l, "no part or one part (cons or concat)")? else {
                continue;
            };
            let name = if self.is_leaf(part) {
                ""
            } else {
                self.name(part)
            };
            match name {
                "cons" => {
                    let (head, tail) = self.operands(part, "head", "tail")?;
                    let head = self.content(head, Want::Any)?;
                    let tail = self.content(tail, Want::Is(Type::List))?;
                    elements.push(head);
                    stack.push(tail);
                }
                "concat" => {
                    let (left, right) = self.operands(part, "left", "right")?;
                    let want = Want::Is(Type::List);
                    let (left, right) = (self.content(left, want)?, self.content(right, want)?);
                    stack.push(right);
                    stack.push(left);
                }
                _ => {
                    return Err(self.fail(
                        l,
                        Reason::UnknownOperation {
                            ty: Type::List,
                            part: self.describe(part),
                            hint: "; a list is list[], cons[head[…]|tail[list[…]]] or concat[left[list[…]]|right[list[…]]]",
                        },
                    ));
                }
            }
        }
        self.tasks.push(Task::Build {
            node,
            ty: Type::List,
            len: elements.len(),
        });
        for &element in elements.iter().rev() {
            self.tasks.push(Task::Eval {
                node: element,
                want: Want::Any,
            });
        }
        Ok(())
    }
}

/// An int literal: `0`, or an optional `-` and decimal digits without a leading zero,
/// within the i64 range.
fn parse_int(text: &str) -> Result<i64, &'static str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected decimal digits with an optional leading -");
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err("a leading zero is not allowed");
    }
    if text == "-0" {
        return Err("-0 is not allowed; write 0");
    }
    text.parse::<i64>()
        .map_err(|_| "out of the int range (-9223372036854775808 to 9223372036854775807)")
}

/// A float literal: `-? (0 | [1-9][0-9]*) ( . [0-9]+ )? ( (e|E) (+|-)? [0-9]+ )?`,
/// rounded to the nearest binary64 (ties to even). The caller refuses non-finite ones.
fn parse_float(text: &str) -> Result<f64, &'static str> {
    const RULE: &str = "expected -? digits, an optional .digits and an optional exponent e±digits";
    let bytes = text.as_bytes();
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i == int_start {
        return Err(RULE);
    }
    if i - int_start > 1 && bytes[int_start] == b'0' {
        return Err("a leading zero is not allowed");
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(RULE);
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(RULE);
        }
    }
    if i != bytes.len() {
        return Err(RULE);
    }
    text.parse::<f64>().map_err(|_| RULE)
}

/// A tuple index: `0` or decimal digits without a leading zero.
fn parse_index(text: &str) -> Option<usize> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    // Too large for usize: certainly out of range.
    Some(text.parse::<usize>().unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amb_syntax::parse;
    use serde_json::json;

    fn eval(text: &str) -> Result<Value, NotAValue> {
        value_of(&parse(text).expect("test programs parse"))
    }

    fn ok(text: &str) -> Value {
        eval(text).unwrap_or_else(|e| panic!("{text}: expected a value, got {e}"))
    }

    fn err(text: &str) -> String {
        match eval(text) {
            Ok(v) => panic!("{text}: expected no value, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn issue_examples() {
        assert_eq!(ok("string[hello[]]"), Value::String("hello".into()));
        assert_eq!(ok("int[5[]]"), Value::Int(5));
        assert_eq!(
            ok("string[concat[left[string[hello[]]]|right[string[world[]]]]]"),
            Value::String("helloworld".into())
        );
        assert_eq!(
            ok("int[plus[left[int[1[]]]|right[int[2[]]]]]"),
            Value::Int(3)
        );
        assert_eq!(ok("int[length[string[hello[]]]]"), Value::Int(5));
        assert_eq!(
            err("identity[int[length[string[hello[]]]]]"),
            "identity: identity is not a primitive type (string, int, float, bool, bytes, char, tuple, list, failure)"
        );
        assert_eq!(
            err("string[hello[]|open_]"),
            "string: holds the capability open_ so it is not a value"
        );
    }

    #[test]
    fn operands_message_names_what_is_there() {
        assert_eq!(
            err("int[plus[left[int[1[]]]]]"),
            "int/plus: expected left and right, found left only"
        );
        assert_eq!(
            err("int[plus[]]"),
            "int: malformed int literal plus: expected decimal digits with an optional leading -"
        );
        assert_eq!(
            err("int[plus[x[]]]"),
            "int/plus: expected left and right, found x"
        );
    }

    #[test]
    fn node_values_start_their_paths_at_the_node() {
        let ast = parse("identity[int[length[string[hello[]]]]]").unwrap();
        let root = ast.roots().next().unwrap();
        let int = ast.children(Some(root)).next().unwrap();
        assert_eq!(value_of_node(&ast, int), Ok(Value::Int(5)));
        let ast = parse("identity[int[length[string[hello[]|in x]]]]").unwrap();
        let root = ast.roots().next().unwrap();
        let int = ast.children(Some(root)).next().unwrap();
        assert_eq!(
            value_of_node(&ast, int).unwrap_err().to_string(),
            "int/length/string: holds the capability in x so it is not a value"
        );
    }

    #[test]
    fn parsers_follow_the_grammar() {
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("-12"), Ok(-12));
        assert_eq!(parse_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        for bad in [
            "",
            "-",
            "+1",
            "01",
            "-0",
            "1_000",
            "1e3",
            "9223372036854775808",
            "i1",
        ] {
            assert!(parse_int(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_float("3.25"), Ok(3.25));
        assert_eq!(parse_float("-0"), Ok(-0.0));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert_eq!(parse_float("1E+3"), Ok(1000.0));
        assert_eq!(parse_float("2.5e-1"), Ok(0.25));
        assert_eq!(parse_float("0.1"), Ok(0.1));
        assert!(parse_float("1e400").unwrap().is_infinite());
        for bad in [
            "", "-", ".5", "5.", "+1", "01", "1e", "1e+", "inf", "NaN", "1.2.3", "0x1",
        ] {
            assert!(parse_float(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("12"), Some(12));
        assert_eq!(parse_index("01"), None);
        assert_eq!(parse_index("-1"), None);
        assert_eq!(parse_index("99999999999999999999999"), Some(usize::MAX));
    }

    #[test]
    fn json_forms() {
        let v = Value::List(vec![
            Value::String("a".into()),
            Value::Int(-3),
            Value::Float(3.25),
            Value::Bool(true),
            Value::Bytes(vec![0, 0xff]),
            Value::Char('é'),
            Value::Tuple(vec![Value::Int(1), Value::List(vec![])]),
        ]);
        assert_eq!(
            v.to_json(),
            json!(["a", -3, 3.25, true, {"bytes": "00ff"}, {"char": "é"}, {"tuple": [1, []]}])
        );
        assert_eq!(
            v.to_string(),
            r#"["a",-3,3.25,true,{"bytes":"00ff"},{"char":"é"},{"tuple":[1,[]]}]"#
        );
        assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::Value::Null);
    }

    #[test]
    fn to_json_is_iterative() {
        let mut v = Value::List(vec![]);
        for _ in 0..100_000 {
            v = Value::List(vec![v]);
        }
        let json = v.to_json();
        // Take both apart without recursion.
        let mut stack = vec![json];
        let mut depth = 0;
        while let Some(serde_json::Value::Array(mut items)) = stack.pop() {
            depth += 1;
            stack.append(&mut items);
        }
        assert_eq!(depth, 100_001);
        let mut stack = vec![v];
        while let Some(Value::List(mut items)) = stack.pop() {
            stack.append(&mut items);
        }
    }

    #[test]
    fn long_paths_are_shortened() {
        let e = NotAValue {
            path: (0..100).map(|i| i.to_string()).collect(),
            reason: Reason::EmptyProgram,
        };
        assert_eq!(
            e.to_string(),
            "0/1/2/3/4/5/…(88 more)…/94/95/96/97/98/99: the program is empty; a value is exactly one ambient"
        );
        assert_eq!(e.path().len(), 100);
    }
}
