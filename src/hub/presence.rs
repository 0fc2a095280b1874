//! Cluster-wide presence: `joined`, `presence` and the `shared_room` policy count every
//! node's users, not just this node's.
//!
//! Clustered, each node tells Redis (and, through the bus, the other nodes) when a user
//! arrives in or leaves a room *on this node* ([`super::PresenceChange`]: their first or
//! last local connection there). For each room with members here, the hub mirrors who is
//! in it anywhere (`roster`): a snapshot read from Redis when its first local
//! member joins, then the other nodes' [`PresenceNote`]s. Everything is then answered in
//! the loop, without waiting for Redis, except the `joined` of the joins that opened the
//! mirror: they wait for its first snapshot (their room messages held meanwhile, as for a
//! recovering join), so their `users` lists the other nodes' users too. A node declared
//! dead (its liveness key expired in Redis) takes its users with it.
//!
//! Alone (no cluster), nothing here is used: rooms count their local members as before.

use std::rc::Rc;

use serde_json::value::RawValue;

use super::messages::{self, Membership, Presence};
use super::{Hub, Now, Outbox, PresenceChange, time};
use crate::id::ConnId;
use crate::protocol::frame::SharedFrame;

/// What another node says about presence, on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceNote {
    /// `user` arrived in (`present`) or left `room` on `node`.
    Here {
        /// The node.
        node: String,
        /// The room.
        room: String,
        /// The user.
        user: String,
        /// Arrived (`true`) or left.
        present: bool,
    },
    /// `node` rewrote its users of `room` in Redis: read the room again.
    Sync {
        /// The node.
        node: String,
        /// The room.
        room: String,
    },
    /// `node` stopped refreshing its liveness key: it is dead, its users gone.
    Gone {
        /// The node.
        node: String,
    },
}

/// A join whose `joined` waits for its room's first roster read.
#[derive(Debug)]
pub(super) struct WaitingJoin {
    conn: ConnId,
    id: Option<Box<RawValue>>,
    recovered: Option<bool>,
    /// The room's history position when it joined (what its replay reached).
    position: Option<(u64, Rc<str>)>,
    replay: Vec<SharedFrame>,
}

impl Hub {
    /// A user's first local connection joined `room`: tells the cluster; whether the user
    /// arrived in the room cluster-wide (alone: always).
    pub(super) fn arrived_here(
        &mut self,
        room: &Rc<str>,
        user: &Rc<str>,
        out: &mut Outbox,
    ) -> bool {
        if !self.bus {
            return true;
        }
        out.presence.push(change(room, user, true));
        if self.rosters.open(room) {
            out.rosters.push(room.to_string());
            self.awaiting_roster.entry(room.clone()).or_default();
        }
        self.rosters.here(room, user, true)
    }

    /// A user's last local connection left `room`: tells the cluster; whether the user left
    /// the room cluster-wide (alone: always).
    pub(super) fn left_here(&mut self, room: &str, user: &Rc<str>, out: &mut Outbox) -> bool {
        if !self.bus {
            return true;
        }
        out.presence.push(change(room, user, false));
        self.rosters.here(room, user, false)
    }

    /// Stops mirroring `room` once it has no local member.
    pub(super) fn forget_if_empty(&mut self, room: &str) {
        if self.rooms.get(room).is_none() {
            self.rosters.close(room);
            self.awaiting_roster.remove(room);
        }
    }

    /// Distinct users in `room`: on every node when clustered.
    pub(super) fn member_count(&self, room: &str) -> usize {
        self.rosters
            .count(room)
            .unwrap_or_else(|| self.rooms.get(room).map_or(0, |r| r.user_count()))
    }

    /// Up to `max_listed_users` of `room`'s users, sorted: on every node when clustered.
    pub(super) fn listed_users(&self, room: &str) -> Vec<&str> {
        let limit = self.config.max_listed_users;
        self.rosters.some(room, limit).unwrap_or_else(|| {
            self.rooms
                .get(room)
                .map_or_else(Vec::new, |r| r.some_users(limit))
        })
    }

    /// Whether `user` is in `room`, on any node when clustered.
    pub(super) fn in_room_anywhere(&self, room: &str, user: &str) -> bool {
        self.rosters
            .has(room, user)
            .unwrap_or_else(|| self.rooms.get(room).is_some_and(|r| r.has_user(user)))
    }

    /// Whether `room`'s first roster read is still in flight (its joins wait for it).
    pub(super) fn awaits_roster(&self, room: &str) -> bool {
        self.awaiting_roster.contains_key(room)
    }

    /// Holds `conn`'s `joined` until the room's first roster arrives; its room messages
    /// are held meanwhile like a recovering member's.
    pub(super) fn await_roster(
        &mut self,
        conn: ConnId,
        room: &str,
        id: Option<&RawValue>,
        recovered: Option<bool>,
        position: Option<(u64, Rc<str>)>,
        replay: Vec<SharedFrame>,
    ) {
        let room: Rc<str> = self.rooms.name(room).unwrap_or_else(|| room.into());
        self.recovering
            .entry((conn, room.clone()))
            .or_insert_with(|| super::remote::Pending {
                id: None,
                held: Vec::new(),
                held_bytes: 0,
            });
        let waiting = WaitingJoin {
            conn,
            id: id.map(|v| v.to_owned()),
            recovered,
            position,
            replay,
        };
        self.awaiting_roster.entry(room).or_default().push(waiting);
    }

