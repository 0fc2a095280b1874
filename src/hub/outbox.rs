//! What the hub asks the server to do: frames to queue and connections to close.
//!
//! The hub never touches a connection. It appends here; the loop drains the outbox after
//! each event, so the hub can be driven and tested without sockets, and a broadcast
//! collects its targets first and writes afterwards.

use std::rc::Rc;

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

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.sends.is_empty() && self.closes.is_empty() && self.persist.is_empty()
    }
}
