//! `/metrics`, `/stats`, `/healthz` and `/readyz` over loopback against the in-process
//! server: a scripted session (echoes, hub requests, refusals, a protocol error, a peer that
//! vanishes) and then every counter of the scrape checked against what the script did.

mod common;

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use common::guard::{Metrics, expect_welcome, read_until_close, request_at, scrape, send_json};
use common::{FIN, OP_TEXT, Request, SETTLE, TestServer, unmasked_frame};
use serde_json::json;
use wsloop::ratelimit::Rate;

/// What the script did, counted on the client side.
#[derive(Debug, Default)]
struct Expected {
    connections: u64,
    upgrades: u64,
    rejected: BTreeMap<u16, u64>,
    messages_in: u64,
    messages_out: u64,
    payload_bytes_in: u64,
}

impl Expected {
    /// A refused request of `status`, on its own connection.
    fn refuse(&mut self, server: &TestServer, request: &Request, status: u16) {
        let response = request_at(server.addr, request);
        assert_eq!(response.status, status, "{response:?}");
        self.connections += 1;
        *self.rejected.entry(status).or_default() += 1;
    }
}

/// Scrapes until the only connection left is the scrape's own; returns it and the count of
/// scrapes made (each is one more accepted connection).
fn scrape_when_idle(server: &TestServer) -> (Metrics, u64) {
    let deadline = Instant::now() + SETTLE;
    let mut scrapes = 0;
    loop {
        let metrics = scrape(server);
        scrapes += 1;
        if metrics.get("wsloop_connections_active") == 1.0 {
            return (metrics, scrapes);
        }
        assert!(Instant::now() < deadline, "never idle:\n{}", metrics.text);
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_after_a_scripted_session_match_what_the_script_did() {
    let server = TestServer::start_with(|c| {
        c.max_connections_per_user = 1;
        c.hub.rate_limit = Rate {
            capacity: 3.0,
            refill_per_sec: 0.01,
        };
        c.hub.abuse_strikes = 100;
    });
    let mut want = Expected::default();

    // 1. An echo client: three texts and a binary, then a clean close.
    let mut echo = server.open("/echo");
    for text in ["one", "two", "three"] {
        echo.send_text(text);
        echo.expect_text(text);
    }
    echo.send_binary(&[7; 300]);
    echo.expect_binary(&[7; 300]);
    echo.close_cleanly();
    want.connections += 1;
    want.upgrades += 1;
    want.messages_in += 4;
    want.messages_out += 4;
    want.payload_bytes_in += 3 + 3 + 5 + 300;

    // 2. A hub client: join, chat, a refused leave, two rate-limited messages.
    let mut alice = server.open("/ws?user_id=alice");
    expect_welcome(&mut alice);
    send_json(
        &mut alice,
        &json!({"type": "join", "room": "lobby", "id": 1}),
    );
    send_json(
        &mut alice,
        &json!({"type": "chat", "room": "lobby", "payload": "hi", "id": 2}),
    );
    for _ in 0..3 {
        send_json(&mut alice, &json!({"type": "leave", "room": "nowhere"}));
    }
    // (A second connection of alice is over max_connections_per_user meanwhile.)
    want.refuse(&server, &Request::upgrade("/ws?user_id=alice"), 429);
    alice.send_close(1000, "done");
    let (replies, code, _) = read_until_close(&mut alice);
    assert_eq!(code, Some(1000));
    alice.expect_eof();
    drop(alice); // our FIN: the server has nothing left to wait for
    let codes: Vec<&str> = replies.iter().filter_map(|r| r["code"].as_str()).collect();
    assert_eq!(
        codes,
        ["not_member", "rate_limited", "rate_limited"],
        "{replies:?}"
    );
    want.connections += 1;
    want.upgrades += 1;
    want.messages_in += 5;
    want.messages_out += 1 + replies.len() as u64; // the welcome, then everything else

    // 3. Refusals before the upgrade.
    want.refuse(&server, &Request::get("/nope"), 404);
    want.refuse(
        &server,
        &Request::upgrade("/echo").remove("Sec-WebSocket-Key"),
        400,
    );
    want.refuse(
        &server,
        &Request::upgrade("/echo").set("Origin", "http://evil.test"),
        403,
    );
    want.refuse(
        &server,
        &Request::upgrade("/echo").set("Sec-WebSocket-Version", "8"),
        426,
    );
    assert_eq!(server.request(&Request::get("/healthz")).status, 200);
    want.connections += 1;

    // 4. A protocol error (an unmasked client frame): the server fails it with 1002.
    let mut bad = server.open("/echo");
    bad.send(&unmasked_frame(FIN | OP_TEXT, b"unmasked"));
    let (_, code, _) = read_until_close(&mut bad);
    assert_eq!(code, Some(1002));
    bad.expect_eof();
    drop(bad);
    want.connections += 1;
    want.upgrades += 1;

    // 5. A peer that vanishes mid-frame, without a closing handshake.
    let mut gone = server.open("/echo");
    gone.send(&common::frame(FIN | OP_TEXT, b"cut short")[..5]);
    gone.vanish();
    want.connections += 1;
    want.upgrades += 1;

    let (m, scrapes) = scrape_when_idle(&server);
    let total = |name: &str| m.get(&format!("wsloop_{name}_total"));
    assert_eq!(
        total("connections"),
        (want.connections + scrapes) as f64,
        "{}",
        m.text
    );
    assert_eq!(total("upgrades"), want.upgrades as f64);
    for (status, count) in &want.rejected {
        let series = format!("wsloop_handshakes_rejected_total{{status=\"{status}\"}}");
        assert_eq!(m.get(&series), *count as f64, "{series}");
    }
    let rejected: u64 = want.rejected.values().sum();
    assert_eq!(
        m.sum("wsloop_handshakes_rejected_total"),
        rejected as f64,
        "{}",
        m.text
    );
    assert_eq!(total("messages_received"), want.messages_in as f64);
    assert_eq!(total("messages_sent"), want.messages_out as f64);
    assert!(total("received_bytes") >= want.payload_bytes_in as f64);
    assert!(total("sent_bytes") >= want.payload_bytes_in as f64);
    assert_eq!(m.get("wsloop_close_received_total{code=\"1000\"}"), 2.0);
    assert_eq!(m.sum("wsloop_close_received_total"), 2.0, "{}", m.text);
    assert_eq!(m.get("wsloop_close_sent_total{code=\"1000\"}"), 2.0);
    assert_eq!(m.get("wsloop_close_sent_total{code=\"1002\"}"), 1.0);
    assert_eq!(m.sum("wsloop_close_sent_total"), 3.0, "{}", m.text);
    assert_eq!(m.sum("wsloop_protocol_errors_total"), 1.0, "{}", m.text);
    assert_eq!(total("abnormal_closures"), 1.0);
    assert_eq!(m.get("wsloop_hub_errors_total{code=\"not_member\"}"), 1.0);
    assert_eq!(m.get("wsloop_hub_errors_total{code=\"rate_limited\"}"), 2.0);
    assert_eq!(total("rate_limited_messages"), 2.0);
    for zero in [
        "slow_consumer_closes",
        "handshake_timeouts",
        "slow_handshakes",
    ] {
        assert_eq!(total(zero), 0.0, "{zero}");
    }
    for (gauge, value) in [
        ("wsloop_connections_active", 1.0),
        ("wsloop_hub_connections", 0.0),
        ("wsloop_users", 0.0),
        ("wsloop_rooms", 0.0),
        ("wsloop_draining", 0.0),
    ] {
        assert_eq!(m.get(gauge), value, "{gauge}");
    }
    assert!(m.get("wsloop_uptime_seconds") > 0.0);
    assert!(m.get("wsloop_loop_iteration_seconds_count") >= 1.0);

    // /stats tells the same story (one more connection: its own).
    let stats = server.stats();
    assert_eq!(
        stats["total_connections"],
        want.connections + scrapes + 1,
        "{stats}"
    );
    assert_eq!(stats["upgrades"], want.upgrades);
    assert_eq!(stats["messages_received"], want.messages_in);
    assert_eq!(stats["messages_sent"], want.messages_out);
    assert_eq!(stats["abnormal_closures"], 1);
    assert_eq!(stats["errors"], 1);
}

/// Buckets are cumulative, end with `+Inf` equal to `_count`, and something was observed.
fn assert_histogram(m: &Metrics, name: &str) {
    let buckets: Vec<(f64, f64)> = m
        .samples
        .iter()
        .filter_map(|(series, value)| {
            let le = series.strip_prefix(&format!("{name}_bucket{{le=\""))?;
            let le = le.strip_suffix("\"}")?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, *value))
        })
        .collect();
    let mut sorted = buckets.clone();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(sorted.len() >= 2, "no buckets for {name}:\n{}", m.text);
    assert!(
        sorted.windows(2).all(|w| w[0].1 <= w[1].1),
        "not cumulative: {sorted:?}"
    );
    let count = m.get(&format!("{name}_count"));
    let text: Vec<&str> = m.text.lines().filter(|l| l.starts_with(name)).collect();
    assert_eq!(
        sorted.last().map(|b| (b.0, b.1)),
        Some((f64::INFINITY, count)),
        "+Inf bucket must equal {name}_count:\n{}",
        text.join("\n")
    );
    assert!(count >= 1.0 && m.get(&format!("{name}_sum")) >= 0.0);
}

