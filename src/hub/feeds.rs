//! Feeds: each user's private messages (their *inbox*) and the broadcasts to everyone,
//! numbered and kept like a room's messages, so they get the rooms' guarantees: offsets
//! in order, no silent gap (a `reset` instead), recovery after a reconnect (`sync` with
//! `since`, as `join` with `since` for a room).
//!
//! A feed's history lives under a key that no room can have (room names never contain
//! `~`): `~u/<user>` for an inbox, `~all` for the broadcasts. The key is what the history,
//! the history log, the cluster's Redis streams and the gap check are keyed by; clients
//! never see it. They name a feed `private` (their own inbox) or `broadcast`.
//!
//! Who receives a feed is not a membership: every connection of the user gets their
//! inbox, every connection gets the broadcasts.

use std::borrow::Cow;

use super::publish::OwnedTarget;
use super::{Hub, Target};
use crate::id::ConnId;

/// The history key of the broadcasts.
pub(super) const BROADCASTS: &str = "~all";
/// The prefix of an inbox's history key.
const INBOX_PREFIX: &str = "~u/";

/// What a history key stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream<'a> {
    /// A room's messages.
    Room(&'a str),
    /// A user's private messages.
    Inbox(&'a str),
    /// The broadcasts.
    Broadcasts,
}

impl<'a> Stream<'a> {
    /// The stream a history key names.
    pub(super) fn of_key(key: &'a str) -> Self {
        if key == BROADCASTS {
            Self::Broadcasts
        } else if let Some(user) = key.strip_prefix(INBOX_PREFIX) {
            Self::Inbox(user)
        } else {
            Self::Room(key)
        }
    }

    /// The stream a message to `target` belongs to.
    pub(super) fn of_target(target: Target<'a>) -> Self {
        match target {
            Target::Room(room) => Self::Room(room),
            Target::User(user) => Self::Inbox(user),
            Target::All => Self::Broadcasts,
        }
    }

    /// The history key.
    pub(super) fn key(self) -> Cow<'a, str> {
        match self {
            Self::Room(room) => Cow::Borrowed(room),
            Self::Inbox(user) => Cow::Owned(format!("{INBOX_PREFIX}{user}")),
            Self::Broadcasts => Cow::Borrowed(BROADCASTS),
        }
    }

    /// The name clients use for a feed (`None` for a room).
    pub(super) fn feed_name(self) -> Option<&'static str> {
        match self {
            Self::Room(_) => None,
            Self::Inbox(_) => Some(PRIVATE),
            Self::Broadcasts => Some(BROADCAST),
        }
    }
}

/// The client's name for its own inbox.
pub(super) const PRIVATE: &str = "private";
/// The client's name for the broadcasts.
pub(super) const BROADCAST: &str = "broadcast";

/// The history key (and Redis stream) of messages to `target`: the room's name, or a feed's
/// key. Used by the cluster to append a message to the right stream.
pub fn history_key(target: &OwnedTarget) -> Cow<'_, str> {
    Stream::of_target(target.as_target()).key()
}

impl Hub {
    /// The local connections that receive the stream `key`: a room's members, the user's
    /// connections for an inbox, every connection for the broadcasts.
    pub(super) fn subscribers(&self, key: &str) -> Vec<ConnId> {
        match Stream::of_key(key) {
            Stream::Room(room) => self
                .rooms
                .get(room)
                .map(|r| r.conns().collect())
                .unwrap_or_default(),
            Stream::Inbox(user) => self
                .users
                .get(user)
                .map(|u| u.conns.clone())
                .unwrap_or_default(),
            Stream::Broadcasts => self.members.keys().copied().collect(),
        }
    }

    /// Whether any local connection receives the stream `key`.
    pub(super) fn has_subscribers(&self, key: &str) -> bool {
        match Stream::of_key(key) {
            Stream::Room(room) => self.rooms.get(room).is_some(),
            Stream::Inbox(user) => self.users.contains_key(user),
            Stream::Broadcasts => !self.members.is_empty(),
        }
    }

    /// Whether `conn` receives the stream `key`.
    pub(super) fn subscribes(&self, conn: ConnId, key: &str) -> bool {
        match Stream::of_key(key) {
            Stream::Room(room) => self.rooms.get(room).is_some_and(|r| r.contains(conn)),
            Stream::Inbox(user) => self.members.get(&conn).is_some_and(|m| &*m.user == user),
            Stream::Broadcasts => self.members.contains_key(&conn),
        }
    }

    /// Every stream with local subscribers: the rooms with members, the inboxes of the
    /// users connected here, and the broadcasts if anyone is.
    pub(super) fn subscribed_streams(&self) -> Vec<String> {
        let rooms = self.rooms.names().map(|r| r.to_string());
        let inboxes = self
            .users
            .keys()
            .map(|u| Stream::Inbox(u).key().into_owned());
        let broadcasts = (!self.members.is_empty()).then(|| BROADCASTS.to_owned());
        rooms.chain(inboxes).chain(broadcasts).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_never_collide_with_rooms() {
        for stream in [
            Stream::Room("lobby"),
            Stream::Room("a:b@c.d-e_f"),
            Stream::Inbox("bob"),
            Stream::Inbox("~u/odd"),
            Stream::Broadcasts,
        ] {
            assert_eq!(Stream::of_key(&stream.key()), stream);
        }
        // A room may be called `u` or `all`, but never starts with `~`.
        assert_eq!(Stream::of_key("all"), Stream::Room("all"));
        assert!(!crate::hub::valid_room_name(
            "~all",
            &crate::hub::HubConfig::default()
        ));
    }

    #[test]
    fn feeds_have_client_names_rooms_do_not() {
        assert_eq!(Stream::Inbox("x").feed_name(), Some("private"));
        assert_eq!(Stream::Broadcasts.feed_name(), Some("broadcast"));
        assert_eq!(Stream::Room("x").feed_name(), None);
    }
}
