//! `wsloop bench` against the real server on loopback: every mode runs briefly and its JSON
//! report is sane; a refused connection and a rejected handshake are quick, clear errors.
//!
//! The server runs in this process (`Server::spawn` on port 0), so `--pid` is our own pid.
//! That the binary prints the report as JSON is checked from outside, in
//! `tests/bench_cli.rs`.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use wsloop::client::WsUrl;
use wsloop::server::{Server, ServerConfig, ServerHandle};

use crate::bench::{
    self, BenchConfig, BenchError, ConnectOptions, EchoOptions, FanoutOptions, IdleOptions, Mode,
};

/// A server on `127.0.0.1:0`, stopped when dropped.
struct Running {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// A server with the limits a benchmark needs off, adjusted by `configure`.
    fn start(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            handshake_rate: None,
            max_connections_per_ip: 0,
            max_connections_per_user: 0,
            ..ServerConfig::default()
        };
        config.hub.rate_limit_enabled = false;
        configure(&mut config);
        let spawned = Server::spawn(config).expect("server starts");
        Self {
            addr: spawned.local_addr,
            handle: spawned.handle,
            thread: Some(spawned.thread),
        }
    }

    fn config(&self, path: &str, mode: Mode) -> BenchConfig {
        let url = WsUrl::parse(&format!("ws://{}{path}", self.addr)).unwrap();
        let mut config = BenchConfig::new(url, mode);
        config.duration = Duration::from_millis(300);
        config.timeout = Duration::from_secs(5);
        config.pid = Some(std::process::id());
        config
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.handle.exit_now();
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn json(report: &bench::Report) -> Value {
    serde_json::to_value(report).expect("reports serialize")
}

fn assert_latency_sane(latency: &Value) {
    let p50 = latency["p50_us"].as_f64().unwrap();
    let p99 = latency["p99_us"].as_f64().unwrap();
    let p999 = latency["p999_us"].as_f64().unwrap();
    let max = latency["max_us"].as_f64().unwrap();
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
        "{latency}"
    );
    assert!(latency["samples"].as_u64().unwrap() > 0);
}

#[test]
fn echo_reports_rates_latency_and_clean_checks() {
    let server = Running::start(|_| {});
    let options = EchoOptions {
        connections: 4,
        size: 32,
        depth: 4,
        ..EchoOptions::default()
    };
    let report = bench::run(&server.config("/echo", Mode::Echo(options))).unwrap();
    assert!(report.problems().is_empty(), "{report}");
    let r = json(&report);
    assert_eq!(r["mode"], "echo");
    assert!(r["messages"].as_u64().unwrap() > 100, "{r}");
    assert!(r["msgs_per_s"].as_f64().unwrap() > 0.0);
    assert!(r["mb_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["bad_frames"], 0);
    assert_eq!(r["lost"], 0);
    assert_latency_sane(&r["latency"]);
    assert!(r["server"]["cpu_s"].as_f64().unwrap() >= 0.0);
}

#[test]
fn echo_with_a_message_count_and_large_text_messages() {
    let server = Running::start(|_| {});
    let options = EchoOptions {
        connections: 3,
        size: 16 * 1024,
        depth: 1,
        messages: Some(300),
        text: true,
    };
    let report = bench::run(&server.config("/echo", Mode::Echo(options))).unwrap();
    let r = json(&report);
    assert_eq!(r["messages"], 300, "{r}");
    assert_eq!(r["bad_frames"], 0);
    assert!(r["mb_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn fanout_delivers_everything_in_order() {
    let server = Running::start(|_| {});
    let options = FanoutOptions {
        subscribers: 5,
        depth: 4,
        ..FanoutOptions::default()
    };
    let report = bench::run(&server.config("/ws", Mode::Fanout(options))).unwrap();
    assert!(report.problems().is_empty(), "{report}");
    let r = json(&report);
    assert_eq!(r["mode"], "fanout");
    let published = r["published"].as_u64().unwrap();
    let deliveries = r["deliveries"].as_u64().unwrap();
    assert!(published > 10, "{r}");
    assert!(
        deliveries <= published * 5 && deliveries + 4 * 5 >= published * 5,
        "{r}"
    );
    assert_eq!(
        (r["missing"].as_u64(), r["out_of_order"].as_u64()),
        (Some(0), Some(0))
    );
    assert_latency_sane(&r["latency"]);
}

#[test]
fn connect_counts_handshakes_and_server_cpu() {
    let server = Running::start(|_| {});
    let mode = Mode::Connect(ConnectOptions { concurrency: 4 });
    let report = bench::run(&server.config("/echo", mode)).unwrap();
    let r = json(&report);
    assert_eq!(r["mode"], "connect");
    assert!(r["handshakes"].as_u64().unwrap() > 10, "{r}");
    assert_eq!(r["failures"], 0, "{r}");
    assert!(r["server_cpu_us_per_handshake"].as_f64().is_some(), "{r}");
    assert_latency_sane(&r["latency"]);
}

#[test]
fn idle_holds_connections_and_reads_rss() {
    let server = Running::start(|_| {});
    let mode = Mode::Idle(IdleOptions {
        connections: 200,
        parallel: 32,
    });
    let report = bench::run(&server.config("/echo", mode)).unwrap();
    let r = json(&report);
    assert_eq!(r["mode"], "idle");
    assert_eq!(r["connections"], 200);
    assert_eq!(r["lost"], 0, "{r}");
    assert!(r["rss_before_kib"].as_u64().unwrap() > 0);
    assert!(r["rss_per_conn_bytes"].as_f64().is_some());
}

#[test]
fn a_refused_connection_is_a_quick_clear_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = WsUrl::parse(&format!("ws://127.0.0.1:{port}/echo")).unwrap();
    let started = Instant::now();
    let err = bench::run(&BenchConfig::new(url, Mode::Echo(EchoOptions::default()))).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, BenchError::Setup { .. }), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
}

#[test]
fn a_rejected_handshake_names_the_status() {
    let server = Running::start(|config| config.max_connections = 2);
    let options = EchoOptions {
        connections: 5,
        ..EchoOptions::default()
    };
    let err = bench::run(&server.config("/echo", Mode::Echo(options))).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("503") && text.contains("--max-connections"),
        "{text}"
    );
}

#[test]
fn the_hub_rate_limit_is_reported_not_waited_out() {
    let server = Running::start(|config| config.hub.rate_limit_enabled = true);
    let options = FanoutOptions {
        subscribers: 2,
        depth: 16,
        ..FanoutOptions::default()
    };
    let mut config = server.config("/ws", Mode::Fanout(options));
    config.duration = Duration::from_secs(3);
    let started = Instant::now();
    let err = bench::run(&config).unwrap_err();
    assert!(err.to_string().contains("rate-limit off"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
