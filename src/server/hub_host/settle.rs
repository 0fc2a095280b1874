//! Settling the hub's output: one loop, a work queue, no recursion.
//!
//! Applying the hub's outbox can close connections (a slow consumer over its cap, a failed
//! compressor); each close takes the connection out of the hub, which sends presence to the
//! others, which can push the next member over its cap. Done by recursion, that cascade grew
//! the loop's stack by one `apply_outbox` per member closed and told every remaining member
//! about every departure one at a time: O(N) deep and O(N²) frames for a room of N.
//!
//! Instead [`Server::apply_outbox`] is a loop: each turn applies the outbox, and the closes
//! it made are told to the hub's app in one batch (`App::on_closes`, then
//! [`crate::hub::Hub::disconnect_all`]: one presence frame per remaining member per room),
//! whose answers are the next turn's outbox. Calls made while it runs (from that
//! `on_closes`) only fill the outbox, and return.

use std::time::Instant;

use crate::server::event_loop::Server;

impl Server {
    /// Applies everything the hub asked for, and everything that follows from it (closes,
    /// their departures, the presence those send), until nothing is left. The closes of
    /// each wave are told to the hub together ([`Server::closes_together`]: one
    /// `on_closes`, whose departures fill the outbox for the next wave). Re-entrant calls
    /// (from that `on_closes`) return at once: this loop applies their work.
    pub(in crate::server) fn apply_outbox(&mut self, now: Instant) {
        if std::mem::replace(&mut self.settling, true) {
            return;
        }
        while !self.outbox.is_empty() {
            self.closes_together(now, |s| s.apply_outbox_once(now));
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
}
