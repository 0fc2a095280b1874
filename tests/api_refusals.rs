//! Loopback tests of every refusal of `POST /api/publish`, and of its metrics: with no key
//! configured the API is unreachable (404); a missing or wrong key gets 401; a wrong method
//! 405; no length 411; a body over the cap 413; and each malformed body 400 with a JSON
//! error naming the problem. A refused request delivers nothing, not even the valid part
//! of a batch. `wsloop_api_requests_total{status}` counts every answer and
//! `wsloop_messages_published_total` every message delivered.

mod common;

use common::api::{self, KEY, assert_nothing_else, assert_refused, json_of, publish};
use common::guard::scrape;
use common::hub::HubClient;
use common::{Request, TestServer};
use serde_json::json;

/// The hub's largest request, and so the largest payload the API takes, in these tests.
const MAX_PAYLOAD: usize = 1024;
/// The API's largest body in these tests.
const MAX_BODY: usize = 4096;

fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.api.keys = vec![KEY.to_owned()];
        c.api.max_body_bytes = MAX_BODY;
        c.hub.max_message_bytes = MAX_PAYLOAD;
        c.hub.rate_limit_enabled = false;
    })
}

/// A member of room `r` (user `u`), to prove that refused requests deliver nothing.
fn member(server: &TestServer) -> HubClient {
    let mut client = HubClient::connect(server, "u");
    client.join("r");
    client
}

#[test]
fn with_no_key_configured_the_api_is_unreachable() {
    let server = TestServer::start();
    let mut client = HubClient::connect(&server, "u");
    let body = r#"{"payload":"should not arrive"}"#;
    for key in [None, Some(""), Some(KEY), Some("anything")] {
        let response = api::post(server.addr, key, body);
        assert_refused(&response, 404, "api_off", "no API key");
    }
    let get = server.request(&Request::get("/api/publish"));
    assert_refused(&get, 404, "api_off", "off");

    // Nothing arrived: the client's own broadcast is the next thing it reads.
    client.chat(None, json!("own"), None);
    assert_eq!(client.expect("chat")["payload"], "own");
    let metrics = scrape(&server);
    assert_eq!(
        metrics.get("wsloop_api_requests_total{status=\"404\"}"),
        5.0
    );
    assert_eq!(metrics.or_zero("wsloop_messages_published_total"), 0.0);
}

#[test]
fn a_missing_or_wrong_key_gets_401() {
    let server = server();
    let mut client = member(&server);
    let body = r#"{"room":"r","payload":"should not arrive"}"#;
    let shorter = &KEY[..KEY.len() - 1];
    let longer = format!("{KEY}x");
    let authorizations = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {shorter}")),
        Some(format!("Bearer {longer}")),
        Some(format!("Basic {KEY}")),
        Some(KEY.to_owned()),
        Some("Bearer ".to_owned()),
    ];
    for authorization in &authorizations {
        let mut request = api::head(None, body);
        if let Some(value) = authorization {
            request = request.set("Authorization", value);
        }
        let response = api::send(server.addr, &request, body);
        assert_refused(&response, 401, "unauthorized", "API key");
        assert_eq!(
            response.header("WWW-Authenticate"),
            Some("Bearer"),
            "{authorization:?}"
        );
    }
    // The key is accepted in the Authorization header only, never in the URL (where
    // proxies and access logs would keep it).
    for authorization in [None, Some("Basic Zm9vOmJhcg==")] {
        let mut request = Request::get(&format!("/api/publish?token={KEY}"))
            .method("POST")
            .set("Content-Length", &body.len().to_string());
        if let Some(value) = authorization {
            request = request.set("Authorization", value);
        }
        let response = api::send(server.addr, &request, body);
        assert_refused(&response, 401, "unauthorized", "API key");
    }
    assert_nothing_else(server.addr, 1, &mut [&mut client]);
    let metrics = scrape(&server);
    let refused = authorizations.len() + 2;
    assert_eq!(
        metrics.get("wsloop_api_requests_total{status=\"401\"}"),
        refused as f64
    );
}

