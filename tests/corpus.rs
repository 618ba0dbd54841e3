//! The shared corpus (`../shared/corpus`, read in place): every ROAM program parses,
//! prints canonically and stably, compiles and decompiles to the same tree; every
//! normal form the independent explorer lists prints back exactly as listed; every
//! file that is not ROAM is refused with a specific, well-placed error.
//!
//! The tests fail (never skip) when the corpus is missing: `amb_tests::index` panics.

use amb_bytecode::{Block, Cid, Program, ProgramLimits};
use amb_syntax::{Ast, SyntaxError, SyntaxErrorKind, parse, to_canonical_string};
use amb_tests::{Entry, Kind, index};

fn entries(kind: Kind) -> Vec<Entry> {
    index().into_iter().filter(|e| e.kind == kind).collect()
}

fn text(entry: &Entry) -> String {
    String::from_utf8(entry.read())
        .unwrap_or_else(|e| panic!("{}: corpus file is not UTF-8: {e}", entry.file))
}

fn canonicalized(ast: &Ast) -> Ast {
    let mut copy = ast.clone();
    copy.canonicalize();
    copy
}

/// Fails with every problem found, not only the first.
fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn index_lists_the_expected_files_and_they_exist() {
    let all = index();
    let count = |kind: Kind| all.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count(Kind::Roam), 112, "ROAM files in INDEX.tsv");
    assert_eq!(count(Kind::Nba), 5, "NBA files in INDEX.tsv");
    assert_eq!(count(Kind::SyntaxError), 1, "misprints in INDEX.tsv");
    assert_eq!(count(Kind::NeedsRec), 1, "rec X. files in INDEX.tsv");
    assert_eq!(all.len(), 119);
    for entry in &all {
        assert!(
            entry.path().is_file(),
            "{} is listed but missing",
            entry.file
        );
        match entry.kind {
            Kind::Roam => {
                assert!(
                    !entry.normal_forms.is_empty(),
                    "{}: a ROAM file without normal forms",
                    entry.file
                );
                assert!(
                    entry.confluence == "confluent" || entry.confluence == "nonconfluent",
                    "{}: confluence {:?}",
                    entry.file,
                    entry.confluence
                );
                assert_eq!(
                    entry.confluence == "confluent",
                    entry.normal_forms.len() == 1,
                    "{}: a confluent program has exactly one normal form",
                    entry.file
                );
            }
            _ => assert!(
                entry.normal_forms.is_empty(),
                "{}: normal forms listed for a file that must be refused",
                entry.file
            ),
        }
    }
}

#[test]
fn roam_files_parse_and_their_canonical_form_is_a_fixed_point() {
    let roam = entries(Kind::Roam);
    assert_eq!(roam.len(), 112);
    let mut failures = Vec::new();
    for entry in &roam {
        let source = text(entry);
        let ast = match parse(&source) {
            Ok(ast) => ast,
            Err(e) => {
                failures.push(e.render(source.as_bytes(), &entry.file));
                continue;
            }
        };
        if ast.is_empty() {
            failures.push(format!("{}: parsed to the empty process", entry.file));
            continue;
        }
        let canonical = to_canonical_string(&ast);
        let reparsed = match parse(&canonical) {
            Ok(ast) => ast,
            Err(e) => {
                failures.push(format!(
                    "{}: canonical text {canonical:?} does not reparse: {e}",
                    entry.file
                ));
                continue;
            }
        };
        if !reparsed.is_canonical() {
            failures.push(format!(
                "{}: canonical text {canonical:?} reparses out of canonical order",
                entry.file
            ));
        }
        let again = to_canonical_string(&reparsed);
        if again != canonical {
            failures.push(format!(
                "{}: canonical form is not idempotent:\n  once:  {canonical}\n  twice: {again}",
                entry.file
            ));
        }
        if !canonicalized(&ast).same_structure(&reparsed) {
            failures.push(format!(
                "{}: canonical text {canonical:?} reparses to another tree",
                entry.file
            ));
        }
    }
    assert_no_failures("ROAM corpus parse/canonical", &failures);
}

