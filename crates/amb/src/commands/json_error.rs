//! The `--json` form of a command's failure: `{"error": {"kind", "message", "rule"?,
//! "at"?}}`, the shape of the HTTP API's errors (`spec/network.md` §7), printed on
//! standard output while the command still exits non-zero.
//!
//! `kind` says whose the failure is: `invalid` (the arguments: an address that is not
//! one, a bytecode CID or an ambiguous prefix given for one, a home that is not
//! initialized or not readable, a file that is not CAR v1, a program refused before
//! any work by one of the early checks: [`Invalid`]), `not-found` (no such
//! program in the store, no such event), `refused` (an event breaks a rule of `spec/events.md` §7, named by
//! `rule`, at the event `at`), `incomplete` (the run stops at the event `at`),
//! `storage` (the store could not be opened or read: damaged, in use, unreadable),
//! `unreachable` (a node that cannot be reached, or that broke the exchange off),
//! `error` (anything else). A node's error answer is printed as the node gave it
//! (its kinds: `spec/network.md` §7).

use std::io::Write;

use amb_log::{HomeError, StoreError};

use crate::{
    address::AddressError,
    client::{NodeError, Unreachable},
    source::Reported,
};
use amb_vm::verify::VerifyError;
use serde_json::{Value, json};

/// Input the command refuses before doing any work (an empty program, a step past
/// the end, flags that cannot go together, a block over its limit): the user's to
/// fix, kind `invalid`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Invalid(pub(crate) String);

/// Refuses with [`Invalid`] unless `ok`.
macro_rules! ensure_valid {
    ($ok:expr, $($message:tt)+) => {
        if !$ok {
            return Err($crate::commands::json_error::Invalid(format!($($message)+)).into());
        }
    };
}
pub(crate) use ensure_valid;

/// The JSON of `error`.
pub(crate) fn json_error(error: &anyhow::Error) -> Value {
    if let Some(node) = error.chain().find_map(|c| c.downcast_ref::<NodeError>()) {
        return json!({ "error": node.error });
    }
    let mut body = json!({ "kind": kind(error), "message": format!("{error:#}") });
    if let Some(verify) = error.chain().find_map(|c| c.downcast_ref::<VerifyError>()) {
        if let Some(rule) = verify.rule() {
            body["rule"] = json!(rule);
        }
        if let Some(at) = verify.event() {
            body["at"] = json!(at.to_string());
        }
    }
    json!({ "error": body })
}

/// Prints [`json_error`] of `error` on standard output (nothing if the reader has
/// gone: the error itself is still returned to `main`).
pub(crate) fn print_json_error(error: &anyhow::Error) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", json_error(error)).and_then(|()| stdout.flush());
}

fn kind(error: &anyhow::Error) -> &'static str {
    for cause in error.chain() {
        if let Some(address) = cause.downcast_ref::<AddressError>() {
            return match address {
                AddressError::NotFound(_) | AddressError::NoEvent { .. } => "not-found",
                AddressError::Store(_) => "storage",
                _ => "invalid",
            };
        }
        if cause
            .downcast_ref::<amb_vm::stored::LoadError>()
            .is_some_and(|e| matches!(e, amb_vm::stored::LoadError::NotStored(_)))
        {
            return "not-found";
        }
        if cause
            .downcast_ref::<crate::commands::car::MissingBlock>()
            .is_some()
        {
            return "not-found";
        }
        if cause.downcast_ref::<amb_log::CarError>().is_some() {
            return "invalid";
        }
        if cause.downcast_ref::<Reported>().is_some() || cause.downcast_ref::<Invalid>().is_some() {
            return "invalid";
        }
        if cause.downcast_ref::<Unreachable>().is_some() {
            return "unreachable";
        }
        if let Some(verify) = cause.downcast_ref::<VerifyError>() {
            return match verify {
                VerifyError::Violation(_) => "refused",
                VerifyError::Program(..) => "not-found",
                VerifyError::Incomplete(_) => "incomplete",
                VerifyError::Store(_) => "storage",
                _ => "error",
            };
        }
        if cause.downcast_ref::<StoreError>().is_some() {
            return "storage";
        }
        if let Some(home) = cause.downcast_ref::<HomeError>() {
            return match home {
                HomeError::Store(_) => "storage",
                _ => "invalid",
            };
        }
        if cause.downcast_ref::<amb_bytecode::CidError>().is_some() {
            return "invalid";
        }
    }
    "error"
}
