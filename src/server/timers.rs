//! Deadlines for connections, in a min-heap with lazy cancellation.
//!
//! Each entry names a connection (by generation-tagged id) and what the deadline is for. An
//! entry is never removed when its reason goes away; when it fires, the loop checks whether
//! it still applies (same connection generation, still in the state the timer guards), so
//! arming is O(log n) and cancelling is free. The earliest deadline becomes the timeout of
//! `mio::Poll`, so the loop never scans every connection.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::conn::ConnId;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKind {
    /// The opening handshake must complete by now.
    Handshake,
    /// The peer must answer our close (or send EOF after the exchange) by now (§7.1.1).
    Close,
    /// Time to check the connection for idleness and send a heartbeat ping.
    Heartbeat,
    /// Time to check that a handshake in progress is not sending too slowly.
    HandshakeRate,
    /// The connection's token expires now, unless it was refreshed.
    TokenExpiry,
}

/// A min-heap of (deadline, connection, kind), plus the listener's retry deadline.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId, TimerKind)>>,
    /// When to try `accept` again after it failed for want of descriptors.
    accept_retry: Option<Instant>,
}

impl Timers {
    /// Arms a deadline.
    pub(super) fn arm(&mut self, at: Instant, conn: ConnId, kind: TimerKind) {
        self.heap.push(Reverse((at, conn, kind)));
    }

    /// Arms the listener's retry (the earlier deadline wins).
    pub(super) fn arm_accept(&mut self, at: Instant) {
        self.accept_retry = Some(self.accept_retry.map_or(at, |t| t.min(at)));
    }

    /// Whether the listener's retry is due at `now` (disarming it if so).
    pub(super) fn accept_due(&mut self, now: Instant) -> bool {
        let due = self.accept_retry.is_some_and(|at| at <= now);
        if due {
            self.accept_retry = None;
        }
        due
    }

    /// The earliest deadline, if any.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let conn = self.heap.peek().map(|Reverse((at, _, _))| *at);
        match (conn, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How long `mio::Poll` may sleep before the next deadline (`None`: forever).
    pub(super) fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|at| at.saturating_duration_since(now))
    }

    /// Removes and returns one deadline that is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(ConnId, TimerKind)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                self.heap.pop().map(|Reverse((_, conn, kind))| (conn, kind))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_deadlines_come_out_in_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let a = ConnId::new(1, 1);
        let b = ConnId::new(2, 1);
        timers.arm(t0 + Duration::from_secs(3), a, TimerKind::Close);
        timers.arm(t0 + Duration::from_secs(1), b, TimerKind::Handshake);
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(timers.pop_due(later), Some((b, TimerKind::Handshake)));
        assert_eq!(timers.pop_due(later), Some((a, TimerKind::Close)));
        assert_eq!(timers.pop_due(later), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn the_listener_retry_counts_as_a_deadline() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.arm(
            t0 + Duration::from_secs(3),
            ConnId::new(1, 1),
            TimerKind::Close,
        );
        timers.arm_accept(t0 + Duration::from_secs(2));
        timers.arm_accept(t0 + Duration::from_secs(1));
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(1)));
        assert!(!timers.accept_due(t0));
        assert!(timers.accept_due(t0 + Duration::from_secs(1)));
        assert!(!timers.accept_due(t0 + Duration::from_secs(2)));
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(3)));
    }
}
