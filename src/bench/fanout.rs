//! `wsloop bench fanout`: N subscribers join one room of the `/ws` hub, one publisher sends
//! numbered chat messages with D in flight; deliveries per second, delivery latency, and
//! missing and out-of-order counts (both must be zero).
//!
//! Each message carries its sequence number and send time (see [`super::delivery`]). A
//! message is complete once every subscriber has it; the publisher keeps at most D
//! incomplete messages, so the hub is kept busy without its queues growing.
//!
//! All subscribers share one user id (`bench-sub`) so that joining does not broadcast a
//! presence message per subscriber to every other one (N² frames at 10,000 subscribers); the
//! server needs `--max-connections-per-user 0` (and `--rate-limit off` for the publisher).

use std::time::{Duration, Instant};

use super::conn::{Conn, End, Handler};
use super::delivery::{MIN_SIZE, chat_request, parse_delivery, parse_raw, raw_payload, with_user};
use super::histogram::Histogram;
use super::net::{Net, Plan, TICK, Target};
use super::output::Output;
use super::procfs::Watch;
use super::progress::Progress;
use super::report::{FanoutReport, Latency, Report, thousands};
use super::scan::Frame;
use super::{BenchConfig, BenchError, FanoutOptions, nanos};
use wsloop::protocol::OpCode;

/// Server frames up to this size are kept for inspection.
const KEEP: u64 = 64 * 1024;

/// Per-run state.
#[derive(Debug)]
struct Fanout {
    subscribers: usize,
    size: usize,
    depth: u64,
    room: String,
    /// Raw pub/sub instead of the hub (see [`super::FanoutOptions::raw`]).
    raw: bool,
    /// Time zero of the payload timestamps.
    epoch: Instant,
    joined: usize,
    publisher_joined: bool,
    sending: bool,
    measuring: bool,
    /// The next sequence number to publish.
    next_seq: u64,
    /// Every message below this one reached every subscriber.
    completed: u64,
    /// Deliveries of each incomplete message, indexed by `seq % depth`.
    counts: Vec<u32>,
    /// Per subscriber: the next sequence number expected.
    expected: Vec<u64>,
    published: u64,
    deliveries: u64,
    missing: u64,
    out_of_order: u64,
    bad: u64,
    latency: Histogram,
    lost: usize,
    first_error: Option<String>,
    server_error: Option<String>,
    closing: bool,
}

impl Fanout {
    /// A run that has not started: nothing joined, sent or received.
    fn new(subscribers: usize, size: usize, depth: usize, room: &str, raw: bool) -> Self {
        Self {
            subscribers,
            size,
            depth: depth as u64,
            room: room.to_owned(),
            raw,
            epoch: Instant::now(),
            joined: 0,
            publisher_joined: false,
            sending: true,
            measuring: false,
            next_seq: 0,
            completed: 0,
            counts: vec![0; depth],
            expected: vec![0; subscribers],
            published: 0,
            deliveries: 0,
            missing: 0,
            out_of_order: 0,
            bad: 0,
            latency: Histogram::new(),
            lost: 0,
            first_error: None,
            server_error: None,
            closing: false,
        }
    }
}

impl Handler for Fanout {
    fn on_open(&mut self, id: usize, conn: &mut Conn, _now: Instant) {
        if self.raw {
            // Subscribed by connecting.
            if id < self.subscribers {
                self.joined += 1;
            } else {
                self.publisher_joined = true;
            }
            return;
        }
        let join = format!(r#"{{"type":"join","room":"{}"}}"#, self.room);
        conn.out.queue_frame(OpCode::Text, join.as_bytes());
    }

    fn on_frame(&mut self, id: usize, frame: &Frame<'_>, _out: &mut Output, now: Instant) {
        let subscriber = id < self.subscribers;
        let Some(text) = frame.payload else {
            self.bad += u64::from(subscriber);
            return;
        };
        if self.raw {
            if subscriber {
                self.delivery(id, text, now);
            }
            return;
        }
        if text.starts_with(br#"{"type":"chat""#) {
            if subscriber {
                self.delivery(id, text, now);
            }
        } else if text.starts_with(br#"{"type":"joined""#) {
            if subscriber {
                self.joined += 1;
            } else {
                self.publisher_joined = true;
            }
        } else if text.starts_with(br#"{"type":"error""#) {
            let text = String::from_utf8_lossy(text).into_owned();
            self.server_error.get_or_insert(text);
        }
    }

    fn on_end(&mut self, _id: usize, end: End, _now: Instant) {
        if let End::Failed(failure) = end
            && !self.closing
        {
            self.lost += 1;
            self.first_error.get_or_insert_with(|| failure.to_string());
        }
    }
}

impl Fanout {
    /// A chat delivery to subscriber `id`.
    fn delivery(&mut self, id: usize, text: &[u8], now: Instant) {
        let parsed = if self.raw {
            parse_raw(text, self.size)
        } else {
            parse_delivery(text, self.size)
        };
        let Some((seq, sent)) = parsed else {
            self.bad += 1;
            return;
        };
        if self.measuring {
            self.deliveries += 1;
            let age = nanos(now.saturating_duration_since(self.epoch));
            self.latency.record(age.saturating_sub(sent));
        }
        let expected = &mut self.expected[id];
        if seq < *expected {
            self.out_of_order += 1;
        } else {
            self.missing += seq - *expected;
            *expected = seq + 1;
        }
        if (self.completed..self.next_seq).contains(&seq) {
            self.counts[(seq % self.depth) as usize] += 1;
            self.advance();
        }
    }

