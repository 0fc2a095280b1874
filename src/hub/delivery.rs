//! Delivering a message to its local recipients: encoded once, one shared frame for all;
//! every message gets its room's or feed's history position first (when history is on).

use std::rc::Rc;

use super::feeds::Stream;
use super::history::Entry;
use super::outbox::{BusRequest, Origin, Persist};
use super::publish::OwnedTarget;
use super::remote::RemoteMessage;
use super::{Hub, Outbox, Publication, Routed, Target, messages};
use crate::id::ConnId;
use crate::protocol::CloseCode;
use crate::protocol::frame::SharedFrame;

impl Hub {
    /// Puts a message read back from the history log into the room's history.
    pub fn restore(&mut self, room: &str, epoch: &str, offset: u64, at_ms: u64, json: &str) {
        let frame =
            crate::protocol::frame::shared_frame(crate::protocol::OpCode::Text, json.as_bytes());
        self.history.record(
            room,
            epoch,
            Entry {
                offset,
                at_ms,
                frame,
            },
        );
    }

    /// Takes back a message whose history-log write failed: it leaves the room's history
    /// (its offset is handed out again), and its sender is told `unavailable`.
    pub fn unrecord(&mut self, record: &Persist, out: &mut Outbox) {
        self.history
            .unrecord(&record.room, &record.epoch, record.offset);
        if let Some(sender) = &record.sender {
            let refused = super::Answer::Unavailable {
                retry_after_ms: 1000,
                why: "the message could not be written to history; nothing was delivered",
            };
            self.answer(sender, refused, out);
        }
    }

    /// Delivers `publication` to its local recipients, encoded once; returns how many.
    ///
    /// A message without a position gets the next offset and the epoch of its room or
    /// feed (see `feeds`), is kept in the history, and is queued for the history
    /// log before anyone receives it.
    pub fn deliver(&mut self, publication: &Publication<'_>, out: &mut Outbox) -> Routed {
        let key = Stream::of_target(publication.target).key();
        let assigned = match publication.position {
            None if self.history.enabled() && !self.bus_offsets_only => {
                Some(self.history.next_position(&key))
            }
            _ => None,
        };
        let position = assigned
            .as_ref()
            .map(|(o, e)| (*o, &**e))
            .or(publication.position);
        let frame = delivery_frame(publication, position);
        if let Some((offset, epoch)) = position {
            let entry = Entry {
                offset,
                at_ms: publication.at_ms,
                frame: frame.clone(),
            };
            self.history.record(&key, epoch, entry);
            if assigned.is_some() {
                out.persist.push(Persist {
                    room: Rc::from(&*key),
                    epoch: Rc::from(epoch),
                    offset,
                    at_ms: publication.at_ms,
                    frame: frame.clone(),
                    sender: None,
                    ack: None,
                });
            }
        }
        let recipients = match publication.target {
            Target::Room(room) => self.send_to_room(room, position, &frame, out),
            Target::All | Target::User(_) => self.send_to_feed(&key, position, &frame, out),
        };
        Routed::Delivered {
            recipients,
            offset: position.map(|(offset, _)| offset),
        }
    }

    /// Sends to a room's members, holding back the frame for members whose recovery fetch
    /// is still in flight (they get it after their replay, in order, without duplicates).
    fn send_to_room(
        &mut self,
        room: &str,
        position: Option<(u64, &str)>,
        frame: &SharedFrame,
        out: &mut Outbox,
    ) -> usize {
        let Some(members) = self.rooms.get(room) else {
            return 0;
        };
        if self.recovering.is_empty() && !self.replayed.contains_key(room) {
            return out.send_all(members.conns(), frame);
        }
        let conns: Vec<ConnId> = members.conns().collect();
        self.send_holding(room, &conns, position, frame, out)
    }

    /// Sends a feed's message to its subscribers, holding it back for those whose `sync`
    /// fetch is in flight (as [`Hub::send_to_room`] does for a recovering join).
    fn send_to_feed(
        &mut self,
        key: &str,
        position: Option<(u64, &str)>,
        frame: &SharedFrame,
        out: &mut Outbox,
    ) -> usize {
        if self.recovering.is_empty() && !self.replayed.contains_key(key) {
            return match Stream::of_key(key) {
                Stream::Inbox(user) => match self.users.get(user) {
                    Some(entry) => out.send_all(entry.conns.iter().copied(), frame),
                    None => 0,
                },
                _ => out.send_all(self.members.keys().copied(), frame),
            };
        }
        let conns = self.subscribers(key);
        self.send_holding(key, &conns, position, frame, out)
    }

