//! The limits of every deployment on a node (`spec/network.md` §1, "Bounds"):
//! checked before a program is compiled (its text's size and depth), while it is
//! planned (its steps) and once it is planned (its events).

use amb_engine::{EngineError, Limits};
use amb_syntax::{Ast, SyntaxErrorKind};

use crate::error::NetError;

/// The limits of every deployment on a node (`spec/network.md` §1): the program
/// text's size and nesting depth are checked before it is compiled, its run's steps
/// while it is planned, its events once it is planned (before anything is signed or
/// stored). A request may lower the step limit, never raise it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeployLimits {
    /// Largest program text, in bytes (`max_deploy_bytes`). Default 1 MiB.
    pub max_bytes: usize,
    /// Deepest nesting of ambients, prefixes and groups (`max_deploy_depth`).
    /// Default 10,000.
    pub max_depth: usize,
    /// Most reduction steps of the run (`max_deploy_steps`). Default 1,000,000.
    pub max_steps: u64,
    /// Most events of the run (`max_deploy_events`). Default 1,000,000.
    pub max_events: u64,
}

impl Default for DeployLimits {
    fn default() -> DeployLimits {
        DeployLimits {
            max_bytes: 1 << 20,
            max_depth: 10_000,
            max_steps: 1_000_000,
            max_events: 1_000_000,
        }
    }
}

impl DeployLimits {
    /// Parses a program's text within the byte and depth limits: past either, the
    /// parse stops early and the error names the limit.
    pub fn parse(&self, source: &str) -> Result<Ast, NetError> {
        if source.len() > self.max_bytes {
            return Err(NetError::Limit {
                limit: "max_deploy_bytes",
                detail: format!(
                    "the program is {} bytes, more than {}",
                    source.len(),
                    self.max_bytes
                ),
            });
        }
        let limits = amb_syntax::Limits {
            max_input_bytes: self.max_bytes,
            max_depth: self.max_depth,
            ..amb_syntax::Limits::default()
        };
        amb_syntax::parse_with_limits(source.as_bytes(), &limits).map_err(|e| match e.kind {
            SyntaxErrorKind::TooDeep { limit } => NetError::Limit {
                limit: "max_deploy_depth",
                detail: format!(
                    "the program nests deeper than {limit} levels (at {})",
                    e.position
                ),
            },
            _ => NetError::Syntax(e),
        })
    }

    /// The engine limits of a run asked with `requested`: its step limit, never
    /// above this node's.
    pub fn engine(&self, requested: Limits) -> Limits {
        Limits {
            max_steps: requested.max_steps.min(self.max_steps),
            ..requested
        }
    }

    /// Refuses a planned run of more events than the limit.
    pub fn check_events(&self, events: usize) -> Result<(), NetError> {
        if events as u64 > self.max_events {
            return Err(NetError::Limit {
                limit: "max_deploy_events",
                detail: format!("the run has {events} events, more than {}", self.max_events),
            });
        }
        Ok(())
    }
}

/// The error of a run stopped by the engine's step or memory limit.
pub(crate) fn engine_limit(e: &EngineError) -> Option<NetError> {
    match e {
        EngineError::StepLimit { limit } => Some(NetError::Limit {
            limit: "max_deploy_steps",
            detail: format!(
                "the run takes more than {limit} steps (the node's max_deploy_steps, or the request's max_steps when lower)"
            ),
        }),
        EngineError::MemoryLimit { used, limit } => Some(NetError::Limit {
            limit: "max_memory_bytes",
            detail: format!("the run holds {used} bytes, more than {limit}"),
        }),
        _ => None,
    }
}