    /// Moves `completed` past every message all subscribers have.
    fn advance(&mut self) {
        while self.completed < self.next_seq {
            let slot = &mut self.counts[(self.completed % self.depth) as usize];
            if (*slot as usize) < self.subscribers {
                return;
            }
            *slot = 0;
            self.completed += 1;
        }
    }

    /// The next chat request, stamped `now`.
    fn next_request(&mut self, now: Instant) -> String {
        let sent = nanos(now.saturating_duration_since(self.epoch));
        let request = if self.raw {
            raw_payload(self.next_seq, sent, self.size)
        } else {
            chat_request(&self.room, self.next_seq, sent, self.size)
        };
        self.next_seq += 1;
        if self.measuring {
            self.published += 1;
        }
        request
    }
}

/// Publishes until D messages are in flight.
fn publish(net: &mut Net, fanout: &mut Fanout) {
    let publisher = fanout.subscribers;
    if !fanout.sending {
        return;
    }
    let now = Instant::now();
    let Some(conn) = net.conn_mut(publisher) else {
        return;
    };
    while fanout.next_seq - fanout.completed < fanout.depth {
        let request = fanout.next_request(now);
        conn.out.queue_frame(OpCode::Text, request.as_bytes());
    }
    net.flush(publisher, fanout);
}

/// Runs the fan-out load.
pub(super) fn run(
    config: &BenchConfig,
    options: &FanoutOptions,
    target: Target,
) -> Result<Report, BenchError> {
    let n = options.subscribers;
    if n == 0 || options.depth == 0 || options.size < MIN_SIZE {
        return Err(BenchError::Invalid(format!(
            "fanout needs at least 1 subscriber, 1 message in flight and {MIN_SIZE}-byte \
             payloads (sequence number and timestamp)"
        )));
    }
    let mut net = Net::new(target, config.timeout, 256 << 10)?;
    let mut fanout = Fanout::new(n, options.size, options.depth, &options.room, options.raw);
    let progress = Progress::new(config.progress);
    setup(&mut net, &mut fanout, config, &progress)?;

    let watch = Watch::start(config.pid)?;
    fanout.epoch = Instant::now();
    fanout.measuring = true;
    let elapsed = measure(&mut net, &mut fanout, config, &progress)?;
    fanout.measuring = false;
    fanout.sending = false;
    let (server, machine) = watch.finish()?;
    progress.finish();
    if let Some(error) = fanout.server_error.take() {
        fanout.closing = true;
        net.close_all(&mut fanout, Duration::from_secs(1));
        return Err(server_error(error));
    }
    // Let what is in flight arrive, so anything still missing is really missing.
    let _ = wait_for(&mut net, &mut fanout, config.timeout, "", |f| {
        f.completed == f.next_seq
    });
    let unreceived: u64 = fanout.expected.iter().map(|e| fanout.next_seq - e).sum();
    fanout.missing += unreceived;
    fanout.closing = true;
    net.close_all(&mut fanout, config.timeout.min(Duration::from_secs(3)));
    let secs = elapsed.as_secs_f64().max(1e-9);
    Ok(Report::Fanout(FanoutReport {
        url: config.url.to_string(),
        subscribers: n,
        size: options.size,
        depth: options.depth,
        duration_s: secs,
        published: fanout.published,
        deliveries: fanout.deliveries,
        deliveries_per_s: fanout.deliveries as f64 / secs,
        latency: Latency::of(&fanout.latency),
        missing: fanout.missing,
        out_of_order: fanout.out_of_order,
        bad_frames: fanout.bad,
        lost: fanout.lost,
        first_error: fanout.first_error,
        server,
        machine,
    }))
}

/// Connects and joins the subscribers, then the publisher.
fn setup(
    net: &mut Net,
    fanout: &mut Fanout,
    config: &BenchConfig,
    progress: &Progress,
) -> Result<(), BenchError> {
    let n = fanout.subscribers;
    let raw = fanout.raw;
    let user = |name: &str| {
        if raw {
            config.url.target.clone()
        } else {
            with_user(&config.url.target, name)
        }
    };
    let subscriber_path = user("bench-sub");
    progress.count("subscribing", n as u64);
    let plan = Plan {
        ids: 0..n,
        path: &subscriber_path,
        keep: KEEP,
        parallel: 128,
    };
    net.establish(fanout, plan, progress)?;
    wait_for(net, fanout, config.timeout, "subscribers joining", |f| {
        f.joined == f.subscribers
    })?;
    let publisher_path = user("bench-pub");
    let plan = Plan {
        ids: n..n + 1,
        path: &publisher_path,
        keep: KEEP,
        parallel: 1,
    };
    net.establish(fanout, plan, progress)?;
    wait_for(net, fanout, config.timeout, "the publisher joining", |f| {
        f.publisher_joined
    })
}

/// Turns the loop until `done`, failing on a lost connection, an error reply or `timeout`.
fn wait_for(
    net: &mut Net,
    fanout: &mut Fanout,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Fanout) -> bool,
) -> Result<(), BenchError> {
    let deadline = Instant::now() + timeout;
    while !done(fanout) {
        if let Some(error) = fanout.server_error.take() {
            return Err(server_error(error));
        }
        if let Some(error) = &fanout.first_error {
            return Err(BenchError::Lost(error.clone()));
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(format!(
                "{what}: {} of {} subscribers joined within {timeout:?}",
                fanout.joined, fanout.subscribers
            )));
        }
        net.turn(fanout, TICK)?;
    }
    Ok(())
}

