//! Handshake patterns as data: pre-messages and message token lists (Noise §7).

/// A handshake token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// Send or receive an ephemeral public key.
    E,
    /// Send or receive a static public key (encrypted once a key exists).
    S,
    /// DH between the two ephemeral keys.
    EE,
    /// DH between the initiator's ephemeral and the responder's static key.
    ES,
    /// DH between the initiator's static and the responder's ephemeral key.
    SE,
    /// DH between the two static keys.
    SS,
}

/// A handshake pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakePattern {
    /// Its name, as in protocol names (`"XX"`).
    pub name: &'static str,
    /// Whether the responder's static key is known to the initiator in advance (`<- s` pre-message).
    pub responder_static_known: bool,
    /// The messages; even indices are written by the initiator.
    pub messages: &'static [&'static [Token]],
}

impl HandshakePattern {
    /// `XX`: mutual authentication, both static keys sent encrypted. whispurr's link handshake.
    pub const XX: HandshakePattern = HandshakePattern {
        name: "XX",
        responder_static_known: false,
        messages: &[
            &[Token::E],
            &[Token::E, Token::EE, Token::S, Token::ES],
            &[Token::S, Token::SE],
        ],
    };

    /// `NN`: no authentication (tests).
    pub const NN: HandshakePattern = HandshakePattern {
        name: "NN",
        responder_static_known: false,
        messages: &[&[Token::E], &[Token::E, Token::EE]],
    };

    /// `N`: one-way to a known recipient, sender anonymous.
    pub const N: HandshakePattern = HandshakePattern {
        name: "N",
        responder_static_known: true,
        messages: &[&[Token::E, Token::ES]],
    };

    /// `X`: one-way to a known recipient, sender authenticated. whispurr's sealed whispers.
    pub const X: HandshakePattern = HandshakePattern {
        name: "X",
        responder_static_known: true,
        messages: &[&[Token::E, Token::ES, Token::S, Token::SS]],
    };

    /// Whether only the initiator ever sends (one-way patterns).
    pub const fn is_one_way(&self) -> bool {
        self.messages.len() == 1
    }
}
