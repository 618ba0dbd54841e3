//! The local provider of the system services: BLAKE3, the protocol's signature rule,
//! the node's redb store scoped by program, the system clock and the operating
//! system's random source (`spec/system.md` §1, §5).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use amb_bytecode::Cid;
use amb_log::{PublicKey, Signature, Store};
use rand::RngCore;

use super::{
    service::{Failure, Service, SystemServices},
    term::{canonical_encoding, value_block, value_of_block},
};
use crate::value::Value;

/// The default of `max_put_bytes`.
pub const MAX_PUT_BYTES: usize = 65_536;
/// The default of `max_random_bytes`.
pub const MAX_RANDOM_BYTES: i64 = 1_024;

/// The services of one host, over its store.
pub struct LocalServices {
    store: Arc<Store>,
    /// CIDs published as public: any program may get them.
    public: HashSet<Cid>,
    /// (scope, CID) of every value put, so a program gets only its own.
    puts: Mutex<HashSet<(String, Cid)>>,
    /// Whether the untrusted services (time, random) are offered.
    untrusted: bool,
    /// The longest `sys_put` argument, in bytes of its canonical encoding.
    pub max_put_bytes: usize,
    /// How long a `sys_get` of a block the store lacks waits for it to arrive (as a
    /// host that asks its peers does), then fails `timeout`; `None`: `not-found` at
    /// once.
    wait_for_blocks: Option<Duration>,
}

impl std::fmt::Debug for LocalServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServices")
            .field("public", &self.public.len())
            .field("untrusted", &self.untrusted)
            .field("max_put_bytes", &self.max_put_bytes)
            .finish_non_exhaustive()
    }
}

impl LocalServices {
    /// The services over `store`, untrusted ones included.
    pub fn new(store: Arc<Store>) -> LocalServices {
        LocalServices {
            store,
            public: HashSet::new(),
            puts: Mutex::new(HashSet::new()),
            untrusted: true,
            max_put_bytes: MAX_PUT_BYTES,
            wait_for_blocks: None,
        }
    }

    /// A `sys_get` of a block the store lacks waits up to `patience` for it (a
    /// block a peer sends is written to the store), then fails `timeout`
    /// (`spec/system.md` §5); give the effect timeout, so the thread of an effect
    /// that timed out ends with it.
    pub fn waiting_for_blocks(mut self, patience: Duration) -> LocalServices {
        self.wait_for_blocks = Some(patience);
        self
    }

    /// Waits up to the patience for `cid` to be stored; `Err(Timeout)` if it is
    /// not by then.
    fn wait_for(&self, cid: Cid, patience: Duration) -> Result<(), Failure> {
        let deadline = Instant::now() + patience;
        while !self.store.has_block(cid).unwrap_or(false) {
            if Instant::now() >= deadline {
                return Err(Failure::Timeout);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Without the untrusted services (a host that does not offer them).
    pub fn deterministic_only(mut self) -> LocalServices {
        self.untrusted = false;
        self
    }

    /// Publishes `cid` as public: every program may get it.
    pub fn publish(&mut self, cid: Cid) {
        self.public.insert(cid);
    }

    fn put(&self, scope: &str, value: &Value) -> Result<Value, Failure> {
        if canonical_encoding(value).len() > self.max_put_bytes {
            return Err(Failure::TooLarge);
        }
        let (root, blocks) = value_block(value).map_err(|_| Failure::TooLarge)?;
        self.store
            .put_blocks(blocks.iter().map(|(cid, bytes)| (*cid, bytes.as_slice())))
            .map_err(|_| Failure::NotFound)?;
        self.puts
            .lock()
            .expect("not poisoned")
            .insert((scope.to_string(), root));
        Ok(Value::String(root.to_string()))
    }

    fn get(&self, scope: &str, argument: &Value) -> Result<Value, Failure> {
        let Value::String(text) = argument else {
            return Err(Failure::BadArgument);
        };
        let cid: Cid = text.parse().map_err(|_| Failure::BadArgument)?;
        if let Some(patience) = self.wait_for_blocks {
            self.wait_for(cid, patience)?;
        }
        let mine = self
            .puts
            .lock()
            .expect("not poisoned")
            .contains(&(scope.to_string(), cid));
        if !mine && !self.public.contains(&cid) {
            return Err(Failure::NotFound);
        }
        value_of_block(cid, |c| self.store.get_block(*c).ok().flatten()).ok_or(Failure::NotFound)
    }
}

/// BLAKE3 of the canonical encoding.
pub fn hash(value: &Value) -> Value {
    Value::Bytes(blake3::hash(&canonical_encoding(value)).as_bytes().to_vec())
}

/// Whether `(key, message, signature)` is a valid signature (`sys_verify`).
pub fn verify(argument: &Value) -> Result<Value, Failure> {
    let Value::Tuple(items) = argument else {
        return Err(Failure::BadArgument);
    };
    let [Value::Bytes(key), Value::Bytes(message), Value::Bytes(sig)] = items.as_slice() else {
        return Err(Failure::BadArgument);
    };
    let key: &[u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| Failure::BadArgument)?;
    let sig: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| Failure::BadArgument)?;
    let valid = PublicKey::from_bytes(key).is_ok_and(|k| {
        k.verify_message(message, &Signature::from_bytes(sig))
            .is_ok()
    });
    Ok(Value::Bool(valid))
}

impl SystemServices for LocalServices {
    fn offered(&self) -> Vec<Service> {
        Service::ALL
            .into_iter()
            .filter(|s| match s {
                Service::HttpGet => false,
                Service::Time | Service::Random => self.untrusted,
                _ => true,
            })
            .collect()
    }

    fn perform(&self, scope: &str, service: Service, argument: &Value) -> Result<Value, Failure> {
        match service {
            Service::Hash => Ok(hash(argument)),
            Service::Put => self.put(scope, argument),
            Service::Get => self.get(scope, argument),
            Service::Verify => verify(argument),
            Service::Time => match argument {
                Value::Tuple(items) if items.is_empty() => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_err(|_| Failure::NotOffered)?;
                    Ok(Value::Int(
                        i64::try_from(now.as_millis()).map_err(|_| Failure::NotOffered)?,
                    ))
                }
                _ => Err(Failure::BadArgument),
            },
            Service::Random => match argument {
                Value::Int(n) if (0..=MAX_RANDOM_BYTES).contains(n) => {
                    let mut bytes = vec![0; *n as usize];
                    rand::rngs::OsRng.fill_bytes(&mut bytes);
                    Ok(Value::Bytes(bytes))
                }
                _ => Err(Failure::BadArgument),
            },
            Service::HttpGet => Err(Failure::NotOffered),
        }
    }
}
