//! JavaScript text to the subset's tree (`ast.rs`), with `oxc_parser` doing the
//! parsing. Everything the parser accepts but the subset does not is refused here,
//! with the line:column of the construct; names the encoding reserves are refused
//! too. Scoping (unknown names, recursion) is the checker's job (`types.rs`).

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    self, Argument, ArrayExpressionElement, BinaryOperator, BindingPatternKind, Expression,
    Statement, UnaryOperator, VariableDeclarationKind,
};
use oxc_parser::Parser;
use oxc_span::{GetSpan, SourceType};

use crate::{
    ast::{Const, Expr, ExprKind, Pos, Program},
    error::{JsError, Lines},
};

/// Deepest nesting of expressions the compiler accepts.
pub const MAX_DEPTH: usize = 1_000;

/// Names a program may not bind: the protocol primitives, the value types, their
/// operations and operands, and the capability keywords. Names starting with
/// `sys_` are reserved too.
pub const RESERVED: &[&str] = &[
    "call", "arg", "func", "return", "string", "int", "float", "bool", "bytes", "char", "tuple",
    "list", "concat", "plus", "multiply", "length", "cons", "head", "tail", "left", "right", "in",
    "out", "open", "in_", "out_", "open_",
];

/// Whether a user name collides with the encoding's names.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name) || name.starts_with("sys_")
}

/// Parses JavaScript text into the subset's tree, refusing what is outside it.
pub fn parse(source: &str) -> Result<Program, JsError> {
    let allocator = Allocator::default();
    let lines = Lines::new(source);
    let parsed = Parser::new(&allocator, source, SourceType::cjs()).parse();
    if let Some(first) = parsed.errors.first() {
        let offset = first
            .labels
            .as_ref()
            .and_then(|labels| labels.first())
            .map_or(0, |label| label.offset());
        return Err(JsError::Syntax {
            pos: lines.pos(offset as u32),
            message: first.message.to_string(),
        });
    }
    let reader = Reader { lines: &lines };
    let program = &parsed.program;
    // A program that is one string literal is read by the parser as a directive.
    if let [directive] = program.directives.as_slice() {
        if program.body.is_empty() {
            let value = directive.expression.value.to_string();
            let pos = lines.pos(directive.span.start);
            return Ok(Program {
                consts: Vec::new(),
                body: Expr::new(ExprKind::Str(value), pos),
            });
        }
    }
    if let Some(directive) = program.directives.first() {
        return Err(reader.unsupported(
            directive.span,
            "an expression statement before the end",
            "only the last statement is an expression; name values with `const`",
        ));
    }
    let mut consts = Vec::new();
    let mut body = None;
    let count = program.body.len();
    for (i, statement) in program.body.iter().enumerate() {
        match statement {
            Statement::VariableDeclaration(decl) => {
                if i + 1 == count {
                    return Err(reader.unsupported(
                        decl.span,
                        "a declaration as the last statement",
                        "a program ends with one expression statement, its value",
                    ));
                }
                consts.extend(reader.declaration(decl, 0)?);
            }
            Statement::ExpressionStatement(statement) if i + 1 == count => {
                body = Some(reader.expr(&statement.expression, 0)?);
            }
            Statement::ExpressionStatement(statement) => {
                reader.expr(&statement.expression, 0)?;
                return Err(reader.unsupported(
                    statement.span,
                    "an expression statement before the end",
                    "only the last statement is an expression; name values with `const`",
                ));
            }
            other => return Err(reader.statement(other)),
        }
    }
    let body = body.ok_or_else(|| JsError::Unsupported {
        pos: lines.pos(source.len() as u32),
        construct: "a program without a final expression".into(),
        rule: "a program ends with one expression statement, its value".into(),
    })?;
    Ok(Program { consts, body })
}

struct Reader<'l, 's> {
    lines: &'l Lines<'s>,
}

impl Reader<'_, '_> {
    fn pos(&self, span: oxc_span::Span) -> Pos {
        self.lines.pos(span.start)
    }

    fn unsupported(&self, span: oxc_span::Span, construct: &str, rule: &str) -> JsError {
        JsError::Unsupported {
            pos: self.pos(span),
            construct: construct.into(),
            rule: rule.into(),
        }
    }

