//! The subset's syntax tree: what the checker, the compiler and the reference
//! evaluator read. Built from the JS parser's tree by `parse.rs`, or directly by
//! tests (the property test generates these and prints them as JavaScript).

/// A place in the JavaScript source: line and column, both from 1; columns count
/// characters (Unicode scalar values), not bytes or UTF-16 units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A program: `const` declarations, then one expression statement whose value is
/// the program's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The declarations, in source order.
    pub consts: Vec<Const>,
    /// The final expression.
    pub body: Expr,
}

/// `const name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Const {
    /// The bound name.
    pub name: String,
    /// Where the name is written.
    pub pos: Pos,
    /// The initializer.
    pub value: Expr,
}

/// An expression and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it starts.
    pub pos: Pos,
}

/// The expressions of the subset.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A string literal (its value, escapes resolved).
    Str(String),
    /// An integer literal (no `.` and no exponent), signed 64-bit.
    Int(i64),
    /// A float literal (written with a `.` or an exponent).
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `[a, b, …]`: a list.
    Array(Vec<Expr>),
    /// A name bound by `const` or a parameter.
    Var(String),
    /// `(p, …) => body` or `(p, …) => { const …; return body; }`.
    Arrow {
        /// Parameter names and places.
        params: Vec<(String, Pos)>,
        /// The block body's declarations (none for an expression body).
        consts: Vec<Const>,
        /// The returned expression.
        body: Box<Expr>,
    },
    /// `callee(args…)`.
    Call {
        /// The called function.
        callee: Box<Expr>,
        /// The arguments.
        args: Vec<Expr>,
    },
    /// `a + b`: string concatenation, int or float addition.
    Add(Box<Expr>, Box<Expr>),
    /// `a * b`: int or float multiplication.
    Mul(Box<Expr>, Box<Expr>),
    /// `-a` on an int or a float (a negated number literal is a literal).
    Neg(Box<Expr>),
    /// `a.length` of a string or a list.
    Length(Box<Expr>),
}

impl Expr {
    /// An expression at `pos`.
    pub fn new(kind: ExprKind, pos: Pos) -> Expr {
        Expr { kind, pos }
    }
}
