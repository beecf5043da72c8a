//! Intents and their secrets.
//!
//! An intent is named by a **phrase** that every participant types alike ("midnight chess"), or
//! by a **secret** of 32 random bytes the application shares out of band. Either way it comes
//! down to one [`IntentSecret`], and every value the intent puts on the wire derives from that
//! secret (see [`resonance`](super::resonance)):
//!
//! - a phrase's secret is **Argon2id** of the phrase under a fixed domain salt, with the cost
//!   of an [`IntentKdf`]: checking one guess at a phrase costs one Argon2id evaluation (its
//!   memory and its time), where it used to cost one HKDF;
//! - a secret is the intent secret as it is: there is nothing to guess and no KDF to pay.
//!
//! **What a phrase protects, and what it does not.** Argon2id makes each guess expensive, it
//! does not make a phrase secret. A dictionary word or a popular phrase ("chess") is still
//! found by a determined attacker who pays for the guesses, and whoever finds it can match
//! announcements, meet at relays and read the intent's messages, like any attuned node. When
//! an intent must not be guessed, use [`Intent::secret`] with 32 random bytes (or a phrase
//! with that much entropy).

use alloc::string::String;
use core::fmt;

use zeroize::Zeroize;

/// Argon2id salt of intent phrases: fixed, so that everyone who knows a phrase derives the
/// same secret (a per-node salt would make phrases unmatchable). It still separates whispurr's
/// derivations from any other use of Argon2id, so a precomputed table for another application
/// is worth nothing here.
const PHRASE_SALT: &[u8] = b"whispurr/v1/intent phrase";

/// The cost of the Argon2id derivation that turns an intent phrase into its secret.
///
/// **These parameters are part of the derivation**: nodes that attune to the same phrase with
/// different parameters derive different secrets and never find each other, so everyone
/// sharing a phrase must use the same ones (in practice: the default, or one value fixed by
/// the application for its whole network).
///
/// The default ([`IntentKdf::RECOMMENDED`]) is the OWASP baseline for Argon2id: 19 MiB of
/// memory, 2 passes, 1 lane. Measured in a release build on this project's 2-core reference
/// machine (`cargo bench -p whispurr-core --bench intent`, criterion medians):
///
/// | derivation | time | per guess, against the old HKDF |
/// |---|---|---|
/// | HKDF-SHA256 of the phrase (what an intent key used to be) | 0.68 µs | 1× |
/// | Argon2id 19 MiB, 2 passes (default) | 23.7 ms | ≈ 35,000×, and 19 MiB each |
/// | Argon2id 64 MiB, 3 passes | 209 ms | ≈ 310,000×, and 64 MiB each |
/// | Argon2id 256 KiB, 8 passes (small hardware) | 0.93 ms | ≈ 1,400×, and 256 KiB each |
///
/// The million guesses that found "chess" in seconds now take some 6.6 core-hours and 19 MiB
/// per guess in flight. Why not dearer: a node pays the derivation at every `attune` of a
/// phrase, on whatever it runs on — phones and browsers, where 64 MiB and a second of CPU per
/// attune are not invisible — and a dearer default protects a popular phrase no better (it is
/// still in every dictionary). 24 ms is unnoticeable where it is paid, once per attune, never
/// per message.
///
/// **Small hardware.** A node that cannot spare 19 MiB (a microcontroller) has two ways out:
/// receive the intent's secret from a larger device and attune with [`Intent::secret`] (no KDF
/// at all), or, for a network of small nodes only, lower the cost for every participant (for
/// example `IntentKdf { memory_kib: 256, iterations: 8, parallelism: 1 }`; Argon2id's floor is
/// 8 KiB per lane). Lower cost makes each guess cheaper for the attacker too, in the same
/// proportion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntentKdf {
    /// Memory of one evaluation, in KiB (Argon2's `m_cost`; at least `8 × parallelism`).
    pub memory_kib: u32,
    /// Passes over that memory (Argon2's `t_cost`; at least 1).
    pub iterations: u32,
    /// Lanes (Argon2's `p_cost`; at least 1). Lanes are computed one after another here, so
    /// more lanes do not make a node faster; they only change the function.
    pub parallelism: u32,
}

impl IntentKdf {
    /// The default: Argon2id with 19 MiB, 2 passes, 1 lane (the OWASP baseline).
    pub const RECOMMENDED: IntentKdf = IntentKdf {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    fn argon2(&self) -> Result<argon2::Argon2<'static>, IntentError> {
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
                .map_err(|_| IntentError::InvalidKdf)?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }

    /// Checks the parameters without deriving anything.
    pub fn validate(&self) -> Result<(), IntentError> {
        self.argon2().map(|_| ())
    }
}

impl Default for IntentKdf {
    fn default() -> Self {
        IntentKdf::RECOMMENDED
    }
}

/// Why an intent phrase could not be turned into its secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IntentError {
    /// The [`IntentKdf`] parameters are out of Argon2id's range.
    #[error("invalid Argon2id parameters")]
    InvalidKdf,
    /// The Argon2id memory could not be allocated.
    #[error("not enough memory for the Argon2id derivation")]
    OutOfMemory,
    /// The phrase is longer than Argon2id accepts (4 GiB).
    #[error("intent phrase too long")]
    PhraseTooLong,
}

