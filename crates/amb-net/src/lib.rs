//! The Ambients peer over libp2p (`spec/network.md`): a node that gossips signed
//! events on one topic per program, checks every event it receives before it
//! stores or forwards it, syncs programs it lacks from peers that hold them, and
//! deploys programs to the network.

pub mod batch;
pub mod behaviour;
mod changes;
pub mod codec;
mod command;
pub mod config;
pub mod delegation;
pub mod deploy;
mod driver;
pub mod error;
pub mod event;
pub mod execution;
pub mod faults;
mod finished;
mod grant;
pub mod handle;
pub mod identity;
pub mod ingest;
mod intake;
pub mod limits;
pub mod node;
mod recent;
mod restart;
mod serve;
mod slice;
mod source;
pub mod status;
pub mod sync;
pub mod value;
pub mod wire;

pub use config::{NodeConfig, NodeTable};
pub use deploy::{DeployLimits, Deployed, deploy};
pub use faults::FaultConfig;
pub use ingest::{Ingest, IngestLimits, Outcome, Refusal, Rule};
pub use node::{NetError, NodeEvent, NodeHandle, NodeInfo, ProgramStatus, Ready, start};
pub use sync::{Fetched, fetch};
pub use value::{ProgramValue, value};

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    /// Each module of this crate and the modules it names as `crate::<module>`
    /// (outside its tests).
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut modules = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.extension().is_some_and(|e| e == "rs") && name != "lib" {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap().to_string();
                modules.insert(name, code);
            }
        }
        let names: BTreeSet<String> = modules.keys().cloned().collect();
        modules
            .iter()
            .map(|(name, code)| {
                // `crate::a::f`, and each item of `use crate::{a::X, b::{Y, Z}}`.
                let mut found = BTreeSet::new();
                for (i, _) in code.match_indices("crate::") {
                    let rest = &code[i + "crate::".len()..];
                    let mut firsts = Vec::new();
                    if let Some(braced) = rest.strip_prefix('{') {
                        // The top-level items of the braces.
                        let (mut depth, mut start) = (0, 0);
                        for (j, c) in braced.char_indices() {
                            match c {
                                '{' => depth += 1,
                                '}' if depth == 0 => {
                                    firsts.push(&braced[start..j]);
                                    break;
                                }
                                '}' => depth -= 1,
                                ',' if depth == 0 => {
                                    firsts.push(&braced[start..j]);
                                    start = j + 1;
                                }
                                _ => {}
                            }
                        }
                    } else {
                        firsts.push(rest);
                    }
                    for item in firsts {
                        let first: String = item
                            .trim_start()
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if names.contains(&first) && &first != name {
                            found.insert(first);
                        }
                    }
                }
                (name.clone(), found)
            })
            .collect()
    }

    #[test]
    fn the_modules_import_each_other_without_a_cycle() {
        let graph = imports();
        assert!(
            graph["handle"].contains("command"),
            "the parser sees imports: {graph:?}"
        );
        // Depth-first search for a back edge.
        fn visit<'a>(
            graph: &'a BTreeMap<String, BTreeSet<String>>,
            at: &'a str,
            path: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) {
            if done.contains(at) {
                return;
            }
            assert!(!path.contains(&at), "an import cycle: {path:?} -> {at}");
            path.push(at);
            for next in &graph[at] {
                visit(graph, next, path, done);
            }
            path.pop();
            done.insert(at);
        }
        let mut done = BTreeSet::new();
        for module in graph.keys() {
            visit(&graph, module, &mut Vec::new(), &mut done);
        }
        // The tasks and their wiring are imported by `node` only.
        for (module, imported) in &graph {
            for task in ["node", "driver", "intake"] {
                assert!(
                    module == "node" || !imported.contains(task),
                    "`{module}` imports `{task}`: services reach the tasks through `handle`"
                );
            }
        }
    }
}
