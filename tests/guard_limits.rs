//! Limits and their outcomes, over loopback against the in-process server: the connection
//! cap (503 + `Retry-After`), connections per IP and per user and the handshake rate per IP
//! (429), the per-user message rate limit (`rate_limited` errors, then close 1008), and
//! slow handshakes (slowloris) dropped in time.

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::guard::{
    assert_status, expect_welcome, hs256_auth, hs256_token, read_json, read_until_close,
    request_at, scrape, send_json,
};
use common::{Client, Request, SETTLE, TestServer};
use serde_json::{Value, json};
use wsloop::ratelimit::Rate;

/// Asserts a refusal with `status` and a whole-second `Retry-After` of at least 1.
fn assert_refused_with_retry(addr: SocketAddr, target: &str, status: u16, reason: &str) {
    let response = request_at(addr, &Request::upgrade(target));
    assert_status(&response, status, reason);
    let retry = response.header("Retry-After").unwrap_or_default();
    let seconds: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {retry:?} is not seconds: {response:?}"));
    assert!(seconds >= 1, "{response:?}");
}

/// Upgrades `target` as soon as the server has room again (removal is asynchronous).
fn open_when_room(server: &TestServer, target: &str) -> Client {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut client = server.connect();
        client.send(&Request::upgrade(target).to_bytes());
        let response = client.read_response();
        if response.status == 101 {
            return client;
        }
        assert!(Instant::now() < deadline, "still refused: {response:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn over_max_connections_new_clients_get_503_with_retry_after() {
    let server = TestServer::start_with(|c| c.max_connections = 2);
    let first = server.open("/echo");
    let mut second = server.open("/ws");
    expect_welcome(&mut second);
    assert_refused_with_retry(server.addr, "/echo", 503, "server at connection limit");
    assert_refused_with_retry(server.addr, "/ws", 503, "server at connection limit");
    let stats = request_at(server.addr, &Request::get("/stats"));
    assert_eq!(
        stats.status, 503,
        "the cap applies before routing: {stats:?}"
    );
    // The working connections are untouched, and a freed slot is usable again.
    second.close_cleanly();
    let mut third = open_when_room(&server, "/echo");
    third.send_text("room again");
    third.expect_text("room again");
    third.close_cleanly();
    first.close_cleanly();
}

#[test]
fn over_max_connections_per_ip_get_429() {
    let server = TestServer::start_with(|c| c.max_connections_per_ip = 2);
    let first = server.open("/echo");
    let second = server.open("/echo");
    let reason = "too many connections from your address";
    assert_refused_with_retry(server.addr, "/echo", 429, reason);
    assert_refused_with_retry(server.addr, "/ws", 429, reason);
    first.close_cleanly();
    open_when_room(&server, "/echo").close_cleanly();
    second.close_cleanly();
}

#[test]
fn handshake_rate_per_ip_gives_429_with_retry_after() {
    let rate = Rate {
        capacity: 3.0,
        refill_per_sec: 0.01, // one token per 100 s: none comes back during the test
    };
    let server = TestServer::start_with(|c| c.handshake_rate = Some(rate));
    let open: Vec<Client> = (0..3).map(|_| server.open("/echo")).collect();
    let reason = "too many handshakes from your address";
    assert_refused_with_retry(server.addr, "/echo", 429, reason);
    // It is counted at accept, before routing: plain requests are refused as well.
    let health = request_at(server.addr, &Request::get("/healthz"));
    assert_status(&health, 429, reason);
    let retry: u64 = health.header("Retry-After").unwrap().parse().unwrap();
    assert!(
        (50..=101).contains(&retry),
        "a token is ~100 s away: {health:?}"
    );
    // Closing connections does not give handshakes back.
    for client in open {
        client.close_cleanly();
    }
    assert_refused_with_retry(server.addr, "/echo", 429, reason);
}

#[test]
fn over_max_connections_per_user_get_429() {
    let server = TestServer::start_with(|c| c.max_connections_per_user = 2);
    let mut alice: Vec<Client> = (0..2).map(|_| server.open("/ws?user_id=alice")).collect();
    for client in &mut alice {
        assert_eq!(expect_welcome(client), "alice");
    }
    let reason = "user already has 2 connections";
    assert_refused_with_retry(server.addr, "/ws?user_id=alice", 429, reason);
    // Other users and the echo endpoint are not affected.
    let mut bob = server.open("/ws?user_id=bob");
    assert_eq!(expect_welcome(&mut bob), "bob");
    server.open("/echo").close_cleanly();
    alice.pop().unwrap().close_cleanly();
    let mut again = open_when_room(&server, "/ws?user_id=alice");
    assert_eq!(expect_welcome(&mut again), "alice");
}

// With auth on, the user is the token's: two tokens of one user share the cap.
#[test]
fn per_user_cap_counts_the_tokens_user() {
    let server = TestServer::start_with(|c| {
        c.max_connections_per_user = 1;
        c.auth = hs256_auth();
    });
    let token = hs256_token("carol");
    let mut first = server.open(&format!("/ws?token={token}"));
    assert_eq!(expect_welcome(&mut first), "carol");
    let second = format!("/ws?token={}&user_id=someone-else", hs256_token("carol"));
    assert_refused_with_retry(server.addr, &second, 429, "user already has 1 connections");
    first.close_cleanly();
}

/// A hub whose users get `capacity` messages and practically no refill.
fn rate_limited_server(capacity: f64, strikes: u32) -> TestServer {
    TestServer::start_with(|c| {
        c.hub.rate_limit = Rate {
            capacity,
            refill_per_sec: 0.01,
        };
        c.hub.abuse_strikes = strikes;
    })
}

/// A request with a deterministic one-message answer: leaving a room one is not in.
fn leave_nowhere() -> Value {
    json!({"type": "leave", "room": "nowhere"})
}

/// Asserts the next message is the `rate_limited` error with a plausible retry-after.
fn expect_rate_limited(client: &mut Client) {
    let reply = read_json(client);
    assert_eq!(
        (&reply["type"], &reply["code"]),
        (&json!("error"), &json!("rate_limited")),
        "{reply}"
    );
    let retry = reply["retry_after_ms"].as_u64().unwrap_or(0);
    assert!((1..=100_000).contains(&retry), "retry_after_ms: {reply}");
}

/// Asserts the next message is the hub's answer to `leave_nowhere` (the message got in).
fn expect_admitted(client: &mut Client) {
    let reply = read_json(client);
    assert_eq!(
        reply["code"], "not_member",
        "message should have been admitted: {reply}"
    );
}

#[test]
fn messages_over_the_rate_get_rate_limited_errors_then_close_1008() {
    let server = rate_limited_server(3.0, 4);
    let mut client = server.open("/ws?user_id=spammer");
    expect_welcome(&mut client);
    for _ in 0..3 {
        send_json(&mut client, &leave_nowhere());
        expect_admitted(&mut client);
    }
    for _ in 0..3 {
        send_json(&mut client, &leave_nowhere());
        expect_rate_limited(&mut client);
    }
    // The fourth refusal in a row is "sustained abuse".
    send_json(&mut client, &leave_nowhere());
    let (before, code, reason) = read_until_close(&mut client);
    assert!(before.is_empty(), "no reply before the close: {before:?}");
    assert_eq!(code, Some(1008), "policy violation (reason {reason:?})");
    assert_eq!(reason, "rate limit exceeded");
    client.send_close(1008, "");
    client.expect_eof();
    let metrics = scrape(&server);
    assert_eq!(metrics.get("wsloop_rate_limited_messages_total"), 3.0);
    assert_eq!(
        metrics.get("wsloop_hub_errors_total{code=\"rate_limited\"}"),
        3.0
    );
}

// An accepted message resets the strike count: only refusals *in a row* close. Each burst
// of three (one write, so one turn of the loop and one instant) has one token and two
// strikes; after a pause the bucket has a token again and the next message gets in.
#[test]
fn strikes_count_refusals_in_a_row_only() {
    let server = TestServer::start_with(|c| {
        c.hub.rate_limit = Rate {
            capacity: 1.0,
            refill_per_sec: 2.0,
        };
        c.hub.abuse_strikes = 3;
    });
    let mut client = server.open("/ws?user_id=bursty");
    expect_welcome(&mut client);
    let one = common::frame(
        common::FIN | common::OP_TEXT,
        leave_nowhere().to_string().as_bytes(),
    );
    let mut refused = 0;
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(600)); // at 2/s the bucket is full again
        client.send(&one.repeat(3));
        let codes: Vec<Value> = (0..3)
            .map(|_| read_json(&mut client)["code"].clone())
            .collect();
        assert_eq!(codes[0], "not_member", "{codes:?}");
        refused += codes.iter().filter(|c| *c == "rate_limited").count();
    }
    assert!(
        refused >= 3,
        "more strikes than abuse_strikes overall ({refused})"
    );
    client.close_cleanly();
}

