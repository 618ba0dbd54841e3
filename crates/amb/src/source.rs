//! Reading program text (a file or `-` for stdin) and parsing it, with syntax errors
//! rendered against the source; JavaScript files are compiled to ROAM first
//! (`load_program`, `--lang`).

use std::{fmt, io::Read, path::Path};

use amb_syntax::{Ast, Limits};
use anyhow::Context;
use clap::Args;

use crate::commands::json_error::Invalid;

/// An error already rendered for people (a syntax error with its caret).
#[derive(Debug)]
pub(crate) struct Reported(pub(crate) String);

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Reported {}

/// Parser limits, settable on every command that reads a program.
#[derive(Debug, Args, Clone)]
pub(crate) struct LimitArgs {
    /// Largest program accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_input_bytes)]
    max_input_bytes: usize,
    /// Deepest nesting of ambients, prefixes and groups.
    #[arg(long, value_name = "LEVELS", default_value_t = Limits::default().max_depth)]
    max_depth: usize,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_input_bytes: self.max_input_bytes,
            max_depth: self.max_depth,
            ..Limits::default()
        }
    }
}

/// The text of a program file (`-` reads standard input).
pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Parses a program's text; a syntax error comes back rendered with its place.
pub(crate) fn parse(path: &Path, text: &[u8], limits: &LimitArgs) -> anyhow::Result<Ast> {
    let name = display_name(path);
    amb_syntax::parse_with_limits(text, &limits.limits())
        .map_err(|e| Reported(e.render(text, &name)).into())
}

/// Reads and parses a program file.
pub(crate) fn load(path: &Path, limits: &LimitArgs) -> anyhow::Result<(Vec<u8>, Ast)> {
    let text = read(path)?;
    let ast = parse(path, &text, limits)?;
    Ok((text, ast))
}

/// The language of a program file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// ROAM text.
    Roam,
    /// The JavaScript subset of `spec/js.md`, compiled to ROAM.
    Js,
}

/// `--lang`, on the commands that read a program file.
#[derive(Debug, Args, Clone)]
pub(crate) struct LangArgs {
    /// The language of FILE (default: `js` for a `.js` or `.mjs` file, else `roam`).
    #[arg(long, value_enum, value_name = "LANG")]
    pub(crate) lang: Option<Lang>,
}

impl LangArgs {
    /// The language of `path`: `--lang` if given, else by extension.
    pub(crate) fn of(&self, path: &Path) -> Lang {
        self.lang
            .unwrap_or_else(|| match path.extension().and_then(|e| e.to_str()) {
                Some("js" | "mjs") => Lang::Js,
                _ => Lang::Roam,
            })
    }
}

/// Reads a program file in its language and returns the ROAM program: the text
/// (for JavaScript, the generated program) and its AST. A JavaScript refusal is
/// rendered against the JavaScript source.
pub(crate) fn load_program(
    path: &Path,
    lang: &LangArgs,
    limits: &LimitArgs,
) -> anyhow::Result<(Vec<u8>, Ast)> {
    if lang.of(path) == Lang::Roam {
        return load(path, limits);
    }
    let (roam, _) = compile_js(path)?;
    let ast = parse(path, roam.as_bytes(), limits)?;
    Ok((roam.into_bytes(), ast))
}

/// Compiles a JavaScript file; the generated program and its source map.
pub(crate) fn compile_js(path: &Path) -> anyhow::Result<(String, amb_js::SourceMap)> {
    let text = read(path)?;
    let name = display_name(path);
    let source =
        String::from_utf8(text).map_err(|_| Invalid(format!("{name} is not UTF-8 text")))?;
    let compiled = amb_js::compile(&source).map_err(|e| Reported(e.render(&source, &name)))?;
    Ok((compiled.roam, compiled.map))
}

/// `--allow-empty` of the commands that take a program file.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EmptyArgs {
    /// Accept an empty (or comment-only) program instead of refusing it.
    #[arg(long)]
    allow_empty: bool,
}

impl EmptyArgs {
    /// Refuses `ast` if it is empty, unless `--allow-empty` ([`refuse_empty`]).
    pub(crate) fn check(&self, path: &Path, ast: &Ast) -> anyhow::Result<()> {
        refuse_empty(path, ast, self.allow_empty)
    }
}

/// Refuses a program that has no part (an empty or comment-only file): there is
/// nothing to do (`--allow-empty` accepts it anyway).
pub(crate) fn refuse_empty(path: &Path, ast: &Ast, allow_empty: bool) -> anyhow::Result<()> {
    crate::commands::json_error::ensure_valid!(
        allow_empty || !ast.is_empty(),
        "{} holds no program (it is empty or only comments): nothing to do \
         (--allow-empty accepts the empty program)",
        display_name(path)
    );
    Ok(())
}

/// The smallest encoding of a `deploy` instruction: array, opcode, the CID's tag
/// and byte string header, the 37 bytes of the CID, `prev` (`spec/bytecode.md`).
const MIN_DEPLOY_BYTES: usize = 1 + 1 + 2 + 2 + 37 + 1;
/// The smallest encoding of any other instruction: array, opcode, target, `prev`.
const MIN_INSTRUCTION_BYTES: usize = 4;

/// Refuses, before compiling, a program one of whose blocks must be larger than
/// `max_block_bytes`: each block's size is bounded below by its instructions'
/// smallest encodings, so a flat program of millions of parts is refused at once
/// instead of after the whole compilation.
pub(crate) fn check_block_sizes(ast: &Ast, max_block_bytes: usize) -> anyhow::Result<()> {
    use amb_syntax::NodeKind;
    // Block owners: 0 is the program's root, i + 1 the ambient of node i.
    let mut sizes: Vec<usize> = vec![MIN_INSTRUCTION_BYTES; ast.len() + 1];
    let mut stack: Vec<(amb_syntax::NodeId, usize)> = ast.roots().map(|r| (r, 0)).collect();
    while let Some((id, block)) = stack.pop() {
        let node = ast.node(id);
        let own = match node.kind() {
            NodeKind::Ambient => {
                sizes[block] += MIN_DEPLOY_BYTES;
                id.index() + 1
            }
            NodeKind::Cap(_) => {
                let name = node.name().map_or(0, |s| ast.name_text(s).len());
                sizes[block] += MIN_INSTRUCTION_BYTES + name;
                block
            }
        };
        if sizes[block] > max_block_bytes {
            let whose = match block {
                0 => "the program's root".to_string(),
                i => {
                    let owner = ast.node(ast.node_id(i - 1));
                    format!("`{}`", owner.name().map_or("?", |s| ast.name_text(s)))
                }
            };
            return Err(Invalid(format!(
                "the block of {whose} would be more than {max_block_bytes} bytes \
                 (max_block_bytes): refused before compiling; split its body into nested \
                 ambients"
            ))
            .into());
        }
        stack.extend(ast.children(Some(id)).map(|child| (child, own)));
    }
    Ok(())
}

/// How a path is named in messages (`-` is standard input).
fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}
