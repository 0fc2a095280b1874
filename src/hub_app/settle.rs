//! Settling the hub's output: one loop, a work queue, no recursion.
//!
//! Applying the hub's outbox can close connections (a slow consumer over its cap, a failed
//! compressor); each close takes the connection out of the hub, which sends presence to the
//! others, which can push the next member over its cap. Done by recursion, that cascade grew
//! the loop's stack by one `apply_outbox` per member closed and told every remaining member
//! about every departure one at a time: O(N) deep and O(N²) frames for a room of N.
//!
//! It is not done by recursion: the App API tells an app of the closes a callback made only
//! once the callback returns, all of them in one `App::on_closes`, and the hub answers a
//! batch with [`crate::hub::Hub::disconnect_all`] (one presence frame per remaining member
//! per room), whose answers are the next wave. The app is never called while it is in a
//! callback, so nothing here recurses.

use super::state::HubState;
use crate::server::Ctx;

impl HubState {
    /// Applies everything the hub asked for, and everything that follows from it here
    /// (local fallbacks, messages withdrawn when the history log refuses them), until
    /// nothing is left. The closes it makes are told to the hub once the callback that
    /// called this returns.
    pub(crate) fn apply_outbox(&mut self, ctx: &mut Ctx<'_>) {
        while !self.outbox.is_empty() {
            self.apply_outbox_once(ctx);
        }
    }
}
