//! Answering sync requests from the store (`spec/network.md` §3), within the
//! response bounds: a range or a list cut short by a bound is asked again by the
//! requester from where the answer stopped.

use amb_log::{Manifest, Store};
use serde_bytes::ByteBuf;

use crate::{
    finished::Finished,
    wire::{
        Head, MAX_REQUEST_ITEMS, MAX_RESPONSE_BYTES, MAX_RESPONSE_EVENTS, SyncRefusal, SyncRequest,
        SyncResponse,
    },
};

/// The answer to one request.
pub(crate) fn answer(store: &Store, finished: &Finished, request: SyncRequest) -> SyncResponse {
    match respond(store, finished, request) {
        Ok(response) => response,
        Err((reason, detail)) => SyncResponse::Refused { reason, detail },
    }
}

/// A refusal: its reason and its words.
type Refused = (SyncRefusal, String);

fn respond(
    store: &Store,
    finished: &Finished,
    request: SyncRequest,
) -> Result<SyncResponse, Refused> {
    let failed = |e: amb_log::StoreError| (SyncRefusal::Store, format!("the store failed: {e}"));
    match request {
        SyncRequest::Malformed(detail) => Err((SyncRefusal::Malformed, detail)),
        SyncRequest::Heads { program } => {
            let is_program = store
                .get_block(program)
                .map_err(failed)?
                .and_then(|bytes| Manifest::decode(&bytes).ok())
                .is_some_and(|m| m.kind() == amb_log::Kind::Program && m.cid() == program);
            if !is_program {
                return Ok(SyncResponse::Unknown);
            }
            let mut heads = Vec::new();
            for log in store.program_logs(program).map_err(failed)? {
                if let Some((seq, head)) = store.log_head(log).map_err(failed)? {
                    heads.push(Head {
                        log,
                        len: seq + 1,
                        head,
                    });
                }
            }
            let done = finished.contains(&program);
            Ok(SyncResponse::Heads { heads, done })
        }
        SyncRequest::Events { ranges } => {
            if ranges.len() > MAX_REQUEST_ITEMS {
                return Err((
                    SyncRefusal::Limit,
                    format!("{} ranges, more than {MAX_REQUEST_ITEMS}", ranges.len()),
                ));
            }
            let mut events = Vec::new();
            let mut bytes = 0usize;
            'ranges: for range in ranges {
                for stored in store.log_events(range.log).map_err(failed)? {
                    let stored = stored.map_err(failed)?;
                    if stored.seq < range.from {
                        continue;
                    }
                    if stored.seq >= range.to {
                        break;
                    }
                    if events.len() == MAX_RESPONSE_EVENTS
                        || bytes + stored.bytes.len() > MAX_RESPONSE_BYTES
                    {
                        break 'ranges;
                    }
                    bytes += stored.bytes.len();
                    events.push(ByteBuf::from(stored.bytes));
                }
            }
            Ok(SyncResponse::Events { events })
        }
        SyncRequest::Blocks { cids } => {
            let mut blocks = Vec::new();
            let mut bytes = 0usize;
            for cid in cids {
                let Some(block) = store.get_block(cid).map_err(failed)? else {
                    continue;
                };
                if bytes + block.len() > MAX_RESPONSE_BYTES {
                    break;
                }
                bytes += block.len();
                blocks.push(ByteBuf::from(block));
            }
            Ok(SyncResponse::Blocks { blocks })
        }
    }
}
