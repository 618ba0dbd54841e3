//! Blocks and manifests for a live node's replay: read from the store through
//! `amb-vm`'s own checks, and kept once found. Unlike a verification's cache, a
//! miss is not remembered: the block may arrive from a peer a moment later.

use std::{cell::RefCell, collections::HashMap, sync::Arc};

use amb_bytecode::{Block, Cid};
use amb_log::{Manifest, Store};
use amb_vm::{replay::Source, verify::StoreSource};

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
        self.blocks.borrow_mut().insert(*cid, block.clone());
        Some(block)
    }

    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        if let Some(manifest) = self.manifests.borrow().get(cid) {
            return Some(manifest.clone());
        }
        let manifest = StoreSource { store: &self.store }.manifest(cid)?;
        self.manifests.borrow_mut().insert(*cid, manifest.clone());
        Some(manifest)
    }
}
