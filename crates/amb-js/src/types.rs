//! The checker: scoping (unknown names, recursion, duplicates) and type inference.
//!
//! Hindley–Milner inference with let-polymorphism: a `const` is generalised, so
//! `const id = x => x` may be used at several types in one program. The operators
//! are overloaded through a set of allowed type heads on each type variable: `+`
//! needs string, int or float; `*` and unary `-` int or float; `.length` string or
//! list; list elements and the program's value are data (not functions). Unifying
//! two variables intersects their sets; an empty set is a type error.

use std::{collections::HashMap, fmt};

use crate::{
    ast::{Const, Expr, ExprKind, Pos, Program},
    error::JsError,
};

const STR: u8 = 1;
const INT: u8 = 2;
const FLOAT: u8 = 4;
const BOOL: u8 = 8;
const LIST: u8 = 16;
const FUNC: u8 = 32;
const ANY: u8 = 63;
const DATA: u8 = STR | INT | FLOAT | BOOL | LIST;
const PLUS: u8 = STR | INT | FLOAT;
const NUM: u8 = INT | FLOAT;
const LEN: u8 = STR | LIST;

/// A type of the subset.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// A type variable (an index into the checker's table).
    Var(usize),
    /// `string`.
    Str,
    /// `int` (signed 64-bit).
    Int,
    /// `float` (binary64).
    Float,
    /// `bool`.
    Bool,
    /// A list of elements of one type.
    List(Box<Ty>),
    /// A function from parameters to a result.
    Fn(Vec<Ty>, Box<Ty>),
}

fn head(ty: &Ty) -> u8 {
    match ty {
        Ty::Var(_) => ANY,
        Ty::Str => STR,
        Ty::Int => INT,
        Ty::Float => FLOAT,
        Ty::Bool => BOOL,
        Ty::List(_) => LIST,
        Ty::Fn(..) => FUNC,
    }
}

fn heads_text(heads: u8) -> String {
    let names = [
        (STR, "string"),
        (INT, "int"),
        (FLOAT, "float"),
        (BOOL, "bool"),
        (LIST, "list"),
        (FUNC, "function"),
    ];
    let picked: Vec<&str> = names
        .iter()
        .filter(|(h, _)| heads & h != 0)
        .map(|(_, n)| *n)
        .collect();
    match picked.len() {
        0 => "nothing".into(),
        1 => picked[0].into(),
        _ => format!(
            "{} or {}",
            picked[..picked.len() - 1].join(", "),
            picked[picked.len() - 1]
        ),
    }
}

#[derive(Clone, Debug)]
struct VarInfo {
    bound: Option<Ty>,
    heads: u8,
    level: u32,
}

#[derive(Clone, Debug)]
enum Binding {
    Mono(Ty),
    Poly(Vec<usize>, Ty),
}

/// Checks a program: every name bound, no recursion, and a type for everything.
/// Returns the type of the program's value.
pub fn check(program: &Program) -> Result<Ty, JsError> {
    let mut checker = Checker {
        vars: Vec::new(),
        env: Vec::new(),
        index: HashMap::new(),
        pending: Vec::new(),
        level: 0,
    };
    checker.consts(&program.consts, &[])?;
    let ty = checker.infer(&program.body)?;
    checker.constrain(&ty, DATA).map_err(|found| JsError::Type {
        pos: program.body.pos,
        construct: "program value".into(),
        message: format!("the program's value must be data (a string, number, boolean or list), found {found}"),
    })?;
    Ok(checker.resolve(&ty))
}

struct Checker {
    vars: Vec<VarInfo>,
    /// The bindings in scope, innermost last.
    env: Vec<(String, Binding)>,
    /// Where each name is bound in `env`, innermost last.
    index: HashMap<String, Vec<usize>>,
    /// Declared but not yet bound names, with the size of `env` when their scope
    /// began: such a name shadows every binding below that size.
    pending: Vec<(String, usize)>,
    level: u32,
}

/// Prints a type with its variables as `'a`, `'b`, ….
struct Show<'c>(&'c Checker, &'c Ty);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.resolve(self.1) {
            Ty::Var(v) => {
                let heads = self.0.vars[v].heads;
                if heads == ANY {
                    write!(f, "'t{v}")
                } else {
                    write!(f, "'t{v} ({})", heads_text(heads))
                }
            }
            Ty::Str => f.write_str("string"),
            Ty::Int => f.write_str("int"),
            Ty::Float => f.write_str("float"),
            Ty::Bool => f.write_str("bool"),
            Ty::List(t) => write!(f, "list of {}", Show(self.0, &t)),
            Ty::Fn(ps, r) => {
                f.write_str("(")?;
                for (i, p) in ps.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Show(self.0, p))?;
                }
                write!(f, ") => {}", Show(self.0, &r))
            }
        }
    }
}

