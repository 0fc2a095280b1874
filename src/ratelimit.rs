//! Token buckets: the rate limits on client messages and on handshakes per IP.
//!
//! A bucket holds up to `capacity` tokens and gains `refill_per_sec` tokens a second; each
//! event takes one. Time is an argument (`Instant`), so the limits are tested without sleeping.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The shape of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// The burst allowed: tokens in a full bucket.
    pub capacity: f64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

/// One bucket's state: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.capacity,
            last: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        if rate.refill_per_sec <= 0.0 {
            return Err(Duration::MAX);
        }
        let wait = (1.0 - self.tokens) / rate.refill_per_sec;
        Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
    }

    /// Whether the bucket has refilled to capacity (so forgetting it loses nothing).
    pub fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.capacity
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.refill_per_sec).min(rate.capacity);
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        capacity: 10.0,
        refill_per_sec: 1.0,
    };

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(RATE, t0);
        for _ in 0..10 {
            assert_eq!(bucket.try_take(RATE, t0), Ok(()));
        }
        let wait = bucket.try_take(RATE, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(bucket.try_take(RATE, later), Ok(()));
        assert!(bucket.try_take(RATE, later).is_err());
        assert!(!bucket.is_full(RATE, later));
        assert!(bucket.is_full(RATE, later + Duration::from_secs(20)));
    }

    #[test]
    fn zero_refill_never_recovers() {
        let rate = Rate {
            capacity: 1.0,
            refill_per_sec: 0.0,
        };
        let t0 = Instant::now();
        let mut bucket = TokenBucket::full(rate, t0);
        assert_eq!(bucket.try_take(rate, t0), Ok(()));
        assert_eq!(
            bucket.try_take(rate, t0 + Duration::from_secs(100)),
            Err(Duration::MAX)
        );
    }
}
