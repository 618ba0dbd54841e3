//! The `amb` binary end to end: `fmt` (canonical, `--check`, `--pretty`), `compile`
//! (CID, `--out`, `--explain`, `--canonical`), standard input, deep nesting, limits and
//! errors (exit codes, `file:line:column` with a caret, never a panic); JavaScript
//! files (`compile --emit roam`, `reduce`, `--lang js`, refusals pointing into the JS).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use amb_bytecode::{Block, Cid};

mod common;
use common::{failure, success};

fn amb(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_amb"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("amb runs");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input).expect("writing stdin");
    }
    child.wait_with_output().expect("amb finishes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("writing a test file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}

const CHAPTER_06: &str = "call[out a.in b|open_]";

const MONOID: &str = "string_concat[
  in_ call.open call.(
    func[
      left[in_ arg.open arg.in string.in concat]|
      right[in_ arg.open arg.in string.in concat]|
      string[concat[in_ left|in_ right]|in_ left|in_ right]|
      open_
    ]|
    open return.open_
  )
]";

#[test]
fn fmt_prints_the_canonical_form() {
    let files = Files::new();
    let file = files.write(
        "p.amb",
        "// a comment\ncall[ out a . in b | open_ ]  |\n  \"abc\"[ ( in_ ) ]\n",
    );
    let output = amb(&["fmt", s(&file)], None);
    // The comment before the first part is the program's header: it stays first.
    assert_eq!(
        success(&output),
        "// a comment\nabc[in_]|call[open_|out a.in b]\n"
    );
    assert_eq!(stderr(&output), "");

    let file = files.write("ch06.amb", CHAPTER_06);
    assert_eq!(
        success(&amb(&["fmt", s(&file)], None)),
        "call[open_|out a.in b]\n"
    );
    // The empty program prints as an empty line (its comments kept).
    let file = files.write("empty.amb", "// nothing\n");
    assert_eq!(success(&amb(&["fmt", s(&file)], None)), "// nothing\n");
    let file = files.write("empty.amb", "");
    assert_eq!(success(&amb(&["fmt", s(&file)], None)), "\n");
}

#[test]
fn fmt_check_accepts_only_the_formatted_forms() {
    let files = Files::new();
    for canonical in [
        "call[open_|out a.in b]\n",
        "call[open_|out a.in b]",
        "a[]|b[]\n",
        // The pretty form is formatted too.
        "a[]|\nb[]\n",
    ] {
        let file = files.write("c.amb", canonical);
        let output = amb(&["fmt", "--check", s(&file)], None);
        assert_eq!(success(&output), "", "{canonical:?}");
    }
    for other in [
        CHAPTER_06,
        "b[]|a[]\n",
        "a[] | b[]\n",
        "call[open_|out a.in b]\n\n",
        "\"a\"[]\n",
        "in a.(b[])\n",
    ] {
        let file = files.write("n.amb", other);
        let output = amb(&["fmt", "--check", s(&file)], None);
        let err = failure(&output);
        assert_eq!(stdout(&output), "", "{other:?}");
        assert!(err.contains("not formatted"), "{other:?}: {err}");
    }
}

#[test]
fn fmt_pretty_output_reparses_to_the_same_program() {
    let files = Files::new();
    let file = files.write("monoid.amb", MONOID);
    let pretty = success(&amb(&["fmt", "--pretty", s(&file)], None));
    assert!(pretty.lines().count() > 3, "{pretty}");
    assert!(pretty.lines().all(|line| line.len() <= 80), "{pretty}");
    let reparsed = amb_syntax::parse(&pretty).expect("pretty output parses");
    let mut original = amb_syntax::parse(MONOID).unwrap();
    original.canonicalize();
    assert!(reparsed.same_structure(&original), "{pretty}");
    // And the pretty form formats back to the canonical line.
    let pretty_file = files.write("pretty.amb", &pretty);
    assert_eq!(
        success(&amb(&["fmt", s(&pretty_file)], None)),
        success(&amb(&["fmt", s(&file)], None))
    );
}

