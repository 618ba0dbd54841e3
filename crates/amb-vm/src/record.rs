//! Recording a run: turning a [`Plan`] into signed manifests and events in the store.
//!
//! Events are signed in plan order, so every reference is an earlier event whose CID
//! is known. A slice's manifest is made once the `deploy` announcing it is signed
//! (its CID is the manifest's `parent`); it is not signed itself: the slice log's
//! `create`, signed by the same key, covers it. Events are committed in batches of whole steps
//! (a step's two halves and the deploys it enables are never split); a batch is written
//! in one transaction, so a crash leaves whole batches. Writing is idempotent:
//! recording the same plan with the same key and program manifest again produces the
//! same bytes and CIDs (Ed25519 signatures are deterministic), so an interrupted run is
//! resumed by recording again (`Store::write_batch` skips what is stored and refuses a
//! fork).

use amb_bytecode::{Cid, CompiledProgram, Opcode};
use amb_log::{DecodedEvent, Event, Manifest, Op, SigningKey, Store, StoreError, UnsignedEvent};

use crate::{plan::Plan, verify::Progress};

/// Events per committed batch, at least: a batch is committed before the first step
/// that starts once it holds this many, so it ends with a whole step.
pub const BATCH_EVENTS: usize = 4096;

/// What recording wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The program manifest's CID: the address is `/amb/<program>`.
    pub program: Cid,
    /// Events recorded (whether new or already stored).
    pub events: u64,
    /// The CID of every event, in plan order.
    pub event_cids: Vec<Cid>,
    /// The manifest CID of every log, in plan order (the program's first).
    pub log_cids: Vec<Cid>,
}

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An operation the plan made is not a valid event operation (a bug).
    #[error("planned event {index} has an invalid operation: {detail}")]
    InvalidOp {
        /// Index in the plan.
        index: usize,
        /// What is wrong.
        detail: String,
    },
}

/// Stores the program's blocks, the program manifest, every slice manifest and every
/// event of `plan`, signing with `key`.
pub fn record(
    plan: &Plan,
    compiled: &CompiledProgram,
    program_manifest: &Manifest,
    key: &SigningKey,
    store: &Store,
) -> Result<Recorded, RecordError> {
    store_program(compiled, program_manifest, store)?;
    record_events(plan, program_manifest, key, store, &())
}

/// Stores the program's blocks and its manifest in one transaction: from then on the
/// address can be announced, and an interrupted run resumed by it.
pub fn store_program(
    compiled: &CompiledProgram,
    program_manifest: &Manifest,
    store: &Store,
) -> Result<Cid, StoreError> {
    let manifest_bytes = program_manifest.encode();
    let program = program_manifest.cid();
    store.put_blocks(
        compiled
            .blocks
            .iter()
            .map(|(c, b)| (*c, b.as_slice()))
            .chain([(program, manifest_bytes.as_slice())]),
    )?;
    Ok(program)
}

