//! One test per validation error of the wire layer, plus the frame-size limit, truncation and
//! padding rules.

mod common;

use std::time::Duration;

use common::samples::{self, NOW_MS};
use whispurr_core::{
    Timestamp,
    wire::{
        Broadcast, EncodeError, Frame, Goodbye, HEADER_LEN, Limits, Message, MessageType, Ping,
        Resonance, Signal, WebRtcSignal, WireError,
    },
};

const NOW: Timestamp = Timestamp::from_millis(NOW_MS);

fn encode(message: Message<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = Frame::new(message).encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn sample(name: &str, payload: &[u8]) -> Vec<u8> {
    let (_, m) = samples::all(payload)
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap();
    encode(m)
}

#[test]
fn oversized_frame_is_rejected_before_decoding() {
    let limits = Limits {
        max_frame_size: 300,
        ..Limits::default()
    };
    let frame = sample("whisper", &[0u8; 400]);
    assert!(frame.len() > 300);
    assert_eq!(
        Frame::decode(&frame, &limits),
        Err(WireError::FrameTooLarge {
            len: frame.len(),
            max: 300
        })
    );
    // Even garbage that would fail every other check reports the size first.
    let garbage = vec![0xffu8; 301];
    assert!(matches!(
        Frame::decode(&garbage, &limits),
        Err(WireError::FrameTooLarge { .. })
    ));
    // At exactly the limit it decodes.
    let limits = Limits {
        max_frame_size: frame.len(),
        ..Limits::default()
    };
    assert!(Frame::decode(&frame, &limits).is_ok());
}

#[test]
fn truncated_header_and_body() {
    assert_eq!(
        Frame::decode(&[0x10, 0x04], &Limits::default()),
        Err(WireError::Truncated { needed: 5, len: 2 })
    );
    let frame = sample("ping", &[]);
    let short = &frame[..frame.len() - 1];
    assert_eq!(
        Frame::decode(short, &Limits::default()),
        Err(WireError::Truncated {
            needed: frame.len(),
            len: frame.len() - 1
        })
    );
}

#[test]
fn unknown_type() {
    let mut frame = sample("ping", &[]);
    frame[1] = 0x2f;
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::UnknownType(0x2f))
    );
}

#[test]
fn bad_version_and_newer_minor() {
    let mut frame = sample("ping", &[]);
    frame[0] = 0x21;
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::BadVersion { major: 2, minor: 1 })
    );
    frame[0] = 0x00;
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::BadVersion { major: 0, minor: 0 })
    );
    frame[0] = 0x1f;
    let f = Frame::decode(&frame, &Limits::default()).unwrap();
    assert_eq!((f.version.major(), f.version.minor()), (1, 15));
}

#[test]
fn trailing_bytes_without_padding_flag() {
    let mut frame = sample("ping", &[]);
    frame.push(0);
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::TrailingBytes(1))
    );
    // A body length that leaves unread bytes inside the body is also trailing.
    let mut frame = sample("ping", &[]);
    frame.push(0);
    frame[4] += 1;
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::TrailingBytes(1))
    );
}

#[test]
fn malformed_body() {
    // A PING body that ends inside a varint.
    let frame = [0x10, MessageType::Ping.code(), 0, 0, 1, 0x80];
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::Malformed(MessageType::Ping))
    );
    // A GOODBYE reason that is not UTF-8.
    let mut frame = encode(Message::Goodbye(Goodbye {
        code: 1,
        reason: "ab",
    }));
    let last = frame.len() - 1;
    frame[last] = 0xff;
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::Malformed(MessageType::Goodbye))
    );
}

#[test]
fn expired_ttl() {
    let frame = sample("broadcast_anonymous", &[1, 2, 3]);
    let limits = Limits::default();
    let f = Frame::decode(&frame, &limits).unwrap();
    // The sample's TTL is 10 minutes.
    assert_eq!(f.message.validate_at(NOW, &limits), Ok(()));
    let edge = NOW.saturating_add(Duration::from_secs(600));
    assert_eq!(f.message.validate_at(edge, &limits), Ok(()));
    let later = edge.saturating_add(Duration::from_millis(1));
    assert_eq!(
        f.message.validate_at(later, &limits),
        Err(WireError::Expired { expired_ms: 1 })
    );
    // The local cap shortens a sender-chosen TTL.
    let capped = Limits {
        max_ttl: Duration::from_secs(60),
        ..limits
    };
    assert_eq!(
        f.message
            .validate_at(NOW.saturating_add(Duration::from_secs(61)), &capped),
        Err(WireError::Expired { expired_ms: 1000 })
    );
}