#[test]
fn rate_limit_is_shared_by_all_of_a_users_connections() {
    let server = rate_limited_server(3.0, 100);
    let mut phone = server.open("/ws?user_id=dave");
    let mut laptop = server.open("/ws?user_id=dave");
    let mut other = server.open("/ws?user_id=erin");
    for client in [&mut phone, &mut laptop, &mut other] {
        expect_welcome(client);
    }
    for _ in 0..3 {
        send_json(&mut phone, &leave_nowhere());
        expect_admitted(&mut phone);
    }
    send_json(&mut laptop, &leave_nowhere());
    expect_rate_limited(&mut laptop);
    send_json(&mut other, &leave_nowhere());
    expect_admitted(&mut other);
    for client in [phone, laptop, other] {
        client.close_cleanly();
    }
}

#[test]
fn rate_limit_can_be_turned_off() {
    let server = TestServer::start_with(|c| {
        c.hub.rate_limit = Rate {
            capacity: 1.0,
            refill_per_sec: 0.01,
        };
        c.hub.abuse_strikes = 2;
        c.hub.rate_limit_enabled = false;
    });
    let mut client = server.open("/ws?user_id=free");
    expect_welcome(&mut client);
    for _ in 0..30 {
        send_json(&mut client, &leave_nowhere());
    }
    for _ in 0..30 {
        expect_admitted(&mut client);
    }
    client.close_cleanly();
}

