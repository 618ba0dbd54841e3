//! The instance tree: ambient and capability instances with their links and indexes.
//!
//! Ambients link to their parent, their children (a doubly linked list) and their
//! capabilities (another list). Two hash indexes answer the questions a redex asks in
//! O(1): "the children of P named n" and "the co-capabilities of kind k for name n that
//! ambient a holds". Both index lists are threaded through the instances themselves, so
//! an index entry is one head pointer.
//!
//! The slots of consumed capabilities and dissolved ambients are reused, so memory
//! follows the live instances, not every instance ever made. A slot is released one
//! step late ([`State::release_pending`]), so the ids of a [`crate::Step`] stay valid
//! until the next step.

use amb_syntax::{CapKind, NodeId, Symbol};
use hashbrown::HashMap;

pub(crate) const NONE: u32 = u32::MAX;

/// Identifies an ambient instance of one run. The root is `AmbId(0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AmbId(pub(crate) u32);

impl AmbId {
    /// The program's implicit root ambient.
    pub const ROOT: AmbId = AmbId(0);

    /// The instance number (creation order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Identifies a capability instance of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapId(pub(crate) u32);

impl CapId {
    /// The instance number (creation order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Amb {
    pub(crate) name: u32,
    pub(crate) parent: u32,
    first_child: u32,
    prev: u32,
    next: u32,
    pub(crate) first_cap: u32,
    prev_same: u32,
    next_same: u32,
}

/// A capability instance, 28 bytes: `packed` holds the target symbol (28 bits, all
/// ones for none), the kind (3 bits) and whether it is in the work list (1 bit).
/// A capability is alive while it has an owner.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cap {
    pub(crate) node: NodeId,
    pub(crate) owner: u32,
    prev: u32,
    pub(crate) next: u32,
    prev_same: u32,
    next_same: u32,
    packed: u32,
}

const TARGET_BITS: u32 = 0x0fff_ffff;
const QUEUED_BIT: u32 = 1 << 31;
const KINDS: [CapKind; 6] = [
    CapKind::In,
    CapKind::InCo,
    CapKind::Out,
    CapKind::OutCo,
    CapKind::Open,
    CapKind::OpenCo,
];

impl Cap {
    pub(crate) fn kind(&self) -> CapKind {
        KINDS[((self.packed >> 28) & 7) as usize]
    }

    /// The target symbol, or [`NONE`].
    pub(crate) fn target(&self) -> u32 {
        match self.packed & TARGET_BITS {
            TARGET_BITS => NONE,
            target => target,
        }
    }

    pub(crate) fn queued(&self) -> bool {
        self.packed & QUEUED_BIT != 0
    }

    pub(crate) fn set_queued(&mut self, queued: bool) {
        if queued {
            self.packed |= QUEUED_BIT;
        } else {
            self.packed &= !QUEUED_BIT;
        }
    }

    pub(crate) fn alive(&self) -> bool {
        self.owner != NONE
    }
}

/// Whether a capability kind is a co-capability (indexed by its owner).
pub(crate) fn is_co(kind: CapKind) -> bool {
    matches!(kind, CapKind::InCo | CapKind::OutCo | CapKind::OpenCo)
}

type Map<K> = HashMap<K, u32, foldhash::fast::RandomState>;

/// Puts `value` in the first free slot of `slots` (a list linked through the dead
/// slots' `next` field, read by `next_of`), or at the end; returns its index.
fn place<T>(slots: &mut Vec<T>, free: &mut u32, next_of: impl Fn(&T) -> u32, value: T) -> u32 {
    if *free != NONE {
        let id = *free;
        *free = next_of(&slots[id as usize]);
        slots[id as usize] = value;
        return id;
    }
    slots.push(value);
    u32::try_from(slots.len() - 1).expect("fewer than 2^32 instances")
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) ambs: Vec<Amb>,
    pub(crate) caps: Vec<Cap>,
    /// Head of the list of children of `parent` named `name`.
    by_name: Map<(u32, u32)>,
    /// Head of the list of co-capabilities of `kind` for `name` held by `owner`.
    co_index: Map<(u32, u32, u8)>,
    pub(crate) live_ambs: usize,
    pub(crate) live_caps: usize,
    /// Dead slots ready for reuse, linked through their `next` field.
    free_ambs: u32,
    free_caps: u32,
    /// Slots that died in the last step, released at the start of the next.
    pending_ambs: Vec<u32>,
    pending_caps: Vec<u32>,
}

