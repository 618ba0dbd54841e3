//! Why a normal form is stuck: for each capability left, what it waits for
//! (`spec/network.md` §7, "Reading programs"). Read from the term alone, by the
//! reduction rules of `spec/semantics.md`:
//!
//! - `in m` waits for a sibling `m`, then for that `m` to offer `in_` to it;
//! - `out m` waits for its parent to be `m`, then for `m` to offer `out_` to it;
//! - `open n` waits for an ambient `n` beside it, then for `n` to offer `open_`;
//! - a co-capability waits for someone to use it;
//! - a capability under a prefix is not enabled yet: it waits for that prefix.

use amb_syntax::{Ast, CapKind, NodeId, NodeKind};
use serde_json::{Value, json};

/// The most capabilities listed (a larger term says how many more there are).
const MAX_LISTED: usize = 1000;

/// `{"waiting": [{"path", "ambient", "cap", "target", "enabled", "reason"}],
/// "more"}`, or `null` when the term has no capability (it is not stuck).
pub(crate) fn explain(ast: &Ast) -> Value {
    let mut waiting = Vec::new();
    let mut more = 0usize;
    // (node, its parent ambient or None for the top level, the grandparent
    // ambient, path, the prefix it waits behind)
    let mut stack: Vec<Frame> = ast
        .children(None)
        .enumerate()
        .map(|(i, id)| Frame {
            id,
            owner: None,
            path: i.to_string(),
            behind: None,
        })
        .collect();
    stack.reverse();
    let mut parents: Vec<Option<NodeId>> = vec![None; ast.len()];
    for i in 0..ast.len() {
        for child in ast.children(Some(ast.node_id(i))) {
            parents[child.index()] = Some(ast.node_id(i));
        }
    }
    while let Some(frame) = stack.pop() {
        let node = ast.node(frame.id);
        let (owner, behind) = match node.kind() {
            NodeKind::Ambient => (Some(frame.id), None),
            NodeKind::Cap(kind) => {
                if waiting.len() < MAX_LISTED {
                    let reason = match &frame.behind {
                        Some(prefix) => format!("not enabled yet: waits for `{prefix}` before it"),
                        None => reason(ast, &parents, frame.owner, frame.id, kind),
                    };
                    waiting.push(json!({
                        "path": frame.path,
                        "ambient": frame.owner.and_then(|a| ast.node(a).name()).map(|s| ast.name_text(s)),
                        "cap": kind.keyword(),
                        "target": node.name().map(|s| ast.name_text(s)),
                        "enabled": frame.behind.is_none(),
                        "reason": reason,
                    }));
                } else {
                    more += 1;
                }
                let behind = frame
                    .behind
                    .clone()
                    .unwrap_or_else(|| cap_text(ast, frame.id, kind));
                (frame.owner, Some(behind))
            }
        };
        let children: Vec<NodeId> = ast.children(Some(frame.id)).collect();
        for (i, child) in children.into_iter().enumerate().rev() {
            stack.push(Frame {
                id: child,
                owner,
                path: format!("{}.{i}", frame.path),
                behind: behind.clone(),
            });
        }
    }
    if waiting.is_empty() {
        return Value::Null;
    }
    json!({ "waiting": waiting, "more": more })
}

struct Frame {
    id: NodeId,
    owner: Option<NodeId>,
    path: String,
    behind: Option<String>,
}

fn cap_text(ast: &Ast, id: NodeId, kind: CapKind) -> String {
    match ast.node(id).name() {
        Some(name) => format!("{} {}", kind.keyword(), ast.name_text(name)),
        None => kind.keyword().to_string(),
    }
}

fn name_of(ast: &Ast, id: Option<NodeId>) -> Option<&str> {
    id.and_then(|a| ast.node(a).name())
        .map(|s| ast.name_text(s))
}

/// The ambients among the children of `parent` (the top level for `None`).
fn ambients(ast: &Ast, parent: Option<NodeId>) -> impl Iterator<Item = NodeId> + '_ {
    ast.children(parent)
        .filter(move |c| ast.node(*c).kind() == NodeKind::Ambient)
}

/// Whether ambient `holder` offers the co-capability `kind` to `to` (an enabled
/// one: a child of the ambient itself), named or wildcard.
fn offers(ast: &Ast, holder: NodeId, kind: CapKind, to: Option<&str>) -> bool {
    ast.children(Some(holder)).any(|c| {
        let node = ast.node(c);
        node.kind() == NodeKind::Cap(kind)
            && match node.name() {
                None => true,
                Some(name) => Some(ast.name_text(name)) == to,
            }
    })
}

/// Whether some ambient among `within` holds an enabled `kind` naming `target`.
fn used_by(ast: &Ast, within: &[NodeId], kind: CapKind, target: Option<&str>) -> bool {
    within.iter().any(|a| {
        ast.children(Some(*a)).any(|c| {
            let node = ast.node(c);
            node.kind() == NodeKind::Cap(kind)
                && (target.is_none() || node.name().map(|s| ast.name_text(s)) == target)
        })
    })
}

