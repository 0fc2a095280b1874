//! A connection's end, the timers that end connections, and graceful shutdown.
//!
//! [`Server::remove`] is the one place a connection is closed and forgotten; timers and the
//! drain only decide when to call it.

use std::time::Instant;

use super::conn::{Conn, ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::handle::StopRequest;
use super::isolation::inject_panic;
use super::listeners::Port;
use super::notify;
use super::timers::{TimerKind, after};
use crate::protocol::CloseCode;

impl Server {
    /// Fires every due deadline that still applies, each isolated like the connection's
    /// other work; prunes the stale ones first when they may dominate the heap.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        if self.timers.accept_due(now) {
            self.accept_all(Port::Public, now);
            self.accept_all(Port::Internal, now);
        }
        if self.timers.needs_pruning(self.conns.len()) {
            let mut timers = std::mem::take(&mut self.timers);
            timers.prune(|at, id, kind| self.timer_applies(at, id, kind));
            self.timers = timers;
        }
        while let Some((at, id, kind)) = self.timers.pop_due(now) {
            if self.timer_applies(at, id, kind) {
                self.settle_publications(None, false, now);
                self.isolated(id, |s| s.fire_timer(id, kind, now));
            }
        }
        self.fire_ticks(now);
    }

    /// Acts on one deadline that applies.
    fn fire_timer(&mut self, id: ConnId, kind: TimerKind, now: Instant) {
        match kind {
            TimerKind::Handshake => {
                if let Some(conn) = self.get(id) {
                    inject_panic(&conn.pending);
                }
                if self.app_answer_overdue(id) {
                    return;
                }
                log::debug!("{id}: handshake timeout");
                self.stats.handshake_timeouts += 1;
                self.remove(id);
            }
            TimerKind::CloseReply => {
                log::debug!("{id}: no close reply in time");
                self.remove(id);
            }
            TimerKind::Linger => {
                log::debug!("{id}: lingering ends");
                self.remove(id);
            }
            TimerKind::Heartbeat => self.heartbeat(id, now),
            TimerKind::HandshakeRate => self.check_handshake_rate(id, now),
            TimerKind::Stall => self.check_stall(id, now),
            TimerKind::App(token) => self.app_timer(id, token, now),
        }
    }

    /// Whether a deadline armed `at` for `kind` still applies to connection `id`: the same
    /// generation, in the phase the deadline guards, and for re-armable deadlines, the one
    /// the connection holds as live. Each connection has at most three that apply (a stall
    /// check only before its close is sent, a close-reply deadline only after).
    fn timer_applies(&self, at: Instant, id: ConnId, kind: TimerKind) -> bool {
        let Some(conn) = self.get(id) else {
            return false;
        };
        match (kind, &conn.phase) {
            (TimerKind::Handshake | TimerKind::HandshakeRate, Phase::Handshaking(_)) => true,
            (TimerKind::Handshake, Phase::Body(_)) => true,
            // A complete request waiting for its app's answer has nothing left to send: the
            // slow-sender floor does not apply (its wait is bounded by the handshake
            // timeout above).
            (TimerKind::HandshakeRate, Phase::Body(request)) => !request.answer_pending,
            (TimerKind::CloseReply, Phase::Open(open)) => !open.session.can_send(),
            (TimerKind::Linger, Phase::Lingering { until, .. }) => *until == at,
            (TimerKind::Heartbeat, Phase::Open(_)) => true,
            (TimerKind::App(_), Phase::Open(_)) => conn.app.is_some(),
            (TimerKind::Stall, Phase::Open(open)) => {
                open.session.can_send() && conn.stall_check == Some(at)
            }
            _ => false,
        }
    }

    /// The connection with this id, if it still exists (same slot, same generation).
    pub(super) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.conns.get(id.index()).filter(|c| c.id == id)
    }

    /// Open WebSocket connections, of every app (`/stats`, `Ctx::open_connections`): a walk
    /// over the connections, for a status page, not for every message.
    pub(super) fn open_websockets(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| c.admitted && matches!(c.phase, Phase::Open(_)))
            .count()
    }

    /// Removes a connection: the one place sockets are closed and counts updated.
    pub(super) fn remove(&mut self, id: ConnId) {
        if self.get(id).is_none() {
            return;
        }
        let mut conn = self.conns.remove(id.index());
        self.uncharge(&mut conn);
        let _ = self.poll.registry().deregister(&mut conn.socket);
        conn.out.clear(&mut self.pool);
        if conn.admitted {
            self.admitted -= 1;
        }
        if let Some(ip) = conn.counted_ip {
            self.uncount_ip(ip);
        }
        if let Some(app) = conn.app {
            // Ended without a close frame (or before the app heard of one).
            self.leave_app(id, app, 1006, "");
            self.tell_closes(Instant::now());
        }
        log::debug!("{id}: closed ({} open)", self.conns.len());
    }

    /// Acts on a stop request; returns true when the loop should exit.
    pub(super) fn check_stop(&mut self, now: Instant) -> bool {
        match self.handle().request() {
            StopRequest::None => false,
            StopRequest::Now => true,
            StopRequest::Drain => {
                if self.drain_deadline.is_none() {
                    self.begin_drain(now);
                }
                let open = self
                    .conns
                    .iter()
                    .any(|(_, c)| matches!(c.phase, Phase::Open(_)));
                // Work still on its way (the hub's messages to Redis, an app's to its
                // backend) goes out before exit.
                let settled = !self.apps.work_in_flight();
                (!open && settled) || self.drain_deadline.is_some_and(|d| now >= d)
            }
        }
    }

    /// Graceful shutdown: refuse new upgrades, send 1001 to everyone, wait for replies.
    ///
    /// The listener stays open during the drain only to answer probes: `/readyz` says 503
    /// and a new WebSocket upgrade gets 503 with `Retry-After`, so a load balancer sees the
    /// node turn unready instead of a refused connection.
    fn begin_drain(&mut self, now: Instant) {
        log::info!("draining {} connections", self.conns.len());
        notify::notify(notify::STOPPING);
        self.drain_deadline = Some(after(now, self.config.drain_timeout));
        // Apps say goodbye (or close with their own code) before the engine's 1001.
        self.shut_apps(now);
        let ids: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        // One batch: the hub hears of every departure at once (no presence among leavers).
        self.closes_together(now, |s| {
            for id in ids {
                s.close_conn(id, CloseCode::GOING_AWAY, "server shutting down", now);
            }
        });
        self.flush_dirty(now);
    }

    /// Starts the closing handshake on one connection (or drops it if not upgraded).
    pub(super) fn close_conn(&mut self, id: ConnId, code: CloseCode, reason: &str, now: Instant) {
        // Its close frame comes after what was published before it.
        self.settle_publications(None, false, now);
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        match &mut conn.phase {
            Phase::Open(open) => {
                let session = &mut open.session;
                let mut sent = false;
                conn.out.append(&mut self.pool, |out| {
                    sent = session.close(code, reason, out)
                });
                if sent {
                    self.stats.close_sent(code.0);
                    self.timers.arm(
                        after(now, self.config.close_timeout),
                        id,
                        TimerKind::CloseReply,
                    );
                    self.dirty.push(id);
                    self.app_closed(id, code.0, reason, now);
                }
            }
            Phase::Handshaking(_) | Phase::Body(_) => self.remove(id),
            Phase::Lingering { .. } => {}
        }
    }
}
