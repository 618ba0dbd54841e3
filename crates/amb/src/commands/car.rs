//! `amb export ADDRESS -o FILE.car` and `amb import FILE.car`: a program with its
//! signed events in a CAR v1 file (`spec/events.md` §10), the program manifest as its
//! root.
//!
//! An export holds the program manifest, the root log's manifest (derived from it),
//! every slice manifest, every bytecode block the program and its values name, and
//! every stored event. An import reads the whole file, checks every block against
//! its CID, verifies every event as `amb verify` does (signatures, keys, refs, the
//! replay) and only then stores it all in one transaction: a forged, incomplete or
//! foreign file is refused naming the event and the rule, and nothing is stored.

use std::{
    collections::{BTreeSet, HashMap},
    io::{BufWriter, Write},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
};

use amb_bytecode::{Block, Cid};
use amb_log::{AnyEvent, Kind, Manifest, NewEvent, Store};
use amb_vm::replay::Source;
use anyhow::Context;
use serde_json::json;

use crate::{
    commands::{
        json_error::{Invalid, ensure_valid},
        verify::verified_json,
    },
    options::Global,
};

/// Arguments of `amb export` (with `--node URL`, a running node's program,
/// written by the node from its store).
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The program's address, `/amb/<cid>` (or the bare CID, or a unique prefix).
    address: String,
    /// The CAR file to write.
    #[arg(long, short, value_name = "FILE.car")]
    output: PathBuf,
}

/// Arguments of `amb import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    /// The CAR file to read (as `amb export` writes it).
    file: PathBuf,
    /// Leave out the normal form, which can be large.
    #[arg(long, short)]
    quiet: bool,
}

/// A block an export needs that the store does not hold: the file would not be
/// whole, so none is written (kind `not-found`; the node's route answers 404).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot export /amb/{program}: its {what} {cid} is not stored here (a store that \
     fetched the program from a peer lacks what that peer did not give; export it \
     from the node that ran it)"
)]
pub(crate) struct MissingBlock {
    /// What the block is: the manifest, a log's manifest, a bytecode or value block.
    what: &'static str,
    /// The block.
    cid: Cid,
    /// The program exported.
    program: Cid,
}

/// The blocks of an export, the program manifest first.
fn export_blocks(store: &Store, program: Cid) -> anyhow::Result<Vec<(Cid, Vec<u8>)>> {
    let missing = |what, cid| MissingBlock { what, cid, program };
    let snapshot = store.snapshot()?;
    let manifest_bytes = store
        .get_block(program)?
        .ok_or_else(|| missing("manifest", program))?;
    let manifest = Manifest::decode(&manifest_bytes)
        .with_context(|| format!("the stored manifest of /amb/{program}"))?;
    let mut blocks = vec![(program, manifest_bytes)];
    let root_log = amb_vm::record::root_log_manifest(&manifest);
    let root_log_cid = root_log.cid();
    blocks.push((root_log_cid, root_log.encode()));
    for log in store.program_logs(program)? {
        if log == root_log_cid || log == program {
            continue;
        }
        let slice = snapshot
            .get_manifest(log)?
            .ok_or_else(|| missing("log manifest", log))?;
        blocks.push((log, slice.encode()));
    }
    let mut events = Vec::new();
    let mut wanted = vec![(manifest.program(), "bytecode block")];
    amb_vm::verify::for_each_stored_event(store, program, &(), |cid, bytes| {
        // A payload's value, and an effect's argument and result (value blocks).
        match AnyEvent::decode(&bytes) {
            Ok(AnyEvent::Op(event)) => wanted.extend(event.payload().map(|v| (v, "value block"))),
            Ok(AnyEvent::Effect(effect)) => wanted.extend([
                (effect.args(), "effect argument block"),
                (effect.result(), "effect result block"),
            ]),
            Err(_) => {}
        }
        events.push((cid, bytes));
        Ok(())
    })?;
    // The bytecode: the program's blocks and those of its values, each once.
    let mut seen = BTreeSet::new();
    while let Some((cid, what)) = wanted.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let bytes = store.get_block(cid)?.ok_or_else(|| missing(what, cid))?;
        let block = Block::decode(&bytes).with_context(|| format!("the stored block {cid}"))?;
        wanted.extend(block.children().map(|c| (c, what)));
        blocks.push((cid, bytes));
    }
    blocks.extend(events);
    Ok(blocks)
}

/// The CAR file of a stored program (as `amb export` writes it): its bytes.
pub(crate) fn car_bytes(store: &Store, program: Cid) -> anyhow::Result<Vec<u8>> {
    let blocks = export_blocks(store, program)?;
    let mut out = Vec::new();
    amb_log::write_car(
        program,
        blocks.iter().map(|(cid, bytes)| (*cid, bytes.as_slice())),
        &mut out,
    )?;
    Ok(out)
}

/// The media type of a CAR file (what the node's export route answers with).
pub(crate) const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car";

/// How long a node may take to write a program's CAR file.
const EXPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

