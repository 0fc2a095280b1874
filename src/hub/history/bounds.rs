//! The history's bounds: rooms, bytes and time, each enforced without scanning every room.
//!
//! Rooms sit in `order` by their last write (`touched`), so the least recently written is
//! the first entry of a `BTreeSet`: evicting it for a new room (`max_rooms`) or for space
//! (`max_bytes`) is O(log n). Expiry walks the same order from the front and stops at the
//! first room whose newest message is still within the TTL, so it costs O(rooms freed).
//!
//! A `join` reports the room's position so the client can recover later; for a room with
//! no history it only *reserves* an epoch (`touched` 0, no messages, first in line to go).
//! A reservation is made only when the table has space or another reservation can make
//! way, so joins of made-up rooms, however many, never push out a real room's messages.

use std::collections::VecDeque;
use std::rc::Rc;

use super::{History, RoomLog, new_epoch};

/// `touched` of a reserved epoch: before every room that was written.
const RESERVED: u64 = 0;

impl History {
    /// Bytes of frames held, all rooms together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Reserves a fresh epoch for `room` (see the module docs); `None` when that would
    /// push out a room with messages.
    pub(super) fn reserve(&mut self, room: &str) -> Option<(u64, Rc<str>)> {
        if self.rooms.len() >= self.config.max_rooms {
            match self.order.first() {
                Some((RESERVED, _)) => self.evict_first(),
                _ => return None,
            }
        }
        let epoch = new_epoch();
        self.insert(room.into(), epoch.clone(), RESERVED);
        Some((0, epoch))
    }

    /// Adds an empty room log, last written at `touched`.
    pub(super) fn insert(&mut self, room: Rc<str>, epoch: Rc<str>, touched: u64) {
        self.order.insert((touched, room.clone()));
        let log = RoomLog {
            epoch,
            last: 0,
            entries: VecDeque::new(),
            touched,
            bytes: 0,
        };
        self.rooms.insert(room, log);
    }

    /// Marks `room` written at `touched`. Already the most recently written (a busy room),
    /// it keeps its place and its key: nothing to do.
    pub(super) fn retouch(&mut self, room: &str, touched: u64) {
        if self.order.last().is_some_and(|(_, last)| **last == *room) {
            return;
        }
        let Some((name, log)) = self.rooms.get_key_value(room) else {
            return;
        };
        let name = name.clone();
        self.order.remove(&(log.touched, name.clone()));
        self.order.insert((touched, name));
        if let Some(log) = self.rooms.get_mut(room) {
            log.touched = touched;
        }
    }

    /// Drops `room`'s history, if any.
    pub(super) fn forget(&mut self, room: &str) {
        if let Some((name, log)) = self.rooms.remove_entry(room) {
            self.order.remove(&(log.touched, name));
            self.bytes -= log.bytes;
        }
    }

    /// Drops the least recently written room (a reservation first).
    ///
    /// Every change of `rooms` goes through [`Self::insert`], [`Self::retouch`] and
    /// [`Self::forget`], which keep `order` in step; should an entry be stale anyway (a room
    /// removed some other way), it is skipped rather than taken for the live room.
    fn evict_first(&mut self) {
        while let Some((touched, room)) = self.order.pop_first() {
            let live = self
                .rooms
                .get(&room)
                .is_some_and(|log| log.touched == touched);
            debug_assert!(live, "history order entry for {room} is stale");
            if live && let Some(log) = self.rooms.remove(&room) {
                self.bytes -= log.bytes;
                return;
            }
        }
    }

    /// Makes space for a new room when `max_rooms` are kept.
    pub(super) fn evict_if_full(&mut self, incoming: &str) {
        if self.rooms.len() >= self.config.max_rooms && !self.rooms.contains_key(incoming) {
            self.evict_first();
        }
    }

    /// Forgets the least recently written rooms other than `current` while over
    /// `max_bytes`; then, if `current` alone is over, its oldest messages (keeping the
    /// newest).
    pub(super) fn enforce_max_bytes(&mut self, current: &str) {
        while self.bytes > self.config.max_bytes {
            let victim = self
                .order
                .iter()
                .take(2)
                .find(|(_, room)| **room != *current)
                .map(|(_, room)| room.clone());
            match victim {
                Some(room) => self.forget(&room),
                None => return self.trim(current),
            }
        }
    }

    /// Drops `room`'s oldest messages while over `max_bytes`, keeping its newest.
    fn trim(&mut self, room: &str) {
        let Some(log) = self.rooms.get_mut(room) else {
            return;
        };
        while self.bytes > self.config.max_bytes && log.entries.len() > 1 {
            let freed = log.entries.pop_front().map_or(0, |e| e.frame.len());
            log.bytes -= freed;
            self.bytes -= freed;
        }
    }

    /// Frees every room whose newest message is older than the TTL at `now_ms`, from the
    /// least recently written on, stopping at the first that is not (run on a timer, so
    /// expired history does not wait for a reader to be freed).
    pub fn expire(&mut self, now_ms: u64) {
        let ttl = u64::try_from(self.config.ttl.as_millis()).unwrap_or(u64::MAX);
        let from = (RESERVED + 1, Rc::<str>::from(""));
        while let Some((_, room)) = self.order.range(from.clone()..).next() {
            let newest = self.rooms.get(room).and_then(|log| log.entries.back());
            if newest.is_some_and(|e| now_ms.saturating_sub(e.at_ms) <= ttl) {
                return;
            }
            let room = room.clone();
            self.forget(&room);
        }
    }
}

impl crate::hub::Hub {
    /// Frees room history past its TTL (the server calls this every minute).
    pub fn expire_history(&mut self, now: crate::hub::Now) {
        self.history.expire(crate::hub::time::unix_millis(now.wall));
    }
}
