//! Property tests: every message type and node IDs survive encode → decode unchanged, with and
//! without padding; arbitrary bytes never panic the decoder.

mod common;

use proptest::prelude::*;
use whispurr_core::{
    NodeId, NodeKey,
    derive::{BlindedKey, WhisperTag},
    wire::{
        Ack, Announce, Broadcast, Contact, ContactList, ErrorMsg, Extension, Flags, Found, Frame,
        Goodbye, Hello, IHAVE_ENTRY_LEN, Join, Limits, List, Lookup, Membership, Message,
        MessageId, Peers, Ping, Pong, Relay, RelayStage, Resonance, Route, Signal, Signature, Tree,
        Unreachable, WebRtcSignal, Whisper, encode_announcements,
    },
};

/// Owned inputs from which a borrowed [`Message`] of any type is built.
#[derive(Debug, Clone)]
struct Spec {
    kind: u8,
    route: Route,
    key: [u8; 32],
    created: u64,
    sig: [u8; 64],
    some: bool,
    num16: u16,
    num64: u64,
    num64b: u64,
    strength: f32,
    text: String,
    payload: Vec<u8>,
    contacts: Vec<u8>,
}

impl Spec {
    fn message(&self) -> Message<'_> {
        let node = NodeId::from_parts(NodeKey(self.key), self.created);
        let ext = Extension {
            route: self.route,
            target: self.some.then_some(NodeKey(self.key)),
            payload: &self.payload,
        };
        let keys = &self.payload[..self.payload.len() / 32 * 32];
        let ids = &self.payload[..self.payload.len() / 40 * 40];
        let keys = &keys[..keys.len().min(64 * 32)];
        let ids = &ids[..ids.len().min(64 * 40)];
        let ihaves = &self.payload[..self.payload.len() / IHAVE_ENTRY_LEN * IHAVE_ENTRY_LEN];
        let ihaves = &ihaves[..ihaves.len().min(64 * IHAVE_ENTRY_LEN)];
        match self.kind % 23 {
            0 => Message::Hello(Hello {
                capabilities: self.num64,
                max_frame_size: self.num64b as u32,
            }),
            1 => Message::Goodbye(Goodbye {
                code: self.num16,
                reason: &self.text,
            }),
            2 => Message::Error(ErrorMsg {
                code: self.num16,
                about: self.some.then_some(self.route.id),
                detail: &self.text,
            }),
            3 => Message::Ping(Ping {
                id: self.num64,
                sent_at: self.num64b,
            }),
            4 => Message::Pong(Pong {
                id: self.num64,
                sent_at: self.num64b,
            }),
            5 => Message::Whisper(Whisper {
                route: self.route,
                target: NodeKey(self.key),
                tag: self.some.then(|| WhisperTag::from_category(&self.text)),
                payload: &self.payload,
            }),
            6 => Message::Broadcast(Broadcast {
                route: self.route,
                origin: self.some.then_some(node),
                payload: &self.payload,
                signature: self.some.then_some(Signature(self.sig)),
            }),
            7 => Message::Resonance(Resonance {
                route: self.route,
                tag: BlindedKey(self.key),
                strength: self.strength,
                payload: &self.payload,
            }),
            8 => Message::Signal(Signal {
                target: NodeKey(self.key),
                origin: node,
                signal: match self.num16 % 4 {
                    0 => WebRtcSignal::Offer { sdp: &self.text },
                    1 => WebRtcSignal::Answer { sdp: &self.text },
                    2 => WebRtcSignal::Candidate {
                        candidate: &self.text,
                        sdp_mid: self.text.split_whitespace().next(),
                        sdp_mline_index: self.some.then_some(self.num16),
                        username_fragment: self.some.then_some(self.text.as_str()),
                    },
                    _ => WebRtcSignal::EndOfCandidates,
                },
            }),
            9 => Message::FileSync(ext),
            10 => Message::MiningSignal(ext),
            11 => Message::Dreamspace(ext),
            12 => Message::Custom(0x80 | self.num16 as u8, ext),
            13 => Message::Ack(Ack { id: self.route.id }),
            14 => Message::Announce(Announce {
                blinded: List::from_raw(keys),
            }),
            15 => Message::Peers(Peers {
                peers: List::from_raw(ids),
            }),
            16 => Message::Relay(Relay {
                peer: NodeKey(self.key),
                stage: [
                    RelayStage::Handshake,
                    RelayStage::Record,
                    RelayStage::Sealed,
                ][usize::from(self.num16 % 3)],
                payload: &self.payload,
            }),
            17 => Message::Join(Join {
                namespace: self.key,
                leave: self.some,
            }),
            18 => Message::Lookup(Lookup {
                namespace: self.key,
            }),
            19 => Message::Found(Found {
                namespace: self.key,
                peers: List::from_raw(ids),
            }),
            20 => Message::Unreachable(Unreachable {
                peer: NodeKey(self.key),
            }),
            21 => Message::Tree(match self.num16 % 4 {
                0 => Tree::IHave {
                    entries: List::from_raw(ihaves),
                },
                1 => Tree::Graft { id: self.route.id },
                2 => Tree::Prune,
                _ => Tree::Shortcut,
            }),
            _ => Message::Membership(match self.num16 % 8 {
                0 => Membership::Join { addr: &self.text },
                1 => Membership::ForwardJoin {
                    node,
                    addr: &self.text,
                    ttl: self.num16 as u8,
                },
                2 => Membership::Neighbour {
                    addr: &self.text,
                    high_priority: self.some,
                },
                3 => Membership::NeighbourReply {
                    accepted: self.some,
                },
                4 => Membership::Disconnect,
                6 => Membership::Probe,
                5 => Membership::Shuffle {
                    contacts: ContactList::from_raw(&self.contacts),
                },
                _ => Membership::ShuffleReply {
                    contacts: ContactList::from_raw(&self.contacts),
                },
            }),
        }
    }
}

