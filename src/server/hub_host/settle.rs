//! Settling the hub's output: one loop, a work queue, no recursion.
//!
//! Applying the hub's outbox can close connections (a slow consumer over its cap, a failed
//! compressor); each close takes the connection out of the hub, which sends presence to the
//! others, which can push the next member over its cap. Done by recursion, that cascade grew
//! the loop's stack by one `apply_outbox` per member closed and told every remaining member
//! about every departure one at a time: O(N) deep and O(N²) frames for a room of N.
//!
//! Instead a departure is queued in `Server::leaving` and [`Server::apply_outbox`] drains
//! both queues in one loop: each turn hands every departure queued so far to the hub in one
//! batch ([`crate::hub::Hub::disconnect_all`], one presence frame per remaining member per
//! room), then applies the resulting outbox, whose closes queue the next wave. Calls made
//! while it runs (a close inside the outbox) only queue, and return.

use std::time::Instant;

use crate::server::conn::{ConnId, conn_mut};
use crate::server::event_loop::Server;

impl Server {
    /// Applies everything the hub asked for, and everything that follows from it (closes,
    /// their departures, the presence those send), until nothing is left. Re-entrant calls
    /// return at once: the running loop picks their work up.
    pub(in crate::server) fn apply_outbox(&mut self, now: Instant) {
        if std::mem::replace(&mut self.settling, true) {
            return;
        }
        loop {
            if !self.leaving.is_empty() {
                let leaving = std::mem::take(&mut self.leaving);
                self.hub
                    .disconnect_all(&leaving, self.wall_now, &mut self.outbox);
            }
            if self.outbox.is_empty() {
                break;
            }
            self.apply_outbox_once(now);
        }
        self.settling = false;
    }

    /// Runs `work` (which may close many connections), then settles once, so the hub (and
    /// every app, [`Server::closes_together`]) hears of all the departures together.
    pub(in crate::server) fn settle_after(&mut self, now: Instant, work: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.settling, true);
        self.closes_together(now, work);
        self.settling = outer;
        self.apply_outbox(now);
    }

    /// Takes a connection out of the hub as soon as it can no longer receive (its close was
    /// sent or received), so presence, counts and deliveries stop counting it at once rather
    /// than when its socket finally goes.
    pub(in crate::server) fn leave_hub(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        if !std::mem::replace(&mut conn.in_hub, false) {
            return;
        }
        self.leaving.push(id);
        self.apply_outbox(now);
    }
}
