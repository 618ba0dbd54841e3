//! The request-response codec of the sync and delegation protocols (`spec/network.md`
//! §3, "Framing"): one request and one response per stream, each a single CBOR
//! value (serde's externally tagged form, as libp2p's CBOR codec writes it) with no
//! length prefix; the writer closes its side after the value. Unlike libp2p's own
//! codec, a request that cannot be read (not CBOR, not a request of the protocol,
//! or longer than its bound) is not dropped: it is read as the protocol's
//! `Malformed` request, which the node answers `Refused` with reason `malformed`,
//! so a client always gets an answer. It counts the bytes of the requests and
//! responses it reads ([`Received`]).

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, io::Cursor};
use libp2p::{StreamProtocol, request_response};
use serde::{Serialize, de::DeserializeOwned};

/// A request type that can stand for bytes that are no request.
pub trait Inbound {
    /// The request made of unreadable bytes (`why` says what is wrong).
    fn malformed(why: String) -> Self;
}

impl Inbound for crate::wire::SyncRequest {
    fn malformed(why: String) -> Self {
        crate::wire::SyncRequest::Malformed(why)
    }
}

impl Inbound for crate::wire::DelegateRequest {
    fn malformed(why: String) -> Self {
        crate::wire::DelegateRequest::Malformed(why)
    }
}

/// Payload bytes a node received: the bodies of the requests and responses its
/// codecs read and the data of the gossip messages it is handed (transport
/// framing, gossipsub's control messages and duplicates it drops are not
/// counted). Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct Received(Arc<AtomicU64>);

impl Received {
    /// Counts `bytes` more.
    pub fn add(&self, bytes: usize) {
        self.0.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// libp2p's CBOR codec, reading unreadable requests as [`Inbound::malformed`].
pub struct Codec<Req, Resp> {
    inner: request_response::cbor::codec::Codec<Req, Resp>,
    request_max: u64,
    response_max: u64,
    received: Received,
}

impl<Req, Resp> Codec<Req, Resp> {
    /// A codec reading requests of at most `request_max` bytes and responses of
    /// at most `response_max`.
    pub fn new(request_max: u64, response_max: u64) -> Self {
        Codec {
            inner: request_response::cbor::codec::Codec::default()
                .set_request_size_maximum(request_max)
                .set_response_size_maximum(response_max),
            request_max,
            response_max,
            received: Received::default(),
        }
    }

    /// The codec, counting the bytes it reads in `received`.
    pub fn counting(self, received: &Received) -> Self {
        Codec {
            received: received.clone(),
            ..self
        }
    }
}

impl<Req, Resp> Clone for Codec<Req, Resp> {
    fn clone(&self) -> Self {
        Codec {
            inner: self.inner.clone(),
            request_max: self.request_max,
            response_max: self.response_max,
            received: self.received.clone(),
        }
    }
}

impl<Req, Resp> std::fmt::Debug for Codec<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("request_max", &self.request_max)
            .finish()
    }
}

impl<Req, Resp> request_response::Codec for Codec<Req, Resp>
where
    Req: Inbound + Send + Serialize + DeserializeOwned,
    Resp: Send + Serialize + DeserializeOwned,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, protocol: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut bytes = Vec::new();
        io.take(self.request_max + 1)
            .read_to_end(&mut bytes)
            .await?;
        self.received.add(bytes.len());
        if bytes.len() as u64 > self.request_max {
            return Ok(Req::malformed(format!(
                "a request of more than {} bytes",
                self.request_max
            )));
        }
        match self
            .inner
            .read_request(protocol, &mut Cursor::new(bytes))
            .await
        {
            Ok(request) => Ok(request),
            Err(e) => Ok(Req::malformed(format!(
                "not a request of the protocol: {e}"
            ))),
        }
    }

    async fn read_response<T>(&mut self, protocol: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        // Read whole up to the bound (as the inner codec does), counted, decoded.
        let mut bytes = Vec::new();
        io.take(self.response_max).read_to_end(&mut bytes).await?;
        self.received.add(bytes.len());
        self.inner
            .read_response(protocol, &mut Cursor::new(bytes))
            .await
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        request: Req,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.inner.write_request(protocol, io, request).await
    }

    async fn write_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        response: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.inner.write_response(protocol, io, response).await
    }
}

#[cfg(test)]
mod tests {
    //! The sync vectors of `spec/network.md` §3: each message built with this
    //! crate's types, written by this codec, is the hex the spec gives; the spec's
    //! bytes read back to a message that writes the same bytes.

    use std::collections::BTreeMap;

    use amb_bytecode::Cid;
    use futures::executor::block_on;
    use libp2p::request_response::Codec as _;
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::wire::{
        Head, MAX_REQUEST_BYTES, Range, SYNC_PROTOCOL, SyncRefusal, SyncRequest, SyncResponse,
    };

    type Sync = Codec<SyncRequest, SyncResponse>;

    fn codec() -> Sync {
        Codec::new(MAX_REQUEST_BYTES as u64, 5 << 20)
    }

    fn protocol() -> StreamProtocol {
        StreamProtocol::new(SYNC_PROTOCOL)
    }

