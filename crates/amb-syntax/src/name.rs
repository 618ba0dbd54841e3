//! Names: the bare-name grammar and the quoted form with its escapes.
//!
//! A bare name is one or more of `A-Z a-z 0-9 _ -`. Any other text is written quoted:
//! `"hello world"`, with the escapes `\"`, `\\`, `\n`, `\r`, `\t`, `\0` and `\u{HEX}`.
//! `"abc"` and `abc` are the same name.

use std::fmt::Write;

/// Whether a byte may appear in a bare name.
pub(crate) fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Whether `text` fits the bare-name grammar and so prints without quotes.
pub fn is_bare_name(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_name_byte)
}

/// The quoted form of a name, with escapes; the inverse of the lexer's quoted names.
pub fn quote_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names() {
        for name in [
            "a",
            "int",
            "42",
            "i42",
            "string_concat",
            "a-b",
            "_",
            "open_",
        ] {
            assert!(is_bare_name(name), "{name}");
        }
        for name in ["", "a b", "é", "a.b", "a[", "\"", "a|b"] {
            assert!(!is_bare_name(name), "{name}");
        }
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote_name("hello world"), "\"hello world\"");
        assert_eq!(quote_name("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u{1}\"");
        assert_eq!(quote_name("été"), "\"été\"");
    }
}
