//! `GET /metrics`: the loop's counters in the Prometheus text format, via `prometheus-client`.
//!
//! The loop keeps plain integers; a scrape copies them into a [`Snapshot`], registers it as
//! a collector in a fresh registry and encodes that. Nothing in the loop's hot path touches
//! an atomic or a lock for the sake of metrics.

use std::collections::BTreeMap;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::app_metrics::AppMetrics;
use super::event_loop::Server;
use super::stats::{LOOP_BUCKETS, Stats};

/// Everything a scrape reports, copied out of the loop.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    /// The loop's counters.
    pub(super) stats: Stats,
    /// Connections counting against the limit (open, handshaking, lingering).
    pub(super) active: usize,
    /// Seconds since start.
    pub(super) uptime: f64,
    /// Whether the server is draining (shutting down).
    pub(super) draining: bool,
    /// Entries in the timer heap, live or stale.
    pub(super) timer_entries: usize,
    /// What the apps reported.
    pub(super) apps: AppMetrics,
}

impl Snapshot {
    /// Renders the Prometheus text exposition: the engine's families, then the apps'
    /// (one that names a family of the engine's is left out, and logged: two families of
    /// one name make the whole scrape invalid).
    pub(super) fn render(mut self) -> String {
        let mut apps = std::mem::take(&mut self.apps);
        let mut text = exposition(self);
        let engine: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE wsloop_"))
            .filter_map(|rest| rest.split(' ').next())
            .collect();
        apps.retain(|name| {
            // A counter's samples are `<name>_total`: that name is taken too.
            let clash = engine
                .iter()
                .any(|e| name == *e || name.strip_suffix("_total") == Some(e));
            if clash {
                log::warn!("app metric {name:?} left out: the engine has a metric of that name");
            }
            !clash
        });
        let apps = exposition(AppFamilies(apps));
        if let Some(end) = text.rfind("# EOF") {
            text.truncate(end);
        }
        text + &apps
    }
}

/// The text exposition of one collector's families, with the `wsloop_` prefix.
fn exposition(collector: impl Collector + 'static) -> String {
    let mut registry = Registry::with_prefix("wsloop");
    registry.register_collector(Box::new(collector));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        text.clear();
    }
    text
}

/// The apps' figures, encoded after the engine's.
#[derive(Debug)]
struct AppFamilies(AppMetrics);

impl Collector for AppFamilies {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.0.encode(&mut e)
    }
}

