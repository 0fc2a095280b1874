//! Loopback tests of connection life cycles: peers that vanish mid-frame or mid-handshake,
//! handshake timeouts, the connection limit, and a thousand handshakes in a row that leave
//! no connection behind (checked through `/stats`).
//!
//! Each test starts its own server on port 0 and speaks raw bytes through `common::Client`.

mod common;

use std::io::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use common::{FIN, OP_BINARY, OP_TEXT, Request, TestServer, frame};

/// The first `keep` bytes of a masked binary frame with a `len`-byte payload.
fn truncated_frame(len: usize, keep: usize) -> Vec<u8> {
    let mut bytes = frame(FIN | OP_BINARY, &vec![0x5A; len]);
    bytes.truncate(keep);
    bytes
}

/// Asserts the server still serves new clients.
fn assert_still_serving(server: &TestServer) {
    let mut client = server.open("/echo");
    client.send_text("still alive");
    client.expect_text("still alive");
    client.close_cleanly();
}

// §7.1.5: a connection that ends without a closing handshake is closed "abnormally" (1006):
// the server frees it and counts it, whether the peer vanished in a header or a payload.
#[test]
fn peer_that_disappears_mid_frame_is_removed_and_counted() {
    let server = TestServer::start();
    let cuts = [
        truncated_frame(100, 1),          // inside the 2-byte base header
        truncated_frame(300, 3),          // inside the 16-bit length
        truncated_frame(100, 4),          // inside the masking key
        truncated_frame(100, 40),         // inside the payload
        truncated_frame(200_000, 70_000), // inside a payload spread over several reads
    ];
    let count = cuts.len();
    for cut in cuts {
        let mut client = server.open("/echo");
        client.send(&cut);
        client.vanish();
    }
    let stats = server.wait_until_idle();
    assert_eq!(stats["abnormal_closures"], count, "{stats}");
    assert_still_serving(&server);
}

// §7.1.5, §5.4: a peer that vanishes between the fragments of a message is removed too.
#[test]
fn peer_that_disappears_between_fragments_is_removed() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(OP_TEXT, b"first fragment, no FIN");
    client.vanish();
    let stats = server.wait_until_idle();
    assert_eq!(stats["abnormal_closures"], 1, "{stats}");
    assert_still_serving(&server);
}

// §7.1.5: a reset (RST, not FIN) in the middle of a frame is handled like any other abrupt
// end: the connection is removed, the loop carries on.
#[test]
fn peer_that_resets_mid_frame_is_removed() {
    let server = TestServer::start();
    let client = server.open("/echo");
    client.reset_after(&truncated_frame(1000, 20));
    let stats = server.wait_until_idle();
    assert_eq!(stats["abnormal_closures"], 1, "{stats}");
    assert_still_serving(&server);
}

// §4.2.1: a client that sends half a request head and disappears leaves nothing behind.
#[test]
fn peer_that_disappears_mid_handshake_is_removed() {
    let server = TestServer::start();
    let head = Request::upgrade("/echo").to_bytes();
    let mut client = server.connect();
    client.send(&head[..head.len() / 2]);
    client.vanish();
    server.wait_until_idle();
    assert_still_serving(&server);
}

// §4.1, §7: 1,000 opening handshakes in a row, half closed cleanly and half dropped
// without a close, leave no connection open and every one counted.
#[test]
fn thousand_handshakes_in_a_row_leave_no_connection_open() {
    const ROUNDS: u64 = 1_000;
    let server = TestServer::start();
    for round in 0..ROUNDS {
        let mut client = server.open("/echo");
        if round % 2 == 0 {
            client.send_binary(&round.to_be_bytes());
            client.expect_binary(&round.to_be_bytes());
            client.close_cleanly();
        } else {
            client.vanish();
        }
    }
    let stats = server.wait_until_idle();
    assert_eq!(stats["upgrades"], ROUNDS, "{stats}");
    assert_eq!(stats["close_received"]["1000"], ROUNDS / 2, "{stats}");
    assert_eq!(stats["abnormal_closures"], ROUNDS / 2, "{stats}");
    let total = stats["total_connections"].as_u64().unwrap_or(0);
    assert!(total > ROUNDS, "every handshake was a connection: {stats}");
}

// §4.2 (and DESIGN: every limit has a defined outcome): a client that says nothing is
// dropped once the handshake timeout passes, not before.
#[test]
fn silent_client_is_dropped_after_the_handshake_timeout() {
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(200));
    let started = Instant::now();
    let mut silent = server.connect();
    silent.expect_eof();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "dropped too early: {waited:?}"
    );
    server.wait_until_idle();
}

// Same limit for a client that sends part of its head and stalls (slowloris).
#[test]
fn stalled_partial_handshake_is_dropped_after_the_handshake_timeout() {
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(200));
    let started = Instant::now();
    let mut stalled = server.connect();
    stalled.send(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: webs");
    stalled.expect_eof();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "dropped too early: {waited:?}"
    );
    server.wait_until_idle();
}

