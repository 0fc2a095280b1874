//! The write path: flush queued output, arm WRITABLE only while blocked, finish lingering.

use std::io;
use std::time::Instant;

use mio::Interest;

use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::outbound::Flushed;
use super::reading::HIGH_WATER;
use super::stall::track_stall;
use super::tokens::token_of;

/// Reading resumes once a paused connection's queue drains below this.
const LOW_WATER: usize = HIGH_WATER / 4;

impl Server {
    /// Flushes every connection that got output this turn.
    ///
    /// Flushing can cause more output (a write error removes a hub member, whose departure
    /// is announced to others), so it repeats a few rounds; anything left is flushed on the
    /// next turn, which then polls without sleeping.
    pub(super) fn flush_dirty(&mut self, now: Instant) {
        for _ in 0..4 {
            self.write_publications(now);
            if self.dirty.is_empty() {
                return;
            }
            let mut dirty = std::mem::take(&mut self.dirty);
            for id in dirty.drain(..) {
                self.isolated(id, |s| s.flush_conn(id, now));
            }
            if self.dirty.is_empty() {
                self.dirty = dirty; // Keep the allocation.
            }
        }
    }

    /// Writes what a connection has queued; adjusts interest; shuts a lingering write side.
    pub(super) fn flush_conn(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let before = conn.out.len();
        let result = conn
            .out
            .flush(&mut conn.socket, &mut self.pool)
            .and_then(|f| match (f, conn.socket.flush_transport()) {
                (Flushed::All, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    Ok(Flushed::Blocked)
                }
                (_, Err(e)) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
                (f, _) => Ok(f),
            });
        self.stats.bytes_out += (before - conn.out.len()) as u64;
        track_stall(
            conn,
            before,
            self.config.stall_timeout,
            &mut self.timers,
            now,
        );
        let flushed = match result {
            Ok(flushed) => flushed,
            Err(e) => {
                log::debug!("{id}: write error: {e}");
                self.stats.abnormal_closures += 1;
                return self.remove(id);
            }
        };
        let want_writable = flushed == Flushed::Blocked;
        if want_writable != conn.writable_armed {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) =
                self.poll
                    .registry()
                    .reregister(&mut conn.socket, token_of(id), interest)
            {
                log::debug!("{id}: reregister failed: {e}");
                return self.remove(id);
            }
            conn.writable_armed = want_writable;
        }
        if conn.read_paused && conn.out.len() < LOW_WATER {
            conn.read_paused = false;
            self.ready.push_back(id);
            if matches!(conn.phase, Phase::Open(_)) {
                // Its app may send more now (uWS's `drain`).
                return self.app_drain(id, now);
            }
        }
        if flushed == Flushed::All
            && let Phase::Lingering {
                shut, peer_done, ..
            } = &mut conn.phase
        {
            if *peer_done {
                return self.remove(id);
            }
            // A TLS connection still handshaking has its answer buffered in rustls.
            if *shut || !conn.socket.settled() {
                return;
            }
            *shut = true;

            if let Err(e) = conn.socket.shutdown_write() {
                if e.kind() != io::ErrorKind::NotConnected {
                    log::debug!("{id}: shutdown failed: {e}");
                }
                self.remove(id);
            }
        }
    }
}
