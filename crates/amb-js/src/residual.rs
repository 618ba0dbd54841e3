//! The residual program: what is left to run after the compiler has resolved every
//! function value. Calls that return data stay calls (each with its own copy of
//! the called function's code, specialised to the function values it was given);
//! the operators build typed values. `specialize.rs` makes it, `emit.rs` prints it.

use crate::ast::Pos;

/// The type head of a data value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    Str,
    Int,
    Float,
    Bool,
    List,
}

impl Head {
    /// The value ambient's name for this type.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            Head::Str => "string",
            Head::Int => "int",
            Head::Float => "float",
            Head::Bool => "bool",
            Head::List => "list",
        }
    }
}

/// A residual expression: it produces one typed value where it is placed.
#[derive(Clone, Debug)]
pub(crate) struct R {
    pub(crate) kind: RKind,
    pub(crate) pos: Pos,
    /// Whether it reads a parameter of the function instance it is in.
    pub(crate) open: bool,
}

#[derive(Clone, Debug)]
pub(crate) enum RKind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<R>),
    /// `+`: `concat` for strings, `plus` for numbers.
    Add(Head, Box<R>, Box<R>),
    Mul(Head, Box<R>, Box<R>),
    Neg(Head, Box<R>),
    Length(Box<R>),
    /// A parameter of the enclosing instance (by id, see `Specialized::param_names`).
    Param(usize),
    Call(Box<Call>),
}

/// A call: the instance (its name, parameters and body) and the arguments.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    /// The ambient's name: the top-level `const` the function is reached by.
    pub(crate) name: String,
    /// Where the called function is written.
    pub(crate) def: Pos,
    /// Parameter ids, in the order of `args`.
    pub(crate) params: Vec<usize>,
    pub(crate) body: R,
    pub(crate) args: Vec<R>,
}

impl R {
    pub(crate) fn new(kind: RKind, pos: Pos) -> R {
        let open = match &kind {
            RKind::Str(_) | RKind::Int(_) | RKind::Float(_) | RKind::Bool(_) => false,
            RKind::List(items) => items.iter().any(|r| r.open),
            RKind::Add(_, a, b) | RKind::Mul(_, a, b) => a.open || b.open,
            RKind::Neg(_, a) | RKind::Length(a) => a.open,
            RKind::Param(_) => true,
            RKind::Call(call) => call.args.iter().any(|r| r.open),
        };
        R { kind, pos, open }
    }
}