/// The 32-byte secret of an intent, the root of every value it puts on the wire. Zeroized on
/// drop; never printed.
#[derive(Clone)]
pub(crate) struct IntentSecret([u8; 32]);

impl IntentSecret {
    /// Argon2id of `phrase` under the domain salt, with `kdf`'s cost.
    pub(crate) fn from_phrase(phrase: &str, kdf: &IntentKdf) -> Result<Self, IntentError> {
        let mut out = [0u8; 32];
        kdf.argon2()?
            .hash_password_into(phrase.as_bytes(), PHRASE_SALT, &mut out)
            .map_err(|e| match e {
                argon2::Error::OutOfMemory => IntentError::OutOfMemory,
                argon2::Error::PwdTooLong => IntentError::PhraseTooLong,
                _ => IntentError::InvalidKdf,
            })?;
        Ok(IntentSecret(out))
    }

    /// A secret given as it is (no KDF).
    pub(crate) fn from_bytes(secret: [u8; 32]) -> Self {
        IntentSecret(secret)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for IntentSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for IntentSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntentSecret(<redacted>)")
    }
}

/// An intent ready to attune to: a local name and the intent's secret.
///
/// - [`Intent::phrase`]: the secret is Argon2id of the phrase under a fixed domain salt, at the
///   cost of an [`IntentKdf`]. Checking one guess at a phrase costs one Argon2id evaluation
///   with those parameters (where it used to cost one HKDF).
/// - [`Intent::secret`]: the secret is given as it is; there is nothing to guess and no KDF to
///   pay.
///
/// **What a phrase protects, and what it does not.** Argon2id makes each guess expensive; it
/// does not make a phrase secret. A dictionary word or a popular phrase ("chess") is still found
/// by a determined attacker who pays for the guesses, and whoever finds it can match
/// announcements, meet at relays and read the intent's messages like any attuned node. When an
/// intent must not be guessed, use [`Intent::secret`] with 32 random bytes shared out of band
/// (or a phrase with that much entropy).
///
/// The **name** stays on this node: it is how the application refers to the intent
/// (`resonate`, `detune`) and what resonance events carry. Only values derived from the secret
/// leave the node (see [`resonance`](super::resonance) for the list).
#[derive(Clone)]
pub struct Intent {
    name: String,
    secret: IntentSecret,
}

impl Intent {
    /// The intent named by `phrase`, its secret derived by Argon2id with `kdf` (this is the
    /// expensive step: see [`IntentKdf`]). The phrase is also its name. Everyone who attunes to
    /// the same phrase with the same parameters meets.
    pub fn phrase(phrase: &str, kdf: &IntentKdf) -> Result<Self, IntentError> {
        Ok(Intent {
            name: String::from(phrase),
            secret: IntentSecret::from_phrase(phrase, kdf)?,
        })
    }

    /// The intent whose secret is `secret`, named `name` locally. No KDF is run: the secret
    /// must already be unguessable (32 random bytes shared out of band, or a phrase's secret
    /// derived elsewhere). Everyone who attunes to the same secret meets, whatever name each
    /// gives it.
    pub fn secret(name: &str, secret: [u8; 32]) -> Self {
        Intent {
            name: String::from(name),
            secret: IntentSecret::from_bytes(secret),
        }
    }

    /// The local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key attuned nodes match each other by (never sent as is).
    pub fn resonance_key(&self) -> super::ResonanceKey {
        super::ResonanceKey::from_secret(&self.secret)
    }

    /// The key that encrypts and authenticates the intent's resonance messages.
    pub fn content_key(&self) -> super::ResonanceContentKey {
        super::ResonanceContentKey::from_secret(&self.secret)
    }

    /// The key that names the intent's rendezvous namespace at each relay.
    pub fn rendezvous_key(&self) -> super::RendezvousKey {
        super::RendezvousKey::from_secret(&self.secret)
    }
}

impl fmt::Debug for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intent")
            .field("name", &self.name)
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: IntentKdf = IntentKdf {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn a_phrase_derives_one_secret_per_parameter_set() {
        let a = IntentSecret::from_phrase("chess", &CHEAP).unwrap();
        let again = IntentSecret::from_phrase("chess", &CHEAP).unwrap();
        assert_eq!(a.as_bytes(), again.as_bytes());
        let other = IntentSecret::from_phrase("chess ", &CHEAP).unwrap();
        assert_ne!(a.as_bytes(), other.as_bytes());
        let dearer = IntentKdf {
            iterations: 2,
            ..CHEAP
        };
        let b = IntentSecret::from_phrase("chess", &dearer).unwrap();
        assert_ne!(
            a.as_bytes(),
            b.as_bytes(),
            "the parameters are in the derivation"
        );
    }

    #[test]
    fn bad_parameters_are_a_typed_error() {
        let bad = IntentKdf {
            memory_kib: 4,
            ..CHEAP
        };
        assert_eq!(bad.validate(), Err(IntentError::InvalidKdf));
        assert_eq!(
            Intent::phrase("x", &bad).unwrap_err(),
            IntentError::InvalidKdf
        );
        assert_eq!(IntentKdf::default().validate(), Ok(()));
    }

    #[test]
    fn secrets_are_not_printed() {
        let i = Intent::secret("private", [0xab; 32]);
        let text = alloc::format!("{i:?}");
        assert!(text.contains("private") && text.contains("redacted"));
        assert!(!text.contains("ab, ab") && !text.contains("171"));
    }
}
