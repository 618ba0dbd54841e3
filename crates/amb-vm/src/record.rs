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

use std::sync::mpsc;

use amb_bytecode::{Cid, CompiledProgram};
use amb_log::{
    DecodedEvent, EffectEvent, Manifest, Op, SigningKey, Store, StoreError, UnsignedEffect,
    UnsignedEvent,
};

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
    /// The manifest CID of every log, in plan order (the root log's first: derived from
    /// the program manifest, never the address).
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
    let root_log = root_log_manifest(program_manifest);
    let root_log_bytes = root_log.encode();
    store.put_blocks(
        compiled
            .blocks
            .iter()
            .map(|(c, b)| (*c, b.as_slice()))
            .chain([
                (program, manifest_bytes.as_slice()),
                (root_log.cid(), root_log_bytes.as_slice()),
            ]),
    )?;
    Ok(program)
}

/// The rest of [`record`], once [`store_program`] has stored the program: the value
/// blocks, every slice manifest and every event, reporting the events committed.
///
/// Batches are committed on a thread of their own while the next one is signed, so
/// signing goes on while a batch is written and flushed to disk. Each batch is still
/// one transaction, committed in order after the one before; this returns once every
/// batch has committed.
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
    let root_log = root_log_manifest(program_manifest).cid();
    store.register_log(program, root_log)?;
    let (event_cids, log_cids) = std::thread::scope(|scope| {
        let mut committer = Committer::start(scope, store, program);
        let signed = sign_events(
            plan,
            program_manifest,
            root_log,
            key,
            &mut committer,
            progress,
        );
        // Every batch handed over commits (whole steps), even after a refusal.
        let committed = committer.finish(progress);
        let signed = signed?;
        committed?;
        Ok::<_, RecordError>(signed)
    })?;
    progress.finish();
    Ok(Recorded {
        program,
        events: plan.events.len() as u64,
        event_cids,
        log_cids,
    })
}

/// The root log manifest of a program manifest (`spec/events.md` §2).
///
/// # Panics
/// When `program_manifest` is not a program manifest (a caller's bug).
pub fn root_log_manifest(program_manifest: &Manifest) -> Manifest {
    program_manifest
        .root_log()
        .expect("a program manifest derives its root log manifest")
}

/// The root log's id of the program `program` whose manifest `store` holds; `None`
/// when it holds no valid program manifest under that CID.
pub fn stored_root_log(store: &Store, program: Cid) -> Result<Option<Cid>, StoreError> {
    Ok(store
        .get_block(program)?
        .and_then(|bytes| Manifest::decode(&bytes).ok())
        .filter(|manifest| manifest.cid() == program)
        .and_then(|manifest| manifest.root_log())
        .map(|root_log| root_log.cid()))
}

/// Whether the stored root log of `program` ends with a payload (the run is
/// complete, `spec/events.md` §6); `false` when the store holds no valid program
/// manifest under that CID or no root log event.
pub fn stored_run_complete(store: &Store, program: Cid) -> Result<bool, StoreError> {
    let Some(root_log) = stored_root_log(store, program)? else {
        return Ok(false);
    };
    let Some((_, head)) = store.log_head(root_log)? else {
        return Ok(false);
    };
    Ok(store
        .get_event(head)?
        .and_then(|stored| amb_log::Event::decode(&stored.bytes).ok())
        .is_some_and(|event| event.payload().is_some()))
}

/// Signs every event of `plan` and makes every slice manifest, in plan order, handing
/// them to `committer` in batches of whole steps. Returns the CID of every event and
/// of every log.
fn sign_events(
    plan: &Plan,
    program_manifest: &Manifest,
    root_log: Cid,
    key: &SigningKey,
    committer: &mut Committer,
    progress: &dyn Progress,
) -> Result<(Vec<Cid>, Vec<Cid>), RecordError> {
    let keys = program_manifest.keys().to_vec();
    let creator = key.public_key();
    let mut log_cids: Vec<Option<Cid>> = vec![None; plan.logs.len()];
    log_cids[0] = Some(root_log);
    // By event: the log whose manifest waits for its signature (an announcing deploy).
    let mut announced_by: Vec<Option<usize>> = vec![None; plan.events.len()];
    for (log, info) in plan.logs.iter().enumerate() {
        if let Some(event) = info.parent {
            announced_by[event] = Some(log);
        }
    }
    let mut event_cids: Vec<Cid> = Vec::with_capacity(plan.events.len());
    let mut batch = committer.empty_batch();
    // Each event's encoding, in turn (hashed for its CID; the store keeps the fields).
    let mut encoding = Vec::with_capacity(512);
    for (index, planned) in plan.events.iter().enumerate() {
        // Commit only before the event that starts a step (`in` and `out` are written
        // before their co-capability, `open_` before its `open`), so that what a crash
        // leaves committed is whole steps.
        let starts_step = planned.opcode.starts_step();
        if starts_step && batch.events.len() >= BATCH_EVENTS {
            let full = std::mem::replace(&mut batch, committer.empty_batch());
            committer.send(full, progress)?;
        }
        let log = log_cids[planned.log].expect("a log's manifest precedes its events");
        if let Some(effect) = &planned.effect {
            let signed = EffectEvent::sign(
                UnsignedEffect {
                    log,
                    seq: planned.seq,
                    service: effect.service.clone(),
                    args: effect.args,
                    result: effect.result,
                    refs: planned.refs.iter().map(|&r| event_cids[r]).collect(),
                },
                key,
            );
            event_cids.push(signed.cid());
            batch.effects.push((batch.events.len(), signed));
            continue;
        }
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
        let signed = DecodedEvent::sign(body, key, &mut encoding);
        let cid = signed.cid();
        event_cids.push(cid);
        batch.events.push(signed);
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
            batch.manifests.push(manifest);
        }
    }
    committer.send(batch, progress)?;
    let log_cids = log_cids
        .into_iter()
        .map(|c| c.expect("every log is announced"))
        .collect();
    Ok((event_cids, log_cids))
}

