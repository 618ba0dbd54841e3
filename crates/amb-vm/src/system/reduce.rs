//! A reduction that meets each service call with its effect (`spec/system.md` §2):
//! right after a service ambient opens a `call`, before any other step, its `arg` is
//! read as a typed value, the service performed within its limits, and the result
//! (or the failure value) brought in in the `arg`'s place.

use std::sync::Arc;

use amb_bytecode::Cid;
use amb_engine::{AmbId, Engine, EngineError, Limits, Rule, Step};
use amb_log::{EffectEvent, SigningKey, UnsignedEffect};
use amb_syntax::{Ast, CapKind, NodeId, NodeKind};

use super::{
    perform::{EffectLimits, perform},
    service::{Failure, Service, SystemServices, is_service_name},
    term::{term_of, value_block},
};
use crate::{
    plan::Blocks,
    value::{Value, value_of},
};

/// One effect of a run: the service ambient's name, the argument (if it was a
/// value), the result brought in, and the value blocks naming them.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectRecord {
    /// The reserved name called.
    pub name: String,
    /// The argument, if the `arg` held exactly one typed value.
    pub argument: Option<Value>,
    /// The result, or the failure value.
    pub result: Value,
    /// The value block of the argument (`None` when it was not a value).
    pub args_cid: Option<Cid>,
    /// The value block of the result.
    pub result_cid: Cid,
    /// The number of the step after which it happened (from 1).
    pub after_step: u64,
}

impl EffectRecord {
    /// The effect event that records it in `log` at `seq`, referring to `refs`,
    /// signed by `key` (`spec/system.md` §6); `None` when the argument was not a
    /// value (no block names it).
    pub fn sign(
        &self,
        log: Cid,
        seq: u64,
        refs: Vec<Cid>,
        key: &SigningKey,
    ) -> Option<EffectEvent> {
        Some(EffectEvent::sign(
            UnsignedEffect {
                log,
                seq,
                service: self.name.clone(),
                args: self.args_cid?,
                result: self.result_cid,
                refs,
            },
            key,
        ))
    }

    /// The blocks of its argument's and result's value blocks, to store with the
    /// run.
    pub fn blocks(&self) -> Result<Blocks, amb_bytecode::CompileError> {
        let mut blocks = value_block(&self.result)?.1;
        if let Some(argument) = &self.argument {
            blocks.extend(value_block(argument)?.1);
        }
        blocks.sort();
        blocks.dedup();
        Ok(blocks)
    }
}

/// Why a reduction with effects stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReduceError {
    /// A limit of the engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A service ambient does not have the body the host requires.
    #[error(
        "rule reserved-name: {name} is a reserved service name (spec/system.md §2), so its body must be exactly `in_ call.open call.open return.open_`"
    )]
    ReservedName {
        /// The ambient's name.
        name: String,
    },
    /// A value too large to compile into blocks.
    #[error("a value of an effect does not compile: {0}")]
    Compile(#[from] amb_bytecode::CompileError),
}

