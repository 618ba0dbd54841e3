//! An event of either kind as a log holds it: an ordinary event (version 2: a
//! capability, `create` or `deploy`) or an `effect` event (version 3,
//! `spec/system.md` §6). Readers that take a log whole (verify, replay, time travel,
//! `amb log`) read this; the version byte says which decoder applies.

use amb_bytecode::Cid;

use crate::{BatchVerifier, EffectEvent, Event, EventError, PublicKey, Signature};

/// An event of a log: an ordinary event or an effect event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyEvent {
    /// A capability, `create` or `deploy` event.
    Op(Event),
    /// What a system service answered (`spec/system.md` §6).
    Effect(EffectEvent),
}

impl From<Event> for AnyEvent {
    fn from(event: Event) -> AnyEvent {
        AnyEvent::Op(event)
    }
}

impl From<EffectEvent> for AnyEvent {
    fn from(event: EffectEvent) -> AnyEvent {
        AnyEvent::Effect(event)
    }
}

impl AnyEvent {
    /// Decodes untrusted bytes as an effect event when they start like one
    /// ([`EffectEvent::looks_like`]), else as an ordinary event. Does not check the
    /// signature.
    pub fn decode(bytes: &[u8]) -> Result<AnyEvent, EventError> {
        if EffectEvent::looks_like(bytes) {
            EffectEvent::decode(bytes).map(AnyEvent::Effect)
        } else {
            Event::decode(bytes).map(AnyEvent::Op)
        }
    }

    /// The ordinary event, if it is one.
    pub fn as_op(&self) -> Option<&Event> {
        match self {
            AnyEvent::Op(event) => Some(event),
            AnyEvent::Effect(_) => None,
        }
    }

    /// The effect event, if it is one.
    pub fn as_effect(&self) -> Option<&EffectEvent> {
        match self {
            AnyEvent::Op(_) => None,
            AnyEvent::Effect(effect) => Some(effect),
        }
    }

    /// Its log.
    pub fn log(&self) -> Cid {
        match self {
            AnyEvent::Op(event) => event.log(),
            AnyEvent::Effect(effect) => effect.log(),
        }
    }

    /// Its position in the log.
    pub fn seq(&self) -> u64 {
        match self {
            AnyEvent::Op(event) => event.seq(),
            AnyEvent::Effect(effect) => effect.seq(),
        }
    }

    /// The events it refers to, strictly increasing.
    pub fn refs(&self) -> &[Cid] {
        match self {
            AnyEvent::Op(event) => event.refs(),
            AnyEvent::Effect(effect) => effect.refs(),
        }
    }

    /// Who signed it.
    pub fn creator(&self) -> &PublicKey {
        match self {
            AnyEvent::Op(event) => event.creator(),
            AnyEvent::Effect(effect) => effect.creator(),
        }
    }

    /// Its signature.
    pub fn signature(&self) -> &Signature {
        match self {
            AnyEvent::Op(event) => event.signature(),
            AnyEvent::Effect(effect) => effect.signature(),
        }
    }

    /// Queues its signature in a batch.
    pub fn queue_signature(&self, batch: &mut BatchVerifier) {
        match self {
            AnyEvent::Op(event) => event.queue_signature(batch),
            AnyEvent::Effect(effect) => effect.queue_signature(batch),
        }
    }

    /// Checks its signature (rule `signature`).
    pub fn verify_signature(&self) -> Result<(), EventError> {
        match self {
            AnyEvent::Op(event) => event.verify_signature(),
            AnyEvent::Effect(effect) => effect.verify_signature(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SigningKey, UnsignedEffect};

    #[test]
    fn each_kind_decodes_as_itself() {
        let key = SigningKey::from_seed(&[3; 32]);
        let effect = EffectEvent::sign(
            UnsignedEffect {
                log: Cid::of(b"log"),
                seq: 1,
                service: "sys_time".into(),
                args: Cid::of(b"a"),
                result: Cid::of(b"r"),
                refs: vec![Cid::of(b"before")],
            },
            &key,
        );
        let any = AnyEvent::decode(&effect.encode()).unwrap();
        assert_eq!(any.as_effect(), Some(&effect));
        assert_eq!(
            (any.log(), any.seq(), any.refs()),
            (Cid::of(b"log"), 1, effect.refs())
        );
        any.verify_signature().unwrap();
        assert!(AnyEvent::decode(&[0x89, 2]).is_err());
    }
}
