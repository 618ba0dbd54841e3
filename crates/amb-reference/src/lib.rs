//! A deliberately naive reference reducer and exhaustive explorer for ROAM.
//!
//! This crate is the *oracle* for the fast, indexed engine (`amb-engine`): it is
//! written to be obviously correct, not fast. A program is an owned tree of
//! [`Part`]s ([`Term`]); at every step every redex is recomputed from the whole
//! term ([`redexes`]), with no index, cache or identity table, and a step rebuilds
//! the term ([`apply`]). The rules are those of BRIEF §3:
//!
//! ```text
//! in:   n[in m.P | Q] | m[in_ n.R | S]        →  m[n[P|Q] | R | S]
//! out:  m[n[out m.P | Q] | out_ n.R | S]      →  n[P|Q] | m[R|S]
//! open: open n.P | n[open_.Q | R]             →  P | Q | R
//! ```
//!
//! closed under `|` and nesting, the top level of the program being a context like
//! any other. A nameless `in_` / `out_` admits any ambient. Two ambients with the same
//! name are distinct parts of the tree, so two redexes that compete for one capability
//! are two different results, never one.
//!
//! [`explore`] runs a breadth-first search over every reachable state, states being
//! identified by their canonical text ([`amb_syntax::to_canonical_string`]), and
//! reports every normal form ([`Exploration`]).
//!
//! Nothing here recurses over the tree: the walks, conversions and even `Clone`,
//! `Drop` and `PartialEq` of [`Part`] use explicit stacks. As a second guard, every
//! entry point measures the depth first and refuses anything deeper than
//! [`Limits::max_depth`] (default 2,000) with [`ReferenceError::TooDeep`].

mod explore;
mod rules;
mod term;

pub use amb_syntax::CapKind;
pub use explore::{Exploration, explore, explore_with_limits};
pub use rules::{Redex, Reduction, apply, redexes, reduce_with, reduce_with_limits, successors};
pub use term::{Limits, Part, Term};

/// Why the reference reducer refused a program or a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The program (or a state reached from it) nests deeper than the limit.
    #[error(
        "program nests {depth} levels deep, deeper than the reference reducer's limit of {limit} (Limits::max_depth)"
    )]
    TooDeep {
        /// Depth of the refused term (ambients and prefixes each count one level).
        depth: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A hand-built term has a capability with a target it cannot have.
    #[error("capability {} with target {target:?}: `in`, `out`, `open` need a name, `open_` takes none", .kind.keyword())]
    BadCapability {
        /// The capability.
        kind: CapKind,
        /// Its target.
        target: Option<String>,
    },
    /// The program text does not parse.
    #[error(transparent)]
    Syntax(#[from] amb_syntax::SyntaxError),
    /// The redex given to [`apply`] is not one of the term's redexes.
    #[error("the redex {0:?} is not a redex of this term")]
    IllegalRedex(Redex),
    /// The chooser given to [`reduce_with`] returned an index past the redexes.
    #[error("the chooser picked redex {choice} of only {count}")]
    ChoiceOutOfRange {
        /// The index returned.
        choice: usize,
        /// How many redexes there were.
        count: usize,
    },
}
