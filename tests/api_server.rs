//! The server API on one node: `GET /api/info`, `/api/rooms`, a room's presence and
//! history, `POST /api/disconnect`, each answer checked against what clients did, and each
//! refusal (no key, wrong key, API off, unknown room, bad parameters, history off) with
//! its status and JSON error.

mod common;

use common::api::{self, KEY, assert_refused, json_of};
use common::guard::scrape;
use common::hub::HubClient;
use common::{HttpResponse, Request, TestServer};
use serde_json::{Value, json};
use wsloop::protocol::OpCode;

/// A server with the API on and the message rate limit off.
fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.api.keys = vec![KEY.to_owned()];
        c.hub.rate_limit_enabled = false;
    })
}

/// `GET target` with `key` (or none).
fn get(server: &TestServer, target: &str, key: Option<&str>) -> HttpResponse {
    let request = Request::get(target);
    let request = match key {
        Some(key) => request.set("Authorization", &format!("Bearer {key}")),
        None => request,
    };
    server.request(&request)
}

/// `GET target` with the key; asserts 200 and returns the JSON.
fn read(server: &TestServer, target: &str) -> Value {
    let response = get(server, target, Some(KEY));
    assert_eq!(response.status, 200, "{target}: {response:?}");
    json_of(&response)
}

/// `POST /api/disconnect` with `body` and the key.
fn disconnect(server: &TestServer, body: &str) -> HttpResponse {
    let request = api::head(Some(KEY), body).to("/api/disconnect");
    api::send(server.addr, &request, body)
}

/// alice twice and bob in `lobby`, carol alone in `annex`.
fn populated(server: &TestServer) -> Vec<HubClient> {
    let mut clients = Vec::new();
    for (user, room) in [
        ("alice", "lobby"),
        ("alice", "lobby"),
        ("bob", "lobby"),
        ("carol", "annex"),
    ] {
        let mut client = HubClient::connect(server, user);
        client.join(room);
        clients.push(client);
    }
    server.wait_for_hub(4, 3, 2);
    clients
}

#[test]
fn rooms_and_presence_count_users_and_their_connections() {
    let server = server();
    let _clients = populated(&server);

    let rooms = read(&server, "/api/rooms");
    assert_eq!(
        rooms,
        json!({"rooms": [
            {"room": "annex", "users": 1, "connections": 1},
            {"room": "lobby", "users": 2, "connections": 3},
        ], "missing": []})
    );
    let presence = read(&server, "/api/rooms/lobby/presence");
    assert_eq!(
        presence,
        json!({"room": "lobby", "users": [
            {"user_id": "alice", "connections": 2},
            {"user_id": "bob", "connections": 1},
        ], "missing": []})
    );

    let info = read(&server, "/api/info");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"), "{info}");
    let nodes = info["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{info}");
    assert_eq!(nodes[0]["node"], info["node"], "{info}");
    assert_eq!(nodes[0]["connections"], 4, "{info}");
    assert_eq!(nodes[0]["status"], "ready", "{info}");
    assert!(info["uptime_s"].is_u64(), "{info}");
}

#[test]
fn history_pages_through_a_rooms_messages_as_clients_got_them() {
    let server = server();
    let mut alice = HubClient::connect(&server, "alice");
    alice.join("lobby");
    let mut delivered = Vec::new();
    for n in 1..=5 {
        alice.chat(Some("lobby"), json!({"n": n}), Some(json!(n)));
        delivered.push(alice.expect("chat"));
        alice.expect("ack");
    }

    let page = read(&server, "/api/rooms/lobby/history");
    assert_eq!(page["room"], "lobby");
    assert_eq!(page["last"], delivered[4]["offset"], "{page}");
    assert_eq!(page["epoch"], delivered[0]["epoch"], "{page}");
    assert_eq!(
        page["messages"],
        json!(delivered),
        "the messages clients got"
    );

    let since = delivered[1]["offset"].as_u64().expect("offset");
    let page = read(
        &server,
        &format!("/api/rooms/lobby/history?since={since}&limit=2"),
    );
    assert_eq!(page["messages"], json!(delivered[2..4]), "{page}");

    let unknown = get(&server, "/api/rooms/nowhere/history", Some(KEY));
    assert_refused(&unknown, 404, "unknown_room", "nowhere");
    for query in ["limit=0", "limit=1001", "since=-3", "since=abc"] {
        let bad = get(
            &server,
            &format!("/api/rooms/lobby/history?{query}"),
            Some(KEY),
        );
        assert_refused(&bad, 400, "bad_request", "");
    }
}

