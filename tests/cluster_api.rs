//! The server API across the cluster: two nodes over a real Redis. Rooms, presence and
//! info asked on one node count the other node's connections; history read on one node
//! is the room's shared history; a disconnect asked on node A closes the user's
//! connection on node B. And the faults: a node that is stopped (SIGSTOP) is listed as
//! `missing` within the gather deadline instead of hanging the request; with Redis gone
//! the API answers 503 at once.

mod cluster;

use std::time::{Duration, Instant};

use cluster::peer::{Peer, http};
use cluster::procs::TempDir;
use cluster::servers::{Node, Redis};
use cluster::{API_KEY, eventually};
use serde_json::{Value, json};

/// `GET path` on `port` with the API key: (status, JSON).
fn api_get(port: u16, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {API_KEY}");
    let (status, body) = http(port, "GET", path, &[("Authorization", &auth)], "");
    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, json)
}

/// `GET path` on `port`; asserts 200.
fn read(port: u16, path: &str) -> Value {
    let (status, answer) = api_get(port, path);
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

#[test]
fn every_node_answers_its_part() {
    let dir = TempDir::new("cluster-api");
    let redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);

    let mut alice_1 = Peer::connect(&a.ws_url("alice"), "alice");
    let mut alice_2 = Peer::connect(&a.ws_url("alice"), "alice");
    let mut bob = Peer::connect(&b.ws_url("bob"), "bob");
    let mut carol = Peer::connect(&b.ws_url("carol"), "carol");
    for peer in [&mut alice_1, &mut alice_2, &mut bob] {
        peer.join("lobby", None);
    }
    carol.join("annex", None);

    let rooms = read(a.port, "/api/rooms");
    assert_eq!(
        rooms,
        json!({"rooms": [
            {"room": "annex", "users": 1, "connections": 1},
            {"room": "lobby", "users": 2, "connections": 3},
        ], "missing": []}),
        "node a counts node b's members too"
    );
    let presence = read(b.port, "/api/rooms/lobby/presence");
    assert_eq!(
        presence["users"],
        json!([
            {"user_id": "alice", "connections": 2},
            {"user_id": "bob", "connections": 1},
        ]),
        "{presence}"
    );
    let info = read(a.port, "/api/info");
    assert_eq!(info["node"], "a", "{info}");
    let nodes: Vec<(Value, Value, Value)> = info["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["node"].clone(),
                n["connections"].clone(),
                n["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            (json!("a"), json!(2), json!("ready")),
            (json!("b"), json!(2), json!("ready")),
        ],
        "{info}"
    );

    // History read on node b is the shared history: what alice's messages got on a.
    let mut sent = Vec::new();
    for n in 0..3 {
        alice_1.send(&json!({"type": "chat", "room": "lobby", "payload": {"n": n}, "id": n}));
        sent.push(bob.expect("chat"));
    }
    let page = read(b.port, "/api/rooms/lobby/history?limit=10");
    assert_eq!(page["messages"], json!(sent), "{page}");
    assert_eq!(page["last"], sent[2]["offset"], "{page}");
    let since = sent[0]["offset"].as_u64().expect("offset");
    let page = read(
        a.port,
        &format!("/api/rooms/lobby/history?since={since}&limit=1"),
    );
    assert_eq!(page["messages"], json!([sent[1]]), "{page}");
    let (status, unknown) = api_get(a.port, "/api/rooms/nowhere/history");
    assert_eq!(
        (status, &unknown["error"]),
        (404, &json!("unknown_room")),
        "{unknown}"
    );

    // A disconnect asked on node a closes bob's connection on node b.
    let auth = format!("Bearer {API_KEY}");
    let body = json!({"user_id": "bob", "code": 4009, "reason": "moderated"}).to_string();
    let (status, answer) = http(
        a.port,
        "POST",
        "/api/disconnect",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(answer, json!({"disconnected": 1, "missing": []}));
    let closed = loop {
        match bob.next_json() {
            Ok(_) => continue, // presence and messages queued before the close
            Err(e) => break e.to_string(),
        }
    };
    assert!(closed.contains("4009"), "bob closed with 4009: {closed}");
    eventually("bob gone from the room", || {
        let presence = read(a.port, "/api/rooms/lobby/presence");
        (presence["users"] == json!([{"user_id": "alice", "connections": 2}])).then_some(())
    });
}

#[test]
fn a_stopped_node_is_missing_not_a_hang_and_redis_down_is_503() {
    let dir = TempDir::new("cluster-api-faults");
    let mut redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);
    let mut bob = Peer::connect(&b.ws_url("bob"), "bob");
    bob.join("lobby", None);
    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    alice.join("annex", None);

    // Stopped, node b is still alive in Redis for a few seconds: it is asked, and does
    // not answer.
    b.signal("STOP");
    let started = Instant::now();
    let rooms = read(a.port, "/api/rooms");
    let took = started.elapsed();
    b.signal("CONT");
    assert_eq!(
        rooms,
        json!({"rooms": [{"room": "annex", "users": 1, "connections": 1}], "missing": ["b"]}),
        "node a answers with what it has and names the silent node"
    );
    // The gather waits 1 s; the rest is room for a debug node on a loaded machine. A hang
    // would run into the read's 20 s patience, and `missing` above shows the deadline hit.
    assert!(
        took < Duration::from_secs(10),
        "answered at the gather deadline, not hung: {took:?}"
    );
    // Back, node b answers again.
    eventually("node b answers again", || {
        let rooms = read(a.port, "/api/rooms");
        (rooms["missing"] == json!([]) && rooms["rooms"].as_array().map(Vec::len) == Some(2))
            .then_some(())
    });

    redis.kill();
    let (status, answer) = eventually("503 once Redis is gone", || {
        let (status, answer) = api_get(a.port, "/api/info");
        (status == 503).then_some((status, answer))
    });
    assert_eq!(answer["error"], "unavailable", "{status}: {answer}");
}
