//! One sample message of every type with realistic field values (a node ID from a fixed seed, a
//! current-looking timestamp, a 10-minute TTL). Shared by tests and benches.
#![allow(dead_code)]

use whispurr_core::{
    NodeId, NodeKey,
    derive::{BlindedKey, WhisperTag},
    wire::{
        Ack, Announce, Broadcast, ErrorMsg, Extension, Found, Goodbye, Hello, Join, List, Lookup,
        Membership, Message, MessageId, Peers, Ping, Pong, Relay, RelayStage, Resonance, Route,
        Signal, Signature, Tree, Unreachable, WebRtcSignal, Whisper,
    },
};

/// Three 32-byte keys, as an ANNOUNCE list.
pub const KEYS: [u8; 96] = [0x21; 96];
/// Two node IDs, as a PEERS / FOUND list.
pub const IDS: [u8; 80] = [0x43; 80];
/// Three announced broadcasts (16-byte id, hop count), as a TREE IHAVE list.
pub const IHAVES: [u8; 51] = {
    let mut raw = [0x5a; 51];
    raw[16] = 3;
    raw[33] = 4;
    raw[50] = 4;
    raw
};

/// A data-channel-only SDP offer, as a peer connection writes one (trickle ICE: no candidates).
pub const SDP_OFFER: &str = "v=0\r\n\
o=- 7031622519424813025 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Qh7r\r\n\
a=ice-pwd:c4Lm0pXbW2vYt9kN8sRfJd3e\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 5A:0C:91:7E:33:D2:48:B6:1F:AA:06:C7:9D:52:E4:3B:70:18:CF:65:2E:B9:04:D1:8A:F3:47:6C:95:20:BE:13\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sctp-port:5000\r\n\
a=max-message-size:262144\r\n";

/// A trickled host candidate for [`SDP_OFFER`]'s media section.
pub const CANDIDATE: &str = "candidate:842163049 1 udp 2122260223 192.0.2.17 52814 typ host generation 0 ufrag Qh7r network-id 1";

/// A fixed "now" for samples: 2025-11-24, in ms.
pub const NOW_MS: u64 = 1_764_000_000_000;

/// A plausible node ID (not necessarily on the curve; the codec does not care).
pub fn node_id() -> NodeId {
    NodeId::from_parts(NodeKey([0x3c; 32]), NOW_MS / 1000 / 3600 * 3600)
}

/// A route as an origin would set it.
pub fn route() -> Route {
    Route {
        id: MessageId([0x5a; 16]),
        timestamp: NOW_MS,
        ttl_ms: 600_000,
        hops: 1,
        hop_limit: 8,
    }
}

fn ext(payload: &[u8]) -> Extension<'_> {
    Extension {
        route: route(),
        target: Some(NodeKey([0x11; 32])),
        payload,
    }
}

/// `(name, message)` for every message type, with `payload` where the type has one (SIGNAL
/// twice: an offer and a candidate).
pub fn all(payload: &[u8]) -> Vec<(&'static str, Message<'_>)> {
    vec![
        (
            "hello",
            Message::Hello(Hello {
                capabilities: 0b1011,
                max_frame_size: 65_536,
            }),
        ),
        (
            "goodbye",
            Message::Goodbye(Goodbye {
                code: 1,
                reason: "shutting down",
            }),
        ),
        (
            "error",
            Message::Error(ErrorMsg {
                code: 404,
                about: Some(MessageId([7; 16])),
                detail: "unknown target",
            }),
        ),
        (
            "ping",
            Message::Ping(Ping {
                id: 42,
                sent_at: NOW_MS,
            }),
        ),
        (
            "pong",
            Message::Pong(Pong {
                id: 42,
                sent_at: NOW_MS,
            }),
        ),
        (
            "whisper",
            Message::Whisper(Whisper {
                route: route(),
                target: NodeKey([0x11; 32]),
                tag: Some(WhisperTag::from_category("chat")),
                payload,
            }),
        ),
        (
            "broadcast_anonymous",
            Message::Broadcast(Broadcast {
                route: route(),
                origin: None,
                payload,
                signature: None,
            }),
        ),
        (
            "broadcast_signed",
            Message::Broadcast(Broadcast {
                route: route(),
                origin: Some(node_id()),
                payload,
                signature: Some(Signature([0x77; 64])),
            }),
        ),
        (
            "resonance",
            Message::Resonance(Resonance {
                route: route(),
                tag: BlindedKey([0x5a; 32]),
                strength: 0.75,
                payload,
            }),
        ),
        (
            "signal",
            Message::Signal(Signal {
                target: NodeKey([0x11; 32]),
                origin: node_id(),
                signal: WebRtcSignal::Offer { sdp: SDP_OFFER },
            }),
        ),
        (
            "signal_candidate",
            Message::Signal(Signal {
                target: NodeKey([0x11; 32]),
                origin: node_id(),
                signal: WebRtcSignal::Candidate {
                    candidate: CANDIDATE,
                    sdp_mid: Some("0"),
                    sdp_mline_index: Some(0),
                    username_fragment: Some("Qh7r"),
                },
            }),
        ),
        (
            "ack",
            Message::Ack(Ack {
                id: MessageId([9; 16]),
            }),
        ),
        (
            "announce",
            Message::Announce(Announce {
                blinded: List::from_raw(&KEYS),
            }),
        ),
        (
            "peers",
            Message::Peers(Peers {
                peers: List::from_raw(&IDS),
            }),
        ),
        (
            "relay",
            Message::Relay(Relay {
                peer: NodeKey([0x11; 32]),
                stage: RelayStage::Record,
                payload,
            }),
        ),
        (
            "join",
            Message::Join(Join {
                namespace: [0x31; 32],
                leave: false,
            }),
        ),
        (
            "lookup",
            Message::Lookup(Lookup {
                namespace: [0x31; 32],
            }),
        ),
        (
            "found",
            Message::Found(Found {
                namespace: [0x31; 32],
                peers: List::from_raw(&IDS),
            }),
        ),
        (
            "unreachable",
            Message::Unreachable(Unreachable {
                peer: NodeKey([0x11; 32]),
            }),
        ),
        (
            "membership",
            Message::Membership(Membership::ForwardJoin {
                node: node_id(),
                addr: "wss://198.51.100.7:9443/whispurr",
                ttl: 6,
            }),
        ),
        (
            "tree",
            Message::Tree(Tree::IHave {
                entries: List::from_raw(&IHAVES),
            }),
        ),
        ("file_sync", Message::FileSync(ext(payload))),
        ("mining_signal", Message::MiningSignal(ext(payload))),
        ("dreamspace", Message::Dreamspace(ext(payload))),
        ("custom", Message::Custom(0x80, ext(payload))),
    ]
}
