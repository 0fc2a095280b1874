//! One shared frame to one more recipient: the step every fan-out takes (`Ctx::publish`,
//! `Ctx::send_prepared`).

use std::time::Instant;

use super::apps::AppId;
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
    /// Queues `frame` for `to`, an open connection of `app`, unless that would pass
    /// `max_outbound_bytes` unsent, and marks the connection for a flush when its queue
    /// was empty. `takes_failed` is asked only of a connection that no longer sends:
    /// whether it failed on the input whose replies these are, and takes them still (they
    /// go out ahead of its close frame).
    #[inline(always)]
    pub(super) fn queue_shared(
        &mut self,
        app: AppId,
        to: ConnId,
        frame: &SharedFrame,
        takes_failed: impl FnOnce() -> bool,
    ) -> Queued {
        let cap = self.config.max_outbound_bytes;
        let Some(conn) = conn_mut(&mut self.conns, to) else {
            return Queued::Skipped;
        };
        let unsent = conn.out.len();
        let Phase::Open(open) = &mut conn.phase else {
            return Queued::Skipped;
        };
        if open.app != app || !(open.session.can_send() || takes_failed()) {
            return Queued::Skipped;
        }
        if unsent.saturating_add(frame.len()) > cap {
            return Queued::TooSlow;
        }
        if open.session.deflate().is_none() {
            // The common case, once per recipient of every broadcast: a reference queued,
            // without building the compression context `queue_shared_frame` takes.
            conn.out.push_shared(&mut self.pool, frame.clone());
        } else {
            let failed_before = open.session.has_failed();
            let mut compression = Compression {
                pool: &mut self.pool,
                deflaters: &mut self.deflaters,
                cache: &mut self.deflate_cache,
                stats: &mut self.stats,
            };
            queue_shared_frame(&mut open.session, &mut conn.out, frame, &mut compression);
            if !failed_before && open.session.has_failed() {
                // Close 1011 was queued in place of the frame.
                self.stats.messages_out += 1;
                return Queued::Failed;
            }
        }
        self.stats.messages_out += 1;
        if unsent == 0 {
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
