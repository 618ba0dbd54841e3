//! Reading a slice's value (`spec/network.md` §5): the value a slice's host
//! recorded in the payload of the slice log's last event (`spec/events.md` §6),
//! read on any node that holds that log, a delegate of the slice included, which
//! holds neither the program nor its address. A slice whose ambient was opened
//! before the end, or still holds capabilities, has no value of its own.

use std::time::{Duration, Instant};

use amb_bytecode::{BlockLimits, Cid, Program, ProgramLimits};
use amb_log::{AnyEvent, Kind, Manifest, Store};

use crate::{changes::Changes, error::NetError, handle::NodeHandle};

/// How often a wait for a slice's value looks again when nothing woke it.
const LOOK_AGAIN: Duration = Duration::from_millis(250);

/// A slice's value: its ambient's canonical term (compact text) and its typed
/// value, or null.
pub(crate) struct SliceValue {
    pub(crate) normal_form: String,
    pub(crate) value: serde_json::Value,
}

/// What the store says of a slice now.
enum Read {
    /// Its value.
    Value(SliceValue),
    /// No payload (yet): the log's last event so far, if any.
    Open(Option<u64>),
}

/// The programs (or parts, on a delegate) that hold the slice `cid` here, when
/// `cid` names a slice manifest this node holds under at least one; else `None`.
pub(crate) async fn held_by(node: &NodeHandle, cid: Cid) -> Result<Option<Vec<Cid>>, NetError> {
    blocking(node.store(), move |store| {
        let Some(bytes) = store.get_block(cid)? else {
            return Ok(None);
        };
        if !Manifest::decode(&bytes).is_ok_and(|m| m.kind() == Kind::Slice) {
            return Ok(None);
        }
        let owners = owners(store, cid)?;
        Ok((!owners.is_empty()).then_some(owners))
    })
    .await
}

/// The value of the slice `slice`, held here under `owners` ([`held_by`]),
/// waiting at most `wait` for its log's last event while a run holding it may
/// still write it.
pub(crate) async fn slice_value(
    node: &NodeHandle,
    slice: Cid,
    owners: Vec<Cid>,
    wait: Duration,
) -> Result<SliceValue, NetError> {
    let address = format!("/amb/{slice}");
    let deadline = Instant::now() + wait;
    let mut changes = Changes::new(node);
    loop {
        let read = blocking(node.store(), move |s| read(s, slice)).await?;
        let seq = match read {
            Read::Value(value) => return Ok(value),
            Read::Open(seq) => seq,
        };
        let at = seq.map_or("no event yet".into(), |seq| {
            format!("its last event, seq {seq},")
        });
        if owners.iter().all(|o| node.is_finished(o)) {
            return Err(NetError::NotFound(format!(
                "{address} has no value: {at} carries no payload, so its ambient was opened before the end of the run or still holds capabilities (spec/events.md §6)"
            )));
        }
        if Instant::now() >= deadline {
            return Err(NetError::Timeout(format!(
                "{address} has no value after {} s: {at} carries no payload and its run is not over here",
                wait.as_secs()
            )));
        }
        // Woken by a run learned over, a walk moving, or events of the first
        // owner stored; else it looks again after a while.
        changes
            .next(owners[0], (Instant::now() + LOOK_AGAIN).min(deadline))
            .await?;
    }
}

/// Runs a store read off the async threads.
async fn blocking<T: Send + 'static>(
    store: &std::sync::Arc<Store>,
    read: impl FnOnce(&Store) -> Result<T, NetError> + Send + 'static,
) -> Result<T, NetError> {
    let store = std::sync::Arc::clone(store);
    tokio::task::spawn_blocking(move || read(&store))
        .await
        .map_err(NetError::task("reading a slice"))?
}

/// The programs (or orders, on a delegate) whose logs include `slice`.
fn owners(store: &Store, slice: Cid) -> Result<Vec<Cid>, NetError> {
    let mut owners = Vec::new();
    for program in store.programs()? {
        if store.program_logs(program)?.contains(&slice) {
            owners.push(program);
        }
    }
    Ok(owners)
}

/// The slice's value if its log's last event carries a payload.
fn read(store: &Store, slice: Cid) -> Result<Read, NetError> {
    let address = format!("/amb/{slice}");
    let Some((seq, head)) = store.log_head(slice)? else {
        return Ok(Read::Open(None));
    };
    let stored = store.get_event(head)?.ok_or_else(|| {
        NetError::NotFound(format!("{address}: its last event {head} is not stored"))
    })?;
    let event = AnyEvent::decode(&stored.bytes)
        .map_err(|e| NetError::Invalid(format!("{address}: its last event {head}: {e}")))?;
    // An effect event carries no payload: the log goes on after it.
    let Some(root) = event.as_op().and_then(|e| e.payload()) else {
        return Ok(Read::Open(Some(seq)));
    };
    let get = |cid: &Cid| store.get_block(*cid).ok().flatten();
    let term = Program::load(root, get, &BlockLimits::default())
        .and_then(|program| program.to_ast(&ProgramLimits::default()))
        .map_err(|e| {
            NetError::NotFound(format!(
                "{address}: the value block {root} its last event names cannot be read here: {e}"
            ))
        })?;
    Ok(Read::Value(SliceValue {
        normal_form: amb_syntax::to_compact_string(&term),
        value: amb_vm::value_of(&term).map_or(serde_json::Value::Null, |v| v.to_json()),
    }))
}
