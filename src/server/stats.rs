//! Counters the loop keeps about itself, read by `/stats` and `/metrics`.
//!
//! Plain integers owned by the loop: no atomics, no locks. A scrape takes a snapshot.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::app_metrics::AppMetrics;

/// Upper bounds (seconds) of the event-loop iteration time histogram.
pub(super) const LOOP_BUCKETS: [f64; 10] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
];

/// A fixed-bucket histogram of loop iteration times.
#[derive(Debug, Clone, Default)]
pub(super) struct LoopHistogram {
    /// Observations per bucket of [`LOOP_BUCKETS`], plus one for larger values.
    pub(super) counts: [u64; LOOP_BUCKETS.len() + 1],
    /// Sum of all observations, seconds.
    pub(super) sum: f64,
}

impl LoopHistogram {
    /// Records one iteration.
    pub(super) fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        let bucket = LOOP_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LOOP_BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum += secs;
    }
}

/// Running totals since the server started.
#[derive(Debug, Clone)]
pub(super) struct Stats {
    /// When the server started.
    pub(super) started: Instant,
    /// Connections accepted.
    pub(super) connections_total: u64,
    /// Handshakes completed (101 sent).
    pub(super) upgrades_total: u64,
    /// Of those, with permessage-deflate agreed.
    pub(super) compressed_connections: u64,
    /// Compressions of a shared frame (once per distinct window for a shared frame
    /// without context takeover, once per recipient with it).
    pub(super) shared_compressions: u64,
    /// Requests refused before the upgrade, by HTTP status.
    pub(super) rejected: BTreeMap<u16, u64>,
    /// Data messages received.
    pub(super) messages_in: u64,
    /// Frames queued for sending (each recipient counts once).
    pub(super) messages_out: u64,
    /// Bytes read from sockets.
    pub(super) bytes_in: u64,
    /// Bytes written to sockets.
    pub(super) bytes_out: u64,
    /// Close frames sent, by code.
    pub(super) close_sent: BTreeMap<u16, u64>,
    /// Close frames received, by code (1005 for an empty body).
    pub(super) close_received: BTreeMap<u16, u64>,
    /// Protocol errors that failed a connection, by reason.
    pub(super) protocol_errors: BTreeMap<&'static str, u64>,
    /// Connections closed without a closing handshake (EOF or reset mid-stream).
    pub(super) abnormal_closures: u64,
    /// Connections closed because their outbound queue passed the cap.
    pub(super) slow_consumer_closes: u64,
    /// Connections closed because their queued output made no progress for `stall_timeout`.
    pub(super) stalled_closes: u64,
    /// Bytes of partly received messages held now, all connections together.
    pub(super) buffered_bytes: usize,
    /// Connections closed 1013 for passing `max_buffered_bytes`.
    pub(super) budget_closes: u64,
    /// Handshakes dropped for sending below the minimum byte rate (slowloris).
    pub(super) slow_handshakes: u64,
    /// Handshakes dropped at the handshake timeout.
    pub(super) handshake_timeouts: u64,
    /// Clients turned away (503) because the process had no file descriptor left.
    pub(super) accept_fd_exhausted: u64,
    /// Event-loop iteration times.
    pub(super) loop_time: LoopHistogram,
    /// Panics caught by the safety net (each closed one connection or dropped one event).
    pub(super) panics: u64,
    /// Plain HTTP requests answered (pages, probes, metrics, the API, refusals): every
    /// request that did not become a WebSocket.
    pub(super) http_requests: u64,
    /// Connections dropped for a malformed or oversized PROXY protocol header.
    pub(super) proxy_header_errors: u64,
    /// Distinct client addresses with connections counted against the per-IP limits (the
    /// real clients behind trusted proxies).
    pub(super) client_addresses: usize,
}

