//! Blocks and manifests for a live node's replay: read from the store through
//! `amb-vm`'s own checks, and kept once found. Unlike a verification's cache, a
//! miss is not remembered: the block may arrive from a peer a moment later. The
//! cache is bounded: past [`MAX_CACHED`] entries it starts again empty (what a held
//! program needs, its replay state keeps itself).

use std::{cell::RefCell, collections::HashMap, sync::Arc};

use amb_bytecode::{Block, Cid};
use amb_log::{Manifest, Store};
use amb_vm::{replay::Source, verify::StoreSource};

/// Most blocks, and most manifests, kept.
pub(crate) const MAX_CACHED: usize = 4096;

/// A store-backed [`Source`] that caches hits only.
pub(crate) struct LiveSource {
    store: Arc<Store>,
    blocks: RefCell<HashMap<Cid, Arc<Block>>>,
    manifests: RefCell<HashMap<Cid, Arc<Manifest>>>,
}

impl LiveSource {
    pub(crate) fn new(store: Arc<Store>) -> LiveSource {
        LiveSource {
            store,
            blocks: RefCell::default(),
            manifests: RefCell::default(),
        }
    }
}

impl Source for LiveSource {
    fn block(&self, cid: &Cid) -> Option<Arc<Block>> {
        if let Some(block) = self.blocks.borrow().get(cid) {
            return Some(block.clone());
        }
        let block = StoreSource { store: &self.store }.block(cid)?;
        bounded_insert(&mut self.blocks.borrow_mut(), *cid, block.clone());
        Some(block)
    }

    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        if let Some(manifest) = self.manifests.borrow().get(cid) {
            return Some(manifest.clone());
        }
        let manifest = StoreSource { store: &self.store }.manifest(cid)?;
        bounded_insert(&mut self.manifests.borrow_mut(), *cid, manifest.clone());
        Some(manifest)
    }
}

fn bounded_insert<V>(cache: &mut HashMap<Cid, V>, cid: Cid, value: V) {
    if cache.len() >= MAX_CACHED {
        *cache = HashMap::new();
    }
    cache.insert(cid, value);
}
