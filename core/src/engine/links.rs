//! The link table: transport links (to relays and peers) and the end-to-end links tunnelled
//! through a relay, their heartbeats, timeouts, jitter holds and the transmit path.

use alloc::{string::String, vec::Vec};

use rand_core::CryptoRng;

use super::{
    Action, Addr, DownReason, DropCause, Engine, EngineError, LinkId, Transmit,
    budget::relay_frame_len,
    obfuscation::{next_cover, pad_target, random_delay},
    quality::{PendingPing, Quality},
    timers::Timer,
};
use crate::{
    NodeKey, Timestamp,
    conn::{Conn, QueueError},
    crypto::{CryptoProvider, TAG_LEN},
    wire::{Frame, Message, Ping, Pong, Relay, RelayStage},
};

/// What a link is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// A transport link to a relay server.
    Relay { addr: String },
    /// A transport link we opened to a peer.
    Direct { addr: Addr },
    /// A transport link the other side opened.
    Inbound,
    /// An end-to-end link through the relay link `relay`.
    Tunnel {
        relay: LinkId,
        peer: NodeKey,
        initiator: bool,
    },
}

/// One link.
pub(crate) struct LinkEntry<P: CryptoProvider> {
    pub kind: LinkKind,
    /// `None` until the transport is up.
    pub conn: Option<Conn<P>>,
    pub quality: Quality,
    pub ping: Option<PendingPing>,
    pub next_ping: Timestamp,
    pub hold_until: Option<Timestamp>,
    pub next_cover: Option<Timestamp>,
    pub opened: Timestamp,
    /// Close the link once its queue is empty (a last message is on its way).
    pub closing: bool,
    /// The adapter's writer is full ([`Engine::handle_blocked`]).
    pub blocked: bool,
}

impl<P: CryptoProvider> LinkEntry<P> {
    pub fn is_established(&self) -> bool {
        self.conn.as_ref().is_some_and(Conn::is_established)
    }

    pub fn peer_key(&self) -> Option<NodeKey> {
        self.conn
            .as_ref()
            .and_then(|c| c.peer())
            .map(|p| *p.node_id.key())
    }

    pub fn is_transport(&self) -> bool {
        !matches!(self.kind, LinkKind::Tunnel { .. })
    }
}

/// Urgency of a frame: what is shed first under overload (DESIGN §6). A frame is queued only
/// while the link's queue is below the class's share of the byte cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Class {
    Cover,
    Lazy,
    Forward,
    Own,
    Control,
}

impl Class {
    /// Percent of the queue cap this class may fill up to. Control may use all of it, so some
    /// room is always left for it above the application's own messages.
    fn share(self) -> usize {
        match self {
            Class::Cover => 25,
            Class::Lazy => 50,
            Class::Forward => 75,
            Class::Own => 90,
            Class::Control => 100,
        }
    }
}

impl<P: CryptoProvider, R: CryptoRng> Engine<P, R> {
    pub(crate) fn alloc_link(
        &mut self,
        now: Timestamp,
        kind: LinkKind,
        conn: Option<Conn<P>>,
    ) -> Result<LinkId, EngineError> {
        if self.links.len() >= self.config.max_links {
            return Err(EngineError::TooManyLinks);
        }
        let id = LinkId(self.next_link);
        self.next_link += 1;
        if matches!(kind, LinkKind::Relay { .. }) {
            self.relay_links += 1;
        }
        self.links.insert(
            id,
            LinkEntry {
                kind,
                conn,
                quality: Quality::default(),
                ping: None,
                next_ping: now.saturating_add(self.config.ping_interval),
                hold_until: None,
                next_cover: None,
                opened: now,
                closing: false,
                blocked: false,
            },
        );
        self.arm_link(id);
        Ok(id)
    }

    pub(crate) fn new_initiator(&mut self, now: Timestamp, expected: Option<NodeKey>) -> Conn<P> {
        Conn::initiator(
            self.provider.clone(),
            &self.identity,
            expected,
            self.config.link,
            self.config.max_queue_bytes,
            self.budget.link_record,
            now,
            &mut self.rng,
        )
    }

    pub(crate) fn new_responder(&mut self, now: Timestamp) -> Conn<P> {
        Conn::responder(
            self.provider.clone(),
            &self.identity,
            self.config.link,
            self.config.max_queue_bytes,
            self.budget.link_record,
            now,
            &mut self.rng,
        )
    }

    /// The largest record `link` may send: a transport link's, or a tunnel's (whose records
    /// travel inside RELAY frames on a transport link).
    fn max_record(&self, entry: &LinkEntry<P>) -> usize {
        if entry.is_transport() {
            self.budget.link_record
        } else {
            self.budget.tunnel_record
        }
    }