// A Prometheus histogram's buckets are cumulative and its `+Inf` bucket equals `_count`
// (OpenMetrics: "the +Inf bucket ... MUST equal the Count").
#[test]
fn loop_time_histogram_is_well_formed() {
    let server = TestServer::start();
    for _ in 0..3 {
        server.open("/echo").close_cleanly();
    }
    assert_histogram(&scrape(&server), "wsloop_loop_iteration_seconds");
}

// Prometheus conventions: one prefix, counters end in `_total`, every family typed, and
// the OpenMetrics `# EOF` terminator.
#[test]
fn exposition_follows_the_naming_conventions() {
    let server = TestServer::start();
    let response = server.request(&Request::get("/metrics"));
    assert_eq!(response.status, 200);
    let content_type = response.header("Content-Type").unwrap_or_default();
    assert!(content_type.contains("text"), "{content_type}");
    let m = Metrics::parse(&String::from_utf8_lossy(&response.body));
    assert_eq!(m.text.trim_end().lines().last(), Some("# EOF"));
    for series in m.samples.keys() {
        assert!(series.starts_with("wsloop_"), "{series}");
        let family = m
            .types
            .iter()
            .filter(|(name, _)| series.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .unwrap_or_else(|| panic!("{series} has no # TYPE"));
        if family.1 == "counter" {
            assert!(
                series.split('{').next().unwrap().ends_with("_total"),
                "{series}"
            );
        }
    }
    for family in [
        "connections",
        "upgrades",
        "messages_received",
        "messages_sent",
    ] {
        assert_eq!(
            m.types.get(&format!("wsloop_{family}")).map(String::as_str),
            Some("counter")
        );
    }
    assert_eq!(
        m.types.get("wsloop_connections_active").map(String::as_str),
        Some("gauge")
    );
}

#[test]
fn readyz_turns_503_and_draining_gauge_1_during_shutdown() {
    let server = TestServer::start_with(|c| c.drain_timeout = Duration::from_secs(30));
    let mut holder = server.open("/echo");
    assert_eq!(server.request(&Request::get("/healthz")).status, 200);
    assert_eq!(server.request(&Request::get("/readyz")).status, 200);
    server.shutdown();
    let (code, reason) = holder.read_close();
    assert_eq!(
        (code, reason.as_str()),
        (Some(1001), "server shutting down")
    );
    let ready = server.request(&Request::get("/readyz"));
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.header("Retry-After").is_some(), "{ready:?}");
    assert_eq!(
        server.request(&Request::get("/healthz")).status,
        200,
        "still alive"
    );
    assert_eq!(scrape(&server).get("wsloop_draining"), 1.0);
    holder.send_close(1001, "");
    holder.expect_eof();
}

// "Close codes sent": a server-initiated close that the client answers is still one close
// frame on the wire (§5.5.1: the server does not reply to the reply), so it counts once.
#[test]
fn close_sent_counts_close_frames_actually_sent() {
    let server = TestServer::start_with(|c| c.drain_timeout = Duration::from_secs(30));
    let mut answering = server.open("/echo");
    let mut silent = server.open("/echo"); // keeps the drain (and /metrics) going
    server.shutdown();
    for client in [&mut answering, &mut silent] {
        assert_eq!(client.read_close().0, Some(1001));
    }
    answering.send_close(1001, "");
    answering.expect_eof(); // nothing but EOF after our reply: one close frame each
    let deadline = Instant::now() + SETTLE;
    let m = loop {
        let m = scrape(&server);
        if m.or_zero("wsloop_close_received_total{code=\"1001\"}") >= 1.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "reply never counted:\n{}",
            m.text
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(m.get("wsloop_close_received_total{code=\"1001\"}"), 1.0);
    assert_eq!(
        m.get("wsloop_close_sent_total{code=\"1001\"}"),
        2.0,
        "two clients, one 1001 close frame each; got:\n{}",
        m.text
    );
    silent.send_close(1001, "");
    silent.expect_eof();
}
