//! Loopback tests of the hub's limits, each with its defined outcome: request size
//! (`message_too_large`, connection kept) against WebSocket message size (close 1009); room
//! name and `?user_id=` validation (`invalid_room`, HTTP 400); rooms per connection and
//! members per room (`limit_exceeded`); connections per user (HTTP 429); the per-user message
//! rate limit (`rate_limited` with `retry_after_ms`, then 1008 after `abuse_strikes`).

mod common;

use common::hub::{HubClient, str_field};
use common::{FIN, OP_CONT, OP_TEXT, Request, TestServer};
use serde_json::{Value, json};
use wsloop::ratelimit::Rate;

/// A chat request whose text is exactly `len` bytes long (padding in the payload string).
fn chat_of_len(len: usize, id: &str) -> String {
    let empty = format!(r#"{{"type":"chat","payload":"","id":"{id}"}}"#);
    let pad = "p".repeat(len.checked_sub(empty.len()).expect("len fits the envelope"));
    let text = format!(r#"{{"type":"chat","payload":"{pad}","id":"{id}"}}"#);
    assert_eq!(text.len(), len);
    text
}

// `hub.max_message_bytes` (64 KiB by default) is the largest request the hub parses: at the
// limit it is served, one byte over it (or anything up to the WebSocket limit of 1 MiB) gets
// `message_too_large`, and the connection stays open.
#[test]
fn requests_over_the_hub_limit_get_an_error_and_the_connection_stays_open() {
    let server = TestServer::start_with(|c| c.hub.rate_limit_enabled = false);
    assert_eq!(
        wsloop::hub::HubConfig::default().max_message_bytes,
        64 * 1024
    );
    let mut client = HubClient::connect(&server, "big");

    let at_limit = chat_of_len(64 * 1024, "at-limit");
    client.send_text(&at_limit);
    let echoed: Value = serde_json::from_str(&at_limit).expect("JSON");
    assert_eq!(client.expect("chat")["payload"], echoed["payload"]);
    assert_eq!(client.expect("ack")["id"], "at-limit");

    for len in [64 * 1024 + 1, 300 * 1024, 1 << 20] {
        client.send_text(&chat_of_len(len, "over"));
        let error = client.expect_error("message_too_large");
        assert!(
            str_field(&error, "message").contains("65536"),
            "names the limit: {error}"
        );
    }
    client.chat(None, json!("still here"), Some(json!(1)));
    assert_eq!(client.expect("chat")["payload"], "still here");
    assert_eq!(client.expect("ack")["id"], 1);
}

// A WebSocket message over `hub_limits.max_message` (1 MiB) is refused by the protocol
// layer with close 1009 (§7.4.1), whether it comes as one frame or as fragments.
#[test]
fn websocket_message_over_one_mebibyte_is_closed_with_1009() {
    let server = TestServer::start_with(|c| c.hub.rate_limit_enabled = false);
    let mut single = HubClient::connect(&server, "single");
    single.raw().send_text(&chat_of_len((1 << 20) + 1, "x"));
    single.expect_close(1009);

    let mut fragmented = HubClient::connect(&server, "fragmented");
    let text = chat_of_len(1_200_000, "y");
    let (first, second) = text.as_bytes().split_at(600_000);
    fragmented.raw().send_frame(OP_TEXT, first);
    fragmented.raw().send_frame(FIN | OP_CONT, second);
    fragmented.expect_close(1009);

    let stats = server.wait_for_hub(0, 0, 0);
    assert_eq!(stats["close_sent"]["1009"], 2, "{stats}");
}

// Room names are 1-64 characters of `A-Z a-z 0-9 _ - . : @`; anything else is refused with
// `invalid_room` on join and on a room chat, and no room is created.
#[test]
fn room_names_are_validated() {
    let server = TestServer::start_with(|c| c.hub.rate_limit_enabled = false);
    let mut client = HubClient::connect(&server, "rooms");
    let longest = "x".repeat(64);
    for room in ["lobby", "user:42", "a.b-c_d@e", "A-Z", "0", &longest] {
        assert_eq!(client.join(room)["members"], 1, "{room}");
    }
    let too_long = "x".repeat(65);
    for room in [
        "",
        " ",
        "has space",
        "ümlaut",
        "semi;colon",
        "slash/",
        "tab\t",
        "new\nline",
        "q\"uote",
        &too_long,
    ] {
        client.send_json(&json!({"type": "join", "room": room, "id": room}));
        assert_eq!(client.expect_error("invalid_room")["id"], room);
        client.send_json(&json!({"type": "chat", "room": room, "payload": 1}));
        client.expect_error("invalid_room");
    }
    server.wait_for_hub(1, 1, 6);
}

// `?user_id=` must be 1-64 printable ASCII characters without spaces once percent-decoded;
// otherwise the handshake is refused with 400 and no connection joins the hub.
#[test]
fn invalid_user_ids_are_refused_with_400() {
    let server = TestServer::start_with(|c| c.hub.rate_limit_enabled = false);
    let longest = "u".repeat(64);
    for (query, user) in [
        ("alice", "alice"),
        ("alice%40example.com", "alice@example.com"),
        ("%7Ba%7D", "{a}"),
        (longest.as_str(), longest.as_str()),
    ] {
        let client = HubClient::open(&server, &format!("/ws?user_id={query}"));
        assert_eq!(client.user_id, user, "?user_id={query}");
    }
    let too_long = "u".repeat(65);
    let mut wrong = Vec::new();
    for query in [
        "",
        "has%20space",
        "a+b",
        "%C3%BC",
        "%00",
        "%7F",
        "tab%09",
        "%FF",
        "%E2%82",
        too_long.as_str(),
    ] {
        let mut client = server.connect();
        client.send(&Request::upgrade(&format!("/ws?user_id={query}")).to_bytes());
        let response = client.read_response();
        if response.status != 400 {
            wrong.push(format!("?user_id={query} -> {}", response.status));
        }
    }
    assert!(
        wrong.is_empty(),
        "invalid user ids not refused with 400: {wrong:?}"
    );
    let stats = server.wait_for_hub(0, 0, 0);
    assert_eq!(stats["rejected"]["400"], 10, "{stats}");
}

// `max_rooms_per_connection` and `max_members_per_room` end in `limit_exceeded` (with the
// request's id), and the refused join changes nothing.
#[test]
fn room_limits_answer_limit_exceeded() {
    let server = TestServer::start_with(|c| {
        c.hub.rate_limit_enabled = false;
        c.hub.max_rooms_per_connection = 2;
        c.hub.max_members_per_room = 2;
    });
    let mut a = HubClient::connect(&server, "a");
    a.join("one");
    a.join("two");
    a.send_text(r#"{"type":"join","room":"three","id":"third"}"#);
    assert_eq!(a.expect_error("limit_exceeded")["id"], "third");
    assert_eq!(
        a.join("two")["members"],
        1,
        "re-joining a room it is in is not a new room"
    );

    let mut b = HubClient::connect(&server, "b");
    b.join("one");
    let mut c = HubClient::connect(&server, "c");
    c.send_text(r#"{"type":"join","room":"one","id":9}"#);
    assert_eq!(c.expect_error("limit_exceeded")["id"], 9);
    assert_eq!(
        a.expect("presence")["user_id"],
        "b",
        "c's refused join is not announced"
    );
    a.chat(Some("one"), json!("members only"), Some(json!("n")));
    a.expect("chat");
    assert_eq!(a.expect("ack")["delivered"], 2, "c is not a member");
    server.wait_for_hub(3, 3, 2);
}

// `max_connections_per_user` refuses the user's next handshake with 429 and `Retry-After`;
// other users are not affected, and a closed connection frees its slot.
#[test]
fn connections_per_user_over_the_limit_get_429() {
    let server = TestServer::start_with(|c| c.max_connections_per_user = 2);
    let _first = HubClient::connect(&server, "many");
    let second = HubClient::connect(&server, "many");
    let mut third = server.connect();
    third.send(&Request::upgrade("/ws?user_id=many").to_bytes());
    let response = third.read_response();
    assert_eq!(response.status, 429, "{response:?}");
    assert!(response.header("Retry-After").is_some(), "{response:?}");
    third.expect_eof();
    let _other = HubClient::connect(&server, "someone-else");

    second.close();
    server.wait_for_hub(2, 2, 0);
    let again = HubClient::connect(&server, "many");
    assert_eq!(again.user_id, "many");
    let stats = server.stats();
    assert_eq!(stats["rejected"]["429"], 1, "{stats}");
}

/// Sends `count` global chats with ids `first..`; returns each reply (ack or error) in order.
fn burst(client: &mut HubClient, first: u64, count: u64) -> Vec<Value> {
    let mut frames = Vec::new();
    for id in first..first + count {
        let text = json!({"type": "chat", "payload": id, "id": id}).to_string();
        frames.extend(common::frame(FIN | OP_TEXT, text.as_bytes()));
    }
    client.raw().send(&frames); // One write: the server reads the burst at once.
    (0..count)
        .map(|_| client.next_skipping(&["chat"]))
        .collect()
}

// The default rate limit is a burst of 10 per user: in a pipelined burst of 12, exactly 10
// are served and 2 get `rate_limited` with a `retry_after_ms` of at most one refill (1 s).
#[test]
fn default_rate_limit_allows_a_burst_of_ten() {
    let server = TestServer::start();
    let mut client = HubClient::connect(&server, "bursty");
    let replies = burst(&mut client, 0, 12);
    let kinds: Vec<&str> = replies.iter().map(|r| str_field(r, "type")).collect();
    assert_eq!(
        kinds,
        [["ack"; 10].as_slice(), &["error"; 2]].concat(),
        "{replies:?}"
    );
    for error in &replies[10..] {
        assert_eq!(error["code"], "rate_limited", "{error}");
        let retry = error["retry_after_ms"].as_u64().unwrap_or(0);
        assert!(
            (1..=1000).contains(&retry),
            "retry_after_ms {retry}: {error}"
        );
    }
}

/// A server whose users get `capacity` messages and (practically) no refill.
fn tight_rate_server(capacity: f64, abuse_strikes: u32) -> TestServer {
    TestServer::start_with(|c| {
        c.hub.rate_limit = Rate {
            capacity,
            refill_per_sec: 0.001,
        };
        c.hub.abuse_strikes = abuse_strikes;
    })
}

// The budget is per user, over all of the user's connections; other users keep theirs.
#[test]
fn rate_limit_is_shared_by_a_users_connections() {
    let server = tight_rate_server(2.0, 100);
    let mut tab1 = HubClient::connect(&server, "shared");
    let mut tab2 = HubClient::connect(&server, "shared");
    let mut other = HubClient::connect(&server, "other");
    assert_eq!(burst(&mut tab1, 0, 1)[0]["type"], "ack");
    assert_eq!(burst(&mut tab2, 1, 1)[0]["type"], "ack");
    let limited = burst(&mut tab1, 2, 1).remove(0);
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    let retry = limited["retry_after_ms"].as_u64().unwrap_or(0);
    assert!(retry > 900_000, "one token per 1000 s: {limited}");
    assert_eq!(burst(&mut tab2, 3, 1)[0]["code"], "rate_limited");
    assert_eq!(
        burst(&mut other, 4, 2)
            .iter()
            .filter(|r| r["type"] == "ack")
            .count(),
        2
    );
}

// `abuse_strikes` rate-limited messages in a row close the sending connection with 1008
// "rate limit exceeded"; the user's other connection stays open.
#[test]
fn repeated_rate_limit_violations_close_with_1008() {
    let server = tight_rate_server(1.0, 3);
    let mut spammer = HubClient::connect(&server, "spammer");
    let mut other_tab = HubClient::connect(&server, "spammer");
    let mut friend = HubClient::connect(&server, "friend");
    assert_eq!(burst(&mut spammer, 0, 1)[0]["type"], "ack");
    assert_eq!(other_tab.expect("chat")["payload"], 0);
    assert_eq!(friend.expect("chat")["payload"], 0);
    let replies = burst(&mut spammer, 1, 2);
    assert!(
        replies.iter().all(|r| r["code"] == "rate_limited"),
        "strikes 1 and 2: {replies:?}"
    );
    spammer.send_json(&json!({"type": "chat", "payload": "third strike"}));
    assert_eq!(spammer.expect_close(1008), "rate limit exceeded");

    server.wait_for_hub(2, 2, 0);
    friend.chat(None, json!("still there?"), None);
    assert_eq!(other_tab.expect("chat")["payload"], "still there?");
    assert_eq!(friend.expect("chat")["payload"], "still there?");
}

// The `id` of a rate-limited request is echoed in its `rate_limited` error, like every
// other error reply, so a client can tell which message was dropped and retry it.
#[test]
fn rate_limited_error_echoes_the_request_id() {
    let server = tight_rate_server(1.0, 100);
    let mut client = HubClient::connect(&server, "limited");
    let replies = burst(&mut client, 0, 2);
    assert_eq!(replies[0]["type"], "ack");
    assert_eq!(replies[1]["code"], "rate_limited", "{}", replies[1]);
    assert_eq!(
        replies[1]["id"], 1,
        "the dropped request's id: {}",
        replies[1]
    );
}

// Binary frames are messages too: they draw on the same per-user budget, so a flood of them
// is answered with `rate_limited` (and ends in the abuse close) like a flood of text.
#[test]
fn binary_frames_count_against_the_rate_limit() {
    let server = tight_rate_server(2.0, 100);
    let mut client = HubClient::connect(&server, "binary-flood");
    let mut frames = Vec::new();
    for _ in 0..3 {
        frames.extend(common::frame(FIN | common::OP_BINARY, b"\x00"));
    }
    client.raw().send(&frames);
    let codes: Vec<Value> = (0..3)
        .map(|_| client.expect("error")["code"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            json!("binary_not_supported"),
            json!("binary_not_supported"),
            json!("rate_limited")
        ],
        "the third frame is over the budget of 2"
    );
}
