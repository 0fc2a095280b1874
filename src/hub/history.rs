//! Room history: the recent messages of each room, with offsets, so a client that
//! reconnects can get what it missed (`join` with `since`).
//!
//! Every room message gets a per-room `offset` that only increases and the room's `epoch`,
//! a random name for one continuous history. When history is lost (a restart without a
//! history directory, Redis losing its data) the epoch changes, and a client whose `since`
//! names the old epoch is told `recovered: false`: it must reload rather than trust a gap.
//!
//! The cache is plain data: bounded to `size` messages per room, `max_rooms` rooms and
//! `max_bytes` of frames in all (the least recently written room is forgotten first, found
//! in O(log n), see `bounds`); entries older than `ttl` are not replayed, and rooms whose
//! newest entry is older are freed by [`History::expire`], which the server runs on a timer.
//! A `join` never stores anything: it may only reserve an epoch for an empty room, and such
//! reservations never push out a room's real history. Writing to disk or to Redis is the
//! server's business.

mod bounds;
#[cfg(test)]
mod bounds_tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use super::request::Since;
use crate::protocol::frame::SharedFrame;

/// History settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Messages kept per room; 0 turns history (and offsets) off. Default: 100.
    pub size: usize,
    /// Messages older than this are not replayed. Default: 1 h.
    pub ttl: Duration,
    /// Rooms whose history is kept; the least recently written is forgotten first.
    /// Default: 10,000.
    pub max_rooms: usize,
    /// Bytes of stored frames, all rooms together; over it the least recently written
    /// rooms are forgotten first. Default: 64 MiB.
    pub max_bytes: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            size: 100,
            ttl: Duration::from_secs(3600),
            max_rooms: 10_000,
            max_bytes: 64 << 20,
        }
    }
}

/// One stored message.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its offset in the room.
    pub offset: u64,
    /// When it was accepted, Unix milliseconds.
    pub at_ms: u64,
    /// The delivered frame, shared with the live delivery.
    pub frame: SharedFrame,
}

/// One room's history.
#[derive(Debug)]
struct RoomLog {
    epoch: Rc<str>,
    /// The offset of the last message written (0: none yet).
    last: u64,
    entries: VecDeque<Entry>,
    /// A counter value from the last write, for least-recently-written eviction; 0 for an
    /// epoch a join reserved (nothing written yet).
    touched: u64,
    /// Bytes of the frames in `entries`.
    bytes: usize,
}

/// What `since` gets a client.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// Everything after `since` is here: these frames, oldest first (maybe none).
    Replay(Vec<SharedFrame>),
    /// The history does not reach back that far, or the epoch changed.
    Lost,
}

/// The history of every room.
#[derive(Debug, Default)]
pub struct History {
    config: HistoryConfig,
    rooms: HashMap<Rc<str>, RoomLog>,
    writes: u64,
    /// Bytes of all stored frames.
    bytes: usize,
    /// Rooms by `touched`: the least recently written first (reservations before them).
    order: BTreeSet<(u64, Rc<str>)>,
}

