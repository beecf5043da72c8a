//! Counters the engine keeps about itself. Everything dropped is counted by cause.

/// Why a message or frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropCause {
    /// Already seen (de-duplication).
    Duplicate,
    /// Failed wire validation (malformed, oversized, expired, from the future, hop limit).
    Invalid,
    /// Signature did not verify.
    BadSignature,
    /// A send queue was full (shed under overload).
    QueueFull,
    /// Event queue overflow (the application did not poll).
    EventOverflow,
    /// No extension handles the type, or the frame was not expected on this link.
    Unhandled,
    /// Resonance for an intent we are not attuned to, below the minimum strength, or unreadable.
    NotResonant,
    /// No path to the destination.
    NoRoute,
    /// Unsolicited work refused by a cap or a rate limit before it was paid for (a tunnel
    /// handshake beyond `max_inbound_tunnels` or `inbound_tunnel_rate`).
    Refused,
    /// A resonance message whose payload or authenticated fields (timestamp, time to live,
    /// hop limit, strength) were changed on the way: it failed decryption under the intent's
    /// key announced by the neighbour that sent it.
    Tampered,
    /// A frame too large for the link it had to take (a forwarded frame from a peer with larger
    /// limits; own payloads are checked against the frame budget before they are accepted).
    TooLarge,
}

/// Engine statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Established peer sessions (direct or tunnelled), now.
    pub peers: usize,
    /// Established links to relays, now.
    pub relays: usize,
    /// Frames sent (all kinds, after sealing).
    pub frames_sent: u64,
    /// Frames received and decrypted.
    pub frames_received: u64,
    /// Bytes handed to the adapter.
    pub bytes_sent: u64,
    /// Bytes received from the adapter.
    pub bytes_received: u64,
    /// Own messages sent (whispers, broadcasts, resonance, extension).
    pub messages_sent: u64,
    /// Messages delivered to the application or an extension.
    pub messages_delivered: u64,
    /// Gossip copies received (first copies and duplicates).
    pub gossip_received: u64,
    /// Messages forwarded to other peers.
    pub messages_forwarded: u64,
    /// Duplicate copies received.
    pub duplicates: u64,
    /// Drops by cause.
    pub dropped_duplicate: u64,
    /// Dropped: failed validation.
    pub dropped_invalid: u64,
    /// Dropped: bad signature.
    pub dropped_bad_signature: u64,
    /// Dropped: queue full.
    pub dropped_queue_full: u64,
    /// Dropped: event overflow.
    pub dropped_event_overflow: u64,
    /// Dropped: unhandled.
    pub dropped_unhandled: u64,
    /// Dropped: not resonant.
    pub dropped_not_resonant: u64,
    /// Dropped: no route.
    pub dropped_no_route: u64,
    /// Frames too large for the link they had to take.
    pub dropped_too_large: u64,
    /// Unsolicited handshakes refused by a cap or a rate limit.
    pub dropped_refused: u64,
    /// Own anonymous broadcasts spread by their origin because no copy came back from the
    /// stem in time.
    pub stem_fail_safes: u64,
    /// Own anonymous broadcasts whose stem looped back: diffused by their origin at once.
    pub stem_loops: u64,
    /// Resonance messages changed on the way (failed authentication).
    pub dropped_tampered: u64,
    /// Links closed because of hostile or broken input.
    pub links_failed: u64,
    /// Signatures verified.
    pub signatures_verified: u64,
    /// Argon2id derivations of intent phrases this engine ran (one per phrase attuned;
    /// attuning a secret, resonating and detuning run none).
    pub intent_derivations: u64,
    /// Whispers acknowledged by their recipient.
    pub whispers_delivered: u64,
    /// Whispers reported failed.
    pub whispers_failed: u64,
    /// Whisper retransmissions.
    pub whisper_retries: u64,
    /// Padding bytes added.
    pub padding_bytes: u64,
    /// Cover frames sent.
    pub cover_sent: u64,
    /// Cover frames received (and discarded).
    pub cover_received: u64,
    /// Records held back by send jitter.
    pub jitter_delays: u64,
    /// Broadcast-tree grafts sent (a missing broadcast was pulled).
    pub grafts_sent: u64,
    /// Broadcast-tree prunes sent (a duplicate arrived on a tree link).
    pub prunes_sent: u64,
    /// Membership probes opened (partition healing).
    pub probes: u64,
    /// Probes that found a cut and became neighbours.
    pub probes_kept: u64,
    /// Dials other nodes' messages asked for (a FORWARD_JOIN walk ending here) that were
    /// refused: beyond `MembershipConfig::remote_dial_rate`.
    pub remote_dials_refused: u64,
    /// Sum of one-way latencies of delivered messages (ms), for the average.
    pub latency_sum_ms: u64,
    /// Number of latency samples.
    pub latency_samples: u64,
}

impl Stats {
    /// Records a drop.
    pub fn drop(&mut self, cause: DropCause) {
        let c = match cause {
            DropCause::Duplicate => &mut self.dropped_duplicate,
            DropCause::Invalid => &mut self.dropped_invalid,
            DropCause::BadSignature => &mut self.dropped_bad_signature,
            DropCause::QueueFull => &mut self.dropped_queue_full,
            DropCause::EventOverflow => &mut self.dropped_event_overflow,
            DropCause::Unhandled => &mut self.dropped_unhandled,
            DropCause::NotResonant => &mut self.dropped_not_resonant,
            DropCause::NoRoute => &mut self.dropped_no_route,
            DropCause::TooLarge => &mut self.dropped_too_large,
            DropCause::Refused => &mut self.dropped_refused,
            DropCause::Tampered => &mut self.dropped_tampered,
        };
        *c += 1;
    }

    /// Mean one-way latency of delivered messages in ms (origin timestamp to delivery).
    pub fn average_latency_ms(&self) -> Option<f64> {
        (self.latency_samples > 0).then(|| self.latency_sum_ms as f64 / self.latency_samples as f64)
    }

    /// Gossip redundancy: copies received per first copy, minus one (0 = every copy useful).
    pub fn redundancy(&self) -> Option<f64> {
        let first = self.gossip_received.saturating_sub(self.duplicates);
        (first > 0).then(|| self.duplicates as f64 / first as f64)
    }
}
