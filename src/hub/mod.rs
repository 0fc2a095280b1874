//! The hub: users, rooms, private messages and broadcast for the `/ws` endpoint.
//!
//! Plain data owned by the event loop and changed through `&mut`: no locks, no channels, no
//! sockets. The loop calls [`Hub::connect`], [`Hub::on_text`], [`Hub::disconnect`]; the hub
//! answers by filling an [`Outbox`] with frames for connections, which the loop then queues.
//! Time is an argument, so tests drive the hub with a fixed clock.
//!
//! Every connection has a user; a user may have several connections (tabs, devices). Each
//! connection knows its rooms, so a disconnect cleans up in O(its rooms), and empty rooms
//! are removed.

mod answer;
mod authorize;
mod config;

mod delivery;
mod departures;
mod error;
mod feeds;
mod handlers;
pub mod history;
mod join;
pub mod messages;
mod outbox;
pub mod overview;
mod parked;
pub mod presence;
pub mod publish;
pub mod remote;

pub mod request;
mod rooms;
mod roster;
pub mod rules;
mod sequence;
mod sync;

pub mod time;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

pub use config::{HubConfig, MAX_USER_ID_LEN, PrivatePolicy, valid_room_name, valid_user_id};

pub use answer::Answer;
pub use error::{ErrorCode, HubError};
pub use feeds::history_key;
use history::History;
pub use outbox::{
    BusRequest, CatchUp, CloseRequest, FetchRequest, Origin, Outbox, Persist, PresenceChange,
};
use rooms::Rooms;
use serde_json::value::RawValue;
pub use time::Now;

use crate::auth::Authenticator;
use crate::id::ConnId;

use crate::ratelimit::TokenBucket;

/// What the hub knows about one connection.
#[derive(Debug)]
struct Member {
    /// The user it acts as.
    user: Rc<str>,
    /// The rooms it is in (interned names shared with the room table).
    rooms: Vec<Rc<str>>,
    /// What the connection proved about itself.
    credentials: Credentials,
}

/// What a connection proved at the handshake (or with a later `refresh`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// A verified token was presented (or authentication is off, which trusts everyone).
    pub authenticated: bool,
    /// Rooms and patterns from the token's `rooms` claim.
    pub claims: Vec<String>,
    /// When the token expires, Unix seconds.
    pub expires_at: Option<u64>,
}

impl Credentials {
    /// The credentials of every connection when authentication is off.
    pub fn trusted() -> Self {
        Self {
            authenticated: true,
            claims: Vec::new(),
            expires_at: None,
        }
    }
}

/// What the hub knows about one user: their connections and their message budget.
#[derive(Debug)]
struct UserEntry {
    /// The user's connections on `/ws`.
    conns: Vec<ConnId>,
    /// The per-user message rate limit.
    bucket: TokenBucket,
    /// Rate-limited messages in a row; at `abuse_strikes` the sender is closed with 1008.
    strikes: u32,
}

/// Who a published message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Every connection.
    All,
    /// The members of a room.
    Room(&'a str),
    /// Every connection of a user.
    User(&'a str),
}

/// A message to deliver: from a client, the publish API, or another node.
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// The `type` recipients see: `chat`, `private`, `notification`, …
    pub kind: &'a str,
    /// Who receives it.
    pub target: Target<'a>,
    /// The sender's user id (`server` for the API).
    pub sender: &'a str,
    /// The payload, raw JSON.
    pub payload: &'a RawValue,
    /// RFC 3339 time the message was accepted.
    pub timestamp: &'a str,
    /// When the message was accepted, Unix milliseconds.
    pub at_ms: u64,
    /// History position (offset, epoch) when it was assigned elsewhere (another node);
    /// `None` lets the hub assign one for room messages when history is on.
    pub position: Option<(u64, &'a str)>,
}

/// Headline counts for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubCounts {
    /// Connections on `/ws`.
    pub connections: usize,
    /// Distinct users connected.
    pub users: usize,
    /// Rooms with at least one member.
    pub rooms: usize,
}

/// The (offset, epoch) a member's replay reached.
type ReplayedTo = (u64, Rc<str>);

/// The chat/pub-sub state of one server.
#[derive(Debug, Default)]
pub struct Hub {
    config: HubConfig,
    members: HashMap<ConnId, Member>,
    users: HashMap<Rc<str>, UserEntry>,
    rooms: Rooms,
    /// Error replies sent, by code.
    errors: BTreeMap<&'static str, u64>,
    /// Verifies refreshed tokens.
    auth: Authenticator,
    /// Room history for recovery.
    history: History,
    /// New messages go to the cluster bus instead of straight to local recipients.
    bus: bool,
    /// Set while delivering a bus request locally: do not assign offsets (they are Redis's).
    bus_offsets_only: bool,
    /// Members whose recovery fetch is in flight, with the room frames held back for them.
    recovering: HashMap<(ConnId, Rc<str>), remote::Pending>,
    /// Members whose replay from Redis went past what this node has delivered (a gap was
    /// still being filled): the last (offset, epoch) they got, so the gap's messages up to
    /// there are not sent to them twice. Dropped at the first message past it.
    /// Keyed by room first, so a room nobody recovered into keeps the fast path.
    replayed: HashMap<Rc<str>, HashMap<ConnId, ReplayedTo>>,
    /// Rate-limit state of users who disconnected, until it is worth nothing.
    parked: parked::Parked,
    /// Rooms whose bus messages wait while a gap is read from Redis.
    gaps: HashMap<Rc<str>, sequence::Gap>,
    /// Bytes held in `gaps`, bounded by [`sequence::MAX_HELD_BYTES`].
    held_bytes: usize,
    /// Clustered: who is in each room with local members, on any node.
    rosters: roster::Rosters,
    /// Joins waiting for their room's first roster read, by room.
    awaiting_roster: HashMap<Rc<str>, Vec<presence::WaitingJoin>>,
}

