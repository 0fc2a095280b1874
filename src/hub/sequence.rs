//! Room and feed messages from the bus, delivered in offset order with no silent gap.
//!
//! Below, "room" stands for any history stream: a room, a user's inbox or the broadcasts
//! ([`super::feeds`]); each is checked the same way, by its history key.
//!
//! Redis numbers each room's messages (offset, epoch), but pub/sub may lose some on the way
//! to a node: its subscription dropped for a moment (a Redis restart, a network blip, the
//! `client-output-buffer-limit pubsub` cut-off). So each node checks every room message
//! against the last offset it delivered:
//!
//! - the next offset is delivered; an offset already delivered is dropped (a duplicate);
//! - a jump (last + 1 < offset), or another epoch, starts a *gap*: the room's messages wait
//!   in a bounded buffer while the node reads everything after its last offset from the
//!   room's stream ([`CatchUp`]), then the fetched messages and the held ones go out in
//!   order, without duplicates;
//! - after the subscription comes back, every room with local members is caught up the
//!   same way ([`Hub::catch_up_all`]), so the tail of what was published meanwhile arrives
//!   even if nothing follows it;
//! - what cannot be filled (trimmed from the stream, lost with Redis, a new epoch, or the
//!   buffer full) is announced to the room's members with a `reset` before delivery goes
//!   on: never a silent hole.
//!
//! A node that has members in a room but no position for it yet asks Redis for the room's
//! last offset when the first of them joins ([`Hub::learn_position`]): a message lost on the
//! way before the first one that arrives is then a gap like any other. A room that had no
//! messages at all when asked is remembered as such (offset 0 of no epoch): its first
//! message must be offset 1 of whatever epoch Redis starts, else the stream is read from
//! its beginning.

use std::rc::Rc;

use serde_json::value::RawValue;

use super::feeds::{Stream, history_key};
use super::messages::{self, Reset};
use super::remote::{Fetched, RemoteMessage};
use super::request::Since;
use super::{CatchUp, Hub, Outbox, Routed};

/// The most bytes of bus messages held, over all rooms, while gaps are read from Redis;
/// past it, the fullest room gives up waiting: a `reset`, then what it holds.
pub(super) const MAX_HELD_BYTES: usize = 16 << 20;

/// What a message costs in the buffer beyond its payload (head, offsets, names).
const HELD_OVERHEAD: usize = 256;

/// A room whose bus messages wait while the gap after `since` is read from Redis.
#[derive(Debug)]
pub(super) struct Gap {
    /// The last position delivered here.
    since: Since,
    /// Messages that arrived meanwhile, in arrival order.
    held: Vec<RemoteMessage>,
    /// Their size, counted in `Hub::held_bytes` too.
    bytes: usize,
    /// A read is in flight (false: it failed; retried when the publisher reconnects).
    fetching: bool,
    /// Only the room's position is asked for (a first member joined; `since` is empty).
    baseline: bool,
    /// The bus subscription dropped while that position was asked for: messages published
    /// after the join may have been lost on the way and counted in the answer.
    tainted: bool,
}

impl Hub {
    /// Delivers a message from the bus: a message with an offset goes through the gap check
    /// of its room or feed, everything else straight to its recipients. Returns local
    /// recipients.
    pub fn on_remote(&mut self, message: &RemoteMessage, out: &mut Outbox) -> usize {
        match &message.position {
            Some((offset, epoch)) if self.history.enabled() => {
                let key = history_key(&message.target).into_owned();
                self.sequence(&key, *offset, &epoch.clone(), message, out)
            }
            _ => self.deliver_remote(message, out),
        }
    }

    /// Delivers a message to local recipients (and history), unchecked.
    fn deliver_remote(&mut self, message: &RemoteMessage, out: &mut Outbox) -> usize {
        let position = message.position.as_ref().map(|(o, e)| (*o, e.as_str()));
        let Ok(payload) = RawValue::from_string(message.payload.clone()) else {
            return 0;
        };
        let publication = message.publication(&payload, position);
        match self.deliver(&publication, out) {
            Routed::Delivered { recipients, .. } => recipients,
            Routed::Published => 0,
        }
    }