impl Checker {
    fn bind(&mut self, name: &str, binding: Binding) {
        self.index
            .entry(name.to_string())
            .or_default()
            .push(self.env.len());
        self.env.push((name.to_string(), binding));
    }

    fn unbind_to(&mut self, mark: usize) {
        while self.env.len() > mark {
            let (name, _) = self.env.pop().expect("a binding above the mark");
            if let Some(places) = self.index.get_mut(&name) {
                places.pop();
            }
        }
    }

    fn fresh(&mut self, heads: u8) -> Ty {
        self.vars.push(VarInfo {
            bound: None,
            heads,
            level: self.level,
        });
        Ty::Var(self.vars.len() - 1)
    }

    fn find(&self, ty: &Ty) -> Ty {
        let mut ty = ty.clone();
        while let Ty::Var(v) = ty {
            match &self.vars[v].bound {
                Some(t) => ty = t.clone(),
                None => return Ty::Var(v),
            }
        }
        ty
    }

    fn resolve(&self, ty: &Ty) -> Ty {
        match self.find(ty) {
            Ty::List(t) => Ty::List(Box::new(self.resolve(&t))),
            Ty::Fn(ps, r) => Ty::Fn(
                ps.iter().map(|p| self.resolve(p)).collect(),
                Box::new(self.resolve(&r)),
            ),
            other => other,
        }
    }

    fn show(&self, ty: &Ty) -> String {
        Show(self, ty).to_string()
    }