    /// The refusal of a statement that is not `const` or the final expression.
    fn statement(&self, statement: &Statement<'_>) -> JsError {
        let construct = match statement {
            Statement::IfStatement(_) => "if statement",
            Statement::ForStatement(_)
            | Statement::ForInStatement(_)
            | Statement::ForOfStatement(_)
            | Statement::WhileStatement(_)
            | Statement::DoWhileStatement(_) => "loop",
            Statement::FunctionDeclaration(_) => "function declaration",
            Statement::ClassDeclaration(_) => "class",
            Statement::ReturnStatement(_) => "return outside a function",
            Statement::BlockStatement(_) => "block statement",
            Statement::SwitchStatement(_) => "switch statement",
            Statement::ThrowStatement(_) | Statement::TryStatement(_) => "exception",
            Statement::EmptyStatement(_) => "empty statement",
            Statement::ImportDeclaration(_)
            | Statement::ExportAllDeclaration(_)
            | Statement::ExportDefaultDeclaration(_)
            | Statement::ExportNamedDeclaration(_) => "module declaration",
            _ => "this statement",
        };
        self.unsupported(
            statement.span(),
            construct,
            "a program is `const` declarations and one final expression",
        )
    }

    fn declaration(
        &self,
        decl: &ast::VariableDeclaration<'_>,
        depth: usize,
    ) -> Result<Vec<Const>, JsError> {
        match decl.kind {
            VariableDeclarationKind::Const => {}
            VariableDeclarationKind::Let => {
                return Err(self.unsupported(
                    decl.span,
                    "let declaration",
                    "bind names with `const`",
                ));
            }
            VariableDeclarationKind::Var => {
                return Err(self.unsupported(
                    decl.span,
                    "var declaration",
                    "bind names with `const`",
                ));
            }
            _ => {
                return Err(self.unsupported(
                    decl.span,
                    "using declaration",
                    "bind names with `const`",
                ));
            }
        }
        let mut out = Vec::new();
        for declarator in &decl.declarations {
            let (name, pos) = self.binding(&declarator.id)?;
            let init = declarator.init.as_ref().ok_or_else(|| {
                self.unsupported(
                    declarator.span,
                    "const without a value",
                    "`const name = expression`",
                )
            })?;
            let value = self.expr(init, depth + 1)?;
            out.push(Const { name, pos, value });
        }
        Ok(out)
    }

    fn binding(&self, pattern: &ast::BindingPattern<'_>) -> Result<(String, Pos), JsError> {
        match &pattern.kind {
            BindingPatternKind::BindingIdentifier(id) => {
                let pos = self.pos(id.span);
                let name = id.name.to_string();
                if is_reserved(&name) {
                    return Err(JsError::Reserved { pos, name });
                }
                Ok((name, pos))
            }
            BindingPatternKind::AssignmentPattern(p) => {
                Err(self.unsupported(p.span, "default value", "parameters are plain names"))
            }
            BindingPatternKind::ObjectPattern(p) => {
                Err(self.unsupported(p.span, "destructuring", "bind plain names"))
            }
            BindingPatternKind::ArrayPattern(p) => {
                Err(self.unsupported(p.span, "destructuring", "bind plain names"))
            }
        }
    }

