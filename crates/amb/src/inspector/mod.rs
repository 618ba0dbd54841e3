//! The time-travel inspector (`spec/network.md` §7, "Reading programs"): read
//! routes over a store, a cache of replayed timelines, and the page that draws
//! them, served by `amb node` over the node's own store and by `amb ui` over a
//! local one.
//!
//! Split by job: the program list (`list`), the timeline cache (`cache`), figures
//! kept per program while its events stay the same (`fresh`), the slices each
//! peer hosts (`peers`), the
//! JSON of events, states, terms and diffs (`views`), why a normal form is stuck
//! (`stuck`), the line diff (`diff`), the routes (`routes`) and the page's files
//! (`assets`, from `crates/amb/web/`).

mod assets;
pub(crate) mod cache;
pub(crate) mod diff;
mod fresh;
pub(crate) mod list;
mod peers;
pub(crate) mod routes;
mod stuck;
pub(crate) mod views;

#[cfg(test)]
pub(crate) mod testing {
    //! Programs recorded into a store, as `amb run` records them.

    use amb_bytecode::{BlockLimits, Cid};
    use amb_log::{Manifest, SigningKey, Store};

    /// Records the run of `source` into `store`; its program address.
    pub(crate) fn recorded(store: &Store, source: &str) -> Cid {
        let ast = amb_syntax::parse(source).expect("parses");
        let (compiled, map) =
            amb_bytecode::compile_with_map(&ast, &BlockLimits::default()).expect("compiles");
        let key = SigningKey::from_seed(&[7; 32]);
        let manifest = Manifest::new_root(
            compiled.root,
            Some("test".into()),
            vec![key.public_key()],
            &key,
            Manifest::random_nonce(),
            0,
        );
        let plan = amb_vm::plan::plan(&ast, &compiled, &map, amb_engine::Limits::default())
            .expect("plans");
        amb_vm::record::store_program(&compiled, &manifest, store).expect("stores");
        amb_vm::record::record_events(&plan, &manifest, &key, store, &())
            .expect("records")
            .program
    }
}