impl Stats {
    /// Zeroed counters, started now.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            started: now,
            connections_total: 0,
            upgrades_total: 0,
            compressed_connections: 0,
            shared_compressions: 0,
            rejected: BTreeMap::new(),
            messages_in: 0,
            messages_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            close_sent: BTreeMap::new(),
            close_received: BTreeMap::new(),
            protocol_errors: BTreeMap::new(),
            abnormal_closures: 0,
            slow_consumer_closes: 0,
            stalled_closes: 0,
            buffered_bytes: 0,
            budget_closes: 0,
            slow_handshakes: 0,
            handshake_timeouts: 0,
            accept_fd_exhausted: 0,
            loop_time: LoopHistogram::default(),
            panics: 0,
            http_requests: 0,
            proxy_header_errors: 0,
            client_addresses: 0,
        }
    }

    /// Counts a refused request.
    pub(super) fn rejected(&mut self, status: u16) {
        *self.rejected.entry(status).or_default() += 1;
    }

    /// Counts a close frame we sent.
    pub(super) fn close_sent(&mut self, code: u16) {
        *self.close_sent.entry(code).or_default() += 1;
    }

    /// Counts a close frame we received.
    pub(super) fn close_received(&mut self, code: u16) {
        *self.close_received.entry(code).or_default() += 1;
    }

    /// Counts a protocol error by its reason.
    pub(super) fn protocol_error(&mut self, reason: &'static str) {
        *self.protocol_errors.entry(reason).or_default() += 1;
    }

    /// Seconds since start.
    pub(super) fn uptime(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.started).as_secs_f64()
    }

    /// The `/stats` JSON document. `active` counts every admitted connection, `websockets`
    /// the upgraded ones among them; the apps' figures ([`super::App::metrics`]) are added
    /// beside the engine's, each under its name (one that names an engine figure is left out).
    pub(super) fn to_json(
        &self,
        now: Instant,
        active: usize,
        websockets: usize,
        apps: &AppMetrics,
    ) -> String {
        let view = StatsView {
            active_connections: active,
            websocket_connections: websockets,
            http_connections: active.saturating_sub(websockets),
            http_requests: self.http_requests,
            client_addresses: self.client_addresses,
            total_connections: self.connections_total,
            upgrades: self.upgrades_total,
            messages_received: self.messages_in,
            messages_sent: self.messages_out,
            bytes_received: self.bytes_in,
            bytes_sent: self.bytes_out,
            errors: self.protocol_errors.values().sum(),
            abnormal_closures: self.abnormal_closures,
            slow_consumer_closes: self.slow_consumer_closes,
            stalled_closes: self.stalled_closes,
            buffered_bytes: self.buffered_bytes,
            rejected: &self.rejected,
            close_sent: &self.close_sent,
            close_received: &self.close_received,
            uptime_seconds: self.uptime(now),
        };
        let Ok(serde_json::Value::Object(mut document)) = serde_json::to_value(&view) else {
            return "{}".to_owned();
        };
        for (name, value) in apps.figures() {
            if document.contains_key(name) {
                log::warn!("app figure {name:?} left out of /stats: the engine's has that name");
                continue;
            }
            document.insert(name.to_owned(), value);
        }
        serde_json::Value::Object(document).to_string()
    }
}

#[derive(Serialize)]
struct StatsView<'a> {
    /// Every admitted connection: WebSockets and plain HTTP ones (this request included).
    active_connections: usize,
    /// Upgraded connections open now.
    websocket_connections: usize,
    /// Connections that are not WebSockets: requests being read or answered.
    http_connections: usize,
    /// Plain HTTP requests answered since start.
    http_requests: u64,
    /// Distinct client addresses connected (behind trusted proxies, the real clients').
    client_addresses: usize,
    total_connections: u64,
    upgrades: u64,
    messages_received: u64,
    messages_sent: u64,
    bytes_received: u64,
    bytes_sent: u64,
    errors: u64,
    abnormal_closures: u64,
    slow_consumer_closes: u64,
    stalled_closes: u64,
    /// Bytes of partly received messages held now (`server.max_buffered_bytes`).
    buffered_bytes: usize,
    rejected: &'a BTreeMap<u16, u64>,
    close_sent: &'a BTreeMap<u16, u64>,
    close_received: &'a BTreeMap<u16, u64>,
    uptime_seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets() {
        let mut h = LoopHistogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(700));
        h.observe(Duration::from_secs(2));
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[4], 1);
        assert_eq!(h.counts[LOOP_BUCKETS.len()], 1);
        assert!((h.sum - 2.000705).abs() < 1e-9);
    }
}