    /// A note from another node (never this one's: the loop drops those).
    pub fn on_presence(&mut self, note: &PresenceNote, now: Now, out: &mut Outbox) {
        let timestamp = time::rfc3339_millis(now.wall);
        match note {
            PresenceNote::Here {
                node,
                room,
                user,
                present,
            } => {
                if self.rosters.note(room, node, user, *present) {
                    let user: Rc<str> = user.as_str().into();
                    self.tell_crossings(room, &[(user, *present)], &timestamp, out);
                }
            }
            PresenceNote::Sync { room, .. } => {
                if self.rosters.begin_read(room) {
                    out.rosters.push(room.clone());
                }
            }
            PresenceNote::Gone { node } => {
                for (room, users) in self.rosters.node_gone(node) {
                    if !self.awaits_roster(&room) {
                        self.tell_departures(&room, &users, &timestamp, out);
                    }
                }
            }
        }
    }

    /// A roster read of `room` came back: other nodes' users by node, or `None` when Redis
    /// could not answer (the node keeps what it knows). Tells the room what changed, then
    /// answers the joins that waited for it.
    pub fn finish_roster(
        &mut self,
        room: &str,
        snapshot: Option<&[(String, Vec<String>)]>,
        now: Now,
        out: &mut Outbox,
    ) {
        let crossings = match snapshot {
            Some(snapshot) => self.rosters.apply(room, snapshot),
            None => {
                self.rosters.abandon_read(room);
                Vec::new()
            }
        };
        // The room's first roster: every member here waits for it, and its `joined`
        // says all of it. A later one: tell the members what changed.
        let Some(waiting) = self.awaiting_roster.remove(room) else {
            let timestamp = time::rfc3339_millis(now.wall);
            self.tell_crossings(room, &crossings, &timestamp, out);
            return;
        };
        for join in waiting {
            self.release_join(room, join, out);
        }
    }

    /// Asks for every mirrored room's roster again (the bus subscription was lost: notes
    /// may have been missed).
    pub fn reread_rosters(&mut self, out: &mut Outbox) {
        for room in self.rosters.names() {
            if self.rosters.begin_read(&room) {
                out.rosters.push(room.to_string());
            }
        }
    }

    /// Every room with members here and its local users: what this node rewrites in
    /// Redis when Redis lost it (a restart, or this node declared dead).
    pub fn local_presence(&self) -> Vec<(String, Vec<String>)> {
        self.rooms
            .names()
            .filter_map(|name| {
                let room = self.rooms.get(name)?;
                Some((name.to_string(), room.users().map(str::to_owned).collect()))
            })
            .collect()
    }

    /// Remote presence entries refused because the mirror was full.
    pub fn presence_overflowed(&self) -> u64 {
        self.rosters.overflowed()
    }

    /// One `presence` per user who arrived or left, to the room's local members (none
    /// while the room's first roster is awaited: its members have not had `joined` yet).
    fn tell_crossings(
        &self,
        room: &str,
        crossings: &[(Rc<str>, bool)],
        timestamp: &str,
        out: &mut Outbox,
    ) {
        if crossings.is_empty() || self.awaits_roster(room) {
            return;
        }
        let Some(room_state) = self.rooms.get(room) else {
            return;
        };
        let left: Vec<Rc<str>> = crossings
            .iter()
            .filter(|(_, arrived)| !arrived)
            .map(|(u, _)| u.clone())
            .collect();
        if !left.is_empty() {
            self.tell_departures(room, &left, timestamp, out);
        }
        for (user, _) in crossings.iter().filter(|(_, arrived)| *arrived) {
            let presence = Presence {
                kind: "presence",
                room,
                user_id: user,
                action: "join",
                members: self.member_count(room),
                timestamp,
            };
            out.send_all(room_state.conns(), &messages::encode(&presence));
        }
    }

    /// Answers a join that waited for the roster: `joined`, its replay, then what was held.
    fn release_join(&mut self, room: &str, join: WaitingJoin, out: &mut Outbox) {
        let held = self.recovering.remove(&(join.conn, Rc::from(room)));
        if !self.rooms.get(room).is_some_and(|r| r.contains(join.conn)) {
            return;
        }
        let position = join.position;
        let reply = Membership {
            kind: "joined",
            id: join.id.as_deref(),
            room,
            members: self.member_count(room),
            users: Some(self.listed_users(room)),
            recovered: join.recovered,
            epoch: position.as_ref().map(|(_, epoch)| &**epoch),
            offset: position.as_ref().map(|(offset, _)| *offset),
            reason: None,
        };
        out.send(join.conn, messages::encode(&reply));
        for frame in join.replay {
            out.send(join.conn, frame);
        }
        for (_, frame) in held.into_iter().flat_map(|p| p.held) {
            out.send(join.conn, frame);
        }
    }
}

fn change(room: &str, user: &str, present: bool) -> PresenceChange {
    PresenceChange {
        room: room.to_owned(),
        user: user.to_owned(),
        present,
    }
}
