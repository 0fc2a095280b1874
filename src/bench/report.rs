//! What a bench run measured: one [`Report`] per mode, serialized as JSON (`--json`) or
//! printed as a two-column table, and [`Report::problems`], the checks that make
//! `wsloop bench` exit non-zero (lost connections, wrong lengths, missing or reordered
//! deliveries).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::histogram::Histogram;
use super::procfs::{MachineUsage, ServerUsage};

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Latency {
    /// Samples.
    pub samples: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Latency {
    /// Percentiles of a histogram of nanoseconds.
    pub(crate) fn of(h: &Histogram) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            samples: h.count(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.quantile(0.5)),
            p99_us: us(h.quantile(0.99)),
            p999_us: us(h.quantile(0.999)),
            max_us: us(h.max()),
        }
    }

    fn summary(&self) -> String {
        format!(
            "p50 {} / p99 {} / p99.9 {} / max {}",
            micros(self.p50_us),
            micros(self.p99_us),
            micros(self.p999_us),
            micros(self.max_us)
        )
    }
}

/// `echo` results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EchoReport {
    /// The server URL.
    pub url: String,
    /// Connections.
    pub connections: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Messages in flight per connection.
    pub depth: usize,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Round trips completed in the window.
    pub messages: u64,
    /// Round trips per second.
    pub msgs_per_s: f64,
    /// Echoed payload bytes per second, in MB (10^6 bytes).
    pub mb_per_s: f64,
    /// Round-trip latency (send queued to echo read).
    pub latency: Latency,
    /// Echoes with the wrong opcode, length or fragmentation.
    pub bad_frames: u64,
    /// Connections lost during the run, and the first reason.
    pub lost: usize,
    /// Why the first lost connection ended.
    pub first_error: Option<String>,
    /// Server CPU and RSS during the window (`--pid`).
    pub server: Option<ServerUsage>,
    /// The loader's and everyone else's CPU during the window.
    pub machine: MachineUsage,
}

/// `fanout` results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FanoutReport {
    /// The server URL.
    pub url: String,
    /// Subscribers.
    pub subscribers: usize,
    /// Payload string bytes per message.
    pub size: usize,
    /// Messages in flight.
    pub depth: usize,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Messages the publisher sent in the window.
    pub published: u64,
    /// Messages received by subscribers in the window.
    pub deliveries: u64,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// Publisher send to subscriber read.
    pub latency: Latency,
    /// Sequence numbers a subscriber never received (must be 0).
    pub missing: u64,
    /// Deliveries that arrived after a later one (must be 0).
    pub out_of_order: u64,
    /// Deliveries whose payload could not be read.
    pub bad_frames: u64,
    /// Connections lost during the run.
    pub lost: usize,
    /// Why the first lost connection ended, or the server's first error reply.
    pub first_error: Option<String>,
    /// Server CPU and RSS during the window (`--pid`).
    pub server: Option<ServerUsage>,
    /// The loader's and everyone else's CPU during the window.
    pub machine: MachineUsage,
}

/// `connect` results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectReport {
    /// The server URL.
    pub url: String,
    /// Connections in progress at once.
    pub concurrency: usize,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Opening handshakes completed.
    pub handshakes: u64,
    /// Handshakes per second.
    pub handshakes_per_s: f64,
    /// TCP connect to `101` received.
    pub latency: Latency,
    /// Attempts that failed.
    pub failures: u64,
    /// Failures by kind (`http 429`, `connect: connection refused`, …).
    pub failure_kinds: BTreeMap<String, u64>,
    /// Server CPU microseconds per handshake (open, upgrade, close), with `--pid`.
    pub server_cpu_us_per_handshake: Option<f64>,
    /// Server CPU and RSS during the window (`--pid`).
    pub server: Option<ServerUsage>,
    /// The loader's and everyone else's CPU during the window.
    pub machine: MachineUsage,
}

/// `idle` results.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IdleReport {
    /// The server URL.
    pub url: String,
    /// Connections held.
    pub connections: usize,
    /// Seconds it took to open them all.
    pub setup_s: f64,
    /// Seconds they were held.
    pub hold_s: f64,
    /// Server pings answered while holding.
    pub pings: u64,
    /// Connections lost while holding.
    pub lost: usize,
    /// Why the first lost connection ended.
    pub first_error: Option<String>,
    /// Server RSS before opening any, KiB (`--pid`).
    pub rss_before_kib: Option<u64>,
    /// Server RSS with all of them open, KiB (`--pid`).
    pub rss_after_kib: Option<u64>,
    /// (after − before) / connections, bytes.
    pub rss_per_conn_bytes: Option<f64>,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
#[non_exhaustive]
pub(crate) enum Report {
    /// `echo`.
    Echo(EchoReport),
    /// `fanout`.
    Fanout(FanoutReport),
    /// `connect`.
    Connect(ConnectReport),
    /// `idle`.
    Idle(IdleReport),
}

impl Report {
    /// What went wrong in a run that completed; empty when the run was clean.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |count: u64, what: &str| {
            if count > 0 {
                problems.push(format!("{count} {what}"));
            }
        };
        match self {
            Self::Echo(r) => {
                check(r.bad_frames, "echoes with the wrong length or opcode");
                check(r.lost as u64, "connections lost");
            }
            Self::Fanout(r) => {
                check(r.missing, "deliveries missing");
                check(r.out_of_order, "deliveries out of order");
                check(r.bad_frames, "unreadable deliveries");
                check(r.lost as u64, "connections lost");
            }
            Self::Connect(r) => check(r.failures, "failed handshakes"),
            Self::Idle(r) => check(r.lost as u64, "connections lost"),
        }
        problems
    }

    /// The table rows: (name, value).
    fn rows(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Echo(r) => echo_rows(r),
            Self::Fanout(r) => fanout_rows(r),
            Self::Connect(r) => connect_rows(r),
            Self::Idle(r) => idle_rows(r),
        }
    }
}