#[test]
fn timestamp_too_far_in_the_future() {
    let frame = sample("whisper", &[1, 2, 3]);
    let limits = Limits::default();
    let f = Frame::decode(&frame, &limits).unwrap();
    let early = NOW.saturating_sub(Duration::from_secs(30));
    assert_eq!(f.message.validate_at(early, &limits), Ok(()), "inside skew");
    let too_early = NOW.saturating_sub(Duration::from_secs(31));
    assert_eq!(
        f.message.validate_at(too_early, &limits),
        Err(WireError::FromTheFuture { ahead_ms: 31_000 })
    );
}

#[test]
fn hop_count_above_limit_and_local_cap() {
    let payload = [0u8; 8];
    let mut route = samples::route();
    route.hops = 9;
    route.hop_limit = 8;
    let frame = encode(Message::Broadcast(Broadcast {
        route,
        origin: None,
        payload: &payload,
        signature: None,
    }));
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::HopLimitExceeded { hops: 9, limit: 8 })
    );
    route.hops = 5;
    route.hop_limit = 200;
    let frame = encode(Message::Broadcast(Broadcast {
        route,
        origin: None,
        payload: &payload,
        signature: None,
    }));
    let limits = Limits {
        max_hop_limit: 4,
        ..Limits::default()
    };
    assert_eq!(
        Frame::decode(&frame, &limits),
        Err(WireError::HopLimitExceeded { hops: 5, limit: 4 })
    );
}

#[test]
fn strength_out_of_range() {
    for strength in [-0.01f32, 1.01, f32::NAN, f32::INFINITY] {
        let frame = encode(Message::Resonance(Resonance {
            route: samples::route(),
            tag: whispurr_core::derive::BlindedKey([0x5a; 32]),
            strength,
            payload: &[],
        }));
        assert_eq!(
            Frame::decode(&frame, &Limits::default()),
            Err(WireError::StrengthOutOfRange),
            "{strength}"
        );
    }
    for strength in [0.0f32, 1.0] {
        let frame = encode(Message::Resonance(Resonance {
            route: samples::route(),
            tag: whispurr_core::derive::BlindedKey([0x5a; 32]),
            strength,
            payload: &[],
        }));
        assert!(Frame::decode(&frame, &Limits::default()).is_ok());
    }
}

#[test]
fn oversized_fields() {
    let reason = "x".repeat(257);
    let frame = encode(Message::Goodbye(Goodbye {
        code: 1,
        reason: &reason,
    }));
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::FieldTooLarge {
            field: "reason",
            len: 257,
            max: 256
        })
    );
    let sdp = "v".repeat(2000);
    let frame = encode(signal(WebRtcSignal::Offer { sdp: &sdp }));
    let limits = Limits {
        max_signal_len: 1999,
        ..Limits::default()
    };
    assert_eq!(
        Frame::decode(&frame, &limits),
        Err(WireError::FieldTooLarge {
            field: "signal",
            len: 2000,
            max: 1999
        })
    );
}

fn signal(signal: WebRtcSignal<&str>) -> Message<'_> {
    Message::Signal(Signal {
        target: whispurr_core::NodeKey([1; 32]),
        origin: samples::node_id(),
        signal,
    })
}

/// A frame of the current version with a hand-written body.
fn raw_frame(kind: MessageType, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap().to_be_bytes();
    let mut frame = vec![0x10, kind.code(), 0, len[0], len[1]];
    frame.extend_from_slice(body);
    frame
}

