//! The frame budget: the one place that says how large a record, a frame and each kind of
//! application payload may be, so that whatever the engine accepts fits on every path it may
//! take — a transport link, an end-to-end tunnel through a relay (a sealed record inside a RELAY
//! frame), a whisper sealed to its recipient through a relay — with padding on or off.
//!
//! Sizes nest like this (Noise caps every message, handshake or transport, at 65,535 bytes):
//!
//! ```text
//! link record   ≤ min(max_frame_size + 16, 65,535)      what a transport link carries
//! link frame    = link record − 16
//! tunnel record ≤ link frame − RELAY framing             a RELAY frame must fit a link frame
//! tunnel frame  = tunnel record − 16
//! sealed frame  ≤ link frame − RELAY framing − 16 − 96   a whisper sealed through a relay
//! payload(kind) = smallest frame of the paths it can take − its fields (worst case)
//! ```
//!
//! Padding only ever rounds a frame up to a bucket that still fits its link (see
//! [`pad_target`](super::obfuscation::pad_target)), so a payload within its budget is never
//! refused once sealed.

use crate::{
    NodeId, NodeKey,
    crypto::{MAX_MESSAGE_LEN, TAG_LEN, seal::SEAL_OVERHEAD},
    derive::{BlindedKey, WhisperTag},
    wire::{
        Broadcast, Extension, Frame, IHAVE_ENTRY_LEN, Limits, List, Message, MessageId, Resonance,
        Route, Signature, Tree, Whisper,
    },
};

/// The kinds of message that carry an application payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadKind {
    /// [`Engine::whisper`](super::Engine::whisper): over a session or sealed through a relay.
    Whisper,
    /// [`Engine::broadcast`](super::Engine::broadcast), signed or anonymous.
    Broadcast,
    /// [`Engine::resonate`](super::Engine::resonate) (the payload is sealed under the intent).
    Resonance,
    /// [`Engine::send_extension`](super::Engine::send_extension) and extensions' own sends.
    Extension,
}

/// Bytes of a RELAY frame around a payload of `inner` bytes: header (5), peer key (32), stage
/// (1) and the payload's varint length prefix.
pub(crate) fn relay_frame_len(inner: usize) -> usize {
    5 + 32 + 1 + varint_len(inner) + inner
}

/// Length of a postcard varint for `n`.
fn varint_len(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        _ => 4,
    }
}

/// The largest `inner` with `relay_frame_len(inner) <= frame`.
pub(crate) fn relay_room(frame: usize) -> usize {
    let mut inner = frame.saturating_sub(5 + 32 + 1 + 3);
    while relay_frame_len(inner + 1) <= frame {
        inner += 1;
    }
    inner
}

/// The budget of one engine, derived from its limits once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Largest record on a transport link.
    pub link_record: usize,
    /// Largest record a tunnel may send (its RELAY frame fits a link frame).
    pub tunnel_record: usize,
    /// Largest frame sealed (Noise X) into a RELAY frame.
    pub sealed_frame: usize,
    /// Most broadcasts announced in one IHAVE: within `Limits::max_list_len`, and few enough
    /// for the TREE frame to fit every path (at least one).
    pub ihave_batch: usize,
    whisper: usize,
    broadcast: usize,
    resonance: usize,
    extension: usize,
}

