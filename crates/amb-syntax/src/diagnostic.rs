//! Syntax errors: what was expected, where (line:column), and a caret under the place.

use std::fmt;

/// A 1-based line and column; the column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineCol {
    /// Line number, from 1.
    pub line: usize,
    /// Column number in characters, from 1.
    pub column: usize,
}

impl LineCol {
    /// The line and column of a byte offset of `source`.
    pub fn of_offset(source: &[u8], offset: usize) -> LineCol {
        let offset = offset.min(source.len());
        let before = &source[..offset];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        LineCol { line, column }
    }
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What went wrong, without the place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxErrorKind {
    /// A token that does not fit here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar allows here.
        expected: String,
        /// What the input has.
        found: String,
    },
    /// A bracket or parenthesis that is never closed.
    #[error("expected `{close}` to close `{opener}` opened at {opened_at}, found {found}")]
    Unclosed {
        /// The closing character expected.
        close: char,
        /// The opening text, such as `a[` or `(`.
        opener: String,
        /// Where the opener is.
        opened_at: LineCol,
        /// What the input has instead.
        found: String,
    },
    /// A closing bracket or parenthesis with no opener.
    #[error("unmatched `{0}`: nothing is open here")]
    Unmatched(char),
    /// `open_` written with a name.
    #[error("`open_` takes no name (found name `{0}`); write `open_` alone")]
    OpenCoWithName(String),
    /// `in`, `out` or `open` without a name.
    #[error("`{0}` needs the name of an ambient, found {1}")]
    MissingTarget(&'static str, String),
    /// A quoted name that does not end.
    #[error("quoted name is not closed: expected `\"` before {0}")]
    UnterminatedQuote(String),
    /// A backslash sequence that is not one of the escapes.
    #[error("invalid escape `{0}` in quoted name (allowed: \\\" \\\\ \\n \\r \\t \\0 \\u{{HEX}})")]
    InvalidEscape(String),
    /// A raw control character inside a quoted name.
    #[error("control character U+{0:04X} inside a quoted name; write it as an escape")]
    ControlInQuote(u32),
    /// Bytes that are not UTF-8.
    #[error("input is not valid UTF-8")]
    InvalidUtf8,
    /// The input is larger than [`crate::Limits::max_input_bytes`].
    #[error("input is {size} bytes, more than the limit of {limit} bytes (max_input_bytes)")]
    InputTooLarge {
        /// Input size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Nesting deeper than [`crate::Limits::max_depth`].
    #[error("nesting deeper than the limit of {limit} levels (max_depth)")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A name longer than [`crate::Limits::max_name_bytes`].
    #[error("name of {size} bytes is longer than the limit of {limit} bytes (max_name_bytes)")]
    NameTooLong {
        /// Name size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More nodes than [`crate::Limits::max_nodes`].
    #[error("more than {limit} ambients and capabilities (max_nodes)")]
    TooManyNodes {
        /// The limit.
        limit: usize,
    },
    /// Syntax of a neighbouring calculus that ROAM does not have.
    #[error("{construct} is not ROAM syntax: {hint}")]
    Unsupported {
        /// What was found.
        construct: String,
        /// Why it is refused and what to do.
        hint: &'static str,
    },
}

/// A syntax error with its place in the source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {kind}")]
pub struct SyntaxError {
    /// What went wrong.
    pub kind: SyntaxErrorKind,
    /// Byte offset of the place.
    pub offset: usize,
    /// Line and column of the place.
    pub position: LineCol,
}

/// How many characters of a long line to show around the caret.
const WINDOW: usize = 100;

impl SyntaxError {
    pub(crate) fn at(source: &[u8], offset: usize, kind: SyntaxErrorKind) -> SyntaxError {
        SyntaxError {
            kind,
            offset,
            position: LineCol::of_offset(source, offset),
        }
    }

    /// The error as a compiler-style report: message, `file:line:column`, the source
    /// line and a caret under the place.
    pub fn render(&self, source: &[u8], file: &str) -> String {
        let offset = self.offset.min(source.len());
        let start = source[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = source[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(source.len(), |i| offset + i);
        let line: Vec<char> = String::from_utf8_lossy(&source[start..end])
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let caret = self.position.column - 1;
        let skip = caret.saturating_sub(WINDOW / 2);
        let shown: String = line.iter().skip(skip).take(WINDOW).collect();
        let prefix = if skip > 0 { "…" } else { "" };
        let number = self.position.line.to_string();
        let pad = " ".repeat(number.len());
        format!(
            "error: {kind}\n{pad}--> {file}:{pos}\n{pad} |\n{number} | {prefix}{shown}\n{pad} | {spaces}^\n",
            kind = self.kind,
            pos = self.position,
            spaces = " ".repeat(caret - skip + prefix.chars().count()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let src = b"a[\n  b[]\n";
        assert_eq!(LineCol::of_offset(src, 0), LineCol { line: 1, column: 1 });
        assert_eq!(LineCol::of_offset(src, 5), LineCol { line: 2, column: 3 });
        assert_eq!(LineCol::of_offset(src, 99), LineCol { line: 3, column: 1 });
    }

    #[test]
    fn render_points_at_the_place() {
        let src = b"a[\n  b[] c\n]";
        let err = SyntaxError::at(
            src,
            9,
            SyntaxErrorKind::Expected {
                expected: "`|`".into(),
                found: "`c`".into(),
            },
        );
        let text = err.render(src, "x.amb");
        assert_eq!(
            text,
            "error: expected `|`, found `c`\n --> x.amb:2:7\n  |\n2 |   b[] c\n  |       ^\n"
        );
    }
}
