//! One negative test per verification rule (`spec/events.md` §7): record a valid run,
//! read its events back, and build event sets that pass every rule but one, then check
//! that `verify_events` refuses each set naming exactly the rule that was broken (and,
//! where it makes sense, the tampered event).
//!
//! Tampered sets are made by [`Run::rebuild`], which re-signs the whole run in plan
//! order with the program's key after an edit, mapping every old CID (refs, `at`,
//! slice manifests announced by a re-signed `deploy`) to the new one, so that changing
//! one event keeps every other rule satisfied.

mod common;
use common::{Recording, corpus_file, record_source};
use std::collections::{BTreeSet, HashMap, HashSet};

use amb_bytecode::{Block, Cid, Opcode, Target, cbor};
use amb_log::{Event, Manifest, Op, SigningKey, Store, UnsignedEvent};
use amb_vm::{
    completeness::Completeness,
    plan::Plan,
    replay::{Source, Violation},
    verify::{StoreSource, VerifyError, stable_order, verify_events, verify_events_prefix},
};

/// The small program of the tests: an `in` step, then an `open` step.
///
/// ```text
///  0 root#0 create            6 b#0 create
///  1 root#1 deploy (body)     7 b#1 deploy (body)
///  2 root#2 deploy a          8 a#2 in b        (first half)
///  3 a#0 create               9 b#2 in_ a       (second half, refs 8)
///  4 a#1 deploy (body)       10 a#3 open_       (first half, refs 9: completion)
///  5 root#3 deploy b         11 b#3 open a      (second half, refs 10; payload)
/// ```
const SMALL: &str = "a[in b.open_] | b[in_ a.open a] | open b";

/// The corpus monoid (many steps, primitives, nested logs).
const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

type Raw = Vec<(Cid, Vec<u8>)>;

fn foreign_key() -> SigningKey {
    SigningKey::from_seed(&[9; 32])
}

/// What [`Run::rebuild`] does with one event.
enum Edit {
    /// Re-sign it with the program's key.
    Keep,
    /// Re-sign it with [`foreign_key`], which no manifest of the program lists.
    SignForeign,
}

/// A tampered event set, and the new CID of every event of the run.
struct Tampered {
    raw: Raw,
    cids: Vec<Cid>,
}

impl Tampered {
    fn cid(&self, index: usize) -> Cid {
        self.cids[index]
    }
}

/// A run recorded into a temporary store.
struct Run {
    _dir: tempfile::TempDir,
    store: Store,
    key: SigningKey,
    program: Cid,
    plan: Plan,
    /// Every event, in plan order.
    events: Vec<(Cid, Event)>,
    /// Every log's manifest CID, the program's first.
    logs: Vec<Cid>,
    /// Slice manifests by their parent (the announcing `deploy` event).
    slices: HashMap<Cid, Manifest>,
}

impl Run {
    fn record(source: &str) -> Run {
        Run::record_with_nonce(source, [5; 16])
    }

    /// Another deployment of a program: another nonce, another program manifest.
    fn record_with_nonce(source: &str, nonce: [u8; 16]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("store.redb")).unwrap();
        let key = SigningKey::from_seed(&[3; 32]);
        let recording = record_source(source, &store, &key, nonce).unwrap();
        let events = recording
            .raw(&store)
            .into_iter()
            .map(|(cid, bytes)| (cid, Event::decode(&bytes).unwrap()))
            .collect();
        let Recording { plan, recorded, .. } = recording;
        let slices = recorded.log_cids[1..]
            .iter()
            .map(|log| {
                let manifest = Manifest::decode(&store.get_block(*log).unwrap().unwrap()).unwrap();
                (manifest.parent().expect("a slice"), manifest)
            })
            .collect();
        Run {
            _dir: dir,
            store,
            key,
            program: recorded.program,
            plan,
            events,
            logs: recorded.log_cids,
            slices,
        }
    }

    fn source(&self) -> StoreSource<'_> {
        StoreSource { store: &self.store }
    }

    /// The untouched events, as read from the store.
    fn raw(&self) -> Raw {
        self.events
            .iter()
            .map(|(cid, _)| (*cid, self.store.get_event(*cid).unwrap().unwrap().bytes))
            .collect()
    }

    fn cid(&self, index: usize) -> Cid {
        self.events[index].0
    }

    fn event(&self, index: usize) -> &Event {
        &self.events[index].1
    }

    /// The index of an event of the run.
    fn index_of(&self, cid: Cid) -> usize {
        self.events
            .iter()
            .position(|(c, _)| *c == cid)
            .expect("an event of the run")
    }

    /// The index of the event at `seq` of log number `log`.
    fn at(&self, log: usize, seq: u64) -> usize {
        self.plan
            .events
            .iter()
            .position(|e| e.log == log && e.seq == seq)
            .expect("planned")
    }

    /// The index of the last event of log number `log`.
    fn last_of(&self, log: usize) -> usize {
        self.plan
            .events
            .iter()
            .rposition(|e| e.log == log)
            .expect("planned")
    }

    /// The log number of the ambient named `name` (the first with that name; `root`
    /// for the program log).
    fn log_named(&self, name: &str) -> usize {
        if name == "root" {
            return 0;
        }
        self.plan
            .logs
            .iter()
            .position(|l| l.name.as_deref() == Some(name))
            .expect("a log of that name")
    }

    /// Indices of events some other event refers to.
    fn referred(&self) -> BTreeSet<usize> {
        let index: HashMap<Cid, usize> = self
            .events
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (*c, i))
            .collect();
        self.events
            .iter()
            .flat_map(|(_, e)| e.refs().iter().map(|r| index[r]))
            .collect()
    }

    /// The instruction index of the first `op` in the block deployed by event `body`.
    fn instruction(&self, body: usize, op: Opcode) -> u32 {
        let Target::Block(block) = self.event(body).op().target() else {
            panic!("event {body} is not a deploy");
        };
        let block = Block::decode(&self.store.get_block(*block).unwrap().unwrap()).unwrap();
        block
            .instructions
            .iter()
            .position(|i| i.op == op)
            .expect("the block has that op") as u32
    }

    /// The run re-signed in plan order: `edit` changes an event's fields (in terms of
    /// the original CIDs) and says how to sign it; every CID that re-signing changes
    /// is then replaced in the refs, `at` and `log` of later events, and a slice
    /// manifest whose announcing `deploy` changed is made again (by the program's
    /// key, stored) so that its log follows. Without edits the bytes are the same.
    fn rebuild(&self, mut edit: impl FnMut(usize, &mut UnsignedEvent) -> Edit) -> Tampered {
        let mut events: HashMap<Cid, Cid> = HashMap::new();
        let mut logs: HashMap<Cid, Cid> = HashMap::new();
        let mut raw = Vec::new();
        let mut cids = Vec::new();
        for (index, (old, event)) in self.events.iter().enumerate() {
            let mut body = event.body().clone();
            let key = match edit(index, &mut body) {
                Edit::Keep => self.key.clone(),
                Edit::SignForeign => foreign_key(),
            };
            let map = |c: Cid| events.get(&c).copied().unwrap_or(c);
            body.log = logs.get(&body.log).copied().unwrap_or(body.log);
            body.at = body.at.map(|(deploy, i)| (map(deploy), i));
            body.refs = body.refs.iter().map(|&r| map(r)).collect();
            let signed = Event::sign(body, &key);
            let cid = signed.cid();
            if cid != *old {
                events.insert(*old, cid);
                if let Some(slice) = self.slices.get(old) {
                    let again = Manifest::new_slice(
                        slice.program(),
                        slice.name().expect("slices are named").to_string(),
                        slice.keys().to_vec(),
                        self.key.public_key(),
                        cid,
                    );
                    self.store.put_block(again.cid(), &again.encode()).unwrap();
                    logs.insert(slice.cid(), again.cid());
                }
            }
            raw.push((cid, signed.encode()));
            cids.push(cid);
        }
        Tampered { raw, cids }
    }

    /// Checks that `raw` with event `index` replaced by `bytes` (stored under their
    /// own CID) is refused for `rule` at that event.
    fn check_bytes(
        &self,
        case: &str,
        raw: &Raw,
        index: usize,
        bytes: Vec<u8>,
        rule: &str,
    ) -> Result<(), String> {
        let new = with_cid(bytes);
        let at = new.0;
        self.check(case, &replaced(raw, self.cid(index), new), rule, Some(at))
    }

    /// The run re-signed with event `index` no longer referring to `dropped`.
    fn without_ref(&self, index: usize, dropped: Cid) -> Tampered {
        self.rebuild(|j, body| {
            if j == index {
                body.refs.retain(|r| *r != dropped);
            }
            Edit::Keep
        })
    }

    /// A new event signed by the program's key.
    fn signed(&self, body: UnsignedEvent) -> (Cid, Vec<u8>) {
        let event = Event::sign(body, &self.key);
        (event.cid(), event.encode())
    }

    /// Stores a manifest block and returns its CID.
    fn store_manifest(&self, manifest: &Manifest) -> Cid {
        self.store
            .put_block(manifest.cid(), &manifest.encode())
            .unwrap();
        manifest.cid()
    }

    /// What `verify_events` says of `raw`: the violation, or a description of any
    /// other outcome.
    /// Whether event `i` announces a slice (an announcing deploy of an ambient
    /// that is not a primitive), which refers to its instance's body deploy, not to
    /// the log's previous event.
    fn is_slice_announcement(&self, i: usize) -> bool {
        let planned = &self.plan.events[i];
        planned.opcode == Opcode::Deploy
            && planned.at.is_some()
            && self.plan.logs.iter().any(|l| l.parent == Some(i))
    }

    fn outcome(&self, raw: &Raw) -> Result<Violation, String> {
        match verify_events(&self.source(), self.program, raw) {
            Err(VerifyError::Violation(v)) => Ok(v),
            Err(other) => Err(format!("not a violation: {other}")),
            Ok(verified) => Err(format!(
                "accepted ({} events, final term {})",
                verified.events,
                amb_syntax::to_compact_string(&verified.term)
            )),
        }
    }

    /// Checks that `raw` is refused for `rule`, at `event` if given; on mismatch, a
    /// description of the case and of what came back.
    fn check(&self, case: &str, raw: &Raw, rule: &str, event: Option<Cid>) -> Result<(), String> {
        match self.outcome(raw) {
            Ok(v) if v.rule == rule && event.is_none_or(|e| e == v.event) => Ok(()),
            Ok(v) => Err(format!(
                "{case}: expected rule `{rule}`{}, got: {v}",
                event.map_or(String::new(), |e| format!(" at {e}"))
            )),
            Err(other) => Err(format!("{case}: expected rule `{rule}`, {other}")),
        }
    }
}

