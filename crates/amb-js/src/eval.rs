//! A direct evaluator of the subset, over the same tree the compiler reads: the
//! oracle of the compiler's property test. It follows `spec/js.md`, not
//! JavaScript: ints are exact signed 64-bit (overflow leaves no value, as in the
//! VM), string length counts Unicode scalar values.

use std::rc::Rc;

use crate::ast::{Const, Expr, ExprKind, Program};

/// A value of the subset.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// A signed 64-bit integer.
    Int(i64),
    /// A binary64 float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A list.
    List(Vec<Value>),
}

#[derive(Clone)]
enum V<'p> {
    Data(Value),
    Fn(Rc<Closure<'p>>),
}

struct Closure<'p> {
    params: &'p [(String, crate::ast::Pos)],
    consts: &'p [Const],
    body: &'p Expr,
    env: Vec<(String, V<'p>)>,
}

/// The program's value, or `None` when an int operation overflows (the program
/// then has no value). The program must have passed `check`.
pub fn evaluate(program: &Program) -> Option<Value> {
    let mut env = Vec::new();
    for c in &program.consts {
        let v = eval(&c.value, &env)?;
        env.push((c.name.clone(), v));
    }
    match eval(&program.body, &env)? {
        V::Data(v) => Some(v),
        V::Fn(_) => None,
    }
}

fn data(v: V<'_>) -> Option<Value> {
    match v {
        V::Data(d) => Some(d),
        V::Fn(_) => None,
    }
}

fn eval<'p>(expr: &'p Expr, env: &[(String, V<'p>)]) -> Option<V<'p>> {
    Some(match &expr.kind {
        ExprKind::Str(s) => V::Data(Value::Str(s.clone())),
        ExprKind::Int(n) => V::Data(Value::Int(*n)),
        ExprKind::Float(f) => V::Data(Value::Float(*f)),
        ExprKind::Bool(b) => V::Data(Value::Bool(*b)),
        ExprKind::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                out.push(data(eval(item, env)?)?);
            }
            V::Data(Value::List(out))
        }
        ExprKind::Var(name) => env.iter().rev().find(|(n, _)| n == name)?.1.clone(),
        ExprKind::Arrow {
            params,
            consts,
            body,
        } => V::Fn(Rc::new(Closure {
            params,
            consts,
            body,
            env: env.to_vec(),
        })),
        ExprKind::Call { callee, args } => {
            let V::Fn(f) = eval(callee, env)? else {
                return None;
            };
            let mut inner = f.env.clone();
            for ((name, _), a) in f.params.iter().zip(args) {
                let v = eval(a, env)?;
                inner.push((name.clone(), v));
            }
            for c in f.consts {
                let v = eval(&c.value, &inner)?;
                inner.push((c.name.clone(), v));
            }
            eval(f.body, &inner)?
        }
        ExprKind::Add(a, b) => V::Data(match (data(eval(a, env)?)?, data(eval(b, env)?)?) {
            (Value::Str(x), Value::Str(y)) => Value::Str(x + &y),
            (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_add(y)?),
            (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
            _ => return None,
        }),
        ExprKind::Mul(a, b) => V::Data(match (data(eval(a, env)?)?, data(eval(b, env)?)?) {
            (Value::Int(x), Value::Int(y)) => Value::Int(x.checked_mul(y)?),
            (Value::Float(x), Value::Float(y)) => Value::Float(x * y),
            _ => return None,
        }),
        ExprKind::Neg(a) => V::Data(match data(eval(a, env)?)? {
            Value::Int(x) => Value::Int((-1i64).checked_mul(x)?),
            Value::Float(x) => Value::Float(-x),
            _ => return None,
        }),
        ExprKind::Length(a) => V::Data(match data(eval(a, env)?)? {
            Value::Str(s) => Value::Int(s.chars().count() as i64),
            Value::List(l) => Value::Int(l.len() as i64),
            _ => return None,
        }),
    })
}