impl History {
    /// An empty history.
    pub fn new(config: HistoryConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Whether history is kept at all.
    pub fn enabled(&self) -> bool {
        self.config.size > 0
    }

    /// The next position in `room`: its epoch (created on first use) and the next offset.
    pub fn next_position(&mut self, room: &str) -> (u64, Rc<str>) {
        if let Some(log) = self.rooms.get(room) {
            // Not a write yet: `record` marks the room written.
            return (log.last + 1, log.epoch.clone());
        }
        let log = self.log_mut(room, None);
        (log.last + 1, log.epoch.clone())
    }

    /// The room's last offset and epoch, reserving an epoch (nothing stored) if it has no
    /// history and there is room for one without forgetting any room's messages; `None`
    /// otherwise (a `join`: see `bounds`).
    pub fn ensure(&mut self, room: &str) -> Option<(u64, Rc<str>)> {
        self.position(room).or_else(|| self.reserve(room))
    }

    /// Whether the room's history holds any message (a position learned from Redis, or
    /// set by a `reset`, holds none until the next one is delivered).
    pub fn has_entries(&self, room: &str) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|log| !log.entries.is_empty())
    }

    /// The room's epoch and last offset, if it has history.
    pub fn position(&self, room: &str) -> Option<(u64, Rc<str>)> {
        self.rooms
            .get(room)
            .map(|log| (log.last, log.epoch.clone()))
    }

    /// Stores a message at `offset` of `epoch` (a new epoch starts the room afresh).
    pub fn record(&mut self, room: &str, epoch: &str, entry: Entry) {
        let size = self.config.size;
        if size == 0 {
            return;
        }
        let log = self.log_mut(room, Some(epoch));
        if entry.offset <= log.last && !log.entries.is_empty() {
            return; // Already have it (a replayed or duplicate bus message).
        }
        log.last = entry.offset;
        let added = entry.frame.len();
        log.entries.push_back(entry);
        let mut freed = 0;
        while log.entries.len() > size {
            freed += log.entries.pop_front().map_or(0, |e| e.frame.len());
        }
        log.bytes = log.bytes + added - freed;
        self.bytes = self.bytes + added - freed;
        self.enforce_max_bytes(room);
    }

    /// Removes the newest message of `room` if it is `offset` of `epoch` (its write to the
    /// history log failed): the offset will be given to the next message.
    pub fn unrecord(&mut self, room: &str, epoch: &str, offset: u64) {
        let Some(log) = self.rooms.get_mut(room) else {
            return;
        };
        if *log.epoch != *epoch || log.last != offset {
            return;
        }
        if log.entries.back().is_some_and(|e| e.offset == offset) {
            let freed = log.entries.pop_back().map_or(0, |e| e.frame.len());
            log.bytes -= freed;
            self.bytes -= freed;
        }
        log.last = offset.saturating_sub(1);
    }

    /// Starts the room's history afresh at `last` of `epoch`, with no entries: what came
    /// before could not be kept continuous (a `reset`), so no replay may reach across it.
    pub fn restart(&mut self, room: &str, epoch: &str, last: u64) {
        if self.config.size == 0 {
            return;
        }
        self.forget(room);
        let log = self.log_mut(room, Some(epoch));
        log.last = last;
    }

    /// What a client that last saw `since` in `room` can get, at `now_ms`.
    pub fn recover(&self, room: &str, since: &Since, now_ms: u64) -> Recovery {
        let Some(log) = self.rooms.get(room) else {
            return Recovery::Lost;
        };
        if *log.epoch != *since.epoch || since.offset > log.last {
            return Recovery::Lost;
        }
        let oldest = self.oldest_live(log, now_ms);
        if since.offset < log.last && oldest.is_none_or(|first| first > since.offset + 1) {
            return Recovery::Lost;
        }
        let frames = log
            .entries
            .iter()
            .filter(|e| e.offset > since.offset)
            .map(|e| e.frame.clone())
            .collect();
        Recovery::Replay(frames)
    }

    /// The room's epoch, last offset and up to `limit` of its frames after offset `since`
    /// that are still within the TTL at `now_ms`, oldest first (`None`: no history).
    pub fn entries_after(
        &self,
        room: &str,
        since: u64,
        limit: usize,
        now_ms: u64,
    ) -> Option<(Rc<str>, u64, Vec<SharedFrame>)> {
        let log = self.rooms.get(room)?;
        let oldest = self.oldest_live(log, now_ms).unwrap_or(u64::MAX);
        let frames = log
            .entries
            .iter()
            .filter(|e| e.offset > since && e.offset >= oldest)
            .take(limit)
            .map(|e| e.frame.clone())
            .collect();
        Some((log.epoch.clone(), log.last, frames))
    }

    /// The offset of the oldest entry still within the TTL.
    fn oldest_live(&self, log: &RoomLog, now_ms: u64) -> Option<u64> {
        let ttl = u64::try_from(self.config.ttl.as_millis()).unwrap_or(u64::MAX);
        log.entries
            .iter()
            .find(|e| now_ms.saturating_sub(e.at_ms) <= ttl)
            .map(|e| e.offset)
    }

    /// The room's log, created (with `epoch`, or a fresh random one) if missing; a different
    /// `epoch` replaces it.
    fn log_mut(&mut self, room: &str, epoch: Option<&str>) -> &mut RoomLog {
        self.writes += 1;
        let writes = self.writes;
        let stale = epoch.is_some_and(|e| self.rooms.get(room).is_some_and(|log| *log.epoch != *e));
        if stale || !self.rooms.contains_key(room) {
            self.forget(room);
            self.evict_if_full(room);
            let epoch: Rc<str> = epoch.map_or_else(new_epoch, Rc::from);
            self.insert(room.into(), epoch, writes);
        } else {
            self.retouch(room, writes);
        }
        self.rooms.get_mut(room).expect("inserted above")
    }

    /// Rooms with history, for metrics.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }
}