/// Fails with every mismatch at once.
fn assert_all(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn collect(results: impl IntoIterator<Item = Result<(), String>>) -> Vec<String> {
    results.into_iter().filter_map(Result::err).collect()
}

/// The CID of tampered bytes, so that only the tampering breaks a rule (not `cid`).
fn with_cid(bytes: Vec<u8>) -> (Cid, Vec<u8>) {
    (Cid::of(&bytes), bytes)
}

/// `raw` with the event `old` replaced by `new` (CID and bytes).
fn replaced(raw: &Raw, old: Cid, new: (Cid, Vec<u8>)) -> Raw {
    raw.iter()
        .map(|(c, b)| {
            if *c == old {
                new.clone()
            } else {
                (*c, b.clone())
            }
        })
        .collect()
}

fn runs() -> Vec<(&'static str, Run)> {
    vec![
        ("small", Run::record(SMALL)),
        ("monoid", Run::record(&corpus_file(MONOID))),
    ]
}

#[test]
fn untouched_runs_verify_and_rebuilding_without_edits_is_the_identity() {
    for (name, run) in runs() {
        let raw = run.raw();
        let verified = verify_events(&run.source(), run.program, &raw)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            amb_syntax::to_compact_string(&verified.term),
            amb_syntax::to_compact_string(&run.plan.final_term),
            "{name}"
        );
        assert_eq!(verified.steps, run.plan.steps, "{name}");
        assert_eq!(verified.logs, run.logs.len(), "{name}");
        assert_eq!(run.rebuild(|_, _| Edit::Keep).raw, raw, "{name}");
    }
    // The small program is the run the tests below describe.
    let run = Run::record(SMALL);
    assert_eq!(run.events.len(), 12);
    assert_eq!(run.plan.steps, 2);
    assert_eq!(run.event(8).op().opcode(), Opcode::In);
    assert_eq!(run.event(9).op().opcode(), Opcode::InCo);
    assert_eq!(run.event(10).op().opcode(), Opcode::OpenCo);
    assert_eq!(run.event(11).op().opcode(), Opcode::Open);
    assert!(run.event(11).payload().is_some());
}

// ---------------------------------------------------------------- signature

#[test]
fn signature_a_flipped_signature_bit_is_refused() {
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let raw = run.raw();
        failures.extend(collect(raw.iter().enumerate().map(|(i, (_, bytes))| {
            let mut bytes = bytes.clone();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            run.check_bytes(
                &format!("{name} event {i}: a bit of its signature flipped"),
                &raw,
                i,
                bytes,
                "signature",
            )
        })));
    }
    assert_all(failures);
}

#[test]
fn signature_a_changed_field_under_the_old_signature_is_refused() {
    let run = Run::record(SMALL);
    let raw = run.raw();
    let mut failures = Vec::new();
    for i in 0..run.events.len() {
        // The event with its seq changed, carrying the original signature.
        let mut body = run.event(i).body().clone();
        body.seq += 100;
        let mut bytes = Event::sign(body, &run.key).encode();
        let sig_at = bytes.len() - 64;
        bytes[sig_at..].copy_from_slice(run.event(i).signature().as_bytes());
        failures.extend(
            run.check_bytes(
                &format!("event {i}: seq changed, old signature kept"),
                &raw,
                i,
                bytes,
                "signature",
            )
            .err(),
        );
    }
    assert_all(failures);
}

#[test]
fn signature_another_creator_under_the_signature_is_refused() {
    // The creator field says the foreign key; the signature is the program key's.
    let run = Run::record(SMALL);
    let raw = run.raw();
    let mut bytes = raw[8].1.clone();
    let creator_at = bytes.len() - 66 - 32;
    assert_eq!(
        &bytes[creator_at..creator_at + 32],
        run.key.public_key().as_bytes()
    );
    bytes[creator_at..creator_at + 32].copy_from_slice(foreign_key().public_key().as_bytes());
    run.check_bytes("creator replaced", &raw, 8, bytes, "signature")
        .unwrap();
}