#[test]
fn over_long_signals_are_rejected() {
    let max = Limits::default().max_signal_len;
    // An SDP one byte over the default limit (16 KiB), offer or answer.
    let sdp = "a".repeat(max + 1);
    let too_long = Err(WireError::FieldTooLarge {
        field: "signal",
        len: max + 1,
        max,
    });
    for s in [
        WebRtcSignal::Offer { sdp: sdp.as_str() },
        WebRtcSignal::Answer { sdp: sdp.as_str() },
    ] {
        assert_eq!(
            Frame::decode(&encode(signal(s)), &Limits::default()),
            too_long
        );
    }
    // Exactly at the limit is fine.
    let at_limit = encode(signal(WebRtcSignal::Answer { sdp: &sdp[1..] }));
    assert!(Frame::decode(&at_limit, &Limits::default()).is_ok());
    // A candidate counts all its text: each part fits, together they do not.
    let third = "c".repeat(max / 3 + 1);
    let candidate = WebRtcSignal::Candidate {
        candidate: third.as_str(),
        sdp_mid: Some(third.as_str()),
        sdp_mline_index: Some(0),
        username_fragment: Some(third.as_str()),
    };
    assert_eq!(
        Frame::decode(&encode(signal(candidate)), &Limits::default()),
        Err(WireError::FieldTooLarge {
            field: "signal",
            len: 3 * third.len(),
            max,
        })
    );
}

#[test]
fn unknown_signal_variant_is_a_typed_error() {
    // The body of an end-of-candidates signal ends with its variant index (3).
    let frame = encode(signal(WebRtcSignal::EndOfCandidates));
    let body = &frame[HEADER_LEN..];
    assert_eq!(body.last(), Some(&3));
    let head = &body[..body.len() - 1];
    for (index, variant) in [
        (&[4u8][..], 4),
        (&[0x7f], 127),
        (&[0xff, 0xff, 0xff, 0xff, 0x0f], u32::MAX),
    ] {
        let mut body = head.to_vec();
        body.extend_from_slice(index);
        // Fields of the unknown variant follow; this version cannot know their layout.
        body.extend_from_slice(b"\x03new");
        let mut frame = raw_frame(MessageType::Signal, &body);
        assert_eq!(
            Frame::decode(&frame, &Limits::default()),
            Err(WireError::UnknownSignal { variant })
        );
        // The same from a newer minor version.
        frame[0] = 0x13;
        assert_eq!(
            Frame::decode(&frame, &Limits::default()),
            Err(WireError::UnknownSignal { variant })
        );
    }
    // An index that is not even a u32 is malformed.
    let mut body = head.to_vec();
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert_eq!(
        Frame::decode(&raw_frame(MessageType::Signal, &body), &Limits::default()),
        Err(WireError::Malformed(MessageType::Signal))
    );
}

#[test]
fn malformed_signals_are_rejected() {
    let malformed = Err(WireError::Malformed(MessageType::Signal));
    // An SDP that is not UTF-8.
    let mut frame = encode(signal(WebRtcSignal::Offer { sdp: "v=0" }));
    let last = frame.len() - 1;
    frame[last] = 0xff;
    assert_eq!(Frame::decode(&frame, &Limits::default()), malformed);
    // An SDP longer than the body that carries it.
    let frame = encode(signal(WebRtcSignal::Answer { sdp: "v=0" }));
    let mut body = frame[HEADER_LEN..frame.len() - 3].to_vec();
    *body.last_mut().unwrap() = 200;
    assert_eq!(
        Frame::decode(&raw_frame(MessageType::Signal, &body), &Limits::default()),
        malformed
    );
    // A known variant cut short (a candidate without its options).
    let frame = encode(signal(WebRtcSignal::Candidate {
        candidate: "c",
        sdp_mid: None,
        sdp_mline_index: None,
        username_fragment: None,
    }));
    let body = &frame[HEADER_LEN..frame.len() - 2];
    assert_eq!(
        Frame::decode(&raw_frame(MessageType::Signal, body), &Limits::default()),
        malformed
    );
    // An option tag that is neither 0 nor 1.
    let mut body = frame[HEADER_LEN..].to_vec();
    let last = body.len() - 1;
    body[last] = 2;
    assert_eq!(
        Frame::decode(&raw_frame(MessageType::Signal, &body), &Limits::default()),
        malformed
    );
    // Bytes after a whole signal.
    let mut body = frame[HEADER_LEN..].to_vec();
    body.push(0);
    assert_eq!(
        Frame::decode(&raw_frame(MessageType::Signal, &body), &Limits::default()),
        Err(WireError::TrailingBytes(1))
    );
}

