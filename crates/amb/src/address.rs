//! Program addresses and event CIDs as people type them: `/amb/<cid>`, the bare CID,
//! or a unique prefix of it (git accepts short hashes the same way; `amb log` prints
//! event CIDs shortened). One wording for every command: an unknown address is
//! [`AddressError::NotFound`], a bytecode CID given for an address is
//! [`AddressError::Bytecode`], a prefix that starts several is
//! [`AddressError::Ambiguous`] with the candidates.

use amb_bytecode::{Block, Cid};
use amb_log::{Kind, Manifest, Store, StoreError};

/// Shortest prefix accepted: every CID of ours starts with the same 7 characters
/// (`bafyr4i`), so a shorter one names nothing.
const MIN_PREFIX: usize = 8;

/// Why text does not name one program (or one event).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AddressError {
    /// Not of the form of an address or CID at all.
    #[error(
        "`{0}` is not a program address: give /amb/<cid>, the CID, or a unique prefix of \
         it (at least {MIN_PREFIX} characters; `amb ls` lists the addresses)"
    )]
    Malformed(String),
    /// Not of the form of an event CID (or a prefix of one).
    #[error(
        "`{0}` is not an event CID: give the CID or a unique prefix of it (at least \
         {MIN_PREFIX} characters) as `amb log` prints it"
    )]
    MalformedEvent(String),
    /// Nothing by that address (or prefix) here.
    #[error("no program {0} here (`amb ls [--node URL]` lists the programs held)")]
    NotFound(String),
    /// No event of the program by that CID or prefix.
    #[error("no event {what} in /amb/{program} (`amb log` lists its events)")]
    NoEvent {
        /// The CID or the prefix.
        what: String,
        /// The program.
        program: Cid,
    },
    /// A bytecode block's CID where a program's address is expected.
    #[error("{0} is a bytecode CID (`amb compile`), not a program address (`amb run`/`deploy`)")]
    Bytecode(Cid),
    /// A prefix that starts more than one CID.
    #[error("`{prefix}` is ambiguous: it starts {}: {}", candidates.len(), candidates.join(", "))]
    Ambiguous {
        /// What was given.
        prefix: String,
        /// What it starts.
        candidates: Vec<String>,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The CID text of an address: without `/amb/` and surrounding space.
fn bare(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix("/amb/").unwrap_or(text)
}

/// Whether `text` can be the start of one of our CIDs' text (base32, lower case).
fn is_prefix(text: &str) -> bool {
    text.len() >= MIN_PREFIX
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The one of `candidates` whose text starts with `prefix`: `Ok(None)` when none
/// does, `Err` with every match when several do.
fn unique(
    prefix: &str,
    candidates: impl IntoIterator<Item = Cid>,
) -> Result<Option<Cid>, Vec<Cid>> {
    let mut found: Vec<Cid> = candidates
        .into_iter()
        .filter(|cid| cid.to_string().starts_with(prefix))
        .collect();
    found.sort_unstable();
    found.dedup();
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0])),
        _ => Err(found),
    }
}

fn ambiguous(prefix: &str, found: Vec<Cid>, show: impl Fn(Cid) -> String) -> AddressError {
    AddressError::Ambiguous {
        prefix: prefix.to_string(),
        candidates: found.into_iter().map(show).collect(),
    }
}

/// The program `text` names among `programs` (a store's or a node's list): a full
/// CID as it is, a prefix when it starts exactly one of them.
pub(crate) fn among(text: &str, programs: &[Cid]) -> Result<Cid, AddressError> {
    let cid = bare(text);
    if let Ok(full) = cid.parse::<Cid>() {
        return Ok(full);
    }
    if !is_prefix(cid) {
        return Err(AddressError::Malformed(text.to_string()));
    }
    match unique(cid, programs.iter().copied()) {
        Ok(Some(program)) => Ok(program),
        Ok(None) => Err(AddressError::NotFound(format!(
            "whose address starts with `{cid}`"
        ))),
        Err(found) => Err(ambiguous(cid, found, |c| format!("/amb/{c}"))),
    }
}

/// The program of the store `text` names: its manifest must be stored there. A
/// prefix of a stored program's bytecode CID is named as one.
pub(crate) fn resolve(store: &Store, text: &str) -> Result<Cid, AddressError> {
    let program = match bare(text).parse::<Cid>() {
        Ok(full) => full,
        Err(_) => {
            let programs = store.programs()?;
            match among(text, &programs) {
                Err(AddressError::NotFound(what)) => {
                    return Err(bytecode_prefix(store, &programs, bare(text))?
                        .map_or(AddressError::NotFound(what), AddressError::Bytecode));
                }
                other => other?,
            }
        }
    };
    match stored_kind(store, program)? {
        Stored::Program => Ok(program),
        Stored::Bytecode => Err(AddressError::Bytecode(program)),
        Stored::Other => Err(AddressError::NotFound(format!("/amb/{program}"))),
    }
}

