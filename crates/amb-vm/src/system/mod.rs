//! The system interface (`spec/system.md`): the services a program asks the host
//! for by calling a reserved `sys_` name, the trait a host implements them through,
//! the limits every effect is held to, and the canonical encoding and value blocks
//! that name arguments and results.
//!
//! - [`service`]: the reserved names, which are deterministic, and the failure
//!   reasons;
//! - [`term`]: a typed value as a term (the inverse of [`crate::value::value_of`]),
//!   its canonical encoding and its value block;
//! - [`local`]: the local provider (BLAKE3, the signature rule, the redb store scoped
//!   by program, the clock, the OS random source);
//! - [`check`]: a recorded effect checked without performing it again;
//! - [`perform`]: one effect within its timeout and size limit, a failure value
//!   otherwise, never a hang;
//! - [`reduce`]: a reduction that meets each service call with its effect.

pub mod check;
pub mod local;
pub mod perform;
pub mod reduce;
pub mod service;
pub mod term;

pub use check::{CheckedEffect, Trust, check_effect};
pub use local::LocalServices;
pub use perform::{EffectLimits, effects_performed, perform};
pub use reduce::{
    EffectHost, EffectRecord, ReduceError, check_reserved, reduce, reduce_traced, services_needed,
    uses_services,
};
pub use service::{Failure, Service, SystemServices, is_service_name};
pub use term::{canonical_encoding, term_of, value_block};
