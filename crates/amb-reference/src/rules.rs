//! The three ROAM rules, found by scanning the whole term and applied by rebuilding it.

use amb_syntax::CapKind;

use crate::{Limits, Part, ReferenceError, Term};

/// One redex of a term, named by the positions of the parts that take part.
///
/// `at` is the path of the process where the rule applies: the index of an ambient
/// among the top-level parts, then the index of an ambient in that one's body, and so
/// on (empty for the top level). The other fields are indices into that process or
/// into the bodies of its ambients. Positions are valid only for the term the redex
/// was computed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Redex {
    /// `n[in m.P | Q] | m[in_ n.R | S]  →  m[n[P|Q] | R | S]`: in the process at `at`,
    /// ambient `mover` (n) holds `in m` at index `cap` of its body, and its sibling
    /// `target` (m) holds `in_ n` or `in_` at index `co` of its body.
    In {
        /// Path of the process holding both ambients.
        at: Vec<usize>,
        /// Index of the moving ambient n.
        mover: usize,
        /// Index of `in m` in n's body.
        cap: usize,
        /// Index of the entered ambient m.
        target: usize,
        /// Index of `in_ n` / `in_` in m's body.
        co: usize,
    },
    /// `m[n[out m.P | Q] | out_ n.R | S]  →  n[P|Q] | m[R|S]`: in the process at `at`,
    /// ambient `parent` (m) has in its body the ambient `child` (n), which holds
    /// `out m` at index `cap` of its body, and m holds `out_ n` or `out_` at index `co`.
    Out {
        /// Path of the process holding m.
        at: Vec<usize>,
        /// Index of m.
        parent: usize,
        /// Index of n in m's body.
        child: usize,
        /// Index of `out m` in n's body.
        cap: usize,
        /// Index of `out_ n` / `out_` in m's body.
        co: usize,
    },
    /// `open n.P | n[open_.Q | R]  →  P | Q | R`: in the process at `at`, the part at
    /// `cap` is `open n` and the ambient `opened` (n) holds `open_` at index `co`.
    Open {
        /// Path of the process holding `open n` and n.
        at: Vec<usize>,
        /// Index of `open n`.
        cap: usize,
        /// Index of n.
        opened: usize,
        /// Index of `open_` in n's body.
        co: usize,
    },
}

/// The result of [`reduce_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reduction {
    /// The last state reached.
    pub term: Term,
    /// The redexes applied, in order (each relative to the state before it).
    pub trace: Vec<Redex>,
    /// Whether `term` is a normal form (no redex left); false when `max_steps` ran out.
    pub normal: bool,
}

/// Whether a co-capability's target admits an ambient of this name: a nameless
/// `in_` / `out_` admits any.
fn admits(co_target: &Option<String>, name: &str) -> bool {
    co_target.as_deref().is_none_or(|t| t == name)
}

/// Every redex of the term, recomputed from scratch by scanning every process.
///
/// Only parts directly in a process act: a continuation's parts are not looked at
/// until their prefix has fired. Iterative over the nesting.
pub fn redexes(term: &Term) -> Vec<Redex> {
    let mut found = Vec::new();
    let mut processes: Vec<(Vec<usize>, &[Part])> = vec![(Vec::new(), &term.parts)];
    while let Some((at, parts)) = processes.pop() {
        for (i, part) in parts.iter().enumerate() {
            match part {
                // open n.P | n[open_.Q | R]
                Part::Cap {
                    kind: CapKind::Open,
                    target: Some(n),
                    ..
                } => {
                    for (j, other) in parts.iter().enumerate() {
                        let Part::Amb { name, body } = other else {
                            continue;
                        };
                        if name != n {
                            continue;
                        }
                        for (b, inner) in body.iter().enumerate() {
                            if let Part::Cap {
                                kind: CapKind::OpenCo,
                                ..
                            } = inner
                            {
                                found.push(Redex::Open {
                                    at: at.clone(),
                                    cap: i,
                                    opened: j,
                                    co: b,
                                });
                            }
                        }
                    }
                }
                Part::Amb { name: n, body } => {
                    // n[in m.P | Q] | m[in_ n.R | S]
                    for (a, cap) in body.iter().enumerate() {
                        let Part::Cap {
                            kind: CapKind::In,
                            target: Some(m),
                            ..
                        } = cap
                        else {
                            continue;
                        };
                        for (j, other) in parts.iter().enumerate() {
                            let Part::Amb {
                                name: other_name,
                                body: other_body,
                            } = other
                            else {
                                continue;
                            };
                            if j == i || other_name != m {
                                continue;
                            }
                            for (b, co) in other_body.iter().enumerate() {
                                let admitted = matches!(co, Part::Cap {
                                    kind: CapKind::InCo,
                                    target,
                                    ..
                                } if admits(target, n));
                                if admitted {
                                    found.push(Redex::In {
                                        at: at.clone(),
                                        mover: i,
                                        cap: a,
                                        target: j,
                                        co: b,
                                    });
                                }
                            }
                        }
                    }
                    // m[n[out m.P | Q] | out_ n.R | S], with this ambient as m
                    let m = n;
                    for (j, child) in body.iter().enumerate() {
                        let Part::Amb {
                            name: child_name,
                            body: child_body,
                        } = child
                        else {
                            continue;
                        };
                        for (a, cap) in child_body.iter().enumerate() {
                            let Part::Cap {
                                kind: CapKind::Out,
                                target: Some(t),
                                ..
                            } = cap
                            else {
                                continue;
                            };
                            if t != m {
                                continue;
                            }
                            for (b, co) in body.iter().enumerate() {
                                let admitted = matches!(co, Part::Cap {
                                    kind: CapKind::OutCo,
                                    target,
                                    ..
                                } if admits(target, child_name));
                                if admitted {
                                    found.push(Redex::Out {
                                        at: at.clone(),
                                        parent: i,
                                        child: j,
                                        cap: a,
                                        co: b,
                                    });
                                }
                            }
                        }
                    }
                    let mut inner = at.clone();
                    inner.push(i);
                    processes.push((inner, body));
                }
                Part::Cap { .. } => {}
            }
        }
    }
    found
}

