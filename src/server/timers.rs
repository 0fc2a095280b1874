//! Deadlines for connections, in a min-heap with lazy cancellation.
//!
//! Each entry names a connection (by generation-tagged id) and what the deadline is for. An
//! entry is never removed when its reason goes away; when it fires, the loop checks whether
//! it still applies (same connection generation, still in the state the timer guards, and
//! for a re-armable deadline, the very instant the connection holds as its live one), so
//! arming is O(log n) and cancelling is free. The earliest deadline becomes the timeout of
//! `mio::Poll`, so the loop never scans every connection.
//!
//! Stale entries would pile up under churn (a connection that lives a second leaves a
//! 54-second heartbeat behind, a token check can be hours away), so once the heap holds
//! more than [`PRUNE_RATIO`] entries per connection plus [`PRUNE_FLOOR`], the loop drops
//! every entry that no longer applies. A connection has at most three live entries, so a
//! pruned heap has room for at least one more arm per connection before the next pruning:
//! the O(n) pass costs O(1) per arm, amortised, and the heap stays proportional to the live
//! connections whatever the churn.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::apps::AppId;
use super::conn::ConnId;

/// The heap is pruned when it holds more than this many entries per connection...
pub(super) const PRUNE_RATIO: usize = 4;
/// ...plus this many.
pub(super) const PRUNE_FLOOR: usize = 256;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKind {
    /// The opening handshake must complete by now.
    Handshake,
    /// The peer must answer the close we sent by now (§7.1.1). Applies while the
    /// connection is still open with its close sent; it never ends a later lingering wait.
    CloseReply,
    /// The lingering wait (final bytes out, then the peer's EOF) ends now. Only the
    /// deadline the connection's `Lingering` phase holds applies.
    Linger,
    /// Time to check the connection for idleness and send a heartbeat ping.
    Heartbeat,
    /// Time to check that a handshake in progress is not sending too slowly.
    HandshakeRate,
    /// Time to check that output queued for the connection is still moving.
    Stall,
    /// A timer an app armed, with its token.
    App(u64),
}

/// The furthest ahead a deadline is ever set: a longer wait (a huge configured timeout) is
/// clamped to this rather than overflow `Instant`.
pub(super) const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `at + wait`, with `wait` clamped to [`FAR_FUTURE`]: waits come from configuration, so
/// the sum is checked, never a panic.
pub(crate) fn after(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait.min(FAR_FUTURE)).unwrap_or(at)
}

/// A min-heap of (deadline, connection, kind), the apps' own ticks, plus the listener's
/// retry deadline.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId, TimerKind)>>,
    /// Ticks apps armed for themselves, tied to no connection ([`super::Ctx::tick`]).
    ticks: BinaryHeap<Reverse<(Instant, AppId, u64)>>,
    /// When to try `accept` again after it failed for want of descriptors.
    accept_retry: Option<Instant>,
}

impl Timers {
    /// Arms a deadline.
    pub(super) fn arm(&mut self, at: Instant, conn: ConnId, kind: TimerKind) {
        self.heap.push(Reverse((at, conn, kind)));
    }

    /// Arms an app's tick.
    pub(super) fn arm_tick(&mut self, at: Instant, app: AppId, token: u64) {
        self.ticks.push(Reverse((at, app, token)));
    }

    /// Removes and returns one app tick that is due at `now`.
    pub(super) fn pop_due_tick(&mut self, now: Instant) -> Option<(AppId, u64)> {
        match self.ticks.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self
                .ticks
                .pop()
                .map(|Reverse((_, app, token))| (app, token)),
            _ => None,
        }
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

    /// Entries in the heaps, live or stale.
    pub(super) fn len(&self) -> usize {
        self.heap.len() + self.ticks.len()
    }

