//! Loopback tests of the closing handshake (RFC 6455 §5.5.1, §7): close codes the server
//! echoes or refuses (§7.4), close bodies it must reject, and the handshake started from
//! either side, including the server's graceful shutdown (close 1001 to everyone).
//!
//! Each test starts its own server on port 0 and speaks raw bytes through `common::Client`.

mod common;

use std::time::{Duration, Instant};

use common::{FIN, OP_CLOSE, OP_TEXT, Request, TestServer, close_body, frame};

/// Opens a connection, sends a close with `body`, returns the client to read the answer.
fn send_close_body(server: &TestServer, body: &[u8]) -> common::Client {
    let mut client = server.open("/echo");
    client.send_frame(FIN | OP_CLOSE, body);
    client
}

// §5.5.1: "the endpoint MUST send a Close frame in response … typically echos the status
// code it received"; §7.1.1: then the server closes the TCP connection first.
#[test]
fn client_close_with_valid_code_is_echoed_and_tcp_closed() {
    let server = TestServer::start();
    let codes = [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
    ];
    for code in codes {
        let mut client = send_close_body(&server, &close_body(code, b"done"));
        let (got, reason) = client.read_close();
        assert_eq!(
            got,
            Some(code),
            "code {code} must be echoed (reason {reason:?})"
        );
        client.expect_eof();
    }
    let stats = server.wait_until_idle();
    assert_eq!(stats["abnormal_closures"], 0, "{stats}");
    assert_eq!(stats["close_received"]["1000"], 1, "{stats}");
}

// §7.4.2: 3000-3999 are registered and 4000-4999 private codes: allowed on the wire.
#[test]
fn client_close_with_application_code_3000_to_4999_is_echoed() {
    let server = TestServer::start();
    for code in [3000, 3001, 3999, 4000, 4321, 4999] {
        let mut client = send_close_body(&server, &close_body(code, b""));
        let (got, _) = client.read_close();
        assert_eq!(got, Some(code), "application code {code}");
        client.expect_eof();
    }
}

// §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control frame";
// §7.4.2: 0-999 unused, 1004 reserved, 1016-2999 reserved, 5000+ undefined. A peer that
// sends one has broken the protocol: the server fails the connection with 1002.
#[test]
fn client_close_with_invalid_code_is_answered_1002() {
    let server = TestServer::start();
    let codes = [
        0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ];
    for code in codes {
        let mut client = send_close_body(&server, &close_body(code, b""));
        let (got, reason) = client.read_close();
        assert_eq!(got, Some(1002), "invalid code {code} (reason {reason:?})");
        client.expect_eof();
    }
}

// §5.5.1: a close body, if present, starts with a 2-byte code; one byte cannot be a code.
#[test]
fn one_byte_close_body_is_answered_1002() {
    let server = TestServer::start();
    let mut client = send_close_body(&server, &[0x03]);
    client.expect_close(1002);
}

// §5.5.1: the reason "MUST" be UTF-8; §7.4.1: 1007 for data inconsistent with its type.
#[test]
fn close_reason_with_invalid_utf8_is_answered_1007() {
    let server = TestServer::start();
    let mut client = send_close_body(&server, &close_body(1000, b"bad \xFF\xFE reason"));
    client.expect_close(1007);
}

// §5.5.1: a valid UTF-8 reason, up to the 123 bytes a control frame leaves, is accepted.
#[test]
fn close_with_a_utf8_reason_of_123_bytes_is_echoed() {
    let server = TestServer::start();
    let reason = "é".repeat(61) + "!"; // 123 bytes
    assert_eq!(reason.len(), 123);
    let mut client = send_close_body(&server, &close_body(4000, reason.as_bytes()));
    client.expect_close(4000);
}

// §5.5.1: a close frame "MAY contain a body"; an empty one is answered with a close (§7.1.5:
// the code seen is 1005, which is never sent, so the reply has no code either).
#[test]
fn empty_close_is_answered_with_a_close_without_code() {
    let server = TestServer::start();
    let mut client = send_close_body(&server, b"");
    let (code, reason) = client.read_close();
    assert_eq!((code, reason.as_str()), (None, ""));
    client.expect_eof();
}

// §5.5.1: after sending a close "the endpoint MUST NOT send any more data frames"; data the
// peer sends after its own close is ignored, and messages before it are echoed first.
#[test]
fn data_after_the_client_close_is_not_echoed() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let mut bytes = frame(FIN | OP_TEXT, b"before");
    bytes.extend_from_slice(&frame(FIN | OP_CLOSE, &close_body(1000, b"")));
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"after"));
    client.send(&bytes);
    client.expect_text("before");
    client.expect_close(1000);
}

