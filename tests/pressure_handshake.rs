//! Hostile opening handshakes over loopback (RFC 6455 §4, §11.3; RFC 9112 §3.2): repeated
//! singleton headers and upgrade requests that declare a body are refused with 400 before
//! anything is upgraded; an absolute-form target is routed by its path.

mod common;

use common::guard::request_at;
use common::{Request, TestServer, assert_switching_protocols, fresh_key};

/// Sends `request` (plus `body`) on a new connection; returns the status and the body text.
fn answer(server: &TestServer, request: &Request, body: &[u8]) -> (u16, String) {
    let mut client = server.connect();
    let mut bytes = request.to_bytes();
    bytes.extend_from_slice(body);
    client.send(&bytes);
    let response = client.read_response();
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

#[test]
fn repeated_host_key_or_version_is_400() {
    let server = TestServer::start();
    let cases = [
        (
            Request::upgrade("/echo").add("Host", "evil.example"),
            "more than one Host header",
        ),
        (
            Request::upgrade("/echo").add("Sec-WebSocket-Key", &fresh_key()),
            "more than one Sec-WebSocket-Key header",
        ),
        (
            Request::upgrade("/echo").add("Sec-WebSocket-Version", "13"),
            "more than one Sec-WebSocket-Version header",
        ),
    ];
    for (request, reason) in cases {
        assert_eq!(
            answer(&server, &request, b""),
            (400, format!("{reason}\n")),
            "{request:?}"
        );
    }
}

#[test]
fn an_upgrade_declaring_a_body_is_400() {
    let server = TestServer::start();
    let reason = "a WebSocket upgrade request has no body\n".to_owned();
    let with_length = Request::upgrade("/echo").set("Content-Length", "5");
    assert_eq!(
        answer(&server, &with_length, b"hello"),
        (400, reason.clone())
    );
    let chunked = Request::upgrade("/ws").set("Transfer-Encoding", "chunked");
    assert_eq!(answer(&server, &chunked, b"0\r\n\r\n"), (400, reason));
    let empty = Request::upgrade("/echo").set("Content-Length", "0");
    assert_eq!(answer(&server, &empty, b"").0, 101);
}

#[test]
fn an_absolute_form_target_is_routed_by_its_path() {
    let server = TestServer::start();
    let target = format!("http://{}/echo", server.addr);
    let response = request_head(&server, &Request::upgrade(&target));
    assert_switching_protocols(&response, common::SAMPLE_KEY);
    let mut client = server.connect();
    client.send(&Request::upgrade(&format!("ws://{}/echo", server.addr)).to_bytes());
    assert_eq!(client.read_response().status, 101);
    client.send_text("over an absolute-form upgrade");
    client.expect_text("over an absolute-form upgrade");
    let health = request_at(
        server.addr,
        &Request::get(&format!("http://{}/healthz", server.addr)),
    );
    assert_eq!(health.status, 200, "{health:?}");
}

/// The answer's head to `request` on a new connection.
fn request_head(server: &TestServer, request: &Request) -> common::HttpResponse {
    let mut client = server.connect();
    client.send(&request.to_bytes());
    client.read_response()
}