    /// The record a frame of `len` bytes becomes on `entry`'s link, padding included, or `None`
    /// when it does not fit the link at all.
    fn record_len(&self, entry: &LinkEntry<P>, len: usize) -> Option<usize> {
        let max = self.max_record(entry);
        let target = pad_target(
            &self.config.obfuscation,
            len,
            max - TAG_LEN,
            !entry.is_transport(),
        );
        let record = target.max(len) + TAG_LEN;
        (record <= max).then_some(record)
    }

    /// Sends the gossip (broadcasts, resonance) a lost direct link never sent to `peer` on its
    /// other path, if it has one: a path switch must not lose a message. (Whispers need no
    /// help: they are retried until acknowledged. Duplicates are harmless: the peer's seen set
    /// drops them.)
    fn reroute_unsent(&mut self, now: Timestamp, peer: NodeKey, unsent: &[Vec<u8>]) {
        let Some(path) = (!unsent.is_empty()).then(|| self.path_to(&peer)).flatten() else {
            return;
        };
        let limits = self.config.limits;
        for frame in unsent {
            let Ok(frame) = crate::wire::Frame::decode(frame, &limits) else {
                continue;
            };
            if matches!(frame.message, Message::Broadcast(_) | Message::Resonance(_)) {
                let _ = self.send_on(now, path, frame.message, Class::Forward);
            }
        }
        self.flush_tunnels(now);
    }

    /// Whether some link's queue holds more than half of `max_queue_bytes`: an own message
    /// sent now might be refused on that path ([`Event::NotSent`](super::Event::NotSent)).
    /// An adapter that can make the application wait (an async `send`) holds new messages
    /// back while this is true, so a burst is paced by the slowest path instead of shed.
    pub fn is_congested(&self) -> bool {
        let half = self.config.max_queue_bytes / 2;
        self.links
            .values()
            .filter_map(|l| l.conn.as_ref())
            .any(|c| c.queued_bytes() > half)
    }

    /// Queues a frame on a link, applying padding, jitter and the shedding class. A frame is
    /// queued only if its whole record fits under the class's share of `max_queue_bytes`, so a
    /// link's queue never holds more than `max_queue_bytes` (handshake messages aside). A
    /// refusal is counted by cause.
    pub(crate) fn send_on(
        &mut self,
        now: Timestamp,
        link: LinkId,
        message: Message<'_>,
        class: Class,
    ) -> Result<(), QueueError> {
        let frame = Frame::new(message);
        let Some(entry) = self.links.get(&link) else {
            return Err(QueueError::NotEstablished);
        };
        let len = frame.encoded_len();
        let Some(record) = self.record_len(entry, len) else {
            self.not_sent(link, &message, class, DropCause::TooLarge);
            return Err(QueueError::TooLarge(len + TAG_LEN));
        };
        let limit = self.config.max_queue_bytes * class.share() / 100;
        let Some(entry) = self.links.get_mut(&link) else {
            return Err(QueueError::NotEstablished);
        };
        let Some(conn) = entry.conn.as_mut() else {
            return Err(QueueError::NotEstablished);
        };
        if !conn.is_established() {
            return Err(QueueError::NotEstablished);
        }
        if conn.queued_bytes() + record > limit {
            self.not_sent(link, &message, class, DropCause::QueueFull);
            return Err(QueueError::Full);
        }
        let (_, padding) = conn.queue_frame_with(&frame, |_| record - TAG_LEN, true)?;
        self.stats.padding_bytes += padding as u64;
        self.stats.frames_sent += 1;
        let jitter = self.config.obfuscation.max_jitter;
        if !jitter.is_zero() && entry.hold_until.is_none() {
            let d = random_delay(&mut self.rng, jitter);
            if !d.is_zero() {
                entry.hold_until = Some(now.saturating_add(d));
                self.stats.jitter_delays += 1;
                self.arm_link(link);
            }
        }
        Ok(())
    }

    /// Counts a frame `send_on` refused and, for the application's own messages, tells it.
    fn not_sent(&mut self, link: LinkId, message: &Message<'_>, class: Class, cause: DropCause) {
        self.stats.drop(cause);
        if class != Class::Own {
            return;
        }
        let peer = self.links.get(&link).and_then(LinkEntry::peer_key);
        if let (Some(route), Some(peer)) = (message.route(), peer) {
            self.push_event(super::Event::NotSent {
                id: route.id,
                peer,
                cause,
            });
        }
    }