/// Publishes for the duration (or until deliveries stall for the timeout).
fn measure(
    net: &mut Net,
    fanout: &mut Fanout,
    config: &BenchConfig,
    progress: &Progress,
) -> Result<Duration, BenchError> {
    progress.timed("fanout", config.duration);
    let started = fanout.epoch;
    publish(net, fanout);
    let mut last = (fanout.completed, started);
    loop {
        net.turn(fanout, TICK)?;
        publish(net, fanout);
        let now = Instant::now();
        let elapsed = now - started;
        if fanout.completed != last.0 {
            last = (fanout.completed, now);
        }
        let stalled = now - last.1 > config.timeout;
        let publisher_gone = net.conn_mut(fanout.subscribers).is_none();
        if elapsed >= config.duration || stalled || publisher_gone || fanout.server_error.is_some()
        {
            return Ok(elapsed);
        }
        if progress.due() {
            let rate = fanout.deliveries as f64 / elapsed.as_secs_f64().max(1e-9);
            progress.message(format!("{} deliveries/s", thousands(rate as u64)));
            progress.set_elapsed(elapsed);
        }
    }
}

fn server_error(reply: String) -> BenchError {
    let hint = if reply.contains("rate_limited") {
        " (run the server with --rate-limit off)"
    } else {
        ""
    };
    BenchError::Server(format!("{reply}{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_round_trips_through_a_delivery() {
        let mut fanout = Fanout::new(1, 40, 4, "r", false);
        (fanout.next_seq, fanout.completed, fanout.expected[0]) = (42, 42, 42);
        let request = fanout.next_request(fanout.epoch + Duration::from_nanos(123_456));
        let payload = request
            .split_once(r#""payload":"#)
            .map(|(_, p)| p.trim_end_matches('}'))
            .unwrap();
        assert_eq!(payload.len(), 40 + 2);
        let delivery = format!(
            r#"{{"type":"chat","room":"r","sender_id":"p","timestamp":"t","payload":{payload}}}"#
        );
        assert_eq!(parse_delivery(delivery.as_bytes(), 40), Some((42, 123_456)));
        fanout.delivery(0, delivery.as_bytes(), Instant::now());
        assert_eq!((fanout.completed, fanout.missing, fanout.bad), (43, 0, 0));
        fanout.delivery(0, delivery.as_bytes(), Instant::now());
        assert_eq!(fanout.out_of_order, 1, "a repeat is out of order");
    }
}
