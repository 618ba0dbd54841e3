//! One effect within its limits: a wall-clock timeout and a result size limit; a
//! host that cannot answer brings in a failure value, never a hang
//! (`spec/system.md` §4).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::Duration,
};

use super::{
    service::{Failure, Service, SystemServices},
    term::canonical_encoding,
};
use crate::value::Value;

/// The limits of every effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectLimits {
    /// Wall-clock time an effect may take (`effect_timeout_ms`).
    pub timeout: Duration,
    /// The longest result, in bytes of its canonical encoding (`max_result_bytes`).
    pub max_result_bytes: usize,
}

impl Default for EffectLimits {
    fn default() -> EffectLimits {
        EffectLimits {
            timeout: Duration::from_millis(2_000),
            max_result_bytes: 65_536,
        }
    }
}

/// Effects this process has performed ([`perform`] calls that reached a service).
static PERFORMED: AtomicU64 = AtomicU64::new(0);

/// How many effects this process has performed so far: a verifier reads it before
/// and after checking a run to report the effects it performed (none: it never
/// calls [`perform`]).
pub fn effects_performed() -> u64 {
    PERFORMED.load(Ordering::Relaxed)
}

/// Performs `service` on `argument` for `scope` on a thread of its own and waits at
/// most `limits.timeout`: the result, or the failure value (`not-offered`,
/// `timeout`, `too-large`, or the service's own). An effect that times out is left
/// to finish on its thread; its result is dropped.
pub fn perform(
    services: &Arc<dyn SystemServices>,
    scope: &str,
    service: Service,
    argument: &Value,
    limits: EffectLimits,
) -> Value {
    if !services.offered().contains(&service) {
        return Failure::NotOffered.value();
    }
    PERFORMED.fetch_add(1, Ordering::Relaxed);
    let (send, receive) = mpsc::sync_channel(1);
    let worker = Arc::clone(services);
    let (scope, argument) = (scope.to_string(), argument.clone());
    let spawned = std::thread::Builder::new()
        .name(format!("effect {}", service.name()))
        .spawn(move || {
            // The receiver may have given up (timeout): nothing to tell then.
            let _ = send.send(worker.perform(&scope, service, &argument));
        });
    if spawned.is_err() {
        return Failure::NotOffered.value();
    }
    let result = match receive.recv_timeout(limits.timeout) {
        Ok(Ok(value)) => value,
        Ok(Err(failure)) => return failure.value(),
        Err(_) => return Failure::Timeout.value(),
    };
    if canonical_encoding(&result).len() > limits.max_result_bytes {
        return Failure::TooLarge.value();
    }
    result
}