/// Reads from `stream` until the server drops it; returns how long that took.
fn time_until_dropped(stream: &mut TcpStream, started: Instant, within: Duration) -> Duration {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(0) => started.elapsed(),
        Ok(n) => panic!(
            "expected no answer, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => started.elapsed(),
        Err(e) => panic!("not dropped within {within:?}: {e}"),
    }
}

/// Writes `chunk` every `every` until told to stop or the server drops the connection.
fn trickle(
    stream: &TcpStream,
    chunk: &'static [u8],
    every: Duration,
) -> (Arc<AtomicBool>, thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut writer = stream.try_clone().unwrap();
    let flag = Arc::clone(&stop);
    let thread = thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) && writer.write_all(chunk).is_ok() {
            thread::sleep(every);
        }
    });
    (stop, thread)
}

// Slowloris: a handshake that sends below `min_handshake_bytes_per_sec` after its first
// second is dropped within a few seconds, long before the (here 60 s) handshake timeout;
// a client that sends nothing at all goes the same way.
#[test]
fn slowloris_below_the_minimum_byte_rate_is_dropped_in_time() {
    let server = TestServer::start_with(|c| {
        c.min_handshake_bytes_per_sec = 64;
        c.handshake_timeout = Duration::from_secs(60);
    });
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /echo HTTP/1.1\r\nX-Slow: ").unwrap();
    let (stop, writer) = trickle(&slow, b"a", Duration::from_millis(100)); // ~10 B/s
    let mut silent = TcpStream::connect(server.addr).unwrap();

    let limit = Duration::from_secs(10);
    let slow_after = time_until_dropped(&mut slow, started, limit);
    let silent_after = time_until_dropped(&mut silent, started, limit);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    for after in [slow_after, silent_after] {
        assert!(
            after >= Duration::from_millis(900),
            "dropped before the grace second: {after:?}"
        );
    }
    let metrics = scrape(&server);
    assert_eq!(metrics.get("wsloop_slow_handshakes_total"), 2.0);
    assert_eq!(metrics.get("wsloop_handshake_timeouts_total"), 0.0);
    server.open("/echo").close_cleanly();
}

