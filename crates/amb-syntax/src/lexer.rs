//! Tokens of ROAM text, as nom parsers over bytes: trivia (whitespace and `//`
//! comments), bare words and quoted names.
//!
//! The structure above the tokens (nesting of brackets, groups, prefixes) is parsed
//! by [`crate::parser`] with an explicit stack, so that deep nesting never recurses.

use std::borrow::Cow;

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_till, take_while, take_while1},
    character::complete::multispace0,
    error::Error,
};

use crate::name::is_name_byte;

type Res<'a, T> = IResult<&'a [u8], T, Error<&'a [u8]>>;

/// Skips whitespace and `//` line comments.
#[cfg(test)]
pub(crate) fn trivia(input: &[u8]) -> &[u8] {
    trivia_with(input, |_| {})
}

/// Skips whitespace and `//` line comments, giving each comment's text after `//`
/// (without its line break) to `on_comment`.
pub(crate) fn trivia_with<'a>(input: &'a [u8], mut on_comment: impl FnMut(&'a [u8])) -> &'a [u8] {
    let mut rest = input;
    loop {
        let (after_space, _) = spaces(rest).unwrap_or((rest, &[]));
        match comment(after_space) {
            Ok((after_comment, _)) => {
                on_comment(&after_space[2..after_space.len() - after_comment.len()]);
                rest = after_comment;
            }
            Err(_) => return after_space,
        }
    }
}

fn spaces(input: &[u8]) -> Res<'_, &[u8]> {
    multispace0(input)
}

fn comment(input: &[u8]) -> Res<'_, &[u8]> {
    let (rest, _) = tag(&b"//"[..]).parse(input)?;
    take_till(|b| b == b'\n').parse(rest)
}

/// A bare word: one or more of `A-Z a-z 0-9 _ -`.
pub(crate) fn bare_word(input: &[u8]) -> Option<(&[u8], &[u8])> {
    take_while1::<_, _, Error<&[u8]>>(is_name_byte)
        .parse(input)
        .ok()
}

/// Why a quoted name could not be read, and the byte offset (within the input given
/// to [`quoted_name`]) of the place.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QuoteError {
    Unterminated(usize),
    InvalidEscape(usize, String),
    Control(usize, u32),
}

/// A quoted name starting at the opening `"`; returns the rest after the closing
/// `"` and the unescaped text.
pub(crate) fn quoted_name(input: &[u8]) -> Result<(&[u8], Cow<'_, str>), QuoteError> {
    debug_assert_eq!(input.first(), Some(&b'"'));
    let body = &input[1..];
    let offset_of = |rest: &[u8]| input.len() - rest.len();
    let plain = |b: u8| b != b'"' && b != b'\\' && b >= 0x20 && b != 0x7f;
    let (mut rest, run) = take_while::<_, _, Error<&[u8]>>(plain)
        .parse(body)
        .unwrap_or((body, &[]));
    if rest.first() == Some(&b'"') {
        // The common case: no escapes, borrow the text.
        return Ok((&rest[1..], utf8(run)));
    }
    let mut text = String::from(utf8(run));
    loop {
        match rest.first() {
            None => return Err(QuoteError::Unterminated(offset_of(rest))),
            Some(b'"') => return Ok((&rest[1..], Cow::Owned(text))),
            Some(b'\\') => {
                let (after, ch) = escape(rest).map_err(|len| {
                    let shown = String::from_utf8_lossy(&rest[..len.min(rest.len())]);
                    QuoteError::InvalidEscape(offset_of(rest), shown.into_owned())
                })?;
                text.push(ch);
                rest = after;
            }
            Some(&b) if b == b'\n' || b == b'\r' => {
                return Err(QuoteError::Unterminated(offset_of(rest)));
            }
            Some(&b) if b < 0x20 || b == 0x7f => {
                return Err(QuoteError::Control(offset_of(rest), b as u32));
            }
            Some(_) => {}
        }
        let (after, run) = take_while::<_, _, Error<&[u8]>>(plain)
            .parse(rest)
            .unwrap_or((rest, &[]));
        text.push_str(&utf8(run));
        rest = after;
    }
}

/// One escape sequence starting at `\`; on error, how many bytes to show.
fn escape(input: &[u8]) -> Result<(&[u8], char), usize> {
    let simple = match input.get(1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'0') => '\0',
        Some(b'u') => return unicode_escape(input),
        Some(_) => return Err(2),
        None => return Err(1),
    };
    Ok((&input[2..], simple))
}

/// `\u{HEX}` with one to six hex digits naming a Unicode scalar value.
fn unicode_escape(input: &[u8]) -> Result<(&[u8], char), usize> {
    let after_u = &input[2..];
    let (rest, _) = tag::<_, _, Error<&[u8]>>(&b"{"[..])
        .parse(after_u)
        .map_err(|_| 2usize)?;
    let (rest, digits) = take_while1::<_, _, Error<&[u8]>>(|b: u8| b.is_ascii_hexdigit())
        .parse(rest)
        .map_err(|_| 3usize)?;
    let shown = input.len() - rest.len() + 1;
    let (rest, _) = tag::<_, _, Error<&[u8]>>(&b"}"[..])
        .parse(rest)
        .map_err(|_| shown)?;
    if digits.len() > 6 {
        return Err(shown);
    }
    let value = u32::from_str_radix(&utf8(digits), 16).map_err(|_| shown);
    let ch = value.ok().and_then(char::from_u32).ok_or(shown)?;
    Ok((rest, ch))
}

/// The input was checked to be UTF-8 before lexing, and every cut is at an ASCII
/// byte, so this never replaces anything; it stays safe code all the same.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivia_skips_spaces_and_comments() {
        assert_eq!(trivia(b"  // hi\n\t a"), b"a");
        assert_eq!(trivia(b"// only"), b"");
        assert_eq!(trivia(b"a"), b"a");
    }

    #[test]
    fn words() {
        assert_eq!(bare_word(b"int[42"), Some((&b"[42"[..], &b"int"[..])));
        assert_eq!(bare_word(b"[x"), None);
    }

    #[test]
    fn quoted_names() {
        let (rest, text) = quoted_name(b"\"hello world\"[]").unwrap();
        assert_eq!((rest, text.as_ref()), (&b"[]"[..], "hello world"));
        let (_, text) = quoted_name(br#""a\"b\\c\n\u{e9}""#).unwrap();
        assert_eq!(text, "a\"b\\c\né");
        assert_eq!(quoted_name(b"\"abc"), Err(QuoteError::Unterminated(4)));
        assert!(matches!(
            quoted_name(br#""a\qb""#),
            Err(QuoteError::InvalidEscape(2, _))
        ));
        assert!(matches!(
            quoted_name(br#""\u{110000}""#),
            Err(QuoteError::InvalidEscape(1, _))
        ));
        assert_eq!(quoted_name(b"\"a\x01\""), Err(QuoteError::Control(2, 1)));
    }
}