    fn request_bytes(request: SyncRequest) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        block_on(codec().write_request(&protocol(), &mut out, request)).unwrap();
        out.into_inner()
    }

    fn response_bytes(response: SyncResponse) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        block_on(codec().write_response(&protocol(), &mut out, response)).unwrap();
        out.into_inner()
    }

    fn read_request(bytes: &[u8]) -> SyncRequest {
        block_on(codec().read_request(&protocol(), &mut Cursor::new(bytes.to_vec()))).unwrap()
    }

    fn read_response(bytes: &[u8]) -> SyncResponse {
        block_on(codec().read_response(&protocol(), &mut Cursor::new(bytes.to_vec()))).unwrap()
    }

    /// The CIDs the vectors use: the CID of the bytes of their name.
    fn cid(name: &str) -> Cid {
        Cid::of(name.as_bytes())
    }

    /// Every ```` ```vector-sync ```` block of the spec: `field: value` lines.
    fn spec_vectors() -> Vec<BTreeMap<String, String>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/network.md");
        let spec = std::fs::read_to_string(path).expect("spec/network.md is readable");
        spec.split("```vector-sync\n")
            .skip(1)
            .map(|fenced| {
                fenced
                    .split("```")
                    .next()
                    .unwrap()
                    .lines()
                    .map(|line| {
                        let (field, value) = line.split_once(": ").expect("`field: value`");
                        (field.to_string(), value.to_string())
                    })
                    .collect()
            })
            .collect()
    }

    /// Each vector's name and the bytes this crate writes for it.
    fn built() -> Vec<(&'static str, Vec<u8>)> {
        let (program, log, head) = (cid("program"), cid("log"), cid("head"));
        vec![
            (
                "Heads request",
                request_bytes(SyncRequest::Heads { program }),
            ),
            (
                "Heads answer",
                response_bytes(SyncResponse::Heads {
                    heads: vec![Head { log, len: 3, head }],
                    done: true,
                }),
            ),
            (
                "Events request",
                request_bytes(SyncRequest::Events {
                    under: program,
                    ranges: vec![Range {
                        log,
                        from: 1,
                        to: 3,
                    }],
                }),
            ),
            (
                "Events answer",
                response_bytes(SyncResponse::Events {
                    events: vec![ByteBuf::from(vec![0xa1, 0x01]), ByteBuf::from(vec![0x02])],
                }),
            ),
            (
                "Blocks request",
                request_bytes(SyncRequest::Blocks {
                    under: program,
                    cids: vec![head],
                }),
            ),
            (
                "Blocks answer",
                response_bytes(SyncResponse::Blocks {
                    blocks: vec![ByteBuf::from(b"block".to_vec())],
                }),
            ),
            ("Unknown answer", response_bytes(SyncResponse::Unknown)),
            (
                "Refused answer",
                response_bytes(SyncResponse::Refused {
                    reason: SyncRefusal::Malformed,
                    detail: String::new(),
                }),
            ),
            (
                "Not-entitled answer",
                response_bytes(SyncResponse::Refused {
                    reason: SyncRefusal::NotEntitled,
                    detail: String::new(),
                }),
            ),
        ]
    }

    #[test]
    fn the_sync_vectors_of_the_spec_are_what_the_codec_writes_and_reads() {
        let spec: BTreeMap<String, String> = spec_vectors()
            .into_iter()
            .map(|v| (v["message"].clone(), v["hex"].replace(' ', "")))
            .collect();
        let built = built();
        let missing: Vec<String> = built
            .iter()
            .filter(|(name, _)| !spec.contains_key(*name))
            .map(|(name, bytes)| format!("message: {name}\nhex: {}", hex::encode(bytes)))
            .collect();
        assert!(
            missing.is_empty(),
            "spec/network.md lacks these vectors:\n{}",
            missing.join("\n")
        );
        for (name, bytes) in &built {
            let hex = &spec[*name];
            assert_eq!(&hex::encode(bytes), hex, "vector `{name}`");
            let bytes = hex::decode(hex).unwrap();
            let again = if name.ends_with("request") {
                request_bytes(read_request(&bytes))
            } else {
                response_bytes(read_response(&bytes))
            };
            assert_eq!(again, bytes, "vector `{name}` read back");
        }
        assert_eq!(
            spec.len(),
            built.len(),
            "a vector of the spec is not checked"
        );
    }

    #[test]
    fn unreadable_requests_are_read_as_malformed_and_answered() {
        for bytes in [
            &[0xff][..],
            b"",
            &[0xa1, 0x64, b'N', b'o', b'p', b'e', 0xf6],
        ] {
            assert!(
                matches!(read_request(bytes), SyncRequest::Malformed(_)),
                "{bytes:?}"
            );
        }
        let mut big = request_bytes(SyncRequest::Blocks {
            under: cid("x"),
            cids: vec![cid("x"); 4096],
        });
        big.resize(MAX_REQUEST_BYTES + 1, 0);
        assert!(
            matches!(read_request(&big), SyncRequest::Malformed(why) if why.contains("more than"))
        );
        // Past the bound of CIDs (4096) a request is no request either.
        let over = request_bytes(SyncRequest::Blocks {
            under: cid("x"),
            cids: vec![cid("x"); 4097],
        });
        assert!(matches!(read_request(&over), SyncRequest::Malformed(_)));
        // And a node answers it `Refused`, reason `malformed`.
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(amb_log::Store::create(dir.path().join("s.redb")).unwrap());
        let finished = crate::finished::Finished::new(store.clone());
        let answer = crate::serve::answer(&store, &finished, read_request(&[0xff]));
        assert!(
            matches!(
                answer,
                SyncResponse::Refused {
                    reason: SyncRefusal::Malformed,
                    ..
                }
            ),
            "{answer:?}"
        );
    }
}
