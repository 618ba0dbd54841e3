//! The ROAM parser: tokens from [`crate::lexer`], structure from an explicit stack.
//!
//! Grammar (whitespace and `//` comments allowed between any two tokens):
//!
//! ```text
//! program := process? EOF
//! process := part ('|' part)*
//! part    := name '[' process? ']'          ambient
//!          | cap ('.' part)?                prefix; `M.(P|Q)` through a group part
//!          | '(' process? ')'               group, flattened into its context
//! cap     := ('in' | 'out' | 'open') name | ('in_' | 'out_') name? | 'open_'
//! name    := [A-Za-z0-9_-]+ | '"' quoted '"'
//! ```
//!
//! Every open bracket, group and prefix is a frame on a heap-allocated stack, so the
//! nesting depth is bounded by [`Limits::max_depth`] and never by the call stack.

use std::borrow::Cow;

use crate::{
    ast::{Ast, CapKind, CommentPlace, NodeId, Span},
    diagnostic::{LineCol, SyntaxError, SyntaxErrorKind},
    lexer::{QuoteError, bare_word, quoted_name, trivia_with},
    name::is_name_byte,
};

/// Resource limits of one parse. Past a limit the parse stops with a clear error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest input accepted, in bytes. Default 128 MiB.
    pub max_input_bytes: usize,
    /// Deepest nesting of ambients, prefixes and groups. Default 1,000,000.
    pub max_depth: usize,
    /// Longest name, in bytes after unescaping. Default 1 MiB.
    pub max_name_bytes: usize,
    /// Most ambients plus capabilities. Default 100,000,000.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_input_bytes: 128 << 20,
            max_depth: 1_000_000,
            max_name_bytes: 1 << 20,
            max_nodes: 100_000_000,
        }
    }
}

/// Parses ROAM text with the default [`Limits`].
pub fn parse(source: impl AsRef<[u8]>) -> Result<Ast, SyntaxError> {
    parse_with_limits(source.as_ref(), &Limits::default())
}