fn counter(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A counter with one label, one sample per key.
fn labelled<K: ToString>(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &'static str,
    values: &BTreeMap<K, u64>,
) -> Result<(), std::fmt::Error> {
    let mut metric = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (key, value) in values {
        let labels = [(label, key.to_string())];
        ConstCounter::new(*value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        gauge(
            &mut e,
            "connections_active",
            "Connections open now (handshaking, open, closing)",
            to_i64(self.active),
        )?;
        counter(
            &mut e,
            "connections",
            "Connections accepted",
            s.connections_total,
        )?;
        counter(
            &mut e,
            "upgrades",
            "WebSocket handshakes completed",
            s.upgrades_total,
        )?;
        counter(
            &mut e,
            "deflate_upgrades",
            "WebSocket handshakes that agreed on permessage-deflate",
            s.compressed_connections,
        )?;
        counter(
            &mut e,
            // The name is the one dashboards know; every shared frame counts, not only
            // the hub's.
            "deflate_hub_compressions",
            "Shared frames compressed (once per window size when shared, else per recipient)",
            s.shared_compressions,
        )?;
        labelled(
            &mut e,
            "handshakes_rejected",
            "Requests refused before the upgrade, by HTTP status",
            "status",
            &s.rejected,
        )?;
        counter(
            &mut e,
            "messages_received",
            "Data messages received",
            s.messages_in,
        )?;
        counter(
            &mut e,
            "messages_sent",
            "Frames queued for clients (per recipient)",
            s.messages_out,
        )?;
        counter(
            &mut e,
            "received_bytes",
            "Bytes read from sockets",
            s.bytes_in,
        )?;
        counter(
            &mut e,
            "sent_bytes",
            "Bytes written to sockets",
            s.bytes_out,
        )?;
        labelled(
            &mut e,
            "close_sent",
            "Close frames sent, by code",
            "code",
            &s.close_sent,
        )?;
        labelled(
            &mut e,
            "close_received",
            "Close frames received, by code (1005: no code)",
            "code",
            &s.close_received,
        )?;
        labelled(
            &mut e,
            "protocol_errors",
            "Connections failed for a protocol error, by reason",
            "reason",
            &s.protocol_errors,
        )?;
        counter(
            &mut e,
            "slow_consumer_closes",
            "Connections closed for passing the outbound cap",
            s.slow_consumer_closes,
        )?;
        counter(
            &mut e,
            "stalled_closes",
            "Connections closed for output that made no progress for stall_timeout",
            s.stalled_closes,
        )?;
        counter(
            &mut e,
            "buffer_budget_closes",
            "Connections closed 1013 for passing server.max_buffered_bytes",
            s.budget_closes,
        )?;
        counter(
            &mut e,
            "abnormal_closures",
            "Connections lost without a closing handshake",
            s.abnormal_closures,
        )?;
        counter(
            &mut e,
            "handshake_timeouts",
            "Handshakes dropped at the timeout",
            s.handshake_timeouts,
        )?;
        counter(
            &mut e,
            "accept_fd_exhausted",
            "Clients answered 503 because the process had no file descriptor left",
            s.accept_fd_exhausted,
        )?;
        counter(
            &mut e,
            "slow_handshakes",
            "Handshakes dropped below the minimum byte rate",
            s.slow_handshakes,
        )?;
        counter(
            &mut e,
            "proxy_header_errors",
            "Connections dropped for a malformed or oversized PROXY protocol header",
            s.proxy_header_errors,
        )?;
        gauge(
            &mut e,
            "client_addresses",
            "Distinct client addresses connected (behind trusted proxies, the real clients')",
            to_i64(s.client_addresses),
        )?;
        gauge(
            &mut e,
            "timer_entries",
            "Deadlines in the timer heap, live or stale (pruned to stay proportional to connections)",
            to_i64(self.timer_entries),
        )?;
        gauge(
            &mut e,
            "draining",
            "1 while shutting down",
            i64::from(self.draining),
        )?;
        counter(
            &mut e,
            "panics",
            "Panics caught by the safety net: each closed one connection (1011 or HTTP 500) or dropped one cluster event",
            s.panics,
        )?;
        self.encode_loop_time(&mut e)?;
        let uptime = e.encode_descriptor(
            "uptime_seconds",
            "Seconds since the server started",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.uptime).encode(uptime)
    }
}

impl Snapshot {
    fn encode_loop_time(&self, e: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let hist = &self.stats.loop_time;
        // The encoder accumulates the per-bucket counts itself.
        let total: u64 = hist.counts.iter().sum();
        let bounds = LOOP_BUCKETS.iter().chain([f64::INFINITY].iter());
        let buckets: Vec<(f64, u64)> = bounds.zip(hist.counts).map(|(b, c)| (*b, c)).collect();
        let mut metric = e.encode_descriptor(
            "loop_iteration_seconds",
            "Time the event loop spends per iteration, between polls",
            None,
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            hist.sum, total, &buckets, None,
        )
    }
}

impl Server {
    /// Copies the loop's counters for a scrape at `now`.
    pub(super) fn metrics_snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            stats: self.stats.clone(),
            active: self.admitted,
            uptime: self.stats.uptime(now),
            draining: self.drain_deadline.is_some(),
            timer_entries: self.timers.len(),
            apps: self.apps.metrics(),
        }
    }
}
