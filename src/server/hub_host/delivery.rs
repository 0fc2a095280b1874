//! Applying the hub's outbox to connections (with the slow-consumer cap), its history
//! writes, and the expiry of its connections' tokens.

use std::time::{Duration, Instant};

use crate::auth::time_left;
use crate::hub::Outbox;
use crate::protocol::CloseCode;
use crate::protocol::frame::SharedFrame;
use crate::server::compress::{Compression, queue_hub_frame};
use crate::server::conn::{ConnId, Phase, conn_mut};
use crate::server::event_loop::Server;
use crate::server::fan_out::Queued;
use crate::server::timers::{TimerKind, after};
use std::rc::Rc;

impl Server {
    /// Queues every frame the hub asked for, then performs the closes it asked for.
    ///
    /// A recipient with permessage-deflate gets the frame compressed (see [`crate::server::compress`]:
    /// once per window size for the whole batch when the server keeps no context).
    ///
    /// A recipient whose unsent bytes would pass `max_outbound_bytes` is closed with 1008
    /// "slow consumer" instead; nobody else waits for it. Run by [`Server::apply_outbox`]'s
    /// loop, once per wave of a cascade.
    pub(in crate::server) fn apply_outbox_once(&mut self, now: Instant) {
        let mut outbox = std::mem::take(&mut self.outbox);
        if outbox.wants_cluster() {
            self.route_to_bus(&mut outbox);
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
            match self.queue_shared(to, &frame) {
                Queued::Sent | Queued::Skipped => {}
                Queued::TooSlow => self.close_slow_consumer(to, now),
                Queued::Failed => failed.push(to),
            }
        }
        for id in failed {
            self.compressor_failed(id, now);
        }
        for id in outbox.renewed.drain(..) {
            self.token_renewed(id, now);
        }
        self.deflate_cache.clear();
        for close in outbox.closes.drain(..) {
            self.close_conn(close.to, close.code, close.reason, now);
        }
        if self.outbox.is_empty() {
            self.outbox = outbox; // Keep the allocations.
        }
    }

    /// Writes the messages `outbox` queued for the history log; if the log refuses them,
    /// withdraws them (see [`Server::withdraw_unwritten`]) and returns `false`.
    pub(in crate::server) fn write_history(&mut self, outbox: &mut Outbox) -> bool {
        if outbox.persist.is_empty() {
            return true;
        }
        let mut written = true;
        if let Some(log) = &mut self.history_log
            && let Err(e) = log.append(&outbox.persist)
        {
            log::error!("history log write failed: {e}");
            self.stats.history_write_errors += 1;
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

impl Server {
    /// Queues the hub's answers to `id` now, ahead of anything queued after this (its
    /// close frame, after a protocol error that followed the requests they answer), even
    /// though its session no longer sends.
    pub(in crate::server) fn queue_own_replies(&mut self, id: ConnId) {
        if self.outbox.sends.iter().all(|(to, _)| *to != id) {
            return;
        }
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let Phase::Open(open) = &mut conn.phase else {
            return;
        };
        let mut compression = Compression {
            pool: &mut self.pool,
            deflaters: &mut self.deflaters,
            cache: &mut self.deflate_cache,
            stats: &mut self.stats,
        };
        self.outbox.sends.retain(|(to, frame)| {
            if *to != id {
                return true;
            }
            queue_hub_frame(&mut open.session, &mut conn.out, frame, &mut compression);
            compression.stats.messages_out += 1;
            false
        });
        self.deflate_cache.clear();
    }
}

/// Close code for a connection whose token expired (README, "Close codes"): 4000–4499 are
/// terminal, so a client must get a fresh token before reconnecting.
pub(in crate::server) const TOKEN_EXPIRED: CloseCode = CloseCode(4001);

/// The longest a token-expiry timer sleeps before it looks at the wall clock again: a far
/// `exp` never becomes a far (or overflowing) `Instant`, and a step of the wall clock is
/// noticed within this.
const TOKEN_RECHECK: Duration = Duration::from_secs(3600);

impl Server {
    /// When to check a token with `expires_at` (Unix seconds) next: when it stops being
    /// accepted at a handshake (`exp` plus the verifier's leeway), or after
    /// [`TOKEN_RECHECK`], whichever is sooner, as an instant of the loop's clock. All the
    /// arithmetic is checked: `exp` comes from outside.
    fn token_deadline(&self, expires_at: u64, now: Instant) -> Instant {
        let leeway = self.config.auth.leeway_secs();
        let left = time_left(expires_at, leeway, self.wall_now.wall);
        after(now, left.min(TOKEN_RECHECK))
    }

    /// Arms the expiry check for a token expiring at `expires_at`; it becomes the live one.
    pub(in crate::server) fn arm_token_expiry(
        &mut self,
        id: ConnId,
        expires_at: u64,
        now: Instant,
    ) {
        let at = self.token_deadline(expires_at, now);
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        conn.token_check = Some(at);
        self.timers.arm(at, id, TimerKind::TokenExpiry);
    }

    /// A `refresh` replaced the connection's token. A later expiry needs nothing yet (the
    /// live check re-arms when it fires); an earlier one gets its own check now.
    fn token_renewed(&mut self, id: ConnId, now: Instant) {
        let Some(expires_at) = self.hub.token_expiry(id) else {
            return;
        };
        let at = self.token_deadline(expires_at, now);
        let live = self.get(id).and_then(|c| c.token_check);
        if live.is_none_or(|live| at < live) {
            self.arm_token_expiry(id, expires_at, now);
        }
    }

    /// A token expiry timer fired: close with 4001 unless a `refresh` moved the expiry
    /// later (then check again at the new one). Timers superseded by an earlier check are
    /// ignored, so each connection has one live check however often it refreshes.
    pub(in crate::server) fn check_token_expiry(&mut self, id: ConnId, now: Instant) {
        if self
            .get(id)
            .and_then(|c| c.token_check)
            .is_some_and(|live| now < live)
        {
            return;
        }
        let Some(expires_at) = self.hub.token_expiry(id) else {
            return;
        };
        let leeway = self.config.auth.leeway_secs();
        if time_left(expires_at, leeway, self.wall_now.wall).is_zero() {
            log::debug!("{id}: token expired");
            self.close_conn(id, TOKEN_EXPIRED, "token expired", now);
        } else {
            self.arm_token_expiry(id, expires_at, now);
        }
    }
}