// §7.1.7: after failing the connection with a close frame, the server sends nothing more
// (no echo of later frames, no second close) and closes TCP.
#[test]
fn protocol_error_sends_exactly_one_close_then_tcp_close() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let mut bytes = common::unmasked_frame(FIN | OP_TEXT, b"bad");
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"ignored"));
    bytes.extend_from_slice(&frame(FIN | OP_CLOSE, &close_body(1000, b"")));
    client.send(&bytes);
    client.expect_close(1002);
    // The server shuts its side once the close is out; the client's EOF then lets it
    // forget the connection at once, rather than after `close_timeout` (as long as the
    // settle wait, so waiting on the timer here was a race).
    client.expect_eof();
    drop(client);
    let stats = server.wait_until_idle();
    assert_eq!(stats["errors"], 1, "{stats}");
    assert_eq!(stats["close_sent"]["1002"], 1, "{stats}");
}

// §7.1.2, §5.5.1: the server starts the close (graceful shutdown, code 1001 "going away"
// per §7.4.1); the client answers; the server then closes TCP and the loop exits well
// before its drain timeout, because every close was answered.
#[test]
fn server_initiated_close_on_shutdown_is_completed_by_the_client_reply() {
    let mut server = TestServer::start_with(|c| c.drain_timeout = Duration::from_secs(30));
    let mut first = server.open("/echo");
    let mut second = server.open("/echo");
    first.send_text("hello");
    first.expect_text("hello");
    server.shutdown();
    for client in [&mut first, &mut second] {
        let (code, reason) = client.read_close();
        assert_eq!(code, Some(1001), "§7.4.1 going away (reason {reason:?})");
        assert!(!reason.is_empty(), "every server close carries a reason");
        client.send_close(1001, "");
        client.expect_eof();
    }
    let result = server.wait_exit(Duration::from_secs(5));
    assert!(result.is_ok(), "loop result: {result:?}");
}

// §5.5.1: "If an endpoint receives a Close frame and did not previously send a Close
// frame, the endpoint MUST send a Close frame in response". A client that half-closes its
// write side right after its close frame can still read: the 101, the echo owed for its
// message and the close reply must all arrive before the server closes TCP. (Everything is
// sent before the server accepts, so it sees the bytes and the EOF in one go.)
#[test]
fn close_reply_is_sent_even_if_the_client_half_closes_at_once() {
    let server = TestServer::start();
    let mut client = server.connect();
    let mut bytes = Request::upgrade("/echo").to_bytes();
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"last words"));
    bytes.extend_from_slice(&frame(FIN | OP_CLOSE, &close_body(1000, b"")));
    client.send(&bytes);
    client.half_close();
    let response = client.read_response();
    common::assert_switching_protocols(&response, common::SAMPLE_KEY);
    client.expect_text("last words");
    client.expect_close(1000);
}

// §5.5.1: after sending a close frame, "the endpoint MUST NOT send any more data frames":
// a message the client sends before answering the server's close is not echoed.
#[test]
fn no_data_is_echoed_after_the_server_sent_its_close() {
    let server = TestServer::start_with(|c| c.drain_timeout = Duration::from_secs(30));
    let mut client = server.open("/echo");
    server.shutdown();
    let (code, _) = client.read_close();
    assert_eq!(code, Some(1001));
    let mut bytes = frame(FIN | OP_TEXT, b"too late");
    bytes.extend_from_slice(&frame(FIN | OP_CLOSE, &close_body(1000, b"")));
    client.send(&bytes);
    client.expect_eof();
}

// §7.1.1: after sending its close the server waits a bounded time for the reply; a client
// that never answers does not hold the shutdown past the drain timeout (`drain_timeout`:
// "how long graceful shutdown waits for close replies"), even when the per-connection
// close timeout is longer.
#[test]
fn server_initiated_close_without_reply_ends_at_the_drain_timeout() {
    let mut server = TestServer::start_with(|c| {
        c.drain_timeout = Duration::from_millis(300);
        c.close_timeout = Duration::from_secs(30);
    });
    let mut silent = server.open("/echo");
    let started = Instant::now();
    server.shutdown();
    let (code, _) = silent.read_close();
    assert_eq!(code, Some(1001));
    let result = server.wait_exit(Duration::from_secs(5));
    assert!(result.is_ok(), "loop result: {result:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the loop should wait for the reply until the drain timeout, exited after {:?}",
        started.elapsed()
    );
    silent.expect_eof();
}

// Graceful shutdown: a new upgrade during the drain is refused with 503 and Retry-After
// (RFC 9110 §15.6.4) instead of being accepted and closed at once.
#[test]
fn upgrade_during_drain_is_refused_with_503() {
    let server = TestServer::start_with(|c| c.drain_timeout = Duration::from_secs(30));
    let mut holder = server.open("/echo");
    server.shutdown();
    let (code, _) = holder.read_close();
    assert_eq!(code, Some(1001));
    let response = server.request(&Request::upgrade("/echo"));
    assert_eq!(response.status, 503, "{response:?}");
    assert!(response.header("Retry-After").is_some(), "{response:?}");
    holder.send_close(1001, "");
    holder.expect_eof();
}
