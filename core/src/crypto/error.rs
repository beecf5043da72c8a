//! The crypto layer's typed error.

/// Why a cryptographic operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Authentication of a ciphertext failed: wrong key, tampering, truncation, replay or
    /// reordering (nonces are implicit counters).
    #[error("decryption failed")]
    Decrypt,
    /// A public key is not a valid curve point.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// A cipher's 64-bit nonce space is used up.
    #[error("nonce exhausted")]
    NonceExhausted,
    /// An input is shorter than its structure requires.
    #[error("message truncated")]
    Truncated,
    /// An output buffer is too small.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The handshake method was called out of turn or after the handshake finished.
    #[error("handshake step out of order")]
    OutOfOrder,
    /// A key the handshake pattern needs was not supplied.
    #[error("a key the handshake needs is missing")]
    MissingKey,
    /// The handshake payload could not be decoded.
    #[error("malformed handshake payload")]
    BadPayload,
    /// The static key proven in the handshake is not the node ID the peer claimed.
    #[error("peer's static key does not match its claimed node ID")]
    NodeIdMismatch,
    /// The peer claimed a node ID other than the one we dialled.
    #[error("peer is not the node that was dialled")]
    UnexpectedPeer,
    /// A Noise message would exceed, or exceeds, 65,535 bytes (Noise §3): refused before any
    /// byte is sealed or opened.
    #[error("noise message of {0} bytes exceeds 65535")]
    MessageTooLarge(usize),
    /// The peer speaks an incompatible protocol major version.
    #[error("incompatible protocol version {0}.{1}")]
    IncompatibleVersion(u8, u8),
}
