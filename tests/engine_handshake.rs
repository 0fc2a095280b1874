//! Loopback tests of the opening handshake (RFC 6455 §4): the 101 answer, requests split or
//! pipelined on the wire, and every refusal status with the headers it calls for.
//!
//! Each test starts its own server on port 0 and speaks raw bytes through `common::Client`.

mod common;

use std::io::Write as _;

use common::{
    FIN, OP_BINARY, OP_TEXT, Request, SAMPLE_ACCEPT, SAMPLE_KEY, TestServer,
    assert_switching_protocols, frame,
};

/// Sends `request` to a fresh server connection; asserts the status and that TCP is closed
/// after the answer (a refused handshake does not linger open).
fn refused(server: &TestServer, request: &Request, status: u16) -> common::HttpResponse {
    let response = server.request(request);
    assert_eq!(
        response.status,
        status,
        "request {:?} answered {response:?}",
        String::from_utf8_lossy(&request.to_bytes())
    );
    response
}

// §1.3, §4.2.2 step 5.4: the accept value for the RFC's own sample key.
#[test]
fn accept_header_for_the_rfc_sample_key() {
    let server = TestServer::start();
    let mut client = server.connect();
    client.send(&Request::upgrade("/echo").to_bytes());
    let response = client.read_response();
    assert_switching_protocols(&response, SAMPLE_KEY);
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(SAMPLE_ACCEPT));
    client.send_text("after the sample handshake");
    client.expect_text("after the sample handshake");
    client.close_cleanly();
}

// §4.2.1: the server reads the whole head however it is split ("Partial" until the blank line).
#[test]
fn handshake_split_into_one_byte_writes_is_accepted() {
    let server = TestServer::start();
    let mut client = server.connect();
    let key = common::fresh_key();
    let request = Request::upgrade("/echo").set("Sec-WebSocket-Key", &key);
    client.send_bytewise(&request.to_bytes());
    assert_switching_protocols(&client.read_response(), &key);
    client.send_text("split");
    client.expect_text("split");
    client.close_cleanly();
}

// §4.1/§5: a client may send frames right after its handshake; bytes after the head's blank
// line belong to the frame stream and must not be lost.
#[test]
fn frame_pipelined_in_the_same_write_as_the_handshake_is_echoed() {
    let server = TestServer::start();
    let mut client = server.connect();
    let mut bytes = Request::upgrade("/echo").to_bytes();
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"pipelined"));
    bytes.extend_from_slice(&frame(FIN | OP_TEXT, b"and another"));
    client.send(&bytes);
    assert_switching_protocols(&client.read_response(), SAMPLE_KEY);
    client.expect_text("pipelined");
    client.expect_text("and another");
    client.close_cleanly();
}

// §4.1/§5: a frame far larger than one socket read, pipelined behind the handshake, is
// carried over from the head's read into the frame reader intact.
#[test]
fn large_frame_pipelined_with_the_handshake_is_echoed_intact() {
    let server = TestServer::start();
    let mut client = server.connect();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let mut bytes = Request::upgrade("/echo").to_bytes();
    bytes.extend_from_slice(&frame(FIN | OP_BINARY, &payload));
    let mut writer = client.writer();
    let sender = std::thread::spawn(move || writer.write_all(&bytes));
    assert_switching_protocols(&client.read_response(), SAMPLE_KEY);
    client.expect_binary(&payload);
    sender.join().expect("writer thread").expect("write");
    client.close_cleanly();
}

// §4.2.1: header names and the Upgrade/Connection tokens are case-insensitive token lists.
#[test]
fn upgrade_tokens_are_case_insensitive_lists() {
    let server = TestServer::start();
    let mut client = server.connect();
    let request = Request::upgrade("/echo?room=1")
        .remove("Upgrade")
        .remove("Connection")
        .add("upgrade", "WebSocket")
        .add("CONNECTION", "keep-alive, UPGRADE");
    client.send(&request.to_bytes());
    assert_switching_protocols(&client.read_response(), SAMPLE_KEY);
    client.close_cleanly();
}

