//! Settling the hub's output: one loop, a work queue, no recursion.
//!
//! Applying the hub's outbox can close connections (a slow consumer over its cap, a failed
//! compressor); each close takes the connection out of the hub, which sends presence to the
//! others, which can push the next member over its cap. Done by recursion, that cascade grew
//! the loop's stack by one `apply_outbox` per member closed and told every remaining member
//! about every departure one at a time: O(N) deep and O(N²) frames for a room of N.
//!
//! Instead [`HubState::apply_outbox`] applies the outbox in a loop, and the closes it made
//! are told to the hub's app in one batch once its callback returns (`App::on_closes`,
//! then [`crate::hub::Hub::disconnect_all`]: one presence frame per remaining member per
//! room), whose answers are the next wave. The app is never called while it is in a
//! callback, so nothing here recurses.

use std::time::Instant;

use super::state::HubState;
use crate::server::event_loop::Server;

impl HubState {
    /// Applies everything the hub asked for, and everything that follows from it on this
    /// node (closes of slow consumers, and local fallbacks), until nothing is left. The
    /// closes of each wave are told to apps together ([`Server::closes_together`]); the
    /// hub's app, being in the callback that called this, hears of them in one
    /// `on_closes` once the callback returns, whose departures make the next wave.
    pub(in crate::server) fn apply_outbox(&mut self, server: &mut Server, now: Instant) {
        while !self.outbox.is_empty() {
            server.closes_together(now, |s| self.apply_outbox_once(s, now));
        }
    }
}
