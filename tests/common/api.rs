//! The publish API from a test's side: `POST /api/publish` requests built byte for byte
//! (key, headers and body can each be broken), answers read as JSON, and the end marker
//! that proves a client received nothing else.
//!
//! Every request goes on a fresh connection, and the answer is read up to the server's EOF:
//! the API answers once and closes.

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::hub::{HubClient, str_field};
use super::{Client, HttpResponse, Request};

/// The key the in-process servers of these tests accept.
pub(crate) const KEY: &str = "api-tests-key-0d41f7";

/// A `POST /api/publish` head with `Content-Length` for `body` and, if given, the key.
pub(crate) fn head(key: Option<&str>, body: &str) -> Request {
    let request = Request::get("/api/publish")
        .method("POST")
        .set("Content-Type", "application/json")
        .set("Content-Length", &body.len().to_string());
    match key {
        Some(key) => request.set("Authorization", &format!("Bearer {key}")),
        None => request,
    }
}

/// Sends `request`'s head followed by `body` in one write; reads the answer up to EOF.
pub(crate) fn send(addr: SocketAddr, request: &Request, body: &str) -> HttpResponse {
    let mut bytes = request.to_bytes();
    bytes.extend_from_slice(body.as_bytes());
    let mut client = Client::connect(addr);
    client.send(&bytes);
    let response = client.read_response();
    client.expect_eof();
    response
}

/// Posts `body` with `key` (or none).
pub(crate) fn post(addr: SocketAddr, key: Option<&str>, body: &str) -> HttpResponse {
    send(addr, &head(key, body), body)
}

/// The answer's body as JSON; also checks the `Content-Type`.
pub(crate) fn json_of(response: &HttpResponse) -> Value {
    assert_eq!(
        response.header("Content-Type"),
        Some("application/json"),
        "{response:?}"
    );
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {response:?}"))
}

/// Publishes `body` with [`KEY`]; asserts 200 and returns the answer.
pub(crate) fn publish(addr: SocketAddr, body: &Value) -> Value {
    let response = post(addr, Some(KEY), &body.to_string());
    assert_eq!(response.status, 200, "publish {body}: {response:?}");
    json_of(&response)
}

/// Asserts a JSON error answer: `status`, `{"error": code, "message": …}` with `fragment`
/// in the message. Returns the message.
pub(crate) fn assert_refused(
    response: &HttpResponse,
    status: u16,
    code: &str,
    fragment: &str,
) -> String {
    assert_eq!(response.status, status, "{response:?}");
    let answer = json_of(response);
    assert_eq!(answer["error"], code, "{answer}");
    let message = str_field(&answer, "message").to_owned();
    assert!(
        message.contains(fragment),
        "the message should name the problem ({fragment:?}): {message:?}"
    );
    message
}

/// Broadcasts the end marker `{"end": n}` (type `marker`) through the API.
pub(crate) fn send_marker(addr: SocketAddr, n: u64) {
    publish(addr, &json!({"type": "marker", "payload": {"end": n}}));
}

/// Reads `client`'s messages up to end marker `n`; returns those before it (presence
/// events left out). Everything the server queued for the client before the marker's
/// publish comes first, so what is returned is everything the client got.
pub(crate) fn until_marker(client: &mut HubClient, n: u64) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let message = client.next_skipping(&["presence"]);
        if message["type"] == "marker" {
            assert_eq!(
                message["payload"]["end"], n,
                "{}: {message}",
                client.user_id
            );
            return got;
        }
        got.push(message);
    }
}

/// Sends marker `n` and asserts each of `clients` received nothing before it.
pub(crate) fn assert_nothing_else(addr: SocketAddr, n: u64, clients: &mut [&mut HubClient]) {
    send_marker(addr, n);
    for client in clients.iter_mut() {
        let got = until_marker(client, n);
        assert!(got.is_empty(), "{} also got {got:?}", client.user_id);
    }
}