#[test]
fn broadcast_origin_and_signature_go_together() {
    let frame = encode(Message::Broadcast(Broadcast {
        route: samples::route(),
        origin: Some(samples::node_id()),
        payload: &[],
        signature: None,
    }));
    assert_eq!(
        Frame::decode(&frame, &Limits::default()),
        Err(WireError::AuthMismatch)
    );
}

#[test]
fn encode_reports_small_buffers_and_huge_bodies() {
    let ping = Frame::new(Message::Ping(Ping { id: 1, sent_at: 2 }));
    assert_eq!(ping.encode(&mut [0u8; 3]), Err(EncodeError::BufferTooSmall));
    assert_eq!(
        ping.encode(&mut [0u8; HEADER_LEN + 1]),
        Err(EncodeError::BufferTooSmall)
    );
    assert_eq!(
        ping.encode_padded(&mut [0u8; 16], 17),
        Err(EncodeError::BufferTooSmall)
    );
    let big = vec![0u8; 70_000];
    let (_, m) = samples::all(&big)
        .into_iter()
        .find(|(n, _)| *n == "whisper")
        .unwrap();
    let mut buf = vec![0u8; 80_000];
    assert!(matches!(
        Frame::new(m).encode(&mut buf),
        Err(EncodeError::BodyTooLarge(_))
    ));
}

#[test]
fn padding_is_ignored_and_flagged() {
    let ping = Frame::new(Message::Ping(Ping { id: 1, sent_at: 2 }));
    let mut buf = [0xeeu8; 64];
    let n = ping.encode_padded(&mut buf, 64).unwrap();
    assert_eq!(n, 64);
    assert!(buf[HEADER_LEN + 2..].iter().all(|&b| b == 0));
    let back = Frame::decode(&buf, &Limits::default()).unwrap();
    assert_eq!(back.message, ping.message);
    // Padding to a size the frame already exceeds writes the frame unpadded.
    let n = ping.encode_padded(&mut buf, 1).unwrap();
    assert_eq!(Frame::decode(&buf[..n], &Limits::default()).unwrap(), ping);
}

#[test]
fn sample_sizes_are_compact() {
    // Guards the documented overheads: header 5 bytes; an anonymous broadcast with a 256-byte
    // payload costs at most 40 bytes on top of the payload.
    let payload = [0u8; 256];
    let anon = sample("broadcast_anonymous", &payload);
    assert!(anon.len() <= 256 + 40, "{}", anon.len());
}

#[test]
fn list_fields_are_bounded_and_whole() {
    use whispurr_core::wire::{Announce, List, Peers};
    let limits = Limits {
        max_list_len: 2,
        ..Limits::default()
    };
    let three = [7u8; 96];
    let frame = encode(Message::Announce(Announce {
        blinded: List::from_raw(&three),
    }));
    assert_eq!(
        Frame::decode(&frame, &limits),
        Err(WireError::FieldTooLarge {
            field: "blinded",
            len: 3,
            max: 2
        })
    );
    let ragged = [7u8; 41];
    let frame = encode(Message::Peers(Peers {
        peers: List::from_raw(&ragged),
    }));
    assert_eq!(
        Frame::decode(&frame, &limits),
        Err(WireError::Malformed(MessageType::Peers))
    );
}

#[test]
fn ihave_lists_are_bounded_and_whole() {
    use whispurr_core::wire::{IHAVE_ENTRY_LEN, List, Tree};
    let limits = Limits {
        max_list_len: 2,
        ..Limits::default()
    };
    let three = [7u8; 3 * IHAVE_ENTRY_LEN];
    let frame = encode(Message::Tree(Tree::IHave {
        entries: List::from_raw(&three),
    }));
    assert_eq!(
        Frame::decode(&frame, &limits),
        Err(WireError::FieldTooLarge {
            field: "ihave",
            len: 3,
            max: 2
        })
    );
    let ragged = [7u8; IHAVE_ENTRY_LEN + 1];
    let frame = encode(Message::Tree(Tree::IHave {
        entries: List::from_raw(&ragged),
    }));
    assert_eq!(
        Frame::decode(&frame, &limits),
        Err(WireError::Malformed(MessageType::Tree))
    );
}
