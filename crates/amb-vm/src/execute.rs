//! Executing a plan on several hosts (`spec/network.md` §8): every host computes the
//! same [`Plan`] and walks it in order; it signs the events it writes and takes the
//! others' from what it has received (found by log and position, and checked
//! against the plan). A slice's log id is computable by every host once the `deploy`
//! announcing it is known (a slice manifest is not signed), so a host can sign an
//! event as soon as every event it refers to has a CID. One host with every event is
//! [`crate::record`]'s case.

use amb_bytecode::Cid;
use amb_log::{Event, Manifest, Op, PublicKey, SigningKey, UnsignedEvent};

use crate::plan::{EventIx, HostIx, Plan};

/// An event this host signed.
#[derive(Clone, Debug)]
pub struct Signed {
    /// Its index in the plan.
    pub index: EventIx,
    /// Its CID.
    pub cid: Cid,
    /// Its encoding.
    pub bytes: Vec<u8>,
}

/// What the walk needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Another host's event: the one at `seq` of `log`.
    Event {
        /// Its index in the plan.
        index: EventIx,
        /// Its log.
        log: Cid,
        /// Its position.
        seq: u64,
        /// The host that writes it.
        writer: HostIx,
    },
    /// This host's own event, held back: the advance's budget is spent, or
    /// `stop_before` said so.
    Paused {
        /// Its index in the plan.
        index: EventIx,
    },
    /// The plan is walked to its end.
    Done,
}

/// What one advance did.
#[derive(Clone, Debug)]
pub struct Advance {
    /// Events signed, in plan order.
    pub signed: Vec<Signed>,
    /// Slice manifests of the slices announced by the events walked (CID, bytes).
    pub manifests: Vec<(Cid, Vec<u8>)>,
    /// What the walk stopped at.
    pub need: Need,
}

/// A host's event at a place does not match the plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event {cid} (index {index} of the plan) differs from the plan: {detail}")]
pub struct Deviation {
    /// The index.
    pub index: EventIx,
    /// The event found.
    pub cid: Cid,
    /// How it differs.
    pub detail: String,
}

/// A walk of a plan by one host.
#[derive(Debug)]
pub struct Execution {
    plan: Plan,
    program: Cid,
    hosts: Vec<PublicKey>,
    me: HostIx,
    cids: Vec<Option<Cid>>,
    log_ids: Vec<Option<Cid>>,
    /// By announcing `deploy` event: the slice it announces.
    announces: std::collections::HashMap<EventIx, usize>,
    next: EventIx,
}

