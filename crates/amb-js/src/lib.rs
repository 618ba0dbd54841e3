//! A compiler from a JavaScript subset to Ambients (ROAM) programs.
//!
//! The subset (`spec/js.md`): `const` declarations and one final expression; string,
//! int, float and boolean literals, arrays, arrow functions (expression or block
//! bodies), calls, `+`, `*`, unary `-` and `.length`. The pipeline:
//!
//! - `parse.rs`: JavaScript text to the subset's tree with `oxc_parser`, refusing
//!   what is outside the subset;
//! - `types.rs`: names and types (Hindley–Milner, let-polymorphism);
//! - `specialize.rs`: function values resolved, data calls kept (`residual.rs`);
//! - `emit.rs`: the residual program as ROAM through `call`, `return`, `func` and
//!   argument carriers, with a source map;
//! - `eval.rs`: a direct evaluator, the oracle of the tests.
//!
//! Every refusal is a [`JsError`] with the JavaScript line:column. No I/O.

pub mod ast;
mod emit;
pub mod error;
pub mod eval;
pub mod parse;
mod residual;
mod specialize;
pub mod types;

pub use emit::Mark;
pub use error::JsError;

/// Largest generated program, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 64 << 20;

/// A compiled program: the ROAM text, its parsed form and the source map.
#[derive(Debug)]
pub struct Compiled {
    /// The generated program (compact ROAM text).
    pub roam: String,
    /// The generated program parsed by `amb-syntax`.
    pub ast: amb_syntax::Ast,
    /// The source map: generated ambients back to JavaScript places.
    pub map: SourceMap,
}

/// Where generated ambients come from in the JavaScript source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMap {
    /// Entries sorted by offset in the generated text.
    pub marks: Vec<Mark>,
}

impl SourceMap {
    /// The JavaScript place of the ambient whose name starts at `offset` in the
    /// generated text (an AST node's span start), if the compiler marked it.
    pub fn at(&self, offset: usize) -> Option<&Mark> {
        let i = self.marks.partition_point(|m| m.offset < offset);
        self.marks.get(i).filter(|m| m.offset == offset)
    }

    /// The JavaScript place of an ambient of the generated program's AST.
    pub fn node(&self, ast: &amb_syntax::Ast, id: amb_syntax::NodeId) -> Option<&Mark> {
        self.at(ast.node(id).span().start as usize)
    }
}

/// Compiles JavaScript text to a ROAM program.
pub fn compile(source: &str) -> Result<Compiled, JsError> {
    on_large_stack(|| compile_program(&parse::parse(source)?))
}

/// Compiles an already built tree (it is checked first).
pub fn compile_program(program: &ast::Program) -> Result<Compiled, JsError> {
    on_large_stack(|| {
        types::check(program)?;
        let specialized = specialize::specialize(program)?;
        let mut emitter = emit::Emitter::new(&specialized.param_names);
        let (roam, marks) = emitter.program(&specialized.value);
        if roam.len() > MAX_OUTPUT_BYTES {
            return Err(JsError::TooLarge {
                pos: program.body.pos,
                limit: MAX_OUTPUT_BYTES,
            });
        }
        let ast = amb_syntax::parse(roam.as_bytes())
            .unwrap_or_else(|e| panic!("the compiler generated invalid ROAM ({e}): {roam}"));
        Ok(Compiled {
            roam,
            ast,
            map: SourceMap { marks },
        })
    })
}

/// Runs `job` on a thread with a large stack: the parser and the compiler recurse
/// over the program (bounded by `parse::MAX_DEPTH` and the call-depth limit, but
/// the JS parser reads any nesting before the subset's depth check).
fn on_large_stack<T: Send>(job: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("amb-js".into())
            .stack_size(512 << 20)
            .spawn_scoped(scope, job)
            .expect("spawning the compiler thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