    /// The gap check for one room message at `offset` of `epoch`.
    fn sequence(
        &mut self,
        room: &str,
        offset: u64,
        epoch: &str,
        message: &RemoteMessage,
        out: &mut Outbox,
    ) -> usize {
        if self.gaps.contains_key(room) {
            self.hold(room, message, out);
            return 0;
        }
        let Some((last, current)) = self.history.position(room) else {
            return self.deliver_remote(message, out);
        };
        if current.is_empty() && offset == 1 {
            // The room was empty when this node asked: this is its very first message.
            return self.deliver_remote(message, out);
        }
        if *current == *epoch {
            if offset <= last && !self.history.has_entries(room) {
                // The position came from Redis (a join's read, a reset) and nothing was
                // delivered since: this message was in Redis when it was read but still on
                // its way here. The bus keeps order, so the ones after it follow.
                return self.deliver_remote(message, out);
            }
            if offset <= last {
                return 0; // Delivered already (a replay of the catch-up and the live feed).
            }
            if offset == last + 1 {
                return self.deliver_remote(message, out);
            }
        }
        if !self.has_subscribers(room) {
            // Nobody here to tell: start the local history afresh, without a hole in it.
            self.history.restart(room, epoch, offset.saturating_sub(1));
            return self.deliver_remote(message, out);
        }
        let since = Since {
            offset: last,
            epoch: current.to_string(),
        };
        self.open_gap(room, since, out);
        self.hold(room, message, out);
        0
    }

    /// Asks Redis for the room's position when this node has members in it but knows none
    /// (call on join); the room's messages wait meanwhile, as for a gap.
    pub(super) fn learn_position(&mut self, room: &str, out: &mut Outbox) {
        if !self.bus
            || !self.history.enabled()
            || self.gaps.contains_key(room)
            || self.history.position(room).is_some()
        {
            return;
        }
        let since = Since {
            offset: 0,
            epoch: String::new(),
        };
        self.read_from_redis(room, since, true, out);
    }

    /// Starts reading `room` from Redis after `since`; its messages wait meanwhile.
    fn open_gap(&mut self, room: &str, since: Since, out: &mut Outbox) {
        self.read_from_redis(room, since, false, out);
    }

    /// Asks Redis for the room's position (`baseline`) or for what follows `since`; the
    /// room's bus messages wait meanwhile.
    fn read_from_redis(&mut self, room: &str, since: Since, baseline: bool, out: &mut Outbox) {
        out.catch_ups.push(CatchUp {
            room: room.to_owned(),
            since: since.clone(),
            position_only: baseline,
        });
        let gap = Gap {
            since,
            held: Vec::new(),
            bytes: 0,
            fetching: true,
            baseline,
            tainted: false,
        };
        self.gaps.insert(Rc::from(room), gap);
    }

    /// Keeps a message until the room's gap is filled; over the bound, gives up on the
    /// fullest gap.
    fn hold(&mut self, room: &str, message: &RemoteMessage, out: &mut Outbox) {
        let size = message.payload.len() + HELD_OVERHEAD;
        if let Some(gap) = self.gaps.get_mut(room) {
            gap.held.push(message.clone());
            gap.bytes += size;
            self.held_bytes += size;
        }
        while self.held_bytes > MAX_HELD_BYTES {
            let fullest = self
                .gaps
                .iter()
                .max_by_key(|(_, g)| g.bytes)
                .map(|(r, _)| r.clone());
            let Some(fullest) = fullest else { break };
            self.give_up(&fullest, out);
        }
    }

    /// Stops waiting for a room's gap: `reset`, then the held messages.
    fn give_up(&mut self, room: &str, out: &mut Outbox) {
        let Some(gap) = self.take_gap(room) else {
            return;
        };
        log::warn!(
            "room {room}: gap after offset {} not filled; members told to reset",
            gap.since.offset
        );
        if let Some((offset, epoch)) = gap.held.first().and_then(|m| m.position.clone()) {
            self.reset(room, &epoch, offset.saturating_sub(1), out);
        }
        for message in &gap.held {
            self.on_remote(message, out);
        }
    }

    fn take_gap(&mut self, room: &str) -> Option<Gap> {
        let gap = self.gaps.remove(room)?;
        self.held_bytes -= gap.bytes;
        Some(gap)
    }

    /// Tells the room's members that delivery goes on after `offset` of `epoch` and that
    /// what came before could not all be delivered; the local history restarts there.
    fn reset(&mut self, room: &str, epoch: &str, offset: u64, out: &mut Outbox) {
        self.history.restart(room, epoch, offset);
        let stream = Stream::of_key(room);
        let frame = messages::encode(&Reset {
            kind: "reset",
            room: stream.feed_name().is_none().then_some(room),
            feed: stream.feed_name(),
            epoch,
            offset,
        });
        out.send_all(self.subscribers(room), &frame);
    }

