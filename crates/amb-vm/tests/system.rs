//! The system interface (`spec/system.md`): programs that call `sys_` services,
//! reduced with their effects over a real redb store, with the limits and the
//! failure value.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use amb_engine::Limits;
use amb_log::{SigningKey, Store};
use amb_vm::{
    replay::Violation,
    system::{
        CheckedEffect, EffectLimits, EffectRecord, Failure, LocalServices, ReduceError, Service,
        SystemServices, Trust, check_effect, reduce, services_needed, term_of, value_block,
    },
    value::{Value, value_of},
};

/// A program whose ambient `x` calls `service` with `arg` (ROAM of a typed value),
/// with the service ambient the host requires.
fn calling(service: &str, arg: &str) -> String {
    format!(
        "x[call[out x.in {service}.open_|arg[{arg}]|return[open_.in x]]|out_ call.in_ {service}.open {service}] \
         | {service}[in_ call.open call.open return.open_]"
    )
}

struct Host {
    _dir: tempfile::TempDir,
    services: Arc<dyn SystemServices>,
}

fn host(configure: impl FnOnce(LocalServices) -> LocalServices) -> Host {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::create(dir.path().join("store.redb")).expect("store"));
    Host {
        _dir: dir,
        services: Arc::new(configure(LocalServices::new(store))),
    }
}