impl State {
    /// An instance tree holding only the root, with room for the given numbers of
    /// ambients and capabilities (those the program starts with).
    pub(crate) fn with_capacity(ambients: usize, capabilities: usize) -> State {
        let mut state = State {
            free_ambs: NONE,
            free_caps: NONE,
            ..State::default()
        };
        state.ambs.reserve_exact(ambients + 1);
        state.caps.reserve_exact(capabilities);
        state.ambs.push(Amb {
            name: NONE,
            parent: NONE,
            first_child: NONE,
            prev: NONE,
            next: NONE,
            first_cap: NONE,
            prev_same: NONE,
            next_same: NONE,
        });
        state.live_ambs = 1;
        state
    }

    pub(crate) fn amb(&self, id: u32) -> &Amb {
        &self.ambs[id as usize]
    }

    pub(crate) fn cap(&self, id: u32) -> &Cap {
        &self.caps[id as usize]
    }

    /// Approximate bytes held by the instances and indexes.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.ambs.capacity() * size_of::<Amb>()
            + self.caps.capacity() * size_of::<Cap>()
            + self.by_name.capacity() * (size_of::<((u32, u32), u32)>() + 1)
            + self.co_index.capacity() * (size_of::<((u32, u32, u8), u32)>() + 1)
    }

    /// A new ambient, child of `parent`.
    pub(crate) fn new_amb(&mut self, name: Symbol, parent: u32) -> u32 {
        self.new_named(name.index() as u32, parent)
    }

    /// A new ambient named by a name index, child of `parent`.
    pub(crate) fn new_named(&mut self, name: u32, parent: u32) -> u32 {
        let fresh = Amb {
            name,
            parent: NONE,
            first_child: NONE,
            prev: NONE,
            next: NONE,
            first_cap: NONE,
            prev_same: NONE,
            next_same: NONE,
        };
        let id = place(&mut self.ambs, &mut self.free_ambs, |a| a.next, fresh);
        self.live_ambs += 1;
        self.link_child(parent, id);
        id
    }

    /// Makes the slots that died in the last step reusable.
    pub(crate) fn release_pending(&mut self) {
        for amb in self.pending_ambs.drain(..) {
            self.ambs[amb as usize].next = self.free_ambs;
            self.free_ambs = amb;
        }
        for cap in self.pending_caps.drain(..) {
            self.caps[cap as usize].next = self.free_caps;
            self.free_caps = cap;
        }
    }

    /// A new capability held by `owner`.
    pub(crate) fn new_cap(
        &mut self,
        kind: CapKind,
        target: Option<Symbol>,
        node: NodeId,
        owner: u32,
    ) -> u32 {
        let target = target.map_or(TARGET_BITS, |s| {
            let index = s.index() as u32;
            assert!(index < TARGET_BITS, "fewer than 2^28 distinct names");
            index
        });
        let kind_bits = KINDS.iter().position(|&k| k == kind).expect("a kind") as u32;
        let fresh = Cap {
            node,
            owner: NONE,
            prev: NONE,
            next: NONE,
            prev_same: NONE,
            next_same: NONE,
            packed: target | (kind_bits << 28),
        };
        let id = place(&mut self.caps, &mut self.free_caps, |c| c.next, fresh);
        self.live_caps += 1;
        self.link_cap(owner, id);
        id
    }

    /// Makes `child` the first child of `parent`, in both lists.
    pub(crate) fn link_child(&mut self, parent: u32, child: u32) {
        let name = self.ambs[child as usize].name;
        let old_first = self.ambs[parent as usize].first_child;
        let old_same = self.by_name.insert((parent, name), child).unwrap_or(NONE);
        let a = &mut self.ambs[child as usize];
        a.parent = parent;
        a.prev = NONE;
        a.next = old_first;
        a.prev_same = NONE;
        a.next_same = old_same;
        self.ambs[parent as usize].first_child = child;
        if old_first != NONE {
            self.ambs[old_first as usize].prev = child;
        }
        if old_same != NONE {
            self.ambs[old_same as usize].prev_same = child;
        }
    }

    /// Removes `child` from its parent's lists.
    pub(crate) fn unlink_child(&mut self, child: u32) {
        let Amb {
            name,
            parent,
            prev,
            next,
            prev_same,
            next_same,
            ..
        } = self.ambs[child as usize];
        if prev == NONE {
            self.ambs[parent as usize].first_child = next;
        } else {
            self.ambs[prev as usize].next = next;
        }
        if next != NONE {
            self.ambs[next as usize].prev = prev;
        }
        if prev_same == NONE {
            if next_same == NONE {
                self.by_name.remove(&(parent, name));
            } else {
                self.by_name.insert((parent, name), next_same);
            }
        } else {
            self.ambs[prev_same as usize].next_same = next_same;
        }
        if next_same != NONE {
            self.ambs[next_same as usize].prev_same = prev_same;
        }
        self.ambs[child as usize].parent = NONE;
    }

    /// The first child of `parent` named `name`, and the rest through [`Self::next_same`].
    pub(crate) fn first_named(&self, parent: u32, name: u32) -> u32 {
        self.by_name.get(&(parent, name)).copied().unwrap_or(NONE)
    }

    pub(crate) fn next_same(&self, amb: u32) -> u32 {
        self.ambs[amb as usize].next_same
    }

    pub(crate) fn first_child(&self, parent: u32) -> u32 {
        self.ambs[parent as usize].first_child
    }

    pub(crate) fn next_sibling(&self, amb: u32) -> u32 {
        self.ambs[amb as usize].next
    }

    /// Makes `cap` the first capability of `owner` (and indexes a co-capability).
    pub(crate) fn link_cap(&mut self, owner: u32, cap: u32) {
        let old_first = self.ambs[owner as usize].first_cap;
        let c = &mut self.caps[cap as usize];
        c.owner = owner;
        c.prev = NONE;
        c.next = old_first;
        let (kind, target) = (c.kind(), c.target());
        self.ambs[owner as usize].first_cap = cap;
        if old_first != NONE {
            self.caps[old_first as usize].prev = cap;
        }
        if is_co(kind) {
            let old_same = self
                .co_index
                .insert((owner, target, kind as u8), cap)
                .unwrap_or(NONE);
            let c = &mut self.caps[cap as usize];
            c.prev_same = NONE;
            c.next_same = old_same;
            if old_same != NONE {
                self.caps[old_same as usize].prev_same = cap;
            }
        }
    }

    /// Removes `cap` from its owner's lists.
    pub(crate) fn unlink_cap(&mut self, cap: u32) {
        let c = self.caps[cap as usize];
        let (kind, target) = (c.kind(), c.target());
        let Cap {
            owner,
            prev,
            next,
            prev_same,
            next_same,
            ..
        } = c;
        if prev == NONE {
            self.ambs[owner as usize].first_cap = next;
        } else {
            self.caps[prev as usize].next = next;
        }
        if next != NONE {
            self.caps[next as usize].prev = prev;
        }
        if is_co(kind) {
            let key = (owner, target, kind as u8);
            if prev_same == NONE {
                if next_same == NONE {
                    self.co_index.remove(&key);
                } else {
                    self.co_index.insert(key, next_same);
                }
            } else {
                self.caps[prev_same as usize].next_same = next_same;
            }
            if next_same != NONE {
                self.caps[next_same as usize].prev_same = prev_same;
            }
        }
        self.caps[cap as usize].owner = NONE;
    }

    /// Consumes a capability: unlinked and dead.
    pub(crate) fn consume_cap(&mut self, cap: u32) {
        self.unlink_cap(cap);
        self.live_caps -= 1;
        self.pending_caps.push(cap);
    }

    /// The co-capability of `kind` held by `owner` that admits `name`: one for that
    /// name, else a wildcard (for `open_`, `name` is ignored). The earliest created
    /// of the two heads wins, so the choice is deterministic.
    pub(crate) fn co_cap_for(&self, owner: u32, kind: CapKind, name: u32) -> u32 {
        let head = |target| {
            self.co_index
                .get(&(owner, target, kind as u8))
                .copied()
                .unwrap_or(NONE)
        };
        if kind == CapKind::OpenCo {
            return head(NONE);
        }
        let named = head(name);
        let any = head(NONE);
        match (named, any) {
            (NONE, other) | (other, NONE) => other,
            (a, b) => a.min(b),
        }
    }

    /// Marks an ambient dissolved (after its contents moved out).
    pub(crate) fn kill_amb(&mut self, amb: u32) {
        self.live_ambs -= 1;
        self.pending_ambs.push(amb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_compact() {
        assert_eq!(size_of::<Amb>(), 32);
        assert_eq!(size_of::<Cap>(), 28);
    }
}
