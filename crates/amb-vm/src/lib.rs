//! The Ambients virtual machine.
//!
//! This crate will own the VM side of the pipeline (BRIEF §2): the executor that turns
//! reduction steps into signed events, the replay state machine that rebuilds a
//! program's state from its logs, the checks that need that replayed state, the typed
//! values of programs and time travel over every past state.
//!
//! Only the values exist so far ([`value`]): [`value_of`] reads a whole program, and
//! [`value_of_node`] one ambient, as a typed [`Value`] of the primitive types
//! (string, int, float, bool, bytes, char, tuple, list) or says why it has none
//! ([`NotAValue`]). `spec/values.md` is the normative definition of the shapes and of
//! their JSON form.
//!
//! Every algorithm here is iterative (no recursion over the program tree), so terms
//! nested 100,000 levels deep evaluate without exhausting the call stack.

mod journal;
pub mod plan;
pub mod record;
pub mod replay;
pub mod travel;
pub mod value;
pub mod verify;

pub use value::{
    MAX_VALUE_DEPTH, NotAValue, Reason, Type, Value, value_json, value_of, value_of_node,
};
