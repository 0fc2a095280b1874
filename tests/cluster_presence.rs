//! Cluster-wide presence (issue 14): two nodes on one real Redis. Users on different nodes
//! see each other in a room (`joined`'s `members` and `users`, `presence` join/leave), a
//! user present on two nodes arrives and leaves once, a node killed with `kill -9` takes
//! its users away within the bound README states, and the `shared_room` private-message
//! policy counts rooms shared across nodes.

mod cluster;

use std::fs;
use std::time::{Duration, Instant};

use cluster::PATIENCE;
use cluster::peer::Peer;
use cluster::procs::TempDir;
use cluster::servers::{Node, Redis};
use serde_json::{Value, json};

/// README: "a node killed with `kill -9` leaves its rooms within 5 s".
const DEAD_NODE_BOUND: Duration = Duration::from_secs(5);
/// What the tests allow on top of [`DEAD_NODE_BOUND`]. README's bound (a liveness key that
/// expires 3 s after the last beat, found by a sweep every second) assumes the surviving
/// node's timers run on time; debug nodes on a loaded machine run them late, which left
/// about 1 s of margin. Detection that never happens, or takes over 8 s, still fails.
const LOAD_SLACK: Duration = Duration::from_secs(3);

/// How long a test waits to be sure a `presence` is *not* coming: several heartbeats, and
/// far longer than a note takes between two nodes on one machine.
const QUIET: Duration = Duration::from_millis(1500);

/// The next `presence` within `wait`, skipping anything else (acks, deliveries).
fn next_presence(peer: &mut Peer, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let message = peer.next_within(left)?;
        if message["type"] == "presence" {
            return Some(message);
        }
    }
}

/// Asserts the next `presence` for `peer` is `user`'s `action` with `members`.
fn expect_presence(peer: &mut Peer, action: &str, user: &str, members: u64) {
    let got = next_presence(peer, PATIENCE)
        .unwrap_or_else(|| panic!("{}: no presence {action} of {user}", peer.user));
    assert_eq!(
        (&got["action"], &got["user_id"], &got["members"]),
        (&json!(action), &json!(user), &json!(members)),
        "{}: {got}",
        peer.user
    );
}

fn assert_no_presence(peer: &mut Peer) {
    if let Some(got) = next_presence(peer, QUIET) {
        panic!("{}: unexpected {got}", peer.user);
    }
}

fn users(joined: &Value) -> Vec<&str> {
    joined["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users in {joined}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn users_on_two_nodes_see_each_other_once() {
    let dir = TempDir::new("cluster-presence");
    let redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);

    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    let joined = alice.join("lobby", None);
    assert_eq!(
        (joined["members"].clone(), users(&joined)),
        (json!(1), vec!["alice"])
    );

    // bob on the other node: his `joined` counts and lists alice; alice is told.
    let mut bob_b = Peer::connect(&b.ws_url("bob"), "bob");
    let joined = bob_b.join("lobby", None);
    assert_eq!(joined["members"], 2, "{joined}");
    assert_eq!(users(&joined), ["alice", "bob"], "{joined}");
    expect_presence(&mut alice, "join", "bob", 2);

    // A second connection of bob, on alice's node: nobody is told anything.
    let mut bob_a = Peer::connect(&a.ws_url("bob"), "bob");
    let joined = bob_a.join("lobby", None);
    assert_eq!(joined["members"], 2, "{joined}");
    assert_no_presence(&mut alice);
    assert_no_presence(&mut bob_b);

    // bob leaves node b but is still in the room on a: no leave.
    bob_b.send(&json!({"type": "leave", "room": "lobby"}));
    let left = bob_b.expect("left");
    assert_eq!(left["members"], 2, "bob is still in the room, on a: {left}");
    assert_no_presence(&mut alice);

    // bob gone everywhere: alice sees him leave.
    bob_a.close();
    expect_presence(&mut alice, "leave", "bob", 1);

    // And a newcomer on b sees the room as it is now.
    let mut carol = Peer::connect(&b.ws_url("carol"), "carol");
    let joined = carol.join("lobby", None);
    assert_eq!(users(&joined), ["alice", "carol"], "{joined}");
    expect_presence(&mut alice, "join", "carol", 2);
    for node in [&a, &b] {
        let dropped = node.metric("wsloop_cluster_presence_dropped_total");
        assert_eq!(dropped, Some(0.0), "node {}: nothing left out", node.id);
    }
}

#[test]
fn a_killed_node_takes_its_users_away_within_the_bound() {
    let dir = TempDir::new("cluster-presence-kill");
    let redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let mut b = Node::start(dir.path(), "b", &redis);

    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    alice.join("lobby", None);
    let mut dave = Peer::connect(&b.ws_url("dave"), "dave");
    dave.join("lobby", None);
    expect_presence(&mut alice, "join", "dave", 2);
    // Node b is alive: nobody declares it dead while it beats.
    assert_no_presence(&mut alice);

    b.kill();
    let killed = Instant::now();
    let got = next_presence(&mut alice, PATIENCE).expect("a presence leave for dave");
    let took = killed.elapsed();
    assert_eq!(
        (&got["action"], &got["user_id"], &got["members"]),
        (&json!("leave"), &json!("dave"), &json!(1)),
        "{got}"
    );
    assert!(
        took <= DEAD_NODE_BOUND + LOAD_SLACK,
        "dave left {took:?} after node b died; README promises {DEAD_NODE_BOUND:?} \
         (+{LOAD_SLACK:?} for load)"
    );
    // Redis forgot node b too: a newcomer does not see dave.
    let mut erin = Peer::connect(&a.ws_url("erin"), "erin");
    let joined = erin.join("lobby", None);
    assert_eq!(users(&joined), ["alice", "erin"], "{joined}");
}

