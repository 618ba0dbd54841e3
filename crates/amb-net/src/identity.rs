//! One key, two uses: the node's Ed25519 key signs its events and is its libp2p
//! identity, so a peer id names the key that may write a delegated slice, and a
//! gossip message's (signed) source names the key of the events it may carry.

use amb_log::{PublicKey, SigningKey};
use libp2p::{PeerId, identity};

/// The libp2p keypair of a node key.
pub fn keypair(key: &SigningKey) -> identity::Keypair {
    identity::Keypair::ed25519_from_bytes(key.to_seed())
        .expect("a 32-byte seed is a valid Ed25519 secret key")
}

/// The peer id of a public key.
pub fn peer_id(key: &PublicKey) -> PeerId {
    let public = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .expect("an amb public key is a valid Ed25519 point");
    PeerId::from_public_key(&identity::PublicKey::from(public))
}

/// The Ed25519 public key a peer id names, if it names one (ids of Ed25519 keys
/// inline the key).
pub fn public_key(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    let public = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let bytes = public.try_into_ed25519().ok()?.to_bytes();
    PublicKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_id_names_its_key_and_back() {
        let key = SigningKey::from_seed(&[9; 32]);
        let id = keypair(&key).public().to_peer_id();
        assert_eq!(id, peer_id(&key.public_key()));
        assert_eq!(public_key(&id), Some(key.public_key()));
        assert_eq!(public_key(&PeerId::random()), None);
    }
}