/// What an enabled capability `cap` of `owner` (None: the top level) waits for.
fn reason(
    ast: &Ast,
    parents: &[Option<NodeId>],
    owner: Option<NodeId>,
    cap: NodeId,
    kind: CapKind,
) -> String {
    let target = ast.node(cap).name().map(|s| ast.name_text(s));
    let me = name_of(ast, owner);
    let parent = owner.and_then(|o| parents[o.index()]);
    if kind == CapKind::Open {
        // `open n` opens an ambient `n` beside it, at the top level too.
        let t = target.unwrap_or("?");
        let named: Vec<NodeId> = ambients(ast, owner)
            .filter(|s| name_of(ast, Some(*s)) == Some(t))
            .collect();
        return if named.is_empty() {
            format!("no ambient `{t}` beside it to open")
        } else if !named.iter().any(|s| offers(ast, *s, CapKind::OpenCo, None)) {
            format!("`{t}` offers no `open_`")
        } else {
            format!("`{t}` offers `open_`: ready")
        };
    }
    let Some(owner) = owner else {
        return format!(
            "at the top level, outside any ambient: `{}` can never be used",
            cap_text(ast, cap, kind)
        );
    };
    let siblings: Vec<NodeId> = ambients(ast, parent).filter(|s| *s != owner).collect();
    let me = me.unwrap_or("?");
    match kind {
        CapKind::In => {
            let t = target.unwrap_or("?");
            let named: Vec<NodeId> = siblings
                .iter()
                .copied()
                .filter(|s| name_of(ast, Some(*s)) == Some(t))
                .collect();
            if named.is_empty() {
                format!("no sibling `{t}` to enter")
            } else if !named
                .iter()
                .any(|s| offers(ast, *s, CapKind::InCo, Some(me)))
            {
                format!("sibling `{t}` offers no `in_ {me}`")
            } else {
                format!("`{t}` offers `in_ {me}`: ready")
            }
        }
        CapKind::Out => {
            let t = target.unwrap_or("?");
            match parent {
                Some(p) if name_of(ast, Some(p)) == Some(t) => {
                    if offers(ast, p, CapKind::OutCo, Some(me)) {
                        format!("`{t}` offers `out_ {me}`: ready")
                    } else {
                        format!("parent `{t}` offers no `out_ {me}`")
                    }
                }
                Some(p) => format!(
                    "the parent is `{}`, not `{t}`",
                    name_of(ast, Some(p)).unwrap_or("?")
                ),
                None => format!("at the top level: there is no parent `{t}` to leave"),
            }
        }
        CapKind::Open => unreachable!("answered above"),
        CapKind::InCo => {
            let who = target.map_or("any ambient".to_string(), |t| format!("`{t}`"));
            if used_by(ast, &siblings, CapKind::In, Some(me)) {
                format!("{who} may enter: ready")
            } else {
                format!("a co-capability no one uses: no sibling {who} does `in {me}`")
            }
        }
        CapKind::OutCo => {
            let children: Vec<NodeId> = ambients(ast, Some(owner)).collect();
            let who = target.map_or("any child".to_string(), |t| format!("child `{t}`"));
            if used_by(ast, &children, CapKind::Out, Some(me)) {
                format!("{who} may leave: ready")
            } else {
                format!("a co-capability no one uses: no {who} does `out {me}`")
            }
        }
        CapKind::OpenCo => {
            if parent.is_some_and(|p| {
                ast.children(Some(p)).any(|c| {
                    let node = ast.node(c);
                    node.kind() == NodeKind::Cap(CapKind::Open)
                        && node.name().map(|s| ast.name_text(s)) == Some(me)
                })
            }) {
                "its parent may open it: ready".to_string()
            } else {
                format!("a co-capability no one uses: nothing beside it does `open {me}`")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(source: &str) -> Vec<(String, String)> {
        let ast = amb_syntax::parse(source).unwrap();
        let explained = explain(&ast);
        explained["waiting"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let cap = match w["target"].as_str() {
                    Some(t) => format!("{} {t}", w["cap"].as_str().unwrap()),
                    None => w["cap"].as_str().unwrap().to_string(),
                };
                (cap, w["reason"].as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn each_kind_of_wait_is_named() {
        assert_eq!(explain(&amb_syntax::parse("a[b[]]").unwrap()), Value::Null);
        let r = reasons("a[in b] | c[in_ x]");
        assert_eq!(r[0], ("in b".into(), "no sibling `b` to enter".into()));
        assert!(r[1].1.contains("no sibling `x` does `in c`"), "{r:?}");
        let r = reasons("a[in b] | b[]");
        assert_eq!(r[0].1, "sibling `b` offers no `in_ a`");
        let r = reasons("p[a[out q]]");
        assert_eq!(r[0].1, "the parent is `p`, not `q`");
        let r = reasons("q[a[out q]]");
        assert_eq!(r[0].1, "parent `q` offers no `out_ a`");
        let r = reasons("a[open n | n[]]");
        assert_eq!(r[0].1, "`n` offers no `open_`");
        let r = reasons("a[open n.in m]");
        assert_eq!(r[0].1, "no ambient `n` beside it to open");
        assert_eq!(r[1].0, "in m");
        assert_eq!(r[1].1, "not enabled yet: waits for `open n` before it");
        let r = reasons("open f | f[in_ m.open_]");
        assert_eq!(r[0].1, "`f` offers no `open_`");
        let r = reasons("a[open_]");
        assert!(r[0].1.contains("nothing beside it does `open a`"), "{r:?}");
    }
}
