//! Loopback tests of the `/ws` request/reply protocol: the client's `id` echoed in
//! `joined`, `left`, `ack` and `error`; presence events when a user (not a tab) joins or
//! leaves a room; an `error` with its stable code for every kind of bad request, after
//! which the connection stays open; binary frames refused with an error, not a close.

mod common;

use common::TestServer;
use common::hub::{HubClient, assert_timestamp, str_field};
use serde_json::{Value, json};

fn server() -> TestServer {
    TestServer::start_with(|c| c.hub.rate_limit_enabled = false)
}

/// Sends a global chat from `from` that every connection receives; asserts `clients` get it
/// as their next message (so nothing else was queued for them before it).
fn marker(from: &mut HubClient, clients: &mut [&mut HubClient], tag: &str) {
    from.chat(None, json!({"marker": tag}), None);
    for client in clients.iter_mut() {
        let next = client.next_json();
        assert_eq!(
            next["payload"]["marker"], tag,
            "{}: unexpected {next}",
            client.user_id
        );
    }
    assert_eq!(from.expect("chat")["payload"]["marker"], tag);
}

// The request id is echoed verbatim (strings, numbers, exponent notation kept) in `joined`,
// `left`, `ack` and `error`; a request without an id gets no `ack`.
#[test]
fn request_ids_are_echoed_in_every_reply() {
    let server = server();
    let mut client = HubClient::connect(&server, "ids");

    client.send_text(r#"{"type":"join","room":"r","id":"j-1"}"#);
    let joined = client.expect("joined");
    assert_eq!(
        (&joined["id"], &joined["members"], &joined["users"]),
        (&json!("j-1"), &json!(1), &json!(["ids"]))
    );
    client.send_text(r#"{"type":"join","room":"r","id":2}"#);
    let again = client.expect("joined");
    assert_eq!(
        (&again["id"], &again["members"]),
        (&json!(2), &json!(1)),
        "joining twice is idempotent"
    );

    client.send_text(r#"{"type":"chat","room":"r","payload":1}"#);
    client.send_text(r#"{"type":"chat","room":"r","payload":2,"id":1e3}"#);
    assert_eq!(client.expect("chat")["payload"], 1);
    assert_eq!(client.expect("chat")["payload"], 2);
    let ack = client.next_text();
    assert_eq!(
        ack, r#"{"type":"ack","id":1e3,"delivered":1,"offset":2}"#,
        "id echoed verbatim"
    );

    client.send_text(r#"{"type":"private","recipient_id":"ids","payload":"me","id":"p"}"#);
    assert_eq!(client.expect("private")["payload"], "me");
    assert_eq!(client.expect("ack")["id"], "p");

    client.send_text(r#"{"type":"leave","room":"r","id":0}"#);
    let left = client.expect("left");
    assert_eq!(
        (&left["id"], &left["members"]),
        (&json!(0), &json!(0)),
        "{left}"
    );
    client.send_text(r#"{"type":"leave","room":"r","id":"again"}"#);
    assert_eq!(client.expect_error("not_member")["id"], "again");
    client.send_text(r#"{"type":"join","room":"no good","id":-7}"#);
    assert_eq!(client.expect_error("invalid_room")["id"], -7);
    client.send_text(r#"{"type":"join","id":"no-room"}"#);
    assert_eq!(client.expect_error("invalid_field")["id"], "no-room");
}

// Presence goes to the other members when a user's first connection joins a room and when
// its last one leaves it; a second tab joining or leaving is not news to anyone.
#[test]
fn presence_follows_users_not_tabs() {
    let server = server();
    let mut alice = HubClient::connect(&server, "alice");
    let mut bob1 = HubClient::connect(&server, "bob");
    let mut bob2 = HubClient::connect(&server, "bob");
    let mut carol = HubClient::connect(&server, "carol");
    alice.join("r");

    let joined = bob1.join("r");
    assert_eq!(joined["members"], 2, "{joined}");
    let mut users: Vec<Value> = joined["users"].as_array().expect("users").clone();
    users.sort_by_key(|u| u.to_string());
    assert_eq!(users, [json!("alice"), json!("bob")]);
    let presence = alice.expect("presence");
    assert_eq!(
        (
            &presence["room"],
            &presence["user_id"],
            &presence["action"],
            &presence["members"]
        ),
        (&json!("r"), &json!("bob"), &json!("join"), &json!(2)),
        "{presence}"
    );
    assert_timestamp(&presence);

    let joined = bob2.join("r");
    assert_eq!(
        (&joined["members"], &joined["users"]),
        (&json!(2), &json!(["alice", "bob"])),
        "bob's second tab is the same user"
    );
    marker(
        &mut carol,
        &mut [&mut alice, &mut bob1, &mut bob2],
        "second tab joined",
    );

    assert_eq!(
        bob1.leave("r")["members"],
        2,
        "bob is still in through his second tab"
    );
    marker(
        &mut carol,
        &mut [&mut alice, &mut bob1, &mut bob2],
        "first tab left",
    );

    bob2.vanish();
    let presence = alice.expect("presence");
    assert_eq!(
        (
            &presence["user_id"],
            &presence["action"],
            &presence["members"]
        ),
        (&json!("bob"), &json!("leave"), &json!(1)),
        "{presence}"
    );
    marker(&mut carol, &mut [&mut alice, &mut bob1], "last tab gone");

    // An explicit leave of a user's only connection is announced too.
    bob1.join("r");
    assert_eq!(alice.expect("presence")["action"], "join");
    bob1.leave("r");
    let presence = alice.expect("presence");
    assert_eq!(
        (
            &presence["user_id"],
            &presence["action"],
            &presence["members"]
        ),
        (&json!("bob"), &json!("leave"), &json!(1))
    );
    marker(&mut carol, &mut [&mut alice, &mut bob1], "end");
}

// Every malformed or refused request listed by the protocol gets one `error` with its code
// (and the request's id when it could be read); none closes the connection.
#[test]
fn every_bad_request_gets_its_error_and_the_connection_stays_open() {
    let server = server();
    let mut other = HubClient::connect(&server, "other");
    other.join("elsewhere");
    let mut client = HubClient::connect(&server, "client");
    let too_large = format!(
        r#"{{"type":"chat","payload":"{}","id":"big"}}"#,
        "x".repeat(64 * 1024)
    );
    let cases: Vec<(&str, &str, Value)> = vec![
        ("not json", "invalid_json", Value::Null),
        ("", "invalid_json", Value::Null),
        ("[1,2]", "invalid_json", Value::Null),
        ("\"join\"", "invalid_json", Value::Null),
        (r#"{"type":"join","room":"a""#, "invalid_json", Value::Null),
        (
            r#"{"type":"join","room":"a",}"#,
            "invalid_json",
            Value::Null,
        ),
        (r#"{"type":"dance","id":"u1"}"#, "unknown_type", json!("u1")),
        (
            r#"{"type":"JOIN","room":"a","id":"u2"}"#,
            "unknown_type",
            json!("u2"),
        ),
        (r#"{"room":"lobby","id":2}"#, "invalid_field", json!(2)),
        (r#"{"type":5,"id":3}"#, "invalid_field", json!(3)),
        (r#"{"type":null,"id":3.5}"#, "invalid_field", json!(3.5)),
        (r#"{"type":"join","id":4}"#, "invalid_field", json!(4)),
        (
            r#"{"type":"join","room":["a"],"id":5}"#,
            "invalid_field",
            json!(5),
        ),
        (r#"{"type":"leave","id":6}"#, "invalid_field", json!(6)),
        (r#"{"type":"chat","id":7}"#, "invalid_field", json!(7)),
        (
            r#"{"type":"chat","room":7,"payload":1,"id":8}"#,
            "invalid_field",
            json!(8),
        ),
        (
            r#"{"type":"private","payload":1,"id":9}"#,
            "invalid_field",
            json!(9),
        ),
        (
            r#"{"type":"private","recipient_id":42,"payload":1,"id":10}"#,
            "invalid_field",
            json!(10),
        ),
        (
            r#"{"type":"private","recipient_id":"other","id":11}"#,
            "invalid_field",
            json!(11),
        ),
        (
            r#"{"type":"join","room":"a","since":5,"id":12}"#,
            "invalid_field",
            json!(12),
        ),
        (
            r#"{"type":"join","room":"a","id":{"x":1}}"#,
            "invalid_field",
            Value::Null,
        ),
        (
            r#"{"type":"join","room":"a","id":true}"#,
            "invalid_field",
            Value::Null,
        ),
        (
            r#"{"type":"join","room":"has space","id":13}"#,
            "invalid_room",
            json!(13),
        ),
        (
            r#"{"type":"join","room":"","id":14}"#,
            "invalid_room",
            json!(14),
        ),
        (
            r#"{"type":"chat","room":"bad/room","payload":1,"id":15}"#,
            "invalid_room",
            json!(15),
        ),
        (
            r#"{"type":"chat","room":"elsewhere","payload":1,"id":16}"#,
            "not_member",
            json!(16),
        ),
        (
            r#"{"type":"chat","room":"nowhere","payload":1,"id":17}"#,
            "not_member",
            json!(17),
        ),
        (
            r#"{"type":"leave","room":"elsewhere","id":18}"#,
            "not_member",
            json!(18),
        ),
        (
            r#"{"type":"private","recipient_id":"nobody","payload":1,"id":19}"#,
            "recipient_not_connected",
            json!(19),
        ),
        (&too_large, "message_too_large", Value::Null),
        (
            r#"{"type":"refresh","token":"t","id":20}"#,
            "forbidden",
            json!(20),
        ),
    ];
    for (request, code, id) in &cases {
        client.send_text(request);
        let error = client.expect_error(code);
        let shown = &request[..request.len().min(80)];
        assert_eq!(
            error.get("id").unwrap_or(&Value::Null),
            id,
            "id of the reply to {shown}: {error}"
        );
    }
    client.send_text(r#"{"type":"join","room":"elsewhere","id":"still-open"}"#);
    assert_eq!(client.expect("joined")["id"], "still-open");
    assert_eq!(other.expect("presence")["user_id"], "client");
    other.chat(Some("elsewhere"), json!("hello"), None);
    assert_eq!(
        client.expect("chat")["payload"],
        "hello",
        "the connection still receives"
    );
    let stats = server.wait_for_hub(2, 2, 1);
    assert_eq!(
        stats["close_sent"],
        json!({}),
        "no connection was closed: {stats}"
    );
}

// A binary frame on the JSON endpoint (empty, small, or fragmented) gets
// `binary_not_supported` and the connection carries on.
#[test]
fn binary_frames_get_an_error_and_the_connection_stays_open() {
    let server = server();
    let mut client = HubClient::connect(&server, "bin");
    client.raw().send_binary(br#"{"type":"join","room":"r"}"#);
    let error = client.expect_error("binary_not_supported");
    assert!(error.get("id").is_none(), "{error}");
    client.raw().send_binary(b"");
    client.expect_error("binary_not_supported");
    client.raw().send_frame(common::OP_BINARY, &[1, 2, 3]);
    client
        .raw()
        .send_frame(common::FIN | common::OP_CONT, &[4, 5]);
    client.expect_error("binary_not_supported");
    assert_eq!(client.join("r")["members"], 1);
    assert_eq!(str_field(&client.join("r"), "room"), "r");
    client.close();
    server.wait_for_hub(0, 0, 0);
}