    fn expr(&self, expression: &Expression<'_>, depth: usize) -> Result<Expr, JsError> {
        let pos = self.pos(expression.span());
        if depth > MAX_DEPTH {
            return Err(JsError::TooDeep {
                pos,
                limit: MAX_DEPTH,
            });
        }
        let sub = |e: &Expression<'_>| self.expr(e, depth + 1).map(Box::new);
        let kind = match expression {
            Expression::StringLiteral(s) => ExprKind::Str(s.value.to_string()),
            Expression::NumericLiteral(n) => self.number(n, false)?,
            Expression::BooleanLiteral(b) => ExprKind::Bool(b.value),
            Expression::Identifier(id) => {
                let name = id.name.to_string();
                if name == "undefined" || name == "NaN" || name == "Infinity" {
                    return Err(self.unsupported(
                        id.span,
                        &format!("`{name}`"),
                        "values are strings, numbers, booleans and arrays",
                    ));
                }
                ExprKind::Var(name)
            }
            Expression::ParenthesizedExpression(p) => return self.expr(&p.expression, depth + 1),
            Expression::ArrayExpression(array) => {
                let mut items = Vec::with_capacity(array.elements.len());
                for element in &array.elements {
                    match element {
                        ArrayExpressionElement::SpreadElement(s) => {
                            return Err(self.unsupported(s.span, "spread", "list the elements"));
                        }
                        ArrayExpressionElement::Elision(e) => {
                            return Err(self.unsupported(
                                e.span,
                                "array hole",
                                "list the elements",
                            ));
                        }
                        other => items.push(self.expr(other.to_expression(), depth + 1)?),
                    }
                }
                ExprKind::Array(items)
            }
            Expression::ArrowFunctionExpression(arrow) => self.arrow(arrow, depth)?,
            Expression::CallExpression(c) => {
                if c.optional {
                    return Err(self.unsupported(c.span, "optional call", "call with `f(x)`"));
                }
                if let Expression::StaticMemberExpression(m) = &c.callee {
                    return Err(self.unsupported(
                        m.span,
                        &format!("method call `.{}()`", m.property.name),
                        "the only member is `.length`",
                    ));
                }
                let mut args = Vec::with_capacity(c.arguments.len());
                for argument in &c.arguments {
                    match argument {
                        Argument::SpreadElement(s) => {
                            return Err(self.unsupported(s.span, "spread", "pass the arguments"));
                        }
                        other => args.push(self.expr(other.to_expression(), depth + 1)?),
                    }
                }
                ExprKind::Call {
                    callee: sub(&c.callee)?,
                    args,
                }
            }
            Expression::BinaryExpression(b) => match b.operator {
                BinaryOperator::Addition => ExprKind::Add(sub(&b.left)?, sub(&b.right)?),
                BinaryOperator::Multiplication => ExprKind::Mul(sub(&b.left)?, sub(&b.right)?),
                other => {
                    return Err(self.unsupported(
                        b.span,
                        &format!("operator `{}`", other.as_str()),
                        "the operators are `+`, `*` and unary `-`",
                    ));
                }
            },
            Expression::UnaryExpression(u) => match u.operator {
                UnaryOperator::UnaryNegation => match &u.argument {
                    Expression::NumericLiteral(n) => self.number(n, true)?,
                    other => ExprKind::Neg(sub(other)?),
                },
                other => {
                    return Err(self.unsupported(
                        u.span,
                        &format!("operator `{}`", other.as_str()),
                        "the operators are `+`, `*` and unary `-`",
                    ));
                }
            },
            Expression::StaticMemberExpression(m) => {
                if m.property.name != "length" || m.optional {
                    return Err(self.unsupported(
                        m.span,
                        &format!("member `.{}`", m.property.name),
                        "the only member is `.length`",
                    ));
                }
                ExprKind::Length(sub(&m.object)?)
            }
            other => return Err(self.other(other)),
        };
        Ok(Expr::new(kind, pos))
    }