/// The names of the service ambients `ast` holds (`sys_` names, sorted, each once):
/// what a deployment needs from its host, read before it runs. A name that is no
/// service is listed too (a host answers it `not-offered`).
pub fn services_needed(ast: &Ast) -> Vec<String> {
    let mut names: Vec<String> = (0..ast.len())
        .filter_map(|index| {
            let node = ast.node(ast.node_id(index));
            let name = ast.name_text(node.name()?);
            (node.kind() == NodeKind::Ambient && is_service_name(name)).then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether `ast` holds a service ambient (a `sys_` name), so reducing it needs a
/// host's services.
pub fn uses_services(ast: &Ast) -> bool {
    !services_needed(ast).is_empty()
}

/// Checks that every `sys_` ambient of `ast` has exactly the body
/// `in_ call.open call.open return.open_` (`reserved-name`).
pub fn check_reserved(ast: &Ast) -> Result<(), ReduceError> {
    for index in 0..ast.len() {
        let id = ast.node_id(index);
        let node = ast.node(id);
        if node.kind() != NodeKind::Ambient {
            continue;
        }
        let name = ast.name_text(node.name().expect("ambients are named"));
        if is_service_name(name) && !has_service_body(ast, id) {
            return Err(ReduceError::ReservedName {
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

/// Whether `amb`'s body is exactly `in_ call.open call.open return.open_`.
fn has_service_body(ast: &Ast, amb: NodeId) -> bool {
    let chain = [
        (CapKind::InCo, Some("call")),
        (CapKind::Open, Some("call")),
        (CapKind::Open, Some("return")),
        (CapKind::OpenCo, None),
    ];
    let mut at = Some(amb);
    for (kind, target) in chain {
        let mut children = ast.children(at);
        let (Some(child), None) = (children.next(), children.next()) else {
            return false;
        };
        let node = ast.node(child);
        let named = node.name().map(|n| ast.name_text(n));
        if node.kind() != NodeKind::Cap(kind) || (target.is_some() && named != target) {
            return false;
        }
        at = Some(child);
    }
    ast.children(at).next().is_none()
}

/// Reduces `ast` to its normal form (within `limits`), performing each service call
/// through `services` for the program `scope`; returns the canonical final term and
/// the effects in the order they happened.
pub fn reduce(
    ast: &Ast,
    services: &Arc<dyn SystemServices>,
    scope: &str,
    limits: Limits,
    effect_limits: EffectLimits,
) -> Result<(Ast, Vec<EffectRecord>), ReduceError> {
    reduce_traced(ast, services, scope, limits, effect_limits, |_, _| {})
}

/// [`reduce`], calling `on_step` after every step (before the effect it may cause).
pub fn reduce_traced(
    ast: &Ast,
    services: &Arc<dyn SystemServices>,
    scope: &str,
    limits: Limits,
    effect_limits: EffectLimits,
    mut on_step: impl FnMut(&Engine<'_>, &Step),
) -> Result<(Ast, Vec<EffectRecord>), ReduceError> {
    check_reserved(ast)?;
    let mut engine = Engine::new(ast, limits)?;
    let host = EffectHost {
        services,
        scope,
        limits: effect_limits,
    };
    let mut effects = Vec::new();
    while let Some(step) = engine.step()? {
        on_step(&engine, &step);
        effects.extend(host.meet_step(&mut engine, &step)?);
    }
    let mut term = engine.to_ast();
    term.canonicalize();
    Ok((term, effects))
}

/// What meets a program's service calls: the host's services, the program's storage
/// scope and the limits of every effect.
#[derive(Clone, Copy)]
pub struct EffectHost<'a> {
    /// The services performed.
    pub services: &'a Arc<dyn SystemServices>,
    /// The program whose puts and gets are in scope.
    pub scope: &'a str,
    /// The timeout and result size limit of each effect.
    pub limits: EffectLimits,
}

impl std::fmt::Debug for EffectHost<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EffectHost")
            .field("services", &self.services.offered())
            .field("scope", &self.scope)
            .field("limits", &self.limits)
            .finish()
    }
}

impl EffectHost<'_> {
    /// Meets the call `step` opened, when it is a service ambient's `open call`
    /// (`spec/system.md` §2): the effect, brought in before any other step; `None`
    /// for any other step.
    pub fn meet_step(
        &self,
        engine: &mut Engine<'_>,
        step: &Step,
    ) -> Result<Option<EffectRecord>, ReduceError> {
        if step.rule != Rule::Open || engine.ambient_name(step.object) != Some("call") {
            return Ok(None);
        }
        let Some(name) = engine
            .ambient_name(step.subject)
            .filter(|n| is_service_name(n))
            .map(str::to_string)
        else {
            return Ok(None);
        };
        meet(
            engine,
            step.subject,
            &name,
            self.services,
            self.scope,
            self.limits,
        )
        .map(Some)
    }
}

/// Meets the call that the service ambient `service_amb`, named `name`, just opened:
/// reads its `arg`, performs the service and brings the result in.
fn meet(
    engine: &mut Engine<'_>,
    service_amb: AmbId,
    name: &str,
    services: &Arc<dyn SystemServices>,
    scope: &str,
    limits: EffectLimits,
) -> Result<EffectRecord, ReduceError> {
    let args: Vec<AmbId> = engine
        .children(service_amb)
        .filter(|&a| engine.ambient_name(a) == Some("arg"))
        .collect();
    // The one `arg`, and its value if it holds exactly one typed value.
    let (remove, argument) = match args.as_slice() {
        [arg] => {
            let content = engine.content_ast(*arg);
            let free = (0..content.len())
                .all(|i| content.node(content.node_id(i)).kind() == NodeKind::Ambient);
            (free.then_some(*arg), value_of(&content).ok())
        }
        _ => (None, None),
    };
    let result = match (&argument, Service::from_name(name)) {
        (_, None) => Failure::NotOffered.value(),
        (None, Some(_)) => Failure::BadArgument.value(),
        (Some(argument), Some(service)) => perform(services, scope, service, argument, limits),
    };
    engine
        .bring_in(service_amb, remove, &term_of(&result))
        .expect("a value holds no capability, and the arg is the service's child");
    let args_cid = argument.as_ref().map(value_block).transpose()?.map(|b| b.0);
    Ok(EffectRecord {
        name: name.to_string(),
        argument,
        result_cid: value_block(&result)?.0,
        result,
        args_cid,
        after_step: engine.steps(),
    })
}
