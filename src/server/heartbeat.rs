//! The heartbeat of open connections: a ping every `ping_interval`, and a close (1001
//! "idle timeout") once nothing arrived for `idle_timeout` (RFC 6455 §5.5.2: a ping may
//! serve as a keepalive).

use std::time::Instant;

use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::timers::{TimerKind, after};
use crate::protocol::CloseCode;

impl Server {
    /// The heartbeat timer of an open connection fired: ping it, or close it if idle.
    ///
    /// Only one heartbeat deadline per connection is ever armed; activity just moves
    /// `last_seen`, and the deadline is recomputed here.
    pub(super) fn heartbeat(&mut self, id: ConnId, now: Instant) {
        let (interval, idle_timeout) = (self.config.ping_interval, self.config.idle_timeout);
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let Phase::Open(open) = &mut conn.phase else {
            return;
        };
        if !open.session.can_send() {
            return;
        }
        let idle_deadline = after(conn.last_seen, idle_timeout);
        if now >= idle_deadline {
            log::debug!("{id}: idle for {:?}, closing", now - conn.last_seen);
            return self.close_conn(id, CloseCode::GOING_AWAY, "idle timeout", now);
        }
        let session = &mut open.session;
        let was_empty = conn.out.is_empty();
        let _ = conn
            .out
            .append(&mut self.pool, |out| session.ping(&[], out));
        if was_empty {
            self.dirty.push(id);
        }
        self.timers.arm(
            after(now, interval).min(idle_deadline),
            id,
            TimerKind::Heartbeat,
        );
    }
}
