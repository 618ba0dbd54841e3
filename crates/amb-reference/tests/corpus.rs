//! The shared corpus, read in place: for every ROAM file of `INDEX.tsv`, the explorer
//! finds exactly the normal forms the independent explorer lists, the same
//! confluence, and (from `MANIFEST.md`) the same number of distinct states; random
//! legal orders always end in one of the listed normal forms.
//!
//! The tests fail (never skip) when the corpus is missing.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use amb_reference::{Term, explore, reduce_with};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

/// Generous: the largest corpus program has a few hundred states.
const MAX_STATES: usize = 100_000;

struct Entry {
    file: String,
    confluent: bool,
    /// Sorted in byte order.
    normal_forms: Vec<String>,
}

/// The ROAM rows of `INDEX.tsv`. Panics when the corpus is missing.
fn roam_entries() -> Vec<Entry> {
    let path = format!("{CORPUS}/INDEX.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("the shared corpus index {path} is missing ({e}): the corpus must be at ../shared/corpus beside the repository")
    });
    let mut entries = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 2, "malformed INDEX.tsv line {line:?}");
        match cols[1] {
            "roam" => {}
            "nba" | "syntax-error" | "needs-rec" => continue,
            other => panic!("unknown kind {other:?} in INDEX.tsv line {line:?}"),
        }
        let confluent = match cols.get(2).copied() {
            Some("confluent") => true,
            Some("nonconfluent") => false,
            other => panic!("unknown confluence {other:?} in INDEX.tsv line {line:?}"),
        };
        let listed = cols
            .get(3)
            .unwrap_or_else(|| panic!("no normal forms in INDEX.tsv line {line:?}"));
        let mut normal_forms: Vec<String> = listed.split(" ; ").map(str::to_string).collect();
        normal_forms.sort();
        normal_forms.dedup();
        entries.push(Entry {
            file: cols[0].to_string(),
            confluent,
            normal_forms,
        });
    }
    assert_eq!(entries.len(), 112, "ROAM files listed in INDEX.tsv");
    entries
}

/// The state counts of the independent explorer, from `MANIFEST.md` rows such as
/// ``| `file` | … | states=4, NF=1: … |``.
fn manifest_states() -> HashMap<String, usize> {
    let path = format!("{CORPUS}/MANIFEST.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the shared corpus manifest {path} is missing ({e})"));
    let mut states = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let (Some(end), Some(at)) = (rest.find('`'), line.find("| states=")) else {
            continue;
        };
        let digits: String = line[at + "| states=".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let count = digits
            .parse()
            .unwrap_or_else(|e| panic!("bad state count in MANIFEST.md line {line:?}: {e}"));
        states.insert(rest[..end].to_string(), count);
    }
    states
}

fn parse(entry: &Entry) -> amb_syntax::Ast {
    let path = format!("{CORPUS}/{}", entry.file);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("corpus file {path} unreadable: {e}"));
    amb_syntax::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", entry.file))
}

#[test]
fn explorer_finds_exactly_the_listed_normal_forms() {
    let mut failures = Vec::new();
    let mut timings: Vec<(Duration, usize, String)> = Vec::new();
    let manifest = manifest_states();
    for entry in roam_entries() {
        let ast = parse(&entry);
        let started = Instant::now();
        let found = match explore(&ast, MAX_STATES) {
            Ok(found) => found,
            Err(e) => {
                failures.push(format!("{}: refused: {e}", entry.file));
                continue;
            }
        };
        timings.push((started.elapsed(), found.states, entry.file.clone()));
        if found.truncated {
            failures.push(format!(
                "{}: truncated at {} states",
                entry.file, found.states
            ));
            continue;
        }
        if found.normal_forms != entry.normal_forms {
            failures.push(format!(
                "{}: normal forms differ\n  listed: {:?}\n  found:  {:?}",
                entry.file, entry.normal_forms, found.normal_forms
            ));
        }
        match manifest.get(&entry.file) {
            Some(&listed) if listed == found.states => {}
            Some(listed) => failures.push(format!(
                "{}: {} states, MANIFEST.md lists {listed}",
                entry.file, found.states
            )),
            None => failures.push(format!("{}: no state count in MANIFEST.md", entry.file)),
        }
        if found.confluent != Some(entry.confluent) {
            failures.push(format!(
                "{}: confluent {:?}, listed {}",
                entry.file, found.confluent, entry.confluent
            ));
        }
    }
    timings.sort();
    for (time, states, file) in timings.iter().rev().take(3) {
        eprintln!("slowest: {time:?} for {states} states: {file}");
    }
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with INDEX.tsv:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A small deterministic generator (xorshift64*), so failures are reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as usize % n
    }
}

#[test]
fn random_legal_orders_end_in_a_listed_normal_form() {
    let mut failures = Vec::new();
    for (index, entry) in roam_entries().iter().enumerate() {
        let term = Term::from_ast(&parse(entry)).unwrap();
        for run in 0..8u64 {
            let seed = 0x9e37_79b9_7f4a_7c15 ^ ((index as u64) << 8 | run);
            let mut rng = Rng(seed);
            let reduction = reduce_with(term.clone(), |r| rng.below(r.len()), 10_000).unwrap();
            let result = reduction.term.canonical();
            if !reduction.normal || entry.normal_forms.binary_search(&result).is_err() {
                failures.push(format!(
                    "{} (seed {seed:#x}): ended in {result:?} after {} steps, normal: {}",
                    entry.file,
                    reduction.trace.len(),
                    reduction.normal
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
