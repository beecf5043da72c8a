//! Rendezvous: who is in which namespace. A namespace is any 32-byte name (an intent's
//! namespace at this relay, or the global one); its members are the registered clients that joined it. Nothing outlives a client: its
//! memberships go when it does, and an empty namespace is forgotten.

use alloc::{collections::BTreeMap, vec, vec::Vec};

use rand_core::CryptoRng;

use super::ClientId;
use crate::{NodeId, wire::encode_node_ids};

/// Why a JOIN was refused by the namespace table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum JoinError {
    /// The relay already tracks its maximum number of namespaces.
    TooManyNamespaces,
    /// The namespace already has its maximum number of members.
    NamespaceFull,
}

/// Namespace → members, both ordered so every listing is reproducible.
#[derive(Debug, Default)]
pub(super) struct Namespaces {
    map: BTreeMap<[u8; 32], BTreeMap<ClientId, NodeId>>,
}

impl Namespaces {
    /// Adds `client` (as `node`) to `namespace`. Joining twice is not an error.
    pub(super) fn join(
        &mut self,
        namespace: [u8; 32],
        client: ClientId,
        node: NodeId,
        max_namespaces: usize,
        max_members: usize,
    ) -> Result<(), JoinError> {
        match self.map.get_mut(&namespace) {
            Some(members) => {
                if !members.contains_key(&client) && members.len() >= max_members {
                    return Err(JoinError::NamespaceFull);
                }
                members.insert(client, node);
            }
            None => {
                if self.map.len() >= max_namespaces {
                    return Err(JoinError::TooManyNamespaces);
                }
                if max_members == 0 {
                    return Err(JoinError::NamespaceFull);
                }
                self.map.insert(namespace, BTreeMap::from([(client, node)]));
            }
        }
        Ok(())
    }

    /// Removes `client` from `namespace`, forgetting the namespace once it is empty.
    pub(super) fn leave(&mut self, namespace: &[u8; 32], client: ClientId) {
        if let Some(members) = self.map.get_mut(namespace) {
            members.remove(&client);
            if members.is_empty() {
                self.map.remove(namespace);
            }
        }
    }

    /// Namespaces with at least one member.
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Up to `cap` members of `namespace` other than `asker`, encoded as FOUND list entries.
    ///
    /// When there are more candidates than `cap`, the listing starts at a random member and
    /// wraps around, so repeated lookups reveal different members instead of always the oldest.
    pub(super) fn found<R: CryptoRng + ?Sized>(
        &self,
        namespace: &[u8; 32],
        asker: ClientId,
        cap: usize,
        rng: &mut R,
    ) -> Vec<u8> {
        let Some(members) = self.map.get(namespace) else {
            return Vec::new();
        };
        let others = members.len() - usize::from(members.contains_key(&asker));
        let take = others.min(cap);
        if take == 0 {
            return Vec::new();
        }
        let start = if others > take {
            usize::try_from(rng.next_u64() % others as u64).unwrap_or(0)
        } else {
            0
        };
        let ids = members
            .iter()
            .filter(|(c, _)| **c != asker)
            .map(|(_, id)| id)
            .cycle()
            .skip(start)
            .take(take);
        let mut out = vec![0u8; take * 40];
        let n = encode_node_ids(ids, &mut out);
        out.truncate(n);
        out
    }
}
