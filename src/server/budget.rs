//! One budget for partly received messages across all connections.
//!
//! Each connection's reassembly is capped by `max_message`, but a thousand clients that each
//! send most of a 16 MiB message and stop would still hold 16 GB between them. The loop
//! therefore charges every connection's partial message (the capacity its assembler holds)
//! to `server.max_buffered_bytes`. A read that grows a connection's share while the total is
//! over the budget sheds that connection: close 1013 "server busy" (try again later), and
//! the connection lingers without a session, so its buffer is freed at once and nothing it
//! still sends is parsed. Connections within the budget are not disturbed.

use std::time::Instant;

use super::conn::{Conn, ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::timers::{TimerKind, after};
use crate::protocol::CloseCode;

impl Server {
    /// After input on `id`: charges its partial message to the budget; sheds it if it grew
    /// while the budget is exceeded.
    pub(super) fn charge_buffered(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let held = match &conn.phase {
            Phase::Open(open) => open.session.buffered_bytes(),
            _ => 0,
        };
        let before = std::mem::replace(&mut conn.buffered, held);
        self.stats.buffered_bytes = self.stats.buffered_bytes - before + held;
        if held > before && self.stats.buffered_bytes > self.config.max_buffered_bytes {
            self.shed(id, now);
        }
    }

    /// Takes a connection's share out of the budget (it is being removed).
    pub(super) fn uncharge(&mut self, conn: &mut Conn) {
        self.stats.buffered_bytes -= std::mem::take(&mut conn.buffered);
    }

    /// Closes `id` with 1013 and drops its session (and the message it was receiving).
    fn shed(&mut self, id: ConnId, now: Instant) {
        self.settle_publications(Some(id), false, now);
        let close_timeout = self.config.close_timeout;
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let Phase::Open(open) = &mut conn.phase else {
            return;
        };
        log::info!("{id}: over the buffered-bytes budget, closing 1013");
        let session = &mut open.session;
        let sent = conn.out.append(&mut self.pool, |out| {
            session.close(CloseCode::TRY_AGAIN_LATER, "server busy", out)
        });
        if sent {
            self.stats.close_sent(CloseCode::TRY_AGAIN_LATER.0);
        }
        let until = after(now, close_timeout);
        conn.phase = Phase::Lingering {
            shut: false,
            peer_done: false,
            until,
        };
        conn.pending = Vec::new();
        self.stats.buffered_bytes -= std::mem::take(&mut conn.buffered);
        self.stats.budget_closes += 1;
        self.timers.arm(until, id, TimerKind::Linger);
        self.dirty.push(id);
        self.app_closed(id, CloseCode::TRY_AGAIN_LATER.0, "", now);
    }
}