impl Budget {
    pub fn new(limits: &Limits) -> Self {
        let link_record = (limits.max_frame_size + TAG_LEN).min(MAX_MESSAGE_LEN);
        let link_frame = link_record - TAG_LEN;
        let tunnel_record = relay_room(link_frame);
        let tunnel_frame = tunnel_record - TAG_LEN;
        // A sealed whisper's RELAY payload: 16-byte id, then the Noise X message.
        let sealed_frame = relay_room(link_frame)
            .saturating_sub(16 + SEAL_OVERHEAD)
            .min(MAX_MESSAGE_LEN - SEAL_OVERHEAD);
        // Fields at their largest: varints at their widest, optional fields present.
        let route = Route {
            id: MessageId([0xff; 16]),
            timestamp: u64::MAX,
            ttl_ms: u32::MAX,
            hops: u8::MAX,
            hop_limit: u8::MAX,
        };
        let key = NodeKey([0xff; 32]);
        let fields = |m: Message<'_>| Frame::new(m).encoded_len() - 1; // minus the empty prefix
        let whisper = fields(Message::Whisper(Whisper {
            route,
            target: key,
            tag: Some(WhisperTag([0xff; 8])),
            payload: &[],
        }));
        let broadcast = fields(Message::Broadcast(Broadcast {
            route,
            origin: Some(NodeId::from_parts(key, u64::MAX)),
            payload: &[],
            signature: Some(Signature([0xff; 64])),
        }));
        let resonance = fields(Message::Resonance(Resonance {
            route,
            tag: BlindedKey([0xff; 32]),
            strength: 1.0,
            payload: &[],
        })) + crate::crypto::resonance::RESONANCE_OVERHEAD;
        let extension = fields(Message::FileSync(Extension {
            route,
            target: Some(key),
            payload: &[],
        }));
        let ihave = fields(Message::Tree(Tree::IHave {
            entries: List::from_raw(&[]),
        }));
        // What is left for the payload and its length prefix (3 bytes covers every size here).
        let room = |frame: usize, fields: usize| frame.saturating_sub(fields + 3);
        Budget {
            link_record,
            tunnel_record,
            sealed_frame,
            ihave_batch: (room(tunnel_frame, ihave) / IHAVE_ENTRY_LEN)
                .min(limits.max_list_len)
                .max(1),
            whisper: room(tunnel_frame.min(sealed_frame), whisper),
            broadcast: room(tunnel_frame, broadcast),
            resonance: room(tunnel_frame, resonance),
            extension: room(tunnel_frame, extension),
        }
    }

    /// The largest payload of `kind` that fits every path.
    pub fn max_payload(&self, kind: PayloadKind) -> usize {
        match kind {
            PayloadKind::Whisper => self.whisper,
            PayloadKind::Broadcast => self.broadcast,
            PayloadKind::Resonance => self.resonance,
            PayloadKind::Extension => self.extension,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Relay, RelayStage};

    #[test]
    fn relay_framing_is_what_the_encoder_writes() {
        for n in [0, 1, 127, 128, 16_383, 16_384, 65_000] {
            let payload = alloc::vec![0u8; n];
            let m = Message::Relay(Relay {
                peer: NodeKey([7; 32]),
                stage: RelayStage::Record,
                payload: &payload,
            });
            assert_eq!(Frame::new(m).encoded_len(), relay_frame_len(n), "n = {n}");
        }
    }

    #[test]
    fn every_path_fits_noise_and_the_frame_limit() {
        for max in [1_000, 16_384, 65_519, 100_000] {
            let limits = Limits {
                max_frame_size: max,
                ..Limits::DEFAULT
            };
            let b = Budget::new(&limits);
            assert!(b.link_record <= MAX_MESSAGE_LEN);
            assert!(b.link_record <= max + TAG_LEN);
            assert!(relay_frame_len(b.tunnel_record) + TAG_LEN <= b.link_record);
            assert!(relay_frame_len(b.tunnel_record + 1) + TAG_LEN > b.link_record);
            assert!(
                relay_frame_len(16 + b.sealed_frame + SEAL_OVERHEAD) + TAG_LEN <= b.link_record
            );
        }
    }

    #[test]
    fn a_full_ihave_batch_fits_a_tunnel() {
        for (max, list) in [(1_000, 64), (1_000, 10_000), (65_519, 64), (65_519, 10_000)] {
            let limits = Limits {
                max_frame_size: max,
                max_list_len: list,
                ..Limits::DEFAULT
            };
            let b = Budget::new(&limits);
            assert!(b.ihave_batch >= 1 && b.ihave_batch <= list);
            let raw = alloc::vec![0xff; b.ihave_batch * IHAVE_ENTRY_LEN];
            let m = Message::Tree(Tree::IHave {
                entries: List::from_raw(&raw),
            });
            assert!(
                Frame::new(m).encoded_len() + TAG_LEN <= b.tunnel_record,
                "{max} {list}"
            );
        }
    }
}