/// Parses ROAM text.
pub fn parse_with_limits(source: &[u8], limits: &Limits) -> Result<Ast, SyntaxError> {
    if source.len() > limits.max_input_bytes {
        return Err(SyntaxError::at(
            source,
            0,
            SyntaxErrorKind::InputTooLarge {
                size: source.len(),
                limit: limits.max_input_bytes,
            },
        ));
    }
    let text = match std::str::from_utf8(source) {
        Ok(text) => text,
        Err(e) => {
            return Err(SyntaxError::at(
                source,
                e.valid_up_to(),
                SyntaxErrorKind::InvalidUtf8,
            ));
        }
    };
    Parser::new(text, limits).run()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FrameKind {
    /// Inside `n[`, waiting for `]`.
    Ambient,
    /// Inside `(`, waiting for `)`.
    Group,
    /// After `M.`, waiting for one part.
    Prefix,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: FrameKind,
    /// The node whose children are being parsed; `None` for the top level.
    owner: Option<NodeId>,
    /// Offset of the opening `[`, `(` or `.`.
    open: usize,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// At the start of a part; an empty process is allowed when `allow_empty`.
    ExpectPart { allow_empty: bool },
    /// After a capability with no continuation yet.
    AfterCap(NodeId),
    /// A part (or a group) has just ended; `after_cap` when it is a bare capability.
    PartDone { after_cap: bool },
    /// Between parts: `|`, a closer, or the end.
    AfterPart { after_cap: bool },
}

struct Parser<'a> {
    source: &'a [u8],
    /// The same bytes as text (checked UTF-8 before parsing starts).
    text: &'a str,
    rest: &'a [u8],
    limits: &'a Limits,
    ast: Ast,
    stack: Vec<Frame>,
    /// Comments read since the last part was made (byte ranges of their text): they
    /// go before the next part, or at the end of the body that closes first.
    pending: Vec<(usize, usize)>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, limits: &'a Limits) -> Parser<'a> {
        let source = text.as_bytes();
        let rest = source.strip_prefix("\u{feff}".as_bytes()).unwrap_or(source);
        Parser {
            source,
            text,
            rest,
            limits,
            ast: Ast::with_capacity(source.len() / 8),
            stack: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Skips whitespace and comments, keeping each comment's place in the text.
    fn skip_trivia(&mut self) {
        let base = self.source.as_ptr() as usize;
        let pending = &mut self.pending;
        self.rest = trivia_with(self.rest, |text| {
            let start = text.as_ptr() as usize - base;
            let end = start + text.strip_suffix(b"\r").unwrap_or(text).len();
            pending.push((start, end));
        });
    }

    /// Keeps the first `count` pending comments before `node`; before the program's
    /// first part, they are its header ([`CommentPlace::Start`]).
    fn place_before(&mut self, node: NodeId, count: usize) {
        let place = if node.index() == 0 {
            CommentPlace::Start
        } else {
            CommentPlace::Before(node)
        };
        self.place_first(place, count);
    }

    /// Keeps the pending comments at `place`.
    fn place_comments(&mut self, place: CommentPlace) {
        self.place_first(place, self.pending.len());
    }

    /// Keeps the first `count` pending comments at `place`.
    fn place_first(&mut self, place: CommentPlace, count: usize) {
        for (start, end) in self.pending.drain(..count) {
            // Both ends are next to ASCII bytes (`//`, a line break): char boundaries.
            self.ast.push_comment(place, &self.text[start..end]);
        }
    }

    fn offset(&self) -> usize {
        self.source.len() - self.rest.len()
    }

    fn owner(&self) -> Option<NodeId> {
        self.stack.last().and_then(|f| f.owner)
    }

    fn error(&self, offset: usize, kind: SyntaxErrorKind) -> SyntaxError {
        SyntaxError::at(self.source, offset, kind)
    }

    fn run(mut self) -> Result<Ast, SyntaxError> {
        let mut state = State::ExpectPart { allow_empty: true };
        loop {
            state = match state {
                State::ExpectPart { allow_empty } => self.expect_part(allow_empty)?,
                State::AfterCap(node) => {
                    self.skip_trivia();
                    if self.rest.first() == Some(&b'.') {
                        let open = self.offset();
                        self.rest = &self.rest[1..];
                        self.push_frame(FrameKind::Prefix, Some(node), open)?;
                        State::ExpectPart { allow_empty: false }
                    } else {
                        State::PartDone { after_cap: true }
                    }
                }
                State::PartDone { after_cap } => {
                    while self.stack.last().map(|f| f.kind) == Some(FrameKind::Prefix) {
                        self.stack.pop();
                    }
                    State::AfterPart { after_cap }
                }
                State::AfterPart { after_cap } => match self.after_part(after_cap)? {
                    Some(next) => next,
                    None => break,
                },
            };
        }
        self.place_comments(CommentPlace::End(None));
        self.ast.finish_building();
        Ok(self.ast)
    }

    fn push_frame(
        &mut self,
        kind: FrameKind,
        owner: Option<NodeId>,
        open: usize,
    ) -> Result<(), SyntaxError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.error(
                open,
                SyntaxErrorKind::TooDeep {
                    limit: self.limits.max_depth,
                },
            ));
        }
        self.stack.push(Frame { kind, owner, open });
        Ok(())
    }

    fn check_node_limit(&self, at: usize) -> Result<(), SyntaxError> {
        if self.ast.len() >= self.limits.max_nodes {
            return Err(self.error(
                at,
                SyntaxErrorKind::TooManyNodes {
                    limit: self.limits.max_nodes,
                },
            ));
        }
        Ok(())
    }

    fn expect_part(&mut self, allow_empty: bool) -> Result<State, SyntaxError> {
        self.skip_trivia();
        let start = self.offset();
        match self.rest.first() {
            Some(b'(') => {
                self.rest = &self.rest[1..];
                self.push_frame(FrameKind::Group, self.owner(), start)?;
                Ok(State::ExpectPart { allow_empty: true })
            }
            Some(&b) if b == b'"' || is_name_byte(b) => self.word_part(start),
            None | Some(b']') | Some(b')') if allow_empty => {
                Ok(State::AfterPart { after_cap: false })
            }
            _ => Err(self.unexpected(
                start,
                "a process: an ambient `n[...]`, a capability (in, in_, out, out_, open, open_) or `(`",
            )),
        }
    }

    /// A part that starts with a name or keyword.
    fn word_part(&mut self, start: usize) -> Result<State, SyntaxError> {
        let (word, symbol_text) = self.read_name()?;
        let name_end = self.offset();
        // Comments after the word follow this part: they stay pending.
        let before = self.pending.len();
        self.skip_trivia();
        let ambient = self.rest.first() == Some(&b'[');
        let cap = word.and_then(CapKind::from_keyword);
        // A capability keyword is not a name, unless `[` makes it an ambient's.
        if ambient || cap.is_none() {
            self.check_name_length(start, &symbol_text)?;
        }
        if ambient {
            self.check_node_limit(start)?;
            let symbol = self.ast.intern(&symbol_text);
            let open = self.offset();
            self.rest = &self.rest[1..];
            let node = self
                .ast
                .push_ambient(self.owner(), symbol, Span::new(start, open + 1));
            if before > 0 {
                self.place_before(node, before);
            }
            self.push_frame(FrameKind::Ambient, Some(node), open)?;
            return Ok(State::ExpectPart { allow_empty: true });
        }
        let Some(cap) = cap else {
            return Err(self.not_a_part(start, word, &symbol_text, name_end));
        };
        let target = if cap.allows_name() && self.at_name_start() {
            let (_, text) = self.name_token()?;
            Some(self.ast.intern(&text))
        } else if cap.requires_name() {
            return Err(self.error(
                self.offset(),
                SyntaxErrorKind::MissingTarget(cap.keyword(), describe(self.rest)),
            ));
        } else if self.at_name_start() {
            let at = self.offset();
            let (_, text) = self.name_token()?;
            return Err(self.error(at, SyntaxErrorKind::OpenCoWithName(text.into_owned())));
        } else {
            None
        };
        self.check_node_limit(start)?;
        let end = if target.is_some() {
            self.offset()
        } else {
            name_end
        };
        let node = self
            .ast
            .push_cap(self.owner(), cap, target, Span::new(start, end));
        if before > 0 {
            self.place_before(node, before);
        }
        Ok(State::AfterCap(node))
    }

    fn at_name_start(&self) -> bool {
        matches!(self.rest.first(), Some(&b) if b == b'"' || is_name_byte(b))
    }

    /// Reads a name at the current place, within [`Limits::max_name_bytes`]. Returns
    /// the bare word (`None` when quoted) and the name's text.
    fn name_token(&mut self) -> Result<(Option<&'a [u8]>, Cow<'a, str>), SyntaxError> {
        let start = self.offset();
        let (word, text) = self.read_name()?;
        self.check_name_length(start, &text)?;
        Ok((word, text))
    }

    /// Reads a bare word or a quoted name at the current place, without the length
    /// limit (a capability keyword is not a name).
    fn read_name(&mut self) -> Result<(Option<&'a [u8]>, Cow<'a, str>), SyntaxError> {
        let start = self.offset();
        let (word, text) = if self.rest.first() == Some(&b'"') {
            let (rest, text) = quoted_name(self.rest).map_err(|e| self.quote_error(start, e))?;
            self.rest = rest;
            (None, text)
        } else {
            let Some((rest, word)) = bare_word(self.rest) else {
                return Err(self.unexpected(start, "a name"));
            };
            self.rest = rest;
            // A bare word is ASCII, so its ends are character boundaries.
            (
                Some(word),
                Cow::Borrowed(&self.text[start..start + word.len()]),
            )
        };
        Ok((word, text))
    }

    fn check_name_length(&self, start: usize, text: &str) -> Result<(), SyntaxError> {
        if text.len() > self.limits.max_name_bytes {
            return Err(self.error(
                start,
                SyntaxErrorKind::NameTooLong {
                    size: text.len(),
                    limit: self.limits.max_name_bytes,
                },
            ));
        }
        Ok(())
    }

    fn quote_error(&self, start: usize, error: QuoteError) -> SyntaxError {
        match error {
            QuoteError::Unterminated(at) => {
                let at = start + at;
                self.error(
                    start,
                    SyntaxErrorKind::UnterminatedQuote(describe(&self.source[at..])),
                )
            }
            QuoteError::InvalidEscape(at, text) => {
                self.error(start + at, SyntaxErrorKind::InvalidEscape(text))
            }
            QuoteError::Control(at, code) => {
                self.error(start + at, SyntaxErrorKind::ControlInQuote(code))
            }
        }
    }

    /// The error for a name that is neither an ambient nor a capability.
    fn not_a_part(
        &self,
        start: usize,
        word: Option<&[u8]>,
        text: &str,
        name_end: usize,
    ) -> SyntaxError {
        let unsupported = |hint| SyntaxErrorKind::Unsupported {
            construct: format!("`{text}`"),
            hint,
        };
        let kind = match word {
            Some(b"rec") => unsupported(
                "recursion (`rec X.P`) is not part of this calculus; write the recursion out",
            ),
            Some(b"write" | b"write_" | b"read" | b"read_") => unsupported(
                "`write`/`read` belong to the NBA calculus of js-ambients-reducer, not to ROAM",
            ),
            _ => {
                let what = if word.is_some() {
                    format!(
                        "`[` after the ambient name `{text}` (or a capability: in, in_, out, out_, open, open_)"
                    )
                } else {
                    "`[` after a quoted ambient name".to_string()
                };
                return self.unexpected(self.offset().max(name_end), &what);
            }
        };
        self.error(start, kind)
    }

    fn unexpected(&self, at: usize, expected: &str) -> SyntaxError {
        let rest = &self.source[at..];
        let kind = match rest.first() {
            Some(b'{' | b'}' | b':') => SyntaxErrorKind::Unsupported {
                construct: describe(rest),
                hint: "braces and `:` belong to the NBA calculus of js-ambients-reducer, not to ROAM",
            },
            _ => SyntaxErrorKind::Expected {
                expected: expected.to_string(),
                found: describe(rest),
            },
        };
        self.error(at, kind)
    }

    /// Between parts. Returns `None` at the end of the program.
    fn after_part(&mut self, after_cap: bool) -> Result<Option<State>, SyntaxError> {
        self.skip_trivia();
        let at = self.offset();
        let top = self.stack.last().copied();
        let closer = match self.rest.first() {
            Some(b'|') => {
                self.rest = &self.rest[1..];
                return Ok(Some(State::ExpectPart { allow_empty: false }));
            }
            Some(b']') => Some(FrameKind::Ambient),
            Some(b')') => Some(FrameKind::Group),
            None if top.is_none() => return Ok(None),
            None => None,
            Some(_) => {
                return Err(self.unexpected(at, &self.between_parts_expected(top, after_cap)));
            }
        };
        match (closer, top) {
            (Some(kind), Some(frame)) if frame.kind == kind => {
                self.rest = &self.rest[1..];
                self.stack.pop();
                // Comments at the end of a group wait for the next part.
                if kind == FrameKind::Ambient && !self.pending.is_empty() {
                    self.place_comments(CommentPlace::End(frame.owner));
                }
                Ok(Some(State::PartDone { after_cap: false }))
            }
            (Some(kind), None) => Err(self.error(
                at,
                SyntaxErrorKind::Unmatched(if kind == FrameKind::Ambient { ']' } else { ')' }),
            )),
            (_, Some(frame)) => Err(self.unclosed(frame, at)),
            (None, None) => Ok(None),
        }
    }

    fn between_parts_expected(&self, top: Option<Frame>, after_cap: bool) -> String {
        let dot = if after_cap { "`.`, " } else { "" };
        match top {
            None => format!("{dot}`|` or the end of the program"),
            Some(frame) => {
                let (close, opener, opened_at) = self.describe_frame(frame);
                format!("{dot}`|` or `{close}` to close `{opener}` opened at {opened_at}")
            }
        }
    }

    fn unclosed(&self, frame: Frame, at: usize) -> SyntaxError {
        let (close, opener, opened_at) = self.describe_frame(frame);
        self.error(
            at,
            SyntaxErrorKind::Unclosed {
                close,
                opener,
                opened_at,
                found: describe(&self.source[at..]),
            },
        )
    }

    fn describe_frame(&self, frame: Frame) -> (char, String, LineCol) {
        let opened_at = LineCol::of_offset(self.source, frame.open);
        match (frame.kind, frame.owner) {
            (FrameKind::Ambient, Some(node)) => {
                let name = self.ast.node(node).name().expect("ambients have names");
                let opener = format!("{}[", self.ast.printed_name(name));
                let start = self.ast.node(node).span().start as usize;
                (']', opener, LineCol::of_offset(self.source, start))
            }
            _ => (')', "(".to_string(), opened_at),
        }
    }
}

