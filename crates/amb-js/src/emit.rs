//! The residual program as ROAM text, through the protocol primitives.
//!
//! A call `f(x, y)` placed in a container is four parts:
//!
//! ```text
//! call[in f.open_.return[open_.in func] | x-0[…] | y-1[…]] |
//! func[in_ f.open f.open_] | open func |
//! f[in_ call.open call.(open return.open_ | BODY)]
//! ```
//!
//! `call` enters the function `f`, which opens it, opens the `return` inside and so
//! moves into the caller's `func`; `func` opens `f` and the container opens `func`:
//! what is left is the body's value. The arguments travel in the call as one
//! carrier per use of a parameter (`x-0`, named after the parameter and unique in
//! the program); each carrier moves from the function's top along the names of the
//! value template down to its slot (`in int.in plus.in left.open_`), every ambient
//! on the way admitting it with `in_ x-0`, and the slot opens it. Operators are the
//! value ambients of `spec/values.md` (`string[concat[left[…]|right[…]]]`,
//! `int[plus[…]]`, `int[multiply[…]]`, `int[length[…]]`, `list[cons[head|tail]]`).
//! A carrier that itself waits for a value of the caller's caller (a parameter
//! passed on: `x => g(x)`) admits that value before it moves, and the `call`
//! holding it does not leave before it has passed.

use crate::{
    ast::Pos,
    residual::{Call, Head, R, RKind},
};

/// One entry of the source map: where a generated ambient's name starts in the
/// compact ROAM text, and the JavaScript construct it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Byte offset of the ambient's name in the generated text.
    pub offset: usize,
    /// The JavaScript place.
    pub pos: Pos,
    /// What the ambient stands for: `function`, `call`, `argument`, `value`.
    pub what: &'static str,
}

/// A piece of generated text with its unfilled parameter uses.
#[derive(Debug, Default)]
struct Frag {
    text: String,
    holes: Vec<Hole>,
    marks: Vec<Mark>,
}

#[derive(Debug)]
struct Hole {
    carrier: String,
    param: usize,
    /// The ambients to enter from this fragment's container down to the hole's
    /// slot, innermost first (wrapping pushes the new outermost one).
    path_rev: Vec<String>,
}

pub(crate) struct Emitter<'n> {
    param_names: &'n [String],
    carriers: usize,
}

fn name(text: &str) -> String {
    if amb_syntax::is_bare_name(text) {
        text.to_string()
    } else {
        amb_syntax::quote_name(text)
    }
}

impl Frag {
    fn leaf(text: String, pos: Pos) -> Frag {
        Frag {
            text,
            holes: Vec::new(),
            marks: vec![Mark {
                offset: 0,
                pos,
                what: "value",
            }],
        }
    }

    /// `n[co-capabilities | self]`: admits every carrier passing through, opens
    /// those whose slot this is.
    fn wrap(mut self, ambient: &str) -> Frag {
        let mut text = String::with_capacity(self.text.len() + ambient.len() + 2);
        text.push_str(&name(ambient));
        text.push('[');
        for hole in &self.holes {
            let c = name(&hole.carrier);
            if hole.path_rev.is_empty() {
                text.push_str(&format!("in_ {c}.open {c}|"));
            } else {
                text.push_str(&format!("in_ {c}|"));
            }
        }
        if self.text.is_empty() && text.ends_with('|') {
            text.pop();
        }
        let shift = text.len();
        for m in &mut self.marks {
            m.offset += shift;
        }
        text.push_str(&self.text);
        text.push(']');
        for hole in &mut self.holes {
            hole.path_rev.push(ambient.to_string());
        }
        Frag {
            text,
            holes: self.holes,
            marks: self.marks,
        }
    }

    /// Two fragments side by side in one container.
    fn par(mut self, other: Frag) -> Frag {
        if other.text.is_empty() && other.marks.is_empty() {
            self.holes.extend(other.holes);
            return self;
        }
        let shift = if self.text.is_empty() {
            0
        } else {
            self.text.len() + 1
        };
        if !self.text.is_empty() && !other.text.is_empty() {
            self.text.push('|');
        }
        self.text.push_str(&other.text);
        self.holes.extend(other.holes);
        self.marks.extend(other.marks.into_iter().map(|mut m| {
            m.offset += shift;
            m
        }));
        self
    }

    fn mark(mut self, pos: Pos, what: &'static str) -> Frag {
        self.marks.push(Mark {
            offset: 0,
            pos,
            what,
        });
        self
    }
}

