//! Applying the hub's outbox to connections (with the slow-consumer cap), and its history
//! writes.

use std::time::Instant;

use super::state::HubState;
use crate::hub::Outbox;
use crate::protocol::frame::SharedFrame;
use crate::server::compress::{Compression, queue_shared_frame};
use crate::server::conn::{ConnId, Phase, conn_mut};
use crate::server::event_loop::Server;
use crate::server::fan_out::Queued;
use std::rc::Rc;

impl HubState {
    /// Queues every frame the hub asked for, then performs the closes it asked for.
    ///
    /// A recipient with permessage-deflate gets the frame compressed (see [`crate::server::compress`]:
    /// once per window size for the whole batch when the server keeps no context).
    ///
    /// A recipient whose unsent bytes would pass `max_outbound_bytes` is closed with 1008
    /// "slow consumer" instead; nobody else waits for it. Run by
    /// [`HubState::apply_outbox`]'s loop.
    pub(in crate::server) fn apply_outbox_once(&mut self, server: &mut Server, now: Instant) {
        let mut outbox = std::mem::take(&mut self.outbox);
        if outbox.wants_cluster() {
            self.route_to_bus(server, &mut outbox);
            // Local fallbacks went into the fresh outbox; take them along in this pass.
            let fallback = std::mem::take(&mut self.outbox);
            outbox.sends.extend(fallback.sends);
            outbox.persist.extend(fallback.persist);
            outbox.closes.extend(fallback.closes);
        }
        // Written before anyone receives (or is acknowledged) the message.
        self.write_history(&mut outbox);
        let mut failed = Vec::new();
        for (to, frame) in outbox.sends.drain(..) {
            match server.queue_shared(to, &frame) {
                Queued::Sent | Queued::Skipped => {}
                Queued::TooSlow => server.close_slow_consumer(to, now),
                Queued::Failed => failed.push(to),
            }
        }
        for id in failed {
            server.compressor_failed(id, now);
        }
        // Renewed tokens are the hub app's, taken in its `on_message`.
        outbox.renewed.clear();
        server.deflate_cache.clear();
        for close in outbox.closes.drain(..) {
            server.close_conn(close.to, close.code, close.reason, now);
        }
        if self.outbox.is_empty() {
            self.outbox = outbox; // Keep the allocations.
        }
    }

    /// Writes the messages `outbox` queued for the history log; if the log refuses them,
    /// withdraws them (see [`HubState::withdraw_unwritten`]) and returns `false`.
    pub(in crate::server) fn write_history(&mut self, outbox: &mut Outbox) -> bool {
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

impl HubState {
    /// Queues the hub's answers to `id` now, ahead of anything queued after this (its
    /// close frame, after a protocol error that followed the requests they answer), even
    /// though its session no longer sends.
    pub(in crate::server) fn queue_own_replies(&mut self, server: &mut Server, id: ConnId) {
        if self.outbox.sends.iter().all(|(to, _)| *to != id) {
            return;
        }
        let Some(conn) = conn_mut(&mut server.conns, id) else {
            return;
        };
        let Phase::Open(open) = &mut conn.phase else {
            return;
        };
        let mut compression = Compression {
            pool: &mut server.pool,
            deflaters: &mut server.deflaters,
            cache: &mut server.deflate_cache,
            stats: &mut server.stats,
        };
        self.outbox.sends.retain(|(to, frame)| {
            if *to != id {
                return true;
            }
            queue_shared_frame(&mut open.session, &mut conn.out, frame, &mut compression);
            compression.stats.messages_out += 1;
            false
        });
        server.deflate_cache.clear();
    }
}
