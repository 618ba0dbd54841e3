//! Answering sync requests from the store (`spec/network.md` §3), within the
//! grant of the address each request names (`grant.rs`) and the response bounds:
//! a range or a list cut short by a bound is asked again by the requester from
//! where the answer stopped.

use amb_log::Store;
use serde_bytes::ByteBuf;

use crate::{
    finished::Finished,
    grant::Grant,
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
        SyncRequest::Heads { program: under } => {
            // Under a program address, every log's head; under a slice address,
            // the heads of its subtree's logs.
            let Some(grant) = Grant::of(store, under, false).map_err(failed)? else {
                return Ok(SyncResponse::Unknown);
            };
            let mut logs: Vec<_> = grant.logs.iter().copied().collect();
            logs.sort_unstable();
            let mut heads = Vec::new();
            for log in logs {
                if let Some((seq, head)) = store.log_head(log).map_err(failed)? {
                    heads.push(Head {
                        log,
                        len: seq + 1,
                        head,
                    });
                }
            }
            let done = finished.contains(&grant.program);
            Ok(SyncResponse::Heads { heads, done })
        }
        SyncRequest::Events { under, ranges } => {
            if ranges.len() > MAX_REQUEST_ITEMS {
                return Err((
                    SyncRefusal::Limit,
                    format!("{} ranges, more than {MAX_REQUEST_ITEMS}", ranges.len()),
                ));
            }
            let Some(grant) = Grant::of(store, under, false).map_err(failed)? else {
                return Ok(SyncResponse::Unknown);
            };
            if let Some(range) = ranges.iter().find(|r| !grant.covers_log(&r.log)) {
                return Err(not_entitled("log", range.log, under));
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
        SyncRequest::Blocks { under, cids } => {
            let Some(grant) = Grant::of(store, under, true).map_err(failed)? else {
                return Ok(SyncResponse::Unknown);
            };
            if let Some(cid) = cids.iter().find(|c| !grant.covers_block(c)) {
                return Err(not_entitled("block", *cid, under));
            }
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

/// The refusal of a request for `what` outside the grant of `under`.
fn not_entitled(what: &str, cid: amb_bytecode::Cid, under: amb_bytecode::Cid) -> Refused {
    (
        SyncRefusal::NotEntitled,
        format!("{what} {cid} is not within the grant of /amb/{under}"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use amb_bytecode::{BlockLimits, Cid};
    use amb_engine::Limits;
    use amb_log::{Manifest, SigningKey, Store};

    use super::answer;
    use crate::{
        finished::Finished,
        wire::{Range, SyncRefusal, SyncRequest, SyncResponse},
    };

    /// A recorded program whose slices nest: `q` holds `r`; `s` is `q`'s sibling.
    struct Recorded {
        store: Arc<Store>,
        finished: Finished,
        program: Cid,
        root_log: Cid,
        /// Each slice's name, log id and block.
        slices: Vec<(String, Cid, Cid)>,
        /// The program's root block.
        root_block: Cid,
        _dir: tempfile::TempDir,
    }

    fn recorded() -> Recorded {
        let source = "p[q[r[]] | open_] | s[t[]] | open p";
        let ast = amb_syntax::parse(source).unwrap();
        let (compiled, map) =
            amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).unwrap();
        let plan = amb_vm::plan::plan(&ast, &compiled, &map, Limits::default()).unwrap();
        let key = SigningKey::from_seed(&[7; 32]);
        let manifest = Manifest::new_root(
            compiled.root,
            None,
            vec![key.public_key()],
            &key,
            [1; 16],
            1,
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::create(dir.path().join("s.redb")).unwrap());
        let done = amb_vm::record::record(&plan, &compiled, &manifest, &key, &store).unwrap();
        let slices = plan
            .logs
            .iter()
            .zip(&done.log_cids)
            .skip(1)
            .map(|(log, cid)| (log.name.clone().unwrap(), *cid, log.block))
            .collect();
        Recorded {
            finished: Finished::new(store.clone()),
            store,
            program: done.program,
            root_log: done.log_cids[0],
            slices,
            root_block: compiled.root,
            _dir: dir,
        }
    }

    impl Recorded {
        fn slice(&self, name: &str) -> (Cid, Cid) {
            let (_, log, block) = self
                .slices
                .iter()
                .find(|(n, ..)| n == name)
                .unwrap_or_else(|| panic!("no slice {name}"));
            (*log, *block)
        }

        fn ask(&self, request: SyncRequest) -> SyncResponse {
            answer(&self.store, &self.finished, request)
        }

        fn blocks(&self, under: Cid, cids: Vec<Cid>) -> SyncResponse {
            self.ask(SyncRequest::Blocks { under, cids })
        }

        fn events(&self, under: Cid, log: Cid) -> SyncResponse {
            self.ask(SyncRequest::Events {
                under,
                ranges: vec![Range {
                    log,
                    from: 0,
                    to: u64::MAX,
                }],
            })
        }
    }

    fn not_entitled(response: &SyncResponse) -> bool {
        matches!(
            response,
            SyncResponse::Refused {
                reason: SyncRefusal::NotEntitled,
                ..
            }
        )
    }

    #[test]
    fn the_program_address_grants_every_log_and_block_of_the_program() {
        let run = recorded();
        let (q_log, q_block) = run.slice("q");
        let wanted = vec![run.program, run.root_log, q_log, q_block, run.root_block];
        let SyncResponse::Blocks { blocks } = run.blocks(run.program, wanted.clone()) else {
            panic!("blocks refused");
        };
        assert_eq!(blocks.len(), wanted.len());
        for log in [run.root_log, q_log] {
            assert!(matches!(
                run.events(run.program, log),
                SyncResponse::Events { events } if !events.is_empty()
            ));
        }
        // A CID of something else is not within it, held or not.
        let stranger = Cid::of(b"another program's block");
        assert!(not_entitled(&run.blocks(run.program, vec![stranger])));
    }

    #[test]
    fn a_slice_address_grants_its_subtree_and_nothing_on_its_path() {
        let run = recorded();
        let (p_log, p_block) = run.slice("p");
        let (q_log, q_block) = run.slice("q");
        let (r_log, r_block) = run.slice("r");
        let (s_log, s_block) = run.slice("s");
        // Its own and its descendants' manifests, logs and bytecode.
        let SyncResponse::Blocks { blocks } =
            run.blocks(q_log, vec![q_log, r_log, q_block, r_block])
        else {
            panic!("a slice's own blocks refused");
        };
        assert_eq!(blocks.len(), 4);
        for log in [q_log, r_log] {
            assert!(matches!(
                run.events(q_log, log),
                SyncResponse::Events { events } if !events.is_empty()
            ));
        }
        // Never the program manifest, its root log, its parent or its sibling.
        for cid in [
            run.program,
            run.root_log,
            run.root_block,
            p_log,
            p_block,
            s_log,
            s_block,
        ] {
            assert!(not_entitled(&run.blocks(q_log, vec![cid])), "{cid}");
        }
        for log in [run.root_log, p_log, s_log] {
            assert!(not_entitled(&run.events(q_log, log)), "{log}");
        }
    }

    #[test]
    fn a_root_log_id_or_an_unknown_address_grants_nothing() {
        let run = recorded();
        for under in [run.root_log, Cid::of(b"nobody's address")] {
            assert!(matches!(
                run.blocks(under, vec![run.program]),
                SyncResponse::Unknown
            ));
            assert!(matches!(
                run.events(under, run.root_log),
                SyncResponse::Unknown
            ));
        }
    }
}
