//! Stalled consumers: a bounded kernel send buffer, and a clock on write progress.
//!
//! A connection that stops reading is caught two ways. By bytes: its unsent output
//! passing `max_outbound_bytes` when an app sends to it (see [`super::fan_out`] and
//! `Ctx::send`). By time: output queued and not one byte written for `stall_timeout`
//! (here). Both close it with 1008 and drop what it had not
//! started receiving, so the close frame is the next thing it reads.
//!
//! Neither would be enough if the kernel buffered without bound: send buffers autotune to
//! megabytes, so a few thousand stalled members fill the machine's TCP memory, after which
//! the kernel throttles every socket, healthy ones included. `socket_send_buffer` therefore
//! fixes each accepted socket's `SO_SNDBUF` (Linux reserves twice the value for its own
//! bookkeeping), so stalled members hold at most that much kernel memory each and the
//! stall shows up in wsloop's own queue, where the limits above apply.

use std::time::{Duration, Instant};

use super::conn::{Conn, ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::timers::{TimerKind, Timers, after};
use crate::protocol::CloseCode;

/// Sets `SO_SNDBUF` on an accepted socket; `0` leaves the kernel's autotuning. A failure is
/// logged and ignored (the connection works, only less bounded).
pub(super) fn bound_send_buffer(socket: &mio::net::TcpStream, bytes: usize) {
    if bytes == 0 {
        return;
    }
    if let Err(e) = socket2::SockRef::from(socket).set_send_buffer_size(bytes) {
        log::debug!("SO_SNDBUF {bytes}: {e}");
    }
}

/// After a flush of `conn` that found `before` bytes queued: notes progress, and arms the
/// stall check when output is left waiting and none is armed.
pub(super) fn track_stall(
    conn: &mut Conn,
    before: usize,
    timeout: Duration,
    timers: &mut Timers,
    now: Instant,
) {
    if conn.out.len() < before || conn.out.is_empty() {
        conn.write_progress = now;
    }
    if conn.out.is_empty() || conn.stall_check.is_some() || timeout.is_zero() {
        return;
    }
    let at = after(conn.write_progress, timeout);
    conn.stall_check = Some(at);
    timers.arm(at, conn.id, TimerKind::Stall);
}

impl Server {
    /// The stall check fired: close the connection if its output has not moved for
    /// `stall_timeout`; otherwise check again when it could have.
    pub(super) fn check_stall(&mut self, id: ConnId, now: Instant) {
        let timeout = self.config.stall_timeout;
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        conn.stall_check = None;
        if conn.out.is_empty() {
            return;
        }
        let due = after(conn.write_progress, timeout);
        if now < due {
            conn.stall_check = Some(due);
            self.timers.arm(due, id, TimerKind::Stall);
            return;
        }
        log::info!(
            "{id}: stalled ({} bytes unsent, no progress for {timeout:?}), closing",
            conn.out.len()
        );
        self.stats.stalled_closes += 1;
        self.close_slow(id, "stalled", now);
    }

    /// Closes a connection that would have passed `max_outbound_bytes` unsent with 1008
    /// "slow consumer" (see [`Server::close_slow`]), and counts it.
    pub(super) fn close_slow_consumer(&mut self, id: ConnId, now: Instant) {
        let unsent = self.get(id).map_or(0, |c| c.out.len());
        self.stats.slow_consumer_closes += 1;
        log::info!("{id}: slow consumer ({unsent} bytes unsent), closing");
        self.close_slow(id, "slow consumer", now);
    }

    /// Closes a slow or stalled consumer with 1008: what it has not started receiving is
    /// dropped, so the close frame goes out next.
    pub(super) fn close_slow(&mut self, id: ConnId, reason: &str, now: Instant) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        if matches!(conn.phase, Phase::Open(_)) {
            conn.out.drop_unstarted(&mut self.pool);
        }
        self.close_conn(id, CloseCode::POLICY_VIOLATION, reason, now);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn the_send_buffer_is_what_the_config_says() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let socket = mio::net::TcpStream::from_std(accepted);
        let size = || {
            socket2::SockRef::from(&socket)
                .send_buffer_size()
                .expect("SO_SNDBUF")
        };
        bound_send_buffer(&socket, 0);
        let wanted = 64 * 1024;
        // On loopback the kernel starts far above that (megabytes), so the test cannot pass
        // by accident.
        assert!(size() > 2 * wanted, "the kernel starts at {}", size());
        bound_send_buffer(&socket, wanted);
        assert!(
            (wanted..=2 * wanted).contains(&size()),
            "SO_SNDBUF {} after asking for {wanted}",
            size()
        );
    }
}
