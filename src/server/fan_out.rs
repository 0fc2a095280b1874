//! One shared frame to one more recipient: the step every fan-out takes, an app's
//! `Ctx::publish` and the hub's outbox alike.

use std::time::Instant;

use super::compress::{Compression, queue_shared_frame};
use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::outbound::SharedFrame;
use crate::protocol::CloseCode;

/// What [`Server::queue_shared`] did with a frame for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queued {
    /// Queued (compressed for it if its session compresses).
    Sent,
    /// Not queued: the recipient is gone, or closing.
    Skipped,
    /// Not queued: it would have put the recipient past `max_outbound_bytes` unsent. The
    /// caller closes it ([`Server::close_slow_consumer`]) once nothing borrows the
    /// recipient list.
    TooSlow,
    /// Its compressor failed: close 1011 was queued in place of the frame. The caller
    /// moves it on ([`Server::compressor_failed`]) once nothing borrows the recipient list.
    Failed,
}

impl Server {
    /// Queues `frame` for `to` unless that would pass the outbound cap, and marks the
    /// connection for a flush when its queue was empty.
    pub(super) fn queue_shared(&mut self, to: ConnId, frame: &SharedFrame) -> Queued {
        self.queue_shared_within(to, frame, self.config.max_outbound_bytes)
    }

    /// [`Server::queue_shared`] with the recipient's unsent bytes held to `cap`.
    #[inline]
    pub(super) fn queue_shared_within(
        &mut self,
        to: ConnId,
        frame: &SharedFrame,
        cap: usize,
    ) -> Queued {
        let Some(conn) = conn_mut(&mut self.conns, to) else {
            return Queued::Skipped;
        };
        if !conn.can_send() {
            return Queued::Skipped;
        }
        if conn.out.len().saturating_add(frame.len()) > cap {
            return Queued::TooSlow;
        }
        let was_empty = conn.out.is_empty();
        let Phase::Open(open) = &mut conn.phase else {
            return Queued::Skipped;
        };
        if open.session.deflate().is_none() {
            // The common case, once per recipient of every broadcast: a reference queued,
            // without building the compression context `queue_shared_frame` takes.
            conn.out.push_shared(&mut self.pool, frame.clone());
        } else {
            let mut compression = Compression {
                pool: &mut self.pool,
                deflaters: &mut self.deflaters,
                cache: &mut self.deflate_cache,
                stats: &mut self.stats,
            };
            queue_shared_frame(&mut open.session, &mut conn.out, frame, &mut compression);
        }
        self.stats.messages_out += 1;
        if open.session.has_failed() {
            return Queued::Failed;
        }
        if was_empty {
            self.dirty.push(to);
        }
        Queued::Sent
    }

    /// A recipient whose compressor failed ([`Queued::Failed`]): its close 1011 is
    /// counted, and it lingers until that close is out.
    pub(super) fn compressor_failed(&mut self, id: ConnId, now: Instant) {
        self.stats.close_sent(CloseCode::INTERNAL_ERROR.0);
        self.after_input(id, now);
    }
}