#[test]
fn disconnect_closes_every_connection_of_the_user_with_the_code() {
    let server = server();
    let mut clients = populated(&server);
    let bob = clients.remove(2);
    let alice_2 = clients.remove(1);
    let alice_1 = clients.remove(0);

    let response = disconnect(
        &server,
        r#"{"user_id":"alice","code":4403,"reason":"banned by an operator"}"#,
    );
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        json_of(&response),
        json!({"disconnected": 2, "missing": []})
    );
    for mut alice in [alice_1, alice_2] {
        // Presence sent before the disconnect may come first; then the close.
        let close = loop {
            let frame = alice.next_frame().expect("a close frame before EOF");
            if frame.opcode == OpCode::Close {
                break frame;
            }
        };
        assert_eq!(close.close_code(), Some(4403), "{close:?}");
        assert_eq!(&close.payload[2..], b"banned by an operator");
    }
    server.wait_for_hub(2, 2, 2);
    let presence = read(&server, "/api/rooms/lobby/presence");
    assert_eq!(
        presence["users"],
        json!([{"user_id": "bob", "connections": 1}])
    );
    drop(bob);

    let again = disconnect(&server, r#"{"user_id":"alice"}"#);
    assert_eq!(json_of(&again)["disconnected"], 0, "nobody left to close");
    for body in [
        r#"{"user_id":"alice","code":1000}"#,
        r#"{"user_id":"alice","code":5000}"#,
        r#"{"user":"alice"}"#,
        r#"{"user_id":"al ice"}"#,
        "not json",
    ] {
        assert_refused(&disconnect(&server, body), 400, "bad_request", "");
    }
}

#[test]
fn every_endpoint_refuses_without_the_key() {
    let server = server();
    let targets = [
        "/api/info",
        "/api/rooms",
        "/api/rooms/lobby/presence",
        "/api/rooms/lobby/history",
    ];
    for target in targets {
        let response = get(&server, target, None);
        assert_refused(&response, 401, "unauthorized", "API key");
        assert_eq!(response.header("WWW-Authenticate"), Some("Bearer"));
        let response = get(&server, target, Some("wrong-key"));
        assert_refused(&response, 401, "unauthorized", "API key");
    }
    let request = api::head(Some("wrong-key"), "{}").to("/api/disconnect");
    assert_refused(
        &api::send(server.addr, &request, "{}"),
        401,
        "unauthorized",
        "",
    );

    let unknown = get(&server, "/api/rooms/lobby/presence", Some(KEY));
    assert_refused(&unknown, 404, "unknown_room", "lobby");
    let invalid = get(&server, "/api/rooms/no%20spaces/presence", Some(KEY));
    assert_refused(&invalid, 400, "bad_request", "room name");
    let missing = get(&server, "/api/users", Some(KEY));
    assert_refused(&missing, 404, "not_found", "/api/users");
    let post = Request::get("/api/rooms")
        .method("POST")
        .set("Authorization", &format!("Bearer {KEY}"))
        .set("Content-Length", "0");
    let response = server.request(&post);
    assert_refused(&response, 405, "method_not_allowed", "GET");
    assert_eq!(response.header("Allow"), Some("GET"));

    let metrics = scrape(&server);
    assert_eq!(
        metrics.get("wsloop_api_requests_total{status=\"401\"}"),
        9.0,
        "every API answer is counted by status"
    );
}

#[test]
fn the_api_is_off_without_a_key_and_history_off_says_so() {
    let off = TestServer::start_with(|c| c.api.keys = Vec::new());
    let response = get(&off, "/api/rooms", Some(KEY));
    assert_refused(&response, 404, "api_off", "no API key");

    let no_history = TestServer::start_with(|c| {
        c.api.keys = vec![KEY.to_owned()];
        c.hub.history.size = 0;
    });
    let response = get(&no_history, "/api/rooms/lobby/history", Some(KEY));
    assert_refused(&response, 404, "history_off", "history");
}