    /// Restricts a type to the heads in `allowed`; on failure, the type as found.
    fn constrain(&mut self, ty: &Ty, allowed: u8) -> Result<(), String> {
        match self.find(ty) {
            Ty::Var(v) => {
                let heads = self.vars[v].heads & allowed;
                if heads == 0 {
                    return Err(self.show(ty));
                }
                self.vars[v].heads = heads;
                Ok(())
            }
            other => {
                if head(&other) & allowed == 0 {
                    Err(self.show(&other))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether `v` occurs in `ty`; lowers the levels of `ty`'s variables to `level`.
    fn occurs_adjust(&mut self, v: usize, ty: &Ty, level: u32) -> bool {
        match self.find(ty) {
            Ty::Var(w) => {
                if w == v {
                    return true;
                }
                self.vars[w].level = self.vars[w].level.min(level);
                false
            }
            Ty::List(t) => self.occurs_adjust(v, &t, level),
            Ty::Fn(ps, r) => {
                ps.iter().any(|p| self.occurs_adjust(v, p, level))
                    || self.occurs_adjust(v, &r, level)
            }
            _ => false,
        }
    }

    fn unify(&mut self, a: &Ty, b: &Ty) -> Result<(), ()> {
        let (a, b) = (self.find(a), self.find(b));
        match (&a, &b) {
            (Ty::Var(x), Ty::Var(y)) if x == y => Ok(()),
            (Ty::Var(x), Ty::Var(y)) => {
                let heads = self.vars[*x].heads & self.vars[*y].heads;
                if heads == 0 {
                    return Err(());
                }
                let level = self.vars[*x].level.min(self.vars[*y].level);
                self.vars[*y].heads = heads;
                self.vars[*y].level = level;
                self.vars[*x].bound = Some(b.clone());
                Ok(())
            }
            (Ty::Var(x), other) | (other, Ty::Var(x)) => {
                let x = *x;
                if self.vars[x].heads & head(other) == 0 {
                    return Err(());
                }
                let level = self.vars[x].level;
                if self.occurs_adjust(x, other, level) {
                    return Err(());
                }
                self.vars[x].bound = Some(other.clone());
                Ok(())
            }
            (Ty::List(x), Ty::List(y)) => self.unify(x, y),
            (Ty::Fn(p1, r1), Ty::Fn(p2, r2)) if p1.len() == p2.len() => {
                for (x, y) in p1.iter().zip(p2) {
                    self.unify(x, y)?;
                }
                self.unify(r1, r2)
            }
            _ if a == b && !matches!(a, Ty::List(_) | Ty::Fn(..)) => Ok(()),
            _ => Err(()),
        }
    }

    fn type_error(&self, pos: Pos, construct: &str, message: String) -> JsError {
        JsError::Type {
            pos,
            construct: construct.into(),
            message,
        }
    }

    /// The free variables of `ty` above the current level (those to generalise).
    fn generic_vars(&self, ty: &Ty, out: &mut Vec<usize>) {
        match self.find(ty) {
            Ty::Var(v) if self.vars[v].level > self.level && !out.contains(&v) => out.push(v),
            Ty::List(t) => self.generic_vars(&t, out),
            Ty::Fn(ps, r) => {
                for p in &ps {
                    self.generic_vars(p, out);
                }
                self.generic_vars(&r, out);
            }
            _ => {}
        }
    }

    fn instantiate(&mut self, generic: &[usize], ty: &Ty) -> Ty {
        let fresh: Vec<(usize, Ty)> = generic
            .iter()
            .map(|&v| {
                let heads = self.vars[v].heads;
                (v, self.fresh(heads))
            })
            .collect();
        self.substitute(ty, &fresh)
    }

    fn substitute(&self, ty: &Ty, map: &[(usize, Ty)]) -> Ty {
        match self.find(ty) {
            Ty::Var(v) => map
                .iter()
                .find(|(w, _)| *w == v)
                .map_or(Ty::Var(v), |(_, t)| t.clone()),
            Ty::List(t) => Ty::List(Box::new(self.substitute(&t, map))),
            Ty::Fn(ps, r) => Ty::Fn(
                ps.iter().map(|p| self.substitute(p, map)).collect(),
                Box::new(self.substitute(&r, map)),
            ),
            other => other,
        }
    }

    /// Binds a scope's declarations in order; `params` are the names already bound
    /// in this scope (a block's parameters).
    fn consts(&mut self, consts: &[Const], params: &[String]) -> Result<(), JsError> {
        let start = self.pending.len();
        for (i, c) in consts.iter().enumerate() {
            if params.contains(&c.name) || consts[..i].iter().any(|d| d.name == c.name) {
                return Err(JsError::Duplicate {
                    pos: c.pos,
                    name: c.name.clone(),
                });
            }
        }
        // Names declared in this scope and not yet bound, in reverse so that binding
        // the next one pops it.
        let scope = self.env.len();
        self.pending
            .extend(consts.iter().rev().map(|c| (c.name.clone(), scope)));
        for c in consts {
            self.level += 1;
            let ty = self.infer(&c.value)?;
            self.level -= 1;
            let mut generic = Vec::new();
            self.generic_vars(&ty, &mut generic);
            self.bind(&c.name, Binding::Poly(generic, ty));
            // The declaration is bound: later initializers may use it.
            self.pending.pop();
        }
        self.pending.truncate(start);
        Ok(())
    }

    fn lookup(&mut self, name: &str, pos: Pos) -> Result<Ty, JsError> {
        let found = self
            .index
            .get(name)
            .and_then(|places| places.last())
            .map(|&i| self.env[i].1.clone());
        let at = self
            .index
            .get(name)
            .and_then(|places| places.last())
            .copied();
        // A declaration of an inner scope not yet bound hides outer bindings (JS's
        // temporal dead zone): using it is recursion or use before declaration.
        if self
            .pending
            .iter()
            .any(|(n, scope)| n == name && at.is_none_or(|i| i < *scope))
        {
            return Err(JsError::Recursion {
                pos,
                name: name.into(),
            });
        }
        match found {
            Some(Binding::Mono(ty)) => Ok(ty),
            Some(Binding::Poly(generic, ty)) => Ok(self.instantiate(&generic, &ty)),
            None if crate::parse::is_reserved(name) => Err(JsError::Reserved {
                pos,
                name: name.into(),
            }),
            None => Err(JsError::UnknownName {
                pos,
                name: name.into(),
            }),
        }
    }

    fn infer(&mut self, expr: &Expr) -> Result<Ty, JsError> {
        let pos = expr.pos;
        match &expr.kind {
            ExprKind::Str(_) => Ok(Ty::Str),
            ExprKind::Int(_) => Ok(Ty::Int),
            ExprKind::Float(_) => Ok(Ty::Float),
            ExprKind::Bool(_) => Ok(Ty::Bool),
            ExprKind::Var(name) => self.lookup(name, pos),
            ExprKind::Array(items) => {
                let element = self.fresh(DATA);
                for item in items {
                    let ty = self.infer(item)?;
                    if self.constrain(&ty, DATA).is_err() {
                        let found = self.show(&ty);
                        return Err(self.type_error(
                            item.pos,
                            "array literal",
                            format!("elements must be data, found {found}"),
                        ));
                    }
                    if self.unify(&element, &ty).is_err() {
                        let (want, found) = (self.show(&element), self.show(&ty));
                        return Err(self.type_error(
                            item.pos,
                            "array literal",
                            format!("elements must have one type: expected {want}, found {found}"),
                        ));
                    }
                }
                Ok(Ty::List(Box::new(element)))
            }
            ExprKind::Arrow {
                params,
                consts,
                body,
            } => {
                let mark = self.env.len();
                let mut tys = Vec::new();
                for (name, _) in params {
                    let ty = self.fresh(ANY);
                    tys.push(ty.clone());
                    self.bind(name, Binding::Mono(ty));
                }
                let names: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
                self.consts(consts, &names)?;
                let result = self.infer(body)?;
                self.unbind_to(mark);
                Ok(Ty::Fn(tys, Box::new(result)))
            }
            ExprKind::Call { callee, args } => {
                let f = self.infer(callee)?;
                let mut arg_tys = Vec::new();
                for a in args {
                    arg_tys.push(self.infer(a)?);
                }
                match self.find(&f) {
                    Ty::Fn(ps, r) => {
                        if ps.len() != args.len() {
                            return Err(self.type_error(
                                pos,
                                "call",
                                format!(
                                    "the function takes {} argument(s), the call passes {}",
                                    ps.len(),
                                    args.len()
                                ),
                            ));
                        }
                        for ((p, a), arg) in ps.iter().zip(&arg_tys).zip(args) {
                            if self.unify(p, a).is_err() {
                                let (want, found) = (self.show(p), self.show(a));
                                return Err(self.type_error(
                                    arg.pos,
                                    "call",
                                    format!("argument: expected {want}, found {found}"),
                                ));
                            }
                        }
                        Ok(*r)
                    }
                    Ty::Var(_) => {
                        let result = self.fresh(ANY);
                        let want = Ty::Fn(arg_tys, Box::new(result.clone()));
                        if self.unify(&f, &want).is_err() {
                            let found = self.show(&f);
                            return Err(self.type_error(
                                pos,
                                "call",
                                format!("calling {found}, which is not a function"),
                            ));
                        }
                        Ok(result)
                    }
                    other => {
                        let found = self.show(&other);
                        Err(self.type_error(
                            pos,
                            "call",
                            format!("calling a {found}, which is not a function"),
                        ))
                    }
                }
            }
            ExprKind::Add(l, r) => self.binary(pos, "`+`", PLUS, l, r),
            ExprKind::Mul(l, r) => self.binary(pos, "`*`", NUM, l, r),
            ExprKind::Neg(a) => {
                let ty = self.infer(a)?;
                self.constrain(&ty, NUM).map_err(|found| {
                    self.type_error(
                        pos,
                        "unary `-`",
                        format!("expected an int or a float, found {found}"),
                    )
                })?;
                Ok(ty)
            }
            ExprKind::Length(a) => {
                let ty = self.infer(a)?;
                self.constrain(&ty, LEN).map_err(|found| {
                    self.type_error(
                        pos,
                        "`.length`",
                        format!("expected a string or a list, found {found}"),
                    )
                })?;
                Ok(Ty::Int)
            }
        }
    }

    fn binary(
        &mut self,
        pos: Pos,
        op: &str,
        allowed: u8,
        l: &Expr,
        r: &Expr,
    ) -> Result<Ty, JsError> {
        let lt = self.infer(l)?;
        let rt = self.infer(r)?;
        let what = heads_text(allowed);
        for (ty, side) in [(&lt, l), (&rt, r)] {
            if let Err(found) = self.constrain(ty, allowed) {
                return Err(self.type_error(
                    side.pos,
                    op,
                    format!("expected {what}, found {found}"),
                ));
            }
        }
        if self.unify(&lt, &rt).is_err() {
            let (a, b) = (self.show(&lt), self.show(&rt));
            return Err(self.type_error(
                pos,
                op,
                format!("{a} and {b}: both sides must have one type (no implicit conversion)"),
            ));
        }
        Ok(lt)
    }
}
