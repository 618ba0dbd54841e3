//! Hosts walk one plan: each signs its part and takes the others' events from what
//! it has received; the result verifies, and matches the one-host run. A host's
//! grant holds its part and nothing of its siblings, and a delegate walking only
//! its order (its part of the plan) writes what the whole plan says.

mod common;

use std::collections::{BTreeSet, HashMap};

use amb_bytecode::{BlockLimits, Cid, CompiledProgram, Opcode, Target};
use amb_engine::Limits;
use amb_log::{Event, Manifest, NewEvent, SigningKey, Store};
use amb_vm::{
    execute::{Execution, Need, Walk},
    grant::host_grant,
    order::{Order, Projection},
    plan::{Hosting, Plan, plan_hosted},
};

const MONOID: &str =
    "ambientsprotocol-encoding-examples/monoids/locally-evaluated-string-concat.amb";

#[test]
fn two_hosts_write_a_delegated_run_that_verifies() {
    let source = common::corpus_file(MONOID);
    let ast = amb_syntax::parse(&source).unwrap();
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
    let hosting = Hosting {
        delegated: [("string_concat".to_string(), 1)].into(),
    };
    let plan = plan_hosted(&ast, &compiled, &map, Limits::default(), &hosting).unwrap();
    let keys = [
        SigningKey::from_seed(&[1; 32]),
        SigningKey::from_seed(&[2; 32]),
    ];
    let hosts: Vec<_> = keys.iter().map(SigningKey::public_key).collect();
    let manifest = Manifest::new_root(compiled.root, None, hosts.clone(), &keys[0], [3; 16], 1);
    let mut walks: Vec<Execution> = (0..2)
        .map(|me| Execution::new(plan.clone(), &manifest, hosts.clone(), me))
        .collect();

    // What each host has received: by (log, seq).
    let mut published: HashMap<(Cid, u64), (Cid, Vec<u8>)> = HashMap::new();
    let mut manifests: HashMap<Cid, Vec<u8>> = HashMap::new();
    let mut order: Vec<Cid> = Vec::new();
    let mut turns = 0;
    while !walks.iter().all(Execution::is_done) {
        turns += 1;
        assert!(turns < 1000, "the walks are stuck");
        for (me, walk) in walks.iter_mut().enumerate() {
            let advance = walk
                .advance(
                    &keys[me],
                    3,
                    |log, seq| {
                        published
                            .get(&(log, seq))
                            .map(|(cid, bytes)| (*cid, Event::decode(bytes).expect("valid")))
                    },
                    |_| false,
                )
                .expect("no deviation");
            for signed in advance.signed {
                let event = Event::decode(&signed.bytes).unwrap();
                assert_eq!(event.creator(), &hosts[me]);
                published.insert((event.log(), event.seq()), (signed.cid, signed.bytes));
                order.push(signed.cid);
            }
            manifests.extend(advance.manifests);
            if let Need::Event { writer, .. } = advance.need {
                assert_ne!(writer, me, "a host never waits for itself");
            }
        }
    }
    assert_eq!(order.len(), plan.events.len());
    assert!(turns > 2, "the hosts took turns");
    for index in 0..plan.events.len() {
        assert_eq!(walks[0].cid(index), walks[1].cid(index));
    }
    // Both hosts wrote events.
    let by_host = |k: &SigningKey| {
        published
            .values()
            .filter(|(_, b)| Event::decode(b).unwrap().creator() == &k.public_key())
            .count()
    };
    assert!(by_host(&keys[0]) > 0 && by_host(&keys[1]) > 0);

    // Stored in the order written, the run verifies and gives the monoid's value.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    amb_vm::record::store_program(&compiled, &manifest, &store).unwrap();
    let blocks: Vec<(Cid, &[u8])> = manifests.iter().map(|(c, b)| (*c, b.as_slice())).collect();
    let by_cid: HashMap<Cid, &Vec<u8>> = published.values().map(|(c, b)| (*c, b)).collect();
    let decoded: Vec<(Cid, Event)> = order
        .iter()
        .map(|c| (*c, Event::decode(by_cid[c]).unwrap()))
        .collect();
    let events: Vec<NewEvent<'_>> = decoded
        .iter()
        .map(|(cid, e)| NewEvent {
            cid: *cid,
            log: e.log(),
            seq: e.seq(),
            refs: e.refs(),
            bytes: by_cid[cid],
        })
        .collect();
    store.write(manifest.cid(), &blocks, &events).unwrap();
    let verified = amb_vm::verify::verify(&store, manifest.cid()).expect("the run verifies");
    assert_eq!(verified.events, plan.events.len() as u64);
    let value = amb_vm::value_of(&verified.term).unwrap();
    assert_eq!(value.to_json(), serde_json::json!("helloworld"));
}

