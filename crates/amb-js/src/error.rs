//! Why a JavaScript file is refused: one variant per kind of refusal, each with the
//! line:column of the construct at fault (columns in characters, from 1).

use crate::ast::Pos;

/// A refusal of the compiler. Every variant names the place and the construct.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JsError {
    /// The text is not JavaScript at all (the parser's message).
    #[error("{pos}: syntax error: {message}")]
    Syntax {
        /// Where the parser stopped.
        pos: Pos,
        /// The parser's message.
        message: String,
    },
    /// Valid JavaScript outside the subset (`if`, `let`, a loop, a class, …).
    #[error("{pos}: {construct} is not in the JavaScript subset ({rule})")]
    Unsupported {
        /// Where the construct starts.
        pos: Pos,
        /// The construct, as people call it (`let declaration`, `if statement`).
        construct: String,
        /// What the subset allows instead.
        rule: String,
    },
    /// A name bound by nothing in scope.
    #[error("{pos}: unknown name `{name}`")]
    UnknownName {
        /// Where the name is used.
        pos: Pos,
        /// The name.
        name: String,
    },
    /// A `const` used in its own initializer or before its declaration.
    #[error("{pos}: `{name}` is used before its declaration ends: recursion is not in the subset")]
    Recursion {
        /// Where the name is used.
        pos: Pos,
        /// The name.
        name: String,
    },
    /// A user name that the encoding reserves (`call`, `func`, `string`, `sys_…`).
    #[error(
        "{pos}: `{name}` is a reserved name (the protocol's and the values' names, and the `sys_` prefix, cannot be bound)"
    )]
    Reserved {
        /// Where the name is bound.
        pos: Pos,
        /// The name.
        name: String,
    },
    /// The same name bound twice in one scope.
    #[error("{pos}: `{name}` is declared twice")]
    Duplicate {
        /// The second binding.
        pos: Pos,
        /// The name.
        name: String,
    },
    /// A type error found by inference.
    #[error("{pos}: type error in {construct}: {message}")]
    Type {
        /// Where the construct starts.
        pos: Pos,
        /// The construct (`+`, `call`, `.length`, `array literal`, `program value`).
        construct: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A number literal that the subset cannot represent.
    #[error("{pos}: number literal `{text}`: {reason}")]
    Number {
        /// Where the literal starts.
        pos: Pos,
        /// The literal as written.
        text: String,
        /// Why it is refused.
        reason: String,
    },
    /// The program nests deeper than the compiler's limit.
    #[error("{pos}: expressions nest deeper than {limit} levels")]
    TooDeep {
        /// Where the limit was crossed.
        pos: Pos,
        /// The limit.
        limit: usize,
    },
    /// Calls inside calls (each compiled into its caller) nest deeper than the
    /// compiler's limit.
    #[error("{pos}: calls nest deeper than {limit} levels (each call is compiled into its caller)")]
    CallsTooDeep {
        /// The call where the limit was crossed.
        pos: Pos,
        /// The limit.
        limit: usize,
    },
    /// The generated program would be larger than the compiler's limit (every call
    /// gets its own copy of the called function, and every use of a parameter its
    /// own copy of the argument).
    #[error("{pos}: the generated program exceeds {limit} bytes")]
    TooLarge {
        /// The final expression's place.
        pos: Pos,
        /// The limit in bytes.
        limit: usize,
    },
}

impl JsError {
    /// The place in the JavaScript source.
    pub fn pos(&self) -> Pos {
        match self {
            JsError::Syntax { pos, .. }
            | JsError::Unsupported { pos, .. }
            | JsError::UnknownName { pos, .. }
            | JsError::Recursion { pos, .. }
            | JsError::Reserved { pos, .. }
            | JsError::Duplicate { pos, .. }
            | JsError::Type { pos, .. }
            | JsError::Number { pos, .. }
            | JsError::TooDeep { pos, .. }
            | JsError::CallsTooDeep { pos, .. }
            | JsError::TooLarge { pos, .. } => *pos,
        }
    }

    /// The error for people: `error: …`, then `--> file:line:col`, the source line
    /// and a caret under the column.
    pub fn render(&self, source: &str, file: &str) -> String {
        let pos = self.pos();
        let message = self.to_string();
        let message = message
            .split_once(": ")
            .map_or(message.as_str(), |(_, rest)| rest);
        let line_text = source
            .lines()
            .nth(pos.line.saturating_sub(1) as usize)
            .unwrap_or("");
        // A long line is shown as a window of 60 characters either side of the place.
        let chars: Vec<char> = line_text.chars().collect();
        let at = (pos.column.saturating_sub(1) as usize).min(chars.len());
        let from = at.saturating_sub(60);
        let to = (at + 60).min(chars.len());
        let mut shown: String = chars[from..to].iter().collect();
        let mut before: String = chars[from..at].iter().collect();
        if from > 0 {
            shown.insert(0, '…');
            before.insert(0, ' ');
        }
        if to < chars.len() {
            shown.push('…');
        }
        let line_text = shown;
        let gutter = pos.line.to_string().len();
        let caret: String = before
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "error: {message}\n{pad} --> {file}:{pos}\n{pad} |\n{line} | {line_text}\n{pad} | {caret}^\n",
            pad = " ".repeat(gutter),
            line = pos.line,
        )
    }
}

/// Byte offsets to line:column, columns in characters.
#[derive(Debug)]
pub(crate) struct Lines<'s> {
    source: &'s str,
    starts: Vec<usize>,
}

impl<'s> Lines<'s> {
    pub(crate) fn new(source: &'s str) -> Lines<'s> {
        let mut starts = vec![0];
        for (i, b) in source.bytes().enumerate() {
            if b == b'\n' {
                starts.push(i + 1);
            }
        }
        Lines { source, starts }
    }

    pub(crate) fn pos(&self, offset: u32) -> Pos {
        let offset = (offset as usize).min(self.source.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Pos {
            line: line as u32 + 1,
            column: column as u32 + 1,
        }
    }
}
