//! Rate-limit state that outlives a disconnect.
//!
//! A user's message bucket and strike count live with the user's connections; when the last
//! one goes, they are parked here, so reconnecting does not buy a fresh bucket or a clean
//! strike record. A parked entry is worth keeping only until its bucket would have refilled
//! (`capacity / refill_per_sec`, at most [`MAX_KEEP`]): by then a fresh bucket is the same,
//! and the next accepted message would reset the strikes anyway. The table is bounded
//! (`capacity` entries, the oldest dropped first) and expired in parking order, so each
//! park and take costs amortised O(1) and nothing is ever scanned.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::ratelimit::{Rate, TokenBucket};

/// The most users whose state is parked at once (the oldest parked go first).
pub(super) const CAPACITY: usize = 10_000;

/// The longest a parked entry is kept, whatever the rate (a zero refill never refills).
pub(super) const MAX_KEEP: Duration = Duration::from_secs(3600);

/// Users' parked rate-limit state, bounded in entries and time.
#[derive(Debug, Default)]
pub(super) struct Parked {
    /// By user: the bucket, the strike count, and when it was parked.
    entries: HashMap<Rc<str>, (TokenBucket, u32, Instant)>,
    /// Users in parking order, with when they were parked (stale pairs are skipped).
    order: VecDeque<(Instant, Rc<str>)>,
    /// The most entries kept.
    capacity: usize,
}

impl Parked {
    /// An empty table keeping at most `capacity` users.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// How long an entry is worth keeping at `rate`.
    fn keep(rate: Rate) -> Duration {
        if rate.refill_per_sec <= 0.0 {
            return MAX_KEEP;
        }
        Duration::try_from_secs_f64(rate.capacity / rate.refill_per_sec)
            .unwrap_or(MAX_KEEP)
            .min(MAX_KEEP)
    }

    /// Parks `user`'s state as its last connection goes.
    pub(super) fn park(
        &mut self,
        user: Rc<str>,
        bucket: TokenBucket,
        strikes: u32,
        rate: Rate,
        now: Instant,
    ) {
        self.expire(rate, now);
        if self.capacity == 0 {
            return;
        }
        self.order.push_back((now, user.clone()));
        self.entries.insert(user, (bucket, strikes, now));
        while self.entries.len() > self.capacity {
            self.pop_oldest();
        }
    }

    /// The state `user` left behind, if it is still worth anything.
    pub(super) fn take(
        &mut self,
        user: &str,
        rate: Rate,
        now: Instant,
    ) -> Option<(TokenBucket, u32)> {
        self.expire(rate, now);
        self.entries
            .remove(user)
            .map(|(bucket, strikes, _)| (bucket, strikes))
    }

    /// Entries parked now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops entries parked longer than they are worth keeping.
    fn expire(&mut self, rate: Rate, now: Instant) {
        let keep = Self::keep(rate);
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= keep)
        {
            self.pop_oldest();
        }
    }

    /// Drops the oldest parking (if that user's entry is still the one it made).
    fn pop_oldest(&mut self) {
        let Some((at, user)) = self.order.pop_front() else {
            return;
        };
        if self
            .entries
            .get(&user)
            .is_some_and(|(_, _, parked)| *parked == at)
        {
            self.entries.remove(&user);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::hub::{Hub, HubConfig, Now, Outbox};
    use crate::id::ConnId;
    use crate::protocol::{Decoded, FrameHeader};

    const RATE: Rate = Rate {
        capacity: 3.0,
        refill_per_sec: 0.5,
    };

    fn now() -> Now {
        thread_local!(static START: Instant = Instant::now());
        Now {
            wall: std::time::UNIX_EPOCH + Duration::from_secs(1_795_737_599),
            mono: START.with(|s| *s),
        }
    }

    /// Sends `request` from connection `n`; returns the `code` of the reply, if any.
    fn send(hub: &mut Hub, out: &mut Outbox, n: u32, request: &Value) -> Value {
        hub.on_text(ConnId::new(n, 1), &request.to_string(), now(), out);
        let replies: Vec<Value> = out
            .sends
            .drain(..)
            .map(|(_, frame)| {
                let Ok(Decoded::Complete(_, at)) = FrameHeader::decode(&frame) else {
                    panic!("bad frame")
                };
                serde_json::from_slice(&frame[at..]).expect("JSON")
            })
            .collect();
        replies.last().map_or(Value::Null, |r| r["code"].clone())
    }

    fn hub(abuse_strikes: u32) -> Hub {
        Hub::new(HubConfig {
            rate_limit: RATE,
            abuse_strikes,
            ..HubConfig::default()
        })
    }

    #[test]
    fn reconnecting_keeps_the_bucket_and_the_strikes() {
        let (mut hub, mut out) = (hub(4), Outbox::default());
        let chat = json!({"type": "chat", "payload": 1});
        hub.connect(ConnId::new(1, 1), "alice", now(), &mut out);
        for _ in 0..3 {
            send(&mut hub, &mut out, 1, &chat);
        }
        for _ in 0..2 {
            assert_eq!(send(&mut hub, &mut out, 1, &chat), "rate_limited");
        }
        hub.disconnect(ConnId::new(1, 1), now(), &mut out);
        hub.connect(ConnId::new(2, 1), "alice", now(), &mut out);
        assert_eq!(send(&mut hub, &mut out, 2, &chat), "rate_limited");
        send(&mut hub, &mut out, 2, &chat);
        let closes: Vec<_> = out.closes.iter().map(|c| c.reason).collect();
        assert_eq!(
            closes,
            ["rate limit exceeded"],
            "the fourth strike in a row"
        );
    }

    #[test]
    fn joins_and_leaves_take_tokens_too() {
        let (mut hub, mut out) = (hub(20), Outbox::default());
        hub.connect(ConnId::new(1, 1), "alice", now(), &mut out);
        send(&mut hub, &mut out, 1, &json!({"type": "join", "room": "a"}));
        send(
            &mut hub,
            &mut out,
            1,
            &json!({"type": "leave", "room": "a"}),
        );
        send(&mut hub, &mut out, 1, &json!({"type": "join", "room": "b"}));
        let code = send(
            &mut hub,
            &mut out,
            1,
            &json!({"type": "leave", "room": "b"}),
        );
        assert_eq!(code, "rate_limited");
    }

    #[test]
    fn the_table_is_bounded_and_expires() {
        let t0 = Instant::now();
        let mut parked = Parked::new(2);
        let bucket = TokenBucket::full(RATE, t0);
        for user in ["a", "b", "c"] {
            parked.park(user.into(), bucket, 1, RATE, t0);
        }
        assert_eq!(parked.len(), 2, "the oldest went first");
        assert!(parked.take("a", RATE, t0).is_none());
        assert_eq!(parked.take("b", RATE, t0), Some((bucket, 1)));
        let later = t0 + Parked::keep(RATE);
        assert!(
            parked.take("c", RATE, later).is_none(),
            "refilled: forgotten"
        );
        assert_eq!(parked.len(), 0);
    }
}
