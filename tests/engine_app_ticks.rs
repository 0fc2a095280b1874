//! An app's life beyond its connections: `on_start` before the first poll, ticks of its
//! own ([`Ctx::tick`], tied to no connection), a producer thread started with
//! [`Ctx::waker`], one app routed at two paths ([`ServerBuilder::route_paths`]: its
//! WebSocket and its HTTP API share its state), and its figures in `/metrics`
//! ([`App::metrics`]) and `/stats`.
//!
//! The faults: a tick that panics (the loop and the app's later ticks go on, the panic is
//! counted), a `metrics()` that panics (the scrape still answers, with the engine's
//! figures), and a name that is not a Prometheus name (left out, the rest still there).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
#[allow(clippy::disallowed_types)]
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

use wsloop::client::{Client, ClientOptions, Message as Received};
use wsloop::server::{
    App, AppMetrics, ConnId, Ctx, HttpReply, HttpRequest, Message, Response, Server, ServerBuilder,
    ServerConfig,
};

/// The tick that panics.
const BAD_TICK: u64 = 3;
/// Ticks before the clock stops re-arming.
const TICKS: u64 = 6;

/// Publishes "tick N" to every connection every 100 ms, `TICKS` times; a thread it starts
/// in `on_start` sends one word through a one-slot queue and wakes it.
struct Clock {
    started: bool,
    ticks: u64,
    #[allow(clippy::disallowed_types)]
    words: Option<Receiver<&'static str>>,
    woken: Vec<&'static str>,
}

impl App for Clock {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.started = true;
        ctx.tick(Duration::from_millis(100), 1);
        let (tx, rx) = sync_channel(1);
        self.words = Some(rx);
        let waker = ctx.waker();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send("hello from a thread").expect("queue");
            waker.wake().expect("wake");
        });
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &wsloop::server::Request<'_>) {
        ctx.subscribe(conn, "clock");
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}

    fn on_tick(&mut self, ctx: &mut Ctx<'_>, token: u64) {
        self.ticks += 1;
        if token < TICKS {
            ctx.tick(Duration::from_millis(100), token + 1);
        }
        assert_ne!(token, BAD_TICK, "a bug in tick {token}");
        ctx.publish("clock", Message::Text(&format!("tick {token}")));
    }

    fn on_wake(&mut self, _: &mut Ctx<'_>) {
        if let Some(word) = self.words.as_ref().and_then(|rx| rx.try_recv().ok()) {
            self.woken.push(word);
        }
    }

    fn on_http(&mut self, _: &mut Ctx<'_>, request: &HttpRequest<'_>) -> HttpReply {
        let body = format!(
            "{} started={} ticks={} woken={:?}",
            request.path(),
            self.started,
            self.ticks,
            self.woken
        );
        HttpReply::Respond(Response::text(200, &body))
    }

    fn metrics(&self, out: &mut AppMetrics) {
        out.counter("clock_ticks", "Ticks handled", self.ticks);
        out.counters(
            "clock_events",
            "Events, by kind",
            "kind",
            [("tick", self.ticks), ("wake", self.woken.len() as u64)],
        );
        // A family the engine's `/metrics` has (its counter `wsloop_upgrades_total`).
        out.gauge("upgrades", "not the engine's", -5);
        // A name the engine's `/stats` document has (not a `/metrics` one).
        out.gauge("websocket_connections", "not the engine's", -7);
        out.gauge("clock bad name", "left out", 1);
        out.gauge(
            "clock_words",
            "Words from the thread",
            self.woken.len() as i64,
        );
    }
}

/// Panics when asked for its figures; has no connections.
struct Broken;

impl App for Broken {
    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}

    fn metrics(&self, out: &mut AppMetrics) {
        out.gauge("broken_before_panic", "never shown", 1);
        panic!("a bug in metrics()");
    }
}

fn start() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections_per_ip: 0,
            handshake_rate: None,
            ..ServerConfig::default()
        };
        let clock = Clock {
            started: false,
            ticks: 0,
            words: None,
            woken: Vec::new(),
        };
        let builder: ServerBuilder = Server::builder(config)
            .route_paths(&["/clock", "/clock-api/*"], clock)
            .route("/broken", Broken);
        let mut server = builder.bind().expect("bind");
        tx.send(server.local_addr()).expect("send the address");
        server.run().expect("run");
    });
    rx.recv().expect("the server's address")
}

/// A plain GET; the response's status line and body.
fn get(addr: SocketAddr, target: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

#[test]
fn ticks_a_thread_two_paths_and_metrics() {
    let addr = start();
    let mut client =
        Client::connect(&format!("ws://{addr}/clock"), &ClientOptions::default()).expect("ws");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The ticks that ran after the connection subscribed, in order, without the one that
    // panicked; the ticks after it still come.
    let mut seen = Vec::new();
    while seen.last() != Some(&TICKS) {
        match client.recv() {
            Ok(Received::Text(text)) => {
                let n: u64 = text["tick ".len()..].parse().expect("a tick number");
                seen.push(n);
            }
            other => panic!("expected a tick, got {other:?}"),
        }
    }
    assert!(!seen.contains(&BAD_TICK), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(
        seen.contains(&(BAD_TICK + 1)),
        "ticks go on after a panic: {seen:?}"
    );

    // The same app behind its second path: what its WebSocket side did is its state.
    let (status, body) = get(addr, "/clock-api/state");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        body.trim_end(),
        format!("/clock-api/state started=true ticks={TICKS} woken=[\"hello from a thread\"]")
    );

    // The app's figures beside the engine's; a panicking app's are left out.
    let (status, metrics) = get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .map(str::to_owned)
    };
    assert_eq!(
        line("wsloop_clock_ticks_total "),
        Some(format!("wsloop_clock_ticks_total {TICKS}"))
    );
    assert_eq!(
        line("wsloop_clock_words "),
        Some("wsloop_clock_words 1".into())
    );
    assert_eq!(
        line("wsloop_clock_events_total{kind=\"tick\"}"),
        Some(format!(
            "wsloop_clock_events_total{{kind=\"tick\"}} {TICKS}"
        ))
    );
    assert_eq!(
        line("wsloop_clock_events_total{kind=\"wake\"}"),
        Some("wsloop_clock_events_total{kind=\"wake\"} 1".into())
    );
    assert!(!metrics.contains("bad name"), "{metrics}");
    // A family of the engine's name stays the engine's, once.
    assert_eq!(
        metrics.matches("# TYPE wsloop_upgrades ").count(),
        1,
        "{metrics}"
    );
    assert!(!metrics.contains("-5"), "{metrics}");
    assert!(!metrics.contains("broken_before_panic"), "{metrics}");
    assert!(metrics.contains("wsloop_connections"), "the engine's own");
    let panics = line("wsloop_panics_total ").expect("the panic counter");
    assert_eq!(panics, "wsloop_panics_total 1", "the tick's panic");

    // The same figures in `/stats`, by their bare names, beside the engine's; a name the
    // engine's document has keeps the engine's value.
    let (status, stats) = get(addr, "/stats");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("JSON");
    assert_eq!(stats["clock_ticks"], TICKS, "{stats}");
    assert_eq!(stats["clock_words"], 1, "{stats}");
    assert_eq!(
        stats["clock_events"],
        serde_json::json!({"tick": TICKS, "wake": 1}),
        "{stats}"
    );
    assert_eq!(stats["websocket_connections"], 1, "the engine's: {stats}");
    assert!(stats.get("broken_before_panic").is_none(), "{stats}");
}
