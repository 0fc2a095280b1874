//! Delivering a message to its local recipients: encoded once, one shared frame for all;
//! room messages get their history position first (when history is on).

use std::rc::Rc;

use super::history::Entry;
use super::outbox::{BusRequest, Origin, Persist};
use super::publish::OwnedTarget;
use super::remote::RemoteMessage;
use super::{Hub, Outbox, Publication, Routed, Target, messages};
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
    /// A room message without a position gets the room's next offset and its epoch, is kept
    /// in the history, and is queued for the history log before anyone receives it.
    pub fn deliver(&mut self, publication: &Publication<'_>, out: &mut Outbox) -> Routed {
        let room = match publication.target {
            Target::Room(room) => Some(room),
            Target::All | Target::User(_) => None,
        };
        let assigned = match (room, publication.position) {
            (Some(room), None) if self.history.enabled() && !self.bus_offsets_only => {
                Some(self.history.next_position(room))
            }
            _ => None,
        };
        let position = assigned
            .as_ref()
            .map(|(o, e)| (*o, &**e))
            .or(publication.position);
        let frame = delivery_frame(publication, position);
        if let (Some(room), Some((offset, epoch))) = (room, position) {
            let entry = Entry {
                offset,
                at_ms: publication.at_ms,
                frame: frame.clone(),
            };
            self.history.record(room, epoch, entry);
            if assigned.is_some() {
                out.persist.push(Persist {
                    room: Rc::from(room),
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
            Target::All => out.send_all(self.members.keys().copied(), &frame),
            Target::Room(room) => self.send_to_room(room, position.map(|(o, _)| o), &frame, out),
            Target::User(user) => match self.users.get(user) {
                Some(entry) => out.send_all(entry.conns.iter().copied(), &frame),
                None => 0,
            },
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
        offset: Option<u64>,
        frame: &SharedFrame,
        out: &mut Outbox,
    ) -> usize {
        let Some(members) = self.rooms.get(room) else {
            return 0;
        };
        if self.recovering.is_empty() {
            return out.send_all(members.conns(), frame);
        }
        let mut sent = 0;
        let cap = self.config.max_held_bytes;
        for conn in members.conns() {
            let key = (conn, Rc::from(room));
            match self.recovering.get_mut(&key) {
                Some(pending) if pending.held_bytes + frame.len() > cap => {
                    // Held frames count as unsent bytes: over the cap, a slow consumer.
                    self.recovering.remove(&key);
                    out.close(conn, CloseCode::POLICY_VIOLATION, "slow consumer");
                }
                Some(pending) => {
                    pending.held_bytes += frame.len();
                    pending.held.push((offset.unwrap_or(0), frame.clone()));
                }
                None => out.send(conn, frame.clone()),
            }
            sent += 1;
        }
        sent
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
            history: self.history.enabled() && matches!(publication.target, Target::Room(_)),
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