/// Eight calls, function `f<i>` delegated to host `i` (each body announces a
/// marker `m<i>`), and the deployer's own `d[dm[]]`, which never moves.
fn eight_calls() -> String {
    let mut source = String::from("d[dm[]]");
    for i in 1..=8 {
        source.push_str(&format!(
            " | f{i}[in_ a{i}.open a{i}.m{i}[]] | a{i}[in f{i}.open_]"
        ));
    }
    source
}

/// Where each of `eight_calls`' functions is delegated: `f<i>` to host `i`.
fn eight_delegates() -> HashMap<String, usize> {
    (1..=8).map(|i| (format!("f{i}"), i)).collect()
}

/// `source` planned with `delegated`, and compiled.
fn planned(source: &str, delegated: HashMap<String, usize>) -> (Plan, CompiledProgram) {
    let ast = amb_syntax::parse(source).unwrap();
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
    let plan = plan_hosted(
        &ast,
        &compiled,
        &map,
        Limits::default(),
        &Hosting { delegated },
    )
    .unwrap();
    (plan, compiled)
}

/// `eight_calls` planned and compiled.
fn eight_calls_planned() -> (Plan, CompiledProgram) {
    planned(&eight_calls(), eight_delegates())
}

fn log_named(plan: &Plan, name: &str) -> usize {
    plan.logs
        .iter()
        .position(|l| l.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no log {name}"))
}

#[test]
fn a_delegate_is_granted_its_function_what_enters_it_and_nothing_of_its_siblings() {
    let (plan, compiled) = eight_calls_planned();
    for i in 1..=8 {
        let grant = host_grant(&plan, &compiled, i);
        let names: BTreeSet<String> = grant
            .logs
            .iter()
            .filter_map(|&l| plan.logs[l].name.clone())
            .collect();
        let expected: BTreeSet<String> = [format!("f{i}"), format!("a{i}"), format!("m{i}")]
            .into_iter()
            .collect();
        assert_eq!(names, expected, "host {i}");
        assert!(!grant.logs.contains(&0), "host {i} holds the root log");
        // Its bytecode, never its siblings', the deployer's or the program's root.
        for j in (1..=8).filter(|&j| j != i) {
            let sibling = plan.logs[log_named(&plan, &format!("f{j}"))].block;
            assert!(
                !grant.blocks.contains(&sibling),
                "host {i} gets f{j}'s block"
            );
        }
        assert!(
            !grant
                .blocks
                .contains(&plan.logs[log_named(&plan, "d")].block)
        );
        assert!(!grant.blocks.contains(&compiled.root));
        assert!(
            grant
                .blocks
                .contains(&plan.logs[log_named(&plan, &format!("m{i}"))].block)
        );
        // Its path: creates and deploys only; of the root log's announcing deploys,
        // only its own slices'.
        for &e in &grant.path {
            let event = &plan.events[e];
            assert!(
                matches!(event.opcode, Opcode::Create | Opcode::Deploy),
                "host {i}'s path holds a {:?}",
                event.opcode
            );
            if event.log == 0 && event.at.is_some() {
                let Target::Block(block) = &event.target else {
                    panic!("a deploy without a block");
                };
                let own = [format!("f{i}"), format!("a{i}")]
                    .iter()
                    .any(|n| plan.logs[log_named(&plan, n)].block == *block);
                assert!(own, "host {i}'s path announces another slice");
            }
        }
        // Bare refs are CIDs only: none of them is an event it holds.
        assert!(grant.bare.iter().all(|&e| !grant.holds_event(&plan, e)));
    }
}

#[test]
fn the_deployer_is_granted_everything() {
    let (plan, compiled) = eight_calls_planned();
    let grant = host_grant(&plan, &compiled, 0);
    // The root log announces every slice.
    assert_eq!(grant.logs.len(), plan.logs.len());
    assert!(grant.bare.is_empty());
    let all: BTreeSet<Cid> = compiled.blocks.iter().map(|(c, _)| *c).collect();
    assert_eq!(grant.blocks, all);
}

#[test]
fn delegates_walking_their_orders_alone_write_what_the_whole_plan_says() {
    for (source, delegated) in [
        (eight_calls(), eight_delegates()),
        (
            common::corpus_file(MONOID),
            [("string_concat".to_string(), 1)].into(),
        ),
    ] {
        let hosts_count = delegated.len() + 1;
        let (plan, compiled) = planned(&source, delegated);
        let keys: Vec<SigningKey> = (0..hosts_count)
            .map(|i| SigningKey::from_seed(&[i as u8 + 1; 32]))
            .collect();
        let hosts: Vec<_> = keys.iter().map(SigningKey::public_key).collect();
        let manifest = Manifest::new_root(compiled.root, None, hosts.clone(), &keys[0], [3; 16], 1);
        let root_log = amb_vm::record::root_log_manifest(&manifest).cid();
        let mut deployer = Execution::new(plan.clone(), &manifest, hosts.clone(), 0);
        let projections: Vec<Projection> = (1..hosts_count)
            .map(|h| {
                let grant = host_grant(&plan, &compiled, h);
                Order::project(&plan, &grant, root_log, hosts.clone())
            })
            .collect();
        let mut delegates: Vec<Walk<Order>> = projections
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let me = p
                    .order
                    .host_index(&hosts[i + 1])
                    .expect("a host of its order");
                Walk::of_order(p.order.clone(), Cid::of(b"slice"), me)
            })
            .collect();
        // Each delegate's order holds a small part of the plan, none of the
        // deployer's `d` and none of another delegate's function; its bytes read
        // back to the same order, and damaged bytes are refused.
        for (i, projection) in projections.iter().enumerate() {
            let bytes = projection.order.encode();
            assert_eq!(Order::decode(&bytes).as_ref(), Ok(&projection.order));
            assert_eq!(projection.order.name(), Cid::of(&bytes));
            assert!(Order::decode(&bytes[..bytes.len() - 1]).is_err());
            assert!(
                !projection.order.reserve.is_empty() || hosts_count > 2,
                "the monoid's order has steps whose halves two hosts write"
            );
            let names: Vec<&str> = projection
                .order
                .logs
                .iter()
                .filter_map(|l| l.name.as_deref())
                .collect();
            assert!(!names.contains(&"d") && !names.contains(&"dm"), "{names:?}");
            // It names the deployer and itself, never another delegate.
            assert_eq!(projection.order.hosts.len(), 2);
            assert!(projection.order.host_index(&hosts[i + 1]).is_some());
            if hosts_count > 2 {
                let own = format!("f{}", i + 1);
                assert!(
                    names.iter().all(|n| !n.starts_with('f') || *n == own),
                    "host {} sees {names:?}",
                    i + 1
                );
                assert!(projection.order.events.len() * 4 < plan.events.len());
            }
        }

        let mut published: HashMap<(Cid, u64), (Cid, Vec<u8>)> = HashMap::new();
        let mut turns = 0;
        while !deployer.is_done() || !delegates.iter().all(Walk::is_done) {
            turns += 1;
            assert!(turns < 2000, "the walks are stuck");
            let received = |published: &HashMap<(Cid, u64), (Cid, Vec<u8>)>, log, seq| {
                published
                    .get(&(log, seq))
                    .map(|(cid, bytes): &(Cid, Vec<u8>)| (*cid, Event::decode(bytes).unwrap()))
            };
            let advance = deployer
                .advance(&keys[0], 3, |l, s| received(&published, l, s), |_| false)
                .expect("no deviation");
            for signed in advance.signed {
                let event = Event::decode(&signed.bytes).unwrap();
                published.insert((event.log(), event.seq()), (signed.cid, signed.bytes));
            }
            for (i, walk) in delegates.iter_mut().enumerate() {
                let projection = &projections[i];
                let advance = walk
                    .advance_told(
                        &keys[i + 1],
                        3,
                        |l, s| received(&published, l, s),
                        |b| deployer.cid(projection.bare[b]),
                        |_| false,
                    )
                    .expect("no deviation");
                for signed in advance.signed {
                    let event = Event::decode(&signed.bytes).unwrap();
                    published.insert((event.log(), event.seq()), (signed.cid, signed.bytes));
                }
            }
        }
        for (walk, projection) in delegates.iter().zip(&projections) {
            for (j, &index) in projection.held.iter().enumerate() {
                assert_eq!(walk.cid(j), deployer.cid(index), "plan event {index}");
            }
        }
    }
}