#[test]
fn the_method_and_the_length_are_checked_before_the_body() {
    let server = server();
    let mut client = member(&server);

    let get = Request::get("/api/publish").set("Authorization", &format!("Bearer {KEY}"));
    let response = server.request(&get);
    assert_refused(&response, 405, "method_not_allowed", "POST");
    assert_eq!(response.header("Allow"), Some("POST"));

    let body = r#"{"room":"r","payload":1}"#;
    let no_length = api::head(Some(KEY), body).remove("Content-Length");
    let response = api::send(server.addr, &no_length, "");
    assert_refused(&response, 411, "length_required", "Content-Length");
    let chunked = no_length.set("Transfer-Encoding", "chunked");
    let response = api::send(
        server.addr,
        &chunked,
        "18\r\n{\"room\":\"r\",\"payload\":1}\r\n0\r\n\r\n",
    );
    assert_refused(&response, 411, "length_required", "Content-Length");
    let garbage = api::head(Some(KEY), body).set("Content-Length", "lots");
    assert_refused(
        &api::send(server.addr, &garbage, ""),
        411,
        "length_required",
        "",
    );

    // Over the cap: refused on the head alone, the body is never read.
    let big = format!(r#"{{"room":"r","payload":"{}"}}"#, "x".repeat(MAX_BODY));
    let response = api::send(server.addr, &api::head(Some(KEY), &big), "");
    assert_refused(&response, 413, "body_too_large", &MAX_BODY.to_string());
    // Exactly at the cap is fine (padding with JSON whitespace).
    let mut exact = r#"{"room":"r","payload":"fits"}"#.to_owned();
    exact.push_str(&" ".repeat(MAX_BODY - exact.len()));
    assert_eq!(
        json_of(&api::post(server.addr, Some(KEY), &exact))["delivered"],
        1
    );
    assert_eq!(client.expect("notification")["payload"], "fits");
    assert_nothing_else(server.addr, 1, &mut [&mut client]);
}

/// Bodies that must be refused with 400, each with a fragment of the message expected.
fn bad_bodies() -> Vec<(String, &'static str)> {
    let payload = |n: usize| format!(r#""{}""#, "p".repeat(n));
    let ok = r#"{"room":"r","payload":1}"#;
    let mut cases: Vec<(String, &str)> = vec![
        (r#"{"room":"r","payload":"#.into(), "invalid JSON"),
        (r#"{"room":"r" "payload":1}"#.into(), "invalid JSON"),
        ("not json".into(), "JSON object"),
        ("[1,2]".into(), "JSON object"),
        (String::new(), "JSON object"),
        (
            r#"{"room":"r","payload":1,"colour":"red"}"#.into(),
            "unknown field `colour`",
        ),
        (
            r#"{"room":"r","user_id":"u","payload":1}"#.into(),
            "`room` or `user_id`, not both",
        ),
        (
            format!(r#"{{"room":"r","payload":{}}}"#, payload(MAX_PAYLOAD)),
            "payload exceeds 1024 bytes",
        ),
        (r#"{"room":"r"}"#.into(), "`payload` is required"),
        (r#"{"room":"a b","payload":1}"#.into(), "`room`"),
        (r#"{"room":7,"payload":1}"#.into(), "invalid JSON"),
        (r#"{"user_id":"has space","payload":1}"#.into(), "`user_id`"),
        (r#"{"type":"","payload":1}"#.into(), "`type`"),
        (r#"{"type":"two words","payload":1}"#.into(), "`type`"),
        // Batches.
        (r#"{"messages":[]}"#.into(), "1 to 100"),
        (
            format!(r#"{{"messages":[{}]}}"#, vec![ok; 101].join(",")),
            "1 to 100",
        ),
        (
            format!(r#"{{"messages":[{ok}],"room":"r","payload":1}}"#),
            "not both",
        ),
        (
            format!(r#"{{"messages":[{ok}],"extra":1}}"#),
            "unknown field `extra`",
        ),
        (r#"{"messages":{}}"#.into(), "invalid JSON"),
        (
            format!(r#"{{"messages":[{ok},{{"rom":"r","payload":1}}]}}"#),
            "messages[1]: unknown field `rom`",
        ),
        (
            format!(r#"{{"messages":[{ok},{{"room":"r","user_id":"u","payload":1}}]}}"#),
            "messages[1]: give `room` or `user_id`, not both",
        ),
        (
            format!(r#"{{"messages":[{ok},{ok},{{"type":"ack","payload":1}}]}}"#),
            "messages[2]: type `ack` is reserved",
        ),
        (r#"{"messages":[1]}"#.into(), "messages[0]"),
    ];
    // Every type the server itself sends is reserved.
    for kind in ["welcome", "joined", "left", "presence", "ack", "error"] {
        cases.push((
            format!(r#"{{"room":"r","type":"{kind}","payload":1}}"#),
            "reserved",
        ));
    }
    cases
}

#[test]
fn each_malformed_body_gets_400_naming_the_problem_and_delivers_nothing() {
    let server = server();
    let mut client = member(&server);
    let cases = bad_bodies();
    for (body, fragment) in &cases {
        let response = api::post(server.addr, Some(KEY), body);
        let message = assert_refused(&response, 400, "bad_request", fragment);
        assert!(message.len() < 300, "a short message: {message:?}");
    }
    // Not UTF-8.
    let mut bytes = api::head(Some(KEY), "")
        .set("Content-Length", "4")
        .to_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, b'{', b'}']);
    let mut raw = common::Client::connect(server.addr);
    raw.send(&bytes);
    let response = raw.read_response();
    raw.expect_eof();
    assert_refused(&response, 400, "bad_request", "UTF-8");

    assert_nothing_else(server.addr, 1, &mut [&mut client]);
    let metrics = scrape(&server);
    assert_eq!(
        metrics.get("wsloop_api_requests_total{status=\"400\"}"),
        (cases.len() + 1) as f64
    );
    // Only the marker was published.
    assert_eq!(metrics.get("wsloop_messages_published_total"), 1.0);
}

#[test]
fn metrics_count_requests_by_status_and_messages_published() {
    let server = server();
    let _client = member(&server);
    publish(server.addr, &json!({"room": "r", "payload": 1}));
    publish(
        server.addr,
        &json!({"messages": [{"payload": 1}, {"user_id": "u", "payload": 2}, {"room": "r", "payload": 3}]}),
    );
    publish(server.addr, &json!({"room": "empty", "payload": 4}));
    api::post(server.addr, Some("nope"), "{}");
    api::post(server.addr, Some(KEY), "{}");

    let metrics = scrape(&server);
    assert_eq!(
        metrics.types.get("wsloop_api_requests").map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        metrics.get("wsloop_api_requests_total{status=\"200\"}"),
        3.0
    );
    assert_eq!(
        metrics.get("wsloop_api_requests_total{status=\"400\"}"),
        1.0
    );
    assert_eq!(
        metrics.get("wsloop_api_requests_total{status=\"401\"}"),
        1.0
    );
    assert_eq!(metrics.sum("wsloop_api_requests_total"), 5.0);
    assert_eq!(metrics.get("wsloop_messages_published_total"), 5.0);
    // API requests are not WebSocket handshakes: none is counted as a rejected one.
    assert_eq!(metrics.sum("wsloop_handshakes_rejected_total"), 0.0);
}
