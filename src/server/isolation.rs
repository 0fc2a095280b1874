//! The safety net: one connection's bug closes that connection, never the server.
//!
//! wsloop is one thread, so a panic that reached the loop would disconnect every client at
//! once. Work done for one connection (its bytes, its hub requests, an API request, its
//! timers, its writes) therefore runs under [`std::panic::catch_unwind`]. A panic there is
//! logged with the connection id, counted in `wsloop_panics_total`, and answered with close
//! 1011 (or HTTP 500 before the upgrade); everyone else goes on being served.
//!
//! What the panic may have left half-done is dropped rather than trusted: the app is told
//! (`App::on_panicked`: the hub drops its outbox, a fan-out that stopped midway), and the
//! engine drops the compressed-frame cache and the connection's unparsed input. The
//! connection stops reading, leaves its app, and lingers
//! until its close is out. If even that panics, the connection is forgotten outright (its
//! app is not told: its `on_close` could panic again, outside the net). The
//! release profile keeps `panic = "unwind"` for this (Cargo.toml).

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::timers::{TimerKind, after};
use crate::protocol::CloseCode;
use crate::protocol::http::Response;

impl Server {
    /// Runs `work` for connection `id`; a panic in it closes that connection only.
    pub(super) fn isolated(&mut self, id: ConnId, work: impl FnOnce(&mut Self)) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| work(self))) {
            self.contain(&id.to_string(), &*payload);
            self.fail_or_forget(id);
        }
    }

    /// Runs `work` done for no single connection (a Redis event); a panic in it is logged
    /// and counted, and the loop goes on. Returns whether it panicked: the caller drops
    /// what the work left half-done.
    pub(super) fn isolated_shared(&mut self, what: &str, work: impl FnOnce(&mut Self)) -> bool {
        let result = panic::catch_unwind(AssertUnwindSafe(|| work(self)));
        if let Err(payload) = &result {
            self.contain(what, &**payload);
        }
        result.is_err()
    }

    /// Logs and counts a caught panic and drops the engine's half-done work of the event
    /// (the app whose callback panicked was told to drop its own: `App::on_panicked`).
    pub(super) fn contain(&mut self, who: &str, payload: &(dyn Any + Send)) {
        self.stats.panics += 1;
        log::error!(
            "{who}: panic: {}; serving the others",
            panic_message(payload)
        );
        self.deflate_cache.clear();
    }

    /// Logs and counts a panic in an app's `on_closes`; the connections it was told of are
    /// closing already, and the others go on.
    pub(super) fn contain_close_panic(&mut self, payload: &(dyn Any + Send)) {
        self.stats.panics += 1;
        self.deflate_cache.clear();
        log::error!(
            "an app's on_close panicked: {}; serving the others",
            panic_message(payload)
        );
    }

    /// Closes a connection whose work panicked; forgets it if closing panics too.
    fn fail_or_forget(&mut self, id: ConnId) {
        let failed = panic::catch_unwind(AssertUnwindSafe(|| self.fail_conn(id)));
        if let Err(payload) = failed {
            self.contain(&id.to_string(), &*payload);
            self.forget(id);
        }
    }

    /// 1011 for an open WebSocket, 500 for a request; input after this is ignored.
    fn fail_conn(&mut self, id: ConnId) {
        // What the callback published before it panicked goes out ahead of the 1011.
        self.settle_publications(None, false, self.wall_now.mono);
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        conn.pending = Vec::new();
        let session = match &mut conn.phase {
            Phase::Open(open) => &mut open.session,
            Phase::Handshaking(_) | Phase::Body(_) => {
                self.stats.rejected(500);
                return self.respond(id, Response::text(500, "internal server error"));
            }
            Phase::Lingering { .. } => return self.remove(id),
        };
        let mut sent = false;
        conn.out.append(&mut self.pool, |out| {
            sent = session.close(CloseCode::INTERNAL_ERROR, "internal error", out);
        });
        // Lingering: the close goes out, the write side is shut, and nothing the peer still
        // sends is parsed by a session that may be inconsistent.
        let now = self.wall_now.mono;
        let until = after(now, self.config.close_timeout);
        conn.phase = Phase::Lingering {
            shut: false,
            peer_done: false,
            until,
        };
        if sent {
            self.stats.close_sent(CloseCode::INTERNAL_ERROR.0);
        }
        self.timers.arm(until, id, TimerKind::Linger);
        self.dirty.push(id);
        self.app_closed(id, CloseCode::INTERNAL_ERROR.0, "internal error", now);
    }

    /// Drops a connection without asking its app (whose state for it may be what panics:
    /// its `on_close` would run outside any safety net here). The engine's own record of
    /// it (its topics) goes; the app is not told.
    fn forget(&mut self, id: ConnId) {
        if let Some(conn) = conn_mut(&mut self.conns, id)
            && let Some(app) = conn.app.take()
        {
            self.apps.unsubscribe_all(app, id);
        }
        self.remove(id);
    }
}

/// The message a panic was raised with, when it is a string.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

/// Test builds only: the bytes that make [`inject_panic`] panic.
#[cfg(test)]
pub(super) const PANIC_TRIGGER: &[u8] = b"wsloop-test-inject-panic";

/// Test builds only: panics when `input` holds [`PANIC_TRIGGER`], so tests can prove the
/// safety net at each place that calls this. Compiled to nothing in every other build.
#[cfg(test)]
pub(crate) fn inject_panic(input: &[u8]) {
    if input
        .windows(PANIC_TRIGGER.len())
        .any(|w| w == PANIC_TRIGGER)
    {
        panic!("injected panic (test builds only)");
    }
}

/// Test builds only; nothing here.
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn inject_panic(_input: &[u8]) {}

#[cfg(test)]
mod tests;
