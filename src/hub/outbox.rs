//! What the hub asks the server to do: frames to queue and connections to close.
//!
//! The hub never touches a connection. It appends here; the loop drains the outbox after
//! each event, so the hub can be driven and tested without sockets, and a broadcast
//! collects its targets first and writes afterwards.

use std::rc::Rc;

use super::publish::OwnedTarget;
use super::request::Since;
use crate::id::ConnId;
use crate::protocol::CloseCode;
use crate::protocol::frame::SharedFrame;

/// A connection the hub wants closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// The connection.
    pub to: ConnId,
    /// The close code.
    pub code: CloseCode,
    /// The close reason.
    pub reason: &'static str,
}

/// A room message to write to the history log before anyone receives it.
#[derive(Debug, Clone)]
pub struct Persist {
    /// The room.
    pub room: Rc<str>,
    /// The room's history epoch.
    pub epoch: Rc<str>,
    /// The message's offset.
    pub offset: u64,
    /// When it was accepted, Unix milliseconds.
    pub at_ms: u64,
    /// The delivered frame.
    pub frame: SharedFrame,
    /// The client that sent it, told `unavailable` if the write fails.
    pub sender: Option<Origin>,
    /// The `ack` queued for the sender, withdrawn if the write fails.
    pub ack: Option<SharedFrame>,
}

/// A new message for the cluster bus (owned: it crosses to the Redis thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusRequest {
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
    /// The payload, raw JSON.
    pub payload: String,
    /// A room message that gets a history offset from Redis.
    pub history: bool,
    /// A unique publish id: Redis publishes each id once, so a retried append (or a
    /// client's resent request, which gets the same id) returns the first outcome.
    pub pid: String,
    /// The client connection waiting for its `ack` (absent for the publish API).
    pub origin: Option<Origin>,
}

/// The connection and request a clustered message is acked to, once Redis has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The sending connection.
    pub conn: ConnId,
    /// The request's `id`, raw JSON (no `ack` without one; errors are sent either way).
    /// For the publish API, the `Idempotency-Key` and the message's index.
    pub id: Option<String>,
    /// For the publish API: the message's index in the request (the loop answers over
    /// HTTP, not the hub).
    pub api: Option<usize>,
}

/// A room whose messages must be read from Redis after `since` before any more are
/// delivered: a gap in the offsets, or the bus subscription was lost for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    /// The room.
    pub room: String,
    /// The last position delivered here (an empty epoch: the room had none when this node
    /// asked).
    pub since: Since,
    /// Only the room's position is wanted: this node's first member joined it.
    pub position_only: bool,
}

/// A join with `since` whose history must be fetched from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The joining connection.
    pub conn: ConnId,
    /// The room.
    pub room: String,
    /// The client's last position.
    pub since: Since,
}

/// A user who arrived in (`present`) or left a room on this node (first or last local
/// connection), for the cluster-wide presence in Redis (see [`super::presence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// The room.
    pub room: String,
    /// The user.
    pub user: String,
    /// Arrived (`true`) or left.
    pub present: bool,
}

/// Frames and closes queued by the hub for the loop.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Frames to queue, in order; several entries may share one frame.
    pub sends: Vec<(ConnId, SharedFrame)>,
    /// Connections to close after the sends.
    pub closes: Vec<CloseRequest>,
    /// Room messages to persist before the sends go out (history on disk).
    pub persist: Vec<Persist>,
    /// New messages for the cluster bus.
    pub bus: Vec<BusRequest>,
    /// History to fetch from Redis for recovering joins.
    pub fetches: Vec<FetchRequest>,
    /// Rooms to catch up from Redis (see [`CatchUp`]).
    pub catch_ups: Vec<CatchUp>,
    /// Presence changes on this node, for Redis and the other nodes (clustered only).
    pub presence: Vec<PresenceChange>,
    /// Rooms whose cluster-wide roster must be read from Redis (clustered only).
    pub rosters: Vec<String>,
    /// Connections whose token a `refresh` replaced: the loop re-arms their expiry check,
    /// which may now be due earlier.
    pub renewed: Vec<ConnId>,
}

impl Outbox {
    /// Queues `frame` for `to`.
    pub fn send(&mut self, to: ConnId, frame: SharedFrame) {
        self.sends.push((to, frame));
    }

    /// Queues the same `frame` for every connection in `to`; returns how many.
    pub fn send_all(&mut self, to: impl IntoIterator<Item = ConnId>, frame: &SharedFrame) -> usize {
        let before = self.sends.len();
        self.sends
            .extend(to.into_iter().map(|id| (id, frame.clone())));
        self.sends.len() - before
    }

    /// Asks for `to` to be closed with `code` and `reason`.
    pub fn close(&mut self, to: ConnId, code: CloseCode, reason: &'static str) {
        self.closes.push(CloseRequest { to, code, reason });
    }

    /// Whether anything is queued for the cluster (Redis): messages, reads, presence.
    pub fn wants_cluster(&self) -> bool {
        !self.bus.is_empty()
            || !self.fetches.is_empty()
            || !self.catch_ups.is_empty()
            || !self.presence.is_empty()
            || !self.rosters.is_empty()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.sends.is_empty()
            && self.closes.is_empty()
            && self.persist.is_empty()
            && self.bus.is_empty()
            && self.fetches.is_empty()
            && self.catch_ups.is_empty()
            && self.presence.is_empty()
            && self.rosters.is_empty()
            && self.renewed.is_empty()
    }
}

impl From<&BusRequest> for super::remote::RemoteMessage {
    fn from(request: &BusRequest) -> Self {
        Self {
            kind: request.kind.clone(),
            target: request.target.clone(),
            sender: request.sender.clone(),
            timestamp: request.timestamp.clone(),
            at_ms: request.at_ms,
            position: None,
            payload: request.payload.clone(),
        }
    }
}