    /// What Redis held after a gap's `since` (`None`: it could not be read; retried when
    /// the publisher reconnects). Delivers what is missing, signals what is lost, then
    /// releases the held messages.
    pub fn finish_catch_up(
        &mut self,
        room: &str,
        since: &Since,
        fetched: Option<Fetched>,
        out: &mut Outbox,
    ) {
        if !self.gaps.get(room).is_some_and(|g| g.since == *since) {
            return; // Given up meanwhile.
        }
        let Some(fetched) = fetched else {
            if let Some(gap) = self.gaps.get_mut(room) {
                gap.fetching = false;
            }
            return;
        };
        let Some(gap) = self.take_gap(room) else {
            return;
        };
        if gap.baseline {
            return self.settle_baseline(room, &fetched, &gap, out);
        }
        let first = fetched.entries.first().and_then(|m| m.position.clone());
        // From a room that was empty, any epoch continues (Redis started the room's first).
        let continuous = (fetched.epoch == since.epoch || since.epoch.is_empty())
            && first
                .as_ref()
                .map_or(fetched.last <= since.offset, |(o, _)| {
                    *o == since.offset + 1
                });
        if !continuous {
            let next = first.or_else(|| gap.held.first().and_then(|m| m.position.clone()));
            match next {
                Some((offset, epoch)) => self.reset(room, &epoch, offset.saturating_sub(1), out),
                None if !fetched.epoch.is_empty() => {
                    self.reset(room, &fetched.epoch, fetched.last, out);
                }
                None => {}
            }
        }
        for message in fetched.entries.iter().chain(&gap.held) {
            self.on_remote(message, out);
        }
    }

    /// The room's position arrived: it starts before the first message held meanwhile (or
    /// at Redis's last offset if none came), unless the node learned one some other way.
    /// If the subscription dropped meanwhile (`tainted`), messages before that position
    /// may have been published after the join and lost on the way: the members are told
    /// with a `reset` there, unless the room had none.
    fn settle_baseline(&mut self, room: &str, fetched: &Fetched, gap: &Gap, out: &mut Outbox) {
        if self.history.position(room).is_none() {
            let start = match gap.held.first().and_then(|m| m.position.clone()) {
                Some((offset, epoch)) => Some((offset.saturating_sub(1), epoch)),
                None if !fetched.epoch.is_empty() => Some((fetched.last, fetched.epoch.clone())),
                None => None,
            };
            match start {
                Some((offset, epoch)) if gap.tainted && offset > 0 => {
                    log::warn!(
                        "room {room}: the bus dropped while its position was read; members \
                         told to reset at {offset}"
                    );
                    self.reset(room, &epoch, offset, out);
                }
                Some((offset, epoch)) => self.history.restart(room, &epoch, offset),
                // No epoch: the room has had no message yet. Its first must be offset 1.
                None => self.history.restart(room, "", 0),
            }
        }
        for message in &gap.held {
            self.on_remote(message, out);
        }
    }

    /// Asks again for the gaps whose read failed (call when the publisher reconnects).
    pub fn retry_gaps(&mut self, out: &mut Outbox) {
        for (room, gap) in &mut self.gaps {
            if !gap.fetching {
                gap.fetching = true;
                out.catch_ups.push(CatchUp {
                    room: room.to_string(),
                    since: gap.since.clone(),
                    position_only: gap.baseline,
                });
            }
        }
    }

    /// Catches up every room and feed with local subscribers from the last offset
    /// delivered here (call when the bus subscription is back: what was published
    /// meanwhile never came).
    pub fn catch_up_all(&mut self, out: &mut Outbox) {
        for room in self.subscribed_streams() {
            if let Some(gap) = self.gaps.get_mut(room.as_str()) {
                // A read in flight covers the room, but a position being read may now
                // count messages this node never got.
                gap.tainted |= gap.baseline;
                continue;
            }
            if let Some((last, epoch)) = self.history.position(&room) {
                let since = Since {
                    offset: last,
                    epoch: epoch.to_string(),
                };
                self.open_gap(&room, since, out);
            }
        }
    }

    /// Rooms waiting for a gap to be filled, for metrics.
    pub fn gap_count(&self) -> usize {
        self.gaps.len()
    }
}