    /// Sends to `conns`, holding the frame back for those recovering stream `key`, and
    /// skipping it for those whose replay already had it (see [`Hub::replayed`]).
    fn send_holding(
        &mut self,
        key: &str,
        conns: &[ConnId],
        position: Option<(u64, &str)>,
        frame: &SharedFrame,
        out: &mut Outbox,
    ) -> usize {
        let cap = self.config.max_held_bytes;
        let offset = position.map(|(o, _)| o);
        let name: Rc<str> = Rc::from(key);
        for &conn in conns {
            if let Some(marks) = self.replayed.get_mut(key)
                && let Some((last, epoch)) = marks.get(&conn)
            {
                match position {
                    Some((o, e)) if e == &**epoch && o <= *last => continue,
                    _ => {
                        marks.remove(&conn);
                        if marks.is_empty() {
                            self.replayed.remove(key);
                        }
                    }
                }
            }
            let pending_key = (conn, name.clone());
            match self.recovering.get_mut(&pending_key) {
                Some(pending) if pending.held_bytes + frame.len() > cap => {
                    // Held frames count as unsent bytes: over the cap, a slow consumer.
                    self.recovering.remove(&pending_key);
                    out.close(conn, CloseCode::POLICY_VIOLATION, "slow consumer");
                }
                Some(pending) => {
                    pending.held_bytes += frame.len();
                    pending.held.push((offset.unwrap_or(0), frame.clone()));
                }
                None => out.send(conn, frame.clone()),
            }
        }
        conns.len()
    }

    /// Routes a new message: onto the cluster bus when clustered (every node, this one
    /// included, delivers it from there, so all see the same order and offsets), else
    /// straight to local recipients.
    ///
    /// Clustered, `origin` is the client waiting for its `ack`, which the loop sends once
    /// Redis has the message ([`Hub::answer`]).
    pub fn route(
        &mut self,
        publication: &Publication<'_>,
        origin: Option<Origin>,
        out: &mut Outbox,
    ) -> Routed {
        if !self.bus {
            return self.deliver(publication, out);
        }
        let pid = publish_id(publication.sender, origin.as_ref());
        out.bus.push(BusRequest {
            kind: publication.kind.to_owned(),
            target: match publication.target {
                Target::All => OwnedTarget::All,
                Target::Room(room) => OwnedTarget::Room(room.to_owned()),
                Target::User(user) => OwnedTarget::User(user.to_owned()),
            },
            sender: publication.sender.to_owned(),
            timestamp: publication.timestamp.to_owned(),
            at_ms: publication.at_ms,
            payload: publication.payload.get().to_owned(),
            history: self.history.enabled(),
            pid,
            origin,
        });
        Routed::Published
    }

    /// Delivers a message here only, because the cluster bus is unreachable: no history
    /// offsets, since those come from Redis.
    pub fn deliver_locally(&mut self, message: &RemoteMessage, out: &mut Outbox) -> usize {
        let unsequenced = RemoteMessage {
            position: None,
            ..message.clone()
        };
        let previous = std::mem::replace(&mut self.bus_offsets_only, true);
        let recipients = self.on_remote(&unsequenced, out);
        self.bus_offsets_only = previous;
        recipients
    }
}

/// The publish id of a message: derived from the sender and the request `id` when there is
/// one, so a resent request is published once (within the dedupe window); random otherwise.
fn publish_id(sender: &str, origin: Option<&Origin>) -> String {
    use sha1::{Digest, Sha1};
    let Some(id) = origin.and_then(|o| o.id.as_deref()) else {
        return format!(
            "r{}{}",
            super::history::new_epoch(),
            super::history::new_epoch()
        );
    };
    let mut sha = Sha1::new();
    sha.update(sender.as_bytes());
    sha.update(b"\n");
    sha.update(id.as_bytes());
    let digest: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("u{digest}")
}

/// The frame recipients of `publication` get, at history `position`.
pub(super) fn delivery_frame(
    publication: &Publication<'_>,
    position: Option<(u64, &str)>,
) -> SharedFrame {
    let (room, recipient_id) = match publication.target {
        Target::All => (None, None),
        Target::Room(room) => (Some(room), None),
        Target::User(user) => (None, Some(user)),
    };
    messages::encode(&messages::Delivery {
        kind: publication.kind,
        room,
        recipient_id,
        sender_id: publication.sender,
        timestamp: publication.timestamp,
        offset: position.map(|(offset, _)| offset),
        epoch: position.map(|(_, epoch)| epoch),
        payload: publication.payload,
    })
}