#[test]
fn syntax_errors_name_the_place_with_a_caret() {
    let files = Files::new();
    let cases = [
        ("space.amb", "a[] b[]\n", 1, 5),
        ("unclosed.amb", "x[]|\n\n  a[b[]", 3, 8),
        ("open.amb", "a[open_ x]", 1, 9),
        ("nba.amb", "g[write_ (x).read_ (x)]", 1, 3),
    ];
    for (name, text, line, column) in cases {
        let file = files.write(name, text);
        for command in ["fmt", "compile"] {
            let output = amb(&[command, s(&file)], None);
            let err = failure(&output);
            assert_eq!(stdout(&output), "", "{command} {name}");
            let place = format!("{}:{line}:{column}", s(&file));
            assert!(
                err.contains(&place),
                "{command} {name}: no {place} in\n{err}"
            );
            assert!(err.starts_with("error: "), "{err}");
            let caret = err
                .lines()
                .find(|l| l.trim_end().ends_with('^'))
                .unwrap_or_else(|| panic!("{command} {name}: no caret in\n{err}"));
            let gutter = caret.find('|').expect("gutter") + 2;
            assert_eq!(caret.len() - 1 - gutter, column - 1, "{err}");
        }
    }
}

#[test]
fn compile_prints_the_program_cid() {
    let files = Files::new();
    let file = files.write("ch06.amb", CHAPTER_06);
    let output = amb(&["compile", s(&file)], None);
    let printed = success(&output);
    let line = printed.trim_end();
    assert!(line.starts_with("bafyr4i"), "{printed}");
    assert_eq!(printed.lines().count(), 1);
    let cid: Cid = line.parse().expect("a CID of ours");
    let ast = amb_syntax::parse(CHAPTER_06).unwrap();
    assert_eq!(cid, amb_bytecode::compile(&ast).unwrap().root);
    // Deterministic.
    assert_eq!(success(&amb(&["compile", s(&file)], None)), printed);
}

#[test]
fn compile_out_writes_every_block_named_by_its_cid() {
    let files = Files::new();
    let file = files.write("monoid.amb", MONOID);
    let out = files.path("blocks");
    let printed = success(&amb(&["compile", s(&file), "--out", s(&out)], None));
    let root: Cid = printed.trim_end().parse().expect("a CID");

    let expected = amb_bytecode::compile(&amb_syntax::parse(MONOID).unwrap()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("the output directory exists")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), expected.blocks.len(), "{names:?}");
    let mut cids = Vec::new();
    for name in &names {
        let cid: Cid = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert_eq!(
            Cid::of(&bytes),
            cid,
            "{name}: bytes do not hash to the name"
        );
        let block = Block::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(block.encode(), bytes);
        cids.push(cid);
    }
    assert!(cids.contains(&root), "the root block {root} is not written");
    let mut expected_cids: Vec<Cid> = expected.blocks.iter().map(|(cid, _)| *cid).collect();
    expected_cids.sort();
    cids.sort();
    assert_eq!(cids, expected_cids);
}

/// The instruction lines of the block that creates `name`, in order.
fn explained_block<'a>(listing: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = listing.lines();
    lines
        .find(|l| l.starts_with("block ") && l.split_whitespace().nth(2) == Some(name))
        .unwrap_or_else(|| panic!("no block {name} in\n{listing}"));
    lines.take_while(|l| !l.trim().is_empty()).collect()
}

/// The `(opcode, target)` tuple of an instruction line.
fn tuple(line: &str) -> &str {
    let open = line.find('(').expect("a tuple");
    let close = open + line[open..].find(')').expect("a closed tuple");
    &line[open..=close]
}