    /// The earliest deadline, if any.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let conn = self.heap.peek().map(|Reverse((at, _, _))| *at);
        let tick = self.ticks.peek().map(|Reverse((at, _, _))| *at);
        [conn, tick, self.accept_retry].into_iter().flatten().min()
    }

    /// How long `mio::Poll` may sleep before the next deadline (`None`: forever).
    pub(super) fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|at| at.saturating_duration_since(now))
    }

    /// Removes and returns one deadline that is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId, TimerKind)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Whether stale entries may dominate a heap serving `conns` connections.
    pub(super) fn needs_pruning(&self, conns: usize) -> bool {
        self.heap.len()
            > PRUNE_RATIO
                .saturating_mul(conns)
                .saturating_add(PRUNE_FLOOR)
    }

    /// Keeps only the entries `applies` says still apply. O(n); call when
    /// [`Timers::needs_pruning`].
    pub(super) fn prune(&mut self, mut applies: impl FnMut(Instant, ConnId, TimerKind) -> bool) {
        self.heap
            .retain(|Reverse((at, conn, kind))| applies(*at, *conn, *kind));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_never_overflows() {
        let t0 = Instant::now();
        assert_eq!(
            after(t0, Duration::from_secs(5)),
            t0 + Duration::from_secs(5)
        );
        assert_eq!(after(t0, Duration::MAX), t0 + FAR_FUTURE);
    }

    #[test]
    fn due_deadlines_come_out_in_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let a = ConnId::new(1, 1);
        let b = ConnId::new(2, 1);
        let (one, three) = (t0 + Duration::from_secs(1), t0 + Duration::from_secs(3));
        timers.arm(three, a, TimerKind::Linger);
        timers.arm(one, b, TimerKind::Handshake);
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(1)));
        assert_eq!(timers.pop_due(t0), None);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(timers.pop_due(later), Some((one, b, TimerKind::Handshake)));
        assert_eq!(timers.pop_due(later), Some((three, a, TimerKind::Linger)));
        assert_eq!(timers.pop_due(later), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn app_ticks_count_as_deadlines_and_come_out_in_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let (one, two) = (t0 + Duration::from_secs(1), t0 + Duration::from_secs(2));
        timers.arm(two, ConnId::new(1, 1), TimerKind::Linger);
        timers.arm_tick(two, AppId(0), 7);
        timers.arm_tick(one, AppId(1), 9);
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(1)));
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.pop_due_tick(t0), None);
        assert_eq!(timers.pop_due_tick(two), Some((AppId(1), 9)));
        assert_eq!(timers.pop_due_tick(two), Some((AppId(0), 7)));
        assert_eq!(timers.pop_due_tick(two), None);
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(2)));
    }

    #[test]
    fn the_listener_retry_counts_as_a_deadline() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.arm(
            t0 + Duration::from_secs(3),
            ConnId::new(1, 1),
            TimerKind::Linger,
        );
        timers.arm_accept(t0 + Duration::from_secs(2));
        timers.arm_accept(t0 + Duration::from_secs(1));
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(1)));
        assert!(!timers.accept_due(t0));
        assert!(timers.accept_due(t0 + Duration::from_secs(1)));
        assert!(!timers.accept_due(t0 + Duration::from_secs(2)));
        assert_eq!(timers.poll_timeout(t0), Some(Duration::from_secs(3)));
    }

    #[test]
    fn pruning_keeps_live_entries_only_once_stale_ones_dominate() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let live = ConnId::new(0, 7);
        let n = u32::try_from(PRUNE_FLOOR - 1).unwrap();
        for i in 0..n {
            let at = t0 + Duration::from_secs(u64::from(i));
            timers.arm(at, ConnId::new(i, 1), TimerKind::Heartbeat);
        }
        timers.arm(t0, live, TimerKind::Heartbeat);
        assert!(!timers.needs_pruning(0), "not past the floor yet");
        timers.arm(t0, ConnId::new(1, 2), TimerKind::Handshake);
        assert!(timers.needs_pruning(0));
        assert!(!timers.needs_pruning(1000));

        timers.prune(|_, conn, _| conn == live);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop_due(t0), Some((t0, live, TimerKind::Heartbeat)));
    }
}