    /// Moves sealed records of tunnels into RELAY frames on their relay links, in order, as far
    /// as the relay queues allow. A record leaves its tunnel only when its RELAY frame is sure
    /// to be queued (the frame budget makes it fit a link record, and the room is checked
    /// first): a record lost between the two queues would desynchronise the tunnel's nonces.
    pub(crate) fn flush_tunnels(&mut self, now: Timestamp) {
        let pending = self.links.values().any(|l| {
            matches!(l.kind, LinkKind::Tunnel { .. })
                && l.conn.as_ref().and_then(Conn::front_len).is_some()
        });
        if !pending {
            return;
        }
        let tunnels: Vec<(LinkId, LinkId, NodeKey)> = self
            .links
            .iter()
            .filter_map(|(id, l)| match l.kind {
                LinkKind::Tunnel { relay, peer, .. } => Some((*id, relay, peer)),
                _ => None,
            })
            .collect();
        let cap = self.config.max_queue_bytes * Class::Control.share() / 100;
        for (tid, relay, peer) in tunnels {
            while let Some(entry) = self.links.get(&tid) {
                let established = entry.is_established();
                let Some(len) = entry.conn.as_ref().and_then(Conn::front_len) else {
                    break;
                };
                let Some(relay_entry) = self.links.get(&relay) else {
                    break;
                };
                let fits = self
                    .record_len(relay_entry, relay_frame_len(len))
                    .zip(relay_entry.conn.as_ref())
                    .is_some_and(|(record, c)| {
                        c.is_established() && c.queued_bytes() + record <= cap
                    });
                if !fits {
                    break;
                }
                let Some(record) = self
                    .links
                    .get_mut(&tid)
                    .and_then(|e| e.conn.as_mut())
                    .and_then(Conn::pop_record)
                else {
                    break;
                };
                let stage = if established {
                    RelayStage::Record
                } else {
                    RelayStage::Handshake
                };
                let msg = Message::Relay(Relay {
                    peer,
                    stage,
                    payload: &record,
                });
                if self.send_on(now, relay, msg, Class::Control).is_err() {
                    // Cannot happen after the checks above; if it ever did, the tunnel is out
                    // of step and must not go on silently.
                    self.fail_link(now, tid);
                    break;
                }
            }
        }
    }

