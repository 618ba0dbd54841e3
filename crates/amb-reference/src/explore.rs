//! Exhaustive breadth-first exploration of every reachable state.

use std::collections::{BTreeSet, HashSet, VecDeque};

use amb_syntax::Ast;

use crate::{Limits, ReferenceError, Term, successors};

/// What [`explore`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exploration {
    /// Every normal form reached, as canonical text, sorted in byte order, without
    /// duplicates. When `truncated`, only those found before the search stopped.
    pub normal_forms: Vec<String>,
    /// Distinct states visited (states are identified by their canonical text), the
    /// initial one included; at most `max_states`.
    pub states: usize,
    /// Whether the search stopped at `max_states` with states left unvisited.
    pub truncated: bool,
    /// `Some(true)` iff exactly one normal form is reachable; `None` when truncated.
    pub confluent: Option<bool>,
}

impl Exploration {
    /// The JSON that `amb explore --json` prints: exactly the keys `normal_forms`
    /// (canonical, sorted in byte order), `states`, `confluent` (null when truncated)
    /// and `truncated`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "normal_forms": self.normal_forms,
            "states": self.states,
            "confluent": self.confluent,
            "truncated": self.truncated,
        })
    }
}

/// Explores with the default [`Limits`]: see [`explore_with_limits`].
pub fn explore(ast: &Ast, max_states: usize) -> Result<Exploration, ReferenceError> {
    explore_with_limits(ast, max_states, &Limits::default())
}

/// Visits every state reachable from the program, breadth first, identifying states
/// by their canonical text, and collects the normal forms (states without a redex).
///
/// Stops with `truncated` when a new state is found after `max_states` distinct
/// states have been visited (with `max_states` 0, before the initial one). The program
/// and every state reached are refused with [`ReferenceError::TooDeep`] when deeper
/// than `limits.max_depth`.
pub fn explore_with_limits(
    ast: &Ast,
    max_states: usize,
    limits: &Limits,
) -> Result<Exploration, ReferenceError> {
    let start = Term::from_ast_with_limits(ast, limits)?;
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<(Term, String)> = VecDeque::new();
    let mut normal_forms: BTreeSet<String> = BTreeSet::new();
    let mut truncated = max_states == 0;
    if !truncated {
        let key = start.canonical();
        seen.insert(key.clone());
        queue.push_back((start, key));
    }
    'search: while let Some((state, key)) = queue.pop_front() {
        let next = successors(&state);
        if next.is_empty() {
            normal_forms.insert(key);
            continue;
        }
        for term in next {
            term.check(limits)?;
            let key = term.canonical();
            if seen.contains(&key) {
                continue;
            }
            if seen.len() >= max_states {
                truncated = true;
                break 'search;
            }
            seen.insert(key.clone());
            queue.push_back((term, key));
        }
    }
    let confluent = (!truncated).then_some(normal_forms.len() == 1);
    Ok(Exploration {
        normal_forms: normal_forms.into_iter().collect(),
        states: seen.len(),
        truncated,
        confluent,
    })
}
