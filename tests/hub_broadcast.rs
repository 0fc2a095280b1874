//! Loopback tests of delivery on `/ws` with many real clients: a global broadcast and room
//! broadcasts reach every intended connection exactly once, in send order, and nobody
//! else; private messages reach every connection of the recipient and only those; each
//! delivered message carries its fields and the sender's payload byte for byte.
//!
//! Instead of sleeping, each sender ends with a marker that every client receives: the
//! server queues one sender's messages to one connection in order, so once a client has
//! the marker it has everything that sender meant for it (and anything it should not get).

mod common;

use std::collections::HashMap;

use common::TestServer;
use common::hub::{HubClient, assert_timestamp, str_field};
use serde_json::{Value, json};

/// A server with the message rate limit off (these tests send hundreds of messages).
fn server() -> TestServer {
    TestServer::start_with(|c| c.hub.rate_limit_enabled = false)
}

/// Reads `client`'s messages until it holds the end marker of every sender in `senders`;
/// returns the chats and privates before them (presence events are left out).
fn collect_until_markers(client: &mut HubClient, senders: &[&str]) -> Vec<Value> {
    let mut waiting: Vec<&str> = senders.to_vec();
    let mut got = Vec::new();
    while !waiting.is_empty() {
        let message = client.next_skipping(&["presence", "ack"]);
        if message["payload"]["end"] == true {
            let sender = str_field(&message, "sender_id");
            let before = waiting.len();
            waiting.retain(|s| *s != sender);
            assert_eq!(
                waiting.len() + 1,
                before,
                "{}: marker twice: {message}",
                client.user_id
            );
        } else {
            got.push(message);
        }
    }
    got
}

/// Sends the end marker: a global chat every connection receives.
fn send_marker(sender: &mut HubClient) {
    sender.chat(None, json!({"end": true}), None);
}