/// Reduces `program` for `scope` on `host`; returns the value `x` ends with and the
/// effects.
fn run(
    host: &Host,
    scope: &str,
    program: &str,
    limits: EffectLimits,
) -> Result<(Value, Vec<EffectRecord>), ReduceError> {
    let ast = amb_syntax::parse(program).expect("parses");
    let (term, effects) = reduce(&ast, &host.services, scope, Limits::default(), limits)?;
    let x = term.roots().next().expect("x is left");
    assert_eq!(
        term.roots().count(),
        1,
        "{}",
        amb_syntax::to_compact_string(&term)
    );
    let value = amb_vm::value::value_of_node(
        &term,
        term.children(Some(x)).next().expect("x holds the result"),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", amb_syntax::to_compact_string(&term)));
    Ok((value, effects))
}

fn ok(host: &Host, scope: &str, program: &str) -> (Value, Vec<EffectRecord>) {
    run(host, scope, program, EffectLimits::default()).expect("runs")
}

#[test]
fn a_hash_brings_in_blake3_of_the_canonical_encoding() {
    let host = host(|s| s);
    let (value, effects) = ok(&host, "p", &calling("sys_hash", "string[hello[]]"));
    // The canonical encoding of "hello" is its compact JSON form, quotes included.
    let expected = blake3::hash(b"\"hello\"");
    assert_eq!(value, Value::Bytes(expected.as_bytes().to_vec()));
    // The vector of spec/system.md §3.
    let spec = include_str!("../../../spec/system.md");
    assert!(
        spec.contains(&format!("`bytes[{}[]]`", expected.to_hex())),
        "spec/system.md gives another hash of \"hello\" than {}",
        expected.to_hex()
    );
    assert_eq!(effects.len(), 1);
    let effect = &effects[0];
    assert_eq!(effect.name, "sys_hash");
    assert_eq!(effect.argument, Some(Value::String("hello".into())));
    assert_eq!(effect.result, value);
    let hello = value_block(&Value::String("hello".into())).unwrap().0;
    assert_eq!(effect.args_cid, Some(hello));
    assert_eq!(effect.result_cid, value_block(&value).unwrap().0);
    assert_ne!(effect.args_cid, Some(effect.result_cid));
}

#[test]
fn a_value_put_is_got_back_by_its_program_only() {
    let host = host(|s| s);
    let stored = "tuple[0[string[\"a b\"[]]]|1[int[42[]]]]";
    let (cid, _) = ok(&host, "program-1", &calling("sys_put", stored));
    let Value::String(cid) = cid else {
        panic!("sys_put answers a CID as a string, not {cid}")
    };
    let expected = value_block(&Value::Tuple(vec![
        Value::String("a b".into()),
        Value::Int(42),
    ]));
    assert_eq!(cid, expected.unwrap().0.to_string());
    let get = calling("sys_get", &format!("string[{cid}[]]"));
    let (value, _) = ok(&host, "program-1", &get);
    assert_eq!(
        value,
        Value::Tuple(vec![Value::String("a b".into()), Value::Int(42)])
    );
    // Another program cannot read it through the store.
    let (other, _) = ok(&host, "program-2", &get);
    assert_eq!(other, Failure::NotFound.value());
}

#[test]
fn a_get_of_a_cid_nobody_holds_is_the_failure_value() {
    let host = host(|s| s);
    let nobody = value_block(&Value::String("never put".into())).unwrap().0;
    let (value, effects) = ok(
        &host,
        "p",
        &calling("sys_get", &format!("string[{nobody}[]]")),
    );
    assert_eq!(value, Value::Failure("not-found".into()));
    assert_eq!(effects[0].result, value);
    // Not a CID at all: a bad argument.
    let (value, _) = ok(&host, "p", &calling("sys_get", "string[hello[]]"));
    assert_eq!(value, Failure::BadArgument.value());
}

/// A host whose `get` asks peers that never answer.
struct Unanswered;

impl SystemServices for Unanswered {
    fn offered(&self) -> Vec<Service> {
        vec![Service::Get]
    }

    fn perform(&self, _: &str, _: Service, _: &Value) -> Result<Value, Failure> {
        std::thread::sleep(Duration::from_secs(30));
        Err(Failure::NotFound)
    }
}

#[test]
fn an_unanswered_get_ends_after_its_timeout_in_the_failure_value() {
    let host = Host {
        _dir: tempfile::tempdir().unwrap(),
        services: Arc::new(Unanswered),
    };
    let limits = EffectLimits {
        timeout: Duration::from_millis(200),
        ..EffectLimits::default()
    };
    let start = Instant::now();
    let nobody = value_block(&Value::Int(7)).unwrap().0;
    let (value, _) = run(
        &host,
        "p",
        &calling("sys_get", &format!("string[{nobody}[]]")),
        limits,
    )
    .expect("runs");
    let took = start.elapsed();
    assert_eq!(value, Value::Failure("timeout".into()));
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn random_bytes_and_time_are_brought_in_and_a_result_over_the_limit_is_refused() {
    let host = host(|s| s);
    let (value, effects) = ok(&host, "p", &calling("sys_random", "int[16[]]"));
    let Value::Bytes(bytes) = &value else {
        panic!("random bytes, not {value}")
    };
    assert_eq!(bytes.len(), 16);
    assert_eq!(effects[0].result, value);
    let (again, _) = ok(&host, "p", &calling("sys_random", "int[16[]]"));
    assert_ne!(again, value, "two draws of 16 random bytes");
    let (time, _) = ok(&host, "p", &calling("sys_time", "tuple[]"));
    let Value::Int(ms) = time else {
        panic!("a time in ms, not {time}")
    };
    assert!(ms > 1_700_000_000_000, "{ms}");
    let small = EffectLimits {
        max_result_bytes: 100,
        ..EffectLimits::default()
    };
    let (value, _) = run(&host, "p", &calling("sys_random", "int[64[]]"), small).unwrap();
    assert_eq!(value, Failure::TooLarge.value());
    let (value, _) = ok(&host, "p", &calling("sys_random", "int[2000[]]"));
    assert_eq!(value, Failure::BadArgument.value());
}

#[test]
fn untrusted_services_are_not_offered_by_a_host_without_them() {
    let host = host(LocalServices::deterministic_only);
    assert!(!host.services.offered().contains(&Service::Random));
    let (value, _) = ok(&host, "p", &calling("sys_random", "int[1[]]"));
    assert_eq!(value, Failure::NotOffered.value());
    let (value, _) = ok(&host, "p", &calling("sys_nothing", "int[1[]]"));
    assert_eq!(value, Failure::NotOffered.value());
}

#[test]
fn a_signature_is_checked_under_the_protocol_rule() {
    let host = host(|s| s);
    let key = SigningKey::from_seed(&[7; 32]);
    let public = key.public_key();
    let message = b"pay 5";
    let sig = key.sign_message(message);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let arg = |msg: &[u8]| {
        format!(
            "tuple[0[bytes[{}[]]]|1[bytes[{}[]]]|2[bytes[{}[]]]]",
            hex(public.as_bytes()),
            hex(msg),
            hex(sig.as_bytes())
        )
    };
    let (valid, _) = ok(&host, "p", &calling("sys_verify", &arg(message)));
    assert_eq!(valid, Value::Bool(true));
    let (forged, _) = ok(&host, "p", &calling("sys_verify", &arg(b"pay 6")));
    assert_eq!(forged, Value::Bool(false));
    let (bad, _) = ok(&host, "p", &calling("sys_verify", "int[1[]]"));
    assert_eq!(bad, Failure::BadArgument.value());
}

#[test]
fn the_services_a_program_needs_are_read_before_it_runs() {
    let program = amb_syntax::parse(format!(
        "{} | {} | plain[]",
        calling("sys_random", "int[1[]]"),
        calling("sys_hash", "int[1[]]").replace('x', "z")
    ))
    .unwrap();
    assert_eq!(services_needed(&program), ["sys_hash", "sys_random"]);
    assert!(services_needed(&amb_syntax::parse("a[in b]").unwrap()).is_empty());
}

#[test]
fn a_service_ambient_with_another_body_is_refused() {
    let host = host(|s| s);
    let fake = "x[open sys_hash] | sys_hash[open_|bytes[00[]]]";
    let err = run(&host, "p", fake, EffectLimits::default()).unwrap_err();
    assert!(err.to_string().contains("reserved-name"), "{err}");
}

#[test]
fn an_argument_that_is_not_a_value_brings_in_bad_argument() {
    let host = host(|s| s);
    let (value, effects) = ok(&host, "p", &calling("sys_hash", "notatype[]"));
    assert_eq!(value, Failure::BadArgument.value());
    assert_eq!(effects[0].args_cid, None);
}

#[test]
fn a_value_as_a_term_reads_back_as_itself() {
    let values = [
        Value::String(String::new()),
        Value::String("hello world\n\"q\"".into()),
        Value::Int(-9_223_372_036_854_775_808),
        Value::Float(0.1),
        Value::Float(-0.0),
        Value::Float(1e300),
        Value::Bool(false),
        Value::Bytes(vec![]),
        Value::Bytes(vec![0, 255, 16]),
        Value::Char('é'),
        Value::Tuple(vec![]),
        Value::Tuple(vec![Value::Int(1), Value::List(vec![Value::Bool(true)])]),
        Value::List((0..50).map(Value::Int).collect()),
        Value::Failure("not-found".into()),
    ];
    for value in values {
        let term = term_of(&value);
        let printed = amb_syntax::to_compact_string(&term);
        let reparsed = amb_syntax::parse(&printed).expect("prints as ROAM");
        assert_eq!(value_of(&reparsed).expect(&printed), value, "{printed}");
    }
}

/// A recorded effect checked without performing it: a log whose manifest lists
/// `writer`, the effect's blocks in `host`'s store.
struct Recorded {
    host: Host,
    store: Arc<Store>,
    manifest: amb_log::Manifest,
    key: SigningKey,
}

fn recorded() -> Recorded {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::create(dir.path().join("store.redb")).expect("store"));
    let key = SigningKey::from_seed(&[9; 32]);
    let manifest = amb_log::Manifest::new_slice(
        value_block(&Value::Int(0)).unwrap().0,
        "sys_hash".into(),
        vec![key.public_key()],
        key.public_key(),
        value_block(&Value::Int(1)).unwrap().0,
    );
    Recorded {
        host: Host {
            _dir: dir,
            services: Arc::new(LocalServices::new(Arc::clone(&store))),
        },
        store,
        manifest,
        key,
    }
}

impl Recorded {
    /// Runs `program`, stores its one effect's blocks and signs its event with `key`.
    fn effect(&self, program: &str, key: &SigningKey) -> (EffectRecord, amb_log::EffectEvent) {
        let (_, effects) = ok(&self.host, "p", program);
        let record = effects.into_iter().next().expect("one effect");
        self.store_blocks(&record.blocks().unwrap());
        let event = record
            .sign(self.manifest.cid(), 2, vec![], key)
            .expect("the argument is a value");
        (record, event)
    }

    fn store_blocks(&self, blocks: &[(amb_bytecode::Cid, Vec<u8>)]) {
        self.store
            .put_blocks(blocks.iter().map(|(c, b)| (*c, b.as_slice())))
            .unwrap();
    }

    /// The effect event `event` with another result (its blocks stored), re-signed.
    fn with_result(&self, event: &amb_log::EffectEvent, result: &Value) -> amb_log::EffectEvent {
        let (cid, blocks) = value_block(result).unwrap();
        self.store_blocks(&blocks);
        let mut body = event.body().clone();
        body.result = cid;
        amb_log::EffectEvent::sign(body, &self.key)
    }

    fn check(
        &self,
        event: &amb_log::EffectEvent,
        limits: EffectLimits,
    ) -> Result<CheckedEffect, Violation> {
        check_effect(
            event.cid(),
            event,
            &self.manifest,
            |c| self.store.get_block(*c).ok().flatten(),
            limits,
        )
    }
}

#[test]
fn a_recorded_hash_is_recomputed_and_a_forged_one_refused() {
    let r = recorded();
    let (record, event) = r.effect(&calling("sys_hash", "string[hello[]]"), &r.key);
    let checked = r.check(&event, EffectLimits::default()).expect("accepted");
    assert_eq!(checked.trust, Trust::Recomputed);
    assert_eq!(checked.result, record.result);
    let forged = r.with_result(&event, &Value::Bytes(vec![0; 32]));
    let refused = r.check(&forged, EffectLimits::default()).unwrap_err();
    assert_eq!((refused.rule, refused.event), ("effect", forged.cid()));
    assert!(refused.detail.contains("sys_hash"), "{refused}");
}

#[test]
fn a_get_answered_with_another_block_than_the_cid_asked_for_is_refused() {
    let r = recorded();
    let (_, put) = r.effect(&calling("sys_put", "string[kept[]]"), &r.key);
    assert_eq!(
        r.check(&put, EffectLimits::default()).unwrap().trust,
        Trust::Recomputed
    );
    let asked = value_block(&Value::String("kept".into())).unwrap().0;
    let (record, get) = r.effect(&calling("sys_get", &format!("string[{asked}[]]")), &r.key);
    assert_eq!(record.result, Value::String("kept".into()));
    assert_eq!(
        r.check(&get, EffectLimits::default()).unwrap().trust,
        Trust::Recomputed
    );
    // The host answers other bytes than those the CID names.
    let other = r.with_result(&get, &Value::String("swapped".into()));
    let refused = r.check(&other, EffectLimits::default()).unwrap_err();
    assert_eq!(refused.rule, "effect");
    assert!(
        refused.detail.contains("do not hash to the CID asked for"),
        "{refused}"
    );
}

#[test]
fn an_effect_signed_by_a_key_not_allowed_to_write_the_log_is_refused() {
    let r = recorded();
    let stranger = SigningKey::from_seed(&[10; 32]);
    let (_, event) = r.effect(&calling("sys_hash", "int[1[]]"), &stranger);
    let refused = r.check(&event, EffectLimits::default()).unwrap_err();
    assert_eq!((refused.rule, refused.event), ("key", event.cid()));
    // A changed signature: the signature rule.
    let mut changed = event.encode();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    let changed = amb_log::EffectEvent::decode(&changed).unwrap();
    let refused = r.check(&changed, EffectLimits::default()).unwrap_err();
    assert_eq!(refused.rule, "signature");
}

#[test]
fn a_result_over_the_size_limit_is_refused_and_untrusted_results_are_listed_as_signed() {
    let r = recorded();
    let (record, event) = r.effect(&calling("sys_random", "int[200[]]"), &r.key);
    let checked = r.check(&event, EffectLimits::default()).unwrap();
    assert_eq!(
        checked.trust,
        Trust::Signed {
            creator: r.key.public_key()
        }
    );
    assert_eq!(
        checked.result, record.result,
        "the recorded value, not a new draw"
    );
    let small = EffectLimits {
        max_result_bytes: 100,
        ..EffectLimits::default()
    };
    let refused = r.check(&event, small).unwrap_err();
    assert_eq!(refused.rule, "effect");
    assert!(refused.detail.contains("max_result_bytes"), "{refused}");
}

#[test]
fn a_planned_run_has_each_effect_after_its_open_call_and_a_delegates_order_carries_it() {
    use amb_bytecode::{Cid, Opcode};
    use amb_vm::{
        grant::host_grant,
        order::{Order, Ref},
        plan::{Hosting, PlannedEffect, plan_hosted},
    };
    let host = host(|s| s);
    // sys_hash is delegated to host 1, so its order holds the effect.
    let hosting = Hosting {
        delegated: [("sys_hash".to_string(), 1)].into(),
    };
    let (ast, compiled, map, plan) = plan_example(&host, "sys_hash.amb", &hosting);
    let at: Vec<usize> = (0..plan.events.len())
        .filter(|&i| plan.events[i].effect.is_some())
        .collect();
    assert_eq!(at.len(), 1, "one effect");
    let (index, event) = (at[0], &plan.events[at[0]]);
    // In sys_hash's log, right after its `open call`, which it refers to.
    assert_eq!(plan.logs[event.log].name.as_deref(), Some("sys_hash"));
    let open = &plan.events[index - 1];
    assert_eq!((open.log, open.opcode), (event.log, Opcode::Open));
    assert_eq!(open.seq + 1, event.seq);
    assert!(event.refs.contains(&(index - 1)));
    assert_eq!((event.at, event.payload, event.writer), (None, None, 1));
    let hello = value_block(&Value::String("hello".into())).unwrap().0;
    let hash = Value::Bytes(blake3::hash(b"\"hello\"").as_bytes().to_vec());
    let (result, _) = value_block(&hash).unwrap();
    assert_eq!(
        event.effect,
        Some(PlannedEffect {
            service: "sys_hash".into(),
            args: hello,
            result
        })
    );
    // Both value blocks are stored with the run; the program's value is the hash
    // (x, holding it, is opened last).
    for cid in [hello, result] {
        assert!(plan.value_blocks.iter().any(|(c, _)| *c == cid), "{cid}");
    }
    assert_eq!(value_of(&plan.final_term).unwrap(), hash);
    // Without the host's services the call is an ordinary step: no effect, and
    // the service waits at its `open call`.
    let plain = plan_hosted(&ast, &compiled, &map, Limits::default(), &hosting).unwrap();
    assert!(plain.events.iter().all(|e| e.effect.is_none()));
    assert!(plain.events.len() < plan.events.len());
    // The delegate's order carries the effect, and its bytes read back to it.
    let keys: Vec<SigningKey> = (1..=2u8).map(|i| SigningKey::from_seed(&[i; 32])).collect();
    let hosts: Vec<_> = keys.iter().map(SigningKey::public_key).collect();
    let grant = host_grant(&plan, &compiled, 1);
    let projection = Order::project(&plan, &grant, Cid::of(b"root log"), hosts);
    let carried: Vec<_> = projection
        .order
        .events
        .iter()
        .filter(|e| e.effect.is_some())
        .collect();
    assert_eq!(carried.len(), 1);
    assert_eq!(carried[0].effect, event.effect);
    // It refers to the `open call`, which the delegate writes too.
    let open_at = projection
        .held
        .iter()
        .position(|&i| i == index - 1)
        .expect("the delegate holds sys_hash's open call");
    assert!(carried[0].refs.contains(&Ref::Held(open_at)));
    let bytes = projection.order.encode();
    assert_eq!(Order::decode(&bytes).as_ref(), Ok(&projection.order));

    // Recorded (one host), the effect is a signed effect event in sys_hash's log,
    // which checks without performing anything, and the log goes on after it.
    let (_, compiled, _, plan) = plan_example(&host, "sys_hash.amb", &Hosting::default());
    let index = plan.events.iter().position(|e| e.effect.is_some()).unwrap();
    let key = SigningKey::from_seed(&[5; 32]);
    let manifest = amb_log::Manifest::new_root(
        compiled.root,
        None,
        vec![key.public_key()],
        &key,
        [2; 16],
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("run.redb")).unwrap();
    let recorded = amb_vm::record::record(&plan, &compiled, &manifest, &key, &store).unwrap();
    assert_eq!(store.event_count().unwrap(), plan.events.len() as u64);
    let cid = recorded.event_cids[index];
    let stored = store
        .get_event(cid)
        .unwrap()
        .expect("the effect event is stored");
    let log = recorded.log_cids[plan.events[index].log];
    assert_eq!((stored.log, stored.seq), (log, plan.events[index].seq));
    let effect = amb_log::EffectEvent::decode(&stored.bytes).unwrap();
    assert_eq!(effect.cid(), cid);
    assert_eq!(effect.refs(), &[recorded.event_cids[index - 1]]);
    let log_manifest =
        amb_log::Manifest::decode(&store.get_block(log).unwrap().expect("its manifest")).unwrap();
    let checked = check_effect(
        cid,
        &effect,
        &log_manifest,
        |c| store.get_block(*c).ok().flatten(),
        EffectLimits::default(),
    )
    .unwrap();
    assert_eq!((checked.result, checked.trust), (hash, Trust::Recomputed));
    let after = plan
        .events
        .iter()
        .position(|e| e.log == plan.events[index].log && e.seq == effect.seq() + 1)
        .expect("sys_hash's log goes on");
    let next = amb_log::Event::decode(
        &store
            .get_event(recorded.event_cids[after])
            .unwrap()
            .unwrap()
            .bytes,
    )
    .unwrap();
    assert!(next.refs().contains(&cid));
    // Recording again writes nothing new.
    let again = amb_vm::record::record(&plan, &compiled, &manifest, &key, &store).unwrap();
    assert_eq!(again, recorded);
    assert_eq!(store.event_count().unwrap(), plan.events.len() as u64);
}

/// Plans the example `example` with `host`'s services, its slices hosted as
/// `hosting` says: the program, its code and the plan.
fn plan_example(
    host: &Host,
    example: &str,
    hosting: &amb_vm::plan::Hosting,
) -> (
    amb_syntax::Ast,
    amb_bytecode::CompiledProgram,
    amb_bytecode::NodeMap,
    amb_vm::plan::Plan,
) {
    let src = std::fs::read_to_string(format!(
        "{}/../../examples/{example}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the example");
    let ast = amb_syntax::parse(&src).unwrap();
    let (compiled, map) =
        amb_bytecode::compile_with_map(&ast, &amb_bytecode::BlockLimits::default()).unwrap();
    let effects = amb_vm::system::EffectHost {
        services: &host.services,
        scope: "p",
        limits: EffectLimits::default(),
    };
    let plan = amb_vm::plan::plan_with_effects(
        &ast,
        &compiled,
        &map,
        Limits::default(),
        hosting,
        Some(effects),
    )
    .unwrap();
    (ast, compiled, map, plan)
}

/// Plans `example` with `host`'s services and records it in `store` (signed by
/// `key`); returns the program address and the planned final term.
fn record_example(
    host: &Host,
    example: &str,
    store: &Store,
    key: &SigningKey,
) -> (amb_bytecode::Cid, amb_syntax::Ast) {
    let (_, compiled, _, plan) = plan_example(host, example, &Default::default());
    let manifest =
        amb_log::Manifest::new_root(compiled.root, None, vec![key.public_key()], key, [3; 16], 1);
    let recorded = amb_vm::record::record(&plan, &compiled, &manifest, key, store).unwrap();
    (recorded.program, plan.final_term)
}

#[test]
fn a_run_recorded_with_effects_verifies_and_replays_to_its_value_without_performing_them() {
    let host = host(|s| s);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("run.redb")).unwrap();
    let key = SigningKey::from_seed(&[6; 32]);
    for (example, services, trust) in [
        ("sys_hash.amb", vec![Service::Hash], Trust::Recomputed),
        (
            "sys_put_get.amb",
            vec![Service::Put, Service::Get],
            Trust::Recomputed,
        ),
        (
            "sys_random.amb",
            vec![Service::Random],
            Trust::Signed {
                creator: key.public_key(),
            },
        ),
    ] {
        let (program, planned) = record_example(&host, example, &store, &key);
        let verified =
            amb_vm::verify::verify(&store, program).unwrap_or_else(|e| panic!("{example}: {e}"));
        assert_eq!(
            amb_syntax::to_compact_string(&verified.term),
            amb_syntax::to_compact_string(&planned),
            "{example}"
        );
        let replayed: Vec<Service> = verified.effects.iter().map(|e| e.service).collect();
        assert_eq!(replayed, services, "{example}");
        assert!(
            verified.effects.iter().all(|e| e.trust == trust),
            "{example}"
        );
        // Time travel shows the recorded result, brought in after the service's
        // open call, and replays to the same final term.
        let timeline = amb_vm::travel::Timeline::load(&store, program, &()).unwrap();
        let last = timeline
            .seek(amb_vm::travel::Moment::Step(timeline.total_steps()))
            .unwrap();
        assert_eq!(
            amb_syntax::to_compact_string(&last.term),
            amb_syntax::to_compact_string(&planned)
        );
        let effect = &verified.effects[0];
        let after = timeline
            .seek(amb_vm::travel::Moment::Step(effect.after_step))
            .unwrap();
        let shown = amb_syntax::to_compact_string(&after.term);
        let result = amb_syntax::to_compact_string(&term_of(&effect.result));
        assert!(shown.contains(&result), "{example}: {shown} holds {result}");
    }
}
