//! Prepared messages: a message encoded once as a frame, then sent to any connections the
//! app chooses, by reference ([`Ctx::prepare`], [`Ctx::send_prepared`]).
//!
//! Topics ([`Ctx::publish`]) suit an app whose audiences are named sets. An app that keeps
//! its own audiences (a game's area of interest, a room with members in recovery, a
//! filter per subscriber) picks the recipients itself and still pays for the encoding
//! once: the frame is one reference-counted buffer queued to each recipient, compressed
//! once per window size for recipients with permessage-deflate and no server context
//! takeover (see `compress`). uWebSockets' `PreparedMessage` is the same idea.

use super::app::Message;
use super::app_ctx::{Ctx, kind_of};
use super::conn::ConnId;
use super::fan_out::Queued;
use super::outbound::SharedFrame;
use crate::protocol::frame::shared_frame;

/// A message encoded once as an unmasked, unfragmented frame (RFC 6455 §5.2), to be sent
/// to many connections. Cloning it is a reference count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    frame: SharedFrame,
}

impl Prepared {
    /// A frame the crate encoded already (the hub encodes its frames where it decides
    /// who gets them, without a `Ctx`).
    pub(crate) fn from_frame(frame: SharedFrame) -> Self {
        Self { frame }
    }

    /// The encoded frame's length in bytes (what each recipient's buffer grows by, before
    /// any compression).
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// Always `false`: a frame has at least its two-byte header.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }
}

impl Ctx<'_> {
    /// Encodes `message` once for [`Ctx::send_prepared`] and [`Ctx::publish_prepared`].
    pub fn prepare(&self, message: Message<'_>) -> Prepared {
        let (_, opcode) = kind_of(message);
        Prepared {
            frame: shared_frame(opcode, message.as_bytes()),
        }
    }

    /// Queues a prepared message for `conn`; the same answers as [`Ctx::send`]: `false` if
    /// the connection is gone, closing or not this app's, if it was over the slow-consumer
    /// cap (closed 1008), or if its compressor failed (closed 1011). Unlike `send`, the
    /// cap holds for the connection whose message is being handled too (see
    /// [`Ctx::publish`]).
    #[inline]
    pub fn send_prepared(&mut self, conn: ConnId, prepared: &Prepared) -> bool {
        if !self.server.publications.is_empty() {
            return self.settle_and_send_prepared(conn, prepared);
        }
        self.deliver(conn, &prepared.frame)
    }

    /// [`Ctx::send_prepared`] with publications held: they are queued first (they were
    /// published first). Out of line, so that the check costs a fan-out nearly nothing.
    #[cold]
    #[inline(never)]
    fn settle_and_send_prepared(&mut self, conn: ConnId, prepared: &Prepared) -> bool {
        self.settle();
        self.deliver(conn, &prepared.frame)
    }

    /// Publishes a prepared message to every subscriber of `topic`, as [`Ctx::publish`]
    /// does; returns how many subscribers the topic has.
    pub fn publish_prepared(&mut self, topic: &str, prepared: &Prepared) -> usize {
        let server = &mut *self.server;
        if !server.publications.holds(self.app, topic) {
            // One topic is held at a time: what another one holds goes first.
            server.settle_publications(self.current, self.failing, self.now);
        }
        let Some((name, subscribers)) = server.apps.topic(self.app, topic) else {
            return 0;
        };
        server
            .publications
            .hold(self.app, name, prepared.frame.clone());
        subscribers
    }

    /// One shared frame to one recipient, and what follows when it cannot take it.
    #[inline(always)]
    pub(super) fn deliver(&mut self, to: ConnId, frame: &SharedFrame) -> bool {
        match self.queue(to, frame) {
            Queued::Sent => true,
            Queued::Skipped => false,
            outcome => self.refused(to, outcome),
        }
    }

    /// Queues a shared frame for one of this app's connections, held to the slow-consumer
    /// cap whoever it is for: unlike a reply through [`Ctx::send`], a shared frame is a
    /// fan-out's, and the answers a fan-out app gives one request can be far larger than
    /// the request (a room's history), so the connection being handled is held to it too.
    /// That connection takes the frame even if it failed on the input after the message
    /// being handled (its close frame follows), as with [`Ctx::send`].
    #[inline]
    fn queue(&mut self, to: ConnId, frame: &SharedFrame) -> Queued {
        let (failing, current) = (self.failing, self.current);
        let takes_failed = || failing && current == Some(to);
        self.server.queue_shared(self.app, to, frame, takes_failed)
    }

    /// A recipient that could not take a frame: over the cap (closed 1008), or its
    /// compressor failed (closed 1011). Returns `false`, for the callers' answers.
    #[cold]
    #[inline(never)]
    fn refused(&mut self, to: ConnId, outcome: Queued) -> bool {
        self.server
            .refused_delivery(to, outcome, self.current, self.now);
        false
    }
}
