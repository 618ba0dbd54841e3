//! Record every ROAM program of the shared corpus as signed events, then verify and
//! replay them from the store alone: the replayed term equals the engine's.

use amb_log::{Manifest, SigningKey, Store};
use amb_vm::verify::verify;

mod common;
use common::{Recording, record_source};

fn corpus() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
}

fn roam_files() -> Vec<String> {
    let index = std::fs::read_to_string(corpus().join("INDEX.tsv"))
        .expect("the shared corpus must be at ../shared/corpus");
    index
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(1) == Some(&"roam")).then(|| cols[0].to_string())
        })
        .collect()
}

fn run_and_verify(source: &str, store: &Store, key: &SigningKey) -> Result<(), String> {
    let Recording { plan, recorded, .. } =
        record_source(source, store, key, Manifest::random_nonce())
            .map_err(|e| format!("{e:?}"))?;
    let verified = verify(store, recorded.program).map_err(|e| e.to_string())?;
    let expected = amb_syntax::to_compact_string(&plan.final_term);
    let replayed = amb_syntax::to_compact_string(&verified.term);
    if replayed != expected {
        return Err(format!("replayed {replayed}, engine {expected}"));
    }
    if verified.steps != plan.steps || verified.events != recorded.events {
        return Err(format!(
            "replayed {} steps / {} events, recorded {} / {}",
            verified.steps, verified.events, plan.steps, recorded.events
        ));
    }
    Ok(())
}

#[test]
fn every_corpus_program_records_verifies_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path().join("store.redb")).unwrap();
    let key = SigningKey::from_seed(&[3; 32]);
    let mut failures = Vec::new();
    let files = roam_files();
    assert_eq!(files.len(), 112);
    for file in files {
        let text = std::fs::read_to_string(corpus().join(&file)).unwrap();
        if let Err(e) = run_and_verify(&text, &store, &key) {
            failures.push(format!("{file}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