#[test]
fn compile_explain_lists_the_chapter_06_instructions() {
    let files = Files::new();
    let file = files.write("ch06.amb", CHAPTER_06);
    let listing = success(&amb(&["compile", "--explain", s(&file)], None));
    let call = explained_block(&listing, "call");
    assert_eq!(
        call.iter().map(|l| tuple(l)).collect::<Vec<_>>(),
        ["(0, 1)", "(4, \"a\")", "(2, \"b\")", "(7, 0)"],
        "{listing}"
    );
    // The edges: `in b` follows `out a`, `open_` is a branch from the create.
    assert!(!call[0].contains("after"), "{listing}");
    assert!(call[1].trim_end().ends_with("after #0"), "{listing}");
    assert!(call[2].trim_end().ends_with("after #1"), "{listing}");
    assert!(call[3].trim_end().ends_with("after #0"), "{listing}");
    // The root block creates the anonymous root and deploys `call`.
    let root = explained_block(&listing, "<root>");
    assert_eq!(root.len(), 2, "{listing}");
    assert_eq!(tuple(root[0]), "(0, null)");
    assert!(tuple(root[1]).starts_with("(1, bafyr4i"), "{listing}");
    assert!(listing.starts_with("program bafyr4i"), "{listing}");
}

#[test]
fn compile_canonical_gives_permutations_one_cid() {
    let files = Files::new();
    let a = files.write("a.amb", "b[in_ a.open_] | a[in b | c[]]");
    let b = files.write("b.amb", "a[c[] | in b] | b[in_ a.open_]");
    let cid = |file: &Path, canonical: bool| {
        let mut args = vec!["compile", s(file)];
        if canonical {
            args.push("--canonical");
        }
        success(&amb(&args, None))
    };
    assert_eq!(cid(&a, true), cid(&b, true));
    assert_ne!(cid(&a, false), cid(&b, false));
    assert_eq!(cid(&b, false), cid(&b, true), "b.amb is already canonical");
}

#[test]
fn dash_reads_standard_input() {
    let files = Files::new();
    let file = files.write("ch06.amb", CHAPTER_06);
    let from_stdin = success(&amb(&["fmt", "-"], Some(CHAPTER_06.as_bytes())));
    assert_eq!(from_stdin, "call[open_|out a.in b]\n");
    assert_eq!(
        success(&amb(&["compile", "-"], Some(CHAPTER_06.as_bytes()))),
        success(&amb(&["compile", s(&file)], None))
    );
    assert_eq!(
        success(&amb(
            &["fmt", "--check", "-"],
            Some(b"call[open_|out a.in b]\n")
        )),
        ""
    );
    // Errors from standard input name it as `-`.
    let err = failure(&amb(&["fmt", "-"], Some(b"a[")));
    assert!(err.contains("<stdin>:1:3"), "{err}");
}

#[test]
fn deep_nesting_is_formatted_and_compiled() {
    let depth = 100_000;
    let text = format!("{}{}\n", "a[".repeat(depth), "]".repeat(depth));
    let files = Files::new();
    let file = files.write("deep.amb", &text);

    assert_eq!(success(&amb(&["fmt", s(&file)], None)), text);
    assert_eq!(success(&amb(&["fmt", "--check", s(&file)], None)), "");
    let pretty = success(&amb(&["fmt", "--pretty", s(&file)], None));
    assert!(pretty.lines().count() > depth, "one line per level, about");

    let printed = success(&amb(&["compile", s(&file)], None));
    let cid: Cid = printed.trim_end().parse().expect("a CID");
    let ast = amb_syntax::parse(&text).unwrap();
    assert!(amb_syntax::parse(&pretty).unwrap().same_structure(&ast));
    assert_eq!(cid, amb_bytecode::compile(&ast).unwrap().root);

    let chain = format!("{}b[]\n", "in a.".repeat(depth));
    let file = files.write("chain.amb", &chain);
    assert_eq!(success(&amb(&["fmt", s(&file)], None)), chain);
    assert!(success(&amb(&["compile", s(&file)], None)).starts_with("bafyr4i"));
}

