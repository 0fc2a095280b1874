//! The read path: socket bytes into the shared scratch buffer, then through the protocol.
//!
//! A connection's leftover bytes (a partial head or frame header) are copied in front of the
//! new read, the whole is processed in place, and whatever is still incomplete is saved
//! again. Reads stop at `WouldBlock`, at EOF, when the per-turn budget is spent (the
//! connection goes on the ready list) or when the outbound queue passes the high-water mark
//! (reading resumes once it drains: backpressure for echo-like endpoints).

use std::io::{self, Read as _};
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use super::app_run::Run;
use super::apps::AppId;
use super::client_addr::Pending;
use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::frames::{FrameCtx, read_frames};
use super::timers::{TimerKind, after};
use crate::protocol::http::Response;
use crate::protocol::{CloseState, Decoded};

/// Bytes read per `read` call.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// Reads per connection per turn before others get their go.
const READ_BUDGET: usize = 16;
/// Stop reading from a connection while this many bytes wait to be sent to it.
pub(super) const HIGH_WATER: usize = 1 << 20;

/// When a read may stop before the kernel says `WouldBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadUntil {
    /// Only at `WouldBlock` (or EOF): the caller does not know the socket's state.
    WouldBlock,
    /// Also at a short read, which shows the receive queue is drained. Only for a readiness
    /// event without a hangup: epoll is edge-triggered, so any byte or FIN arriving after the
    /// event was reported raises a new event, while a hangup reported with this event would
    /// never be reported again. This saves the `WouldBlock` read, a third of the syscalls of
    /// a request-response exchange.
    ShortRead,
}