impl<'n> Emitter<'n> {
    pub(crate) fn new(param_names: &'n [String]) -> Emitter<'n> {
        Emitter {
            param_names,
            carriers: 0,
        }
    }

    /// The whole program: the value's text and the source map.
    pub(crate) fn program(&mut self, value: &R) -> (String, Vec<Mark>) {
        let frag = self.emit(value);
        debug_assert!(frag.holes.is_empty(), "the program reads no parameter");
        let mut marks = frag.marks;
        marks.sort_by_key(|m| m.offset);
        (frag.text, marks)
    }

    fn emit(&mut self, r: &R) -> Frag {
        match &r.kind {
            RKind::Str(s) => Frag::leaf(format!("string[{}[]]", name(s)), r.pos),
            RKind::Int(n) => Frag::leaf(format!("int[{n}[]]"), r.pos),
            RKind::Float(f) => Frag::leaf(format!("float[{}[]]", name(&format!("{f:?}"))), r.pos),
            RKind::Bool(b) => Frag::leaf(format!("bool[{b}[]]"), r.pos),
            RKind::List(items) => self.list(items, r.pos),
            RKind::Add(head, a, b) => {
                let op = if *head == Head::Str { "concat" } else { "plus" };
                let left = self.emit(a);
                self.binary(head.type_name(), op, left, b, r.pos)
            }
            RKind::Mul(head, a, b) => {
                let left = self.emit(a);
                self.binary(head.type_name(), "multiply", left, b, r.pos)
            }
            RKind::Neg(head, a) => {
                let minus_one = if *head == Head::Int {
                    "int[-1[]]".to_string()
                } else {
                    "float[\"-1.0\"[]]".to_string()
                };
                let left = Frag::leaf(minus_one, r.pos);
                self.binary(head.type_name(), "multiply", left, a, r.pos)
            }
            RKind::Length(a) => self.emit(a).wrap("length").wrap("int").mark(r.pos, "value"),
            RKind::Param(id) => {
                self.carriers += 1;
                let carrier = format!("{}-{}", self.param_names[*id], self.carriers - 1);
                Frag {
                    text: String::new(),
                    holes: vec![Hole {
                        carrier,
                        param: *id,
                        path_rev: Vec::new(),
                    }],
                    marks: Vec::new(),
                }
            }
            RKind::Call(call) => self.call(call, r.pos),
        }
    }

    fn binary(&mut self, ty: &str, op: &str, left: Frag, right: &R, pos: Pos) -> Frag {
        let right = self.emit(right);
        left.wrap("left")
            .par(right.wrap("right"))
            .wrap(op)
            .wrap(ty)
            .mark(pos, "value")
    }

    /// `list[cons[head[a]|tail[list[cons[head[b]|tail[list[]]]]]]]`: the text
    /// `wrap` would give, written front to back in one pass (a long list would
    /// otherwise be copied once per element).
    fn list(&mut self, items: &[R], pos: Pos) -> Frag {
        let frags: Vec<Frag> = items.iter().map(|item| self.emit(item)).collect();
        // `in_ c|` for every carrier of the elements from k on.
        let mut suffix = vec![String::new(); frags.len() + 1];
        for k in (0..frags.len()).rev() {
            let mut caps = String::new();
            for hole in &frags[k].holes {
                caps.push_str(&format!("in_ {}|", name(&hole.carrier)));
            }
            caps.push_str(&suffix[k + 1]);
            suffix[k] = caps;
        }
        let mut out = Frag::default();
        let count = frags.len();
        for (k, item) in frags.into_iter().enumerate() {
            out.marks.push(Mark {
                offset: out.text.len(),
                pos,
                what: "value",
            });
            out.text.push_str("list[");
            out.text.push_str(&suffix[k]);
            out.text.push_str("cons[");
            out.text.push_str(&suffix[k]);
            out.text.push_str("head[");
            let mut slot: Vec<String> = item
                .holes
                .iter()
                .map(|hole| {
                    let c = name(&hole.carrier);
                    if hole.path_rev.is_empty() {
                        format!("in_ {c}.open {c}")
                    } else {
                        format!("in_ {c}")
                    }
                })
                .collect();
            let shift = out.text.len() + slot.iter().map(|p| p.len() + 1).sum::<usize>();
            if !item.text.is_empty() {
                slot.push(item.text);
            }
            out.text.push_str(&slot.join("|"));
            out.marks.extend(item.marks.into_iter().map(|mut m| {
                m.offset += shift;
                m
            }));
            out.text.push_str("]|tail[");
            out.text.push_str(&suffix[k + 1]);
            out.holes.extend(item.holes.into_iter().map(|mut hole| {
                hole.path_rev
                    .extend(["head", "cons", "list"].map(String::from));
                for _ in 0..k {
                    hole.path_rev
                        .extend(["tail", "cons", "list"].map(String::from));
                }
                hole
            }));
        }
        out.marks.push(Mark {
            offset: out.text.len(),
            pos,
            what: "value",
        });
        out.text.push_str("list[]");
        for _ in 0..count {
            out.text.push_str("]]]");
        }
        out
    }

    fn call(&mut self, call: &Call, pos: Pos) -> Frag {
        let f = name(&call.name);
        // The instance: its body, with a carrier per parameter use.
        let body = self.emit(&call.body);
        let mut opens = Vec::new();
        let mut carriers = Frag::default();
        for hole in body.holes.iter() {
            let c = name(&hole.carrier);
            if hole.path_rev.is_empty() {
                opens.push(format!("open {c}"));
            }
            let index = call
                .params
                .iter()
                .position(|p| *p == hole.param)
                .expect("every parameter has an argument");
            let arg = self.emit(&call.args[index]);
            let mut caps: Vec<String> = Vec::new();
            for outer in &arg.holes {
                let o = name(&outer.carrier);
                caps.push(if outer.path_rev.is_empty() {
                    format!("in_ {o}.open {o}")
                } else {
                    format!("in_ {o}")
                });
            }
            for step in hole.path_rev.iter().rev() {
                caps.push(format!("in {}", name(step)));
            }
            caps.push("open_".to_string());
            let head = format!("{c}[{}", caps.join("."));
            let mut text = head.clone();
            let mut marks = vec![Mark {
                offset: 0,
                pos: call.args[index].pos,
                what: "argument",
            }];
            if !arg.text.is_empty() {
                text.push('|');
                marks.extend(arg.marks.into_iter().map(|mut m| {
                    m.offset += head.len() + 1;
                    m
                }));
                text.push_str(&arg.text);
            }
            text.push(']');
            let holes = arg
                .holes
                .into_iter()
                .map(|mut h| {
                    h.path_rev.push(hole.carrier.clone());
                    h
                })
                .collect();
            carriers = carriers.par(Frag { text, holes, marks });
        }
        let mut inner = vec!["open return.open_".to_string()];
        if !body.text.is_empty() {
            inner.push(body.text.clone());
        }
        inner.extend(opens);
        let instance_head = format!("{f}[in_ call.open call.(");
        let body_offset = instance_head.len() + inner[0].len() + 1;
        let instance_text = format!("{instance_head}{})]", inner.join("|"));
        let mut instance_marks = vec![Mark {
            offset: 0,
            pos: call.def,
            what: "function",
        }];
        if !body.text.is_empty() {
            instance_marks.extend(body.marks.into_iter().map(|mut m| {
                m.offset += body_offset;
                m
            }));
        }
        // The call: waits for the caller's values passing through to its carriers.
        let mut guards = String::new();
        for hole in &carriers.holes {
            guards.push_str(&format!("in_ {}.", name(&hole.carrier)));
        }
        let call_head = format!("call[{guards}in {f}.open_.return[open_.in func]");
        let mut call_text = call_head.clone();
        let mut call_marks = vec![Mark {
            offset: 0,
            pos,
            what: "call",
        }];
        if !carriers.text.is_empty() {
            call_text.push('|');
            call_marks.extend(carriers.marks.into_iter().map(|mut m| {
                m.offset += call_head.len() + 1;
                m
            }));
            call_text.push_str(&carriers.text);
        }
        call_text.push(']');
        let holes = carriers
            .holes
            .into_iter()
            .map(|mut h| {
                h.path_rev.push("call".to_string());
                h
            })
            .collect();
        let call_frag = Frag {
            text: call_text,
            holes,
            marks: call_marks,
        };
        let func = Frag {
            text: format!("func[in_ {f}.open {f}.open_]|open func"),
            holes: Vec::new(),
            marks: Vec::new(),
        };
        let instance = Frag {
            text: instance_text,
            holes: Vec::new(),
            marks: instance_marks,
        };
        call_frag.par(func).par(instance)
    }
}
