//! What the relay has done, for operators: gauges of what it holds now and counters of what it
//! forwarded and refused, each refusal by cause.

/// Relay statistics. Gauges describe the present; every other field counts since start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Gauge: connections held now (handshaking or registered).
    pub clients: usize,
    /// Gauge: registered clients now (handshake done, node ID proven).
    pub registered: usize,
    /// Gauge: namespaces with at least one member now.
    pub namespaces: usize,
    /// Connections accepted.
    pub connections: u64,
    /// Connections refused because `max_clients` was reached.
    pub rejected_full: u64,
    /// Handshakes completed (each one a registration).
    pub registrations: u64,
    /// Registrations that replaced an earlier connection of the same node.
    pub replaced: u64,
    /// RELAY frames queued to their target.
    pub forwarded_frames: u64,
    /// Payload bytes of those frames.
    pub forwarded_bytes: u64,
    /// RELAY frames whose target is not registered here (answered with UNREACHABLE).
    pub unreachable: u64,
    /// Frames dropped by the rate limit.
    pub rate_limited: u64,
    /// Clients closed for staying over the rate limit.
    pub rate_limit_closes: u64,
    /// Records larger than `max_record` (the client was closed).
    pub oversized: u64,
    /// Frames that failed to decode or validate (the client was closed).
    pub malformed: u64,
    /// Records that failed to decrypt after the handshake (the client was closed).
    pub decrypt_failures: u64,
    /// Frames dropped because the receiving client's send queue was full (forwards and replies).
    pub queue_full: u64,
    /// Handshakes that failed (bad bytes, identity mismatch, incompatible version).
    pub handshake_failures: u64,
    /// Frames of a type the relay does not serve (ignored).
    pub unexpected: u64,
    /// JOINs refused by a namespace cap.
    pub join_rejected: u64,
    /// LOOKUPs answered.
    pub lookups: u64,
    /// LOOKUPs refused because the client had not joined the namespace (answered with an
    /// `ERROR`, [`error_code::NOT_JOINED`](super::error_code::NOT_JOINED)).
    pub lookup_refused: u64,
    /// PINGs answered.
    pub pings: u64,
    /// Clients that said GOODBYE.
    pub goodbyes: u64,
    /// Clients closed for not finishing the handshake in time.
    pub handshake_timeouts: u64,
    /// Registered clients closed for sending nothing for `idle_timeout`.
    pub idle_timeouts: u64,
    /// Bytes of records received from clients.
    pub bytes_received: u64,
    /// Bytes of records handed out by `poll_transmit`.
    pub bytes_sent: u64,
    /// Events dropped because the adapter did not poll them (more than `max_clients` held).
    pub events_dropped: u64,
}