    fn arrow(
        &self,
        arrow: &ast::ArrowFunctionExpression<'_>,
        depth: usize,
    ) -> Result<ExprKind, JsError> {
        if arrow.r#async {
            return Err(self.unsupported(
                arrow.span,
                "async function",
                "functions are plain arrows",
            ));
        }
        if let Some(rest) = &arrow.params.rest {
            return Err(self.unsupported(
                rest.span,
                "rest parameter",
                "parameters are plain names",
            ));
        }
        let mut params = Vec::new();
        for param in &arrow.params.items {
            let (name, pos) = self.binding(&param.pattern)?;
            if params.iter().any(|(n, _)| *n == name) {
                return Err(JsError::Duplicate { pos, name });
            }
            params.push((name, pos));
        }
        if let Some(directive) = arrow.body.directives.first() {
            return Err(self.unsupported(
                directive.span,
                "directive",
                "a block body is `const` declarations and one `return`",
            ));
        }
        let statements = &arrow.body.statements;
        if arrow.expression {
            let Some(Statement::ExpressionStatement(statement)) = statements.first() else {
                return Err(self.unsupported(arrow.span, "arrow body", "`(x) => expression`"));
            };
            let body = self.expr(&statement.expression, depth + 1)?;
            return Ok(ExprKind::Arrow {
                params,
                consts: Vec::new(),
                body: Box::new(body),
            });
        }
        let mut consts = Vec::new();
        let count = statements.len();
        for (i, statement) in statements.iter().enumerate() {
            match statement {
                Statement::VariableDeclaration(decl) => {
                    consts.extend(self.declaration(decl, depth + 1)?);
                }
                Statement::ReturnStatement(ret) if i + 1 == count => {
                    let Some(argument) = &ret.argument else {
                        return Err(self.unsupported(
                            ret.span,
                            "return without a value",
                            "`return expression;`",
                        ));
                    };
                    let body = self.expr(argument, depth + 1)?;
                    return Ok(ExprKind::Arrow {
                        params,
                        consts,
                        body: Box::new(body),
                    });
                }
                Statement::ReturnStatement(ret) => {
                    return Err(self.unsupported(
                        ret.span,
                        "return before the end of a block",
                        "a block body ends with its one `return`",
                    ));
                }
                Statement::ExpressionStatement(s) => {
                    self.expr(&s.expression, depth + 1)?;
                    return Err(self.unsupported(
                        s.span,
                        "expression statement in a block",
                        "a block body is `const` declarations and one `return`",
                    ));
                }
                other => return Err(self.statement(other)),
            }
        }
        Err(self.unsupported(
            arrow.body.span,
            "block body without `return`",
            "a block body ends with `return expression;`",
        ))
    }

    fn number(&self, n: &ast::NumericLiteral<'_>, negative: bool) -> Result<ExprKind, JsError> {
        let pos = self.pos(n.span);
        let raw = n
            .raw
            .as_ref()
            .map_or_else(|| n.value.to_string(), |r| r.to_string());
        let refuse = |reason: &str| JsError::Number {
            pos,
            text: raw.clone(),
            reason: reason.into(),
        };
        if raw.starts_with("0x")
            || raw.starts_with("0X")
            || raw.starts_with("0o")
            || raw.starts_with("0O")
            || raw.starts_with("0b")
            || raw.starts_with("0B")
        {
            return Err(refuse("only decimal numbers are in the subset"));
        }
        if raw.contains('_') {
            return Err(refuse("numeric separators are not in the subset"));
        }
        if raw.ends_with('n') {
            return Err(refuse("BigInt is not in the subset"));
        }
        if raw.contains(['.', 'e', 'E']) {
            let value = if negative { -n.value } else { n.value };
            if !value.is_finite() {
                return Err(refuse("the float is not finite"));
            }
            return Ok(ExprKind::Float(value));
        }
        if raw.len() > 1 && raw.starts_with('0') {
            return Err(refuse("legacy octal literals are not in the subset"));
        }
        let text = if negative {
            format!("-{raw}")
        } else {
            raw.clone()
        };
        text.parse::<i64>().map(ExprKind::Int).map_err(|_| {
            refuse("integers are signed 64-bit (-9223372036854775808 to 9223372036854775807)")
        })
    }

    fn other(&self, expression: &Expression<'_>) -> JsError {
        let (construct, rule) = match expression {
            Expression::ConditionalExpression(_) => {
                ("conditional `?:`", "there are no conditionals")
            }
            Expression::AssignmentExpression(_) => ("assignment", "bind names once with `const`"),
            Expression::UpdateExpression(_) => ("update `++`/`--`", "bind names once with `const`"),
            Expression::ThisExpression(_) => {
                ("`this`", "functions are arrows over their parameters")
            }
            Expression::ClassExpression(_) => ("class", "functions are arrows"),
            Expression::FunctionExpression(_) => {
                ("function expression", "write functions as arrows")
            }
            Expression::ObjectExpression(_) => (
                "object literal",
                "values are strings, numbers, booleans and arrays",
            ),
            Expression::NullLiteral(_) => {
                ("`null`", "values are strings, numbers, booleans and arrays")
            }
            Expression::TemplateLiteral(_) | Expression::TaggedTemplateExpression(_) => {
                ("template literal", "join strings with `+`")
            }
            Expression::RegExpLiteral(_) => (
                "regular expression",
                "values are strings, numbers, booleans and arrays",
            ),
            Expression::BigIntLiteral(_) => {
                ("BigInt", "integers are written in decimal without `n`")
            }
            Expression::LogicalExpression(_) => (
                "logical operator",
                "the operators are `+`, `*` and unary `-`",
            ),
            Expression::ComputedMemberExpression(_) => {
                ("indexing `a[i]`", "the only member is `.length`")
            }
            Expression::NewExpression(_) => ("`new`", "there are no classes"),
            Expression::SequenceExpression(_) => ("comma operator", "name values with `const`"),
            Expression::AwaitExpression(_) | Expression::YieldExpression(_) => {
                ("await/yield", "functions are plain arrows")
            }
            Expression::ChainExpression(_) => ("optional chaining", "the only member is `.length`"),
            _ => ("this expression", "see spec/js.md for the subset"),
        };
        self.unsupported(expression.span(), construct, rule)
    }
}
