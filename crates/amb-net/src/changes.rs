//! What may end a wait for a run (`value.rs`, `slice.rs`): a run learned to be
//! over, a walk of this node moving, events of the program stored. Waits are woken
//! by notification, never by polling alone.

use std::time::Instant;

use amb_bytecode::Cid;
use tokio::sync::{broadcast, watch};

use crate::{error::NetError, event::NodeEvent, handle::NodeHandle};

/// What may end a wait for a run: a run learned to be over, a walk of this node
/// moving, events stored.
pub(crate) struct Changes {
    finished: watch::Receiver<u64>,
    walks: watch::Receiver<u64>,
    events: broadcast::Receiver<NodeEvent>,
}

impl Changes {
    /// Told of every change from now on.
    pub(crate) fn new(node: &NodeHandle) -> Changes {
        Changes {
            finished: node.finished_changes(),
            walks: node.walk_changes(),
            events: node.subscribe_events(),
        }
    }

    /// Waits for the next change that concerns `program`, or until `until`.
    pub(crate) async fn next(&mut self, program: Cid, until: Instant) -> Result<(), NetError> {
        let stored = async {
            loop {
                match self.events.recv().await {
                    Ok(NodeEvent::Stored(stored))
                        if stored.iter().any(|s| s.program == program.to_string()) =>
                    {
                        return Ok(());
                    }
                    Ok(_) => {}
                    // Lagged: something may have been missed; look again.
                    Err(broadcast::error::RecvError::Lagged(_)) => return Ok(()),
                    Err(broadcast::error::RecvError::Closed) => return Err(NetError::Stopped),
                }
            }
        };
        tokio::select! {
            changed = self.finished.changed() => changed.map_err(|_| NetError::Stopped),
            changed = self.walks.changed() => changed.map_err(|_| NetError::Stopped),
            stored = stored => stored,
            () = tokio::time::sleep_until(until.into()) => Ok(()),
        }
    }
}