/// A short description of the token at the start of `rest`, for error messages.
fn describe(rest: &[u8]) -> String {
    match rest.first() {
        None => "end of input".to_string(),
        Some(b'"') => "a quoted name".to_string(),
        Some(&b) if is_name_byte(b) => {
            let word = bare_word(rest).map_or(&rest[..1], |(_, w)| w);
            let shown = String::from_utf8_lossy(&word[..word.len().min(40)]);
            let more = if word.len() > 40 { "…" } else { "" };
            format!("`{shown}{more}`")
        }
        Some(b'\n') => "end of line".to_string(),
        Some(_) => {
            let text = String::from_utf8_lossy(&rest[..rest.len().min(4)]);
            match text.chars().next() {
                Some(c) if c != char::REPLACEMENT_CHARACTER => format!("`{c}`"),
                _ => format!("byte 0x{:02x}", rest[0]),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::NodeKind;

    fn err(src: &str) -> SyntaxError {
        parse(src).expect_err(src)
    }

    #[test]
    fn parses_the_whole_syntax() {
        let ast = parse(
            "int[42[]] | i42[] | string_concat[in_ call.open call.(func[]|open return.open_)] |\n\
             // comment\n a[in b.in_ | out_ | out_ c] | (x[] | (y[])) | \"hello world\"[]",
        )
        .unwrap();
        let roots: Vec<_> = ast.roots().collect();
        assert_eq!(roots.len(), 7);
        let names: Vec<_> = roots
            .iter()
            .map(|&r| ast.name_text(ast.node(r).name().unwrap()))
            .collect();
        assert_eq!(
            names,
            ["int", "i42", "string_concat", "a", "x", "y", "hello world"]
        );
    }

    #[test]
    fn quoted_and_bare_names_are_the_same() {
        let ast = parse("\"abc\"[] | abc[]").unwrap();
        let roots: Vec<_> = ast.roots().collect();
        assert_eq!(ast.node(roots[0]).name(), ast.node(roots[1]).name());
    }

    #[test]
    fn continuation_belongs_to_prefix() {
        let ast = parse("in a.(b[] | open_) | c[]").unwrap();
        let roots: Vec<_> = ast.roots().collect();
        assert_eq!(roots.len(), 2);
        assert_eq!(ast.node(roots[0]).kind(), NodeKind::Cap(CapKind::In));
        assert_eq!(ast.children(Some(roots[0])).count(), 2);
    }

    #[test]
    fn wildcards_and_open_co() {
        let ast = parse("in_ | out_ | open_").unwrap();
        for root in ast.roots() {
            assert_eq!(ast.node(root).name(), None);
        }
    }

    #[test]
    fn empty_processes() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("  // nothing\n").unwrap().is_empty());
        assert_eq!(parse("a[ ]").unwrap().len(), 1);
        assert_eq!(parse("()").unwrap().len(), 0);
    }

    #[test]
    fn unclosed_bracket_names_the_opener() {
        let e = err("x[]|\n\n  a[b[]");
        assert_eq!(e.position, LineCol { line: 3, column: 8 });
        assert_eq!(
            e.kind.to_string(),
            "expected `]` to close `a[` opened at 3:3, found end of input"
        );
    }

    #[test]
    fn errors_name_what_was_expected() {
        assert!(matches!(
            err("a[] b[]").kind,
            SyntaxErrorKind::Expected { .. }
        ));
        assert!(err("a[] b[]").kind.to_string().contains("`|`"));
        assert_eq!(err("a[]]").kind, SyntaxErrorKind::Unmatched(']'));
        assert!(matches!(
            err("a[)").kind,
            SyntaxErrorKind::Unclosed { close: ']', .. }
        ));
        assert!(matches!(
            err("open_ x").kind,
            SyntaxErrorKind::OpenCoWithName(_)
        ));
        assert!(matches!(
            err("in .a[]").kind,
            SyntaxErrorKind::MissingTarget("in", _)
        ));
        assert!(matches!(
            err("a[|b[]]").kind,
            SyntaxErrorKind::Expected { .. }
        ));
        assert!(matches!(
            err("in a.").kind,
            SyntaxErrorKind::Expected { .. }
        ));
        assert!(matches!(err("foo").kind, SyntaxErrorKind::Expected { .. }));
        assert!(matches!(
            err("rec X.a[]").kind,
            SyntaxErrorKind::Unsupported { .. }
        ));
        assert!(matches!(
            err("write_ (x).a[]").kind,
            SyntaxErrorKind::Unsupported { .. }
        ));
        assert!(matches!(
            err("a[{x}]").kind,
            SyntaxErrorKind::Unsupported { .. }
        ));
        assert!(matches!(
            err("\"ab").kind,
            SyntaxErrorKind::UnterminatedQuote(_)
        ));
        assert_eq!(
            parse(b"a[\xff]".as_slice()).unwrap_err().kind,
            SyntaxErrorKind::InvalidUtf8
        );
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        assert!(parse_with_limits(b"a[b[c[]]]", &limits).is_ok());
        let e = parse_with_limits(b"a[b[c[d[]]]]", &limits).unwrap_err();
        assert_eq!(e.kind, SyntaxErrorKind::TooDeep { limit: 3 });
        let limits = Limits {
            max_input_bytes: 4,
            ..Limits::default()
        };
        assert!(matches!(
            parse_with_limits(b"a[b[]]", &limits).unwrap_err().kind,
            SyntaxErrorKind::InputTooLarge { .. }
        ));
        let limits = Limits {
            max_name_bytes: 2,
            ..Limits::default()
        };
        assert!(matches!(
            parse_with_limits(b"abc[]", &limits).unwrap_err().kind,
            SyntaxErrorKind::NameTooLong { .. }
        ));
        let limits = Limits {
            max_nodes: 2,
            ..Limits::default()
        };
        assert!(matches!(
            parse_with_limits(b"a[]|b[]|c[]", &limits).unwrap_err().kind,
            SyntaxErrorKind::TooManyNodes { limit: 2 }
        ));
    }

    #[test]
    fn name_limit_does_not_count_keywords() {
        // Found by fuzzing: `in_` alone was refused as a "name of 3 bytes".
        let limits = Limits {
            max_name_bytes: 1,
            ..Limits::default()
        };
        let ast = parse_with_limits(b"in_ | out_ a | open_ | in a.open b", &limits).unwrap();
        assert_eq!(ast.len(), 5);
        // A keyword written as an ambient's name or as a target is a name.
        for (src, size) in [("open_[]", 5), ("in_ open", 4), ("a[out_ in_]", 3)] {
            assert_eq!(
                parse_with_limits(src.as_bytes(), &limits).unwrap_err().kind,
                SyntaxErrorKind::NameTooLong { size, limit: 1 },
                "{src}"
            );
        }
    }

    #[test]
    fn deep_nesting_does_not_recurse() {
        let depth = 100_000;
        let src = format!("{}{}", "a[".repeat(depth), "]".repeat(depth));
        let ast = parse(&src).unwrap();
        assert_eq!(ast.depth(), depth);
        let chain = format!("{}b[]", "in a.".repeat(depth));
        assert_eq!(parse(&chain).unwrap().depth(), depth + 1);
        let groups = format!("{}b[]{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(parse(&groups).unwrap().len(), 1);
    }
}
