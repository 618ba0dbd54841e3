//! Bringing a term in from outside the run: the result of an effect
//! (`spec/system.md` §2). The host removes the service ambient's `arg` and adds the
//! result, a capability-free term whose names need not occur in the program: such
//! names are kept by the engine after the program's own.

use amb_syntax::{Ast, NodeKind};

use super::{Engine, set};
use crate::state::{AmbId, NONE};

/// Why a term could not be brought in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BringInError {
    /// The ambient to remove holds a capability somewhere inside it.
    #[error("the ambient to remove holds a capability, so it is not a value")]
    RemovedHoldsCapabilities,
    /// The term to bring in holds a capability.
    #[error("the term to bring in holds a capability, so it is not a value")]
    TermHoldsCapabilities,
    /// The ambient to remove is not inside the ambient the term goes into.
    #[error("the ambient to remove is not a child of the ambient the term goes into")]
    NotAChild,
}

impl Engine<'_> {
    /// Removes `remove`, a capability-free child of `into`, with everything inside it
    /// (if given), then adds the top-level ambients of `value`, which holds no
    /// capability, inside `into`; returns them. The added ambients come from no AST
    /// node of the program ([`Engine::ambient_node`] is `None` for them) and are not
    /// among [`Engine::created`].
    pub fn bring_in(
        &mut self,
        into: AmbId,
        remove: Option<AmbId>,
        value: &Ast,
    ) -> Result<Vec<AmbId>, BringInError> {
        if (0..value.len()).any(|i| matches!(value.node(value.node_id(i)).kind(), NodeKind::Cap(_)))
        {
            return Err(BringInError::TermHoldsCapabilities);
        }
        if let Some(remove) = remove {
            if self.state.amb(remove.0).parent != into.0 {
                return Err(BringInError::NotAChild);
            }
            let subtree = self.subtree(remove.0);
            if subtree.iter().any(|&a| self.state.amb(a).first_cap != NONE) {
                return Err(BringInError::RemovedHoldsCapabilities);
            }
            // Deepest first, so every ambient leaves its parent's lists and indexes.
            for &amb in subtree.iter().rev() {
                self.state.unlink_child(amb);
                self.state.kill_amb(amb);
            }
        }
        let mut added = Vec::new();
        let mut stack: Vec<(amb_syntax::NodeId, u32)> =
            value.roots().map(|root| (root, into.0)).collect();
        stack.reverse();
        while let Some((node, parent)) = stack.pop() {
            let text = value.name_text(value.node(node).name().expect("ambients are named"));
            let name = self.name_index(text);
            let amb = self.state.new_named(name, parent);
            let serial = self.next_serial;
            self.next_serial += 1;
            if let Some(o) = &mut self.origins {
                set(&mut o.amb_serial, amb, serial);
                set(&mut o.amb_node, amb, NONE);
                set(&mut o.amb_origin, amb, 0);
            }
            if parent == into.0 {
                added.push(AmbId(amb));
            }
            self.arrived(parent, name);
            let first = stack.len();
            stack.extend(value.children(Some(node)).map(|child| (child, amb)));
            stack[first..].reverse();
        }
        Ok(added)
    }

    /// `amb` and every ambient inside it, parents before children.
    fn subtree(&self, amb: u32) -> Vec<u32> {
        let mut all = vec![amb];
        let mut next = 0;
        while next < all.len() {
            let mut child = self.state.first_child(all[next]);
            while child != NONE {
                all.push(child);
                child = self.state.next_sibling(child);
            }
            next += 1;
        }
        all
    }

    /// The name index of `text`: the program's symbol if it has one, else one kept
    /// by the engine after the program's.
    fn name_index(&mut self, text: &str) -> u32 {
        if let Some(symbol) = self.ast.lookup(text) {
            return symbol.index() as u32;
        }
        let offset = self.ast.name_count();
        let index = match self.extra_names.iter().position(|n| &**n == text) {
            Some(i) => i,
            None => {
                self.extra_names.push(text.into());
                self.extra_names.len() - 1
            }
        };
        u32::try_from(offset + index).expect("fewer than 2^32 names")
    }

    /// The text of a name index (the program's names, then the engine's).
    pub(super) fn name_text(&self, name: u32) -> &str {
        let offset = self.ast.name_count();
        match (name as usize).checked_sub(offset) {
            None => self.ast.name_text(self.ast.symbol_at(name as usize)),
            Some(extra) => &self.extra_names[extra],
        }
    }
}