impl Execution {
    /// The walk of `plan` of the program `program_manifest` by host `me` of `hosts`
    /// (host 0 is the deployer). The slice manifests list every host's key.
    pub fn new(
        plan: Plan,
        program_manifest: &Manifest,
        hosts: Vec<PublicKey>,
        me: HostIx,
    ) -> Execution {
        let mut log_ids = vec![None; plan.logs.len()];
        log_ids[0] = Some(crate::record::root_log_manifest(program_manifest).cid());
        let announces = plan
            .logs
            .iter()
            .enumerate()
            .filter_map(|(log, l)| l.parent.map(|event| (event, log)))
            .collect();
        Execution {
            announces,
            cids: vec![None; plan.events.len()],
            log_ids,
            program: program_manifest.cid(),
            plan,
            hosts,
            me,
            next: 0,
        }
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Events walked so far.
    pub fn position(&self) -> EventIx {
        self.next
    }

    /// The CID of a walked event.
    pub fn cid(&self, index: EventIx) -> Option<Cid> {
        self.cids.get(index).copied().flatten()
    }

    /// The log id of a planned log, once its announcing deploy is walked.
    pub fn log_id(&self, log: usize) -> Option<Cid> {
        self.log_ids.get(log).copied().flatten()
    }

    /// Whether the walk is at its end.
    pub fn is_done(&self) -> bool {
        self.next == self.plan.events.len()
    }

    /// Walks on: signs this host's events (at most `max` of them) with `key`, and
    /// takes other hosts' events from `received(log, seq)`, until an event is
    /// missing or the plan ends. `stop_before(index)` may hold the walk before one of
    /// this host's events (a reservation not granted yet).
    pub fn advance(
        &mut self,
        key: &SigningKey,
        max: usize,
        mut received: impl FnMut(Cid, u64) -> Option<(Cid, Event)>,
        mut stop_before: impl FnMut(EventIx) -> bool,
    ) -> Result<Advance, Deviation> {
        let mut out = Advance {
            signed: Vec::new(),
            manifests: Vec::new(),
            need: Need::Done,
        };
        while self.next < self.plan.events.len() {
            let index = self.next;
            let planned = &self.plan.events[index];
            let log = self.log_ids[planned.log].expect("a log is announced before its events");
            if planned.writer != self.me {
                let Some((cid, event)) = received(log, planned.seq) else {
                    out.need = Need::Event {
                        index,
                        log,
                        seq: planned.seq,
                        writer: planned.writer,
                    };
                    return Ok(out);
                };
                self.check(index, cid, &event)?;
                out.manifests.extend(self.walked(index, cid));
                continue;
            }
            if out.signed.len() >= max || stop_before(index) {
                out.need = Need::Paused { index };
                return Ok(out);
            }
            let (event, bytes) = Event::sign_encoded(self.body(index), key);
            let cid = Cid::of(&bytes);
            debug_assert_eq!(event.log(), log);
            out.signed.push(Signed { index, cid, bytes });
            if let Some(manifest) = self.walked(index, cid) {
                out.manifests.push(manifest);
            }
        }
        Ok(out)
    }

    /// The unsigned event of plan index `index`, whose refs are all walked.
    fn body(&self, index: EventIx) -> UnsignedEvent {
        let planned = &self.plan.events[index];
        let cid = |i: EventIx| self.cids[i].expect("refs point backwards");
        UnsignedEvent {
            log: self.log_ids[planned.log].expect("announced"),
            seq: planned.seq,
            op: Op::new(planned.opcode, planned.target.clone())
                .expect("the planner makes valid operations"),
            at: planned.at.map(|(anchor, i)| (cid(anchor), i)),
            refs: planned.refs.iter().map(|&r| cid(r)).collect(),
            payload: planned.payload,
        }
    }

    /// Checks another host's event against the plan.
    fn check(&self, index: EventIx, cid: Cid, event: &Event) -> Result<(), Deviation> {
        let mut expected = self.body(index);
        expected.refs.sort_unstable();
        expected.refs.dedup();
        let deviation = |detail: String| Deviation { index, cid, detail };
        if event.body() != &expected {
            return Err(deviation(format!(
                "expected {} at seq {} with refs {:?}",
                expected.op.opcode().mnemonic(),
                expected.seq,
                expected.refs
            )));
        }
        let writer = &self.hosts[self.plan.events[index].writer];
        if event.creator() != writer {
            return Err(deviation("signed by another host than the plan's".into()));
        }
        Ok(())
    }

    /// Records the CID of event `index`; if it announces a slice, works out the
    /// slice's manifest, which is returned.
    fn walked(&mut self, index: EventIx, cid: Cid) -> Option<(Cid, Vec<u8>)> {
        self.cids[index] = Some(cid);
        self.next = index + 1;
        let slice = *self.announces.get(&index)?;
        let info = &self.plan.logs[slice];
        let manifest = Manifest::new_slice(
            info.block,
            info.name.clone().unwrap_or_default(),
            self.hosts.clone(),
            self.hosts[info.host],
            cid,
        );
        let manifest_cid = manifest.cid();
        self.log_ids[slice] = Some(manifest_cid);
        Some((manifest_cid, manifest.encode()))
    }

    /// The program (its manifest's CID).
    pub fn program(&self) -> Cid {
        self.program
    }
}
