//! The node's health as `/v1/info` reports it (`spec/network.md` §7): the last
//! store failure the API's own calls met, until a later write succeeds (the store
//! recovers by itself once, say, its disk has space again).

use std::sync::Mutex;

use amb_net::NetError;
use serde_json::{Value, json};

/// What the API has seen of the store.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// The last store failure, for people, while it lasts.
    store: Mutex<Option<String>>,
}

impl Health {
    /// Notes the outcome of a call: a store failure makes the node unhealthy; a
    /// successful write (`wrote`) makes it healthy again.
    pub(crate) fn note<T>(&self, outcome: &Result<T, NetError>, wrote: bool) {
        let failure = match outcome {
            Ok(_) if wrote => None,
            Ok(_) => return,
            Err(NetError::Storage { full: true, detail }) => Some(format!("disk full: {detail}")),
            Err(NetError::Storage {
                full: false,
                detail,
            }) => Some(detail.clone()),
            Err(NetError::Refused(r)) if r.rule == amb_net::ingest::RULE_STORE => {
                Some(r.detail.clone())
            }
            Err(_) => return,
        };
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = failure;
    }

    /// `{"ok": true}`, or `{"ok": false, "store": "…"}`.
    pub(crate) fn to_json(&self) -> Value {
        match &*self.store.lock().unwrap_or_else(|e| e.into_inner()) {
            None => json!({ "ok": true }),
            Some(failure) => json!({ "ok": false, "store": failure }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_lasts_until_a_write_succeeds() {
        let health = Health::default();
        assert_eq!(health.to_json(), json!({"ok": true}));
        let full: Result<(), NetError> = Err(NetError::Storage {
            full: true,
            detail: "no space".into(),
        });
        health.note(&full, true);
        assert_eq!(
            health.to_json(),
            json!({"ok": false, "store": "disk full: no space"})
        );
        health.note(&Ok::<(), NetError>(()), false);
        health.note(&Err::<(), _>(NetError::Invalid("x".into())), true);
        assert_eq!(health.to_json()["ok"], false);
        health.note(&Ok::<(), NetError>(()), true);
        assert_eq!(health.to_json(), json!({"ok": true}));
    }
}