// §4.2.2 step 5.5: the server selects one of the client's subprotocols it supports, or none.
#[test]
fn subprotocol_is_chosen_from_the_configured_list() {
    let server = TestServer::start_with(|c| c.subprotocols = vec!["chat".into()]);
    let mut client = server.connect();
    let offered = Request::upgrade("/echo").set("Sec-WebSocket-Protocol", "superchat, chat");
    client.send(&offered.to_bytes());
    let response = client.read_response();
    assert_switching_protocols(&response, SAMPLE_KEY);
    assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("chat"));
    client.close_cleanly();

    let mut client = server.connect();
    let unknown = Request::upgrade("/echo").set("Sec-WebSocket-Protocol", "mqtt");
    client.send(&unknown.to_bytes());
    let response = client.read_response();
    assert_switching_protocols(&response, SAMPLE_KEY);
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
    client.close_cleanly();
}

// §4.2.1 / RFC 9112: bytes that are not an HTTP request head are answered 400.
#[test]
fn malformed_request_line_is_refused_with_400() {
    let server = TestServer::start();
    let mut client = server.connect();
    client.send(b"NOT AN HTTP REQUEST\x01\r\n\r\n");
    let response = client.read_response();
    assert_eq!(response.status, 400, "{response:?}");
    client.expect_eof();
}

// §4.2.1 items 1-6: each missing or wrong required field of the handshake is a 400.
#[test]
fn handshake_with_a_broken_required_field_is_refused_with_400() {
    let server = TestServer::start();
    let base = Request::upgrade("/echo");
    let cases = [
        ("HTTP/1.0", base.clone().version("HTTP/1.0")),
        ("no Host", base.clone().remove("Host")),
        ("Upgrade: h2c", base.clone().set("Upgrade", "h2c")),
        (
            "Connection: keep-alive",
            base.clone().set("Connection", "keep-alive"),
        ),
        ("no key", base.clone().remove("Sec-WebSocket-Key")),
        (
            "short key",
            base.clone().set("Sec-WebSocket-Key", "c2hvcnQ="),
        ),
        (
            "key not base64",
            base.clone()
                .set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!=="),
        ),
        ("no version", base.clone().remove("Sec-WebSocket-Version")),
    ];
    for (what, request) in cases {
        let response = server.request(&request);
        assert_eq!(response.status, 400, "{what}: {response:?}");
    }
}

// §4.1 item 2: "The method of the request MUST be GET"; RFC 9110 §15.5.6: 405 carries Allow.
#[test]
fn post_with_upgrade_headers_is_refused_with_405_and_allow_get() {
    let server = TestServer::start();
    let response = refused(&server, &Request::upgrade("/echo").method("POST"), 405);
    assert_eq!(response.header("Allow"), Some("GET"));
}

// §4.4: another version gets 426 with "Sec-WebSocket-Version: 13" naming what we speak.
#[test]
fn unsupported_version_is_refused_with_426_naming_version_13() {
    let server = TestServer::start();
    for version in ["8", "12", "14", "banana"] {
        let request = Request::upgrade("/echo").set("Sec-WebSocket-Version", version);
        let response = refused(&server, &request, 426);
        assert_eq!(
            response.header("Sec-WebSocket-Version"),
            Some("13"),
            "version {version}"
        );
    }
}

// RFC 9110 §15.5.22: a plain GET to a WebSocket endpoint is told to upgrade (426).
#[test]
fn plain_get_on_the_echo_endpoint_is_answered_426() {
    let server = TestServer::start();
    let response = refused(&server, &Request::get("/echo"), 426);
    let upgrade = response.header("Upgrade").unwrap_or_default();
    assert!(upgrade.eq_ignore_ascii_case("websocket"), "{response:?}");
}

/// An upgrade request padded with one extra header to exactly `len` bytes.
fn upgrade_of_length(len: usize) -> Request {
    let base = Request::upgrade("/echo").add("X-Pad", "");
    let pad = len - base.to_bytes().len();
    let request = Request::upgrade("/echo").add("X-Pad", &"p".repeat(pad));
    assert_eq!(request.to_bytes().len(), len);
    request
}

// The byte limit counts the whole head, blank line included: exactly the limit passes,
// one byte more is 431.
#[test]
fn head_of_exactly_max_bytes_is_accepted_and_one_more_is_431() {
    let server = TestServer::start_with(|c| c.head.max_bytes = 1024);
    let mut client = server.connect();
    client.send(&upgrade_of_length(1024).to_bytes());
    assert_switching_protocols(&client.read_response(), SAMPLE_KEY);
    client.close_cleanly();
    refused(&server, &upgrade_of_length(1025), 431);
}

