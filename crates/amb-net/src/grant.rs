//! What a sync request made under an address may read (`spec/network.md` §3,
//! "Grants"): knowing an address is having read access to what it names, and to
//! nothing else.
//!
//! - Under a **program address** (a program manifest's CID): the program manifest,
//!   the manifest of every log of the program (its root log's and every slice's),
//!   every bytecode block the program reaches, the events of every log, and the
//!   value blocks their payloads name (a log's last event's).
//! - Under a **slice address** (a slice manifest's CID): that slice's manifest and
//!   log, its descendants' (the slices announced by a granted log) manifests and
//!   logs, and the bytecode blocks its block reaches; never its path to the root,
//!   its parent's bytecode or its siblings; and the value blocks the payloads of
//!   its granted logs name.
//!
//! A block or event CID grants nothing by itself: a request for anything outside
//! the grant of the address it names is refused `not-entitled`.

use std::collections::HashSet;

use amb_bytecode::{Block, Cid};
use amb_log::{Kind, Manifest, Snapshot, Store, StoreError};

/// What one address grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The program the address belongs to.
    pub(crate) program: Cid,
    /// The logs whose events may be read.
    pub(crate) logs: HashSet<Cid>,
    /// The blocks (manifests and bytecode) that may be read.
    pub(crate) blocks: HashSet<Cid>,
}

impl Grant {
    /// What `under` grants, or `None` when this node holds no program or slice of
    /// that address. Its bytecode blocks are worked out only `with_bytecode` (a
    /// request for events needs the logs alone). Read in one view of the store.
    pub(crate) fn of(
        store: &Store,
        under: Cid,
        with_bytecode: bool,
    ) -> Result<Option<Grant>, StoreError> {
        let view = store.snapshot()?;
        let Some(manifest) = view.get_manifest(under)? else {
            return Ok(None);
        };
        let mut grant = match manifest.kind() {
            Kind::Program => program_grant(&view, under, &manifest)?,
            Kind::Slice => match slice_grant(store, &view, under)? {
                Some(grant) => grant,
                None => return Ok(None),
            },
            // A root log's id is no address: it is derived one way from the program
            // address so that it can be shown without granting anything.
            Kind::RootLog => return Ok(None),
        };
        grant.blocks.extend(grant.logs.iter().copied());
        if with_bytecode {
            // The bytecode, and the values of the granted logs (only a log's last
            // event carries one), in one walk.
            let mut roots = vec![manifest.program()];
            for log in &grant.logs {
                roots.extend(last_payload(store, *log)?);
            }
            grant.blocks.extend(bytecode_reached(&view, roots)?);
        }
        Ok(Some(grant))
    }

    /// Whether the grant covers the events of `log`.
    pub(crate) fn covers_log(&self, log: &Cid) -> bool {
        self.logs.contains(log)
    }

    /// Whether the grant covers the block `cid`.
    pub(crate) fn covers_block(&self, cid: &Cid) -> bool {
        self.blocks.contains(cid)
    }
}

fn program_grant(view: &Snapshot, program: Cid, manifest: &Manifest) -> Result<Grant, StoreError> {
    let mut logs: HashSet<Cid> = view.program_logs(program)?.into_iter().collect();
    if let Some(root) = manifest.root_log() {
        logs.insert(root.cid());
    }
    Ok(Grant {
        program,
        logs,
        blocks: HashSet::from([program]),
    })
}

fn slice_grant(store: &Store, view: &Snapshot, slice: Cid) -> Result<Option<Grant>, StoreError> {
    let Some(program) = program_of_log(store, view, slice)? else {
        return Ok(None);
    };
    let program_logs = view.program_logs(program)?;
    // Each slice log of the program with the log its announcing deploy is in.
    let mut announced_in = Vec::new();
    for log in &program_logs {
        let Some(parent) = view.get_manifest(*log)?.and_then(|m| m.parent()) else {
            continue;
        };
        if let Some(event) = store.get_event(parent)? {
            announced_in.push((*log, event.log));
        }
    }
    let mut logs = HashSet::from([slice]);
    loop {
        let before = logs.len();
        for (log, parent_log) in &announced_in {
            if logs.contains(parent_log) {
                logs.insert(*log);
            }
        }
        if logs.len() == before {
            break;
        }
    }
    Ok(Some(Grant {
        program,
        logs,
        blocks: HashSet::new(),
    }))
}

/// The program whose logs include `log`.
fn program_of_log(store: &Store, view: &Snapshot, log: Cid) -> Result<Option<Cid>, StoreError> {
    for program in store.programs()? {
        if view.program_logs(program)?.contains(&log) {
            return Ok(Some(program));
        }
    }
    Ok(None)
}

/// The payload (value block) of the last stored event of `log`, if it has one.
pub(crate) fn last_payload(store: &Store, log: Cid) -> Result<Option<Cid>, StoreError> {
    let Some((_, head)) = store.log_head(log)? else {
        return Ok(None);
    };
    Ok(store
        .get_event(head)?
        .and_then(|stored| amb_log::Event::decode(&stored.bytes).ok())
        .and_then(|event| event.payload()))
}

/// Every bytecode block reachable from `roots` that the store holds.
fn bytecode_reached(view: &Snapshot, roots: Vec<Cid>) -> Result<HashSet<Cid>, StoreError> {
    let mut seen: HashSet<Cid> = roots.iter().copied().collect();
    let mut frontier = roots;
    while let Some(cid) = frontier.pop() {
        let Some(bytes) = view.get_block(cid)? else {
            continue;
        };
        let Ok(block) = Block::decode(&bytes) else {
            continue;
        };
        frontier.extend(block.children().filter(|c| seen.insert(*c)));
    }
    Ok(seen)
}