fn route() -> impl Strategy<Value = Route> {
    (
        any::<[u8; 16]>(),
        any::<u64>(),
        any::<u32>(),
        0u8..=16,
        0u8..=16,
    )
        .prop_map(|(id, timestamp, ttl_ms, a, b)| Route {
            id: MessageId(id),
            timestamp,
            ttl_ms,
            hops: a.min(b),
            hop_limit: a.max(b),
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (any::<u8>(), route(), any::<[u8; 32]>(), any::<u64>()),
        (
            prop::array::uniform32(any::<u16>()),
            any::<bool>(),
            any::<u16>(),
        ),
        (any::<u64>(), any::<u64>(), 0.0f32..=1.0),
        ("[a-zé ]{0,64}", prop::collection::vec(any::<u8>(), 0..2048)),
    )
        .prop_map(
            |(
                (kind, route, key, created),
                (sig, some, num16),
                (num64, num64b, strength),
                (text, payload),
            )| {
                let mut sig64 = [0u8; 64];
                for (i, w) in sig.iter().enumerate() {
                    sig64[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
                }
                let mut contacts = Vec::new();
                let node = NodeId::from_parts(NodeKey(key), created);
                ContactList::encode(
                    (0..(num16 % 5)).map(|_| Contact { node, addr: &text }),
                    &mut contacts,
                );
                Spec {
                    contacts,
                    kind,
                    route,
                    key,
                    created,
                    sig: sig64,
                    some,
                    num16,
                    num64,
                    num64b,
                    strength,
                    text,
                    payload,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_round_trips(spec in spec(), pad in 0usize..512) {
        let frame = Frame::new(spec.message());
        let mut buf = vec![0u8; 4096];
        let n = frame.encode(&mut buf).unwrap();
        prop_assert_eq!(frame.encoded_len(), n);
        let back = Frame::decode(&buf[..n], &Limits::default()).unwrap();
        prop_assert_eq!(back, frame);

        let total = n + pad;
        let m = frame.encode_padded(&mut buf, total).unwrap();
        prop_assert_eq!(m, total);
        let back = Frame::decode(&buf[..m], &Limits::default()).unwrap();
        prop_assert_eq!(back.message, frame.message);
        prop_assert_eq!(back.flags.contains(Flags::PADDED), pad > 0);
    }

    #[test]
    fn every_strict_prefix_is_rejected(spec in spec()) {
        let frame = Frame::new(spec.message());
        let mut buf = vec![0u8; 4096];
        let n = frame.encode(&mut buf).unwrap();
        for cut in 0..n {
            prop_assert!(Frame::decode(&buf[..cut], &Limits::default()).is_err(), "prefix {cut}/{n} accepted");
        }
    }

    #[test]
    fn ihave_entries_round_trip(entries in prop::collection::vec((any::<[u8; 16]>(), any::<u8>()), 0..=64)) {
        let entries: Vec<(MessageId, u8)> =
            entries.into_iter().map(|(id, hops)| (MessageId(id), hops)).collect();
        let mut raw = vec![0u8; entries.len() * IHAVE_ENTRY_LEN];
        prop_assert_eq!(encode_announcements(&entries, &mut raw), raw.len());
        let m = Message::Tree(Tree::IHave { entries: List::from_raw(&raw) });
        let mut buf = vec![0u8; 2048];
        let n = Frame::new(m).encode(&mut buf).unwrap();
        let back = Frame::decode(&buf[..n], &Limits::default()).unwrap();
        let Message::Tree(Tree::IHave { entries: list }) = back.message else {
            panic!("{back:?}");
        };
        prop_assert_eq!(list.announcements().collect::<Vec<_>>(), entries);
    }

    #[test]
    fn node_ids_round_trip_through_text_and_postcard(key in any::<[u8; 32]>(), created in any::<u64>()) {
        let id = NodeId::from_parts(NodeKey(key), created);
        let text = id.to_string();
        prop_assert_eq!(text.len(), 65 + format!("{created:x}").len());
        match text.parse::<NodeId>() {
            Ok(back) => prop_assert_eq!(back, id),
            // Only an x-coordinate with no curve point may fail, and then the ID says so.
            Err(e) => {
                prop_assert_eq!(e, whispurr_core::identity::NodeIdError::NotOnCurve);
                prop_assert!(id.validate().is_err());
            }
        }
        let bytes = postcard::to_allocvec(&id).unwrap();
        prop_assert_eq!(postcard::from_bytes::<NodeId>(&bytes).unwrap(), id);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        whispurr_core::fuzz::frame_decode(&data);
    }

    #[test]
    fn mutated_frames_never_panic(spec in spec(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let frame = Frame::new(spec.message());
        let mut buf = vec![0u8; 4096];
        let n = frame.encode(&mut buf).unwrap();
        let mut bytes = buf[..n].to_vec();
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        whispurr_core::fuzz::frame_decode(&bytes);
    }
}

/// A signal of variant `kind % 4` built from arbitrary text.
fn webrtc_signal<'a>(
    kind: u8,
    text: &'a str,
    mid: &'a Option<String>,
    index: Option<u16>,
    ufrag: &'a Option<String>,
) -> WebRtcSignal<&'a str> {
    match kind % 4 {
        0 => WebRtcSignal::Offer { sdp: text },
        1 => WebRtcSignal::Answer { sdp: text },
        2 => WebRtcSignal::Candidate {
            candidate: text,
            sdp_mid: mid.as_deref(),
            sdp_mline_index: index,
            username_fragment: ufrag.as_deref(),
        },
        _ => WebRtcSignal::EndOfCandidates,
    }
}

proptest! {
    #[test]
    fn every_webrtc_signal_round_trips(
        kind in any::<u8>(),
        text in "\\PC{0,300}",
        mid in proptest::option::of("\\PC{0,8}"),
        index in any::<Option<u16>>(),
        ufrag in proptest::option::of("[a-zA-Z0-9+/]{4,32}"),
    ) {
        let sent = webrtc_signal(kind, &text, &mid, index, &ufrag);
        let frame = Frame::new(Message::Signal(Signal {
            target: NodeKey([7; 32]),
            origin: NodeId::from_parts(NodeKey([8; 32]), 1_764_000_000),
            signal: sent,
        }));
        let mut buf = vec![0u8; 4096];
        let n = frame.encode(&mut buf).unwrap();
        let back = Frame::decode(&buf[..n], &Limits::default()).unwrap();
        prop_assert_eq!(back, frame);
        let Message::Signal(got) = back.message else {
            panic!("decoded as another type: {back:?}");
        };
        // Owned and back, as the engine hands it to the adapter and the adapter to the engine.
        let owned: WebRtcSignal = got.signal.into();
        prop_assert_eq!(owned.as_deref(), sent);
        prop_assert_eq!(owned.text_len(), sent.text_len());
    }
}

#[test]
fn each_webrtc_signal_variant_round_trips() {
    use common::samples::{CANDIDATE, SDP_OFFER};
    let signals = [
        WebRtcSignal::Offer { sdp: SDP_OFFER },
        WebRtcSignal::Answer { sdp: SDP_OFFER },
        WebRtcSignal::Offer { sdp: "" },
        WebRtcSignal::Candidate {
            candidate: CANDIDATE,
            sdp_mid: Some("0"),
            sdp_mline_index: Some(0),
            username_fragment: Some("Qh7r"),
        },
        WebRtcSignal::Candidate {
            candidate: CANDIDATE,
            sdp_mid: None,
            sdp_mline_index: Some(u16::MAX),
            username_fragment: None,
        },
        WebRtcSignal::Candidate {
            candidate: "",
            sdp_mid: Some("données"),
            sdp_mline_index: None,
            username_fragment: Some(""),
        },
        WebRtcSignal::EndOfCandidates,
    ];
    for signal in signals {
        let message = Message::Signal(Signal {
            target: NodeKey([7; 32]),
            origin: common::samples::node_id(),
            signal,
        });
        let mut buf = vec![0u8; 4096];
        let n = Frame::new(message).encode(&mut buf).unwrap();
        let back = Frame::decode(&buf[..n], &Limits::default()).unwrap();
        assert_eq!(back.message, message);
        // Padded too.
        let m = Frame::new(message).encode_padded(&mut buf, n + 9).unwrap();
        let back = Frame::decode(&buf[..m], &Limits::default()).unwrap();
        assert_eq!(back.message, message);
    }
}

#[test]
fn generated_identities_round_trip() {
    use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for i in 0..64 {
        let me = whispurr_core::Identity::generate(
            &mut rng,
            whispurr_core::Timestamp::from_secs(1_764_000_000 + i * 977),
        );
        let text = me.node_id().to_string();
        assert_eq!(text.parse::<NodeId>().unwrap(), *me.node_id());
        assert!(me.node_id().validate().is_ok());
    }
}

#[test]
fn samples_cover_every_type() {
    let payload = [1u8; 256];
    let kinds: std::collections::BTreeSet<_> = common::samples::all(&payload)
        .iter()
        .map(|(_, m)| m.kind().code())
        .collect();
    assert_eq!(kinds.len(), 23);
}