fn echo_rows(r: &EchoReport) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("mode", format!("echo {}", r.url)),
        (
            "load",
            format!(
                "{} connections × {} in flight, {} B messages",
                r.connections, r.depth, r.size
            ),
        ),
        ("duration", format!("{:.2} s", r.duration_s)),
        ("messages", thousands(r.messages)),
        ("rate", format!("{} msg/s", thousands(r.msgs_per_s as u64))),
        ("throughput", format!("{:.1} MB/s", r.mb_per_s)),
        ("latency", r.latency.summary()),
        ("bad frames", r.bad_frames.to_string()),
    ];
    lost_rows(&mut rows, r.lost, r.first_error.as_deref());
    server_rows(&mut rows, r.server.as_ref(), &r.machine);
    rows
}

fn fanout_rows(r: &FanoutReport) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("mode", format!("fanout {}", r.url)),
        (
            "load",
            format!(
                "1 publisher → {} subscribers, {} in flight, {} B payloads",
                r.subscribers, r.depth, r.size
            ),
        ),
        ("duration", format!("{:.2} s", r.duration_s)),
        ("published", thousands(r.published)),
        ("deliveries", thousands(r.deliveries)),
        (
            "rate",
            format!("{} deliveries/s", thousands(r.deliveries_per_s as u64)),
        ),
        ("latency", r.latency.summary()),
        ("missing", r.missing.to_string()),
        ("out of order", r.out_of_order.to_string()),
        ("bad frames", r.bad_frames.to_string()),
    ];
    lost_rows(&mut rows, r.lost, r.first_error.as_deref());
    server_rows(&mut rows, r.server.as_ref(), &r.machine);
    rows
}

fn connect_rows(r: &ConnectReport) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("mode", format!("connect {}", r.url)),
        ("load", format!("{} at a time", r.concurrency)),
        ("duration", format!("{:.2} s", r.duration_s)),
        ("handshakes", thousands(r.handshakes)),
        (
            "rate",
            format!("{} handshakes/s", thousands(r.handshakes_per_s as u64)),
        ),
        ("latency", r.latency.summary()),
        ("failures", r.failures.to_string()),
    ];
    for (kind, count) in &r.failure_kinds {
        rows.push(("  failed", format!("{count} × {kind}")));
    }
    if let Some(us) = r.server_cpu_us_per_handshake {
        rows.push(("server CPU", format!("{us:.1} µs per handshake")));
    }
    server_rows(&mut rows, r.server.as_ref(), &r.machine);
    rows
}

fn idle_rows(r: &IdleReport) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("mode", format!("idle {}", r.url)),
        ("connections", thousands(r.connections as u64)),
        ("opened in", format!("{:.2} s", r.setup_s)),
        ("held for", format!("{:.2} s", r.hold_s)),
        ("pings answered", r.pings.to_string()),
    ];
    lost_rows(&mut rows, r.lost, r.first_error.as_deref());
    if let (Some(before), Some(after)) = (r.rss_before_kib, r.rss_after_kib) {
        rows.push(("server RSS", format!("{before} KiB → {after} KiB")));
    }
    if let Some(per) = r.rss_per_conn_bytes {
        rows.push(("RSS per conn", format!("{per:.0} B")));
    }
    rows
}

fn lost_rows(rows: &mut Vec<(&'static str, String)>, lost: usize, first: Option<&str>) {
    rows.push(("lost", lost.to_string()));
    if let Some(first) = first {
        rows.push(("first error", first.to_owned()));
    }
}

fn server_rows(
    rows: &mut Vec<(&'static str, String)>,
    server: Option<&ServerUsage>,
    machine: &MachineUsage,
) {
    let mut cpu = format!(
        "loader {:.0} % of a core",
        machine.loader_cpu_utilization * 100.0
    );
    if let Some(other) = machine.other_cpu_utilization {
        cpu.push_str(&format!(", others {:.0} %", other * 100.0));
    }
    rows.push(("CPU", cpu));
    if let Some(s) = server {
        rows.push((
            "server",
            format!(
                "pid {}: {:.2} CPU s ({:.0} % of a core), RSS {} → {} KiB",
                s.pid,
                s.cpu_s,
                s.cpu_utilization * 100.0,
                s.rss_start_kib,
                s.rss_end_kib
            ),
        ));
    }
}

impl fmt::Display for Report {
    /// A two-column table, names right-aligned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (name, value) in rows {
            writeln!(f, "{name:>width$}  {value}")?;
        }
        Ok(())
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds with a unit that fits: `850 µs`, `12.3 ms`.
fn micros(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 100.0 {
        format!("{us:.0} µs")
    } else {
        format!("{us:.1} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(micros(42.25), "42.2 µs");
        assert_eq!(micros(850.0), "850 µs");
        assert_eq!(micros(12_345.0), "12.3 ms");
    }

    #[test]
    fn json_is_tagged_and_problems_are_listed() {
        let report = Report::Idle(IdleReport {
            url: "ws://x/echo".into(),
            connections: 10,
            setup_s: 0.1,
            hold_s: 1.0,
            pings: 0,
            lost: 2,
            first_error: Some("eof".into()),
            rss_before_kib: Some(1000),
            rss_after_kib: Some(1010),
            rss_per_conn_bytes: Some(1024.0),
        });
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mode"], "idle");
        assert_eq!(json["rss_per_conn_bytes"], 1024.0);
        assert_eq!(report.problems(), vec!["2 connections lost".to_owned()]);
        let table = report.to_string();
        assert!(table.contains("RSS per conn  1024 B"), "{table}");
    }
}
