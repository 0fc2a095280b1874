//! `wsloop bench connect`: C workers each open a TCP connection, complete the opening
//! handshake, close it with a closing handshake, and start over; handshakes per second,
//! handshake latency, failures by kind, and with `--pid` the server's CPU time per handshake.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::conn::{Conn, End, Failure, Handler};
use super::histogram::Histogram;
use super::net::{Net, TICK, Target};
use super::output::Output;
use super::procfs::Watch;
use super::progress::Progress;
use super::report::{ConnectReport, Latency, Report, thousands};
use super::scan::Frame;
use super::{BenchConfig, BenchError, ConnectOptions, nanos};

/// Per-run state.
#[derive(Debug, Default)]
struct Connect {
    measuring: bool,
    handshakes: u64,
    latency: Histogram,
    failures: u64,
    kinds: BTreeMap<String, u64>,
    first_failure: Option<String>,
    /// Slots whose connection ended, to reopen.
    free: Vec<usize>,
}

impl Handler for Connect {
    fn on_open(&mut self, _id: usize, conn: &mut Conn, now: Instant) {
        if self.measuring {
            self.handshakes += 1;
            self.latency
                .record(nanos(now.saturating_duration_since(conn.started())));
        }
        conn.begin_close(now);
    }

    fn on_frame(&mut self, _: usize, _: &Frame<'_>, _: &mut Output, _: Instant) {}

    fn on_end(&mut self, id: usize, end: End, _now: Instant) {
        if let End::Failed(failure) = end {
            self.fail(&failure);
        }
        self.free.push(id);
    }
}

impl Connect {
    fn fail(&mut self, failure: &Failure) {
        if !self.measuring {
            return;
        }
        self.failures += 1;
        *self.kinds.entry(failure.kind()).or_default() += 1;
        self.first_failure
            .get_or_insert_with(|| failure.to_string());
    }
}

/// Runs the connect load.
pub(super) fn run(
    config: &BenchConfig,
    options: &ConnectOptions,
    target: Target,
) -> Result<Report, BenchError> {
    let workers = options.concurrency;
    if workers == 0 {
        return Err(BenchError::Invalid(
            "connect needs a concurrency of at least 1".into(),
        ));
    }
    let mut net = Net::new(target, config.timeout, 16 << 10)?;
    let mut connect = Connect {
        measuring: true,
        latency: Histogram::new(),
        free: (0..workers).rev().collect(),
        ..Connect::default()
    };
    let progress = Progress::new(config.progress);
    progress.timed("connect", config.duration);
    let watch = Watch::start(config.pid)?;
    let started = Instant::now();
    let path = config.url.target.clone();
    loop {
        reopen(&mut net, &mut connect, &path);
        net.turn(&mut connect, TICK)?;
        let elapsed = started.elapsed();
        if connect.handshakes == 0 && connect.failures >= (workers as u64).max(8) {
            let first = connect.first_failure.take().unwrap_or_default();
            return Err(BenchError::Timeout(format!(
                "every handshake failed ({} attempts), the first with: {first}",
                connect.failures
            )));
        }
        if elapsed >= config.duration {
            break;
        }
        if progress.due() {
            let rate = connect.handshakes as f64 / elapsed.as_secs_f64().max(1e-9);
            progress.message(format!("{} handshakes/s", thousands(rate as u64)));
            progress.set_elapsed(elapsed);
        }
    }
    let elapsed = started.elapsed();
    connect.measuring = false;
    let (server, machine) = watch.finish()?;
    progress.finish();
    connect.free.clear();
    net.close_all(&mut connect, config.timeout.min(Duration::from_secs(3)));

    let secs = elapsed.as_secs_f64().max(1e-9);
    let per_handshake = server
        .as_ref()
        .filter(|_| connect.handshakes > 0)
        .map(|s| s.cpu_s * 1e6 / connect.handshakes as f64);
    Ok(Report::Connect(ConnectReport {
        url: config.url.to_string(),
        concurrency: workers,
        duration_s: secs,
        handshakes: connect.handshakes,
        handshakes_per_s: connect.handshakes as f64 / secs,
        latency: Latency::of(&connect.latency),
        failures: connect.failures,
        failure_kinds: connect.kinds,
        server_cpu_us_per_handshake: per_handshake,
        server,
        machine,
    }))
}

/// Starts a new connection in every free slot; a connect that fails at once (no local port,
/// no file descriptor) is a failure and the slot is retried on the next turn.
fn reopen(net: &mut Net, connect: &mut Connect, path: &str) {
    let mut retry = Vec::new();
    while let Some(id) = connect.free.pop() {
        if let Err(e) = net.open(id, path, 0) {
            connect.fail(&Failure::Connect(e));
            retry.push(id);
        }
    }
    connect.free = retry;
}
