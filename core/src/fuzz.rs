//! Entry points for the cargo-fuzz targets in `fuzz/`. Each target is a one-line call into a
//! function here, so the same code also runs under `cargo test`, which replays the committed seed
//! corpora on stable Rust. Compiled only with the `fuzz` feature.
//!
//! The functions panic only when an invariant of whispurr itself is broken (for example a decoded
//! frame that does not re-encode to an equivalent frame): that is what the fuzzer looks for.

use sha2::{Digest, Sha256};

use crate::{
    Identity, Timestamp,
    conn::Conn,
    crypto::{
        RustCrypto,
        link::{LinkConfig, LinkHandshake, MAX_HANDSHAKE_LEN},
        seal,
    },
    engine::{BroadcastAuth, Config, Engine, LinkId, Output, drain},
    wire::{Frame, Limits},
};

/// Decodes arbitrary bytes as a frame; every accepted frame must validate without panicking and
/// re-encode to bytes that decode to the same frame.
pub fn frame_decode(data: &[u8]) {
    let limits = Limits::default();
    let Ok(frame) = Frame::decode(data, &limits) else {
        return;
    };
    let _ = frame
        .message
        .validate_at(Timestamp::from_millis(1_764_000_000_000), &limits);
    let mut buf = alloc::vec![0u8; data.len() + 16];
    let n = frame
        .encode(&mut buf)
        .unwrap_or_else(|e| panic!("decoded frame failed to re-encode: {e}"));
    let again = Frame::decode(&buf[..n], &limits)
        .unwrap_or_else(|e| panic!("re-encoded frame failed to decode: {e}"));
    assert_eq!(
        again.message, frame.message,
        "round trip changed the message"
    );
}

/// A deterministic RNG for fuzzing and seed generation only: SHA-256 of a seed and a counter.
/// Never use it for real keys.
#[derive(Clone, Debug)]
pub struct FuzzRng {
    seed: u64,
    counter: u64,
}

impl FuzzRng {
    /// An RNG for `seed`.
    pub fn new(seed: u64) -> Self {
        FuzzRng { seed, counter: 0 }
    }
}

impl rand_core::TryRng for FuzzRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed.to_le_bytes())
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FuzzRng {}

/// The fixed identities of the handshake target: `(the fuzzed side, its usual peer)`.
pub fn handshake_identities() -> (Identity, Identity) {
    let now = Timestamp::from_secs(1_764_000_000);
    (
        Identity::generate(&mut FuzzRng::new(1), now),
        Identity::generate(&mut FuzzRng::new(2), now),
    )
}

/// Feeds hostile bytes to the link handshake and the sealed-whisper opener.
///
/// Layout: `[mode] [len: u8] [first message: len bytes] [rest]`. Mode bit 0 picks the role:
/// 0 = responder (reads the first message as message 1, writes message 2, reads `rest` as
/// message 3); 1 = initiator (writes message 1 with [`FuzzRng::new`]`(3)`, reads the first
/// message as message 2, writes message 3, then opens `rest` as a transport record). Every path
/// must end in an error or a session, never a panic. The whole input is also opened as a sealed
/// whisper.
pub fn handshake(data: &[u8]) {
    let (me, _) = handshake_identities();
    let mut out = [0u8; MAX_HANDSHAKE_LEN];
    let mut plain = alloc::vec![0u8; data.len()];
    let _ = seal::open(&RustCrypto, me.key_pair(), data, &mut plain);
    let [mode, len, rest @ ..] = data else {
        return;
    };
    let split = usize::from(*len).min(rest.len());
    let (first, rest) = rest.split_at(split);
    let mut rng = FuzzRng::new(3);
    let config = LinkConfig::default();
    if mode & 1 == 0 {
        let mut hs = LinkHandshake::responder(RustCrypto, &me, config, &mut rng);
        if hs.read_message(first).is_err() || hs.write_message(&mut out).is_err() {
            return;
        }
        if hs.read_message(rest).is_ok() {
            assert!(
                hs.is_finished(),
                "three messages read or written must finish XX"
            );
            let _ = hs.finish().map(|(_, peer)| peer.node_id);
        }
    } else {
        let mut hs = LinkHandshake::initiator(RustCrypto, &me, None, config, &mut rng);
        if hs.write_message(&mut out).is_err() || hs.read_message(first).is_err() {
            return;
        }
        if hs.write_message(&mut out).is_err() {
            return;
        }
        let (mut session, _) = hs
            .finish()
            .expect("a handshake that read message 2 finishes");
        let mut record = rest.to_vec();
        let _ = session.open(&mut record);
    }
}

