//! [`AppMetrics`]: an app's own figures in `GET /metrics` and `GET /stats`, beside the
//! engine's.
//!
//! At a scrape the engine asks every app ([`super::App::metrics`]) for its counters and
//! gauges, copies them into the snapshot it renders, and encodes them with the same
//! `wsloop_` prefix as its own (a counter gains `_total`, as Prometheus names counters).
//! `/stats` shows them under their bare names, beside the engine's own.

use std::panic::{self, AssertUnwindSafe};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::app::App;

/// The counters and gauges an app reports at one scrape.
///
/// ```
/// use wsloop::server::{App, AppMetrics, ConnId, Ctx, Message};
///
/// struct Game { players: usize, moves: u64 }
///
/// impl App for Game {
///     fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {
///         self.moves += 1;
///     }
///
///     fn metrics(&self, out: &mut AppMetrics) {
///         out.gauge("game_players", "Players in a game", self.players as i64);
///         out.counter("game_moves", "Moves played", self.moves);
///     }
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct AppMetrics {
    entries: Vec<Metric>,
}

#[derive(Debug, Clone)]
struct Metric {
    name: String,
    help: String,
    value: Value,
}

#[derive(Debug, Clone)]
enum Value {
    Counter(u64),
    Gauge(i64),
    /// One counter per value of `label`, by key.
    Counters {
        label: String,
        values: Vec<(String, u64)>,
    },
}

impl AppMetrics {
    /// A counter (only ever goes up; exposed as `wsloop_<name>_total`). A `name` that is
    /// not a Prometheus metric name (`[a-zA-Z_][a-zA-Z0-9_]*`), or that this scrape
    /// already has, is left out with a warning in the log.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.add(name, help, Value::Counter(value));
    }

    /// A gauge (a level that goes up and down; exposed as `wsloop_<name>`). Names as for
    /// [`AppMetrics::counter`].
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) {
        self.add(name, help, Value::Gauge(value));
    }

    /// A family of counters told apart by one label: one sample per key, exposed as
    /// `wsloop_<name>_total{<label>="<key>"}` (errors by code, requests by status). Names
    /// as for [`AppMetrics::counter`]; a `label` that is not a Prometheus label name
    /// (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`) leaves the family out with a
    /// warning. `/stats` shows the family as an object of its keys.
    ///
    /// ```
    /// use wsloop::server::AppMetrics;
    ///
    /// let mut out = AppMetrics::default();
    /// out.counters("game_errors", "Errors answered, by code", "code", [("bad_move", 3), ("timeout", 1)]);
    /// ```
    pub fn counters<K: std::fmt::Display>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = (K, u64)>,
    ) {
        if !valid_name(label) || label.starts_with("__") {
            log::warn!("app metric {name:?} left out: {label:?} is not a label name");
            return;
        }
        let values = values
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect();
        let label = label.to_owned();
        self.add(name, help, Value::Counters { label, values });
    }

    fn add(&mut self, name: &str, help: &str, value: Value) {
        if !valid_name(name) {
            log::warn!("app metric {name:?} left out: not a Prometheus metric name");
            return;
        }
        if self.entries.iter().any(|m| m.name == name) {
            log::warn!("app metric {name:?} left out: reported twice");
            return;
        }
        // One line of exposition: no control character ends it early.
        let help = help.replace(|c: char| c.is_control(), " ");
        self.entries.push(Metric {
            name: name.to_owned(),
            help,
            value,
        });
    }

    /// Asks `app` for its figures, adding them to these. A panic in the app leaves its
    /// figures out of this scrape and is logged; the loop goes on.
    pub(super) fn collect(&mut self, app: &dyn App) {
        let before = self.entries.len();
        let asked = panic::catch_unwind(AssertUnwindSafe(|| app.metrics(self)));
        if asked.is_err() {
            self.entries.truncate(before);
            log::error!("an app's metrics() panicked; its figures are left out of this scrape");
        }
    }

    /// Keeps the figures whose name `keep` accepts.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|metric| keep(&metric.name));
    }

    /// Every figure by name, as `/stats` shows them (counters without `_total`).
    pub(super) fn figures(&self) -> impl Iterator<Item = (&str, serde_json::Value)> {
        self.entries.iter().map(|metric| {
            let value = match &metric.value {
                Value::Counter(v) => serde_json::Value::from(*v),
                Value::Gauge(v) => serde_json::Value::from(*v),
                Value::Counters { values, .. } => values
                    .iter()
                    .map(|(key, value)| (key.clone(), serde_json::Value::from(*value)))
                    .collect::<serde_json::Map<_, _>>()
                    .into(),
            };
            (metric.name.as_str(), value)
        })
    }

    /// Encodes every figure.
    pub(super) fn encode(&self, e: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for metric in &self.entries {
            match &metric.value {
                Value::Counter(v) => ConstCounter::new(*v).encode(e.encode_descriptor(
                    &metric.name,
                    &metric.help,
                    None,
                    MetricType::Counter,
                )?)?,
                Value::Gauge(v) => ConstGauge::new(*v).encode(e.encode_descriptor(
                    &metric.name,
                    &metric.help,
                    None,
                    MetricType::Gauge,
                )?)?,
                Value::Counters { label, values } => {
                    let mut family =
                        e.encode_descriptor(&metric.name, &metric.help, None, MetricType::Counter)?;
                    for (key, value) in values {
                        let labels = [(label.as_str(), key.as_str())];
                        ConstCounter::new(*value).encode(family.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A Prometheus metric name without the colon (reserved for recording rules).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_kept_once() {
        let mut m = AppMetrics::default();
        m.counter("moves", "", 1);
        m.counter("moves", "", 2);
        m.gauge("1bad", "", 3);
        m.gauge("bad-name", "", 3);
        m.gauge("", "", 3);
        m.gauge("_ok9", "", 4);
        let names: Vec<_> = m.entries.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["moves", "_ok9"]);
        m.counters("errors", "", "__reserved", [("a", 1)]);
        m.counters("errors", "", "bad label", [("a", 1)]);
        m.counters("errors", "", "code", [("a", 1), ("b", 2)]);
        let names: Vec<_> = m.entries.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["moves", "_ok9", "errors"]);
    }
}
