//! A seeded fault layer between the swarm and the node (`spec/network.md` §6):
//! each gossip message received is dropped, delayed or delivered twice, by a
//! pseudo-random draw from a fixed seed, so a failing run can be repeated. Delays
//! are drawn per copy, which reorders messages. Sync answers are not faulted: they
//! are how a node recovers what gossip lost. The layer can also crash the node in
//! the middle of a delegated run (`crash_after`), or make the intake panic while it
//! checks an event of one program (`panic_name`), to show that a panic fails that
//! program only.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

/// What the layer does to messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultConfig {
    /// The seed of the draws.
    pub seed: u64,
    /// Probability that a message is dropped.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Longest delay of a copy (each copy's delay is uniform in `0..=max_delay`).
    pub max_delay: Duration,
    /// Crash (abort the process, as a SIGKILL would) once this node has signed
    /// this many events of delegated runs: a host dying in the middle of a run.
    pub crash_after: Option<u64>,
    /// Panic while checking an event of a program whose manifest name is this (the
    /// intake's panic guard fails that program and serves the others). Leaked once
    /// at parse time, so the settings stay `Copy`.
    pub panic_name: Option<&'static str>,
}

impl FaultConfig {
    /// Reads `seed=S,drop=P,duplicate=P,delay_ms=N,crash_after=N,panic_name=NAME`
    /// (every key optional but `seed`).
    pub fn parse(text: &str) -> Result<FaultConfig, FaultError> {
        let mut config = FaultConfig {
            seed: 0,
            drop: 0.0,
            duplicate: 0.0,
            max_delay: Duration::ZERO,
            crash_after: None,
            panic_name: None,
        };
        let mut seeded = false;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| FaultError::NotKeyValue(part.to_string()))?;
            let bad = || FaultError::BadValue(part.to_string());
            let probability = |v: &str| -> Result<f64, FaultError> {
                let p: f64 = v.parse().map_err(|_| bad())?;
                (0.0..=1.0).contains(&p).then_some(p).ok_or_else(bad)
            };
            match key {
                "seed" => {
                    config.seed = value.parse().map_err(|_| bad())?;
                    seeded = true;
                }
                "drop" => config.drop = probability(value)?,
                "duplicate" => config.duplicate = probability(value)?,
                "crash_after" => config.crash_after = Some(value.parse().map_err(|_| bad())?),
                "panic_name" if value.is_empty() => return Err(bad()),
                "panic_name" => {
                    config.panic_name = Some(Box::leak(value.to_string().into_boxed_str()));
                }
                "delay_ms" => {
                    config.max_delay = Duration::from_millis(value.parse().map_err(|_| bad())?)
                }
                _ => return Err(FaultError::UnknownKey(key.to_string())),
            }
        }
        seeded.then_some(config).ok_or(FaultError::NoSeed)
    }
}

/// Why fault settings cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// A setting that is not `KEY=VALUE`.
    #[error("fault setting `{0}` is not KEY=VALUE")]
    NotKeyValue(String),
    /// A setting whose value is out of range or not a number.
    #[error("fault setting `{0}`: bad value")]
    BadValue(String),
    /// A key the layer does not know.
    #[error("unknown fault setting `{0}`")]
    UnknownKey(String),
    /// No `seed=N`.
    #[error("fault settings need a seed (seed=N)")]
    NoSeed,
}

/// What the layer did so far (`amb info` shows it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    /// Gossip messages received.
    pub received: u64,
    /// Dropped.
    pub dropped: u64,
    /// Delivered twice.
    pub duplicated: u64,
}

/// The layer's state: its draws.
#[derive(Debug)]
pub(crate) struct Faults {
    config: FaultConfig,
    rng: StdRng,
    pub(crate) counts: FaultCounts,
}

impl Faults {
    pub(crate) fn new(config: FaultConfig) -> Faults {
        Faults {
            config,
            rng: StdRng::seed_from_u64(config.seed),
            counts: FaultCounts::default(),
        }
    }

    /// The delays of the copies of one message to deliver: none if it is dropped.
    pub(crate) fn fate(&mut self) -> Vec<Duration> {
        self.counts.received += 1;
        if self.rng.gen_bool(self.config.drop) {
            self.counts.dropped += 1;
            return Vec::new();
        }
        let copies = if self.rng.gen_bool(self.config.duplicate) {
            self.counts.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let max = self.config.max_delay.as_micros() as u64;
                Duration::from_micros(if max == 0 {
                    0
                } else {
                    self.rng.gen_range(0..=max)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_fates() {
        let config = FaultConfig::parse("seed=5,drop=0.1,duplicate=0.2,delay_ms=30").unwrap();
        let fates = |c| {
            let mut f = Faults::new(c);
            (0..1000).map(|_| f.fate()).collect::<Vec<_>>()
        };
        let a = fates(config);
        assert_eq!(a, fates(config));
        let dropped = a.iter().filter(|f| f.is_empty()).count();
        let doubled = a.iter().filter(|f| f.len() == 2).count();
        assert!((60..140).contains(&dropped), "{dropped}");
        assert!((130..240).contains(&doubled), "{doubled}");
        assert!(a.iter().flatten().all(|d| *d <= Duration::from_millis(30)));
        assert!(FaultConfig::parse("drop=0.1").is_err());
        assert!(FaultConfig::parse("seed=1,drop=2").is_err());
        assert!(FaultConfig::parse("seed=1,lose=0.1").is_err());
        let boom = FaultConfig::parse("seed=1,panic_name=boom").unwrap();
        assert_eq!(boom.panic_name, Some("boom"));
        assert!(FaultConfig::parse("seed=1,panic_name=").is_err());
    }
}
