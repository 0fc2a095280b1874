//! Disconnects in batches: every departing connection leaves first, presence comes after.
//!
//! When the loop closes many members at once (a graceful shutdown, or a wave of slow
//! consumers closed by one broadcast), telling each remaining member about each departure
//! as it happens costs one frame per pair: N² frames for a room of N, most of them queued
//! for members that are leaving in the same batch. [`Hub::disconnect_all`] removes the whole
//! batch first and then sends each room that lost users **one** presence frame per remaining
//! member: the usual `presence` when one user left, or a `presence` listing the users
//! (`user_ids`, at most [`HubConfig::max_listed_users`](super::HubConfig) of them, sorted;
//! `users_left` is exact) when several did. A batch therefore costs at most one frame per
//! member that stays, whatever its size.

use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use super::{Hub, Now, Outbox, messages, time};
use crate::id::ConnId;

/// `presence` for several users who left a room at once.
#[derive(Debug, Serialize)]
struct Departures<'a> {
    /// Always `"presence"`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The room.
    room: &'a str,
    /// Always `"leave"`.
    action: &'static str,
    /// Some of the users who left, sorted (at most `max_listed_users`).
    user_ids: Vec<&'a str>,
    /// How many users left, exactly.
    users_left: usize,
    /// Distinct users in the room now.
    members: usize,
    /// When, RFC 3339.
    timestamp: &'a str,
}

impl Hub {
    /// Forgets every connection in `conns` (see the module docs): each leaves its rooms and
    /// its user, then each room that lost users tells its remaining members once.
    ///
    /// Costs O(the batch's room memberships + the remaining members of those rooms).
    pub fn disconnect_all(&mut self, conns: &[ConnId], now: Now, out: &mut Outbox) {
        let mut gone: HashMap<Rc<str>, Vec<Rc<str>>> = HashMap::new();
        let mut emptied: Vec<Rc<str>> = Vec::new();
        for &conn in conns {
            let Some(member) = self.members.remove(&conn) else {
                continue;
            };
            for room in member.rooms {
                let left = self.rooms.leave(&room, conn, &member.user);
                if left.is_some_and(|l| l.user_left) && self.left_here(&room, &member.user, out) {
                    gone.entry(room.clone())
                        .or_default()
                        .push(member.user.clone());
                }
                if self.rooms.get(&room).is_none() {
                    emptied.push(room);
                }
            }
            if let Some(entry) = self.users.get_mut(&member.user) {
                entry.conns.retain(|c| *c != conn);
                if entry.conns.is_empty()
                    && let Some(entry) = self.users.remove(&member.user)
                    && self.config.rate_limit_enabled
                {
                    let rate = self.config.rate_limit;
                    let user = member.user.clone();
                    self.parked
                        .park(user, entry.bucket, entry.strikes, rate, now.mono);
                }
            }
        }
        if !self.recovering.is_empty() {
            self.recovering.retain(|(c, _), _| !conns.contains(c));
        }
        if !self.replayed.is_empty() {
            self.replayed.retain(|_, marks| {
                marks.retain(|c, _| !conns.contains(c));
                !marks.is_empty()
            });
        }
        let timestamp = time::rfc3339_millis(now.wall);
        for (room, users) in &gone {
            if !self.awaits_roster(room) {
                self.tell_departures(room, users, &timestamp, out);
            }
        }
        for room in emptied {
            self.forget_if_empty(&room);
        }
    }

    /// One presence frame to each remaining member of `room` about `users`, who left it.
    pub(super) fn tell_departures(
        &self,
        room: &str,
        users: &[Rc<str>],
        timestamp: &str,
        out: &mut Outbox,
    ) {
        let Some(members) = self.rooms.get(room) else {
            return;
        };
        let frame = match users {
            [user] => messages::encode(&messages::Presence {
                kind: "presence",
                room,
                user_id: user,
                action: "leave",
                members: self.member_count(room),
                timestamp,
            }),
            _ => {
                let mut user_ids: Vec<&str> = users
                    .iter()
                    .take(self.config.max_listed_users)
                    .map(|u| &**u)
                    .collect();
                user_ids.sort_unstable();
                messages::encode(&Departures {
                    kind: "presence",
                    room,
                    action: "leave",
                    user_ids,
                    users_left: users.len(),
                    members: self.member_count(room),
                    timestamp,
                })
            }
        };
        out.send_all(members.conns(), &frame);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::hub::HubConfig;

    fn now() -> Now {
        Now {
            wall: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            mono: std::time::Instant::now(),
        }
    }

    fn conn(i: u32) -> ConnId {
        ConnId::new(i, 1)
    }

    /// A hub with `n` members of room `r`, each its own user; the outbox is emptied.
    fn room_of(n: u32) -> (Hub, Outbox) {
        let mut hub = Hub::new(HubConfig {
            rate_limit_enabled: false,
            ..HubConfig::default()
        });
        let mut out = Outbox::default();
        for i in 0..n {
            hub.connect(conn(i), &format!("u{i}"), now(), &mut out);
            hub.on_text(conn(i), r#"{"type":"join","room":"r"}"#, now(), &mut out);
        }
        out.sends.clear();
        (hub, out)
    }

    fn json(frame: &crate::protocol::frame::SharedFrame) -> Value {
        let bytes: &[u8] = frame.as_ref();
        // Unmasked server frames: 2- or 4-byte header for these sizes.
        let start = if bytes[1] & 0x7f == 126 { 4 } else { 2 };
        serde_json::from_slice(&bytes[start..]).expect("JSON")
    }

    #[test]
    fn a_batch_costs_one_frame_per_remaining_member() {
        let (mut hub, mut out) = room_of(1_000);
        let leaving: Vec<ConnId> = (0..900).map(conn).collect();
        hub.disconnect_all(&leaving, now(), &mut out);
        assert_eq!(out.sends.len(), 100);
        let message = json(&out.sends[0].1);
        assert_eq!(message["action"], "leave");
        assert_eq!(message["users_left"], 900);
        assert_eq!(message["members"], 100);
        assert_eq!(message["user_ids"].as_array().map(Vec::len), Some(100));
        assert_eq!(hub.counts().connections, 100);
    }

    #[test]
    fn one_departure_is_the_usual_presence() {
        let (mut hub, mut out) = room_of(3);
        hub.disconnect_all(&[conn(0)], now(), &mut out);
        assert_eq!(out.sends.len(), 2);
        let message = json(&out.sends[0].1);
        assert_eq!(
            (&message["user_id"], &message["members"]),
            (&"u0".into(), &2.into())
        );
        assert!(message.get("user_ids").is_none());
    }

    #[test]
    fn everyone_leaving_tells_nobody() {
        let (mut hub, mut out) = room_of(50);
        let all: Vec<ConnId> = (0..50).map(conn).collect();
        hub.disconnect_all(&all, now(), &mut out);
        assert!(out.sends.is_empty());
        assert_eq!(hub.counts(), super::super::HubCounts::default());
    }
}
