//! What the simulator measures: per-broadcast delivery (reliability, redundancy, last delivery
//! hop, duration) and the overlay's shape (mean BFS eccentricity and degree).

use std::{
    collections::{BTreeMap, VecDeque},
    vec,
    vec::Vec,
};

use crate::{Timestamp, wire::MessageId};

/// Delivery of one broadcast.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report {
    /// Living nodes other than the sender that delivered it.
    pub delivered: usize,
    /// Living nodes other than the sender.
    pub expected: usize,
    /// `delivered / expected`.
    pub reliability: f64,
    /// Payload copies received by all nodes since it was sent (all traffic in that time).
    pub copies: u64,
    /// Largest hop count at delivery.
    pub ldh: u8,
    /// Milliseconds from the send to the last delivery.
    pub dur_ms: u64,
}

impl Report {
    /// Relative message redundancy: copies per delivery minus one.
    pub fn rmr(&self) -> f64 {
        if self.delivered == 0 {
            0.0
        } else {
            self.copies as f64 / self.delivered as f64 - 1.0
        }
    }
}

#[derive(Debug)]
struct Tracked {
    from: usize,
    sent: Timestamp,
    copies_before: u64,
    deliveries: BTreeMap<usize, (Timestamp, u8)>,
}

/// Follows broadcasts sent through the simulator.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    messages: BTreeMap<MessageId, Tracked>,
}

impl Tracker {
    pub(crate) fn sent(&mut self, id: MessageId, from: usize, at: Timestamp, copies_before: u64) {
        self.messages.insert(
            id,
            Tracked {
                from,
                sent: at,
                copies_before,
                deliveries: BTreeMap::new(),
            },
        );
    }

    pub(crate) fn delivered(&mut self, id: MessageId, node: usize, at: Timestamp, hops: u8) {
        if let Some(t) = self.messages.get_mut(&id)
            && node != t.from
        {
            t.deliveries.entry(node).or_insert((at, hops));
        }
    }

    pub(crate) fn report(
        &self,
        id: &MessageId,
        alive: usize,
        living: &[bool],
        copies_now: u64,
    ) -> Option<Report> {
        let t = self.messages.get(id)?;
        let expected = alive - usize::from(living[t.from]);
        let delivered = t.deliveries.keys().filter(|n| living[**n]).count();
        let ldh = t.deliveries.values().map(|(_, h)| *h).max().unwrap_or(0);
        let last = t
            .deliveries
            .values()
            .map(|(at, _)| *at)
            .max()
            .unwrap_or(t.sent);
        Some(Report {
            delivered,
            expected,
            reliability: if expected == 0 {
                1.0
            } else {
                delivered as f64 / expected as f64
            },
            copies: copies_now - t.copies_before,
            ldh,
            dur_ms: last.as_millis() - t.sent.as_millis(),
        })
    }
}

/// The overlay's shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Overlay {
    /// Mean BFS eccentricity over living nodes (within their component).
    pub ecc: f64,
    /// Mean degree over living nodes.
    pub deg: f64,
    /// Whether the living nodes form one connected component.
    pub connected: bool,
}

/// Eccentricity and degree of an undirected graph given as adjacency lists (edges are taken
/// in both directions).
pub(crate) fn overlay(adjacency: &[Vec<usize>], alive: &[bool]) -> Overlay {
    let n = adjacency.len();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, list) in adjacency.iter().enumerate() {
        for &j in list {
            if !adj[i].contains(&j) {
                adj[i].push(j);
            }
            if !adj[j].contains(&i) {
                adj[j].push(i);
            }
        }
    }
    let living: Vec<usize> = (0..n).filter(|&i| alive[i]).collect();
    if living.is_empty() {
        return Overlay {
            ecc: 0.0,
            deg: 0.0,
            connected: true,
        };
    }
    let mut ecc_sum = 0usize;
    let mut connected = true;
    let mut dist = vec![usize::MAX; n];
    for &s in &living {
        dist.iter_mut().for_each(|d| *d = usize::MAX);
        dist[s] = 0;
        let mut q = VecDeque::from([s]);
        let (mut far, mut seen) = (0, 1);
        while let Some(u) = q.pop_front() {
            for &v in &adj[u] {
                if alive[v] && dist[v] == usize::MAX {
                    dist[v] = dist[u] + 1;
                    far = far.max(dist[v]);
                    seen += 1;
                    q.push_back(v);
                }
            }
        }
        connected &= seen == living.len();
        ecc_sum += far;
    }
    let deg_sum: usize = living
        .iter()
        .map(|&i| adj[i].iter().filter(|&&j| alive[j]).count())
        .sum();
    Overlay {
        ecc: ecc_sum as f64 / living.len() as f64,
        deg: deg_sum as f64 / living.len() as f64,
        connected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eccentricity_and_degree_of_a_path() {
        // 0 - 1 - 2 - 3: eccentricities 3, 2, 2, 3.
        let adj = vec![vec![1], vec![2], vec![3], vec![]];
        let o = overlay(&adj, &[true; 4]);
        assert_eq!(o.ecc, 2.5);
        assert_eq!(o.deg, 1.5);
        assert!(o.connected);
        let o = overlay(&adj, &[true, true, false, true]);
        assert!(!o.connected);
    }
}