/// Where a new message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// Delivered here to this many connections, with the history offset it got.
    Delivered {
        /// Local connections it was queued for.
        recipients: usize,
        /// Its room history offset, when history is on.
        offset: Option<u64>,
    },
    /// Handed to the cluster bus.
    Published,
}

impl Hub {
    /// An empty hub with `config`'s limits.
    pub fn new(config: HubConfig) -> Self {
        let history = History::new(config.history);
        Self {
            config,
            history,
            parked: parked::Parked::new(parked::CAPACITY),
            ..Self::default()
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Registers a new connection of `user` and greets it with `welcome`.
    pub fn connect(&mut self, conn: ConnId, user: &str, now: Now, out: &mut Outbox) {
        self.connect_with(conn, user, Credentials::trusted(), now, out);
    }

    /// Registers a new connection with the credentials it proved; greets it.
    pub fn connect_with(
        &mut self,
        conn: ConnId,
        user: &str,
        credentials: Credentials,
        now: Now,
        out: &mut Outbox,
    ) {
        let user: Rc<str> = match self.users.get_key_value(user) {
            Some((interned, _)) => interned.clone(),
            None => user.into(),
        };
        let rate = self.config.rate_limit;
        let parked = &mut self.parked;
        let entry = self.users.entry(user.clone()).or_insert_with(|| {
            // A user back soon after leaving keeps its bucket and strikes.
            let (bucket, strikes) = parked
                .take(&user, rate, now.mono)
                .unwrap_or_else(|| (TokenBucket::full(rate, now.mono), 0));
            UserEntry {
                conns: Vec::new(),
                bucket,
                strikes,
            }
        });
        entry.conns.push(conn);
        let timestamp = time::rfc3339_millis(now.wall);
        let welcome = messages::Welcome {
            kind: "welcome",
            user_id: &user,
            connection_id: conn.to_string(),
            timestamp: &timestamp,
        };
        out.send(conn, messages::encode(&welcome));
        let inbox = self
            .bus
            .then(|| feeds::Stream::Inbox(&user).key().into_owned());
        self.members.insert(
            conn,
            Member {
                user,
                rooms: Vec::new(),
                credentials,
            },
        );
        // Clustered: learn where this node stands in the feeds it now has a reader for.
        if let Some(inbox) = inbox {
            self.learn_position(&inbox, out);
            self.learn_position(feeds::BROADCASTS, out);
        }
    }

    /// When the connection's token expires (Unix seconds), if it has one.
    pub fn token_expiry(&self, conn: ConnId) -> Option<u64> {
        self.members
            .get(&conn)
            .and_then(|m| m.credentials.expires_at)
    }

    /// Installs the verifier used by `{"type":"refresh"}` (the same as at connect).
    pub fn set_authenticator(&mut self, auth: Authenticator) {
        self.auth = auth;
    }

    /// Forgets `conn`'s replay position in stream `key` (it joins or syncs afresh).
    fn forget_replay(&mut self, conn: ConnId, key: &str) {
        if let Some(marks) = self.replayed.get_mut(key) {
            marks.remove(&conn);
            if marks.is_empty() {
                self.replayed.remove(key);
            }
        }
    }

    /// Forgets a connection: leaves its rooms (with presence to the others) and its user.
    /// Closing many at once? [`Hub::disconnect_all`] tells each remaining member once.
    pub fn disconnect(&mut self, conn: ConnId, now: Now, out: &mut Outbox) {
        self.disconnect_all(&[conn], now, out);
    }

    /// The user a connection acts as.
    pub fn user_of(&self, conn: ConnId) -> Option<&str> {
        self.members.get(&conn).map(|m| &*m.user)
    }

    /// Connections, users and rooms right now.
    pub fn counts(&self) -> HubCounts {
        HubCounts {
            connections: self.members.len(),
            users: self.users.len(),
            rooms: self.rooms.len(),
        }
    }

    /// Error replies sent so far, by code (`rate_limited` counts dropped messages).
    pub fn error_counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.errors
    }

    /// How many connections `user` has.
    pub fn connections_of(&self, user: &str) -> usize {
        self.users.get(user).map_or(0, |entry| entry.conns.len())
    }

    /// Removes `conn` from `room` and tells the others if its user left (the room, on
    /// every node, when clustered); the distinct users remaining.
    fn leave_room(
        &mut self,
        conn: ConnId,
        user: &Rc<str>,
        room: &str,
        timestamp: &str,
        out: &mut Outbox,
    ) -> Option<usize> {
        let left = self.rooms.leave(room, conn, user)?;
        let announce = left.user_left && self.left_here(room, user, out);
        let members = self.member_count(room);
        if announce
            && !self.awaiting_roster.contains_key(room)
            && let Some(room_state) = self.rooms.get(room)
        {
            let presence = messages::Presence {
                kind: "presence",
                room,
                user_id: user,
                action: "leave",
                members,
                timestamp,
            };
            out.send_all(room_state.conns(), &messages::encode(&presence));
        }
        self.forget_if_empty(room);
        Some(members)
    }
}

#[cfg(test)]
mod authz_tests;
#[cfg(test)]
mod held_tests;
#[cfg(test)]
mod presence_tests;
#[cfg(test)]
mod sequence_tests;
#[cfg(test)]
mod tests;
