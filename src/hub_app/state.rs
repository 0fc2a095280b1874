//! The hub's state, which its app owns ([`super::app::HubApp`]): the rooms and members
//! ([`Hub`]), what it asked for during the current callback ([`Outbox`]), its history file,
//! its link to Redis, the server API requests waiting for other nodes, and its figures.
//!
//! The work on it that reaches connections (applying the outbox, the cluster link, the
//! API) is `impl HubState` in the sibling files, each method given the [`crate::server::Ctx`] of the
//! app's callback it runs in.

use std::collections::BTreeMap;
use std::io;

use super::api::ApiOutcome;
use super::gather::Gathers;
use super::history_log::{HistoryLog, Loaded};
use crate::cluster::Cluster;
use crate::hub::{Hub, HubConfig, Outbox};
use crate::protocol::http::Response;
use crate::server::AppMetrics;
use crate::server::AppWaker;
use crate::server::ConnId;
use crate::server::ServerConfig;

/// What the hub brings up before the loop starts: its history file (and what it held)
/// and its Redis threads.
#[derive(Debug, Default)]
pub(crate) struct HubParts {
    /// The history log and what it held, when `history_dir` is set.
    pub(crate) history: Option<(HistoryLog, Vec<Loaded>)>,
    /// The Redis threads, when clustered.
    pub(crate) cluster: Option<Cluster>,
}

impl HubParts {
    /// Opens the history file (when `history_dir` is set) and starts the Redis threads
    /// (when clustered), which report to the hub's app through `waker`.
    pub(crate) fn open(config: &ServerConfig, waker: AppWaker) -> io::Result<Self> {
        let history = match &config.history_dir {
            Some(dir) => Some(HistoryLog::open(
                dir,
                config.hub.history.size,
                config.history_fsync,
            )?),
            None => None,
        };
        let cluster = match &config.cluster {
            Some((settings, node)) => Some(Cluster::start(settings.clone(), node.clone(), waker)?),
            None => None,
        };
        Ok(Self { history, cluster })
    }
}

/// The hub's figures that are not the hub's tables' (those it counts itself).
#[derive(Debug, Default, Clone)]
pub(crate) struct HubCounters {
    /// API answers, by HTTP status.
    pub(crate) api_requests: BTreeMap<u16, u64>,
    /// Messages accepted by the publish API.
    pub(crate) messages_published: u64,
    /// Failed writes to the history log.
    pub(crate) history_write_errors: u64,
    /// Messages received from the cluster bus.
    pub(crate) bus_messages: u64,
    /// Messages delivered on this node only because Redis was unavailable.
    pub(crate) cluster_fallbacks: u64,
    /// Messages refused because Redis could not take them.
    pub(crate) cluster_refusals: u64,
    /// Redis connections lost or refused.
    pub(crate) redis_disconnects: u64,
}

/// The hub's state.
#[derive(Debug)]
pub(crate) struct HubState {
    /// The chat/pub-sub state of `/ws`.
    pub(crate) hub: Hub,
    /// What the hub asked for during the current callback; applied by `apply_outbox`
    /// before the callback returns (or, for a run of messages, at its end).
    pub(crate) outbox: Outbox,
    /// The history log on disk, when `history_dir` is set.
    pub(crate) history_log: Option<HistoryLog>,
    /// The Redis threads, when clustered.
    pub(crate) cluster: Option<Cluster>,
    /// This node's id: the cluster's, or a generated one when alone (`/api/info`).
    pub(crate) node: String,
    /// The id the publish API sends as (`api.sender_id`), which no client may take.
    pub(crate) sender_id: String,
    /// Server API requests waiting for the other nodes' parts.
    pub(crate) gathers: Gathers,
    /// Redis's outcomes for the messages of waiting publish requests, for the app.
    pub(crate) api_outcomes: Vec<ApiOutcome>,
    /// Answers to server API requests that the cluster link or a gather deadline
    /// completed, for the app to give.
    pub(crate) api_answers: Vec<(ConnId, Response)>,
    /// Its figures beside the hub's tables'.
    pub(crate) counters: HubCounters,
}

