//! The rules of `spec/events.md` §7 that replay checks, one variant each: what a
//! check of one event finds wrong, before it is tied to the event as a
//! [`Violation`](super::Violation).

use amb_bytecode::Cid;

use crate::completeness::{MISSING_EVENT, MISSING_LOG};

/// A broken rule (`spec/events.md` §7), with what is wrong. The rule names printed
/// ([`Broken::rule`]) are the spec's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    /// `key`: the creator may not write the log.
    #[error("{0}")]
    Key(String),
    /// `host`: the log is written by another key than its host at this point.
    #[error("{0}")]
    Host(String),
    /// `log-id`: the log is not one of the program's, or the event is in another log
    /// than its ambient's.
    #[error("{0}")]
    LogId(String),
    /// `refs-resolve`: a ref or a needed block is not available.
    #[error("{0}")]
    RefsResolve(String),
    /// `missing-event`: an event the stored ones prove must exist is not stored.
    #[error("{0}")]
    MissingEvent(String),
    /// `missing-log`: an announced slice has no log.
    #[error("{0}")]
    MissingLog(String),
    /// `order`: the seq or the refs are not those of §4.
    #[error("{0}")]
    Order(String),
    /// `bytecode`: the op is not the enabled instruction it names.
    #[error("{0}")]
    Bytecode(String),
    /// `reduction`: the step is not a redex in the replayed state.
    #[error("{0}")]
    Reduction(String),
    /// `duality`: a step's halves do not pair.
    #[error("{0}")]
    Duality(String),
    /// `payload`: a payload is missing, misplaced or wrong.
    #[error("{0}")]
    Payload(String),
    /// `effect`: an effect event's service, arguments or result are wrong
    /// (`spec/system.md`).
    #[error("{0}")]
    Effect(String),
}

impl Broken {
    /// The rule's name in `spec/events.md` §7.
    pub fn rule(&self) -> &'static str {
        match self {
            Broken::Key(_) => "key",
            Broken::Host(_) => "host",
            Broken::LogId(_) => "log-id",
            Broken::RefsResolve(_) => "refs-resolve",
            Broken::MissingEvent(_) => MISSING_EVENT,
            Broken::MissingLog(_) => MISSING_LOG,
            Broken::Order(_) => "order",
            Broken::Bytecode(_) => "bytecode",
            Broken::Reduction(_) => "reduction",
            Broken::Duality(_) => "duality",
            Broken::Payload(_) => "payload",
            Broken::Effect(_) => "effect",
        }
    }

    /// The broken rule tied to `event`.
    pub fn at(self, event: Cid) -> super::Violation {
        super::Violation {
            event,
            rule: self.rule(),
            detail: self.to_string(),
        }
    }
}
