//! Helpers shared by the VM's integration tests (each test binary uses a part).
#![allow(dead_code)]

use amb_bytecode::{BlockLimits, Cid};
use amb_engine::Limits;
use amb_log::{Manifest, SigningKey, Store};
use amb_syntax::Ast;
use amb_vm::{
    plan::{Plan, plan},
    record::{Recorded, record},
};

/// A file of the shared corpus (`../shared/corpus` beside the repository); panics,
/// never skips, when the corpus is missing.
pub(crate) fn corpus_file(path: &str) -> String {
    let full = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| {
        panic!(
            "the shared corpus must be at ../shared/corpus: {}: {e}",
            full.display()
        )
    })
}

/// A program recorded into a store.
pub(crate) struct Recording {
    pub(crate) ast: Ast,
    pub(crate) plan: Plan,
    pub(crate) manifest: Manifest,
    pub(crate) recorded: Recorded,
}

/// Why a program was not recorded, and where it stopped.
#[derive(Debug)]
pub(crate) enum NotRecorded {
    Parse(String),
    Compile(String),
    Plan(String),
    Record(String),
}

/// Parses, compiles, plans and records `source` into `store`, signed by `key`, its
/// program manifest made with `nonce`.
pub(crate) fn record_source(
    source: &str,
    store: &Store,
    key: &SigningKey,
    nonce: [u8; 16],
) -> Result<Recording, NotRecorded> {
    let ast = amb_syntax::parse(source).map_err(|e| NotRecorded::Parse(e.to_string()))?;
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default())
        .map_err(|e| NotRecorded::Compile(e.to_string()))?;
    let plan = plan(&ast, &compiled, &map, Limits::default())
        .map_err(|e| NotRecorded::Plan(e.to_string()))?;
    let manifest = Manifest::new_root(compiled.root, None, vec![key.public_key()], key, nonce, 1);
    let recorded = record(&plan, &compiled, &manifest, key, store)
        .map_err(|e| NotRecorded::Record(e.to_string()))?;
    Ok(Recording {
        ast,
        plan,
        manifest,
        recorded,
    })
}

impl Recording {
    /// Every event's CID and bytes, in plan order, as stored.
    pub(crate) fn raw(&self, store: &Store) -> Vec<(Cid, Vec<u8>)> {
        self.recorded
            .event_cids
            .iter()
            .map(|cid| (*cid, store.get_event(*cid).unwrap().expect("stored").bytes))
            .collect()
    }
}

/// The replay dependencies of events (`spec/events.md` §4): each event waits for the
/// events it refers to and for the event before it in its log. Returns how many each
/// waits for, and by event the events that wait for it.
#[allow(dead_code)] // Each test binary uses a part of this module.
pub(crate) fn dependencies(events: &[(Cid, amb_log::Event)]) -> (Vec<usize>, Vec<Vec<usize>>) {
    use std::collections::HashMap;
    let index: HashMap<Cid, usize> = events
        .iter()
        .enumerate()
        .map(|(i, (c, _))| (*c, i))
        .collect();
    let places: HashMap<(Cid, u64), usize> = events
        .iter()
        .enumerate()
        .map(|(i, (_, e))| ((e.log(), e.seq()), i))
        .collect();
    let mut waiting = vec![0; events.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    for (i, (_, e)) in events.iter().enumerate() {
        let before = e.seq().checked_sub(1).map(|seq| places[&(e.log(), seq)]);
        for from in e.refs().iter().map(|r| index[r]).chain(before) {
            waiting[i] += 1;
            dependents[from].push(i);
        }
    }
    (waiting, dependents)
}
