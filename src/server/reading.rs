//! The read path: socket bytes into the shared scratch buffer, then through the protocol.
//!
//! A connection's leftover bytes (a partial head or frame header) are copied in front of the
//! new read, the whole is processed in place, and whatever is still incomplete is saved
//! again. Reads stop at `WouldBlock`, at EOF, when the per-turn budget is spent (the
//! connection goes on the ready list) or when the outbound queue passes the high-water mark
//! (reading resumes once it drains: backpressure for echo-like endpoints).

use std::io::{self, Read as _};
use std::time::Instant;

use super::conn::{ConnId, OpenConn, Phase, conn_mut};
use super::event_loop::Server;
use super::request::{Answer, answer_request};
use super::routes::Endpoint;
use super::timers::TimerKind;
use crate::protocol::frame::{FrameHeader, encode_frame};
use crate::protocol::handshake::RequestHead;
use crate::protocol::{CloseState, Decoded, Event, OpCode, Read, Session};

/// Bytes read per `read` call.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// Reads per connection per turn before others get their go.
const READ_BUDGET: usize = 16;
/// Stop reading from a connection while this many bytes wait to be sent to it.
pub(super) const HIGH_WATER: usize = 1 << 20;

impl Server {
    /// Reads from a connection until `WouldBlock`, EOF, backpressure or the budget.
    pub(super) fn read_conn(&mut self, id: ConnId, now: Instant) {
        for _ in 0..READ_BUDGET {
            let Some(conn) = conn_mut(&mut self.conns, id) else {
                return;
            };
            if conn.out.len() > HIGH_WATER {
                conn.read_paused = true;
                return;
            }
            let carried = conn.pending.len();
            self.scratch[..carried].copy_from_slice(&conn.pending);
            let limit = (carried + READ_CHUNK).min(self.scratch.len());
            match conn.socket.read(&mut self.scratch[carried..limit]) {
                Ok(0) => return self.on_eof(id),
                Ok(n) => {
                    conn.last_seen = now;
                    self.stats.bytes_in += n as u64;
                    self.process_input(id, carried + n, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
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

    /// The peer closed its side.
    fn on_eof(&mut self, id: ConnId) {
        if let Some(conn) = self.get(id) {
            let clean = match &conn.phase {
                Phase::Open(open) => open.session.close_state() == CloseState::Closed,
                Phase::Lingering { .. } => true,
                Phase::Handshaking(_) => false,
            };
            if !clean {
                // §7.1.5: the connection closed without a closing handshake: 1006.
                self.stats.abnormal_closures += 1;
            }
        }
        self.remove(id);
    }

    /// Runs `scratch[..len]` through the connection's phase; saves what is left over.
    fn process_input(&mut self, id: ConnId, len: usize, now: Instant) {
        let mut start = 0;
        if matches!(self.get(id).map(|c| &c.phase), Some(Phase::Handshaking(_))) {
            match self.read_handshake(id, len, now) {
                Some(used) => start = used,
                None => return,
            }
        }
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let input = &mut self.scratch[start..len];
        let used = match &mut conn.phase {
            Phase::Open(open) => {
                let mut ctx = FrameCtx {
                    stats: &mut self.stats,
                    pool: &mut self.pool,
                };
                read_frames(open, &mut conn.out, input, &mut ctx)
            }
            Phase::Lingering { .. } | Phase::Handshaking(_) => input.len(),
        };
        conn.pending.clear();
        conn.pending.extend_from_slice(&input[used..]);
        if conn.pending.is_empty() {
            conn.pending = Vec::new();
        }
        self.after_input(id, now);
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
                self.on_request(id, &head, now);
                Some(used)
            }
            Err(e) => {
                self.respond(
                    id,
                    crate::protocol::http::Response::text(e.status(), e.reason()),
                );
                None
            }
        }
    }

    /// Answers a complete request head: upgrade, plain HTTP answer, or refusal.
    fn on_request(&mut self, id: ConnId, head: &RequestHead, now: Instant) {
        let answer = answer_request(self, head, now);
        match answer {
            Answer::Upgrade {
                accept,
                endpoint,
                limits,
            } => {
                let Some(conn) = conn_mut(&mut self.conns, id) else {
                    return;
                };
                log::debug!(
                    "{id}: upgraded {} from {}",
                    head.redacted_target(),
                    conn.peer
                );
                conn.phase = Phase::Open(OpenConn {
                    session: Session::server(limits),
                    endpoint,
                });
                conn.out
                    .append(&mut self.pool, |out| out.extend_from_slice(&accept));
                self.stats.upgrades_total += 1;
                self.dirty.push(id);
            }
            Answer::Respond(response) => {
                if response.status >= 400 {
                    self.stats.rejected(response.status);
                    log::debug!(
                        "{id}: {} {} -> {}",
                        head.method,
                        head.redacted_target(),
                        response.status
                    );
                }
                self.respond(id, response);
            }
        }
    }

    /// Queues a plain HTTP response and lingers until it is out.
    pub(super) fn respond(&mut self, id: ConnId, response: crate::protocol::http::Response) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        conn.out.append(&mut self.pool, |out| response.encode(out));
        conn.phase = Phase::Lingering { shut: false };
        conn.pending = Vec::new();
        let deadline = Instant::now() + self.config.close_timeout;
        self.timers.arm(deadline, id, TimerKind::Close);
        self.dirty.push(id);
    }

    /// After input: queue a flush, and move a finished WebSocket to lingering.
    fn after_input(&mut self, id: ConnId, now: Instant) {
        let close_timeout = self.config.close_timeout;
        let Some(conn) = self.get_mut(id) else { return };
        let finished = match &conn.phase {
            Phase::Open(open) => {
                open.session.close_state() == CloseState::Closed || open.session.has_failed()
            }
            _ => false,
        };
        let has_output = !conn.out.is_empty();
        if finished {
            conn.phase = Phase::Lingering { shut: false };
            self.timers.arm(now + close_timeout, id, TimerKind::Close);
        }
        if has_output || finished {
            self.dirty.push(id);
        }
    }
}

/// What frame processing needs from the loop.
struct FrameCtx<'a> {
    stats: &'a mut super::stats::Stats,
    pool: &'a mut super::outbound::BufPool,
}

/// Reads every complete event in `input`; returns the bytes consumed.
fn read_frames(
    open: &mut OpenConn,
    out: &mut super::outbound::OutQueue,
    input: &mut [u8],
    ctx: &mut FrameCtx<'_>,
) -> usize {
    let mut pos = 0;
    loop {
        let session = &mut open.session;
        let result = out.append(ctx.pool, |buf| session.read(&mut input[pos..], buf));
        match result {
            Ok(Read { consumed, event }) => {
                pos += consumed;
                let Some(event) = event else { return pos };
                match open.endpoint {
                    Endpoint::Echo => echo(event, out, ctx),
                }
            }
            Err(error) => {
                log::debug!("protocol error: {error}");
                ctx.stats.protocol_errors += 1;
                ctx.stats.close_sent(error.close_code().0);
                return input.len();
            }
        }
    }
}

/// The `/echo` endpoint's answer to one event.
fn echo(event: Event<'_>, out: &mut super::outbound::OutQueue, ctx: &mut FrameCtx<'_>) {
    let (opcode, payload) = match event {
        Event::Text(text) => (OpCode::Text, text.as_bytes()),
        Event::Binary(bytes) => (OpCode::Binary, bytes),
        Event::Close(frame) => {
            let code = frame.code.map_or(1005, |c| c.0);
            ctx.stats.close_received(code);
            if frame.code.is_some() {
                ctx.stats.close_sent(code);
            }
            return;
        }
        Event::Ping(_) | Event::Pong(_) => return,
    };
    ctx.stats.messages_in += 1;
    ctx.stats.messages_out += 1;
    let header = FrameHeader::single(opcode, payload.len(), None);
    out.append(ctx.pool, |buf| encode_frame(&header, payload, buf));
}
