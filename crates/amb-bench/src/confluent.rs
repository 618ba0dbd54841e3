//! Confluent programs of a chosen number of reduction steps, for the engine bench.
//!
//! They are built from the corpus's string-concat monoid
//! (`ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb`,
//! read in place from the shared corpus, never copied into this repository), which
//! reduces in exactly [`MONOID_STEPS`] steps to
//! `string[concat[left[string[hello[]]]|right[string[world[]]]]]`:
//!
//! * copy *i* renames the copy's own ambients `string_concat` → `string_concat_i` and
//!   `program` → `program_i`, and is wrapped in its own ambient `copy_i[…]`, which
//!   plays the role of the monoid's top level (its `open program_i` acts there). The
//!   protocol names (`call`, `func`, `arg`, `return`, `string`, `concat`, `left`,
//!   `right`) stay. The monoid finishes its work at its top level after opening
//!   `program`, so without the wrapper the copies' `left`/`right` would meet every
//!   other copy's `string` and the program would no longer be confluent;
//! * nine copies in ten sit side by side at the top level (the *flat part*);
//! * the rest form the *nested part*: a chain `nest_0[copy | nest_1[copy | nest_2[…]]]`,
//!   one copy per level, so reductions happen at every depth of the chain.
//!
//! A program of `c` copies takes exactly `18 c` steps and ends as `c` ambients
//! `copy_i[string[concat[left[string[hello[]]]|right[string[world[]]]]]]`.

use std::path::Path;

/// Steps one copy of the monoid takes.
pub const MONOID_STEPS: u64 = 18;

/// Where the monoid lives inside the shared corpus.
pub const MONOID_FILE: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

/// A generated confluent program.
#[derive(Clone, Debug)]
pub struct ConfluentProgram {
    /// The program text.
    pub text: String,
    /// Copies of the monoid in it.
    pub copies: usize,
    /// Copies in the nested chain (also its depth).
    pub nested: usize,
    /// Steps to its normal form.
    pub steps: u64,
}

/// Reads the monoid from the corpus directory.
pub fn read_monoid(corpus: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(corpus.join(MONOID_FILE))
}

/// Replaces whole words (runs of `A-Z a-z 0-9 _ -`) of `text` by `rename`.
pub fn rename_words(text: &str, rename: impl Fn(&str) -> Option<String>) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut out = String::with_capacity(text.len() + 16);
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if is_word(c) {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push_str(&rename(&word).unwrap_or_else(|| word.clone()));
            word.clear();
        }
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// The monoid's comment-free text with its own ambients renamed for copy `i`, so that
/// copies never interact.
pub fn renamed_monoid(monoid: &str, i: usize) -> String {
    let body: String = monoid
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    rename_words(&body, |w| match w {
        "string_concat" | "program" => Some(format!("{w}_{i}")),
        _ => None,
    })
}

/// Copy `i` of the monoid, in an ambient of its own.
fn copy_of(monoid: &str, i: usize) -> String {
    format!("copy_{i}[{}]", renamed_monoid(monoid, i))
}

/// A confluent program of at least `steps` steps (a whole number of copies).
pub fn confluent_program(monoid: &str, steps: u64) -> ConfluentProgram {
    let copies = steps.div_ceil(MONOID_STEPS).max(1) as usize;
    let nested = copies / 10;
    let flat = copies - nested;
    let mut text = String::new();
    for i in 0..flat {
        if i > 0 {
            text.push_str("|\n");
        }
        text.push_str(&copy_of(monoid, i));
    }
    for level in 0..nested {
        text.push_str(&format!(
            "|\nnest_{level}[{}",
            copy_of(monoid, flat + level)
        ));
    }
    text.push_str(&"]".repeat(nested));
    text.push('\n');
    ConfluentProgram {
        text,
        copies,
        nested,
        steps: copies as u64 * MONOID_STEPS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_whole_words_only() {
        let out = rename_words("program[programs|program.x]", |w| {
            (w == "program").then(|| "p_1".to_string())
        });
        assert_eq!(out, "p_1[programs|p_1.x]");
    }
}
