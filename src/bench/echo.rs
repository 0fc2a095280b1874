//! `wsloop bench echo`: C connections, each keeping D messages of S bytes in flight to an
//! echo endpoint; round trips per second, MB/s and latency percentiles.
//!
//! Every connection sends the same pre-masked frame ([`Prebuilt`]). The send of each
//! in-flight message is timestamped in a per-connection queue; echoes come back in order, so
//! the oldest timestamp belongs to the echo just read. Each echo is checked (FIN, opcode,
//! length) and answered with the next message at once, keeping D in flight.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::conn::{End, Handler};
use super::histogram::Histogram;
use super::net::{Net, Plan, TICK, Target};
use super::output::{Output, Prebuilt};
use super::procfs::Watch;
use super::progress::Progress;
use super::report::{EchoReport, Latency, Report, thousands};
use super::scan::Frame;
use super::{BenchConfig, BenchError, EchoOptions, nanos};
use wsloop::protocol::OpCode;

/// The largest message the echo mode sends.
const MAX_SIZE: usize = 16 << 20;
/// Handshakes in flight while connecting.
const PARALLEL_OPENS: usize = 128;

/// Per-run state the connections report into.
#[derive(Debug)]
struct Echo {
    size: u64,
    opcode: OpCode,
    frame_len: usize,
    /// Send times of the messages in flight, per connection.
    sent_at: Vec<VecDeque<Instant>>,
    /// Whether echoes are answered with new messages.
    sending: bool,
    /// Whether echoes count towards the results.
    measuring: bool,
    /// Messages queued so far, and the most to queue.
    queued: u64,
    limit: u64,
    done: u64,
    bad: u64,
    latency: Histogram,
    lost: usize,
    first_error: Option<String>,
}

impl Handler for Echo {
    fn on_frame(&mut self, id: usize, frame: &Frame<'_>, out: &mut Output, now: Instant) {
        if !(frame.fin && frame.opcode == self.opcode && frame.len == self.size) {
            self.bad += 1;
        }
        let sent = self.sent_at[id].pop_front();
        if self.measuring {
            self.done += 1;
            if let Some(sent) = sent {
                self.latency
                    .record(nanos(now.saturating_duration_since(sent)));
            }
        }
        if self.sending && self.queued < self.limit {
            self.queued += 1;
            out.queue_prebuilt(1, self.frame_len);
            self.sent_at[id].push_back(now);
        }
    }

    fn on_end(&mut self, _id: usize, end: End, _now: Instant) {
        if let End::Failed(failure) = end
            && self.measuring
        {
            self.lost += 1;
            self.first_error.get_or_insert_with(|| failure.to_string());
        }
    }
}

/// Runs the echo load.
pub(super) fn run(
    config: &BenchConfig,
    options: &EchoOptions,
    target: Target,
) -> Result<Report, BenchError> {
    let EchoOptions {
        connections,
        size,
        depth,
        ..
    } = *options;
    if connections == 0 || depth == 0 || size > MAX_SIZE {
        return Err(BenchError::Invalid(format!(
            "echo needs at least 1 connection and 1 message in flight, messages up to \
             {MAX_SIZE} bytes (got {connections}, {depth}, {size})"
        )));
    }
    let read_buf = (size + 14).saturating_mul(depth).clamp(64 << 10, 1 << 20);
    let mut net = Net::new(target, config.timeout, read_buf)?;
    let opcode = if options.text {
        OpCode::Text
    } else {
        OpCode::Binary
    };
    net.prebuilt = Prebuilt::new(opcode, &payload(size), depth);
    let mut echo = Echo {
        size: size as u64,
        opcode,
        frame_len: net.prebuilt.frame_len(),
        sent_at: vec![VecDeque::with_capacity(depth); connections],
        sending: true,
        measuring: false,
        queued: 0,
        limit: options.messages.unwrap_or(u64::MAX),
        done: 0,
        bad: 0,
        latency: Histogram::new(),
        lost: 0,
        first_error: None,
    };
    let progress = Progress::new(config.progress);
    progress.count("connecting", connections as u64);
    let plan = Plan {
        ids: 0..connections,
        path: &config.url.target,
        keep: 0,
        parallel: PARALLEL_OPENS,
    };
    net.establish(&mut echo, plan, &progress)?;

    let watch = Watch::start(config.pid)?;
    let started = Instant::now();
    echo.measuring = true;
    // Every connection is open now: each gets D messages, all sent at `started`.
    for sent in &mut echo.sent_at {
        sent.extend(std::iter::repeat_n(started, depth));
    }
    net.for_each_open(&mut echo, |_, out, prebuilt| {
        out.queue_prebuilt(depth, prebuilt.frame_len());
    });
    echo.queued = (connections * depth) as u64;
    let elapsed = measure(&mut net, &mut echo, config, &progress, started)?;
    echo.measuring = false;
    echo.sending = false;
    let (server, machine) = watch.finish()?;
    progress.finish();
    net.close_all(&mut echo, config.timeout.min(Duration::from_secs(3)));

    let secs = elapsed.as_secs_f64().max(1e-9);
    Ok(Report::Echo(EchoReport {
        url: config.url.to_string(),
        connections,
        size,
        depth,
        duration_s: secs,
        messages: echo.done,
        msgs_per_s: echo.done as f64 / secs,
        mb_per_s: (echo.done as f64 * size as f64) / secs / 1e6,
        latency: Latency::of(&echo.latency),
        bad_frames: echo.bad,
        lost: echo.lost,
        first_error: echo.first_error,
        server,
        machine,
    }))
}

