//! What an intent's secret derives, and what of it may leave a node.
//!
//! From an intent's secret (see [`Intent`](super::Intent)), by HKDF-SHA256 with the salt
//! `whispurr/v1/intent keys` and one label each:
//!
//! | value | label | leaves the node as |
//! |---|---|---|
//! | [`ResonanceKey`] | `resonance key` | never as is: blinded per link ([`BlindedKey`]) in ANNOUNCE and RESONANCE |
//! | [`ResonanceContentKey`] | `resonance content key` | never: it seals RESONANCE payloads and their fields |
//! | [`RendezvousKey`] | `rendezvous key` | never as is: one namespace per relay ([`RendezvousKey::namespace`]) |
//!
//! **Blinding per link.** A neighbour sees an intent only as HKDF of its resonance key, salted
//! with the link's *binding* (the Noise handshake hash of that link's session: the same at both
//! ends, different for every session, tunnels included) and labelled with the sender's node key.
//! The same intent therefore shows a different value on every link and from each end of a link;
//! two neighbours cannot compare what they saw, and a neighbour cannot hand a value it received
//! back as its own. Recognising a value needs the resonance key, so only nodes attuned to an
//! intent can match it — which is why resonance travels among attuned nodes only.
//!
//! **Per relay.** The rendezvous namespace of an intent at a relay is HKDF of the rendezvous key
//! salted with the relay's node key: distinct from everything neighbours see, and different at
//! every relay, so relays cannot correlate their namespaces.

use core::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::{IntentSecret, expand};
use crate::NodeKey;

/// HKDF salt of the keys derived from an intent secret.
const KEYS_SALT: &[u8] = b"whispurr/v1/intent keys";
/// HKDF salt of the global namespace.
const GLOBAL_SALT: &[u8] = b"whispurr/v1/rendezvous";

/// The key attuned nodes match each other by. It never leaves the node as is: neighbours see it
/// blinded per link ([`announcement`](Self::announcement), [`tag`](Self::tag)). Printed
/// redacted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResonanceKey([u8; 32]);

impl ResonanceKey {
    pub(crate) fn from_secret(secret: &IntentSecret) -> Self {
        ResonanceKey(expand(KEYS_SALT, secret.as_bytes(), &[b"resonance key"]))
    }

    /// The value that announces this intent to the other end of a link whose binding (handshake
    /// hash) is `binding`, sent by `sender`.
    pub fn announcement(&self, binding: &[u8; 32], sender: &NodeKey) -> BlindedKey {
        self.blind(binding, sender, b"whispurr/v1 announce")
    }

    /// The value that marks a RESONANCE message of this intent on a link whose binding is
    /// `binding`, sent by `sender` (each forwarder derives it again for the next link).
    pub fn tag(&self, binding: &[u8; 32], sender: &NodeKey) -> BlindedKey {
        self.blind(binding, sender, b"whispurr/v1 resonance tag")
    }

    fn blind(&self, binding: &[u8; 32], sender: &NodeKey, label: &[u8]) -> BlindedKey {
        BlindedKey(expand(binding, &self.0, &[label, &sender.0]))
    }
}

impl fmt::Debug for ResonanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResonanceKey(<redacted>)")
    }
}

/// An intent's key blinded for one link: what ANNOUNCE lists and RESONANCE carries. It means
/// something only to a node attuned to the same intent, and only on that link.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct BlindedKey(pub [u8; 32]);

/// The secret key that encrypts RESONANCE payloads for one intent and authenticates their
/// fields. Zeroized on drop; printed redacted.
#[derive(Clone)]
pub struct ResonanceContentKey([u8; 32]);

impl ResonanceContentKey {
    pub(crate) fn from_secret(secret: &IntentSecret) -> Self {
        ResonanceContentKey(expand(
            KEYS_SALT,
            secret.as_bytes(),
            &[b"resonance content key"],
        ))
    }

    /// The key bytes, for the AEAD.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for ResonanceContentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ResonanceContentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResonanceContentKey(<redacted>)")
    }
}

/// The key an intent's rendezvous namespaces derive from, one per relay. Zeroized on drop;
/// printed redacted.
#[derive(Clone)]
pub struct RendezvousKey([u8; 32]);

impl RendezvousKey {
    pub(crate) fn from_secret(secret: &IntentSecret) -> Self {
        RendezvousKey(expand(KEYS_SALT, secret.as_bytes(), &[b"rendezvous key"]))
    }

    /// The namespace the intent's nodes JOIN and LOOKUP at the relay whose node key is `relay`.
    pub fn namespace(&self, relay: &NodeKey) -> [u8; 32] {
        expand(&relay.0, &self.0, &[b"whispurr/v1 rendezvous"])
    }
}

impl Drop for RendezvousKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for RendezvousKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RendezvousKey(<redacted>)")
    }
}

/// The rendezvous namespace every node joins at its relays: the "everyone" namespace. It is a
/// public constant (no intent behind it); like any namespace, a relay lists its members only to
/// clients that joined it, so whoever looks is also seen.
pub fn global_namespace() -> [u8; 32] {
    expand(GLOBAL_SALT, b"global", &[b"global namespace"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> IntentSecret {
        IntentSecret::from_bytes([b; 32])
    }

    #[test]
    fn derivations_are_separated() {
        let s = secret(1);
        let key = ResonanceKey::from_secret(&s);
        let content = ResonanceContentKey::from_secret(&s);
        let rendezvous = RendezvousKey::from_secret(&s);
        assert_ne!(&key.0, content.as_bytes());
        assert_ne!(key.0, rendezvous.0);
        assert_ne!(content.0, rendezvous.0);
        assert_ne!(key, ResonanceKey::from_secret(&secret(2)));
        for text in [
            alloc::format!("{key:?}"),
            alloc::format!("{content:?}"),
            alloc::format!("{rendezvous:?}"),
        ] {
            assert!(text.contains("redacted"), "{text}");
        }
    }

    #[test]
    fn blinded_values_differ_per_link_sender_and_use() {
        let key = ResonanceKey::from_secret(&secret(1));
        let (a, b) = (NodeKey([0xa; 32]), NodeKey([0xb; 32]));
        let (h1, h2) = ([1u8; 32], [2u8; 32]);
        let on_1 = key.announcement(&h1, &a);
        assert_eq!(on_1, key.announcement(&h1, &a), "deterministic");
        assert_ne!(on_1, key.announcement(&h2, &a), "per link");
        assert_ne!(on_1, key.announcement(&h1, &b), "per sender");
        assert_ne!(on_1, key.tag(&h1, &a), "announcement is not tag");
        assert_ne!(on_1.0, key.0);
        let rendezvous = RendezvousKey::from_secret(&secret(1));
        let at_1 = rendezvous.namespace(&a);
        assert_ne!(at_1, rendezvous.namespace(&b), "per relay");
        assert_ne!(at_1, on_1.0);
        assert_ne!(at_1, global_namespace());
    }
}