// RFC 6585 §5: a head over the byte limit is refused with 431.
#[test]
fn head_over_the_byte_limit_is_refused_with_431() {
    let server = TestServer::start(); // 8 KiB limit.
    let big = "x".repeat(9 * 1024);
    refused(
        &server,
        &Request::upgrade("/echo").set("X-Padding", &big),
        431,
    );
}

// RFC 6585 §5: a head that never ends is cut off at the byte limit, not buffered forever.
#[test]
fn endless_head_without_blank_line_is_refused_with_431() {
    let server = TestServer::start_with(|c| c.head.max_bytes = 1024);
    let mut client = server.connect();
    let mut bytes = b"GET /echo HTTP/1.1\r\n".to_vec();
    while bytes.len() <= 2048 {
        bytes.extend_from_slice(b"X-Filler: 0123456789abcdef\r\n");
    }
    client.send(&bytes);
    let response = client.read_response();
    assert_eq!(response.status, 431, "{response:?}");
    client.expect_eof();
}

// RFC 6585 §5: more header fields than the limit → 431; exactly the limit is fine.
#[test]
fn head_over_the_header_count_limit_is_refused_with_431() {
    let server = TestServer::start_with(|c| c.head.max_headers = 8);
    let base = Request::upgrade("/echo"); // 5 headers.
    let at_limit = base.clone().add("X-A", "1").add("X-B", "2").add("X-C", "3");
    let mut client = server.connect();
    client.send(&at_limit.to_bytes());
    assert_switching_protocols(&client.read_response(), SAMPLE_KEY);
    client.close_cleanly();

    let over = at_limit.add("X-D", "4");
    refused(&server, &over, 431);
}

// The server's routes: an upgrade to an unknown path is 404, not 101.
#[test]
fn upgrade_on_an_unknown_path_is_refused_with_404() {
    let server = TestServer::start();
    refused(&server, &Request::upgrade("/nope"), 404);
    refused(&server, &Request::get("/no-such-page"), 404);
}

// The health endpoint answers a plain GET with 200 "ok".
#[test]
fn healthz_answers_200_ok() {
    let server = TestServer::start();
    let response = server.request(&Request::get("/healthz"));
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(String::from_utf8_lossy(&response.body).trim(), "ok");
}

// RFC 9112 §9.6: a client may half-close after sending its request; the answer already
// owed (here 200 and 404) must still be written before the server closes.
#[test]
fn request_followed_by_half_close_still_gets_its_answer() {
    let server = TestServer::start();
    for (target, status) in [("/healthz", 200), ("/nope", 404)] {
        let mut client = server.connect();
        client.send(&Request::get(target).to_bytes());
        client.half_close();
        let response = client.read_response();
        assert_eq!(response.status, status, "{target}: {response:?}");
        client.expect_eof();
    }
}

// Refusals are counted by status in /stats, so operators can see them.
#[test]
fn refusals_are_counted_by_status_in_stats() {
    let server = TestServer::start();
    refused(&server, &Request::upgrade("/nope"), 404);
    refused(&server, &Request::upgrade("/echo").method("PUT"), 405);
    refused(&server, &Request::upgrade("/echo").method("PUT"), 405);
    let stats = server.wait_until_idle();
    assert_eq!(stats["rejected"]["404"], 1, "{stats}");
    assert_eq!(stats["rejected"]["405"], 2, "{stats}");
}

// /stats tells plain HTTP apart from WebSockets: connections open now of each kind, and
// the HTTP requests answered (refusals and this very poll's predecessors included).
#[test]
fn stats_separate_http_requests_from_websocket_connections() {
    let server = TestServer::start();
    let before = server.wait_until_idle();
    let asked = before["http_requests"].as_u64().expect("http_requests");
    let _first = server.open("/echo");
    let _second = server.open("/echo");
    refused(&server, &Request::upgrade("/nope"), 404);
    let health = server.request(&Request::get("/healthz"));
    assert_eq!(health.status, 200);
    let stats = server.stats();
    assert_eq!(stats["websocket_connections"], 2, "{stats}");
    assert_eq!(stats["http_connections"], 1, "only this poll: {stats}");
    // wait_until_idle's poll, the 404 and /healthz were answered since `before`.
    assert_eq!(stats["http_requests"], asked + 3, "{stats}");
    assert_eq!(stats["upgrades"], 2, "{stats}");
}