/// Runs until the duration is over, the message count is reached, every connection is
/// lost, or nothing has come back for the timeout. Returns the measured time.
fn measure(
    net: &mut Net,
    echo: &mut Echo,
    config: &BenchConfig,
    progress: &Progress,
    started: Instant,
) -> Result<Duration, BenchError> {
    let connections = echo.sent_at.len();
    let bounded = echo.limit != u64::MAX;
    if !bounded {
        progress.timed("echo", config.duration);
    } else {
        progress.count("echo", echo.limit);
    }
    let mut last_done = (0, started);
    loop {
        net.turn(echo, TICK)?;
        let now = Instant::now();
        let elapsed = now - started;
        if echo.done != last_done.0 {
            last_done = (echo.done, now);
        } else if now - last_done.1 > config.timeout {
            return Err(BenchError::Timeout(format!(
                "no echo for {:?} ({} round trips done)",
                config.timeout, echo.done
            )));
        }
        let finished = if bounded {
            echo.done >= echo.limit
        } else {
            elapsed >= config.duration
        };
        if finished || echo.lost == connections {
            return Ok(elapsed);
        }
        if progress.due() {
            let rate = echo.done as f64 / elapsed.as_secs_f64().max(1e-9);
            progress.message(format!("{} msg/s", thousands(rate as u64)));
            if bounded {
                progress.set(echo.done);
            } else {
                progress.set_elapsed(elapsed);
            }
        }
    }
}

/// The message: printable ASCII (valid as text or binary), recognisable in a capture.
fn payload(size: usize) -> Vec<u8> {
    b"wsloop-bench-echo-"
        .iter()
        .copied()
        .chain((0..).map(|i| b'a' + (i % 26) as u8))
        .take(size)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_asked_length_and_is_ascii() {
        for size in [0, 1, 18, 32, 16 * 1024] {
            let p = payload(size);
            assert_eq!(p.len(), size);
            assert!(p.iter().all(u8::is_ascii_graphic));
        }
    }

    #[test]
    fn echoes_are_checked_and_timed_in_order() {
        let mut echo = Echo {
            size: 4,
            opcode: OpCode::Binary,
            frame_len: 10,
            sent_at: vec![VecDeque::new()],
            sending: true,
            measuring: true,
            queued: 0,
            limit: 1,
            done: 0,
            bad: 0,
            latency: Histogram::new(),
            lost: 0,
            first_error: None,
        };
        let t0 = Instant::now();
        echo.sent_at[0].extend([t0, t0 + Duration::from_micros(5)]);
        let mut out = Output::default();
        let good = Frame {
            fin: true,
            opcode: OpCode::Binary,
            len: 4,
            payload: None,
        };
        let now = t0 + Duration::from_micros(100);
        echo.on_frame(0, &good, &mut out, now);
        echo.on_frame(0, &Frame { len: 3, ..good }, &mut out, now);
        assert_eq!((echo.done, echo.bad), (2, 1));
        assert_eq!(echo.latency.max(), 100_000);
        assert_eq!(echo.latency.quantile(0.0), 95_000);
        assert_eq!(echo.queued, 1, "the limit of 1 message stops re-sending");
        assert!(!out.is_empty());
    }
}