#[test]
fn shared_room_private_messages_count_rooms_shared_across_nodes() {
    let dir = TempDir::new("cluster-presence-private");
    let config = dir.path().join("shared_room.toml");
    fs::write(&config, "[hub]\nprivate_messages = \"shared_room\"\n").expect("write config");
    let config = config.to_str().expect("UTF-8 path");
    let redis = Redis::start(dir.path());
    let a = Node::start_with(dir.path(), "a", &redis, &[("--config", config)]);
    let b = Node::start_with(dir.path(), "b", &redis, &[("--config", config)]);

    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    let mut bob = Peer::connect(&b.ws_url("bob"), "bob");
    let mut carol = Peer::connect(&b.ws_url("carol"), "carol");
    alice.join("lobby", None);
    bob.join("lobby", None);
    carol.join("elsewhere", None);

    // alice and bob share `lobby`, on two nodes: delivered.
    alice.send(&json!({"type": "private", "recipient_id": "bob", "payload": "psst", "id": 1}));
    let ack = alice.expect("ack");
    assert_eq!(ack["id"], 1, "{ack}");
    let got = bob.expect("private");
    assert_eq!(
        (got["sender_id"].clone(), got["payload"].clone()),
        (json!("alice"), json!("psst"))
    );

    // alice and carol share no room: refused, and carol gets nothing.
    alice.send(&json!({"type": "private", "recipient_id": "carol", "payload": "psst", "id": 2}));
    let refused = alice.expect("error");
    assert_eq!(
        (refused["code"].clone(), refused["id"].clone()),
        (json!("forbidden"), json!(2)),
        "{refused}"
    );
    assert_eq!(
        carol.poll(QUIET),
        None,
        "carol got a private message she should not have"
    );
}

#[test]
fn a_stopped_node_is_taken_for_dead_then_comes_back() {
    let dir = TempDir::new("cluster-presence-stop");
    let redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);

    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    alice.join("lobby", None);
    let mut dave = Peer::connect(&b.ws_url("dave"), "dave");
    dave.join("lobby", None);
    expect_presence(&mut alice, "join", "dave", 2);

    // Stopped past its liveness key's expiry: its users leave.
    b.signal("STOP");
    let stopped = Instant::now();
    let got = next_presence(&mut alice, PATIENCE).expect("a presence leave for dave");
    b.signal("CONT");
    assert_eq!(
        (&got["action"], &got["user_id"]),
        (&json!("leave"), &json!("dave")),
        "{got}"
    );
    let took = stopped.elapsed();
    assert!(
        took <= DEAD_NODE_BOUND + LOAD_SLACK,
        "dave left {took:?} after node b stopped; README promises {DEAD_NODE_BOUND:?} \
         (+{LOAD_SLACK:?} for load)"
    );
    // Resumed, it finds its key gone and writes its users again: dave is back.
    expect_presence(&mut alice, "join", "dave", 2);
    dave.send(&json!({"type": "chat", "room": "lobby", "payload": "back", "id": 1}));
    assert_eq!(alice.expect("chat")["payload"], "back");
}

#[test]
fn a_node_restarted_under_its_id_forgets_its_previous_users() {
    let dir = TempDir::new("cluster-presence-restart");
    let redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let mut b = Node::start(dir.path(), "b", &redis);

    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    alice.join("lobby", None);
    let mut dave = Peer::connect(&b.ws_url("dave"), "dave");
    dave.join("lobby", None);
    expect_presence(&mut alice, "join", "dave", 2);

    // Killed and back at once, under the same id (its liveness key may not even expire).
    b.kill();
    b.restart();
    expect_presence(&mut alice, "leave", "dave", 1);
    let mut frank = Peer::connect(&b.ws_url("frank"), "frank");
    let joined = frank.join("lobby", None);
    assert_eq!(users(&joined), ["alice", "frank"], "{joined}");
    expect_presence(&mut alice, "join", "frank", 2);
}

#[test]
fn without_redis_a_node_answers_with_what_it_knows() {
    let dir = TempDir::new("cluster-presence-redis-down");
    let mut redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);

    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    alice.join("lobby", None);
    let mut bob = Peer::connect(&b.ws_url("bob"), "bob");
    bob.join("lobby", None);
    expect_presence(&mut alice, "join", "bob", 2);

    redis.kill();
    // A room node a follows: answered from memory, bob included.
    let mut carol = Peer::connect(&a.ws_url("carol"), "carol");
    let joined = carol.join("lobby", None);
    assert_eq!(users(&joined), ["alice", "bob", "carol"], "{joined}");
    expect_presence(&mut alice, "join", "carol", 3);
    // A room it does not: the roster cannot be read; the join is answered anyway.
    let joined = carol.join("elsewhere", None);
    assert_eq!(users(&joined), ["carol"], "{joined}");
}
