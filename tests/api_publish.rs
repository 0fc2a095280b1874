//! Loopback tests of `POST /api/publish` delivering: a room publish reaches that room's
//! members only, a user publish every connection of that user only, a broadcast every
//! connection; batches deliver each message in order; `Expect: 100-continue` gets its
//! interim answer before the body is sent; delivered messages carry the same envelope as
//! client messages, the payload byte for byte.
//!
//! "Only" is proven without sleeping: after the publish under test, an end marker is
//! broadcast through the API, and every client's next message must be that marker (the
//! server queues messages to one connection in the order it accepted them).

mod common;

use common::api::{self, KEY, assert_nothing_else, json_of, publish, until_marker};
use common::hub::{HubClient, assert_timestamp};
use common::{Client, TestServer};
use serde_json::{Value, json};

/// A server with the publish API on (one key) and the message rate limit off.
fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.api.keys = vec![KEY.to_owned()];
        c.hub.rate_limit_enabled = false;
    })
}

/// The next message that is not presence; it must be a `kind` message from the server.
fn expect_published(client: &mut HubClient, kind: &str) -> Value {
    let message = client.next_skipping(&["presence"]);
    assert_eq!(message["type"], kind, "{}: {message}", client.user_id);
    assert_eq!(message["sender_id"], "server", "{message}");
    assert_timestamp(&message);
    message
}

