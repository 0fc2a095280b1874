//! `join`: membership, presence, and recovery of missed messages with `since`.
//!
//! With history on, `joined` carries the room's `epoch` and latest `offset`. A join with
//! `"since":{"offset":N,"epoch":"…"}` gets `recovered: true` and, right after the ack, every
//! message after N, then live messages: the replay and the live feed come from the same
//! history in the same turn of the loop, so there is no gap and no duplicate between them.
//! `recovered: false` means the history no longer reaches back that far, or its epoch
//! changed: the client must reload.

use std::rc::Rc;

use serde_json::value::RawValue;

use super::error::HubError;
use super::history::Recovery;
use super::messages::{self, Membership, Presence};
use super::request::Since;
use super::rules::Action;
use super::{Hub, Outbox, time};
use crate::hub::Now;
use crate::id::ConnId;

impl Hub {
    /// Adds `conn` to `room` (idempotent), acks with the member count, announces a newly
    /// arrived user, and replays history after `since`.
    pub(super) fn join(
        &mut self,
        conn: ConnId,
        room: &str,
        since: Option<&Since>,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HubError> {
        self.check_room_name(room)?;
        self.authorize(conn, Action::Join, room)?;
        self.forget_replay(conn, room);
        let member = self.members.get(&conn).ok_or_else(super::handlers::gone)?;
        let user = member.user.clone();
        if !member.rooms.iter().any(|r| &**r == room) {
            self.check_join_limits(conn, room)?;
        }
        let name: Rc<str> = self.rooms.name(room).unwrap_or_else(|| room.into());
        let joined = self.rooms.join(name.clone(), conn, &user);
        if !joined.already
            && let Some(member) = self.members.get_mut(&conn)
        {
            member.rooms.push(name.clone());
        }
        let arrived = joined.user_arrived && self.arrived_here(&name, &user, out);
        let (recovered, replay) = self.recovery(room, since, now);
        self.learn_position(room, out);
        // Clustered, the joins that opened the room's roster wait for it (so `joined` lists
        // the other nodes' users); nobody here has had `joined` yet to be told of them.
        let awaiting = self.awaits_roster(room);
        if recovered == Some(false)
            && self.bus
            && let Some(since) = since
        {
            // Clustered: this node's copy is short; Redis holds the room's history.
            self.await_fetch(conn, room, since, id, out);
            self.announce_arrival(conn, room, &user, arrived && !awaiting, now, out);
            return Ok(());
        }
        // Clustered, positions come from Redis: report only what the bus has told us.
        let position = match (self.history.enabled(), self.bus) {
            (false, _) => None,
            // An empty epoch: the room had no message when this node asked Redis.
            (true, true) => self.history.position(room).filter(|(_, e)| !e.is_empty()),
            (true, false) => self.history.ensure(room),
        };
        if awaiting {
            self.await_roster(conn, room, id, recovered, position, replay);
            return Ok(());
        }
        let reply = Membership {
            kind: "joined",
            id,
            room,
            members: self.member_count(room),
            users: Some(self.listed_users(room)),
            recovered,
            epoch: position.as_ref().map(|(_, epoch)| &**epoch),
            offset: position.as_ref().map(|(offset, _)| *offset),
            reason: None,
        };
        out.send(conn, messages::encode(&reply));
        for frame in replay {
            out.send(conn, frame);
        }
        self.announce_arrival(conn, room, &user, arrived, now, out);
        Ok(())
    }

    /// Tells the room's other members that a user arrived.
    fn announce_arrival(
        &self,
        conn: ConnId,
        room: &str,
        user: &str,
        arrived: bool,
        now: Now,
        out: &mut Outbox,
    ) {
        let Some(room_state) = self.rooms.get(room).filter(|_| arrived) else {
            return;
        };
        let timestamp = time::rfc3339_millis(now.wall);
        let presence = Presence {
            kind: "presence",
            room,
            user_id: user,
            action: "join",
            members: self.member_count(room),
            timestamp: &timestamp,
        };
        out.send_all(
            room_state.conns().filter(|c| *c != conn),
            &messages::encode(&presence),
        );
    }

    /// Whether `since` could be honoured, and the frames to replay.
    pub(super) fn recovery(
        &self,
        room: &str,
        since: Option<&Since>,
        now: Now,
    ) -> (Option<bool>, Vec<crate::protocol::frame::SharedFrame>) {
        let Some(since) = since.filter(|_| self.history.enabled()) else {
            return (None, Vec::new());
        };
        match self
            .history
            .recover(room, since, time::unix_millis(now.wall))
        {
            Recovery::Replay(frames) => (Some(true), frames),
            Recovery::Lost => (Some(false), Vec::new()),
        }
    }
}
