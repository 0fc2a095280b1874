//! A parser of the Prometheus/OpenMetrics text that `GET /metrics` returns.

use std::collections::BTreeMap;

use super::super::{Request, TestServer};

/// A parsed Prometheus/OpenMetrics text exposition: every sample by its full series name
/// (`wsloop_handshakes_rejected_total{status="401"}`), and every family's `# TYPE`.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    /// Series name (with labels as rendered) to value.
    pub(crate) samples: BTreeMap<String, f64>,
    /// Family name to type (`counter`, `gauge`, `histogram`).
    pub(crate) types: BTreeMap<String, String>,
    /// The text as scraped, for failure messages.
    pub(crate) text: String,
}

impl Metrics {
    /// Parses the exposition; panics on a line that is neither a comment nor a sample.
    pub(crate) fn parse(text: &str) -> Self {
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {line:?}"));
            samples.insert(series.to_owned(), value);
        }
        Self {
            samples,
            types,
            text: text.to_owned(),
        }
    }

    /// The value of one series; panics (with the whole text) if it is absent.
    pub(crate) fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in /metrics:\n{}", self.text))
    }

    /// The value of one series, 0 if absent (labelled counters appear once counted).
    pub(crate) fn or_zero(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// The sum over every series of a family (`name` then `{` or ` `).
    pub(crate) fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(name))
            .map(|(_, v)| v)
            .sum()
    }
}

/// Scrapes `GET /metrics` from an in-process server.
pub(crate) fn scrape(server: &TestServer) -> Metrics {
    let response = server.request(&Request::get("/metrics"));
    assert_eq!(response.status, 200, "GET /metrics: {response:?}");
    Metrics::parse(&String::from_utf8_lossy(&response.body))
}
