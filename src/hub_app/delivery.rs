//! Applying the hub's outbox to its connections through the App API, and its history
//! writes.

use std::rc::Rc;

use super::state::HubState;
use crate::hub::Outbox;
use crate::protocol::frame::SharedFrame;
use crate::server::{Ctx, Prepared};

impl HubState {
    /// Sends every frame the hub asked for, then performs the closes it asked for, all
    /// through the App API: each frame is the hub's encoded once, queued to each of its
    /// recipients by [`Ctx::send_prepared`] (compressed once per window size for the
    /// callback's recipients that use permessage-deflate without context takeover); a
    /// recipient over `max_outbound_bytes` unsent is closed 1008 "slow consumer" there,
    /// and nobody else waits for it. Run by [`HubState::apply_outbox`]'s loop.
    pub(crate) fn apply_outbox_once(&mut self, ctx: &mut Ctx<'_>) {
        let mut outbox = std::mem::take(&mut self.outbox);
        if outbox.wants_cluster() {
            self.route_to_bus(ctx, &mut outbox);
            // Local fallbacks went into the fresh outbox; take them along in this pass.
            let fallback = std::mem::take(&mut self.outbox);
            outbox.sends.extend(fallback.sends);
            outbox.persist.extend(fallback.persist);
            outbox.closes.extend(fallback.closes);
        }
        // Written before anyone receives (or is acknowledged) the message.
        self.write_history(&mut outbox);
        for (to, frame) in outbox.sends.drain(..) {
            ctx.send_prepared(to, &Prepared::from_frame(frame));
        }
        // Renewed tokens are the hub app's, taken in its `on_message`.
        outbox.renewed.clear();
        for close in outbox.closes.drain(..) {
            ctx.close(close.to, close.code.0, close.reason);
        }
        if self.outbox.is_empty() {
            self.outbox = outbox; // Keep the allocations.
        }
    }

    /// Writes the messages `outbox` queued for the history log; if the log refuses them,
    /// withdraws them (see [`HubState::withdraw_unwritten`]) and returns `false`.
    pub(crate) fn write_history(&mut self, outbox: &mut Outbox) -> bool {
        if outbox.persist.is_empty() {
            return true;
        }
        let mut written = true;
        if let Some(log) = &mut self.history_log
            && let Err(e) = log.append(&outbox.persist)
        {
            log::error!("history log write failed: {e}");
            self.counters.history_write_errors += 1;
            self.withdraw_unwritten(outbox);
            written = false;
        }
        outbox.persist.clear();
        written
    }

    /// The history log could not take these messages: nobody receives them, their
    /// senders get `unavailable` instead of an `ack`, and their offsets are given again.
    fn withdraw_unwritten(&mut self, outbox: &mut Outbox) {
        let records = std::mem::take(&mut outbox.persist);
        let unwritten = |frame: &SharedFrame| {
            records.iter().any(|r| {
                Rc::ptr_eq(&r.frame, frame) || r.ack.as_ref().is_some_and(|a| Rc::ptr_eq(a, frame))
            })
        };
        outbox.sends.retain(|(_, frame)| !unwritten(frame));
        for record in records.iter().rev() {
            self.hub.unrecord(record, outbox);
        }
    }
}
