//! From a checked program to the residual program (`residual.rs`).
//!
//! Function values are resolved while compiling: a call whose result is a function
//! (`adder(1)` in `adder(1)(2)`) is applied here, binding the parameters to the
//! arguments' compile-time values; a call whose result is data stays a call, to an
//! instance of the function whose data parameters are real parameters and whose
//! function parameters are fixed to the functions passed. Data captured from an
//! enclosing instance (the `a` of `b => a + b`) becomes one more parameter, passed
//! by the call. Nothing is computed: literals and operators stay as they are.

use std::{collections::HashMap, rc::Rc};

use crate::{
    ast::{Const, Expr, ExprKind, Pos, Program},
    error::JsError,
    residual::{Call, Head, R, RKind},
};

/// Largest residual program, in nodes (each call copies the called function).
pub(crate) const MAX_NODES: usize = 2_000_000;
/// Deepest nesting of calls being compiled at once.
pub(crate) const MAX_CALL_DEPTH: usize = 1_000;

/// The residual program and the names of its parameters.
#[derive(Debug)]
pub(crate) struct Specialized {
    pub(crate) value: R,
    pub(crate) param_names: Vec<String>,
}

#[derive(Clone, Debug)]
enum CVal<'p> {
    Dyn(Rc<R>, Head),
    Clo(Rc<Clo<'p>>),
}

impl CVal<'_> {
    fn open(&self) -> bool {
        match self {
            CVal::Dyn(r, _) => r.open,
            CVal::Clo(c) => env_open(&c.env),
        }
    }
}

#[derive(Debug)]
struct Clo<'p> {
    params: &'p [(String, Pos)],
    consts: &'p [Const],
    body: &'p Expr,
    def: Pos,
    env: Env<'p>,
    name: String,
}

type Env<'p> = Option<Rc<EnvNode<'p>>>;

#[derive(Debug)]
struct EnvNode<'p> {
    name: String,
    value: CVal<'p>,
    next: Env<'p>,
    open: bool,
}

fn env_open(env: &Env<'_>) -> bool {
    env.as_ref().is_some_and(|n| n.open)
}

fn bind<'p>(env: &Env<'p>, name: &str, value: CVal<'p>) -> Env<'p> {
    let open = value.open() || env_open(env);
    Some(Rc::new(EnvNode {
        name: name.to_string(),
        value,
        next: env.clone(),
        open,
    }))
}

fn lookup<'p>(env: &Env<'p>, name: &str) -> Option<CVal<'p>> {
    let mut node = env.as_ref();
    while let Some(n) = node {
        if n.name == name {
            return Some(n.value.clone());
        }
        node = n.next.as_ref();
    }
    None
}

/// Specialises a checked program (`types::check` must have accepted it).
pub(crate) fn specialize(program: &Program) -> Result<Specialized, JsError> {
    let mut s = Specializer {
        param_names: Vec::new(),
        nodes: 0,
        depth: 0,
        end: program.body.pos,
        globals: HashMap::new(),
    };
    // Top-level declarations live in `globals`, looked up when no local binding
    // has the name (the checker has made sure it is declared earlier).
    let env: Env<'_> = None;
    for c in &program.consts {
        let value = match s.eval(&c.value, &env, &c.name)? {
            CVal::Clo(clo) => CVal::Clo(Rc::new(Clo {
                params: clo.params,
                consts: clo.consts,
                body: clo.body,
                def: clo.def,
                env: clo.env.clone(),
                name: c.name.clone(),
            })),
            other => other,
        };
        s.globals.insert(&c.name, value);
    }
    match s.eval(&program.body, &env, "main")? {
        CVal::Dyn(r, _) => Ok(Specialized {
            value: Rc::unwrap_or_clone(r),
            param_names: s.param_names,
        }),
        CVal::Clo(_) => Err(JsError::Type {
            pos: program.body.pos,
            construct: "program value".into(),
            message: "the program's value is a function".into(),
        }),
    }
}

struct Specializer<'p> {
    globals: HashMap<&'p str, CVal<'p>>,
    param_names: Vec<String>,
    nodes: usize,
    depth: usize,
    end: Pos,
}

