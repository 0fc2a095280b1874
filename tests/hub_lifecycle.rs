//! Loopback tests of the hub's bookkeeping over connection life cycles: leave and
//! disconnect remove the connection from its rooms and its user (empty rooms and users
//! disappear), 10,000 connect/join/disconnect cycles bring `/stats` back to zero, and the
//! heartbeat closes a silent peer while keeping a ponging one; a server-initiated close is
//! counted once in `/stats`.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::TestServer;
use common::hub::HubClient;
use serde_json::json;
use wsloop::protocol::OpCode;

// A leave removes the connection from the room (the room goes when its last member leaves);
// leaving again is `not_member`; a disconnect removes the rest.
#[test]
fn leave_and_disconnect_clean_up_rooms_and_users() {
    let server = TestServer::start_with(|c| c.hub.rate_limit_enabled = false);
    let mut alice = HubClient::connect(&server, "alice");
    let mut bob = HubClient::connect(&server, "bob");
    for room in ["r1", "r2", "r3"] {
        alice.join(room);
    }
    bob.join("r1");
    server.wait_for_hub(2, 2, 3);

    assert_eq!(alice.leave("r2")["members"], 0);
    server.wait_for_hub(2, 2, 2);
    alice.send_json(&json!({"type": "leave", "room": "r2", "id": 1}));
    assert_eq!(alice.expect_error("not_member")["id"], 1);
    alice.send_json(&json!({"type": "chat", "room": "r2", "payload": 1}));
    alice.expect_error("not_member");

    assert_eq!(alice.leave("r1")["members"], 1, "bob is still in r1");
    assert_eq!(bob.expect("presence")["action"], "leave");
    server.wait_for_hub(2, 2, 2);

    alice.close();
    server.wait_for_hub(1, 1, 1);
    bob.vanish();
    let stats = server.wait_for_hub(0, 0, 0);
    assert_eq!(
        stats["active_connections"], 1,
        "only the /stats request: {stats}"
    );
}

// A user with two connections stays a user until the second one goes; an abrupt disconnect
// cleans up like a clean one, and the departed user can no longer be messaged.
#[test]
fn a_user_lasts_until_its_last_connection() {
    let server = TestServer::start_with(|c| c.hub.rate_limit_enabled = false);
    let mut sender = HubClient::connect(&server, "sender");
    let mut tab1 = HubClient::connect(&server, "multi");
    let mut tab2 = HubClient::connect(&server, "multi");
    tab1.join("shared");
    tab2.join("shared");
    server.wait_for_hub(3, 2, 1);

    tab1.vanish();
    server.wait_for_hub(2, 2, 1);
    sender.send_json(&json!({"type": "private", "recipient_id": "multi", "payload": 1, "id": "a"}));
    assert_eq!(tab2.expect("private")["payload"], 1);
    assert_eq!(
        sender.expect("ack")["delivered"],
        1,
        "only the remaining tab"
    );

    tab2.close();
    server.wait_for_hub(1, 1, 0);
    sender.send_json(&json!({"type": "private", "recipient_id": "multi", "payload": 2, "id": "b"}));
    assert_eq!(sender.expect_error("recipient_not_connected")["id"], "b");
}

/// How a cycle ends.
fn disconnect(mut client: HubClient, round: usize, room: &str) {
    match round % 4 {
        0 => client.close(),
        1 => client.vanish(),
        2 => {
            client.leave(room);
            client.vanish();
        }
        _ => drop(client), // Unread presence events may turn this into a reset.
    }
}