    /// The next record to write, on any link: round-robin over the transport links that have
    /// a record due and are not [blocked](Self::handle_blocked). The record is moved out of the
    /// engine (no copy); write it as one message on `Transmit::link`.
    ///
    /// Call after every input and command until it returns `None`. Adapters that write each
    /// link from its own task can use [`poll_transmit_on`](Self::poll_transmit_on) instead.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        let now = self.now.max(now);
        self.flush_tunnels(now);
        let ready = |(_, l): &(&LinkId, &LinkEntry<P>)| {
            l.is_transport()
                && !l.blocked
                && l.hold_until.is_none_or(|t| t <= now)
                && l.conn.as_ref().and_then(Conn::front_len).is_some()
        };
        let link = self
            .links
            .range(self.transmit_cursor..)
            .find(ready)
            .or_else(|| self.links.range(..self.transmit_cursor).find(ready))
            .map(|(id, _)| *id)?;
        self.transmit_cursor = LinkId(link.0 + 1);
        let record = self.take_record(now, link)?;
        Some(Transmit { link, record })
    }

    /// The next record for `link` alone, if one is due: for adapters whose per-link writers
    /// pull when they have room, so that a slow link holds back only itself. Records wait in
    /// the link's queue meanwhile, within `max_queue_bytes` (beyond it new frames are shed by
    /// class and counted; the application hears of its own). `None` for links that are not
    /// transport links or have nothing due (a jitter hold may delay a record until
    /// [`poll_timeout`](Self::poll_timeout)).
    pub fn poll_transmit_on(&mut self, now: Timestamp, link: LinkId) -> Option<Vec<u8>> {
        let now = self.now.max(now);
        self.flush_tunnels(now);
        let entry = self.links.get(&link)?;
        if !entry.is_transport() || entry.hold_until.is_some_and(|t| t > now) {
            return None;
        }
        self.take_record(now, link)
    }

    /// Moves the next record out of `link`'s queue, and closes the link if it was waiting to
    /// drain.
    fn take_record(&mut self, now: Timestamp, link: LinkId) -> Option<Vec<u8>> {
        let entry = self.links.get_mut(&link)?;
        let conn = entry.conn.as_mut()?;
        let record = conn.pop_record()?;
        let drained = conn.queued_bytes() == 0;
        if drained {
            entry.hold_until = None;
        }
        let closing = entry.closing;
        self.stats.bytes_sent += record.len() as u64;
        if drained && closing {
            self.close_link(now, link, DownReason::Closed);
        }
        Some(record)
    }

    /// The adapter's writer for `link` cannot take more now (its socket or channel is full):
    /// [`poll_transmit`](Self::poll_transmit) skips the link until
    /// [`handle_writable`](Self::handle_writable). Its records wait in the engine, within
    /// `max_queue_bytes`.
    pub fn handle_blocked(&mut self, now: Timestamp, link: LinkId) -> Result<(), EngineError> {
        self.set_blocked(now, link, true)
    }

    /// The adapter's writer for `link` has room again; poll for its records.
    pub fn handle_writable(&mut self, now: Timestamp, link: LinkId) -> Result<(), EngineError> {
        self.set_blocked(now, link, false)
    }

    fn set_blocked(
        &mut self,
        now: Timestamp,
        link: LinkId,
        blocked: bool,
    ) -> Result<(), EngineError> {
        self.advance(now);
        let entry = self
            .links
            .get_mut(&link)
            .ok_or(EngineError::UnknownLink(link))?;
        entry.blocked = blocked;
        Ok(())
    }

    /// Closes a link once what is queued on it has been sent.
    pub(crate) fn close_gracefully(&mut self, now: Timestamp, link: LinkId) {
        let Some(entry) = self.links.get_mut(&link) else {
            return;
        };
        entry.closing = true;
        if entry.conn.as_ref().is_none_or(|c| c.queued_bytes() == 0) {
            self.close_link(now, link, DownReason::Closed);
        }
    }

    /// Closes a link and everything that depended on it; emits the adapter action for
    /// transport links and the events the application should see.
    pub(crate) fn close_link(&mut self, now: Timestamp, link: LinkId, reason: DownReason) {
        let local = matches!(
            reason,
            DownReason::Closed | DownReason::Limit | DownReason::Shutdown
        );
        if local
            && let Some(LinkEntry {
                kind: LinkKind::Tunnel { .. },
                ..
            }) = self.links.get(&link)
        {
            // A tunnel has no socket to close: tell the peer before forgetting it.
            let bye = Message::Goodbye(crate::wire::Goodbye {
                code: 1,
                reason: "closing",
            });
            let _ = self.send_on(now, link, bye, Class::Control);
            self.flush_tunnels(now);
        }
        let Some(mut entry) = self.links.remove(&link) else {
            return;
        };
        // What a peer link never sent is taken back in clear; its gossip goes another way below.
        let unsent = match (&entry.kind, entry.conn.as_mut()) {
            (LinkKind::Direct { .. } | LinkKind::Inbound, Some(conn)) => conn.take_unsent(),
            _ => Vec::new(),
        };
        self.timers.remove(Timer::Link(link));
        if matches!(entry.kind, LinkKind::Relay { .. }) {
            self.relay_links -= 1;
        }
        self.pending_tunnels.remove(&link);
        let peer = entry.peer_key();
        if entry.is_transport() {
            self.push_action(Action::Close { link });
        }
        match entry.kind {
            LinkKind::Relay { addr } => {
                let relay = entry
                    .conn
                    .as_ref()
                    .and_then(|c| c.peer())
                    .map(|p| p.node_id);
                self.push_event(super::Event::RelayDown { relay, reason });
                // Tunnels through this relay go down with it.
                let tunnels: Vec<LinkId> = self
                    .links
                    .iter()
                    .filter(
                        |(_, l)| matches!(l.kind, LinkKind::Tunnel { relay: r, .. } if r == link),
                    )
                    .map(|(id, _)| *id)
                    .collect();
                for t in tunnels {
                    self.close_link(now, t, DownReason::LinkLost);
                }
                if reason != DownReason::Shutdown {
                    self.schedule_reconnect(now, addr);
                }
            }
            LinkKind::Direct { .. } | LinkKind::Inbound | LinkKind::Tunnel { .. } => {
                if !matches!(entry.kind, LinkKind::Tunnel { .. }) {
                    self.membership_link_lost(now, link, peer);
                }
                if let Some(peer) = peer {
                    self.path_lost(now, peer, link, reason);
                    self.reroute_unsent(now, peer, &unsent);
                } else if let LinkKind::Direct {
                    addr: Addr::WebRtc { peer, .. },
                } = entry.kind
                {
                    self.direct_failed(now, peer);
                }
            }
        }
    }

    pub(crate) fn schedule_reconnect(&mut self, now: Timestamp, addr: String) {
        let attempt = self.reconnect_attempts.entry(addr.clone()).or_insert(0);
        let exp = (*attempt).min(16);
        *attempt += 1;
        let base = self.config.reconnect_base.saturating_mul(1 << exp);
        let delay = base.min(self.config.reconnect_max);
        // Up to 25 % random spread so a fleet does not reconnect in lockstep.
        let spread = random_delay(&mut self.rng, delay / 4);
        let at = now.saturating_add(delay).saturating_add(spread);
        self.reconnects.push((at, addr));
        self.timers.arm(Timer::Reconnect, at);
    }

    /// Heartbeats, dead links, handshake timeouts, cover traffic.
    pub(crate) fn link_timers(&mut self, now: Timestamp) {
        let ids: Vec<LinkId> = self.links.keys().copied().collect();
        for id in ids {
            let Some(entry) = self.links.get_mut(&id) else {
                continue;
            };
            let Some(conn) = entry.conn.as_ref().filter(|c| c.is_established()) else {
                // Not up yet (transport or handshake): give it `handshake_timeout`.
                if now.saturating_duration_since(entry.opened) > self.config.handshake_timeout {
                    self.close_link(now, id, DownReason::HandshakeTimeout);
                }
                continue;
            };
            if now.saturating_duration_since(conn.last_recv) > self.config.dead_after {
                self.close_link(now, id, DownReason::Timeout);
                continue;
            }
            if now >= entry.next_ping {
                let ping_id = self.rng.next_u64();
                entry.ping = Some(PendingPing {
                    id: ping_id,
                    sent: now,
                });
                entry.quality.pings_sent += 1;
                entry.next_ping = now.saturating_add(self.config.ping_interval);
                let msg = Message::Ping(Ping {
                    id: ping_id,
                    sent_at: now.as_millis(),
                });
                let _ = self.send_on(now, id, msg, Class::Control);
            }
            if let Some(mean) = self.config.obfuscation.cover_interval {
                let Some(entry) = self.links.get_mut(&id) else {
                    continue;
                };
                match entry.next_cover {
                    None => entry.next_cover = Some(next_cover(&mut self.rng, now, mean)),
                    Some(t) if now >= t => {
                        entry.next_cover = Some(next_cover(&mut self.rng, now, mean));
                        // Cover is an unsolicited PONG with id 0, padded like everything else.
                        let cover = Message::Pong(Pong { id: 0, sent_at: 0 });
                        if self.send_on(now, id, cover, Class::Cover).is_ok() {
                            self.stats.cover_sent += 1;
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// A link's earliest timer: heartbeat, dead link, cover frame or jitter hold once
    /// established, else the handshake timeout.
    fn link_deadline(&self, l: &LinkEntry<P>) -> Timestamp {
        match &l.conn {
            Some(c) if c.is_established() => {
                let mut t = l
                    .next_ping
                    .min(c.last_recv.saturating_add(self.config.dead_after));
                if self.config.obfuscation.cover_interval.is_some() && l.next_cover.is_none() {
                    t = t.min(l.opened);
                }
                for x in [l.hold_until, l.next_cover].into_iter().flatten() {
                    t = t.min(x);
                }
                t
            }
            _ => l.opened.saturating_add(self.config.handshake_timeout),
        }
    }

    /// Arms `link`'s timer at its deadline if that is earlier than the one armed (see
    /// [`Timers`](super::timers::Timers)): after anything that may bring it forward.
    pub(crate) fn arm_link(&mut self, link: LinkId) {
        if let Some(l) = self.links.get(&link) {
            let at = self.link_deadline(l);
            self.timers.arm(Timer::Link(link), at);
        }
    }

    /// Rebuilds the timer table from every link, whisper, peer and reconnect: after the timers
    /// have run.
    pub(crate) fn rearm_all(&mut self) {
        self.timers.clear();
        let links: Vec<(LinkId, Timestamp)> = self
            .links
            .iter()
            .map(|(id, l)| (*id, self.link_deadline(l)))
            .collect();
        for (id, at) in links {
            self.timers.arm(Timer::Link(id), at);
        }
        for (id, p) in &self.pending {
            self.timers.arm(Timer::Whisper(*id), p.next_try);
        }
        for (key, p) in &self.peers {
            if let Some(at) = p.next_direct_try {
                self.timers.arm(Timer::Direct(*key), at);
            }
        }
        for (at, _) in &self.reconnects {
            self.timers.arm(Timer::Reconnect, *at);
        }
        for (id, s) in &self.stems {
            self.timers.arm(Timer::Stem(*id), s.deadline);
        }
    }
}
