//! serde helpers so byte strings encode as one length-prefixed run (postcard `bytes`) rather than
//! a sequence of individually encoded `u8`s, and decode borrowed.

use serde::Serializer;

/// Serializes a borrowed byte slice with `serialize_bytes`.
pub(crate) fn serialize<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}