// 10,000 connect/join/disconnect cycles (4 threads, users and rooms reused, some rooms shared
// between threads, every way of leaving) leave the hub with no connection, user or room.
#[test]
fn ten_thousand_connect_join_disconnect_cycles_leave_nothing_behind() {
    const THREADS: usize = 4;
    const CYCLES: usize = 10_000 / THREADS;
    let server = TestServer::start_with(|c| {
        c.hub.rate_limit_enabled = false;
        c.max_connections_per_user = 0;
    });
    let started = Instant::now();
    thread::scope(|scope| {
        for t in 0..THREADS {
            let server = &server;
            scope.spawn(move || {
                for round in 0..CYCLES {
                    let mut client = HubClient::connect(server, &format!("u{t}-{}", round % 7));
                    let own = format!("t{t}-{}", round % 5);
                    client.join(&own);
                    if round % 3 == 0 {
                        client.join("everyone");
                    }
                    disconnect(client, round, &own);
                }
            });
        }
    });
    let stats = server.wait_for_hub(0, 0, 0);
    assert_eq!(stats["upgrades"], THREADS * CYCLES, "{stats}");
    assert_eq!(server.wait_until_idle()["hub_connections"], 0);
    eprintln!("{} cycles in {:?}", THREADS * CYCLES, started.elapsed());
}

/// A server that pings every 200 ms and closes after 2 s of silence.
fn heartbeat_server() -> TestServer {
    TestServer::start_with(|c| {
        c.ping_interval = Duration::from_millis(200);
        c.idle_timeout = Duration::from_millis(2_000);
    })
}

// A peer that reads but never answers (no pong, no data) gets pings, then close 1001 "idle
// timeout" once `idle_timeout` has passed; a peer that only answers pings stays open for
// several idle timeouts and is still served.
#[test]
fn heartbeat_closes_a_silent_peer_and_keeps_a_ponging_one() {
    let server = heartbeat_server();
    let started = Instant::now(); // Before the handshake, so before the server's last_seen.
    let silent = thread::spawn({
        let mut silent = HubClient::connect(&server, "silent");
        move || {
            let mut pings = 0;
            loop {
                let frame = silent.raw().read_frame();
                match frame.opcode {
                    OpCode::Ping => pings += 1,
                    OpCode::Close => {
                        let reason = String::from_utf8_lossy(&frame.payload[2..]).into_owned();
                        assert_eq!(
                            (frame.close_code(), reason.as_str()),
                            (Some(1001), "idle timeout")
                        );
                        break;
                    }
                    _ => panic!("silent peer got {frame:?}"),
                }
            }
            (started.elapsed(), pings)
        }
    });
    let mut ponging = HubClient::connect(&server, "ponging");
    ponging.expect_no_message_within(Duration::from_millis(5_000));

    let (waited, pings) = silent.join().expect("the silent peer's thread");
    assert!(
        waited >= Duration::from_millis(2_000),
        "closed before idle_timeout: {waited:?}"
    );
    assert!(pings >= 2, "pinged before the close: {pings}");
    assert!(
        ponging.pings >= 10,
        "the ponging peer answered {} pings",
        ponging.pings
    );
    ponging.chat(None, json!("alive"), Some(json!(1)));
    assert_eq!(ponging.expect("chat")["payload"], "alive");
    assert_eq!(
        ponging.expect("ack")["delivered"],
        1,
        "the silent peer is gone"
    );
    let stats = server.wait_for_hub(1, 1, 0);
    assert_eq!(stats["close_sent"]["1001"], 1, "{stats}");
}

// `/stats` counts close frames as they go out: a close the server started (here the
// rate-limit close, 1008) and the peer then answered is one frame sent and one received.
#[test]
fn a_server_initiated_close_is_counted_once() {
    let server = TestServer::start_with(|c| {
        c.hub.rate_limit = wsloop::ratelimit::Rate {
            capacity: 1.0,
            refill_per_sec: 0.001,
        };
        c.hub.abuse_strikes = 1;
    });
    let mut client = HubClient::connect(&server, "counted");
    client.chat(None, json!(1), Some(json!(1)));
    assert_eq!(client.expect("chat")["payload"], 1);
    client.expect("ack");
    client.chat(None, json!(2), None);
    assert_eq!(client.expect_close(1008), "rate limit exceeded");
    let stats = server.wait_for_hub(0, 0, 0);
    assert_eq!(stats["close_received"], json!({"1008": 1}), "{stats}");
    assert_eq!(
        stats["close_sent"],
        json!({"1008": 1}),
        "one close frame went out: {stats}"
    );
}
