//! Bytes on disk per event: synthetic events of 250 bytes with 2 refs, written in
//! batches of several sizes. Run with `cargo bench -p amb-log --bench store_size`.

#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

fn main() {
    let runs: &[(usize, usize)] = if std::env::args().any(|a| a == "--bench") {
        &[
            (100_000, 100),
            (100_000, 1_000),
            (100_000, 10_000),
            (1_000_000, 10_000),
        ]
    } else {
        &[(10_000, 1_000)]
    };
    for &(events, batch) in runs {
        let (per_event, report) = synthetic::measure(events, batch);
        println!(
            "{events} events of 250 bytes, 2 refs, batches of {batch}: {per_event:.1} bytes/event on disk; {report}"
        );
    }
}
