//! What crossed the sockets, per kind of transport: counted by the link tasks, read by
//! [`Node::stats`](crate::Node::stats).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The kinds of transport a link runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A WebSocket to a relay.
    Relay,
    /// A direct WebSocket between two nodes.
    WebSocket,
    /// A WebRTC data channel between two nodes.
    WebRtc,
}

impl Transport {
    fn index(self) -> usize {
        match self {
            Transport::Relay => 0,
            Transport::WebSocket => 1,
            Transport::WebRtc => 2,
        }
    }
}

/// Records and bytes on one kind of transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireCount {
    /// Records written to sockets.
    pub records_sent: u64,
    /// Bytes of those records (transport framing not included).
    pub bytes_sent: u64,
    /// Records read from sockets.
    pub records_received: u64,
    /// Bytes of those records.
    pub bytes_received: u64,
}

/// Counters shared by a node's link tasks.
#[derive(Debug, Default)]
pub(crate) struct WireCounters([[AtomicU64; 4]; 3], AtomicU64);

impl WireCounters {
    pub(crate) fn webrtc_failed(&self) {
        self.1.fetch_add(1, Relaxed);
    }

    pub(crate) fn webrtc_failures(&self) -> u64 {
        self.1.load(Relaxed)
    }

    pub(crate) fn sent(&self, t: Transport, bytes: usize) {
        let c = &self.0[t.index()];
        c[0].fetch_add(1, Relaxed);
        c[1].fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn received(&self, t: Transport, bytes: usize) {
        let c = &self.0[t.index()];
        c[2].fetch_add(1, Relaxed);
        c[3].fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn read(&self, t: Transport) -> WireCount {
        let c = &self.0[t.index()];
        WireCount {
            records_sent: c[0].load(Relaxed),
            bytes_sent: c[1].load(Relaxed),
            records_received: c[2].load(Relaxed),
            bytes_received: c[3].load(Relaxed),
        }
    }
}

/// A node's statistics: the engine's counters and what crossed each kind of transport.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStats {
    /// The engine's counters.
    pub engine: whispurr_core::engine::Stats,
    /// WebSocket links to relays.
    pub relay: WireCount,
    /// Direct WebSocket links.
    pub websocket: WireCount,
    /// WebRTC data channels.
    pub webrtc: WireCount,
    /// WebRTC attempts whose data channel never opened (traffic stayed on the relay).
    pub webrtc_failed: u64,
}