// The handshake timeout guards only the handshake: an upgraded connection that stays quiet
// longer than it is kept open. The timeout is 500 ms, not less: a debug server sharing the
// cores with this binary's other tests must still finish the upgrade inside it.
#[test]
fn handshake_timeout_does_not_apply_after_the_upgrade() {
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_millis(500));
    let mut client = server.open("/echo");
    thread::sleep(Duration::from_millis(1_500));
    client.send_text("quiet but alive");
    client.expect_text("quiet but alive");
    client.close_cleanly();
}

// Slow consumers (DESIGN: outbound queues are capped): a client that stops reading while
// it keeps sending makes the server stop reading from it (backpressure) rather than buffer
// without bound; once the client reads again, every echo arrives, complete and in order.
#[test]
fn slow_reader_gets_every_echo_in_order_after_backpressure() {
    // 16 MB each way: more than the socket buffers and the 1 MiB high-water mark can hold.
    const COUNT: usize = 16_000;
    const SIZE: usize = 1_000;
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let mut writer = client.writer();
    let sender = thread::spawn(move || {
        for i in 0..COUNT {
            let mut body = vec![(i % 251) as u8; SIZE];
            body[..8].copy_from_slice(&(i as u64).to_be_bytes());
            writer.write_all(&frame(FIN | OP_BINARY, &body))?;
        }
        Ok::<(), std::io::Error>(())
    });
    thread::sleep(Duration::from_millis(300)); // let the server's queue fill up
    for i in 0..COUNT {
        let echoed = client.read_frame();
        assert_eq!(echoed.payload.len(), SIZE, "message {i}");
        assert_eq!(echoed.payload[..8], (i as u64).to_be_bytes(), "message {i}");
        assert!(echoed.payload[8..].iter().all(|&b| b == (i % 251) as u8));
    }
    sender
        .join()
        .expect("writer thread")
        .expect("write everything");
    client.close_cleanly();
}

// §7.1.1: after the close exchange the server closes TCP; a peer that then never closes
// its own side is still removed once the close timeout passes.
#[test]
fn peer_that_never_closes_its_side_is_removed_after_the_close_timeout() {
    let server = TestServer::start_with(|c| c.close_timeout = Duration::from_millis(200));
    let mut client = server.open("/echo");
    client.send_close(1000, "");
    let (code, _) = client.read_close();
    assert_eq!(code, Some(1000));
    client.expect_eof();
    // `client` stays open (no FIN from our side) while the server settles.
    let stats = server.wait_until_idle();
    assert_eq!(stats["abnormal_closures"], 0, "{stats}");
    drop(client);
}

// max_connections: a connection over the limit is answered 503 with Retry-After (RFC 9110
// §10.2.3, §15.6.4) and closed; once a slot frees, new clients are served again.
#[test]
fn connection_over_max_connections_gets_503_with_retry_after() {
    let server = TestServer::start_with(|c| c.max_connections = 2);
    let mut first = server.open("/echo");
    let second = server.open("/echo");
    let mut refused = server.connect();
    refused.send(&Request::upgrade("/echo").to_bytes());
    let response = refused.read_response();
    assert_eq!(response.status, 503, "{response:?}");
    let retry = response.header("Retry-After").unwrap_or_default();
    assert!(retry.parse::<u32>().is_ok(), "Retry-After {retry:?}");
    refused.expect_eof();

    first.send_text("the admitted ones still work");
    first.expect_text("the admitted ones still work");
    first.close_cleanly();
    let deadline = Instant::now() + common::SETTLE;
    loop {
        let mut client = server.connect();
        client.send(&Request::upgrade("/echo").to_bytes());
        let response = client.read_response();
        if response.status == 101 {
            break;
        }
        assert_eq!(response.status, 503, "{response:?}");
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        thread::sleep(Duration::from_millis(20));
    }
    second.close_cleanly();
}

// The server stops reading at a short read (the receive queue is drained) instead of
// reading until `WouldBlock`; a FIN that comes with or right after the last message must
// still be seen. Each client sends a message and half-closes at once, without a close
// frame: it gets its echo, then the server ends the connection (1006, counted).
#[test]
fn a_fin_right_after_the_last_message_is_never_missed() {
    let server = TestServer::start();
    let rounds = 200;
    for round in 0..rounds {
        let mut client = server.open("/echo");
        let text = format!("last message {round}");
        client.send_text(&text);
        client.half_close();
        client.expect_text(&text);
        client.expect_eof();
    }
    let stats = server.wait_until_idle();
    assert_eq!(stats["abnormal_closures"], rounds, "{stats}");
    assert_still_serving(&server);
}