/// What a store holds under a CID, as far as addresses go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A program manifest.
    Program,
    /// A bytecode block.
    Bytecode,
    /// Anything else, or nothing.
    Other,
}

/// What `store` holds under `cid`.
pub(crate) fn stored_kind(store: &Store, cid: Cid) -> Result<Stored, StoreError> {
    let Some(bytes) = store.get_block(cid)? else {
        return Ok(Stored::Other);
    };
    Ok(match Manifest::decode(&bytes) {
        Ok(manifest) if manifest.kind() == Kind::Program => Stored::Program,
        Ok(_) => Stored::Other,
        Err(_) if Block::decode(&bytes).is_ok() => Stored::Bytecode,
        Err(_) => Stored::Other,
    })
}

/// The root bytecode block of one of `programs` whose CID starts with `prefix`.
fn bytecode_prefix(
    store: &Store,
    programs: &[Cid],
    prefix: &str,
) -> Result<Option<Cid>, StoreError> {
    for program in programs {
        let Some(bytes) = store.get_block(*program)? else {
            continue;
        };
        if let Ok(manifest) = Manifest::decode(&bytes) {
            if manifest.program().to_string().starts_with(prefix) {
                return Ok(Some(manifest.program()));
            }
        }
    }
    Ok(None)
}

/// The part (a delegate's order, `amb_vm::part`) that `text` names in `store`: a
/// full CID or a unique prefix of a stored program's; `None` when it names no part.
pub(crate) fn part(store: &Store, text: &str) -> Result<Option<Cid>, AddressError> {
    let Ok(cid) = among(text, &store.programs()?) else {
        return Ok(None);
    };
    Ok(amb_vm::part::is_part(store, cid)?.then_some(cid))
}

/// The event of `program` that `text` names: a full event CID, or a unique prefix of
/// one of `events` (as `amb log` prints them).
pub(crate) fn event(
    text: &str,
    program: Cid,
    events: impl IntoIterator<Item = Cid>,
) -> Result<Cid, AddressError> {
    let text = text.trim();
    let mut all = events.into_iter();
    if let Ok(full) = text.parse::<Cid>() {
        return if all.any(|e| e == full) {
            Ok(full)
        } else {
            Err(AddressError::NoEvent {
                what: full.to_string(),
                program,
            })
        };
    }
    if !is_prefix(text) {
        return Err(AddressError::MalformedEvent(text.to_string()));
    }
    match unique(text, all) {
        Ok(Some(event)) => Ok(event),
        Ok(None) => Err(AddressError::NoEvent {
            what: format!("starting with `{text}`"),
            program,
        }),
        Err(found) => Err(ambiguous(text, found, |c| c.to_string())),
    }
}

/// The program a node holds that `text` names: a full CID as it is (the node says
/// whether it holds it), a prefix looked up in the node's program list.
pub(crate) fn resolve_remote(node: &crate::client::NodeArgs, text: &str) -> anyhow::Result<Cid> {
    if let Ok(full) = bare(text).parse::<Cid>() {
        return Ok(full);
    }
    if !is_prefix(bare(text)) {
        return Err(AddressError::Malformed(text.to_string()).into());
    }
    let programs: Vec<Cid> = crate::commands::ls::remote_entries(node)?
        .iter()
        .filter_map(|entry| entry["address"].as_str())
        .filter_map(|address| bare(address).parse().ok())
        .collect();
    Ok(among(text, &programs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Cid {
        Cid::of(&[n])
    }

    #[test]
    fn prefixes_resolve_when_unique_and_list_candidates_otherwise() {
        let programs: Vec<Cid> = (0..50).map(cid).collect();
        let one = programs[3];
        let text = one.to_string();
        assert_eq!(among(&text[..20], &programs).unwrap(), one);
        assert_eq!(
            among(&format!("/amb/{}", &text[..20]), &programs).unwrap(),
            one
        );
        match among(&text[..8], &programs) {
            Err(AddressError::Ambiguous { candidates, .. }) => {
                assert!(candidates.len() >= 2);
                assert!(candidates.contains(&format!("/amb/{one}")));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            among("bafyr4izzzzzzzzzzzzzzzz", &programs),
            Err(AddressError::NotFound(_))
        ));
        assert!(matches!(
            among("bafy", &programs),
            Err(AddressError::Malformed(_))
        ));
        assert!(matches!(
            among("/amb/NOT-A-CID", &programs),
            Err(AddressError::Malformed(_))
        ));
    }
}
