//! Per-run resource limits and the errors for exceeding them.

/// Limits of one run. Past a limit the run stops with an error, never a result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most reduction steps. Default 100,000,000.
    pub max_steps: u64,
    /// Most bytes held by the engine's instances, indexes and queues (the program's
    /// AST not included). Default 4 GiB.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_steps: 100_000_000,
            max_memory_bytes: 4 << 30,
        }
    }
}

/// Why a run stopped before its normal form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The step limit was reached with redexes left.
    #[error("step limit of {limit} reached before a normal form (max_steps)")]
    StepLimit {
        /// The limit.
        limit: u64,
    },
    /// The memory budget was exceeded.
    #[error("memory budget exceeded: {used} bytes in use, limit {limit} (max_memory_bytes)")]
    MemoryLimit {
        /// Bytes in use.
        used: usize,
        /// The limit.
        limit: usize,
    },
}
