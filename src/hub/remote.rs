//! Messages from other nodes (the cluster bus) and recovery from Redis-held history.
//!
//! Clustered, every node, the publishing one included, delivers each message when it comes
//! back from the bus, so all nodes see the same order and the same history offsets (which
//! Redis assigns). Each node also keeps the bus-fed history in memory, so most recoveries
//! are served locally; when the local copy does not reach back far enough (a node that just
//! started), the join waits for the history fetched from Redis, while live messages for
//! that member are held back and released after the replay without duplicates.

use std::rc::Rc;

use serde_json::value::RawValue;

use super::delivery::delivery_frame;
use super::feeds::Stream;
use super::history::Entry;
use super::messages::{self, Membership, Synced};
use super::publish::OwnedTarget;
use super::request::Since;
use super::{Hub, Outbox, Publication};
use crate::id::ConnId;
use crate::protocol::frame::SharedFrame;

/// A message as it travels between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMessage {
    /// The `type` recipients see.
    pub kind: String,
    /// Who receives it.
    pub target: OwnedTarget,
    /// The sender's user id.
    pub sender: String,
    /// RFC 3339 acceptance time.
    pub timestamp: String,
    /// Acceptance time, Unix milliseconds.
    pub at_ms: u64,
    /// History position assigned by Redis: (offset, epoch).
    pub position: Option<(u64, String)>,
    /// Raw JSON payload.
    pub payload: String,
}

impl RemoteMessage {
    /// The message as a [`Publication`], with its payload parsed by the caller.
    pub(super) fn publication<'a>(
        &'a self,
        payload: &'a RawValue,
        position: Option<(u64, &'a str)>,
    ) -> Publication<'a> {
        Publication {
            kind: &self.kind,
            target: self.target.as_target(),
            sender: &self.sender,
            payload,
            timestamp: &self.timestamp,
            at_ms: self.at_ms,
            position,
        }
    }
}

/// A join whose history is being fetched from Redis.
#[derive(Debug)]
pub(super) struct Pending {
    /// The join's request id, for the deferred `joined`.
    pub(super) id: Option<Box<RawValue>>,
    /// Room frames that arrived meanwhile, with their offsets.
    pub(super) held: Vec<(u64, SharedFrame)>,
    /// Their bytes, held to `max_held_bytes`.
    pub(super) held_bytes: usize,
}

/// What Redis held for a recovering join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The room's current epoch.
    pub epoch: String,
    /// The room's last offset.
    pub last: u64,
    /// Messages after the client's offset, oldest first.
    pub entries: Vec<RemoteMessage>,
}

impl Hub {
    /// Sends new messages through the cluster bus (`true`) or straight to local recipients.
    pub fn set_bus(&mut self, on: bool) {
        self.bus = on;
    }

    /// Holds a join until its history arrives from Redis.
    pub(super) fn await_fetch(
        &mut self,
        conn: ConnId,
        room: &str,
        since: &Since,
        id: Option<&RawValue>,
        out: &mut Outbox,
    ) {
        let pending = Pending {
            id: id.map(|v| v.to_owned()),
            held: Vec::new(),
            held_bytes: 0,
        };
        self.recovering.insert((conn, Rc::from(room)), pending);
        out.fetches.push(super::FetchRequest {
            conn,
            room: room.to_owned(),
            since: since.clone(),
        });
    }

    /// Completes a held join: `joined` with `recovered`, the replay, then what was held back
    /// (after the replay's last offset, so nothing twice). `None`: Redis could not answer.
    pub fn finish_fetch(
        &mut self,
        conn: ConnId,
        room: &str,
        since: &Since,
        fetched: Option<Fetched>,
        out: &mut Outbox,
    ) {
        let Some(pending) = self.recovering.remove(&(conn, Rc::from(room))) else {
            return;
        };
        if !self.subscribes(conn, room) {
            return;
        }
        let (recovered, epoch, last, replay) = match fetched {
            Some(f) => {
                let complete = f.epoch == since.epoch
                    && since.offset <= f.last
                    && f.entries.first().map_or(f.last == since.offset, |e| {
                        e.position.as_ref().map(|p| p.0) == Some(since.offset + 1)
                    });
                let frames = if complete {
                    self.remember(room, &f.entries)
                } else {
                    Vec::new()
                };
                (complete, Some(f.epoch), f.last, frames)
            }
            None => (false, None, 0, Vec::new()),
        };
        let reply = match Stream::of_key(room).feed_name() {
            Some(feed) => messages::encode(&Synced {
                kind: "synced",
                id: pending.id.as_deref(),
                feed,
                recovered: Some(recovered),
                epoch: epoch.as_deref(),
                offset: epoch.as_ref().map(|_| last),
            }),
            None => {
                if self.rooms.get(room).is_none() {
                    return;
                }
                messages::encode(&Membership {
                    kind: "joined",
                    id: pending.id.as_deref(),
                    room,
                    members: self.member_count(room),
                    users: Some(self.listed_users(room)),
                    recovered: Some(recovered),
                    epoch: epoch.as_deref(),
                    offset: epoch.as_ref().map(|_| last),
                    reason: None,
                })
            }
        };
        out.send(conn, reply);
        // Where this member now stands: after the replay, or (not recovered) where the
        // `joined` above told it delivery goes on.
        let replayed_to = match (&epoch, recovered) {
            (Some(_), true) => replay.last().map_or(since.offset, |(offset, _)| *offset),
            (Some(_), false) => last,
            (None, _) => since.offset,
        };
        if let Some(epoch) = &epoch {
            // Redis may be ahead of what this node has delivered (messages still on the
            // bus, a gap being filled, a subscription not yet known to be lost): when the
            // node delivers those, this member must not get them a second time.
            self.replayed
                .entry(Rc::from(room))
                .or_default()
                .insert(conn, (replayed_to, Rc::from(epoch.as_str())));
        }
        for (_, frame) in replay {
            out.send(conn, frame);
        }
        for (offset, frame) in pending.held {
            if offset == 0 || offset > replayed_to {
                out.send(conn, frame);
            }
        }
    }

    /// Builds the frames of fetched messages; keeps them in the local history only when it
    /// has none for the room (otherwise the bus and the gap check keep it: recording here
    /// would move its last offset past messages its members never got).
    fn remember(&mut self, room: &str, entries: &[RemoteMessage]) -> Vec<(u64, SharedFrame)> {
        let keep = self.history.position(room).is_none();
        let mut frames = Vec::with_capacity(entries.len());
        for message in entries {
            let Some((offset, epoch)) = &message.position else {
                continue;
            };
            let Ok(payload) = RawValue::from_string(message.payload.clone()) else {
                continue;
            };
            let publication = message.publication(&payload, None);
            let frame = delivery_frame(&publication, Some((*offset, epoch)));
            frames.push((*offset, frame.clone()));
            if !keep {
                continue;
            }
            self.history.record(
                room,
                epoch,
                Entry {
                    offset: *offset,
                    at_ms: message.at_ms,
                    frame,
                },
            );
        }
        frames
    }
}
