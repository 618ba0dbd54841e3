//! Replaying an `effect` event (`spec/system.md` §6–§7): the service ambient that
//! has just opened a `call` loses its `arg`, whose value block must be the event's
//! `args`, and gains the recorded result as ambients brought in (no logs, no
//! capabilities). The result is checked with [`crate::system::check_effect`]
//! (deterministic services computed again, untrusted ones accepted as signed): no
//! effect is ever performed.

use std::sync::Arc;

use amb_bytecode::Cid;
use amb_log::{AnyEvent, EffectEvent};
use amb_syntax::{Ast, NodeId};

use super::{Amb, Broken, Position, Replay, Source, Violation};
use crate::{
    system::{EffectLimits, Service, Trust, check_effect, is_service_name, term_of, value_block},
    value::{Value, value_of},
};

/// An effect event as replay applied it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayedEffect {
    /// The effect event.
    pub event: Cid,
    /// The service ambient's log.
    pub log: Cid,
    /// The service.
    pub service: Service,
    /// The argument.
    pub argument: Value,
    /// The result brought in (a failure value when the effect failed).
    pub result: Value,
    /// How it was accepted: computed again, or signed by its creator.
    pub trust: Trust,
    /// Steps replayed before it (it follows step `after_step`'s `open call`).
    pub after_step: u64,
}

impl Replay {
    /// Applies an event of either kind (already checked for encoding and signature).
    pub fn apply_any(
        &mut self,
        cid: Cid,
        event: &AnyEvent,
        source: &dyn Source,
    ) -> Result<(), Violation> {
        match event {
            AnyEvent::Op(event) => self.apply(cid, event, source),
            AnyEvent::Effect(effect) => self.apply_effect(cid, effect, source),
        }
    }

    /// The effect events applied so far, in order.
    pub fn effects(&self) -> &[ReplayedEffect] {
        &self.effects
    }

    /// Applies an effect event: rules `refs-resolve`, `key`, `host`, `order` (right
    /// after its log's `open call`, referring to exactly the log's heads) and
    /// `effect` (a service ambient's log; `args` the value block of the `arg` it
    /// holds; the result checked without performing the service).
    pub fn apply_effect(
        &mut self,
        cid: Cid,
        effect: &EffectEvent,
        source: &dyn Source,
    ) -> Result<(), Violation> {
        let log = effect.log();
        let Some(state) = self.logs.get(&log).map(Arc::clone) else {
            return Err(Broken::Effect(format!(
                "its log {log} is no opened log (an effect follows a service ambient's open call)"
            ))
            .at(cid));
        };
        if effect.seq() < state.next_seq && self.applied.contains(&cid, self.count) {
            return Ok(());
        }
        if let Some(r) = effect
            .refs()
            .iter()
            .find(|r| !self.applied.contains(r, self.count))
        {
            return Err(
                Broken::RefsResolve(format!("refers to {r}, not applied before it")).at(cid),
            );
        }
        if !state.allows(effect.creator()) {
            return Err(Broken::Key(format!(
                "the effect is signed by {}, which the log's manifest does not list",
                effect.creator()
            ))
            .at(cid));
        }
        if let Some(host) = state.host.filter(|host| host != effect.creator()) {
            return Err(Broken::Host(format!(
                "signed by {}, but the log's host at this point is {host}",
                effect.creator()
            ))
            .at(cid));
        }
        if effect.seq() != state.next_seq {
            return Err(Broken::Order(format!(
                "seq {} where the log's next position is {}",
                effect.seq(),
                state.next_seq
            ))
            .at(cid));
        }
        let mut required: Vec<Cid> = state.heads.clone();
        required.extend(
            state
                .due
                .iter()
                .filter(|d| d.0 == effect.seq())
                .map(|d| d.1),
        );
        if let Some(missing) = required.iter().find(|r| !effect.refs().contains(r)) {
            return Err(
                Broken::Order(format!("does not refer to {missing}, which it must")).at(cid),
            );
        }
        if let Some(extra) = effect.refs().iter().find(|r| !required.contains(r)) {
            return Err(Broken::Order(format!("refers to {extra}, which it must not")).at(cid));
        }
        let amb = state.amb.filter(|_| state.opened_call).ok_or_else(|| {
            Broken::Effect(format!(
                "log {log}'s last event is not a service ambient's open call"
            ))
            .at(cid)
        })?;
        let name = self.ambs[amb].name.as_deref().unwrap_or_default();
        if !is_service_name(name) || name != effect.service() {
            return Err(Broken::Effect(format!(
                "records {} in the log of {name}, which is not that service's ambient",
                effect.service()
            ))
            .at(cid));
        }
        let arg = self
            .held_argument(amb, effect, source)
            .map_err(|d| Broken::Effect(d).at(cid))?;
        let manifest = state
            .manifest
            .as_deref()
            .expect("opened logs have manifests");
        let checked = check_effect(
            cid,
            effect,
            manifest,
            |c| source.block(c).map(|b| b.encode_with_cid().1),
            EffectLimits::default(),
        )?;
        drop(state);
        // Apply: the arg leaves, the result comes in.
        let position: Position = (log, effect.seq());
        let mut gone = self.nested(arg);
        gone.push(arg);
        for a in gone {
            self.amb_mut(a).alive = false;
        }
        self.amb_mut(amb).children.remove(&arg);
        self.bring(amb, &term_of(&checked.result), position);
        let state = self.log_mut(&log);
        state.next_seq += 1;
        state.last = Some(cid);
        state.heads.clear();
        state.heads.push(cid);
        state.due.retain(|d| d.0 != effect.seq());
        state.last_payload = None;
        state.opened_call = false;
        self.applied.insert(cid, position, self.count);
        self.count += 1;
        self.last_applied = Some((cid, position));
        self.effects.push(ReplayedEffect {
            event: cid,
            log,
            service: checked.service,
            argument: checked.argument,
            result: checked.result,
            trust: checked.trust,
            after_step: self.steps,
        });
        Ok(())
    }

