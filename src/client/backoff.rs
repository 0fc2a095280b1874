//! When to reconnect: exponential backoff with full jitter, as a pure function.
//!
//! The n-th retry waits a uniformly random time in `[0, min(cap, base × 2ⁿ)]` ("full
//! jitter": thousands of clients dropped at once by a restarting server do not come back
//! in lockstep). A connection that stayed up for `reset_after` counts as healthy, so the
//! next failure starts again from `base`. Answers that will not change by retrying (401,
//! 403, close 1008) end the retries, as does the optional retry limit.

use std::time::Duration;

/// The reconnection schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first retry's upper bound. Default: 500 ms.
    pub base: Duration,
    /// The largest wait. Default: 30 s.
    pub cap: Duration,
    /// Give up after this many retries in a row; `None` retries forever. Default: `None`.
    pub max_retries: Option<u32>,
    /// A connection up this long resets the schedule. Default: 30 s.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            max_retries: None,
            reset_after: Duration::from_secs(30),
        }
    }
}

/// Why a connection ended (or failed to start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// TCP refused, reset, or closed without a close frame; or a timeout.
    Network,
    /// The server refused the handshake with this HTTP status.
    Refused(u16),
    /// The server closed with this close code.
    Closed(u16),
}

impl Disconnect {
    /// Whether retrying cannot help: bad credentials (401), forbidden (403), policy (1008),
    /// and wsloop's terminal close codes 4000–4499 (e.g. 4001 token expired).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Refused(401 | 403) | Self::Closed(1008 | 4000..=4499)
        )
    }
}

/// What to do after a disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again; `attempt` is the retry number (1 = first).
    Retry {
        /// How long to wait.
        after: Duration,
        /// Which retry this is.
        attempt: u32,
    },
    /// Stop: the answer was terminal or the retry limit is reached.
    GiveUp,
}

impl Backoff {
    /// The wait before retry number `attempt` (1-based), with `random` uniform in `[0, 1)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1 << exponent).min(self.cap);
        ceiling.mul_f64(random.clamp(0.0, 1.0))
    }

    /// Decides what follows a disconnect.
    ///
    /// `failures` is how many attempts in a row failed before this one; `up_for` is how long
    /// the connection that just ended was open (`None` if it never opened).
    pub fn decide(
        &self,
        failures: u32,
        up_for: Option<Duration>,
        why: Disconnect,
        random: f64,
    ) -> Decision {
        if why.is_terminal() {
            return Decision::GiveUp;
        }
        let healthy = up_for.is_some_and(|d| d >= self.reset_after);
        let attempt = if healthy { 1 } else { failures + 1 };
        if self.max_retries.is_some_and(|max| attempt > max) {
            return Decision::GiveUp;
        }
        Decision::Retry {
            after: self.delay(attempt, random),
            attempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
        max_retries: Some(5),
        reset_after: Duration::from_secs(10),
    };

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let ceilings: Vec<u128> = (1..=7).map(|n| B.delay(n, 1.0).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        assert_eq!(B.delay(4, 0.0), Duration::ZERO);
        assert_eq!(B.delay(4, 0.5), Duration::from_millis(400));
        assert!(B.delay(u32::MAX, 0.5) <= B.cap);
    }

    #[test]
    fn retries_count_up_then_give_up_at_the_limit() {
        for failures in 0..5 {
            let d = B.decide(failures, None, Disconnect::Network, 0.5);
            assert_eq!(
                d,
                Decision::Retry {
                    after: B.delay(failures + 1, 0.5),
                    attempt: failures + 1
                }
            );
        }
        assert_eq!(
            B.decide(5, None, Disconnect::Network, 0.5),
            Decision::GiveUp
        );
        let forever = Backoff {
            max_retries: None,
            ..B
        };
        assert!(matches!(
            forever.decide(1000, None, Disconnect::Network, 0.5),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn a_long_healthy_connection_resets_the_schedule() {
        let d = B.decide(
            5,
            Some(Duration::from_secs(60)),
            Disconnect::Closed(1001),
            0.5,
        );
        assert_eq!(
            d,
            Decision::Retry {
                after: Duration::from_millis(50),
                attempt: 1
            }
        );
        let short = B.decide(
            5,
            Some(Duration::from_secs(1)),
            Disconnect::Closed(1001),
            0.5,
        );

        assert_eq!(short, Decision::GiveUp);
    }

    #[test]
    fn terminal_answers_are_not_retried() {
        for why in [
            Disconnect::Refused(401),
            Disconnect::Refused(403),
            Disconnect::Closed(1008),
            Disconnect::Closed(4001),
        ] {
            assert_eq!(B.decide(0, None, why, 0.5), Decision::GiveUp, "{why:?}");
        }
        for why in [
            Disconnect::Refused(503),
            Disconnect::Refused(429),
            Disconnect::Closed(1001),
            Disconnect::Closed(1006),
        ] {
            assert!(
                matches!(B.decide(0, None, why, 0.5), Decision::Retry { .. }),
                "{why:?}"
            );
        }
    }
}