/// A fresh epoch: 8 random bytes in hex.
pub fn new_epoch() -> Rc<str> {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = (t.as_nanos() as u64).to_be_bytes();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> SharedFrame {
        SharedFrame::from(n.to_be_bytes().to_vec())
    }

    fn write(h: &mut History, room: &str, at_ms: u64) -> u64 {
        let (offset, epoch) = h.next_position(room);
        h.record(
            room,
            &epoch,
            Entry {
                offset,
                at_ms,
                frame: frame(offset),
            },
        );
        offset
    }

    fn since(offset: u64, epoch: &str) -> Since {
        Since {
            offset,
            epoch: epoch.into(),
        }
    }

    fn replayed(r: Recovery) -> Vec<u64> {
        match r {
            Recovery::Replay(frames) => frames
                .iter()
                .map(|f| u64::from_be_bytes(f[..8].try_into().unwrap()))
                .collect(),
            Recovery::Lost => panic!("expected a replay"),
        }
    }

    #[test]
    fn offsets_increase_per_room() {
        let mut h = History::new(HistoryConfig::default());
        assert_eq!(
            (
                write(&mut h, "a", 0),
                write(&mut h, "a", 0),
                write(&mut h, "b", 0)
            ),
            (1, 2, 1)
        );
        assert_ne!(
            h.position("a").unwrap().1,
            h.position("b").unwrap().1,
            "epochs are per room"
        );
    }

    #[test]
    fn recovery_replays_what_was_missed() {
        let mut h = History::new(HistoryConfig {
            size: 5,
            ..HistoryConfig::default()
        });
        for _ in 0..8 {
            write(&mut h, "r", 1000);
        }
        let epoch = h.position("r").unwrap().1;
        assert_eq!(replayed(h.recover("r", &since(5, &epoch), 1000)), [6, 7, 8]);
        assert_eq!(
            replayed(h.recover("r", &since(3, &epoch), 1000)),
            [4, 5, 6, 7, 8]
        );
        assert_eq!(
            replayed(h.recover("r", &since(8, &epoch), 1000)),
            Vec::<u64>::new()
        );
        assert!(
            matches!(h.recover("r", &since(2, &epoch), 1000), Recovery::Lost),
            "too far back"
        );
        assert!(
            matches!(h.recover("r", &since(5, "other"), 1000), Recovery::Lost),
            "epoch changed"
        );
        assert!(
            matches!(h.recover("r", &since(9, &epoch), 1000), Recovery::Lost),
            "from the future"
        );
        assert!(matches!(
            h.recover("nope", &since(0, &epoch), 1000),
            Recovery::Lost
        ));
    }

    #[test]
    fn expired_entries_are_not_replayed() {
        let mut h = History::new(HistoryConfig {
            ttl: Duration::from_secs(10),
            ..HistoryConfig::default()
        });
        write(&mut h, "r", 0);
        write(&mut h, "r", 60_000);
        let epoch = h.position("r").unwrap().1;
        assert!(matches!(
            h.recover("r", &since(0, &epoch), 65_000),
            Recovery::Lost
        ));
        assert_eq!(replayed(h.recover("r", &since(1, &epoch), 65_000)), [2]);
    }

    #[test]
    fn a_new_epoch_starts_afresh_and_duplicates_are_ignored() {
        let mut h = History::new(HistoryConfig::default());
        h.record(
            "r",
            "e1",
            Entry {
                offset: 1,
                at_ms: 0,
                frame: frame(1),
            },
        );
        h.record(
            "r",
            "e1",
            Entry {
                offset: 1,
                at_ms: 0,
                frame: frame(1),
            },
        );
        h.record(
            "r",
            "e1",
            Entry {
                offset: 2,
                at_ms: 0,
                frame: frame(2),
            },
        );
        assert_eq!(replayed(h.recover("r", &since(0, "e1"), 0)), [1, 2]);
        h.record(
            "r",
            "e2",
            Entry {
                offset: 1,
                at_ms: 0,
                frame: frame(1),
            },
        );
        assert!(matches!(h.recover("r", &since(2, "e1"), 0), Recovery::Lost));
        assert_eq!(
            h.position("r").map(|(o, e)| (o, e.to_string())),
            Some((1, "e2".into()))
        );
    }

    #[test]
    fn a_restart_replays_nothing_from_before_it() {
        let mut h = History::new(HistoryConfig::default());
        write(&mut h, "r", 0);
        h.restart("r", "e2", 7);
        assert_eq!(
            h.position("r").map(|(o, e)| (o, e.to_string())),
            Some((7, "e2".into()))
        );
        assert!(matches!(h.recover("r", &since(3, "e2"), 0), Recovery::Lost));
        assert_eq!(
            replayed(h.recover("r", &since(7, "e2"), 0)),
            Vec::<u64>::new()
        );
    }

    #[test]
    fn rooms_are_bounded() {
        let mut h = History::new(HistoryConfig {
            max_rooms: 2,
            ..HistoryConfig::default()
        });
        write(&mut h, "a", 0);
        write(&mut h, "b", 0);
        write(&mut h, "a", 0);
        write(&mut h, "c", 0);
        assert_eq!(h.room_count(), 2);
        assert!(
            h.position("b").is_none(),
            "least recently written is forgotten"
        );
    }

    #[test]
    fn size_zero_is_off() {
        let mut h = History::new(HistoryConfig {
            size: 0,
            ..HistoryConfig::default()
        });
        assert!(!h.enabled());
        h.record(
            "r",
            "e",
            Entry {
                offset: 1,
                at_ms: 0,
                frame: frame(1),
            },
        );
        assert!(h.position("r").is_none());
    }
}