/// Signed events and the slice manifests they need, committed in one transaction.
#[derive(Debug, Default)]
struct Batch {
    manifests: Vec<Manifest>,
    events: Vec<DecodedEvent>,
    /// Effect events (`spec/system.md` §6), each before the event of its index.
    effects: Vec<(usize, EffectEvent)>,
}

/// What the committing thread answers for each batch: the events it committed and the
/// emptied batch (its room reused), or why it could not.
type Committed = Result<(u64, Batch), StoreError>;

/// Commits batches in order on a thread of its own: at most one batch waits while
/// another is written.
#[derive(Debug)]
struct Committer {
    batches: Option<mpsc::SyncSender<Batch>>,
    committed: mpsc::Receiver<Committed>,
    /// Batches handed over and not answered yet.
    in_flight: usize,
    /// Emptied batches, to fill again.
    spare: Vec<Batch>,
}

impl Committer {
    /// Starts the committing thread in `scope`.
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        store: &'scope Store,
        program: Cid,
    ) -> Committer {
        let (batches, inbox) = mpsc::sync_channel::<Batch>(1);
        let (answer, committed) = mpsc::channel();
        scope.spawn(move || {
            for mut batch in inbox {
                let result = store
                    .write_events_and_effects(
                        program,
                        &batch.manifests,
                        &batch.events,
                        &batch.effects,
                    )
                    .map(|_| {
                        let count = (batch.events.len() + batch.effects.len()) as u64;
                        batch.manifests.clear();
                        batch.events.clear();
                        batch.effects.clear();
                        (count, batch)
                    });
                let failed = result.is_err();
                if answer.send(result).is_err() || failed {
                    break;
                }
            }
        });
        Committer {
            batches: Some(batches),
            committed,
            in_flight: 0,
            spare: Vec::new(),
        }
    }

    /// An empty batch, with room for a full one: a batch ends at the first step that
    /// starts once it holds [`BATCH_EVENTS`], so a little more.
    fn empty_batch(&mut self) -> Batch {
        self.spare.pop().unwrap_or_else(|| Batch {
            manifests: Vec::new(),
            events: Vec::with_capacity(BATCH_EVENTS + BATCH_EVENTS / 4),
            effects: Vec::new(),
        })
    }

    /// Hands `batch` over to be committed after the batches before it; reports the
    /// batches committed meanwhile, or the first refusal.
    fn send(&mut self, batch: Batch, progress: &dyn Progress) -> Result<(), StoreError> {
        while let Ok(answer) = self.committed.try_recv() {
            self.answered(answer, progress)?;
        }
        if batch.events.is_empty() && batch.manifests.is_empty() && batch.effects.is_empty() {
            self.spare.push(batch);
            return Ok(());
        }
        let batches = self.batches.as_ref().expect("the committer is open");
        if batches.send(batch).is_err() {
            // The thread stopped at a refusal, which it has answered.
            return self.finish(progress);
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Waits until every batch handed over is committed; reports them, or the first
    /// refusal.
    fn finish(&mut self, progress: &dyn Progress) -> Result<(), StoreError> {
        self.batches = None;
        while self.in_flight > 0 {
            // The thread answers every batch it takes, unless it panicked (which the
            // scope passes on).
            let Ok(answer) = self.committed.recv() else {
                break;
            };
            self.answered(answer, progress)?;
        }
        Ok(())
    }

    fn answered(&mut self, answer: Committed, progress: &dyn Progress) -> Result<(), StoreError> {
        self.in_flight -= 1;
        let (count, batch) = answer?;
        progress.advance(count);
        self.spare.push(batch);
        Ok(())
    }
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
        let address = first.program.digest();
        for cid in &first.event_cids {
            let stored = store.get_event(*cid).unwrap().expect("stored");
            let event = amb_log::Event::decode(&stored.bytes).unwrap();
            assert_eq!(event.cid(), *cid);
            event.verify_signature().unwrap();
            // No event names the program address (a read capability, format 2).
            assert!(!stored.bytes.windows(32).any(|w| w == address), "{cid}");
        }
        assert_eq!(first.log_cids[0], manifest.root_log().unwrap().cid());
        for log in &first.log_cids {
            let bytes = store
                .get_block(*log)
                .unwrap()
                .expect("every log's manifest");
            assert!(!bytes.windows(32).any(|w| w == address), "{log}");
        }
        assert_eq!(
            store.program_logs(first.program).unwrap().len(),
            plan.logs.len()
        );
        // Recording again (a resumed run) writes nothing new and forks nothing.
        let again = record(&plan, &compiled, &manifest, &key, &store).unwrap();
        assert_eq!(again, first);
        assert_eq!(store.event_count().unwrap(), first.events);
        // Another key's events at the same places are forks, refused by the store.
        let other = SigningKey::from_seed(&[8; 32]);
        let refused = record(&plan, &compiled, &manifest, &other, &store).unwrap_err();
        assert!(
            matches!(refused, RecordError::Store(StoreError::Fork { .. })),
            "{refused}"
        );
        assert_eq!(store.event_count().unwrap(), first.events);
    }
}