impl Server {
    /// Reads from a connection until `WouldBlock` (or a short read, see [`ReadUntil`]), EOF,
    /// backpressure or the budget.
    pub(super) fn read_conn(&mut self, id: ConnId, now: Instant, until: ReadUntil) {
        for _ in 0..READ_BUDGET {
            let Some(conn) = conn_mut(&mut self.conns, id) else {
                return;
            };
            // A short read of plaintext says nothing of the ciphertext left in the socket.
            let until = if conn.socket.is_tls() {
                ReadUntil::WouldBlock
            } else {
                until
            };
            if conn.out.len() > HIGH_WATER {
                conn.read_paused = true;
                return;
            }
            // A request body collects in `pending` itself; everything else is carried in
            // front of the new bytes in the scratch buffer.
            let carried = if matches!(conn.phase, Phase::Body(_)) {
                0
            } else {
                conn.pending.len()
            };
            self.scratch[..carried].copy_from_slice(&conn.pending[..carried]);
            let limit = (carried + READ_CHUNK).min(self.scratch.len());
            match conn.socket.read(&mut self.scratch[carried..limit]) {
                Ok(0) => return self.on_eof(id, now),

                Ok(n) => {
                    conn.last_seen = now;
                    self.stats.bytes_in += n as u64;
                    self.process_input(id, carried + n, now);
                    if until == ReadUntil::ShortRead && carried + n < limit {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if conn.socket.wants_write() {
                        self.dirty.push(id); // TLS handshake messages to send
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("{id}: read error: {e}");
                    self.stats.abnormal_closures += 1;
                    return self.remove(id);
                }
            }
        }
        self.ready.push_back(id);
    }

    /// The peer closed its side (it may still read: RFC 9112 §9.6 allows a half-close).
    ///
    /// Whatever is queued for it (an HTTP answer, a close reply, echoes) is flushed first;
    /// the connection is removed once the queue is empty.
    fn on_eof(&mut self, id: ConnId, now: Instant) {
        let close_timeout = self.config.close_timeout;
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let clean = match &conn.phase {
            Phase::Open(open) => open.session.close_state() == CloseState::Closed,
            Phase::Lingering { .. } => true,
            Phase::Handshaking(_) | Phase::Body(_) => false,
        };
        if !clean {
            // §7.1.5: the connection closed without a closing handshake: 1006.
            self.stats.abnormal_closures += 1;
        }
        if conn.out.is_empty() && !conn.socket.wants_write() {
            return self.remove(id);
        }
        let shut = matches!(conn.phase, Phase::Lingering { shut: true, .. });
        let until = after(now, close_timeout);
        conn.phase = Phase::Lingering {
            shut,
            peer_done: true,
            until,
        };
        self.timers.arm(until, id, TimerKind::Linger);
        self.dirty.push(id);
    }

    /// Runs `scratch[..len]` through the connection's phase; saves what is left over.
    fn process_input(&mut self, id: ConnId, mut len: usize, now: Instant) {
        let mut start = 0;
        if self
            .get(id)
            .is_some_and(|c| c.client_pending == Pending::ProxyHeader)
        {
            match self.read_proxy_header(id, len, now) {
                Some(rest) => len = rest,
                None => return,
            }
        }
        if matches!(self.get(id).map(|c| &c.phase), Some(Phase::Handshaking(_))) {
            match self.read_handshake(id, len, now) {
                Some(used) => start = used,
                None => return,
            }
        }
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        if let Phase::Body(_) = conn.phase {
            conn.pending.extend_from_slice(&self.scratch[start..len]);
            return self.finish_body(id, now);
        }
        let used = match &mut conn.phase {
            Phase::Open(open) => {
                let app = open.app;
                // Lent out while the app is called: a message it gets may be a slice of it.
                let mut scratch = std::mem::take(&mut self.scratch);
                let read = panic::catch_unwind(AssertUnwindSafe(|| {
                    self.read_open(id, app, &mut scratch[start..len], now)
                }));
                // Back before the safety net (`isolation`) handles a panic: reads need it.
                self.scratch = scratch;
                read.unwrap_or_else(|panic| panic::resume_unwind(panic))
            }
            Phase::Lingering { .. } | Phase::Handshaking(_) | Phase::Body(_) => len - start,
        };
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        conn.pending.clear();
        conn.pending
            .extend_from_slice(&self.scratch[start + used..len]);
        if conn.pending.is_empty() {
            conn.pending = Vec::new();
        }
        self.charge_buffered(id, now);
        self.after_input(id, now);
    }

    /// Runs an open connection's input through its session, calling its app with each
    /// message found; returns the bytes used.
    ///
    /// The session reads a run of messages ([`super::frames::AppInput`]) and the app is then called with
    /// each in turn, so a busy connection costs one pass through the protocol per read, not
    /// one per message. A run ends before a control frame, and the close frame of a
    /// protocol error found after it waits for the replies to the run's messages: what
    /// the peer sees is in the order it would be had the app been called as each message
    /// was read.
    fn read_open(&mut self, id: ConnId, app: AppId, input: &mut [u8], now: Instant) -> usize {
        // Gone only if an app panicked while it was lent out.
        let mut found = self.app_input.take().unwrap_or_default();
        let mut used = 0;
        while used < input.len()
            && let Some(conn) = conn_mut(&mut self.conns, id)
        {
            let Phase::Open(open) = &mut conn.phase else {
                used = input.len();
                break;
            };
            found.clear();
            let mut peer_close = None;
            // The loop's fields, each borrowed alone beside the connection.
            let mut ctx = FrameCtx {
                id,
                stats: &mut self.stats,
                pool: &mut self.pool,
                ctrl: &mut self.ctrl,
                app: &mut found,
                peer_close: &mut peer_close,
            };
            let rest = &mut input[used..];
            let (consumed, more) = read_frames(open, &mut conn.out, rest, &mut ctx);
            let failing = !found.failure.is_empty();
            // The app's answers to the run are queued (`on_run_end` at the latest) before
            // the close frame of a failure.
            if !found.batch.is_empty() {
                self.app_messages(app, id, &mut Run::new(&found, rest), failing, now);
            }
            if failing || more {
                // A close frame or a pong for what follows goes after the run's publications.
                self.settle_publications(Some(id), failing, now);
            }
            if failing && let Some(conn) = conn_mut(&mut self.conns, id) {
                let failure = &found.failure;
                conn.out
                    .append(&mut self.pool, |out| out.extend_from_slice(failure));
            }
            if let Some((code, reason)) = &peer_close {
                self.app_closed(id, *code, reason, now);
            }
            used += consumed;
            if !more {
                break;
            }
        }
        found.clear();
        self.app_input = Some(found);
        used
    }

    /// Feeds the request head parser. Returns the bytes the head took once complete.
    fn read_handshake(&mut self, id: ConnId, len: usize, now: Instant) -> Option<usize> {
        let conn = conn_mut(&mut self.conns, id)?;
        let Phase::Handshaking(parser) = &mut conn.phase else {
            return Some(0);
        };
        let buf = &self.scratch[..len];
        match parser.parse(buf) {
            Ok(Decoded::Partial) => {
                conn.pending = buf.to_vec();
                None
            }
            Ok(Decoded::Complete(head, used)) => {
                if !self.resolve_forwarded(id, &head, now) {
                    return None;
                }
                self.on_request(id, &head, now);
                Some(used)
            }
            Err(e) => {
                self.stats.http_requests += 1;
                self.stats.rejected(e.status());
                self.respond(id, Response::text(e.status(), e.reason()));
                None
            }
        }
    }

    /// Queues a plain HTTP response and lingers until it is out.
    pub(super) fn respond(&mut self, id: ConnId, response: Response) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        conn.out.append(&mut self.pool, |out| response.encode(out));
        let until = after(Instant::now(), self.config.close_timeout);
        conn.phase = Phase::Lingering {
            shut: false,
            peer_done: false,
            until,
        };
        conn.pending = Vec::new();
        self.timers.arm(until, id, TimerKind::Linger);
        self.dirty.push(id);
    }

    /// After input (or a failed send): queue a flush, and move a finished WebSocket to
    /// lingering.
    pub(super) fn after_input(&mut self, id: ConnId, now: Instant) {
        let close_timeout = self.config.close_timeout;
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let (finished, open) = match &conn.phase {
            Phase::Open(open) => (
                open.session.close_state() == CloseState::Closed || open.session.has_failed(),
                true,
            ),
            _ => (false, false),
        };
        if finished {
            let until = after(now, close_timeout);
            conn.phase = Phase::Lingering {
                shut: false,
                peer_done: false,
                until,
            };
            self.timers.arm(until, id, TimerKind::Linger);
        }
        if open && !finished && !conn.out.is_empty() {
            // The replies to this input (an echo's, say) are all queued: write them now
            // rather than after every other ready connection has been read (the same one
            // writev, less latency).
            return self.flush_conn(id, now);
        }
        if !conn.out.is_empty() || finished {
            self.dirty.push(id);
        }
        if finished {
            // A protocol error (or a close that was not the peer's): no close code to pass.
            self.app_closed(id, 1006, "", now);
        }
    }
}