#[test]
fn max_depth_is_enforced_with_a_clear_error() {
    let files = Files::new();
    let nest = |depth: usize| format!("{}{}", "a[".repeat(depth), "]".repeat(depth));
    let within = files.write("ten.amb", nest(10));
    let beyond = files.write("eleven.amb", nest(11));
    for command in ["fmt", "compile"] {
        success(&amb(&[command, "--max-depth", "10", s(&within)], None));
        let output = amb(&[command, "--max-depth", "10", s(&beyond)], None);
        let err = failure(&output);
        assert_eq!(stdout(&output), "");
        assert!(err.contains("max_depth"), "{command}: {err}");
        assert!(err.contains("10"), "{command}: {err}");
        assert!(
            err.contains(&format!("{}:1:22", s(&beyond))),
            "{command}: {err}"
        );
    }
}

#[test]
fn a_missing_file_is_reported() {
    let files = Files::new();
    let missing = files.path("no-such-file.amb");
    for command in ["fmt", "compile"] {
        let output = amb(&[command, s(&missing)], None);
        let err = failure(&output);
        assert_eq!(stdout(&output), "");
        assert!(err.contains("no-such-file.amb"), "{command}: {err}");
        assert!(err.starts_with("error: "), "{command}: {err}");
    }
}

#[test]
fn bad_usage_exits_2() {
    let output = amb(&["fmt", "--check", "--write", "x.amb"], None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = amb(&["frobnicate"], None);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn javascript_files_compile_reduce_and_point_errors_into_the_source() {
    let files = Files::new();
    let app = files.write("app.js", "const add = (a, b) => a + b;\nadd(2, 3)\n");
    // The generated program, pretty, is ROAM that `fmt` reads back.
    let roam = success(&amb(&["compile", "--emit", "roam", s(&app)], None));
    assert!(roam.contains("add[") && roam.contains("call["), "{roam}");
    let generated = files.write("app.amb", &roam);
    success(&amb(&["fmt", s(&generated)], None));
    // Its CID is the generated program's.
    let js_cid = success(&amb(&["compile", s(&app)], None));
    assert_eq!(js_cid, success(&amb(&["compile", s(&generated)], None)));
    let reduced: serde_json::Value =
        serde_json::from_str(&success(&amb(&["reduce", "--json", s(&app)], None))).unwrap();
    assert_eq!(reduced["value"], 5, "{reduced}");
    // `--lang js` for another extension, and standard input.
    let other = files.write("app.txt", "[\"a\" + \"b\"]");
    let out = success(&amb(&["reduce", "--json", "--lang", "js", s(&other)], None));
    assert!(out.contains(r#""value":["ab"]"#), "{out}");
    let out = success(&amb(
        &["reduce", "--json", "--lang", "js", "-"],
        Some(b"(x => x * 2)(21)"),
    ));
    assert!(out.contains(r#""value":42"#), "{out}");
    // The source map: generated ambients back to JS places.
    let map: serde_json::Value =
        serde_json::from_str(&success(&amb(&["compile", "--emit", "map", s(&app)], None))).unwrap();
    let roam = map["roam"].as_str().unwrap();
    let function = map["map"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["what"] == "function")
        .expect("the function is mapped");
    let offset = function["offset"].as_u64().unwrap() as usize;
    assert!(roam[offset..].starts_with("add["), "{map}");
    assert_eq!(
        (&function["line"], &function["column"]),
        (&1.into(), &13.into())
    );
    // A refusal names the JS place, exit status 1.
    let bad = files.write(
        "bad.js",
        "const f = x => x;\nconst g = y => { if (y) {} return y; };\ng(1)\n",
    );
    let err = failure(&amb(&["reduce", s(&bad)], None));
    assert!(err.contains("bad.js:2:18"), "{err}");
    assert!(err.contains("if statement"), "{err}");
}

/// A program with comments everywhere a comment can be: a header, before parts (in a
/// body and in a prefix's group), at the end of a body and of the program.
const COMMENTED: &str = "// header line one
// header line two
zeta[
  // before in_
  in_ x.open_ // trailing after open_
]|
alpha[
  in b.(
    // inside a group
    c[]|d[]
  )|
  inner[
    // only a comment in this body
  ]
]
// at the very end
";

#[test]
fn fmt_keeps_every_comment_in_both_forms() {
    let files = Files::new();
    let file = files.write("c.amb", COMMENTED);
    let comments = |text: &str| -> Vec<String> {
        let mut found: Vec<String> = text
            .lines()
            .filter_map(|l| l.find("//").map(|i| l[i..].trim_end().to_string()))
            .collect();
        found.sort();
        found
    };
    let original = amb_syntax::parse(COMMENTED).unwrap();
    for form in [vec!["fmt"], vec!["fmt", "--pretty"]] {
        let mut args = form.clone();
        args.push(s(&file));
        let out = success(&amb(&args, None));
        assert_eq!(comments(&out), comments(COMMENTED), "{form:?}:\n{out}");
        // The header stays first; parts are sorted, each with its comments.
        assert!(
            out.starts_with("// header line one\n// header line two\n"),
            "{out}"
        );
        assert!(
            out.find("alpha").unwrap() < out.find("zeta").unwrap(),
            "{out}"
        );
        assert!(out.trim_end().ends_with("// at the very end"), "{out}");
        // It parses to the same program, with the same comments, and formats to
        // itself: `--check` accepts it.
        let again = amb_syntax::parse(&out).expect("the output parses");
        let mut canonical = original.clone();
        canonical.canonicalize();
        assert!(again.same_structure(&canonical), "{out}");
        assert_eq!(again.comments().len(), original.comments().len());
        let formatted = files.write("f.amb", &out);
        let mut again_args = form.clone();
        again_args.push(s(&formatted));
        assert_eq!(success(&amb(&again_args, None)), out, "{form:?} is stable");
        assert_eq!(success(&amb(&["fmt", "--check", s(&formatted)], None)), "");
    }
    let pretty = success(&amb(&["fmt", "--pretty", s(&file)], None));
    assert!(
        pretty.contains("\n  // before in_\n  in_ x.open_"),
        "{pretty}"
    );
    assert!(
        pretty.contains("    // only a comment in this body\n  ]"),
        "{pretty}"
    );
}

#[test]
fn fmt_write_formats_files_in_place_and_the_examples_are_formatted() {
    let files = Files::new();
    let one = files.write("one.amb", "b[] | a[] // a\n");
    let two = files.write("two.amb", "a[]|b[]\n");
    let output = amb(&["fmt", "--write", s(&one), s(&two)], None);
    success(&output);
    assert_eq!(stderr(&output), format!("formatted {}\n", one.display()));
    assert_eq!(std::fs::read_to_string(&one).unwrap(), "a[]|b[]\n// a\n");
    assert_eq!(std::fs::read_to_string(&two).unwrap(), "a[]|b[]\n");
    success(&amb(&["fmt", "--write", "--pretty", s(&one)], None));
    success(&amb(&["fmt", "--check", s(&one), s(&two)], None));
    let json: serde_json::Value =
        serde_json::from_str(&success(&amb(&["fmt", "--check", "--json", s(&one)], None))).unwrap();
    assert_eq!(json["files"][0]["formatted"], true);

    // Every example of the repository is formatted.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut roam: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "amb"))
        .collect();
    roam.sort();
    assert!(roam.len() >= 4, "{roam:?}");
    let mut args = vec!["fmt", "--check"];
    args.extend(roam.iter().map(|p| s(p)));
    let output = amb(&args, None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn version_names_the_commit_and_completions_are_generated() {
    let version = success(&amb(&["-V"], None));
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let head = String::from_utf8(head.stdout).unwrap();
    assert!(
        version.starts_with("amb 0.") && version.contains(&format!("({})", head.trim())),
        "{version} (HEAD {head})"
    );
    for (shell, mark) in [
        ("bash", "_amb()"),
        ("zsh", "#compdef amb"),
        ("fish", "complete -c amb"),
    ] {
        let script = success(&amb(&["completions", shell], None));
        assert!(script.contains(mark), "{shell}: {script}");
        for command in ["run", "verify", "export", "import", "ls", "completions"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let err = amb(&["completions", "tcsh"], None);
    assert_eq!(err.status.code(), Some(2));
    // The top-level help names the main job first.
    let help = success(&amb(&["--help"], None));
    assert!(!help.contains("(later)"), "{help}");
    assert!(
        help.contains("run ") && help.contains("--home") && help.contains("--node"),
        "{help}"
    );
}

#[test]
fn completions_end_quietly_on_a_closed_pipe() {
    // The reader is gone before the script is written: exit 0, nothing on stderr.
    for shell in ["bash", "zsh", "fish"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_amb"))
            .args(["completions", shell])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("amb runs");
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("amb finishes");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output), "", "{shell}");
    }
}

/// The `{"error": …}` object a failed `--json` command printed on stdout.
fn json_error(output: &Output) -> serde_json::Value {
    let out = stdout(output);
    let json: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    json["error"].clone()
}

#[test]
fn bad_usage_with_json_is_a_json_error_with_exit_2() {
    let files = Files::new();
    let file = files.write("p.amb", "a[in b] | b[]");
    let file = file.to_str().unwrap();
    for args in [
        vec!["--json", "reduce", "--max-memory", "1000", file],
        vec!["--json", "verify"],
        vec!["verify", "--json", "--no-such-flag", "x"],
        vec!["--json", "completions", "tcsh"],
    ] {
        let output = amb(&args, None);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let error = json_error(&output);
        assert_eq!(error["kind"], "invalid", "{args:?}: {error}");
        let message = error["message"].as_str().expect("a message");
        assert!(
            !message.is_empty() && !message.starts_with("error:"),
            "{error}"
        );
        // The text for people is still on stderr, and stdout holds one line.
        assert!(stderr(&output).contains("error:"), "{}", stderr(&output));
        assert_eq!(stdout(&output).lines().count(), 1, "{args:?}");
    }
    let output = amb(&["--json", "reduce", "--max-memory", "1000", file], None);
    assert!(
        json_error(&output)["message"]
            .as_str()
            .unwrap()
            .contains("1000 bytes cannot be met"),
        "{}",
        stdout(&output)
    );
    // Without --json, stdout stays empty; --help and -V still print and exit 0.
    let output = amb(&["verify"], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    assert!(success(&amb(&["--json", "--help"], None)).contains("Usage"));
    assert!(success(&amb(&["--json", "-V"], None)).starts_with("amb "));
}

#[test]
fn node_is_refused_where_it_would_do_nothing() {
    let files = Files::new();
    let file = files.write("p.amb", "a[in b] | b[]");
    let file = file.to_str().unwrap();
    let home = files.dir.path().join("home");
    let home = home.to_str().unwrap();
    // An address nothing listens on: had it been used, this would fail otherwise.
    let node = "http://127.0.0.1:9";
    for args in [
        vec!["run", file, "--node", node, "--home", home],
        vec!["--node", node, "compile", file],
        vec!["reduce", file, "--node", node],
        vec!["explore", file, "--node", node],
        vec!["fmt", file, "--node", node],
        vec!["import", "x.car", "--node", node, "--home", home],
        vec!["init", "--node", node, "--home", home],
    ] {
        let output = amb(&args, None);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(&format!(
                "`--node` does nothing for `amb {}`",
                args.iter()
                    .find(|a| !a.starts_with('-') && **a != node)
                    .unwrap()
            )),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "{args:?}");
    }
    assert!(!Path::new(home).exists(), "nothing was created");
    let output = amb(&["--json", "--node", node, "run", file], None);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(json_error(&output)["kind"], "invalid");
}

#[test]
fn fmt_says_it_formats_roam_only() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/add.js");
    let output = amb(&["fmt", "--check", js.to_str().unwrap()], None);
    let err = failure(&output);
    assert!(
        err.contains("is JavaScript: `amb fmt` formats ROAM programs only"),
        "{err}"
    );
    assert!(!err.contains("expected `[`"), "{err}");
    let output = amb(&["fmt", "--json", js.to_str().unwrap()], None);
    failure(&output);
    assert_eq!(json_error(&output)["kind"], "invalid");
}