impl HubState {
    /// The hub as `config` sets it up, with the history `parts` restored and its Redis
    /// threads.
    pub(crate) fn new(config: &ServerConfig, parts: HubParts) -> Self {
        let HubParts { history, cluster } = parts;
        let (history_log, loaded) = match history {
            Some((log, loaded)) => (Some(log), loaded),
            None => (None, Vec::new()),
        };
        let mut hub = Hub::new(HubConfig {
            // Frames held for a recovering member are its unsent bytes too.
            max_held_bytes: config.max_outbound_bytes,
            ..config.hub.clone()
        });
        hub.set_authenticator(config.auth.clone());
        hub.set_bus(cluster.is_some());
        for r in &loaded {
            hub.restore(&r.room, &r.epoch, r.offset, r.at_ms, &r.json);
        }
        if let Some(log) = &history_log {
            log::info!(
                "history log {}: {} messages restored",
                log.path().display(),
                loaded.len()
            );
        }
        let node = cluster
            .as_ref()
            .map_or_else(crate::cluster::default_node_id, |c| c.node().to_owned());
        Self {
            hub,
            outbox: Outbox::default(),
            history_log,
            cluster,
            node,
            sender_id: config.api.sender_id.clone(),
            gathers: Gathers::default(),
            api_outcomes: Vec::new(),
            api_answers: Vec::new(),
            counters: HubCounters::default(),
        }
    }
}

impl HubState {
    /// The hub's figures for `/metrics` and `/stats`, under the names the engine gave them
    /// when they were its own.
    pub(crate) fn metrics(&self, out: &mut AppMetrics) {
        let tables = self.hub.counts();
        out.gauge(
            "hub_connections",
            "Connections on /ws",
            to_i64(tables.connections),
        );
        out.gauge(
            "users",
            "Distinct users connected to /ws",
            to_i64(tables.users),
        );
        out.gauge(
            "rooms",
            "Rooms with at least one member",
            to_i64(tables.rooms),
        );
        let errors = self.hub.error_counts();
        let by_code = errors.iter().map(|(code, n)| (*code, *n));
        out.counters(
            "hub_errors",
            "Error replies sent on /ws, by code",
            "code",
            by_code,
        );
        out.counter(
            "rate_limited_messages",
            "Client messages dropped by the rate limit",
            errors.get("rate_limited").copied().unwrap_or(0),
        );
        let c = &self.counters;
        let by_status = c.api_requests.iter().map(|(status, n)| (*status, *n));
        out.counters(
            "api_requests",
            "Requests to the hub's API (/api/*), by HTTP status",
            "status",
            by_status,
        );
        let counters = [
            (
                "messages_published",
                "Messages accepted by the publish API",
                c.messages_published,
            ),
            (
                "history_write_errors",
                "Failed writes to the history log",
                c.history_write_errors,
            ),
            (
                "bus_messages",
                "Messages received from the cluster bus",
                c.bus_messages,
            ),
            (
                "cluster_fallbacks",
                "Messages delivered locally only because Redis was unavailable",
                c.cluster_fallbacks,
            ),
            (
                "cluster_refusals",
                "Messages refused (error unavailable, API 503) because Redis could not take them",
                c.cluster_refusals,
            ),
            (
                "redis_disconnects",
                "Redis connections lost or refused",
                c.redis_disconnects,
            ),
        ];
        for (name, help, value) in counters {
            out.counter(name, help, value);
        }
        if let Some(cluster) = &self.cluster {
            out.gauge(
                "cluster_up",
                "1 while both Redis connections are up, 0 while degraded",
                i64::from(cluster.is_up()),
            );
            out.gauge(
                "cluster_gaps",
                "Rooms whose messages wait while a gap in their offsets is read from Redis",
                to_i64(self.hub.gap_count()),
            );
            out.counter(
                "cluster_presence_dropped",
                "Other nodes' room users not mirrored here because the mirror was full (their rooms' counts are low)",
                self.hub.presence_overflowed(),
            );
        }
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
