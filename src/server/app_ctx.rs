//! [`Ctx`]: what an application can ask of the engine from a callback.

use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use super::app::{Health, HttpTicket, MAX_TIMER, Message};
use super::app_waker::AppWaker;
use super::apps::AppId;
use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::readiness::Readiness;
use super::timers::{TimerKind, after};
use crate::protocol::http::Response;
use crate::protocol::{CloseCode, MessageKind, OpCode};

/// The engine, lent to an app for the length of one callback.
pub struct Ctx<'a> {
    pub(super) server: &'a mut Server,
    /// The app being called (topics are per app).
    pub(super) app: AppId,
    /// The connection whose message is being handled: replies to it are bounded by the
    /// engine pausing its reads, not by the slow-consumer cap.
    pub(super) current: Option<ConnId>,
    /// The current connection failed on input read after the message being handled: its
    /// close frame is queued after this call, so replies to the message may still be sent.
    pub(super) failing: bool,
    pub(super) now: Instant,
}

impl Ctx<'_> {
    /// Queues `message` for `conn` (compressed if the connection agreed to
    /// permessage-deflate); `false` if the connection is gone or closing, or if its
    /// compressor failed (it is closed with 1011 instead). A connection
    /// other than the one whose message is being handled that already holds more than
    /// `server.max_outbound_bytes` unsent is closed with 1008 "slow consumer" instead.
    #[inline(always)]
    pub fn send(&mut self, conn: ConnId, message: Message<'_>) -> bool {
        if !self.server.publications.is_empty() {
            return self.settle_and_send(conn, message);
        }
        if self.current == Some(conn) {
            self.reply(conn, message)
        } else {
            self.send_other(conn, message)
        }
    }

    /// [`Ctx::send`] with publications held: they are queued first (they were published
    /// first). Out of line, so that the check costs a reply nearly nothing.
    #[cold]
    #[inline(never)]
    fn settle_and_send(&mut self, conn: ConnId, message: Message<'_>) -> bool {
        self.settle();
        self.send(conn, message)
    }

    /// [`Ctx::send`] to the connection whose message is being handled (the common case: a
    /// reply). No slow-consumer cap (the engine pausing its reads bounds it) and no flush
    /// to schedule (it is flushed right after its input, `after_input`), so an
    /// uncompressed reply is a lookup, two checks and the frame written into its queue.
    #[inline]
    fn reply(&mut self, conn: ConnId, message: Message<'_>) -> bool {
        let server = &mut *self.server;
        let Some(target) = conn_mut(&mut server.conns, conn) else {
            return false;
        };
        let Phase::Open(open) = &mut target.phase else {
            return false;
        };
        // It is this app's (the engine reads it for this app, and an open connection's
        // endpoint never changes). One that failed on input read after this message may
        // still be replied to: its close frame is queued after this call.
        debug_assert!(open.app == self.app);
        if !(open.session.can_send() || self.failing) {
            return false;
        }
        if open.session.deflate().is_some() {
            return self.send_compressed(conn, message);
        }
        let (_, opcode) = kind_of(message);
        let payload = message.as_bytes();
        target.out.append_frame(&mut server.pool, opcode, payload);
        server.stats.messages_out += 1;
        true
    }

    /// [`Ctx::send`] to any other connection of the app.
    fn send_other(&mut self, conn: ConnId, message: Message<'_>) -> bool {
        let payload = message.as_bytes();
        let cap = self.server.config.max_outbound_bytes;
        let server = &mut *self.server;
        let Some(target) = conn_mut(&mut server.conns, conn) else {
            return false;
        };
        if !app_conn(target, self.app) || !target.can_send() {
            return false;
        }
        if target.out.len() + payload.len() > cap {
            return self.slow(conn);
        }
        let Phase::Open(open) = &mut target.phase else {
            return false;
        };
        let was_empty = target.out.is_empty();
        if open.session.deflate().is_some() {
            if !self.send_compressed(conn, message) {
                return false;
            }
        } else {
            let (_, opcode) = kind_of(message);
            target.out.append_frame(&mut server.pool, opcode, payload);
            server.stats.messages_out += 1;
        }
        if was_empty {
            self.server.dirty.push(conn);
        }
        true
    }

    /// Compresses `message` into the queue of `conn`, an open connection of this app with
    /// permessage-deflate; `false` if the compressor failed (the session then failed with
    /// 1011 in place of the message).
    fn send_compressed(&mut self, conn: ConnId, message: Message<'_>) -> bool {
        let (kind, _) = kind_of(message);
        let server = &mut *self.server;
        let Some(target) = conn_mut(&mut server.conns, conn) else {
            return false;
        };
        let Phase::Open(open) = &mut target.phase else {
            return false;
        };
        let (session, deflaters) = (&mut open.session, &mut server.deflaters);
        let sent = target.out.append(&mut server.pool, |buf| {
            session.send_pooled(kind, message.as_bytes(), deflaters, buf)
        });
        if sent.is_err() {
            // The connection being read moves on after its input (`after_input`); another
            // now.
            if self.current == Some(conn) {
                server.stats.close_sent(CloseCode::INTERNAL_ERROR.0);
            } else {
                server.compressor_failed(conn, self.now);
            }
            return false;
        }
        server.stats.messages_out += 1;
        true
    }

    /// Publishes `message` to every connection subscribed to `topic`: encoded once,
    /// queued to each by reference (compressed once per window size for connections with
    /// permessage-deflate and no server context takeover). Subscribers over the
    /// slow-consumer cap are closed 1008, the connection whose message is being handled
    /// too: a fan-out's answer to one request can be far larger than the request (a
    /// room's history), where a reply through [`Ctx::send`] is the app's own to size.
    ///
    /// The frame is queued when the loop's turn flushes its output, subscriber by
    /// subscriber with each written as soon as its frames are queued (so the first does
    /// not wait while a run of publications is queued to all the others), or sooner:
    /// before anything else reaches a subscriber (a `send`, a close, a subscription
    /// change, a publication to another topic, the next socket event). What a connection
    /// receives is therefore in the order it was sent or published, and a connection
    /// subscribed after this call does not get it. Returns how many subscribers the topic
    /// has (a subscriber found closing, or over the cap, when the frame is queued does not
    /// get it).
    pub fn publish(&mut self, topic: &str, message: Message<'_>) -> usize {
        if self.subscribers(topic) == 0 {
            return 0; // nothing to encode for
        }
        let prepared = self.prepare(message);
        self.publish_prepared(topic, &prepared)
    }

    /// Subscribes `conn` to `topic` (of this app); `false` if it already was, or is not
    /// one of this app's open connections.
    pub fn subscribe(&mut self, conn: ConnId, topic: &str) -> bool {
        // Not to what was published before it subscribed.
        self.settle();
        let ours = self
            .server
            .get(conn)
            .is_some_and(|c| app_conn(c, self.app) && c.can_send());
        ours && self.server.apps.subscribe(self.app, conn, topic)
    }

    /// Unsubscribes `conn` from `topic`; `false` if it was not subscribed.
    pub fn unsubscribe(&mut self, conn: ConnId, topic: &str) -> bool {
        // What was published while it was subscribed still reaches it.
        self.settle();
        self.server.apps.unsubscribe(self.app, conn, topic)
    }

    /// How many connections are subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.server.apps.subscriber_count(self.app, topic)
    }

    /// Starts the closing handshake with `code` and `reason` (at most 123 bytes are sent).
    /// [`super::App::on_close`] follows at once with this code.
    pub fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        // (`close_conn` queues what was published before the close frame.)
        if self.server.get(conn).is_some_and(|c| app_conn(c, self.app)) {
            self.server
                .close_conn(conn, CloseCode(code), reason, self.now);
        }
    }

    /// Bytes queued for `conn` and not yet written to its socket (0 if it is gone),
    /// publications to it this turn included.
    pub fn buffered_amount(&self, conn: ConnId) -> usize {
        let Some(queued) = self.server.get(conn).map(|c| c.out.len()) else {
            return 0;
        };
        let held = match self.server.publications.topic() {
            Some((app, topic)) if self.server.apps.is_subscribed(app, conn, topic) => {
                self.server.publications.held_bytes()
            }
            _ => 0,
        };
        queued + held
    }

    /// Queues the publications held for the end of the turn (see `publications`) before
    /// this call reaches a connection.
    #[inline(always)]
    pub(super) fn settle(&mut self) {
        self.server
            .settle_publications(self.current, self.failing, self.now);
    }

    /// Calls [`super::App::on_timer`] with `token` for `conn` after `delay` (clamped to
    /// [`MAX_TIMER`]), unless the connection has closed by then. Timers are not cancelled:
    /// an app that re-arms ignores tokens it no longer expects.
    pub fn timer(&mut self, conn: ConnId, delay: Duration, token: u64) {
        if self.server.get(conn).is_some_and(|c| app_conn(c, self.app)) {
            let at = after(self.now, delay.min(MAX_TIMER));
            self.server.timers.arm(at, conn, TimerKind::App(token));
        }
    }

    /// Calls [`super::App::on_tick`] with `token` after `delay` (clamped to [`MAX_TIMER`]):
    /// a timer of the app's own, tied to no connection (a periodic cleanup, a game's
    /// tick). Ticks are not cancelled and do not repeat: `on_tick` re-arms.
    pub fn tick(&mut self, delay: Duration, token: u64) {
        let at = after(self.now, delay.min(MAX_TIMER));
        self.server.timers.arm_tick(at, self.app, token);
    }

    /// A waker for this app, for a thread it starts (from [`super::App::on_start`], say):
    /// [`AppWaker::wake`] there calls [`super::App::on_wake`] here.
    pub fn waker(&self) -> AppWaker {
        self.server.waker_of(self.app)
    }

    /// Answers a plain HTTP request the app said it would answer later
    /// ([`super::HttpReply::Later`]); `false` if it is no longer waiting: answered already,
    /// past the handshake timeout (the client got 504), or the client left.
    pub fn respond(&mut self, ticket: HttpTicket, response: Response) -> bool {
        self.server.answer_later(self.app, ticket, response)
    }

    /// How many connections' closes have been queued for their apps since the loop began
    /// ([`super::Run::next`] stops when it moves, so a close is told before the next
    /// message).
    #[inline]
    pub(super) fn closes_queued(&self) -> u64 {
        self.server.apps.closes_queued()
    }

    /// The loop's time for this turn.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The wall-clock time the loop read with [`Ctx::now`] this turn (for timestamps and
    /// token expiry; it may step, unlike `now`).
    pub fn wall_clock(&self) -> SystemTime {
        self.server.wall_now.wall
    }

    /// When the server started serving.
    pub fn started(&self) -> Instant {
        self.server.stats.started
    }

    /// Open WebSocket connections on this server, of every app (counted by walking the
    /// connections: for a status page, not for every message).
    pub fn open_connections(&self) -> usize {
        self.server.open_websockets()
    }

    /// The server's readiness as `/readyz` gives it, with `own` as this app's health (an
    /// app is not asked for its health while it is being called, so it says it here).
    pub fn readiness(&self, own: Health) -> Readiness {
        self.server.readiness().with(own)
    }

    /// Runs `work` under the engine's safety net, for work an app does for no single
    /// connection (an event from a thread of its own): a panic in it is logged with
    /// `what`, counted in `wsloop_panics_total`, and contained, and the loop goes on.
    /// Returns whether it panicked: the app then drops what the work left half-done (the
    /// connections it was sending to are not closed for it).
    pub fn contained(&mut self, what: &str, work: impl FnOnce(&mut Ctx<'_>)) -> bool {
        match panic::catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(()) => false,
            Err(payload) => {
                self.server.contain(what, &*payload);
                true
            }
        }
    }

    /// Closes a subscriber that fell too far behind.
    fn slow(&mut self, conn: ConnId) -> bool {
        self.server.close_slow_consumer(conn, self.now);
        false
    }
}

/// Whether `conn` is an open connection of `app`.
#[inline]
pub(super) fn app_conn(conn: &super::conn::Conn, app: AppId) -> bool {
    matches!(&conn.phase, Phase::Open(open) if open.app == app)
}

/// The frame kind and opcode of a message.
#[inline]
pub(super) fn kind_of(message: Message<'_>) -> (MessageKind, OpCode) {
    match message {
        Message::Text(_) => (MessageKind::Text, OpCode::Text),
        Message::Binary(_) => (MessageKind::Binary, OpCode::Binary),
    }
}

/// Interned topic names.
pub(super) type Topic = Rc<str>;
