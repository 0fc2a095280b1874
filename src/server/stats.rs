//! Counters the loop keeps about itself, rendered by `/stats`.
//!
//! Plain integers owned by the loop: no atomics, no locks.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::hub::HubCounts;

/// Running totals since the server started.
#[derive(Debug)]
pub(super) struct Stats {
    /// When the server started.
    pub started: Instant,
    /// Connections accepted.
    pub connections_total: u64,
    /// Handshakes completed (101 sent).
    pub upgrades_total: u64,
    /// Requests refused before the upgrade, by HTTP status.
    pub rejected: BTreeMap<u16, u64>,
    /// Data messages received.
    pub messages_in: u64,
    /// Data messages sent (each recipient counts once).
    pub messages_out: u64,
    /// Bytes read from sockets.
    pub bytes_in: u64,
    /// Bytes written to sockets.
    pub bytes_out: u64,
    /// Close frames sent, by code.
    pub close_sent: BTreeMap<u16, u64>,
    /// Close frames received, by code (1005 for an empty body).
    pub close_received: BTreeMap<u16, u64>,
    /// Protocol errors that failed a connection.
    pub protocol_errors: u64,
    /// Connections closed without a closing handshake (EOF or reset mid-stream).
    pub abnormal_closures: u64,
    /// Connections closed because their outbound queue passed the cap.
    pub slow_consumer_closes: u64,
}

impl Stats {
    /// Zeroed counters, started now.
    pub(super) fn new(now: Instant) -> Self {
        Self {
            started: now,
            connections_total: 0,
            upgrades_total: 0,
            rejected: BTreeMap::new(),
            messages_in: 0,
            messages_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            close_sent: BTreeMap::new(),
            close_received: BTreeMap::new(),
            protocol_errors: 0,
            abnormal_closures: 0,
            slow_consumer_closes: 0,
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

    /// The `/stats` JSON document.
    pub(super) fn to_json(&self, now: Instant, active: usize, hub: HubCounts) -> String {
        let view = StatsView {
            hub_connections: hub.connections,
            users: hub.users,
            rooms: hub.rooms,
            active_connections: active,
            total_connections: self.connections_total,
            upgrades: self.upgrades_total,
            messages_received: self.messages_in,
            messages_sent: self.messages_out,
            bytes_received: self.bytes_in,
            bytes_sent: self.bytes_out,
            errors: self.protocol_errors,
            abnormal_closures: self.abnormal_closures,
            slow_consumer_closes: self.slow_consumer_closes,
            rejected: &self.rejected,
            close_sent: &self.close_sent,
            close_received: &self.close_received,
            uptime_seconds: now.saturating_duration_since(self.started).as_secs_f64(),
        };
        serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[derive(Serialize)]
struct StatsView<'a> {
    active_connections: usize,
    hub_connections: usize,
    users: usize,
    rooms: usize,
    total_connections: u64,
    upgrades: u64,
    messages_received: u64,
    messages_sent: u64,
    bytes_received: u64,
    bytes_sent: u64,
    errors: u64,
    abnormal_closures: u64,
    slow_consumer_closes: u64,
    rejected: &'a BTreeMap<u16, u64>,
    close_sent: &'a BTreeMap<u16, u64>,
    close_received: &'a BTreeMap<u16, u64>,
    uptime_seconds: f64,
}
