//! Signed event logs: keys, manifests, events, and the embedded store.
//!
//! This crate owns the formats of `spec/events.md` — how a manifest and an event are
//! encoded, signed (Ed25519 under ZIP-215, single or batched) and addressed — the checks that
//! need no replay (well-formed, canonical, CID, signature, key listed in the manifest),
//! and the redb store that holds blocks, events and their indexes; and CAR v1 files,
//! in which programs are exported and imported (`car`). It knows bytecode
//! (events name instructions) but not the engine or the replay state machine, which
//! live in `amb-vm`.

mod car;
mod cbor_write;
mod effect;
mod event;
mod home;
mod keys;
mod manifest;
mod store;

pub use car::{Car, CarError, read_car, write_car};
pub use effect::{EFFECT_VERSION, EffectEvent, UnsignedEffect};
pub use event::{EVENT_VERSION, Event, EventError, MAX_EVENT_BYTES, Op, UnsignedEvent};
pub use home::{
    API_TOKEN_FILE, CONFIG_FILE, Config, DEFAULT_STORE_FILE, HOME_ENV, Home, HomeError, HomeSource,
    Init, KEY_FILE, Loaded,
};
pub use keys::{
    BatchVerifier, Domain, KeyError, PublicKey, Signature, SignatureError, SigningKey,
    signing_input,
};
pub use manifest::{
    Kind, MANIFEST_VERSION, MAX_MANIFEST_BYTES, Manifest, ManifestError, ROOT_LOG_CONTEXT,
};
pub use store::{
    DEFAULT_CACHE_BYTES, DISK_FULL_WHILE_ENV, DecodedEvent, Health, LogEvents, MAX_DEFERRED_AGE,
    MAX_DEFERRED_COMMITS, MAX_STORED_BYTES, NewEvent, ProgramEvents, ReadEvent, SEGMENT_TARGET,
    STORE_FORMAT, Snapshot, Store, StoreError, StoredEvent, Written,
};