#[test]
fn a_room_publish_reaches_its_members_only() {
    let server = server();
    let mut alice = HubClient::connect(&server, "alice");
    let mut bob = HubClient::connect(&server, "bob");
    let mut carol = HubClient::connect(&server, "carol");
    let mut dave = HubClient::connect(&server, "dave");
    alice.join("orders-42");
    bob.join("orders-42");
    carol.join("orders-43");

    // The payload is not re-serialized: spacing, key order and number forms survive.
    let payload = r#"{"title":"Shipped", "n":1.50,"body":"\u00e9"}"#;
    let body = format!(r#"{{"room":"orders-42","type":"notification","payload":{payload}}}"#);
    let response = api::post(server.addr, Some(KEY), &body);
    assert_eq!(response.status, 200, "{response:?}");
    let answer = json_of(&response);
    assert_eq!(answer["delivered"], 2, "{answer}");
    let offset = answer["offset"].as_u64().expect("history is on: an offset");
    assert_eq!(
        answer.as_object().map(|o| o.len()),
        Some(2),
        "only delivered and offset: {answer}"
    );

    for member in [&mut alice, &mut bob] {
        let text = loop {
            let text = member.next_text();
            if !text.contains(r#""type":"presence""#) {
                break text;
            }
        };
        assert!(
            text.contains(&format!(r#""payload":{payload}"#)),
            "payload byte for byte: {text}"
        );
        let message: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(message["type"], "notification", "{message}");
        assert_eq!(message["room"], "orders-42", "{message}");
        assert_eq!(message["sender_id"], "server", "{message}");
        assert_eq!(message["offset"], offset, "{message}");
        assert_eq!(message["recipient_id"], Value::Null, "{message}");
        assert_timestamp(&message);
    }
    assert_nothing_else(
        server.addr,
        1,
        &mut [&mut alice, &mut bob, &mut carol, &mut dave],
    );
}

#[test]
fn a_publish_to_an_empty_room_delivers_to_nobody_but_is_accepted() {
    let server = server();
    let mut watcher = HubClient::connect(&server, "watcher");
    watcher.join("elsewhere");
    let answer = publish(server.addr, &json!({"room": "nobody-here", "payload": 1}));
    assert_eq!(answer["delivered"], 0, "{answer}");
    assert!(answer["offset"].is_u64(), "still kept in history: {answer}");
    assert_nothing_else(server.addr, 1, &mut [&mut watcher]);
}

#[test]
fn a_user_publish_reaches_every_connection_of_that_user_only() {
    let server = server();
    let mut tabs: Vec<HubClient> = (0..3).map(|_| HubClient::connect(&server, "u1")).collect();
    tabs[0].join("shared");
    let mut other = HubClient::connect(&server, "u2");
    other.join("shared");

    let body = json!({"user_id": "u1", "type": "job.done", "payload": {"job": 7}});
    let answer = publish(server.addr, &body);
    assert_eq!(
        answer,
        json!({"delivered": 3, "offset": 1}),
        "numbered in the user's inbox"
    );
    for tab in &mut tabs {
        let message = expect_published(tab, "job.done");
        assert_eq!(message["recipient_id"], "u1", "{message}");
        assert_eq!(message["payload"], json!({"job": 7}), "{message}");
        assert_eq!(message["room"], Value::Null, "{message}");
    }
    let mut everyone: Vec<&mut HubClient> = tabs.iter_mut().collect();
    everyone.push(&mut other);
    assert_nothing_else(server.addr, 1, &mut everyone);

    // A user with no connection: accepted, delivered to nobody, kept in their inbox for a
    // `sync` when they connect.
    let absent = publish(server.addr, &json!({"user_id": "u3", "payload": 1}));
    assert_eq!(absent, json!({"delivered": 0, "offset": 1}));
}

#[test]
fn a_broadcast_reaches_every_connection() {
    let server = server();
    let mut clients: Vec<HubClient> = (0..5)
        .map(|i| HubClient::connect(&server, &format!("b{i}")))
        .collect();
    clients.push(HubClient::connect(&server, "b0"));
    clients.push(HubClient::open(&server, "/ws"));
    clients[1].join("room-a");

    let answer = publish(server.addr, &json!({"payload": "maintenance at 5"}));
    assert_eq!(
        answer,
        json!({"delivered": 7, "offset": 1}),
        "the broadcast feed's first"
    );
    for client in &mut clients {
        let message = expect_published(client, "notification");
        assert_eq!(message["payload"], "maintenance at 5", "{message}");
        assert_eq!(
            (&message["room"], &message["recipient_id"]),
            (&Value::Null, &Value::Null),
            "{message}"
        );
    }
    let mut everyone: Vec<&mut HubClient> = clients.iter_mut().collect();
    assert_nothing_else(server.addr, 1, &mut everyone);
}

#[test]
fn a_batch_delivers_each_message_in_order_and_answers_per_message() {
    let server = server();
    let mut ann = HubClient::connect(&server, "ann");
    let mut ben = HubClient::connect(&server, "ben");
    ann.join("ops");

    let batch = json!({"messages": [
        {"room": "ops", "type": "alert", "payload": 1},
        {"user_id": "ben", "payload": 2},
        {"payload": 3},
        {"room": "ops", "payload": 4},
    ]});
    let answer = publish(server.addr, &batch);
    assert_eq!(answer["delivered"], 1 + 1 + 2 + 1, "{answer}");
    assert_eq!(
        answer.get("offset"),
        None,
        "no single offset for a batch: {answer}"
    );
    let items = answer["messages"].as_array().expect("per message results");
    let delivered: Vec<&Value> = items.iter().map(|i| &i["delivered"]).collect();
    assert_eq!(delivered, [&json!(1), &json!(1), &json!(2), &json!(1)]);
    let (first, last) = (items[0]["offset"].as_u64(), items[3]["offset"].as_u64());
    assert!(
        first.is_some() && last == first.map(|o| o + 1),
        "room messages get consecutive offsets: {answer}"
    );
    assert_eq!(items[1]["offset"], 1, "ben's inbox: {answer}");
    assert_eq!(items[2]["offset"], 1, "the broadcast feed: {answer}");

    api::send_marker(server.addr, 1);
    let got = until_marker(&mut ann, 1);
    let ann_payloads: Vec<&Value> = got.iter().map(|m| &m["payload"]).collect();
    assert_eq!(ann_payloads, [&json!(1), &json!(3), &json!(4)], "{got:?}");
    assert_eq!(got[0]["type"], "alert");
    let got = until_marker(&mut ben, 1);
    let ben_payloads: Vec<&Value> = got.iter().map(|m| &m["payload"]).collect();
    assert_eq!(ben_payloads, [&json!(2), &json!(3)], "{got:?}");
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = server();
    let mut member = HubClient::connect(&server, "m");
    member.join("r");
    let body = json!({"room": "r", "payload": "after continue"}).to_string();

    let mut client = Client::connect(server.addr);
    let head = api::head(Some(KEY), &body).set("Expect", "100-continue");
    client.send(&head.to_bytes());
    let interim = client.read_response();
    assert_eq!(interim.status, 100, "{interim:?}");
    client.send(body.as_bytes());
    let response = client.read_response();
    client.expect_eof();
    assert_eq!(json_of(&response)["delivered"], 1, "{response:?}");
    assert_eq!(
        expect_published(&mut member, "notification")["payload"],
        "after continue"
    );

    // A refused head gets its refusal at once, never a 100: the body need not be sent.
    let mut refused = Client::connect(server.addr);
    let head = api::head(Some("wrong-key"), &body).set("Expect", "100-continue");
    refused.send(&head.to_bytes());
    let answer = refused.read_response();
    assert_eq!(answer.status, 401, "{answer:?}");
    refused.expect_eof();
    assert_nothing_else(server.addr, 1, &mut [&mut member]);
}

#[test]
fn the_sender_id_is_configurable_and_any_listed_key_works() {
    let server = TestServer::start_with(|c| {
        c.api.keys = vec!["first-key".into(), KEY.to_owned()];
        c.api.sender_id = "backend".into();
    });
    let mut client = HubClient::connect(&server, "x");
    for (n, key) in ["first-key", KEY].into_iter().enumerate() {
        let response = api::post(server.addr, Some(key), r#"{"payload":{}}"#);
        let answer = json!({"delivered": 1, "offset": n + 1});
        assert_eq!(json_of(&response), answer, "key {key}");
        let message = client.expect("notification");
        assert_eq!(message["sender_id"], "backend", "{message}");
    }
}

#[test]
fn room_names_follow_the_configured_length_limit() {
    let server = TestServer::start_with(|c| {
        c.api.keys = vec![KEY.to_owned()];
        c.hub.max_room_name_len = 100;
    });
    let long = "r".repeat(90);
    let mut client = HubClient::connect(&server, "long");
    client.join(&long);
    let answer = publish(server.addr, &json!({"room": long, "payload": 1}));
    assert_eq!(answer["delivered"], 1, "{answer}");
    assert_eq!(expect_published(&mut client, "notification")["room"], long);

    let too_long = json!({"room": "r".repeat(101), "payload": 1}).to_string();
    let response = api::post(server.addr, Some(KEY), &too_long);
    api::assert_refused(&response, 400, "bad_request", "`room`");
}

#[test]
fn a_request_split_across_many_writes_is_assembled() {
    let server = server();
    let mut member = HubClient::connect(&server, "m");
    member.join("r");
    let body = json!({"room": "r", "payload": {"split": "byte by byte"}}).to_string();
    let mut bytes = api::head(Some(KEY), &body).to_bytes();
    bytes.extend_from_slice(body.as_bytes());
    let mut client = Client::connect(server.addr);
    client.send_bytewise(&bytes);
    let response = client.read_response();
    client.expect_eof();
    assert_eq!(json_of(&response)["delivered"], 1, "{response:?}");
    let message = expect_published(&mut member, "notification");
    assert_eq!(message["payload"], json!({"split": "byte by byte"}));

    // A large body (many reads of the server's 64 KiB chunk) in one write.
    let big = "b".repeat(30_000);
    let items: Vec<Value> = (0..20)
        .map(|i| json!({"room": "r", "payload": {"i": i, "big": big}}))
        .collect();
    let answer = publish(server.addr, &json!({"messages": items}));
    assert_eq!(answer["delivered"], 20, "{}", answer["delivered"]);
    for i in 0..20 {
        assert_eq!(member.expect("notification")["payload"]["i"], i);
    }
}

#[test]
fn a_room_publish_is_kept_in_history_at_the_offset_it_answers() {
    let server = server();
    let mut client = HubClient::connect(&server, "late");
    let joined = client.join("orders");
    let epoch = joined["epoch"].as_str().expect("history is on").to_owned();
    let before = joined["offset"].as_u64().expect("an offset");
    client.leave("orders");

    let answer = publish(
        server.addr,
        &json!({"room": "orders", "payload": "while away"}),
    );
    assert_eq!(answer["delivered"], 0, "{answer}");
    assert_eq!(answer["offset"], before + 1, "{answer}");

    let since = json!({"offset": before, "epoch": epoch});
    client.send_json(&json!({"type": "join", "room": "orders", "since": since}));
    let rejoined = client.expect("joined");
    assert_eq!(rejoined["recovered"], true, "{rejoined}");
    let replayed = expect_published(&mut client, "notification");
    assert_eq!(
        (&replayed["payload"], &replayed["offset"]),
        (&json!("while away"), &answer["offset"]),
        "{replayed}"
    );
}