/// Applies one redex of the term, which must be among [`redexes`]`(term)`
/// ([`ReferenceError::IllegalRedex`] otherwise).
pub fn apply(term: &Term, redex: &Redex) -> Result<Term, ReferenceError> {
    if !redexes(term).contains(redex) {
        return Err(ReferenceError::IllegalRedex(redex.clone()));
    }
    Ok(fire(term, redex))
}

/// Every state one step away: the result of each redex, in the order of [`redexes`]
/// (several redexes may give equal terms).
pub fn successors(term: &Term) -> Vec<Term> {
    redexes(term).iter().map(|r| fire(term, r)).collect()
}

/// Reduces with the default [`Limits`]: see [`reduce_with_limits`].
pub fn reduce_with(
    term: Term,
    choose: impl FnMut(&[Redex]) -> usize,
    max_steps: usize,
) -> Result<Reduction, ReferenceError> {
    reduce_with_limits(term, choose, max_steps, &Limits::default())
}

/// Reduces until no redex is left or `max_steps` steps are taken. At each step every
/// redex is recomputed and `choose` picks the index of the one to apply, so a caller
/// can follow any legal order. Every state is checked against `limits` before use.
pub fn reduce_with_limits(
    mut term: Term,
    mut choose: impl FnMut(&[Redex]) -> usize,
    max_steps: usize,
    limits: &Limits,
) -> Result<Reduction, ReferenceError> {
    term.check(limits)?;
    let mut trace = Vec::new();
    loop {
        let candidates = redexes(&term);
        if candidates.is_empty() {
            return Ok(Reduction {
                term,
                trace,
                normal: true,
            });
        }
        if trace.len() == max_steps {
            return Ok(Reduction {
                term,
                trace,
                normal: false,
            });
        }
        let choice = choose(&candidates);
        let Some(redex) = candidates.get(choice) else {
            return Err(ReferenceError::ChoiceOutOfRange {
                choice,
                count: candidates.len(),
            });
        };
        term = fire(&term, redex);
        term.check(limits)?;
        trace.push(redex.clone());
    }
}

/// The process at a path of ambient indices.
fn process_mut<'a>(mut parts: &'a mut Vec<Part>, at: &[usize]) -> &'a mut Vec<Part> {
    for &i in at {
        parts = match &mut parts[i] {
            Part::Amb { body, .. } => body,
            Part::Cap { .. } => unreachable!("a redex path goes through ambients only"),
        };
    }
    parts
}

/// Removes the parts at two distinct indices, returning them in argument order.
fn take_two(parts: &mut Vec<Part>, first: usize, second: usize) -> (Part, Part) {
    assert_ne!(first, second, "a redex names two distinct parts");
    if first > second {
        let a = parts.remove(first);
        let b = parts.remove(second);
        (a, b)
    } else {
        let b = parts.remove(second);
        let a = parts.remove(first);
        (a, b)
    }
}

/// Consumes the prefix at `index` of a process: removes it and releases its
/// continuation into the same process. (Order in a process does not matter.)
fn consume(parts: &mut Vec<Part>, index: usize) {
    let mut prefix = parts.remove(index);
    assert!(
        matches!(prefix, Part::Cap { .. }),
        "a redex consumes capabilities only"
    );
    parts.append(prefix.children_mut());
}

fn body_mut(part: &mut Part) -> &mut Vec<Part> {
    match part {
        Part::Amb { body, .. } => body,
        Part::Cap { .. } => unreachable!("a redex moves ambients only"),
    }
}

/// Applies a redex computed from this very term.
fn fire(term: &Term, redex: &Redex) -> Term {
    let mut next = term.clone();
    match redex {
        Redex::In {
            at,
            mover,
            cap,
            target,
            co,
        } => {
            let process = process_mut(&mut next.parts, at);
            let (mut n, mut m) = take_two(process, *mover, *target);
            consume(body_mut(&mut n), *cap);
            let m_body = body_mut(&mut m);
            consume(m_body, *co);
            m_body.push(n);
            process.push(m);
        }
        Redex::Out {
            at,
            parent,
            child,
            cap,
            co,
        } => {
            let process = process_mut(&mut next.parts, at);
            let m_body = body_mut(&mut process[*parent]);
            let (mut n, co_part) = take_two(m_body, *child, *co);
            consume(body_mut(&mut n), *cap);
            m_body.push(co_part);
            let last = m_body.len() - 1;
            consume(m_body, last);
            process.push(n);
        }
        Redex::Open {
            at,
            cap,
            opened,
            co,
        } => {
            let process = process_mut(&mut next.parts, at);
            let (open_part, mut n) = take_two(process, *cap, *opened);
            process.push(open_part);
            let last = process.len() - 1;
            consume(process, last);
            let body = body_mut(&mut n);
            consume(body, *co);
            process.append(body);
        }
    }
    next
}
