//! Rooms: which connections (and so which users) are in each, and nothing else.
//!
//! A room exists while it has members and is removed when its last member leaves. It counts
//! connections per user, so presence can say when a *user* arrives (first connection) or
//! goes (last connection), however many tabs they have open.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::id::ConnId;

/// One room's members.
#[derive(Debug, Default)]
pub(super) struct Room {
    /// Member connections.
    conns: HashSet<ConnId>,
    /// Distinct users and how many of their connections are members.
    users: HashMap<Rc<str>, u32>,
}

impl Room {
    /// Member connections.
    pub(super) fn conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.iter().copied()
    }

    /// How many connections are members.
    pub(super) fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Distinct users in the room.
    pub(super) fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Up to `limit` user ids, sorted: any `limit` of the members, not the first ones in
    /// order, so a join costs O(`limit`) however large the room (sorting every member of a
    /// 100,000-member room on each join made joins quadratic). [`Room::user_count`] stays
    /// the exact count.
    pub(super) fn some_users(&self, limit: usize) -> Vec<&str> {
        let mut users: Vec<&str> = self.users.keys().take(limit).map(|u| &**u).collect();
        users.sort_unstable();
        users
    }

    /// Every distinct user in the room, in no order.
    pub(super) fn users(&self) -> impl Iterator<Item = &str> + '_ {
        self.users.keys().map(|u| &**u)
    }

    /// Every distinct user in the room with how many of their connections are members.
    pub(super) fn user_connections(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.users.iter().map(|(u, n)| (&**u, *n as usize))
    }

    /// Whether `conn` is a member.
    pub(super) fn contains(&self, conn: ConnId) -> bool {
        self.conns.contains(&conn)
    }

    /// Whether any connection of `user` is a member.
    pub(super) fn has_user(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }
}

/// The result of adding a connection to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Joined {
    /// The connection was already a member (nothing changed).
    pub already: bool,
    /// This is the user's first connection in the room.
    pub user_arrived: bool,
}

/// The result of removing a connection from a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Left {
    /// That was the user's last connection in the room.
    pub user_left: bool,
    /// Distinct users remaining.
    pub members: usize,
}

/// Every room, by name.
#[derive(Debug, Default)]
pub(super) struct Rooms {
    rooms: HashMap<Rc<str>, Room>,
}

impl Rooms {
    /// The room called `name`, if it has members.
    pub(super) fn get(&self, name: &str) -> Option<&Room> {
        self.rooms.get(name)
    }

    /// The names of every room with members.
    pub(super) fn names(&self) -> impl Iterator<Item = &Rc<str>> + '_ {
        self.rooms.keys()
    }

    /// How many rooms exist.
    pub(super) fn len(&self) -> usize {
        self.rooms.len()
    }

    /// The interned name of a room, if it exists (so members share one allocation).
    pub(super) fn name(&self, name: &str) -> Option<Rc<str>> {
        self.rooms.get_key_value(name).map(|(k, _)| k.clone())
    }

    /// Adds `conn` of `user` to `room`, creating the room.
    pub(super) fn join(&mut self, room: Rc<str>, conn: ConnId, user: &Rc<str>) -> Joined {
        let entry = self.rooms.entry(room).or_default();
        if !entry.conns.insert(conn) {
            return Joined {
                already: true,
                user_arrived: false,
            };
        }
        let count = entry.users.entry(user.clone()).or_insert(0);
        *count += 1;
        Joined {
            already: false,
            user_arrived: *count == 1,
        }
    }

    /// Removes `conn` of `user` from `room`; removes the room when it empties.
    ///
    /// Returns `None` if the connection was not a member.
    pub(super) fn leave(&mut self, room: &str, conn: ConnId, user: &str) -> Option<Left> {
        let entry = self.rooms.get_mut(room)?;
        if !entry.conns.remove(&conn) {
            return None;
        }
        let mut user_left = false;
        if let Some(count) = entry.users.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                entry.users.remove(user);
                user_left = true;
            }
        }
        let members = entry.users.len();
        if entry.conns.is_empty() {
            self.rooms.remove(room);
        }
        Some(Left { user_left, members })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ConnId {
        ConnId::new(n, 1)
    }

    #[test]
    fn presence_counts_users_not_tabs() {
        let mut rooms = Rooms::default();
        let alice: Rc<str> = "alice".into();
        let r: Rc<str> = "r".into();
        assert_eq!(
            rooms.join(r.clone(), id(1), &alice),
            Joined {
                already: false,
                user_arrived: true
            }
        );
        assert_eq!(
            rooms.join(r.clone(), id(2), &alice),
            Joined {
                already: false,
                user_arrived: false
            }
        );
        assert_eq!(
            rooms.join(r.clone(), id(2), &alice),
            Joined {
                already: true,
                user_arrived: false
            }
        );
        assert_eq!(rooms.get("r").map(Room::user_count), Some(1));
        assert_eq!(
            rooms.leave("r", id(1), "alice"),
            Some(Left {
                user_left: false,
                members: 1
            })
        );
        assert_eq!(
            rooms.leave("r", id(2), "alice"),
            Some(Left {
                user_left: true,
                members: 0
            })
        );
        assert_eq!(rooms.len(), 0, "an empty room is removed");
        assert_eq!(rooms.leave("r", id(2), "alice"), None);
    }

    /// `joined` lists a few members however large the room: the cost of listing them must
    /// not grow with the room (a 100,000-member room used to be sorted on every join).
    #[test]
    fn listing_some_users_does_not_grow_with_the_room() {
        fn room_of(n: u32) -> Room {
            let mut room = Room::default();
            for i in 0..n {
                room.conns.insert(id(i));
                room.users.insert(Rc::from(format!("user-{i:06}")), 1);
            }
            room
        }
        fn time_listing(room: &Room) -> std::time::Duration {
            let start = std::time::Instant::now();
            for _ in 0..20 {
                let users = room.some_users(100);
                assert_eq!(users.len(), 100.min(room.user_count()));
                assert!(users.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
                assert!(users.iter().all(|u| room.has_user(u)));
            }
            start.elapsed()
        }
        let (small, large) = (room_of(200), room_of(100_000));
        let (small, large) = (time_listing(&small), time_listing(&large));
        assert!(
            large < small * 20 + std::time::Duration::from_millis(5),
            "100,000 members: {large:?}; 200 members: {small:?}"
        );
    }
}
