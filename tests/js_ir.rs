//! Our AST against the JS compiler's: the pegjs IR fixtures of ambientsprotocol/ambc
//! (`ambientsprotocol-ambc/test/fixtures/ir/NNN.json`, read in place from the shared
//! corpus) and their twin sources (`NNN.ambient` or `NNN.ambients`).
//!
//! The pegjs trees wrap parts inconsistently (`Parallel`, `Serial`, sometimes a
//! `Group` around a continuation's parallel parts), so both sides are normalised to
//! one tree: an ambient is a name and its parts, a capability is a keyword, an optional
//! target and its continuation's parts; wrappers are flattened into the list of parts
//! they hold. Parts are sorted at every level, so the comparison is up to the order of
//! parallel parts and exact in everything else.

use std::path::{Path, PathBuf};

use amb_syntax::{Ast, NodeId, NodeKind};
use serde_json::Value;

/// A part of a normalised process.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    /// `name[parts]`.
    Ambient(String, Vec<Part>),
    /// `keyword target.(parts)`; no target for `open_` and the wildcards.
    Cap(&'static str, Option<String>, Vec<Part>),
}

fn sorted(mut parts: Vec<Part>) -> Vec<Part> {
    parts.sort();
    parts
}

fn ir_dir() -> PathBuf {
    amb_tests::corpus_dir().join("ambientsprotocol-ambc/test/fixtures/ir")
}

/// The parts of a pegjs IR node (a list: wrappers stand for several parts).
fn json_parts(value: &Value, place: &str) -> Vec<Part> {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("{place}: IR node is not an object: {value}"));
    for key in object.keys() {
        assert!(
            ["type", "id", "children"].contains(&key.as_str()),
            "{place}: unknown IR key {key:?} in {value}"
        );
    }
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{place}: IR node without a type: {value}"));
    let id = object.get("id").map(|id| {
        id.as_str()
            .unwrap_or_else(|| panic!("{place}: non-text id in {value}"))
            .to_string()
    });
    let children: Vec<Part> = match object.get("children") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .flat_map(|item| json_parts(item, place))
            .collect(),
        Some(other) => panic!("{place}: children is not an array: {other}"),
    };
    let children = sorted(children);
    let cap = |keyword: &'static str| {
        let target = match (keyword, id.as_deref()) {
            ("open_", Some("*")) => None,
            ("open_", other) => panic!("{place}: Open_ with id {other:?}, expected \"*\""),
            ("in_" | "out_", None | Some("*")) => None,
            (_, None) => panic!("{place}: {keyword} without a target: {value}"),
            (_, Some(name)) => Some(name.to_string()),
        };
        vec![Part::Cap(keyword, target, children.clone())]
    };
    match kind {
        "Parallel" | "Serial" | "Group" => {
            assert!(id.is_none(), "{place}: {kind} with an id: {value}");
            children
        }
        "Ambient" => vec![Part::Ambient(
            id.unwrap_or_else(|| panic!("{place}: ambient without a name: {value}")),
            children,
        )],
        "In" => cap("in"),
        "In_" => cap("in_"),
        "Out" => cap("out"),
        "Out_" => cap("out_"),
        "Open" => cap("open"),
        "Open_" => cap("open_"),
        other => panic!("{place}: unknown IR node type {other:?}"),
    }
}

/// The parts of our AST under `parent` (the top level for `None`).
fn ast_parts(ast: &Ast, parent: Option<NodeId>) -> Vec<Part> {
    sorted(
        ast.children(parent)
            .map(|id| {
                let node = ast.node(id);
                let name = node.name().map(|s| ast.name_text(s).to_string());
                let children = ast_parts(ast, Some(id));
                match node.kind() {
                    NodeKind::Ambient => Part::Ambient(name.expect("ambients are named"), children),
                    NodeKind::Cap(cap) => Part::Cap(cap.keyword(), name, children),
                }
            })
            .collect(),
    )
}

/// The IR fixtures, each with its twin source, in file-name order.
fn fixtures() -> Vec<(PathBuf, PathBuf)> {
    let dir = ir_dir();
    let listing = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the JS IR fixtures {} are missing ({e}); the shared corpus must be at ../shared/corpus",
            dir.display()
        )
    });
    let mut jsons: Vec<PathBuf> = listing
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    jsons.sort();
    jsons
        .into_iter()
        .map(|json| {
            let twins: Vec<PathBuf> = ["ambient", "ambients"]
                .iter()
                .map(|ext| json.with_extension(ext))
                .filter(|p| p.is_file())
                .collect();
            assert_eq!(
                twins.len(),
                1,
                "{}: expected exactly one twin source, found {twins:?}",
                json.display()
            );
            (json, twins[0].clone())
        })
        .collect()
}