/// The explorer's normal forms are canonical in its own printer; ours must print
/// exactly the same text for each, an independent check of the canonical order.
#[test]
fn listed_normal_forms_print_back_exactly() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in entries(Kind::Roam) {
        for form in &entry.normal_forms {
            checked += 1;
            match parse(form) {
                Ok(ast) => {
                    let ours = to_canonical_string(&ast);
                    if &ours != form {
                        failures.push(format!(
                            "{}: normal form\n  listed: {form}\n  ours:   {ours}",
                            entry.file
                        ));
                    }
                    if !ast.is_canonical() {
                        failures.push(format!(
                            "{}: listed normal form {form:?} is not canonical by our order",
                            entry.file
                        ));
                    }
                }
                Err(e) => failures.push(format!(
                    "{}: listed normal form does not parse:\n{}",
                    entry.file,
                    e.render(form.as_bytes(), "<normal form>")
                )),
            }
        }
    }
    assert!(checked >= 112, "only {checked} normal forms checked");
    assert_no_failures("explorer normal forms", &failures);
}

#[test]
fn roam_files_compile_and_decompile_to_the_same_tree() {
    let mut failures = Vec::new();
    let mut compiled_files = 0;
    for entry in entries(Kind::Roam) {
        let source = entry.read();
        let ast = parse(&source).unwrap_or_else(|e| panic!("{}", e.render(&source, &entry.file)));
        let compiled = match amb_bytecode::compile(&ast) {
            Ok(compiled) => compiled,
            Err(e) => {
                failures.push(format!("{}: does not compile: {e}", entry.file));
                continue;
            }
        };
        compiled_files += 1;
        // The root block is last, every block is stored once and hashes to its CID.
        if compiled.blocks.last().map(|(cid, _)| *cid) != Some(compiled.root) {
            failures.push(format!("{}: the root block is not last", entry.file));
        }
        let mut seen = std::collections::HashSet::new();
        for (cid, bytes) in &compiled.blocks {
            if !seen.insert(*cid) {
                failures.push(format!("{}: block {cid} stored twice", entry.file));
            }
            if Cid::of(bytes) != *cid {
                failures.push(format!(
                    "{}: block {cid} does not hash to its CID",
                    entry.file
                ));
            }
            match Block::decode(bytes) {
                Ok(block) if block.encode() == *bytes => {}
                Ok(_) => failures.push(format!(
                    "{}: block {cid} re-encodes to other bytes",
                    entry.file
                )),
                Err(e) => {
                    failures.push(format!("{}: block {cid} does not decode: {e}", entry.file))
                }
            }
        }
        let again = amb_bytecode::compile(&ast).expect("compiled once already");
        if again != compiled {
            failures.push(format!("{}: compiling twice gives two results", entry.file));
        }
        let program = match Program::from_compiled(&compiled) {
            Ok(program) => program,
            Err(e) => {
                failures.push(format!("{}: compiled blocks do not load: {e}", entry.file));
                continue;
            }
        };
        assert_eq!(program.root(), compiled.root);
        assert_eq!(program.block_count(), compiled.blocks.len());
        match program.to_ast(&ProgramLimits::default()) {
            Ok(back) if back.same_structure(&ast) => {}
            Ok(back) => failures.push(format!(
                "{}: decompiles to another tree:\n  source:     {}\n  decompiled: {}",
                entry.file,
                amb_syntax::to_compact_string(&ast),
                amb_syntax::to_compact_string(&back)
            )),
            Err(e) => failures.push(format!("{}: does not decompile: {e}", entry.file)),
        }
    }
    assert_eq!(compiled_files, 112);
    assert_no_failures("ROAM corpus compile/decompile", &failures);
}

