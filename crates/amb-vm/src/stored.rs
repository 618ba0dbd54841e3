//! Loading a stored program, the one way (`amb run --resume` and a node preparing
//! its walk of a deployment both use it): the program manifest read from the store
//! under the program's CID and checked (canonical, signed, a root), the bytecode
//! blocks it names loaded (each under the CID of its bytes), read back into a
//! term, and compiled again with the map from bytecode to term nodes that
//! planning needs. Compiling the term read back must give the manifest's program.

use amb_bytecode::{
    BlockLimits, Cid, CompileError, CompiledProgram, NodeMap, Program, ProgramLimits,
};
use amb_log::{Manifest, ManifestError, Store, StoreError};
use amb_syntax::Ast;

/// A stored program, ready to plan.
#[derive(Debug)]
pub struct StoredProgram {
    /// Its manifest (a root, its signature checked).
    pub manifest: Manifest,
    /// The program read back from its blocks.
    pub ast: Ast,
    /// The term compiled again: its root is the manifest's program.
    pub compiled: CompiledProgram,
    /// Where each bytecode position is in `ast`.
    pub map: NodeMap,
}

/// Why a stored program could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The store failed.
    #[error("reading the store: {0}")]
    Store(#[from] StoreError),
    /// The store has no block under the program's CID.
    #[error("no program /amb/{0} in this store")]
    NotStored(Cid),
    /// The block under the program's CID is not a valid, signed manifest.
    #[error("the stored manifest of /amb/{program} is invalid: {source}")]
    Manifest {
        /// The program.
        program: Cid,
        /// What is wrong with it.
        #[source]
        source: ManifestError,
    },
    /// The manifest is a slice's, not a program's.
    #[error("/amb/{0} is not a program address")]
    NotAProgram(Cid),
    /// A bytecode block is missing or invalid.
    #[error("loading the program's blocks: {0}")]
    Blocks(#[source] amb_bytecode::LoadError),
    /// The blocks do not read back into a term.
    #[error("reading the program back: {0}")]
    ReadBack(#[source] amb_bytecode::LoadError),
    /// The term read back does not compile.
    #[error("compiling the program read back: {0}")]
    Compile(#[from] CompileError),
    /// The term read back compiles to another program than the manifest's.
    #[error("the program read back does not compile to the manifest's program")]
    Mismatch,
}

/// Loads the program `program` (its manifest's CID) from `store`.
pub fn load_program(store: &Store, program: Cid) -> Result<StoredProgram, LoadError> {
    let bytes = store
        .get_block(program)?
        .ok_or(LoadError::NotStored(program))?;
    let invalid = |source| LoadError::Manifest { program, source };
    let manifest = Manifest::decode(&bytes).map_err(invalid)?;
    if manifest.kind() != amb_log::Kind::Program || manifest.cid() != program {
        return Err(LoadError::NotAProgram(program));
    }
    manifest.verify_signature().map_err(invalid)?;
    let blocks = Program::load(
        manifest.program(),
        |cid| store.get_block(*cid).ok().flatten(),
        &BlockLimits::default(),
    )
    .map_err(LoadError::Blocks)?;
    let ast = blocks
        .to_ast(&ProgramLimits::default())
        .map_err(LoadError::ReadBack)?;
    let (compiled, map) = amb_bytecode::compile_with_map(&ast, &BlockLimits::default())?;
    if compiled.root != manifest.program() {
        return Err(LoadError::Mismatch);
    }
    Ok(StoredProgram {
        manifest,
        ast,
        compiled,
        map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use amb_log::SigningKey;

    #[test]
    fn a_stored_program_loads_and_what_is_not_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path().join("s.redb")).unwrap();
        let ast = amb_syntax::parse("a[in b] | b[in_ a]").unwrap();
        let compiled = amb_bytecode::compile(&ast).unwrap();
        let key = SigningKey::from_seed(&[3; 32]);
        let manifest = Manifest::new_root(
            compiled.root,
            Some("t".into()),
            vec![key.public_key()],
            &key,
            [0; 16],
            0,
        );
        let missing = Cid::of(b"nothing");
        assert!(matches!(
            load_program(&store, missing),
            Err(LoadError::NotStored(cid)) if cid == missing
        ));
        store.put_block(manifest.cid(), &manifest.encode()).unwrap();
        assert!(matches!(
            load_program(&store, manifest.cid()),
            Err(LoadError::Blocks(_))
        ));
        crate::record::store_program(&compiled, &manifest, &store).unwrap();
        let loaded = load_program(&store, manifest.cid()).unwrap();
        assert_eq!(loaded.compiled.root, compiled.root);
        assert_eq!(loaded.manifest, manifest);
        let block = compiled.blocks[0].0;
        assert!(matches!(
            load_program(&store, block),
            Err(LoadError::Manifest { .. })
        ));
    }
}