fn load_json(path: &Path) -> Vec<Part> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()));
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    sorted(json_parts(&value, &path.display().to_string()))
}

fn load_source(path: &Path) -> Vec<Part> {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{} unreadable: {e}", path.display()));
    let ast = amb_syntax::parse(&text)
        .unwrap_or_else(|e| panic!("{}", e.render(&text, &path.display().to_string())));
    ast_parts(&ast, None)
}

#[test]
fn every_ir_fixture_matches_our_ast() {
    let fixtures = fixtures();
    assert_eq!(fixtures.len(), 14, "IR fixtures with twins");
    let mut failures = Vec::new();
    for (json, source) in &fixtures {
        let theirs = load_json(json);
        let ours = load_source(source);
        assert!(!theirs.is_empty(), "{}: empty IR", json.display());
        if theirs != ours {
            failures.push(format!(
                "{}:\n  pegjs: {theirs:?}\n  ours:  {ours:?}",
                source.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} IR mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The comparison can fail: another fixture's text, or a one-node change to the
/// IR, gives a different tree.
#[test]
fn the_comparison_detects_mismatches() {
    let dir = ir_dir();
    let ir_002 = load_json(&dir.join("002.json"));
    let text_002 = load_source(&dir.join("002.ambient"));
    let text_003 = load_source(&dir.join("003.ambient"));
    assert_eq!(ir_002, text_002);
    assert_ne!(ir_002, text_003, "002's IR must not match 003's text");

    // Every fixture differs from every other one.
    let all: Vec<Vec<Part>> = fixtures().iter().map(|(j, _)| load_json(j)).collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert_ne!(a, b);
        }
    }

    // Changing one node's kind, name or continuation is noticed.
    let ir_013: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("013.json")).unwrap()).unwrap();
    let source = load_source(&dir.join("013.ambient"));
    assert_eq!(sorted(json_parts(&ir_013, "013.json")), source);
    type Mutation = fn(&mut serde_json::Map<String, Value>);
    let mutations: [(&str, Option<&str>, Mutation); 4] = [
        ("Out_", Some("call"), |node| {
            node.insert("type".into(), "Out".into());
        }),
        ("Ambient", Some("return"), |node| {
            node.insert("id".into(), "retur".into());
        }),
        ("Open", Some("return"), |node| {
            node.insert("id".into(), "call".into());
        }),
        ("Open_", Some("*"), |node| {
            node.remove("children");
        }),
    ];
    for (kind, id, mutation) in mutations {
        let mut mutated = ir_013.clone();
        assert!(
            mutate_first(&mut mutated, kind, id, mutation),
            "013.json has no {kind} {id:?} node"
        );
        let parts = sorted(json_parts(&mutated, "mutated 013.json"));
        assert_ne!(parts, source, "mutating {kind} {id:?} went unnoticed");
    }

    // The order of parallel parts does not matter, their nesting does.
    let swapped = load_source_text("c[] | a[b[]]");
    assert_eq!(swapped, text_002);
    assert_ne!(load_source_text("a[] | b[] | c[]"), text_002);
    assert_ne!(load_source_text("a[b[] | c[]]"), text_002);
    // A continuation is not a parallel part: `in a.b[]` is not `in a | b[]`.
    assert_ne!(load_source_text("in a.b[]"), load_source_text("in a | b[]"));
}

fn load_source_text(text: &str) -> Vec<Part> {
    ast_parts(&amb_syntax::parse(text).expect(text), None)
}

/// Applies `mutation` to the first node (pre-order) of type `kind` and id `id` that it
/// changes. Returns whether there was one.
fn mutate_first(
    value: &mut Value,
    kind: &str,
    id: Option<&str>,
    mutation: fn(&mut serde_json::Map<String, Value>),
) -> bool {
    let Some(object) = value.as_object_mut() else {
        return false;
    };
    let matches = object.get("type").and_then(Value::as_str) == Some(kind)
        && object.get("id").and_then(Value::as_str) == id;
    if matches {
        let before = object.clone();
        mutation(object);
        if *object != before {
            return true;
        }
    }
    match object.get_mut("children") {
        Some(Value::Array(items)) => items
            .iter_mut()
            .any(|item| mutate_first(item, kind, id, mutation)),
        _ => false,
    }
}