    /// The one `arg` the service ambient `amb` holds, whose content must be the
    /// typed value of `effect`'s `args` block; else what is wrong.
    fn held_argument(
        &self,
        amb: usize,
        effect: &EffectEvent,
        source: &dyn Source,
    ) -> Result<usize, String> {
        let args: Vec<usize> = self.ambs[amb]
            .children
            .iter()
            .copied()
            .filter(|&c| self.ambs[c].name.as_deref() == Some("arg"))
            .collect();
        let [arg] = args[..] else {
            return Err(format!(
                "{} holds {} arg ambients where its effect needs one",
                effect.service(),
                args.len()
            ));
        };
        let (content, _) = self.content_with_map(arg, source);
        let value = value_of(&content).map_err(|e| {
            format!(
                "the arg {} holds is not a typed value: {e}",
                effect.service()
            )
        })?;
        let block = value_block(&value).map_err(|e| e.to_string())?.0;
        if block != effect.args() {
            return Err(format!(
                "args is {}, but the arg {} holds is {value}, whose value block is {block}",
                effect.args(),
                effect.service()
            ));
        }
        Ok(arg)
    }

    /// Adds the ambients of `term` (a value: ambients only) under `into`.
    fn bring(&mut self, into: usize, term: &Ast, at: Position) {
        let mut stack: Vec<(NodeId, usize)> = term.roots().map(|r| (r, into)).collect();
        while let Some((node, parent)) = stack.pop() {
            let name = term
                .node(node)
                .name()
                .map(|n| Arc::<str>::from(term.name_text(n)));
            self.ambs.push(Arc::new(Amb {
                name,
                parent: Some(parent),
                children: Default::default(),
                caps: Default::default(),
                log: None,
                alive: true,
                absorbed: Vec::new(),
                announced_at: Some(at),
                placed_at: Some(at),
                owed: None,
                brought: true,
            }));
            let id = self.ambs.len() - 1;
            self.amb_mut(parent).children.insert(id);
            stack.extend(term.children(Some(node)).map(|c| (c, id)));
        }
    }
}