/// Parses a file that must be refused and checks the rendered report.
fn refused(entry: &Entry) -> (String, SyntaxError) {
    let source = text(entry);
    let error = match parse(&source) {
        Ok(ast) => panic!(
            "{} ({:?}) must be refused, but parsed as {}",
            entry.file,
            entry.kind,
            amb_syntax::to_compact_string(&ast)
        ),
        Err(error) => error,
    };
    let rendered = error.render(source.as_bytes(), &entry.file);
    let place = format!(
        "{}:{}:{}",
        entry.file, error.position.line, error.position.column
    );
    assert!(
        rendered.contains(&place),
        "{}: report does not name {place}:\n{rendered}",
        entry.file
    );
    let caret_line = rendered
        .lines()
        .find(|line| line.trim_end().ends_with('^'))
        .unwrap_or_else(|| panic!("{}: report has no caret:\n{rendered}", entry.file));
    // The caret sits under the reported column of the quoted source line.
    let gutter = caret_line.find('|').expect("caret line has a gutter") + 2;
    assert_eq!(
        caret_line.len() - 1 - gutter,
        error.position.column - 1,
        "{}: caret not under column {}:\n{rendered}",
        entry.file,
        error.position.column
    );
    assert!(
        rendered.starts_with(&format!("error: {}", error.kind)),
        "{}: report does not start with the message:\n{rendered}",
        entry.file
    );
    (source, error)
}

#[test]
fn the_misprint_is_refused_as_an_unclosed_bracket() {
    let misprints = entries(Kind::SyntaxError);
    assert_eq!(misprints.len(), 1);
    for entry in &misprints {
        let (source, error) = refused(entry);
        match &error.kind {
            SyntaxErrorKind::Unclosed {
                close: ']',
                opener,
                opened_at,
                found,
            } => {
                assert!(opener.ends_with('['), "{opener}");
                assert!(opened_at.line >= 1 && opened_at.column >= 1);
                assert_eq!(found, "end of input");
            }
            other => panic!("{}: expected an unclosed `]`, got {other:?}", entry.file),
        }
        let message = error.to_string();
        assert!(message.contains("expected `]`"), "{message}");
        // `line:column: …`, and the place is the end of the text: the `]` is missing.
        assert!(
            message.starts_with(&format!(
                "{}:{}: ",
                error.position.line, error.position.column
            )),
            "{message}"
        );
        assert_eq!(error.offset, source.len());
    }
}

#[test]
fn the_rec_program_is_refused_naming_recursion() {
    let recs = entries(Kind::NeedsRec);
    assert_eq!(recs.len(), 1);
    for entry in &recs {
        let (source, error) = refused(entry);
        assert!(
            matches!(&error.kind, SyntaxErrorKind::Unsupported { construct, .. } if construct.contains("rec")),
            "{}: {:?}",
            entry.file,
            error.kind
        );
        let message = error.to_string().to_lowercase();
        assert!(message.contains("recursion"), "{message}");
        assert!(
            source[error.offset..].starts_with("rec "),
            "{}",
            &source[error.offset..]
        );
    }
}

#[test]
fn nba_programs_are_refused_naming_the_construct() {
    let nba = entries(Kind::Nba);
    assert_eq!(nba.len(), 5);
    for entry in &nba {
        let (source, error) = refused(entry);
        let message = error.to_string();
        let specific = match &error.kind {
            SyntaxErrorKind::Unsupported { construct, hint } => {
                ["write", "read", "{", "}", ":"]
                    .iter()
                    .any(|c| construct.contains(c))
                    && hint.contains("NBA")
            }
            SyntaxErrorKind::Expected { expected, .. } => expected.contains('`'),
            _ => false,
        };
        assert!(
            specific,
            "{}: unspecific error {:?}",
            entry.file, error.kind
        );
        // The place is the NBA construct itself, not somewhere after it.
        let at = &source[error.offset..];
        assert!(
            ["write", "read", "{", ":"]
                .iter()
                .any(|c| at.starts_with(c)),
            "{}: error at {:?}, not at an NBA construct ({message})",
            entry.file,
            &at[..at.len().min(20)]
        );
    }
}