impl<'p> Specializer<'p> {
    fn make(&mut self, kind: RKind, pos: Pos) -> Result<R, JsError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(JsError::TooLarge {
                pos: self.end,
                limit: MAX_NODES,
            });
        }
        Ok(R::new(kind, pos))
    }

    fn data(&mut self, value: CVal<'_>) -> (R, Head) {
        match value {
            CVal::Dyn(r, h) => (Rc::unwrap_or_clone(r), h),
            // The checker allows only data here.
            CVal::Clo(c) => {
                unreachable!("the checker lets no function {} reach a data place", c.name)
            }
        }
    }

    fn eval(&mut self, expr: &'p Expr, env: &Env<'p>, context: &str) -> Result<CVal<'p>, JsError> {
        let pos = expr.pos;
        let dyn_of = |r: R, h: Head| CVal::Dyn(Rc::new(r), h);
        Ok(match &expr.kind {
            ExprKind::Str(s) => dyn_of(self.make(RKind::Str(s.clone()), pos)?, Head::Str),
            ExprKind::Int(n) => dyn_of(self.make(RKind::Int(*n), pos)?, Head::Int),
            ExprKind::Float(f) => dyn_of(self.make(RKind::Float(*f), pos)?, Head::Float),
            ExprKind::Bool(b) => dyn_of(self.make(RKind::Bool(*b), pos)?, Head::Bool),
            ExprKind::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let v = self.eval(item, env, context)?;
                    out.push(self.data(v).0);
                }
                dyn_of(self.make(RKind::List(out), pos)?, Head::List)
            }
            ExprKind::Var(name) => lookup(env, name)
                .or_else(|| self.globals.get(name.as_str()).cloned())
                .unwrap_or_else(|| unreachable!("the checker binds every name ({name} at {pos})")),
            ExprKind::Arrow {
                params,
                consts,
                body,
            } => CVal::Clo(Rc::new(Clo {
                params,
                consts,
                body,
                def: pos,
                env: env.clone(),
                name: context.to_string(),
            })),
            ExprKind::Add(a, b) | ExprKind::Mul(a, b) => {
                let va = self.eval(a, env, context)?;
                let (ra, head) = self.data(va);
                let vb = self.eval(b, env, context)?;
                let (rb, _) = self.data(vb);
                let kind = if matches!(expr.kind, ExprKind::Add(..)) {
                    RKind::Add(head, Box::new(ra), Box::new(rb))
                } else {
                    RKind::Mul(head, Box::new(ra), Box::new(rb))
                };
                dyn_of(self.make(kind, pos)?, head)
            }
            ExprKind::Neg(a) => {
                let va = self.eval(a, env, context)?;
                let (ra, head) = self.data(va);
                dyn_of(self.make(RKind::Neg(head, Box::new(ra)), pos)?, head)
            }
            ExprKind::Length(a) => {
                let va = self.eval(a, env, context)?;
                let (ra, _) = self.data(va);
                dyn_of(self.make(RKind::Length(Box::new(ra)), pos)?, Head::Int)
            }
            ExprKind::Call { callee, args } => {
                let f = match self.eval(callee, env, context)? {
                    CVal::Clo(c) => c,
                    CVal::Dyn(..) => unreachable!("the checker calls only functions ({pos})"),
                };
                let mut values = Vec::with_capacity(args.len());
                for a in args {
                    values.push(self.eval(a, env, context)?);
                }
                self.depth += 1;
                if self.depth > MAX_CALL_DEPTH {
                    return Err(JsError::CallsTooDeep {
                        pos,
                        limit: MAX_CALL_DEPTH,
                    });
                }
                let result = self.apply(&f, values, pos);
                self.depth -= 1;
                result?
            }
        })
    }

    /// The body of a function in `env` (its block's declarations, then its result).
    fn body(&mut self, f: &Clo<'p>, mut env: Env<'p>) -> Result<CVal<'p>, JsError> {
        for c in f.consts {
            let v = self.eval(&c.value, &env, &f.name)?;
            env = bind(&env, &c.name, v);
        }
        self.eval(f.body, &env, &f.name)
    }

    fn apply(
        &mut self,
        f: &Rc<Clo<'p>>,
        args: Vec<CVal<'p>>,
        pos: Pos,
    ) -> Result<CVal<'p>, JsError> {
        // First as a call that stays: data parameters become real parameters.
        let mut lifted: Vec<(usize, R)> = Vec::new();
        let mut env = self.lift_env(&f.env, &mut lifted)?;
        for ((name, _), arg) in f.params.iter().zip(&args) {
            let value = match arg {
                CVal::Dyn(r, h) => {
                    let id = self.param(name);
                    lifted.push((id, (**r).clone()));
                    CVal::Dyn(Rc::new(self.make(RKind::Param(id), r.pos)?), *h)
                }
                CVal::Clo(c) => CVal::Clo(self.lift_clo(c, &mut lifted)?),
            };
            env = bind(&env, name, value);
        }
        match self.body(f, env)? {
            CVal::Dyn(body, head) => {
                let (params, args) = lifted.into_iter().unzip();
                let call = Call {
                    name: f.name.clone(),
                    def: f.def,
                    params,
                    body: Rc::unwrap_or_clone(body),
                    args,
                };
                Ok(CVal::Dyn(
                    Rc::new(self.make(RKind::Call(Box::new(call)), pos)?),
                    head,
                ))
            }
            CVal::Clo(_) => {
                // The call returns a function: apply it here, in the caller.
                let mut env = f.env.clone();
                for ((name, _), arg) in f.params.iter().zip(args) {
                    env = bind(&env, name, arg);
                }
                self.body(f, env)
            }
        }
    }

    fn param(&mut self, name: &str) -> usize {
        self.param_names.push(name.to_string());
        self.param_names.len() - 1
    }

    /// `env` with every value that reads the caller's parameters replaced by a new
    /// parameter of the instance, recorded with its argument in `lifted`.
    fn lift_env(
        &mut self,
        env: &Env<'p>,
        lifted: &mut Vec<(usize, R)>,
    ) -> Result<Env<'p>, JsError> {
        let Some(node) = env else { return Ok(None) };
        if !node.open {
            return Ok(env.clone());
        }
        let next = self.lift_env(&node.next, lifted)?;
        let value = match &node.value {
            CVal::Dyn(r, h) if r.open => {
                let id = self.param(&node.name);
                lifted.push((id, (**r).clone()));
                CVal::Dyn(Rc::new(self.make(RKind::Param(id), r.pos)?), *h)
            }
            CVal::Clo(c) if env_open(&c.env) => CVal::Clo(self.lift_clo(c, lifted)?),
            other => other.clone(),
        };
        Ok(bind(&next, &node.name, value))
    }

    fn lift_clo(
        &mut self,
        c: &Rc<Clo<'p>>,
        lifted: &mut Vec<(usize, R)>,
    ) -> Result<Rc<Clo<'p>>, JsError> {
        if !env_open(&c.env) {
            return Ok(c.clone());
        }
        let env = self.lift_env(&c.env, lifted)?;
        Ok(Rc::new(Clo {
            params: c.params,
            consts: c.consts,
            body: c.body,
            def: c.def,
            env,
            name: c.name.clone(),
        }))
    }
}