pub(crate) fn export(args: &ExportArgs, global: &Global) -> anyhow::Result<ExitCode> {
    // With `--node`, the node writes the file from its store (its route
    // `/v1/programs/{cid}/car`); it is read back here before it is kept.
    let (program, bytes) = match global.remote() {
        Some(node) => {
            let program = crate::address::resolve_remote(&node, &args.address)?;
            let bytes = node.get_bytes(&format!("/v1/programs/{program}/car"), EXPORT_TIMEOUT)?;
            (program, bytes)
        }
        None => {
            let store = global.home().open_store()?;
            let program = crate::address::resolve(&store, &args.address)?;
            (program, car_bytes(&store, program)?)
        }
    };
    let car = amb_log::read_car(&bytes).context("the exported file is not a CAR v1 file")?;
    anyhow::ensure!(
        car.root == program,
        "the exported file's root is {}, not /amb/{program}",
        car.root
    );
    let file = std::fs::File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = BufWriter::new(file);
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .with_context(|| format!("writing {}", args.output.display()))?;
    let blocks = car.blocks;
    let events = blocks
        .iter()
        .filter(|(_, bytes)| AnyEvent::decode(bytes).is_ok())
        .count();
    let address = format!("/amb/{program}");
    if global.json {
        let json = json!({
            "address": address,
            "file": args.output.display().to_string(),
            "blocks": blocks.len(),
            "events": events,
        });
        println!("{json}");
    } else {
        println!(
            "exported {address} to {}: {} blocks, {events} of them signed events",
            args.output.display(),
            blocks.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifests and bytecode blocks of a CAR file, for the verification.
#[derive(Debug, Default)]
struct CarSource {
    blocks: HashMap<Cid, Arc<Block>>,
    manifests: HashMap<Cid, Arc<Manifest>>,
}

impl Source for CarSource {
    fn block(&self, cid: &Cid) -> Option<Arc<Block>> {
        self.blocks.get(cid).cloned()
    }

    fn manifest(&self, cid: &Cid) -> Option<Arc<Manifest>> {
        // A program manifest counts only with a valid signature (as from a store).
        self.manifests
            .get(cid)
            .filter(|m| m.kind() != Kind::Program || m.verify_signature().is_ok())
            .cloned()
    }
}

pub(crate) fn import(args: &ImportArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let name = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).with_context(|| format!("reading {name}"))?;
    let car = amb_log::read_car(&bytes).with_context(|| format!("{name} is not a CAR v1 file"))?;
    let program = car.root;
    let mut source = CarSource::default();
    let mut events = Vec::new();
    for (cid, bytes) in &car.blocks {
        if let Ok(manifest) = Manifest::decode(bytes) {
            source.manifests.insert(*cid, Arc::new(manifest));
        } else if AnyEvent::decode(bytes).is_ok() {
            events.push((*cid, bytes.clone()));
        } else if let Ok(block) = Block::decode(bytes) {
            source.blocks.insert(*cid, Arc::new(block));
        } else {
            return Err(Invalid(format!(
                "{name}: the block {cid} is neither a manifest, a signed event nor a bytecode block"
            ))
            .into());
        }
    }
    ensure_valid!(
        source
            .manifests
            .get(&program)
            .is_some_and(|m| m.kind() == Kind::Program),
        "{name}: its root {program} is not a program manifest (an `amb export` file's is)"
    );
    let verified = amb_vm::verify::verify_events(&source, program, &events)
        .with_context(|| format!("{name} does not verify; nothing was stored"))?;
    // In replay order, every event after the events it refers to.
    let by_cid: HashMap<Cid, (AnyEvent, &[u8])> = events
        .iter()
        .map(|(cid, bytes)| {
            let event = AnyEvent::decode(bytes).expect("decoded above");
            (*cid, (event, bytes.as_slice()))
        })
        .collect();
    let ordered: Vec<NewEvent<'_>> = verified
        .order
        .iter()
        .map(|cid| {
            let (event, bytes) = &by_cid[cid];
            NewEvent {
                cid: *cid,
                log: event.log(),
                seq: event.seq(),
                refs: event.refs(),
                bytes,
            }
        })
        .collect();
    let others: Vec<(Cid, &[u8])> = car
        .blocks
        .iter()
        .filter(|(cid, _)| !by_cid.contains_key(cid))
        .map(|(cid, bytes)| (*cid, bytes.as_slice()))
        .collect();
    let loaded = global.home().load_or_create()?;
    let store = Store::open_or_create(&loaded.store_path)
        .with_context(|| format!("opening the store {}", loaded.store_path.display()))?;
    let written = store
        .write(program, &others, &ordered)
        .with_context(|| format!("storing /amb/{program}"))?;
    let mut summary = verified_json(program, &verified);
    super::quiet(&mut summary, args.quiet);
    if global.json {
        let mut json = summary;
        json["new_events"] = json!(written.new);
        println!("{json}");
    } else {
        println!(
            "imported {}: {} events in {} logs verified ({} new), {} steps",
            summary["address"].as_str().unwrap_or("?"),
            summary["events"],
            summary["logs"],
            written.new,
            summary["steps"],
        );
        if let Some(normal_form) = summary["normal_form"].as_str() {
            println!("normal form: {normal_form}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
