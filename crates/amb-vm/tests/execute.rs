//! Two hosts walk one plan: each signs its part and takes the other's events from
//! what it has received; the result verifies, and matches the one-host run.

mod common;

use std::collections::HashMap;

use amb_bytecode::{BlockLimits, Cid};
use amb_engine::Limits;
use amb_log::{Event, Manifest, NewEvent, SigningKey, Store};
use amb_vm::{
    execute::{Execution, Need},
    plan::{Hosting, plan_hosted},
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
