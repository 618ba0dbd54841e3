//! What the API checks of a deployed program's text itself (`spec/network.md`
//! §7): an empty program (nothing but trivia: spaces, tabs, line breaks and `//`
//! comments, `spec/syntax.md` §1) is refused before the node sees it, so nothing
//! is stored; and a syntax error the node refuses is named with its place. The
//! node's own limits (size, depth) are checked by the node first, so the text is
//! parsed here only once it refused it as a syntax error.

use super::error::ApiError;

/// Refuses an empty program (400 `invalid`, rule `empty`).
pub(crate) fn refuse_empty(source: &str) -> Result<(), ApiError> {
    if is_trivia(source) {
        return Err(ApiError::invalid(
            "the program is empty (only spaces and comments): there is nothing to deploy",
        )
        .rule("empty"));
    }
    Ok(())
}

/// Whether `source` holds no token: only trivia, after an optional byte-order mark.
fn is_trivia(source: &str) -> bool {
    let mut rest = source.strip_prefix('\u{feff}').unwrap_or(source);
    loop {
        rest = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        match rest.strip_prefix("//") {
            Some(comment) => rest = comment.find('\n').map_or("", |end| &comment[end..]),
            None => return rest.is_empty(),
        }
    }
}

/// The node's refusal of `source` as a syntax error, with its place: 400
/// `invalid`, rule `syntax`, `at` line:column.
pub(crate) fn syntax_error(error: ApiError, source: &str) -> ApiError {
    match amb_syntax::parse(source) {
        Err(e) => ApiError::invalid(format!("syntax error at {}: {}", e.position, e.kind))
            .rule("syntax")
            .at(e.position.to_string()),
        Ok(_) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivia_is_what_the_parser_reads_as_the_empty_program() {
        let cases = [
            "",
            " \t\r\n",
            "// a comment",
            "// one\n  // two\n",
            "\u{feff}// after a mark\n",
            "a[]",
            "// a comment\na[]",
            "/ / not a comment",
            "0",
            "\u{a0}",
        ];
        for source in cases {
            let parsed_empty = amb_syntax::parse(source).is_ok_and(|ast| ast.is_empty());
            assert_eq!(is_trivia(source), parsed_empty, "{source:?}");
        }
    }
}
