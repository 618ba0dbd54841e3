//! The Ambients virtual machine.
//!
//! This crate will own the VM side of the pipeline (BRIEF §2): the executor that turns
//! reduction steps into signed events, the replay state machine that rebuilds a
//! program's state from its logs, the checks that need that replayed state, the typed
//! values of programs and time travel over every past state.
//!
//! - [`plan`]: the log plan of a run (every event, its log, refs and writer);
//! - [`record`]: signing and storing a plan on one host; [`execute`]: walking a plan
//!   on several hosts, each signing its part;
//! - [`replay`] and [`verify`]: the state machine that rebuilds a program from its
//!   events and checks every rule; [`completeness`]: whether a stored run is whole,
//!   an interrupted prefix, or missing what its events promise; [`travel`]: time
//!   travel over past states;
//! - [`part`]: a delegate's part as stored (its order's events, listed unreplayed);
//! - [`stored`]: loading a stored program, ready to plan (`amb run --resume` and a
//!   node's walk of a deployment);
//! - [`value`]: typed values of programs (`spec/values.md`);
//! - [`system`]: the system interface, services a program calls by a reserved name
//!   (`spec/system.md`).
//!
//! Every algorithm here is iterative (no recursion over the program tree), so terms
//! nested 100,000 levels deep evaluate without exhausting the call stack.

mod chunked;
pub mod completeness;
pub mod execute;
pub mod grant;
mod hash;
mod journal;
pub mod order;
mod overlay;
pub mod part;
pub mod plan;
pub mod record;
pub mod replay;
pub mod stored;
pub mod system;
pub mod travel;
pub mod value;
pub mod verify;

pub use value::{
    MAX_VALUE_DEPTH, NotAValue, Reason, Type, Value, value_json, value_of, value_of_node,
};