// A handshake that trickles fast enough to pass the byte-rate check but never finishes is
// still cut at the handshake timeout.
#[test]
fn handshake_that_never_finishes_is_cut_at_the_handshake_timeout() {
    let server = TestServer::start_with(|c| {
        c.min_handshake_bytes_per_sec = 64;
        c.handshake_timeout = Duration::from_secs(2);
    });
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.write_all(b"GET /echo HTTP/1.1\r\nX-Pad: ").unwrap();
    let (stop, writer) = trickle(&stream, b"aaaaaaaaaaaaaa", Duration::from_millis(50)); // ~280 B/s
    let after = time_until_dropped(&mut stream, started, Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(
        after >= Duration::from_millis(1900),
        "cut before the timeout: {after:?}"
    );
    let metrics = scrape(&server);
    assert_eq!(metrics.get("wsloop_handshake_timeouts_total"), 1.0);
    assert_eq!(metrics.get("wsloop_slow_handshakes_total"), 0.0);
}

/// Sends two requests and then `last` in one write (so the server reads them together);
/// asserts that both requests were answered (`not_member`, then `rate_limited`) before the
/// server's close, whose code it returns. The client is left at its close (and the
/// server running, until it is dropped).
fn two_requests_then(user: &str, last: &[u8]) -> (TestServer, Client, Option<u16>) {
    let server = rate_limited_server(1.0, 100);
    let mut client = server.open(&format!("/ws?user_id={user}"));
    expect_welcome(&mut client);
    let request = leave_nowhere().to_string();
    let mut bytes = common::frame(common::FIN | common::OP_TEXT, request.as_bytes()).repeat(2);
    bytes.extend_from_slice(last);
    client.send(&bytes);
    let (replies, code, _) = read_until_close(&mut client);
    let codes: Vec<&str> = replies.iter().filter_map(|r| r["code"].as_str()).collect();
    assert_eq!(
        codes,
        ["not_member", "rate_limited"],
        "replies before the close: {replies:?}"
    );
    (server, client, code)
}

// §5.5.1 lets an endpoint finish what it is sending before its close reply, and forbids
// data only *after* a close it sent. Requests that reach the server in the same read as the
// client's close were accepted before the close, so their replies (a `rate_limited` error
// included) must come out before the close reply, not be dropped.
#[test]
fn replies_to_requests_pipelined_with_the_close_are_not_dropped() {
    let close = common::close_body(1000, b"bye");
    let close = common::frame(common::FIN | common::OP_CLOSE, &close);
    let (_server, mut client, code) = two_requests_then("last-words", &close);
    assert_eq!(code, Some(1000));
    client.expect_eof();
}

// The same when what follows the requests is a protocol error (a reserved opcode, §5.2):
// the server's close frame (1002) comes after the replies to the requests read before it.
#[test]
fn replies_to_requests_before_a_protocol_error_precede_its_close() {
    let reserved = common::frame(common::FIN | 0x3, b"reserved");
    let (_server, _, code) = two_requests_then("bad-frame", &reserved);
    assert_eq!(code, Some(1002));
}
