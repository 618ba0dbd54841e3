//! ROAM (Robust Ambients) text syntax: text ⇄ AST.
//!
//! This crate owns the first stage of the pipeline. It parses program text into an
//! arena [`Ast`] that keeps source spans ([`parse`]), reports syntax errors with their
//! place ([`SyntaxError`]), puts an AST into the canonical order of `spec/syntax.md`
//! ([`Ast::canonicalize`]) and prints it compactly or indented for people
//! ([`print_canonical`], [`print_pretty`]); the `_with_comments` printers (`amb fmt`)
//! also keep the source's `//` comments ([`Comment`]: the header, each before the
//! part that follows it, or at the end of a body). Comments are not part of the
//! program: its canonical text and its bytecode are the same without them.
//!
//! It does no I/O and knows nothing of bytecode, reduction or events. Every algorithm
//! here is iterative (no recursion over the tree), so nesting is bounded only by
//! [`Limits`], never by the call stack.

mod ast;
mod canonical;
mod diagnostic;
mod interner;
mod lexer;
mod name;
mod parser;
mod printer;

pub use ast::{
    Ast, CapKind, Children, Comment, CommentPlace, Node, NodeId, NodeKind, Span, Symbol,
};
pub use diagnostic::{LineCol, SyntaxError, SyntaxErrorKind};
pub use name::{is_bare_name, quote_name};
pub use parser::{Limits, parse, parse_with_limits};
pub use printer::{
    to_canonical_string, to_compact_string, to_pretty_string, write_compact,
    write_compact_with_comments, write_pretty, write_pretty_with_comments,
};