/// Drives an engine with a sequence of inputs decoded from the fuzz bytes, against one peer that
/// completed a real handshake on an inbound link. Each step is `[op] [len] [len bytes]`:
///
/// - op 0: the bytes, sealed by the peer as one record (reaches frame decoding and dispatch);
/// - op 1: the bytes as a raw record (hostile transport bytes);
/// - op 2: time advances by `u16(bytes) × 10 ms`, then `handle_timeout`;
/// - op 3: an application command chosen by the first byte (broadcast, whisper, attune,
///   resonate, detune, attune a secret) with the rest as payload or intent;
/// - op 4: the transport reports the link down, and a new inbound link arrives;
/// - op 5: shutdown.
///
/// After every step all outputs are drained and the peer reads what it was sent. Nothing may
/// panic; time never goes backwards.
pub fn engine(data: &[u8]) {
    let mut now = Timestamp::from_secs(1_764_000_000);
    let (me, peer_identity) = handshake_identities();
    let config = Config {
        max_links: 8,
        max_peers: 8,
        max_events: 64,
        max_pending_whispers: 8,
        max_seen: 64,
        max_queue_bytes: 64 * 1024,
        // Membership and the broadcast tree on, with small caps, so their frames and limits
        // are reached too.
        membership: Some(crate::engine::MembershipConfig {
            passive: 4,
            ..crate::engine::MembershipConfig::default()
        }),
        gossip: crate::engine::Gossip::Tree(crate::engine::TreeConfig {
            cache: 16,
            catch_up_max: 4,
            ..crate::engine::TreeConfig::default()
        }),
        listen_addr: Some(alloc::string::String::from("fuzz://engine")),
        // The smallest Argon2id: attuning is a command like any other here, not a benchmark.
        intent_kdf: crate::derive::IntentKdf {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        },
        ..Config::default()
    };
    let mut engine = Engine::new(me, config, RustCrypto, FuzzRng::new(5), now);
    let mut rng = FuzzRng::new(6);
    let new_peer = |engine: &mut Engine<RustCrypto, FuzzRng>, now, rng: &mut FuzzRng| {
        let link = engine.handle_incoming(now).ok()?;
        let conn = Conn::initiator(
            RustCrypto,
            &peer_identity,
            None,
            LinkConfig::default(),
            1 << 20,
            70_000,
            now,
            rng,
        );
        Some((link, conn))
    };
    let Some((mut link, mut peer)) = new_peer(&mut engine, now, &mut rng) else {
        return;
    };
    pump(&mut engine, &mut peer, link, now);
    assert!(
        peer.is_established(),
        "a genuine handshake with the engine must complete"
    );
    let mut rest = data;
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (arg, next) = tail.split_at(n);
        rest = next;
        match op % 6 {
            0 => {
                let _ = peer.queue_plaintext(arg);
            }
            1 => {
                let mut raw = arg.to_vec();
                let _ = engine.handle_data(now, link, &mut raw);
            }
            2 => {
                let ms = u64::from(u16::from_le_bytes([
                    arg.first().copied().unwrap_or(0),
                    arg.get(1).copied().unwrap_or(0),
                ]));
                now = now.saturating_add(core::time::Duration::from_millis(ms * 10));
                engine.handle_timeout(now);
            }
            3 => {
                let (which, body) = arg.split_first().unwrap_or((&0, &[]));
                let text = core::str::from_utf8(body).unwrap_or("x");
                let target = *peer_identity.node_id().key();
                let _ = match which % 6 {
                    0 => engine
                        .broadcast_with(now, body, BroadcastAuth::Anonymous)
                        .map(|_| ()),
                    1 => engine.whisper(now, target, Some(text), body).map(|_| ()),
                    2 => engine.attune(now, text),
                    3 => engine.resonate(now, text, 0.5, body).map(|_| ()),
                    4 => engine.detune(now, text),
                    _ => {
                        let mut secret = [0u8; 32];
                        for (s, b) in secret.iter_mut().zip(body) {
                            *s = *b;
                        }
                        engine.attune_secret(now, text, secret)
                    }
                };
            }
            4 => {
                let _ = engine.handle_link_down(now, link);
                match new_peer(&mut engine, now, &mut rng) {
                    Some((l, c)) => {
                        link = l;
                        peer = c;
                    }
                    None => return,
                }
            }
            _ => engine.shutdown(now),
        }
        pump(&mut engine, &mut peer, link, now);
    }
}

/// Moves records both ways between the engine and its fuzzing peer until quiet, and drains the
/// engine's actions and events.
fn pump(
    engine: &mut Engine<RustCrypto, FuzzRng>,
    peer: &mut Conn<RustCrypto>,
    link: LinkId,
    now: Timestamp,
) {
    for _ in 0..64 {
        let mut moved = false;
        while let Some(r) = peer.pop_record() {
            moved = true;
            let _ = engine.handle_data(now, link, r);
        }
        drain(engine, now, |output| {
            moved = true;
            if let Output::Transmit(mut t) = output
                && t.link == link
            {
                let _ = peer.handle_data(now, &mut t.record);
            }
        });
        if !moved {
            return;
        }
    }
}
