//! Delivering a message to its local recipients: encoded once, one shared frame for all;
//! room messages get their history position first (when history is on).

use std::rc::Rc;

use super::history::Entry;
use super::outbox::Persist;
use super::{Hub, Outbox, Publication, Target, messages};

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

    /// Delivers `publication` to its local recipients, encoded once; returns how many.
    ///
    /// A room message without a position gets the room's next offset and its epoch, is kept
    /// in the history, and is queued for the history log before anyone receives it.
    pub fn deliver(&mut self, publication: &Publication<'_>, out: &mut Outbox) -> usize {
        let (room, recipient_id) = match publication.target {
            Target::All => (None, None),
            Target::Room(room) => (Some(room), None),
            Target::User(user) => (None, Some(user)),
        };
        let assigned = match (room, publication.position) {
            (Some(room), None) if self.history.enabled() => Some(self.history.next_position(room)),
            _ => None,
        };
        let position = assigned
            .as_ref()
            .map(|(o, e)| (*o, &**e))
            .or(publication.position);
        let frame = messages::encode(&messages::Delivery {
            kind: publication.kind,
            room,
            recipient_id,
            sender_id: publication.sender,
            timestamp: publication.timestamp,
            offset: position.map(|(offset, _)| offset),
            epoch: position.map(|(_, epoch)| epoch),
            payload: publication.payload,
        });
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
                });
            }
        }
        match publication.target {
            Target::All => out.send_all(self.members.keys().copied(), &frame),
            Target::Room(room) => match self.rooms.get(room) {
                Some(room) => out.send_all(room.conns(), &frame),
                None => 0,
            },
            Target::User(user) => match self.users.get(user) {
                Some(entry) => out.send_all(entry.conns.iter().copied(), &frame),
                None => 0,
            },
        }
    }
}