/// Asserts `got` holds exactly the messages `0..count` of `sender`, in order, each once,
/// each with type `kind` and room `room` (`Value::Null` for none).
fn assert_sequence(who: &str, got: &[Value], sender: &str, count: u64, kind: &str, room: &Value) {
    let seqs: Vec<u64> = got
        .iter()
        .filter(|m| m["sender_id"] == sender)
        .map(|m| {
            assert_eq!((&m["type"], &m["room"]), (&json!(kind), room), "{who}: {m}");
            m["payload"]["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("{who}: {m}"))
        })
        .collect();
    let expected: Vec<u64> = (0..count).collect();
    assert_eq!(seqs, expected, "{who}: messages from {sender}");
}

// A global chat goes to every connection on /ws (the sender included), once each, in the
// order it was sent; the `ack` counts every local recipient.
#[test]
fn global_broadcast_reaches_every_client_once_in_order() {
    const CLIENTS: usize = 60;
    const MESSAGES: u64 = 200;
    let server = server();
    let mut clients: Vec<HubClient> = (0..CLIENTS)
        .map(|i| HubClient::connect(&server, &format!("g{i}")))
        .collect();
    let guest = HubClient::open(&server, "/ws");
    assert!(
        guest.user_id.starts_with("guest-"),
        "assigned id: {}",
        guest.user_id
    );

    let sender = &mut clients[7];
    for seq in 0..MESSAGES {
        sender.chat(None, json!({"seq": seq}), Some(json!(seq)));
    }
    send_marker(sender);

    clients.push(guest);
    for client in &mut clients {
        let who = client.user_id.clone();
        let got = collect_until_markers(client, &["g7"]);
        assert_sequence(&who, &got, "g7", MESSAGES, "chat", &Value::Null);
        assert_eq!(got.len() as u64, MESSAGES, "{who}: nothing else arrived");
        for message in &got {
            assert_timestamp(message);
        }
    }
    let _guest = clients.pop().expect("the guest, still connected");

    // The sender's acks were skipped above; check them on a fresh request.
    let sender = &mut clients[7];
    sender.chat(None, json!("last"), Some(json!("last-id")));
    assert_eq!(sender.expect("chat")["payload"], "last");
    let ack = sender.expect("ack");
    assert_eq!(ack["id"], "last-id", "{ack}");
    assert_eq!(
        ack["delivered"],
        CLIENTS + 1,
        "every connection, sender and guest included"
    );
}

// Room chats from two senders at once: members of a room get its messages (once, in order),
// members of both rooms get both streams, and clients in neither room get nothing but the
// markers.
#[test]
fn room_broadcast_reaches_members_only_once_in_order() {
    const MESSAGES: u64 = 150;
    let server = server();
    // 30 in room a only, 20 in b only, 15 in both, 15 in neither: 80 clients.
    let mut clients: Vec<(HubClient, bool, bool)> = (0..80)
        .map(|i| {
            let mut client = HubClient::connect(&server, &format!("r{i}"));
            let (in_a, in_b) = (i < 30 || (50..65).contains(&i), (30..65).contains(&i));
            if in_a {
                client.join("a");
            }
            if in_b {
                client.join("b");
            }
            (client, in_a, in_b)
        })
        .collect();
    server.wait_for_hub(80, 80, 2);

    // r0 sends to a, r30 sends to b, interleaved on the wire.
    for seq in 0..MESSAGES {
        clients[0].0.chat(Some("a"), json!({"seq": seq}), None);
        clients[30].0.chat(Some("b"), json!({"seq": seq}), None);
    }
    send_marker(&mut clients[0].0);
    send_marker(&mut clients[30].0);

    for (client, in_a, in_b) in &mut clients {
        let who = client.user_id.clone();
        let got = collect_until_markers(client, &["r0", "r30"]);
        let from_a = if *in_a { MESSAGES } else { 0 };
        let from_b = if *in_b { MESSAGES } else { 0 };
        assert_sequence(&who, &got, "r0", from_a, "chat", &json!("a"));
        assert_sequence(&who, &got, "r30", from_b, "chat", &json!("b"));
        assert_eq!(
            got.len() as u64,
            from_a + from_b,
            "{who}: nothing else arrived"
        );
    }
}

// The `ack` of a room chat counts the room's connections, and a member who left the room
// gets nothing more from it.
#[test]
fn room_ack_counts_members_and_a_leaver_stops_receiving() {
    let server = server();
    let mut members: Vec<HubClient> = (0..5)
        .map(|i| HubClient::connect(&server, &format!("m{i}")))
        .collect();
    for member in &mut members {
        member.join("room");
    }
    let left = members[4].leave("room");
    assert_eq!(left["members"], 4, "{left}");

    members[0].chat(Some("room"), json!({"seq": 0}), Some(json!("c1")));
    send_marker(&mut members[0]);
    let own = members[0].next_skipping(&["presence"]);
    assert_eq!(
        (&own["type"], &own["payload"]["seq"]),
        (&json!("chat"), &json!(0)),
        "{own}"
    );
    let ack = members[0].expect("ack");
    assert_eq!(
        (&ack["id"], &ack["delivered"]),
        (&json!("c1"), &json!(4)),
        "{ack}"
    );
    assert!(collect_until_markers(&mut members[0], &["m0"]).is_empty());
    for member in &mut members[1..4] {
        let who = member.user_id.clone();
        let got = collect_until_markers(member, &["m0"]);
        assert_sequence(&who, &got, "m0", 1, "chat", &json!("room"));
    }
    let got = collect_until_markers(&mut members[4], &["m0"]);
    assert!(
        got.is_empty(),
        "the leaver still got room messages: {got:?}"
    );
}

// A private message reaches every connection of its recipient (two tabs), and neither the
// sender nor any other user; the sender's `ack` counts the recipient's connections.
#[test]
fn private_message_reaches_all_connections_of_the_recipient_only() {
    let server = server();
    let mut alice = HubClient::connect(&server, "alice");
    let mut bob_tabs = [
        HubClient::connect(&server, "bob"),
        HubClient::connect(&server, "bob"),
    ];
    assert_ne!(
        bob_tabs[0].connection_id, bob_tabs[1].connection_id,
        "one id per connection"
    );
    let mut carol = HubClient::connect(&server, "carol");
    let mut others: Vec<HubClient> = (0..20)
        .map(|i| HubClient::connect(&server, &format!("p{i}")))
        .collect();

    for seq in 0..20 {
        alice.send_json(
            &json!({"type": "private", "recipient_id": "bob", "payload": {"seq": seq}, "id": seq}),
        );
    }
    send_marker(&mut alice);

    for tab in &mut bob_tabs {
        let got = collect_until_markers(tab, &["alice"]);
        assert_sequence("bob", &got, "alice", 20, "private", &Value::Null);
        for message in &got {
            assert_eq!(message["recipient_id"], "bob", "{message}");
            assert_timestamp(message);
        }
    }
    for client in others.iter_mut().chain([&mut carol]) {
        let got = collect_until_markers(client, &["alice"]);
        assert!(
            got.is_empty(),
            "{} got a private message for bob: {got:?}",
            client.user_id
        );
    }
    for seq in 0..20 {
        let ack = alice.expect("ack");
        assert_eq!(
            (&ack["id"], &ack["delivered"]),
            (&json!(seq), &json!(2)),
            "{ack}"
        );
    }
    let got = collect_until_markers(&mut alice, &["alice"]);
    assert!(
        got.is_empty(),
        "the sender got its own private message: {got:?}"
    );

    // A user may message their own other tab: both of bob's connections get it.
    bob_tabs[1].send_json(&json!({"type": "private", "recipient_id": "bob", "payload": "self"}));
    for tab in &mut bob_tabs {
        let message = tab.expect("private");
        assert_eq!(
            (&message["sender_id"], &message["payload"]),
            (&json!("bob"), &json!("self"))
        );
    }
}

// A delivered message carries type, payload, sender_id, timestamp and room; the payload is
// the sender's JSON byte for byte (spacing and key order kept), whatever its type.
#[test]
fn delivered_messages_carry_their_fields_and_the_payload_untouched() {
    let server = server();
    let mut alice = HubClient::connect(&server, "alice");
    let mut bob = HubClient::connect(&server, "bob");
    alice.join("lobby");
    bob.join("lobby");
    assert_eq!(alice.expect("presence")["user_id"], "bob");

    let payloads = [
        r#"{"b": 2,  "a":1, "nested": [true, null, 1.5e3]}"#,
        "null",
        "\"text\"",
        "[ ]",
        "-0.25",
    ];
    for payload in payloads {
        alice.send_text(&format!(
            r#"{{"type":"chat","room":"lobby","payload":{payload}}}"#
        ));
        for client in [&mut alice, &mut bob] {
            let text = client.next_text();
            assert!(
                text.ends_with(&format!(r#""payload":{payload}}}"#)),
                "payload changed: {text}"
            );
            let message: Value = serde_json::from_str(&text).expect("JSON");
            let fields: HashMap<&str, &Value> = message
                .as_object()
                .expect("object")
                .iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect();
            assert_eq!(fields["type"], "chat");
            assert_eq!(fields["room"], "lobby");
            assert_eq!(fields["sender_id"], "alice");
            assert!(!fields.contains_key("recipient_id"), "{text}");
            assert_timestamp(&message);
        }
    }
    alice.send_text(r#"{"type":"private","recipient_id":"bob","payload":{"k": [1,2]}}"#);
    let text = bob.next_text();
    assert!(text.ends_with(r#""payload":{"k": [1,2]}}"#), "{text}");
    let message: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        (
            &message["type"],
            &message["recipient_id"],
            &message["sender_id"]
        ),
        (&json!("private"), &json!("bob"), &json!("alice"))
    );
    assert!(message.get("room").is_none(), "{text}");
    assert_timestamp(&message);
}