#[test]
fn signature_the_small_order_forgery_is_refused() {
    // Identity point as creator, R = identity, S = 0: plain Ed25519 verification
    // accepts it on every message; verify_strict must not (spec/events.md §1, §9).
    let run = Run::record(SMALL);
    let raw = run.raw();
    let mut failures = Vec::new();
    for i in [0, 8, 11] {
        let mut bytes = raw[i].1.clone();
        let len = bytes.len();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        bytes[len - 98..len - 66].copy_from_slice(&identity);
        let mut sig = [0u8; 64];
        sig[0] = 1;
        bytes[len - 64..].copy_from_slice(&sig);
        failures.extend(
            run.check_bytes(
                &format!("event {i}: small-order forgery"),
                &raw,
                i,
                bytes,
                "signature",
            )
            .err(),
        );
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- cid

#[test]
fn cid_bytes_that_do_not_hash_to_their_cid_are_refused() {
    let run = Run::record(SMALL);
    let raw = run.raw();
    let mut failures = Vec::new();
    for i in 0..raw.len() {
        // Another event's (valid) bytes under this CID.
        let other = raw[(i + 1) % raw.len()].1.clone();
        failures.extend(
            run.check(
                &format!("event {i}: another event's bytes"),
                &replaced(&raw, run.cid(i), (run.cid(i), other)),
                "cid",
                Some(run.cid(i)),
            )
            .err(),
        );
        // Its own bytes with a signature bit flipped, under the old CID.
        let mut bytes = raw[i].1.clone();
        bytes[raw[i].1.len() - 1] ^= 0x80;
        failures.extend(
            run.check(
                &format!("event {i}: flipped bytes under the old CID"),
                &replaced(&raw, run.cid(i), (run.cid(i), bytes)),
                "cid",
                Some(run.cid(i)),
            )
            .err(),
        );
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- cbor

#[test]
fn cbor_malformed_or_non_canonical_bytes_are_refused() {
    let run = Run::record(SMALL);
    let raw = run.raw();
    let mut failures = Vec::new();
    let mut case = |what: &str, i: usize, bytes: Vec<u8>| {
        failures.extend(
            run.check_bytes(&format!("event {i}: {what}"), &raw, i, bytes, "cbor")
                .err(),
        );
    };
    for (i, (_, bytes)) in raw.iter().enumerate() {
        // A trailing byte after the one CBOR item.
        let mut trailing = bytes.clone();
        trailing.push(0);
        case("trailing byte", i, trailing);
        // Truncated.
        case("truncated", i, bytes[..bytes.len() - 1].to_vec());
        // The array header in a longer form than needed: 0x89 as 0x98 0x09.
        assert_eq!(bytes[0], 0x89);
        let mut long_header = vec![0x98, 0x09];
        long_header.extend_from_slice(&bytes[1..]);
        case("non-minimal array header", i, long_header);
        // The seq (a small uint after the 41-byte log link) in a longer form.
        let seq_at = 2 + 41;
        assert_eq!(u64::from(bytes[seq_at]), run.event(i).seq());
        let mut long_seq = bytes[..seq_at].to_vec();
        long_seq.extend_from_slice(&[0x18, bytes[seq_at]]);
        long_seq.extend_from_slice(&bytes[seq_at + 1..]);
        case("non-minimal seq", i, long_seq);
        // Another version.
        let mut version = bytes.clone();
        version[1] = 0x03;
        case("version 3", i, version);
    }
    // Refs out of order: swap the two links of an event with two refs.
    let i = 9;
    let refs = run.event(i).refs().to_vec();
    assert_eq!(refs.len(), 2);
    let (l0, l1) = (
        cbor::to_vec(&cbor::Link(refs[0])),
        cbor::to_vec(&cbor::Link(refs[1])),
    );
    let bytes = raw[i].1.clone();
    // The refs array: the two links one after the other (the `at` may hold one too).
    let p0 = find(&bytes, &[l0.clone(), l1.clone()].concat());
    let p1 = p0 + l0.len();
    let mut swapped = bytes[..p0].to_vec();
    swapped.extend_from_slice(&l1);
    swapped.extend_from_slice(&l0);
    swapped.extend_from_slice(&bytes[p1 + l1.len()..]);
    case("refs not increasing", i, swapped);
    assert_all(failures);
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("found")
}

// ---------------------------------------------------------------- key

#[test]
fn key_an_event_signed_by_a_foreign_valid_key_is_refused() {
    let mut failures = Vec::new();
    for (name, run) in runs() {
        for i in 0..run.events.len() {
            let tampered = run.rebuild(|j, _| {
                if j == i {
                    Edit::SignForeign
                } else {
                    Edit::Keep
                }
            });
            // Only the one event changed creator; its signature is valid.
            let event = Event::decode(&tampered.raw[i].1).unwrap();
            assert_eq!(event.verify_signature(), Ok(()));
            failures.extend(
                run.check(
                    &format!("{name} event {i}: signed by a foreign key"),
                    &tampered.raw,
                    "key",
                    Some(tampered.cid(i)),
                )
                .err(),
            );
        }
    }
    assert_all(failures);
}

#[test]
fn log_id_a_slice_manifest_made_by_a_foreign_key_for_itself_is_refused() {
    // A foreign key makes its own manifest for slice `a` (right parent, name and
    // block, listing only itself as writer and as creator) and writes `a`'s log with
    // it, signing the log's first event as the manifest's creator.
    let run = Run::record(SMALL);
    let a = run.log_named("a");
    let genuine = &run.slices[&run.cid(2)];
    let forged = Manifest::new_slice(
        genuine.program(),
        "a".into(),
        vec![foreign_key().public_key()],
        foreign_key().public_key(),
        run.cid(2),
    );
    let forged_cid = run.store_manifest(&forged);
    let tampered = run.rebuild(|j, body| {
        if run.plan.events[j].log == a {
            body.log = forged_cid;
            Edit::SignForeign
        } else {
            Edit::Keep
        }
    });
    let first = tampered.cid(run.at(a, 0));
    // The manifest is not one of this program's: only a writer of the announcing
    // deploy's log makes a slice's manifest.
    run.check(
        "a's log under a foreign key's manifest",
        &tampered.raw,
        "log-id",
        Some(first),
    )
    .unwrap();
}

/// `SMALL` with slice `a`'s manifest listing a foreign key besides the program's
/// (its creator), and `a`'s event at `seq` signed by the foreign key (`None`: none
/// is); returns that event's plan index and the rebuilt run.
fn a_with_a_second_key(run: &Run, seq: Option<u64>) -> (usize, Tampered) {
    let a = run.log_named("a");
    let genuine = &run.slices[&run.cid(2)];
    let both = Manifest::new_slice(
        genuine.program(),
        "a".into(),
        vec![run.key.public_key(), foreign_key().public_key()],
        run.key.public_key(),
        run.cid(2),
    );
    let both_cid = run.store_manifest(&both);
    let foreign = seq.map(|seq| run.at(a, seq));
    let rebuilt = run.rebuild(|j, body| {
        if run.plan.events[j].log == a {
            body.log = both_cid;
        }
        if Some(j) == foreign {
            Edit::SignForeign
        } else {
            Edit::Keep
        }
    });
    (foreign.unwrap_or(0), rebuilt)
}

#[test]
fn host_an_event_signed_by_a_listed_key_that_is_not_the_logs_host_is_refused() {
    // The manifest lists a second key, but the log's host (its creator, until the
    // ambient moves into another host's ambient) is the only one that writes it:
    // `spec/network.md` §8.
    let run = Run::record(SMALL);
    let (body, tampered) = a_with_a_second_key(&run, Some(1));
    run.check(
        "a's body deploy signed by a listed key that is not a's host",
        &tampered.raw,
        "host",
        Some(tampered.cid(body)),
    )
    .unwrap();
}

#[test]
fn log_id_a_slice_log_whose_first_event_is_not_signed_by_the_manifests_creator_is_refused() {
    // A slice manifest has no signature: the signature of its log's first event (the
    // `create`, by the manifest's creator) covers it. Here the manifest names the
    // program's key as creator (a writer of the announcing deploy's log) and lists a
    // foreign key too, which signs the `create`: the foreign key is allowed to write
    // the log (rule `key` holds), but no writer of the parent vouched for the manifest.
    let run = Run::record(SMALL);
    let (create, tampered) = a_with_a_second_key(&run, Some(0));
    run.check(
        "a's create signed by a listed key that is not the manifest's creator",
        &tampered.raw,
        "log-id",
        Some(tampered.cid(create)),
    )
    .unwrap();
    // The same manifest with the create signed by its creator is accepted.
    let (_, honest) = a_with_a_second_key(&run, None);
    verify_events(&run.source(), run.program, &honest.raw).expect("a valid run");
}

// ---------------------------------------------------------------- log-id

#[test]
fn log_id_an_event_in_a_log_that_is_not_of_this_program_is_refused() {
    let run = Run::record(SMALL);
    let other = Run::record_with_nonce(SMALL, [8; 16]);
    assert_ne!(other.program, run.program);
    // Manifests that are not of this program's logs:
    let second_root = Manifest::new_root(
        run.plan.logs[0].block,
        None,
        vec![run.key.public_key()],
        &run.key,
        [6; 16],
        1,
    );
    let a_block = run.plan.logs[run.log_named("a")].block;
    let fakes = [
        ("a CID that names nothing", Cid::of(b"no such manifest")),
        (
            "a second root manifest of the same block",
            run.store_manifest(&second_root),
        ),
        (
            "a slice manifest whose parent announces nothing (the root's create)",
            run.store_manifest(&Manifest::new_slice(
                a_block,
                "a".into(),
                vec![run.key.public_key()],
                run.key.public_key(),
                run.cid(0),
            )),
        ),
        (
            "a slice manifest whose parent is an event of another program",
            run.store_manifest(&Manifest::new_slice(
                a_block,
                "a".into(),
                vec![run.key.public_key()],
                run.key.public_key(),
                other.cid(2),
            )),
        ),
        ("another program's slice log", other.logs[1]),
        ("another program's root log", other.logs[0]),
        ("this program's address", run.program),
        ("an event's CID", run.cid(3)),
    ];
    let mut failures = Vec::new();
    for (what, fake) in fakes {
        for i in 0..run.events.len() {
            let tampered = run.rebuild(|j, body| {
                if j == i {
                    body.log = fake;
                }
                Edit::Keep
            });
            let case = format!("event {i} in {what}");
            // An event moved out leaves a gap that a slice announcement after it
            // (or the moved announcement itself) may show first: refused as
            // following a missing event.
            match run.outcome(&tampered.raw) {
                Ok(v) if v.rule == "missing-event" && v.detail.contains("announcing deploy") => {}
                _ => failures.extend(
                    run.check(&case, &tampered.raw, "log-id", Some(tampered.cid(i)))
                        .err(),
                ),
            }
        }
    }
    assert_all(failures);
}

#[test]
fn log_id_a_slice_manifest_naming_another_ambient_or_block_is_refused() {
    let run = Run::record(SMALL);
    let a = run.log_named("a");
    let b = run.log_named("b");
    let genuine = &run.slices[&run.cid(2)];
    let cases = [
        (
            "another name",
            Manifest::new_slice(
                genuine.program(),
                "z".into(),
                genuine.keys().to_vec(),
                run.key.public_key(),
                run.cid(2),
            ),
        ),
        (
            "another block (b's)",
            Manifest::new_slice(
                run.plan.logs[b].block,
                "a".into(),
                genuine.keys().to_vec(),
                run.key.public_key(),
                run.cid(2),
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (what, manifest) in cases {
        let fake = run.store_manifest(&manifest);
        let tampered = run.rebuild(|j, body| {
            if run.plan.events[j].log == a {
                body.log = fake;
            }
            Edit::Keep
        });
        failures.extend(
            run.check(
                &format!("a's log under a manifest with {what}"),
                &tampered.raw,
                "log-id",
                Some(tampered.cid(run.at(a, 0))),
            )
            .err(),
        );
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- missing-event

#[test]
fn missing_event_an_event_referred_to_is_refused() {
    // Any one event that another refers to, left out: the first referrer (by CID) is
    // refused, naming the missing event and, when that one was its log's previous
    // event, the seq its log lacks.
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let raw = run.raw();
        for dropped in run.referred() {
            let set: Raw = raw
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != dropped)
                .map(|(_, e)| e.clone())
                .collect();
            let case = format!("{name}: event {dropped} missing");
            let missing = run.cid(dropped);
            let (log, seq) = (run.event(dropped).log(), run.event(dropped).seq());
            match run.outcome(&set) {
                Ok(v) if v.rule == "missing-event" && v.detail.contains(&missing.to_string()) => {
                    let referrer = run.event(run.index_of(v.event));
                    let gap = format!("{log} has no event at seq {seq}");
                    if referrer.log() == log && !v.detail.contains(&gap) {
                        failures.push(format!("{case}: the detail does not say `{gap}`: {v}"));
                    }
                    if !referrer.refs().contains(&missing) {
                        failures.push(format!("{case}: {} does not refer to it", v.event));
                    }
                }
                other => failures.push(format!(
                    "{case}: expected `missing-event` naming {missing}, got {other:?}"
                )),
            }
        }
    }
    assert_all(failures);
}

#[test]
fn missing_event_a_ref_to_an_unknown_event_is_refused() {
    let run = Run::record(SMALL);
    let unknown = Cid::of(b"an event nobody has");
    let mut failures = Vec::new();
    for i in 1..run.events.len() {
        let tampered = run.rebuild(|j, body| {
            if j == i {
                body.refs.push(unknown);
            }
            Edit::Keep
        });
        failures.extend(
            run.check(
                &format!("event {i} refers to an unknown event"),
                &tampered.raw,
                "missing-event",
                Some(tampered.cid(i)),
            )
            .err(),
        );
    }
    assert_all(failures);
}

/// The run without the events `dropped` picks (by plan index) and every event that
/// depends on one of them (refers to it, or names it as the body `deploy` of its
/// instruction): a set closed under refs, as a crash or a lost log leaves it.
fn without_dependents(run: &Run, dropped: impl Fn(usize) -> bool) -> (Raw, Vec<usize>) {
    let raw = run.raw();
    let mut gone: Vec<usize> = Vec::new();
    let mut is_gone = vec![false; run.events.len()];
    let mut log_gone: HashSet<Cid> = HashSet::new();
    for i in 0..run.events.len() {
        let event = run.event(i);
        // What follows a dropped event in its log goes too (a slice announcement
        // does not refer to the event before it).
        let depends = log_gone.contains(&event.log())
            || event
                .refs()
                .iter()
                .chain(event.at().map(|(anchor, _)| anchor).as_ref())
                .any(|r| is_gone[run.index_of(*r)]);
        if dropped(i) || depends {
            is_gone[i] = true;
            gone.push(i);
            log_gone.insert(event.log());
        }
    }
    let kept = raw
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !is_gone[*i])
        .map(|(_, e)| e)
        .collect();
    (kept, gone)
}

#[test]
fn missing_event_a_body_deploy_after_its_create_is_refused() {
    // A slice's body `deploy` (and what depends on it) missing: its `create` is
    // refused; for the root, the program's `create`.
    let mut failures = Vec::new();
    for (name, run) in runs() {
        for log in 0..run.logs.len() {
            let (create, body) = (run.at(log, 0), run.at(log, 1));
            let (set, _) = without_dependents(&run, |i| i == body);
            let case = format!("{name}: the body deploy of log {log} missing");
            match run.outcome(&set) {
                Ok(v)
                    if v.rule == "missing-event"
                        && v.event == run.cid(create)
                        && v.detail
                            .contains(&format!("seq 1 of log {}", run.logs[log])) => {}
                other => failures.push(format!(
                    "{case}: expected `missing-event` at its create, got {other:?}"
                )),
            }
        }
    }
    assert_all(failures);
}

#[test]
fn missing_event_the_announcing_deploy_of_an_enabled_instruction_is_refused() {
    // An announcing `deploy` missing (with what follows it in its log and the slice
    // it starts): the instruction is enabled, so the body `deploy` that started its
    // block instance (the one of a dropped announcement) is refused.
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let announcing: Vec<usize> = (0..run.events.len())
            .filter(|&i| {
                run.event(i).op().opcode() == Opcode::Deploy && run.event(i).at().is_some()
            })
            .collect();
        for &announce in &announcing {
            let (set, gone) = without_dependents(&run, |i| i == announce);
            let anchors: Vec<Cid> = gone
                .iter()
                .filter(|i| announcing.contains(i))
                .filter_map(|&i| run.event(i).at().map(|(anchor, _)| anchor))
                .collect();
            let case = format!("{name}: announcing deploy {announce} missing");
            match run.outcome(&set) {
                Ok(v) if v.rule == "missing-event" && anchors.contains(&v.event) => {}
                other => failures.push(format!(
                    "{case}: expected `missing-event` at one of {anchors:?}, got {other:?}"
                )),
            }
        }
    }
    assert_all(failures);
}

#[test]
fn missing_event_the_create_of_an_announced_primitive_is_refused() {
    // A primitive's `create` (in its holder's log, after the announcing `deploy`)
    // missing: the announcing deploy is refused, naming the seq.
    let run = Run::record(&corpus_file(MONOID));
    let creates: Vec<usize> = (0..run.events.len())
        .filter(|&i| run.event(i).op().opcode() == Opcode::Create && run.event(i).seq() > 0)
        .collect();
    assert!(!creates.is_empty(), "the monoid has primitives");
    let mut failures = Vec::new();
    for create in creates {
        let (set, _) = without_dependents(&run, |i| i == create);
        let announce = run
            .event(create)
            .refs()
            .iter()
            .copied()
            .find(|r| run.event(run.index_of(*r)).op().opcode() == Opcode::Deploy);
        let seq = run.event(create).seq();
        match run.outcome(&set) {
            Ok(v)
                if v.rule == "missing-event"
                    && Some(v.event) == announce
                    && v.detail.contains(&format!("due at seq {seq}")) => {}
            other => failures.push(format!(
                "the primitive create {create} missing: expected `missing-event` at its announcing deploy, got {other:?}"
            )),
        }
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- missing-log

#[test]
fn missing_log_an_announced_slice_without_its_log_is_refused() {
    // A slice's whole log missing (with what depends on it): its announcing deploy is
    // refused, naming the slice. This is what one flipped byte of a store did to a
    // run that `amb verify` then passed with the same normal form (issue 11).
    let mut failures = Vec::new();
    for (name, run) in runs() {
        for log in 1..run.logs.len() {
            let announce = run.plan.logs[log].parent.expect("a slice");
            let (set, _) = without_dependents(&run, |i| run.plan.events[i].log == log);
            let slice = run.plan.logs[log].name.clone().expect("a slice has a name");
            let case = format!("{name}: the log of {slice} ({log}) missing");
            let id = run.logs[log];
            match run.outcome(&set) {
                Ok(v)
                    if v.rule == "missing-log"
                        && v.event == run.cid(announce)
                        && v.detail.contains(&format!("the slice {slice} "))
                        && v.detail.contains(&format!("its manifest, log id {id}, is stored")) => {}
                other => failures.push(format!(
                    "{case}: expected `missing-log` at its announcing deploy naming {id}, got {other:?}"
                )),
            }
            // Its manifest gone too: the id it would have is named all the same.
            let source = Without {
                inner: run.source(),
                hidden: id,
            };
            match verify_events(&source, run.program, &set) {
                Err(VerifyError::Violation(v))
                    if v.rule == "missing-log"
                        && v.detail
                            .contains(&format!("nor is its manifest (log id {id})")) => {}
                other => failures.push(format!("{case}, its manifest too: got {other:?}")),
            }
        }
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- refs-resolve

/// A source that has every block and manifest of the store but one.
struct Without<'a> {
    inner: StoreSource<'a>,
    hidden: Cid,
}

impl Source for Without<'_> {
    fn block(&self, cid: &Cid) -> Option<std::sync::Arc<Block>> {
        (*cid != self.hidden)
            .then(|| self.inner.block(cid))
            .flatten()
    }

    fn manifest(&self, cid: &Cid) -> Option<std::sync::Arc<Manifest>> {
        (*cid != self.hidden)
            .then(|| self.inner.manifest(cid))
            .flatten()
    }
}

#[test]
fn refs_resolve_a_block_that_is_not_available_is_refused() {
    // Every slice's block withheld in turn: the first event that needs it (the
    // announcing deploy) is refused.
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let raw = run.raw();
        for log in 1..run.logs.len() {
            let source = Without {
                inner: run.source(),
                hidden: run.plan.logs[log].block,
            };
            let case = format!("{name}: the block of log {log} withheld");
            match verify_events(&source, run.program, &raw) {
                Err(VerifyError::Violation(v))
                    if v.rule == "refs-resolve" && v.detail.contains("is not available") => {}
                other => failures.push(format!("{case}: expected `refs-resolve`, got {other:?}")),
            }
        }
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- completeness

#[test]
fn a_prefix_of_whole_steps_is_incomplete_and_says_where_it_stops() {
    // What a crash leaves: the events before a step's first half. Each such prefix
    // verifies as incomplete (and `verify_events` refuses it as such), stopping
    // after the steps it holds; the whole run is complete.
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let raw = run.raw();
        let firsts = (0..run.events.len()).filter(|&i| {
            matches!(
                run.event(i).op().opcode(),
                Opcode::In | Opcode::Out | Opcode::OpenCo
            )
        });
        for cut in firsts {
            let steps = (0..cut)
                .filter(|&i| amb_vm::verify::is_second_half(run.event(i).op().opcode()))
                .count() as u64;
            let case = format!("{name}: the first {cut} events ({steps} steps)");
            match verify_events_prefix(&run.source(), run.program, &raw[..cut]) {
                Ok(verified) => match verified.completeness {
                    Completeness::Incomplete(stop)
                        if stop.steps == steps
                            && stop.events == cut as u64
                            && raw[..cut].iter().any(|(c, _)| *c == stop.event) => {}
                    other => failures.push(format!("{case}: {other:?}")),
                },
                Err(e) => failures.push(format!("{case}: refused: {e}")),
            }
            match verify_events(&run.source(), run.program, &raw[..cut]) {
                Err(VerifyError::Incomplete(stop)) if stop.steps == steps => {}
                other => failures.push(format!(
                    "{case}: verify_events: expected Incomplete, got {:?}",
                    other.map(|v| v.completeness)
                )),
            }
        }
        let whole = verify_events_prefix(&run.source(), run.program, &raw).unwrap();
        assert_eq!(whole.completeness, Completeness::Complete, "{name}");
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- order

#[test]
fn order_a_skipped_seq_is_refused() {
    let mut failures = Vec::new();
    for (name, run) in runs() {
        for log in 0..run.logs.len() {
            let last = run.last_of(log);
            let tampered = run.rebuild(|j, body| {
                if j == last {
                    body.seq += 1;
                }
                Edit::Keep
            });
            // A slice announcement does not refer to the event before it: one seq
            // further, it follows a missing event.
            let rule = if run.is_slice_announcement(last) {
                "missing-event"
            } else {
                "order"
            };
            failures.extend(
                run.check(
                    &format!("{name}: log {log}'s last event one seq further"),
                    &tampered.raw,
                    rule,
                    Some(tampered.cid(last)),
                )
                .err(),
            );
        }
    }
    assert_all(failures);
}

#[test]
fn order_two_events_of_a_log_swapped_is_refused() {
    // Event k and its log successor exchange their seqs (refs unchanged): the first
    // to be replayed now claims the later position.
    let mut failures = Vec::new();
    for (name, run) in runs() {
        for k in 0..run.events.len() {
            let planned = &run.plan.events[k];
            let Some(next) = run
                .plan
                .events
                .iter()
                .position(|e| e.log == planned.log && e.seq == planned.seq + 1)
            else {
                continue;
            };
            let tampered = run.rebuild(|j, body| {
                if j == k {
                    body.seq += 1;
                } else if j == next {
                    body.seq -= 1;
                }
                Edit::Keep
            });
            let case = format!("{name}: events {k} and {next} swap seqs");
            if run.is_slice_announcement(k) && run.is_slice_announcement(next) {
                // Two slice announcements in a row are concurrent (§4): either
                // order is a valid log, with the same run.
                match verify_events(&run.source(), run.program, &tampered.raw) {
                    Ok(verified)
                        if amb_syntax::to_compact_string(&verified.term)
                            == amb_syntax::to_compact_string(&run.plan.final_term) => {}
                    other => failures.push(format!("{case}: expected a valid log, got {other:?}")),
                }
                continue;
            }
            failures.extend(
                run.check(&case, &tampered.raw, "order", Some(tampered.cid(k)))
                    .err(),
            );
        }
    }
    assert_all(failures);
}

#[test]
fn order_an_extra_ref_is_refused() {
    // Every event but the first two also refers to the root's create, which is in
    // its causal past but not among the refs of §4.
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let create = run.cid(0);
        for i in 2..run.events.len() {
            let tampered = run.rebuild(|j, body| {
                if j == i {
                    body.refs.push(create);
                }
                Edit::Keep
            });
            failures.extend(
                run.check(
                    &format!("{name}: event {i} also refers to the root's create"),
                    &tampered.raw,
                    "order",
                    Some(tampered.cid(i)),
                )
                .err(),
            );
        }
    }
    assert_all(failures);
}

#[test]
fn order_a_missing_ref_to_the_previous_event_is_refused() {
    // Second halves whose other ref (the first half) already follows the previous
    // event of their log: dropping the ref to that previous event changes no order.
    let run = Run::record(SMALL);
    let mut failures = Vec::new();
    for (i, previous) in [(10, 8), (11, 9)] {
        let drop = run.cid(previous);
        let tampered = run.without_ref(i, drop);
        failures.extend(
            run.check(
                &format!("event {i} without its ref to event {previous}"),
                &tampered.raw,
                "order",
                Some(tampered.cid(i)),
            )
            .err(),
        );
    }
    assert_all(failures);
}

#[test]
fn order_a_missing_completion_ref_is_refused() {
    // `a#3 open_` must refer to `b#2 in_ a`, the second half of the step that moved
    // `a` (spec/events.md §4, completion). Without that ref it still comes after
    // `a#2 in b`, its log's previous event.
    let run = Run::record(SMALL);
    let completion = run.cid(9);
    let tampered = run.without_ref(10, completion);
    run.check(
        "event 10 without its completion ref to event 9",
        &tampered.raw,
        "order",
        Some(tampered.cid(10)),
    )
    .unwrap();
}

/// A deployment of `source` whose `tamper`ed event set (the set, the tampered event,
/// and the event it no longer refers to) the verifier's stable order replays with the
/// tampered event after the one it dropped: the case a completion ref is for (in the
/// other order the step is simply not a redex yet). The stable order follows CIDs,
/// which differ with each deployment, so this tries the nonces 0, 1, 2, … in turn.
fn deployment_placing_after(
    source: &str,
    tamper: impl Fn(&Run) -> (Tampered, usize, usize),
) -> (Run, Tampered, usize) {
    for nonce in 0..64u8 {
        let run = Run::record_with_nonce(source, [nonce; 16]);
        let (tampered, late, early) = tamper(&run);
        let events = tampered
            .raw
            .iter()
            .map(|(cid, bytes)| (*cid, Event::decode(bytes).unwrap()))
            .collect();
        let order = stable_order(&events);
        let at = |i: usize| order.iter().position(|c| *c == tampered.cid(i));
        if at(late) > at(early) {
            return (run, tampered, late);
        }
    }
    panic!("no deployment of {source} replays the tampered event after the dropped one");
}

/// The index of the first event of the log of `name` with `opcode`.
fn event_of(run: &Run, name: &str, opcode: Opcode) -> usize {
    let log = run.log_named(name);
    (0..run.events.len())
        .find(|&i| run.plan.events[i].log == log && run.event(i).op().opcode() == opcode)
        .expect("such an event")
}

#[test]
fn order_a_missing_completion_ref_of_an_ambient_moved_by_open_is_refused() {
    // The root opens `b`; `b`'s child `c` now sits in the root, where `d` enters it.
    // `c`'s next event, `in_ d`, must refer to the root's `open b` (§4, completion:
    // "the children of an opened ambient"). Without that ref, replaying `in_ d`
    // before `open b` is a topological order, in which `d` and `c` are no siblings.
    // The `open` refers to `c`'s last event, which fixes which of `c`'s events is
    // the next one.
    let (run, tampered, in_co) =
        deployment_placing_after("open b | b[open_ | c[in_ d]] | d[in c]", |run| {
            let open = event_of(run, "root", Opcode::Open);
            let in_co = event_of(run, "c", Opcode::InCo);
            let completion = run.cid(open);
            assert!(run.event(in_co).refs().contains(&completion));
            (run.without_ref(in_co, completion), in_co, open)
        });
    run.check(
        "c's `in_ d` without its completion ref to the root's `open b`",
        &tampered.raw,
        "order",
        Some(tampered.cid(in_co)),
    )
    .unwrap();
}

#[test]
fn order_a_missing_nested_head_ref_of_an_in_is_refused() {
    // `a` enters `d`: its `in d` refers to the last event of every log nested in `a`
    // (§4), here `b`'s and `c`'s.
    let run = Run::record("a[b[c[]] | in d] | d[in_ a]");
    let enter = event_of(&run, "a", Opcode::In);
    let mut failures = Vec::new();
    for nested in ["b", "c"] {
        let head = run.cid(run.last_of(run.log_named(nested)));
        assert!(run.event(enter).refs().contains(&head));
        let tampered = run.without_ref(enter, head);
        failures.extend(
            run.check(
                &format!("a's `in d` without its ref to {nested}'s last event"),
                &tampered.raw,
                "order",
                Some(tampered.cid(enter)),
            )
            .err(),
        );
    }
    assert_all(failures);
}

#[test]
fn order_a_missing_child_head_ref_of_an_open_is_refused() {
    // The root's `open b` refers to the last event of `c`'s log, `b`'s child (§4),
    // so that `c`'s next event, which must refer to the `open`, is fixed.
    let run = Run::record("open b | b[open_ | c[in_ d]] | d[in c]");
    let open = event_of(&run, "root", Opcode::Open);
    let c = run.log_named("c");
    let head = run
        .event(open)
        .refs()
        .iter()
        .copied()
        .find(|r| run.plan.events[run.index_of(*r)].log == c)
        .expect("the open refers to c's log");
    let tampered = run.without_ref(open, head);
    run.check(
        "the root's `open b` without its ref to c's last event",
        &tampered.raw,
        "order",
        Some(tampered.cid(open)),
    )
    .unwrap();
}

#[test]
fn order_a_missing_ref_to_the_step_that_moved_a_primitive_out_is_refused() {
    // `return` leaves `b` into `arg`, a primitive whose events go to another log:
    // the first event about `return` there (the `deploy` of `n`) refers to `b`'s
    // `out_` (§4, completion).
    let (run, tampered, about) =
        deployment_placing_after("arg[b[out_ | return[out b.n[]]] | in a] | a[in_]", |run| {
            let out_co = event_of(run, "b", Opcode::OutCo);
            let completion = run.cid(out_co);
            let b = run.log_named("b");
            let about = (0..run.events.len())
                .find(|&i| run.plan.events[i].log != b && run.event(i).refs().contains(&completion))
                .expect("an event about return refers to the out_");
            assert_eq!(run.event(about).op().opcode(), Opcode::Deploy);
            (run.without_ref(about, completion), about, out_co)
        });
    run.check(
        "the deploy inside return without its ref to b's out_",
        &tampered.raw,
        "order",
        Some(tampered.cid(about)),
    )
    .unwrap();
}

// ---------------------------------------------------------------- bytecode

#[test]
fn bytecode_an_op_or_at_that_is_not_the_instruction_is_refused() {
    let run = Run::record(SMALL);
    let b_block = run.plan.logs[run.log_named("b")].block;
    type Change<'a> = Box<dyn Fn(&mut UnsignedEvent) + 'a>;
    let cases: Vec<(&str, usize, Change<'_>)> = vec![
        (
            "`in b` recorded as `in c`",
            8,
            Box::new(|b| b.op = Op::new(Opcode::In, Target::Name("c".into())).unwrap()),
        ),
        (
            "`in b` recorded as `out b`",
            8,
            Box::new(|b| b.op = Op::new(Opcode::Out, Target::Name("b".into())).unwrap()),
        ),
        (
            "`in_ a` recorded as `in_` (wildcard)",
            9,
            Box::new(|b| b.op = Op::new(Opcode::InCo, Target::None).unwrap()),
        ),
        (
            "`open a` recorded as `open b`",
            11,
            Box::new(|b| b.op = Op::new(Opcode::Open, Target::Name("b".into())).unwrap()),
        ),
        (
            "`in b` at the index of another instruction",
            8,
            Box::new(|b| b.at = b.at.map(|(d, i)| (d, i + 1))),
        ),
        (
            "`in b` at an index past the block",
            8,
            Box::new(|b| b.at = b.at.map(|(d, _)| (d, 99))),
        ),
        (
            "`in b` at an event that started no block instance",
            8,
            Box::new(|b| b.at = b.at.map(|(_, i)| (run.cid(3), i))),
        ),
        (
            "a `create` naming another ambient",
            3,
            Box::new(|b| b.op = Op::new(Opcode::Create, Target::Name("z".into())).unwrap()),
        ),
        (
            "a body `deploy` of another block",
            4,
            Box::new(move |b| b.op = Op::deploy(b_block)),
        ),
        (
            "an announcing `deploy` of another block",
            2,
            Box::new(move |b| b.op = Op::deploy(b_block)),
        ),
        (
            "a capability event with no `at`",
            8,
            Box::new(|b| b.at = None),
        ),
    ];
    let mut failures = Vec::new();
    for (what, i, change) in cases {
        let tampered = run.rebuild(|j, body| {
            if j == i {
                change(body);
            }
            Edit::Keep
        });
        failures.extend(
            run.check(what, &tampered.raw, "bytecode", Some(tampered.cid(i)))
                .err(),
        );
    }
    assert_all(failures);
}

#[test]
fn bytecode_an_instruction_that_is_not_enabled_is_refused() {
    // `a#2` records `open_` (a's instruction 2), which follows `in b`, not yet fired:
    // the op equals the instruction, but the instruction is not enabled (§7 bytecode:
    // "its prev fired in that instance").
    let run = Run::record(SMALL);
    let open_co = run.instruction(4, Opcode::OpenCo);
    let tampered = run.rebuild(|j, body| {
        if j == 8 {
            body.op = Op::new(Opcode::OpenCo, Target::Unused).unwrap();
            body.at = body.at.map(|(d, _)| (d, open_co));
        }
        Edit::Keep
    });
    run.check(
        "`open_` before the `in b` it follows",
        &tampered.raw,
        "bytecode",
        Some(tampered.cid(8)),
    )
    .unwrap();
}

// ---------------------------------------------------------------- reduction

#[test]
fn reduction_a_capability_consumed_twice_is_refused() {
    let run = Run::record(SMALL);
    let raw = run.raw();
    let a = run.log_named("a");
    let b = run.log_named("b");
    let mut failures = Vec::new();
    // `in b` again, in a's log after its last event (`open_`, whose step's second
    // half `open a` it refers to, as §4 asks).
    assert_eq!(run.last_of(a), 10);
    let again = run.signed(UnsignedEvent {
        log: run.logs[a],
        seq: 4,
        op: run.event(8).op().clone(),
        at: run.event(8).at(),
        refs: vec![run.cid(10), run.cid(11)],
        payload: None,
    });
    let mut set = raw.clone();
    set.push(again.clone());
    failures.extend(
        run.check("`in b` consumed twice", &set, "reduction", Some(again.0))
            .err(),
    );
    // `in_ a` again, in b's log after its last event, referring to the first `in b`.
    let again = run.signed(UnsignedEvent {
        log: run.logs[b],
        seq: 4,
        op: run.event(9).op().clone(),
        at: run.event(9).at(),
        refs: vec![run.cid(run.last_of(b)), run.cid(8)],
        payload: None,
    });
    let mut set = raw.clone();
    set.push(again.clone());
    failures.extend(
        run.check("`in_ a` consumed twice", &set, "reduction", Some(again.0))
            .err(),
    );
    assert_all(failures);
}

#[test]
fn reduction_a_step_that_is_not_a_redex_is_refused() {
    let mut failures = Vec::new();
    // `a` and `b` are not siblings: `in b` and `in_ a` are enabled but no redex.
    let run = Run::record("a[in b] | c[b[in_ a]]");
    assert_eq!(run.plan.steps, 0);
    let (a, b) = (run.log_named("a"), run.log_named("b"));
    let (a_body, b_body) = (run.at(a, 1), run.at(b, 1));
    let first = run.signed(UnsignedEvent {
        log: run.logs[a],
        seq: 2,
        op: Op::new(Opcode::In, Target::Name("b".into())).unwrap(),
        at: Some((run.cid(a_body), run.instruction(a_body, Opcode::In))),
        refs: vec![run.cid(run.last_of(a))],
        payload: None,
    });
    let second = run.signed(UnsignedEvent {
        log: run.logs[b],
        seq: 2,
        op: Op::new(Opcode::InCo, Target::Name("a".into())).unwrap(),
        at: Some((run.cid(b_body), run.instruction(b_body, Opcode::InCo))),
        refs: vec![run.cid(run.last_of(b)), first.0],
        payload: None,
    });
    let mut set = run.raw();
    set.extend([first, second.clone()]);
    failures.extend(
        run.check(
            "`in` between non-siblings",
            &set,
            "reduction",
            Some(second.0),
        )
        .err(),
    );

    // The root opens `b`, which is not its child.
    let run = Run::record("open b | c[b[open_]]");
    assert_eq!(run.plan.steps, 0);
    let b = run.log_named("b");
    let b_body = run.at(b, 1);
    let first = run.signed(UnsignedEvent {
        log: run.logs[b],
        seq: 2,
        op: Op::new(Opcode::OpenCo, Target::Unused).unwrap(),
        at: Some((run.cid(b_body), run.instruction(b_body, Opcode::OpenCo))),
        refs: vec![run.cid(run.last_of(b))],
        payload: None,
    });
    let root_last = run.last_of(0);
    let second = run.signed(UnsignedEvent {
        log: run.logs[0],
        seq: run.event(root_last).seq() + 1,
        op: Op::new(Opcode::Open, Target::Name("b".into())).unwrap(),
        at: Some((run.cid(1), run.instruction(1, Opcode::Open))),
        refs: vec![run.cid(root_last), first.0],
        payload: None,
    });
    let mut set = run.raw();
    set.extend([first, second.clone()]);
    failures.extend(
        run.check("`open` of a grandchild", &set, "reduction", Some(second.0))
            .err(),
    );
    assert_all(failures);
}

// ---------------------------------------------------------------- duality

#[test]
fn duality_a_capability_without_its_co_capability_is_refused() {
    let run = Run::record(SMALL);
    let raw = run.raw();
    let mut failures = Vec::new();
    // The last step without its second half: `open_` is left alone.
    let set: Raw = raw[..11].to_vec();
    failures.extend(
        run.check(
            "the `open a` of the last step removed",
            &set,
            "duality",
            Some(run.cid(10)),
        )
        .err(),
    );
    // The first step without its second half, and everything after it in those logs.
    let set: Raw = raw[..9].to_vec();
    failures.extend(
        run.check(
            "the `in_ a` of the first step removed (and what follows)",
            &set,
            "duality",
            Some(run.cid(8)),
        )
        .err(),
    );
    // A capability event that no co-capability ever answers.
    let run = Run::record("a[in b] | c[b[in_ a]]");
    let a = run.log_named("a");
    let a_body = run.at(a, 1);
    let lone = run.signed(UnsignedEvent {
        log: run.logs[a],
        seq: 2,
        op: Op::new(Opcode::In, Target::Name("b".into())).unwrap(),
        at: Some((run.cid(a_body), run.instruction(a_body, Opcode::In))),
        refs: vec![run.cid(run.last_of(a))],
        payload: None,
    });
    let mut set = run.raw();
    set.push(lone.clone());
    failures.extend(
        run.check("a lone `in b`", &set, "duality", Some(lone.0))
            .err(),
    );
    assert_all(failures);
}

#[test]
fn duality_a_co_capability_that_does_not_refer_to_its_capability_is_refused() {
    let run = Run::record(SMALL);
    let mut failures = Vec::new();
    for (second, first) in [(9, 8), (11, 10)] {
        let drop = run.cid(first);
        let tampered = run.without_ref(second, drop);
        failures.extend(
            run.check(
                &format!("event {second} without its ref to event {first}"),
                &tampered.raw,
                "duality",
                Some(tampered.cid(second)),
            )
            .err(),
        );
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- fork

/// Event `i` with another payload: a different event at the same (log, seq).
fn twin_body(run: &Run, i: usize) -> UnsignedEvent {
    let mut body = run.event(i).body().clone();
    body.payload = match body.payload {
        Some(_) => None,
        None => Some(Cid::of(b"a different value")),
    };
    body
}

#[test]
fn fork_two_signed_events_at_one_position_are_refused() {
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let raw = run.raw();
        for i in 0..run.events.len() {
            // A different, validly signed event at the same (log, seq).
            let twin = run.signed(twin_body(&run, i));
            let mut set = raw.clone();
            set.push(twin.clone());
            let case = format!("{name} event {i} and a twin");
            match run.outcome(&set) {
                Ok(v)
                    if v.rule == "fork"
                        && (v.event == twin.0 || v.event == run.cid(i))
                        && v.detail.contains(&twin.0.to_string())
                        && v.detail.contains(&run.cid(i).to_string()) => {}
                other => failures.push(format!("{case}: expected `fork`, got {other:?}")),
            }
        }
    }
    assert_all(failures);
}

#[test]
fn fork_is_proven_only_by_two_valid_signatures() {
    // A twin whose signature is forged proves nothing: it is refused as `signature`,
    // whether it comes after the event it copies or before it (signatures are checked
    // in batches, and a fork waits for both of its signatures).
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let raw = run.raw();
        for i in 0..run.events.len() {
            let (_, mut bytes) = run.signed(twin_body(&run, i));
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            let twin = with_cid(bytes);
            let mut after = raw.clone();
            after.push(twin.clone());
            let mut before = vec![twin.clone()];
            before.extend(raw.iter().cloned());
            for (place, set) in [("after", after), ("before", before)] {
                let case = format!("{name} event {i}, a forged twin {place} it");
                failures.extend(run.check(&case, &set, "signature", Some(twin.0)).err());
            }
        }
    }
    assert_all(failures);
}

// ---------------------------------------------------------------- payload

#[test]
fn payload_on_an_event_that_is_not_its_logs_last_is_refused() {
    let mut failures = Vec::new();
    for (name, run) in runs() {
        let lasts: BTreeSet<usize> = (0..run.logs.len()).map(|l| run.last_of(l)).collect();
        for i in (0..run.events.len()).filter(|i| !lasts.contains(i)) {
            let tampered = run.rebuild(|j, body| {
                if j == i {
                    body.payload = Some(Cid::of(b"a value"));
                }
                Edit::Keep
            });
            failures.extend(
                run.check(
                    &format!("{name}: payload on event {i}, not its log's last"),
                    &tampered.raw,
                    "payload",
                    Some(tampered.cid(i)),
                )
                .err(),
            );
        }
    }
    assert_all(failures);
}

#[test]
fn payload_wrong_missing_or_extra_on_a_last_event_is_refused() {
    let mut failures = Vec::new();
    for (name, run) in runs() {
        for log in 0..run.logs.len() {
            let last = run.last_of(log);
            let tampered = run.rebuild(|j, body| {
                if j == last {
                    body.payload = match body.payload {
                        // Wrong CID, or missing.
                        Some(_) => Some(Cid::of(b"another value")),
                        // Present where the slice is not a value.
                        None => Some(Cid::of(b"a value")),
                    };
                }
                Edit::Keep
            });
            failures.extend(
                run.check(
                    &format!("{name}: log {log}'s last event with a wrong payload"),
                    &tampered.raw,
                    "payload",
                    Some(tampered.cid(last)),
                )
                .err(),
            );
            if run.event(last).payload().is_some() {
                let tampered = run.rebuild(|j, body| {
                    if j == last {
                        body.payload = None;
                    }
                    Edit::Keep
                });
                failures.extend(
                    run.check(
                        &format!("{name}: log {log}'s last event without its payload"),
                        &tampered.raw,
                        "payload",
                        Some(tampered.cid(last)),
                    )
                    .err(),
                );
            }
        }
    }
    assert_all(failures);
}
