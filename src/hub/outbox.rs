//! What the hub asks the server to do: frames to queue and connections to close.
//!
//! The hub never touches a connection. It appends here; the loop drains the outbox after
//! each event, so the hub can be driven and tested without sockets, and a broadcast
//! collects its targets first and writes afterwards.

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

/// Frames and closes queued by the hub for the loop.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Frames to queue, in order; several entries may share one frame.
    pub sends: Vec<(ConnId, SharedFrame)>,
    /// Connections to close after the sends.
    pub closes: Vec<CloseRequest>,
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
        self.sends.is_empty() && self.closes.is_empty()
    }
}
