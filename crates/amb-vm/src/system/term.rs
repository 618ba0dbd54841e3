//! A typed value as a term (the inverse of [`crate::value::value_of`]), its
//! canonical encoding and its value block (`spec/system.md` §3).

use amb_bytecode::{BlockLimits, Cid, Program, ProgramLimits};
use amb_syntax::{Ast, NodeId, Span};

use crate::{plan::Blocks, value::Value};

/// The canonical encoding of a typed value: the UTF-8 bytes of its compact JSON form
/// (`spec/values.md` §5). `sys_hash` hashes it; size limits measure it.
pub fn canonical_encoding(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// The term of a typed value, as a one-part program: `string[hello[]]` for
/// `"hello"`, lists as `cons` chains. Builds lists by a loop and nests only as deep
/// as the value does (at most [`crate::value::MAX_VALUE_DEPTH`] tuples and lists).
pub fn term_of(value: &Value) -> Ast {
    let mut ast = Ast::new();
    push_value(&mut ast, None, value);
    ast.finish_building();
    ast
}

/// Adds `value`'s term to `ast` under `parent`.
fn push_value(ast: &mut Ast, parent: Option<NodeId>, value: &Value) {
    let ty = ast.intern(value.type_of().name());
    let node = ast.push_ambient(parent, ty, Span::default());
    let leaf = |ast: &mut Ast, text: &str| {
        let name = ast.intern(text);
        ast.push_ambient(Some(node), name, Span::default());
    };
    match value {
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => leaf(ast, s),
        Value::Int(i) => leaf(ast, &i.to_string()),
        Value::Float(_) => leaf(ast, &value.to_string()),
        Value::Bool(b) => leaf(ast, if *b { "true" } else { "false" }),
        Value::Bytes(b) if b.is_empty() => {}
        Value::Bytes(_) => {
            let json = value.to_json();
            leaf(ast, json["bytes"].as_str().expect("bytes print as hex"));
        }
        Value::Char(c) => leaf(ast, &c.to_string()),
        Value::Failure(reason) => leaf(ast, reason),
        Value::Tuple(items) => {
            for (index, item) in items.iter().enumerate() {
                let name = ast.intern(&index.to_string());
                let slot = ast.push_ambient(Some(node), name, Span::default());
                push_value(ast, Some(slot), item);
            }
        }
        Value::List(items) => {
            // list[cons[head[V]|tail[list[…]]]], the tail written out to `list[]`.
            let mut list = node;
            for item in items {
                let [cons, head, tail] = ["cons", "head", "tail"].map(|n| ast.intern(n));
                let cons = ast.push_ambient(Some(list), cons, Span::default());
                let head = ast.push_ambient(Some(cons), head, Span::default());
                push_value(ast, Some(head), item);
                let tail = ast.push_ambient(Some(cons), tail, Span::default());
                let name = ast.intern("list");
                list = ast.push_ambient(Some(tail), name, Span::default());
            }
        }
    }
}

/// The value block of a typed value (its canonical term compiled as a one-part
/// program, as a payload is: `spec/events.md` §6), with every block it needs.
pub fn value_block(value: &Value) -> Result<(Cid, Blocks), amb_bytecode::CompileError> {
    let mut term = term_of(value);
    term.canonicalize();
    let compiled = amb_bytecode::compile(&term)?;
    Ok((compiled.root, compiled.blocks))
}

/// The typed value whose value block is `root`, reading blocks with `get` (each
/// checked against its CID); `None` when a block is missing or does not match, or
/// the term is not a typed value.
pub fn value_of_block<B: AsRef<[u8]>>(
    root: Cid,
    get: impl FnMut(&Cid) -> Option<B>,
) -> Option<Value> {
    let program = Program::load(root, get, &BlockLimits::default()).ok()?;
    let ast = program.to_ast(&ProgramLimits::default()).ok()?;
    crate::value::value_of(&ast).ok()
}