/// The rest of [`record`], once [`store_program`] has stored the program: the value
/// blocks, every slice manifest and every event, reporting the events committed.
pub fn record_events(
    plan: &Plan,
    program_manifest: &Manifest,
    key: &SigningKey,
    store: &Store,
    progress: &dyn Progress,
) -> Result<Recorded, RecordError> {
    progress.start("recording", plan.events.len() as u64);
    store.put_blocks(plan.value_blocks.iter().map(|(c, b)| (*c, b.as_slice())))?;
    let program = program_manifest.cid();
    let keys = program_manifest.keys().to_vec();
    let creator = key.public_key();

    let mut log_cids: Vec<Option<Cid>> = vec![None; plan.logs.len()];
    log_cids[0] = Some(program);
    store.register_log(program, program)?;
    // Slice manifests, committed with the batch whose events use them.
    let mut manifests: Vec<Manifest> = Vec::new();
    // By event: the log whose manifest waits for its signature (an announcing deploy).
    let mut announced_by: Vec<Option<usize>> = vec![None; plan.events.len()];
    for (log, info) in plan.logs.iter().enumerate() {
        if let Some(event) = info.parent {
            announced_by[event] = Some(log);
        }
    }

    let mut event_cids: Vec<Cid> = Vec::with_capacity(plan.events.len());
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH_EVENTS);
    for (index, planned) in plan.events.iter().enumerate() {
        // Commit only before the event that starts a step (`in` and `out` are written
        // before their co-capability, `open_` before its `open`), so that what a crash
        // leaves committed is whole steps.
        let starts_step = matches!(planned.opcode, Opcode::In | Opcode::Out | Opcode::OpenCo);
        if starts_step && batch.len() >= BATCH_EVENTS {
            let committed = batch.len() as u64;
            flush(store, program, &mut manifests, &mut batch)?;
            progress.advance(committed);
        }
        let log = log_cids[planned.log].expect("a log's manifest precedes its events");
        let op = Op::new(planned.opcode, planned.target.clone()).map_err(|e| {
            RecordError::InvalidOp {
                index,
                detail: e.to_string(),
            }
        })?;
        let body = UnsignedEvent {
            log,
            seq: planned.seq,
            op,
            at: planned.at.map(|(anchor, i)| (event_cids[anchor], i)),
            refs: planned.refs.iter().map(|&r| event_cids[r]).collect(),
            payload: planned.payload,
        };
        let (event, bytes) = Event::sign_encoded(body, key);
        let cid = Cid::of(&bytes);
        event_cids.push(cid);
        batch.push((cid, event, bytes));
        if let Some(slice) = announced_by[index].take() {
            let info = &plan.logs[slice];
            let manifest = Manifest::new_slice(
                info.block,
                info.name.clone().unwrap_or_default(),
                keys.clone(),
                creator,
                cid,
            );
            log_cids[slice] = Some(manifest.cid());
            manifests.push(manifest);
        }
    }
    flush(store, program, &mut manifests, &mut batch)?;
    progress.finish();
    Ok(Recorded {
        program,
        events: plan.events.len() as u64,
        event_cids,
        log_cids: log_cids
            .into_iter()
            .map(|c| c.expect("every log is announced"))
            .collect(),
    })
}

/// A signed event waiting for its batch: CID, event, encoding.
type Pending = (Cid, Event, Vec<u8>);

/// Commits the pending manifests and events in one transaction.
fn flush(
    store: &Store,
    program: Cid,
    manifests: &mut Vec<Manifest>,
    batch: &mut Vec<Pending>,
) -> Result<(), StoreError> {
    if batch.is_empty() && manifests.is_empty() {
        return Ok(());
    }
    let events: Vec<DecodedEvent<'_>> = batch
        .iter()
        .map(|(cid, event, bytes)| DecodedEvent {
            cid: *cid,
            event,
            bytes,
        })
        .collect();
    store.write_events(program, manifests, &events)?;
    manifests.clear();
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use amb_bytecode::BlockLimits;
    use amb_engine::Limits;

    use super::*;
    use crate::plan::plan;

    #[test]
    fn records_signed_events_once() {
        let ast = amb_syntax::parse("a[in b.open_] | b[in_ a.open a] | open b").unwrap();
        let (compiled, map) =
            amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
        let plan = plan(&ast, &compiled, &map, Limits::default()).unwrap();
        let key = SigningKey::from_seed(&[7; 32]);
        let manifest = Manifest::new_root(
            compiled.root,
            Some("test".into()),
            vec![key.public_key()],
            &key,
            [1; 16],
            1_700_000_000_000,
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("store.redb")).unwrap();
        let first = record(&plan, &compiled, &manifest, &key, &store).unwrap();
        assert_eq!(first.events, plan.events.len() as u64);
        assert_eq!(store.event_count().unwrap(), first.events);
        for cid in &first.event_cids {
            let stored = store.get_event(*cid).unwrap().expect("stored");
            let event = Event::decode(&stored.bytes).unwrap();
            assert_eq!(event.cid(), *cid);
            event.verify_signature().unwrap();
        }
        assert_eq!(
            store.program_logs(first.program).unwrap().len(),
            plan.logs.len()
        );
        // Recording again (a resumed run) writes nothing new and forks nothing.
        let again = record(&plan, &compiled, &manifest, &key, &store).unwrap();
        assert_eq!(again, first);
        assert_eq!(store.event_count().unwrap(), first.events);
    }
}
