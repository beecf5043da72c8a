//! The Noise state objects against the published cacophony test vectors (X25519, AES-GCM,
//! SHA-256; `vectors/noise.json`, extracted from snow's copy of cacophony.txt). X25519 here is
//! a dev-only DH; whispurr itself runs the same state objects on P-256.

use serde_json::Value;
use whispurr_core::crypto::{
    CryptoError, CryptoProvider, RustCrypto,
    noise::{DHLEN, Dh, HandshakePattern, HandshakeState},
};

#[derive(Clone, Copy)]
struct X25519;

impl Dh for X25519 {
    type Secret = x25519_dalek::StaticSecret;
    const NAME: &'static str = "25519";

    fn generate<R: rand_core::CryptoRng + ?Sized>(&self, rng: &mut R) -> Self::Secret {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        x25519_dalek::StaticSecret::from(b)
    }

    fn secret_from_bytes(&self, bytes: &[u8; 32]) -> Result<Self::Secret, CryptoError> {
        Ok(x25519_dalek::StaticSecret::from(*bytes))
    }

    fn public(&self, secret: &Self::Secret) -> [u8; DHLEN] {
        x25519_dalek::PublicKey::from(secret).to_bytes()
    }

    fn dh(&self, secret: &Self::Secret, public: &[u8; DHLEN]) -> Result<[u8; DHLEN], CryptoError> {
        Ok(secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(*public))
            .to_bytes())
    }
}

fn hex(v: &Value, field: &str) -> Option<Vec<u8>> {
    v.get(field).map(|s| {
        let s = s.as_str().unwrap();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    })
}

fn key32(v: &Value, field: &str) -> Option<[u8; 32]> {
    hex(v, field).map(|b| b.try_into().unwrap())
}

fn run<P: CryptoProvider>(provider: P, v: &Value) {
    let name = v["protocol_name"].as_str().unwrap();
    let pattern = match name.split('_').nth(1).unwrap() {
        "XX" => HandshakePattern::XX,
        "NN" => HandshakePattern::NN,
        "N" => HandshakePattern::N,
        "X" => HandshakePattern::X,
        other => panic!("pattern {other} not covered"),
    };
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
    use rand_chacha::rand_core::SeedableRng;
    let secret = |f: &str| key32(v, f).map(|k| X25519.secret_from_bytes(&k).unwrap());
    let mut init = HandshakeState::new(
        X25519,
        provider.clone(),
        pattern,
        true,
        &hex(v, "init_prologue").unwrap(),
        secret("init_static"),
        key32(v, "init_remote_static"),
        &mut rng,
    )
    .unwrap();
    init.set_ephemeral_for_test_vectors(secret("init_ephemeral").unwrap());
    let resp_prologue = hex(v, "resp_prologue").unwrap();
    let mut resp = if pattern.is_one_way() {
        HandshakeState::new_one_way_responder(
            X25519,
            provider.clone(),
            pattern,
            &resp_prologue,
            secret("resp_static").unwrap(),
        )
        .unwrap()
    } else {
        let mut r = HandshakeState::new(
            X25519,
            provider.clone(),
            pattern,
            false,
            &resp_prologue,
            secret("resp_static"),
            key32(v, "resp_remote_static"),
            &mut rng,
        )
        .unwrap();
        r.set_ephemeral_for_test_vectors(secret("resp_ephemeral").unwrap());
        r
    };

    let messages = v["messages"].as_array().unwrap();
    let mut transport = None;
    let mut checked = 0;
    for (i, m) in messages.iter().enumerate() {
        let payload = hex(m, "payload").unwrap();
        let expected = hex(m, "ciphertext").unwrap();
        let mut out = vec![0u8; 1024];
        let mut back = vec![0u8; 1024];
        if !init.is_finished() {
            let (w, r) = if i % 2 == 0 {
                (&mut init, &mut resp)
            } else {
                (&mut resp, &mut init)
            };
            let n = w.write_message(&payload, &mut out).unwrap();
            assert_eq!(out[..n], expected[..], "{name}: handshake message {i}");
            let p = r.read_message(&out[..n], &mut back).unwrap();
            assert_eq!(back[..p], payload[..], "{name}: payload {i}");
            if init.is_finished() {
                assert!(resp.is_finished());
                if let Some(h) = hex(v, "handshake_hash") {
                    assert_eq!(init.handshake_hash()[..], h[..], "{name}: handshake hash");
                    assert_eq!(resp.handshake_hash()[..], h[..]);
                }
                transport = Some((init.split().unwrap(), resp.split().unwrap()));
            }
        } else {
            let (ti, tr) = transport.as_mut().unwrap();
            let from_initiator = pattern.is_one_way() || i % 2 == 0;
            let (send, recv) = if from_initiator {
                (&mut ti.send, &mut tr.recv)
            } else {
                (&mut tr.send, &mut ti.recv)
            };
            out[..payload.len()].copy_from_slice(&payload);
            let n = send.encrypt_with_ad(&[], &mut out, payload.len()).unwrap();
            assert_eq!(out[..n], expected[..], "{name}: transport message {i}");
            let p = recv.decrypt_with_ad(&[], &mut out[..n]).unwrap();
            assert_eq!(out[..p], payload[..]);
        }
        checked += 1;
    }
    assert_eq!(checked, messages.len());
}

fn vectors() -> Vec<Value> {
    let text = include_str!("vectors/noise.json");
    let all: Value = serde_json::from_str(text).unwrap();
    all["vectors"].as_array().unwrap().clone()
}

fn by_name(name: &str) -> Value {
    vectors()
        .into_iter()
        .find(|v| v["protocol_name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

#[test]
fn xx_matches_cacophony() {
    run(RustCrypto, &by_name("Noise_XX_25519_AESGCM_SHA256"));
}

#[test]
fn nn_matches_cacophony() {
    run(RustCrypto, &by_name("Noise_NN_25519_AESGCM_SHA256"));
}

#[test]
fn x_matches_cacophony() {
    run(RustCrypto, &by_name("Noise_X_25519_AESGCM_SHA256"));
}

#[test]
fn n_matches_cacophony() {
    run(RustCrypto, &by_name("Noise_N_25519_AESGCM_SHA256"));
}

#[cfg(feature = "ring")]
#[test]
fn every_vector_matches_with_ring_aead() {
    for v in vectors() {
        run(whispurr_core::crypto::Ring, &v);
    }
}
