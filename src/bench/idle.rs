//! `wsloop bench idle`: open N connections, hold them idle (answering pings) for the
//! duration, and with `--pid` report the server's resident memory per connection:
//! (`VmRSS` with all of them open − `VmRSS` before the first) / N.
//!
//! One client address reaches about 28,000 connections to one server port (the ephemeral
//! port range); `--spread K` uses server addresses 127.0.0.1 … 127.0.0.K for more.

use std::time::{Duration, Instant};

use super::conn::{End, Handler};
use super::net::{Net, Plan, TICK, Target};
use super::output::Output;
use super::procfs::{open_files_limit, rss_kib};
use super::progress::Progress;
use super::report::{IdleReport, Report};
use super::scan::Frame;
use super::{BenchConfig, BenchError, IdleOptions};

/// File descriptors the loader needs besides its connections.
const SPARE_FDS: u64 = 32;

/// Per-run state.
#[derive(Debug, Default)]
struct Idle {
    holding: bool,
    pings: u64,
    lost: usize,
    first_error: Option<String>,
}

impl Handler for Idle {
    fn on_frame(&mut self, _: usize, _: &Frame<'_>, _: &mut Output, _: Instant) {}

    fn on_ping(&mut self, _id: usize) {
        self.pings += 1;
    }

    fn on_end(&mut self, _id: usize, end: End, _now: Instant) {
        if let End::Failed(failure) = end
            && self.holding
        {
            self.lost += 1;
            self.first_error.get_or_insert_with(|| failure.to_string());
        }
    }
}

/// Runs the idle load.
pub(super) fn run(
    config: &BenchConfig,
    options: &IdleOptions,
    target: Target,
) -> Result<Report, BenchError> {
    let n = options.connections;
    if n == 0 || options.parallel == 0 {
        return Err(BenchError::Invalid(
            "idle needs at least 1 connection and 1 in parallel".into(),
        ));
    }
    if let Some(limit) = open_files_limit()
        && n as u64 + SPARE_FDS > limit
    {
        return Err(BenchError::Invalid(format!(
            "{n} connections need {} file descriptors; the limit is {limit} (raise it with \
             `ulimit -n`)",
            n as u64 + SPARE_FDS
        )));
    }
    let rss_before = config.pid.map(rss_kib).transpose()?;
    let mut net = Net::new(target, config.timeout, 16 << 10)?;
    let mut idle = Idle::default();
    let progress = Progress::new(config.progress);
    progress.count("connecting", n as u64);
    let opening = Instant::now();
    let plan = Plan {
        ids: 0..n,
        path: &config.url.target,
        keep: 0,
        parallel: options.parallel,
    };
    net.establish(&mut idle, plan, &progress)?;
    let setup = opening.elapsed();

    idle.holding = true;
    progress.timed("holding", config.duration);
    let held = Instant::now();
    while held.elapsed() < config.duration && idle.lost < n {
        net.turn(&mut idle, TICK)?;
        if progress.due() {
            progress.set_elapsed(held.elapsed());
            progress.message(format!("{} open", n - idle.lost));
        }
    }
    let hold = held.elapsed();
    let rss_after = config.pid.map(rss_kib).transpose()?;
    idle.holding = false;
    progress.finish();
    net.close_all(&mut idle, config.timeout.min(Duration::from_secs(5)));

    let per_conn = match (rss_before, rss_after) {
        (Some(before), Some(after)) => Some((after as f64 - before as f64) * 1024.0 / n as f64),
        _ => None,
    };
    Ok(Report::Idle(IdleReport {
        url: config.url.to_string(),
        connections: n,
        setup_s: setup.as_secs_f64(),
        hold_s: hold.as_secs_f64(),
        pings: idle.pings,
        lost: idle.lost,
        first_error: idle.first_error,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        rss_per_conn_bytes: per_conn,
    }))
}
