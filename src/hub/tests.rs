//! Hub tests without sockets: connections are ids, the clock is fixed, replies are decoded
//! from the outbox.

use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;
use crate::protocol::{Decoded, FrameHeader};

fn now() -> Now {
    thread_local!(static START: Instant = Instant::now());
    Now {
        wall: UNIX_EPOCH + Duration::from_millis(1_795_737_599_999),
        mono: START.with(|s| *s),
    }
}

fn id(n: u32) -> ConnId {
    ConnId::new(n, 1)
}

/// A hub plus an outbox, with helpers that return what each connection received.
struct Harness {
    hub: Hub,
    out: Outbox,
}

impl Harness {
    fn new() -> Self {
        let config = HubConfig {
            rate_limit_enabled: false,
            ..HubConfig::default()
        };
        Self {
            hub: Hub::new(config),
            out: Outbox::default(),
        }
    }

    fn connect(&mut self, n: u32, user: &str) {
        self.hub.connect(id(n), user, now(), &mut self.out);
        self.take();
    }

    fn send(&mut self, n: u32, request: Value) -> Vec<(u32, Value)> {
        self.hub
            .on_text(id(n), &request.to_string(), now(), &mut self.out);
        self.take()
    }

    fn send_raw(&mut self, n: u32, text: &str) -> Vec<(u32, Value)> {
        self.hub.on_text(id(n), text, now(), &mut self.out);
        self.take()
    }

    /// Drains the outbox into (connection, JSON) pairs, sorted by connection.
    fn take(&mut self) -> Vec<(u32, Value)> {
        let mut got: Vec<(u32, Value)> = self
            .out
            .sends
            .drain(..)
            .map(|(to, frame)| {
                let Ok(Decoded::Complete(_, n)) = FrameHeader::decode(&frame) else {
                    panic!("bad frame")
                };
                (
                    to.index() as u32,
                    serde_json::from_slice(&frame[n..]).expect("JSON"),
                )
            })
            .collect();
        got.sort_by_key(|(to, _)| *to);
        got
    }
}

fn types(got: &[(u32, Value)]) -> Vec<(u32, &str)> {
    got.iter()
        .map(|(to, v)| (*to, v["type"].as_str().unwrap_or("?")))
        .collect()
}

#[test]
fn welcome_names_user_and_connection() {
    let mut h = Harness::new();
    h.hub.connect(id(3), "42", now(), &mut h.out);
    let got = h.take();
    assert_eq!(got[0].1["type"], "welcome");
    assert_eq!(got[0].1["user_id"], "42");
    assert_eq!(got[0].1["connection_id"], id(3).to_string());
    assert_eq!(got[0].1["timestamp"], "2026-11-26T23:59:59.999Z");
}

#[test]
fn join_acks_with_members_and_tells_others() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    h.connect(2, "bob");
    h.send(1, json!({"type":"join","room":"lobby"}));
    let got = h.send(2, json!({"type":"join","room":"lobby","id":"j1"}));
    assert_eq!(types(&got), [(1, "presence"), (2, "joined")]);
    assert_eq!(got[0].1["user_id"], "bob");
    assert_eq!(got[0].1["action"], "join");
    assert_eq!(got[1].1["members"], 2);
    assert_eq!(got[1].1["users"], json!(["alice", "bob"]));
    assert_eq!(got[1].1["id"], "j1");
}

#[test]
fn room_chat_reaches_members_only_with_envelope() {
    let mut h = Harness::new();
    for (n, user) in [(1, "a"), (2, "b"), (3, "c")] {
        h.connect(n, user);
    }
    h.send(1, json!({"type":"join","room":"r"}));
    h.send(2, json!({"type":"join","room":"r"}));
    let got = h.send(
        1,
        json!({"type":"chat","room":"r","payload":{"text":"hi","n":[1,2]}}),
    );
    assert_eq!(types(&got), [(1, "chat"), (2, "chat")]);
    let msg = &got[1].1;
    assert_eq!(msg["room"], "r");
    assert_eq!(msg["sender_id"], "a");
    assert_eq!(msg["payload"], json!({"text":"hi","n":[1,2]}));
    assert_eq!(msg["timestamp"], "2026-11-26T23:59:59.999Z");
}

#[test]
fn broadcast_reaches_everyone_once_and_is_encoded_once() {
    let mut h = Harness::new();
    for n in 1..=50 {
        h.connect(n, &format!("u{n}"));
    }
    h.hub.on_text(
        id(7),
        r#"{"type":"chat","payload":"all"}"#,
        now(),
        &mut h.out,
    );
    assert_eq!(h.out.sends.len(), 50);
    let first = h.out.sends[0].1.clone();
    assert!(
        h.out
            .sends
            .iter()
            .all(|(_, f)| std::rc::Rc::ptr_eq(f, &first)),
        "one shared frame"
    );
    let got = h.take();
    let recipients: Vec<u32> = got.iter().map(|(to, _)| *to).collect();
    assert_eq!(recipients, (1..=50).collect::<Vec<_>>());
}

#[test]
fn private_reaches_every_connection_of_the_user_only() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    h.connect(2, "bob");
    h.connect(3, "bob");
    h.connect(4, "carol");
    let got = h.send(
        1,
        json!({"type":"private","recipient_id":"bob","payload":"psst","id":5}),
    );
    assert_eq!(types(&got), [(1, "ack"), (2, "private"), (3, "private")]);
    assert_eq!(got[0].1["delivered"], 2);
    assert_eq!(got[1].1["recipient_id"], "bob");
    assert_eq!(got[1].1["sender_id"], "alice");
}

#[test]
fn every_bad_request_gets_its_error_code() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    let cases: Vec<(&str, &str)> = vec![
        ("not json", "invalid_json"),
        ("[]", "invalid_json"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (r#"{"room":"r"}"#, "invalid_field"),
        (r#"{"type":"join","room":7}"#, "invalid_field"),
        (r#"{"type":"chat"}"#, "invalid_field"),
        (r#"{"type":"join","room":"no spaces"}"#, "invalid_room"),
        (
            r#"{"type":"chat","room":"elsewhere","payload":1}"#,
            "not_member",
        ),
        (r#"{"type":"leave","room":"elsewhere"}"#, "not_member"),
        (
            r#"{"type":"private","recipient_id":"nobody","payload":1}"#,
            "recipient_not_connected",
        ),
    ];
    for (text, code) in cases {
        let got = h.send_raw(1, text);
        assert_eq!(got.len(), 1, "{text}");
        assert_eq!(got[0].1["type"], "error", "{text}");
        assert_eq!(got[0].1["code"], code, "{text}");
        assert!(got[0].1["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let big = format!(r#"{{"type":"chat","payload":"{}"}}"#, "x".repeat(70_000));
    assert_eq!(h.send_raw(1, &big)[0].1["code"], "message_too_large");
    h.hub.on_binary(id(1), now(), &mut h.out);
    assert_eq!(h.take()[0].1["code"], "binary_not_supported");
}

#[test]
fn error_echoes_the_request_id() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    let got = h.send(1, json!({"type":"leave","room":"x","id":"req-9"}));
    assert_eq!(got[0].1["id"], "req-9");
}

#[test]
fn limits_are_errors_not_disconnects() {
    let mut h = Harness::new();
    h.hub = Hub::new(HubConfig {
        max_rooms_per_connection: 2,
        max_members_per_room: 1,
        rate_limit_enabled: false,
        ..HubConfig::default()
    });
    h.connect(1, "a");
    h.connect(2, "b");
    h.send(1, json!({"type":"join","room":"r1"}));
    h.send(1, json!({"type":"join","room":"r2"}));
    assert_eq!(
        h.send(1, json!({"type":"join","room":"r3"}))[0].1["code"],
        "limit_exceeded"
    );
    assert_eq!(
        h.send(2, json!({"type":"join","room":"r1"}))[0].1["code"],
        "limit_exceeded"
    );
    // Joining a room one is already in is idempotent, even at the limit.
    assert_eq!(
        h.send(1, json!({"type":"join","room":"r1"}))[0].1["type"],
        "joined"
    );
}

#[test]
fn disconnect_cleans_up_and_announces() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    h.connect(2, "bob");
    h.send(1, json!({"type":"join","room":"r"}));
    h.send(2, json!({"type":"join","room":"r"}));
    h.send(2, json!({"type":"join","room":"solo"}));
    h.hub.disconnect(id(2), now(), &mut h.out);
    let got = h.take();
    assert_eq!(types(&got), [(1, "presence")]);
    assert_eq!(got[0].1["action"], "leave");
    assert_eq!(got[0].1["members"], 1);
    assert_eq!(
        h.hub.counts(),
        HubCounts {
            connections: 1,
            users: 1,
            rooms: 1
        }
    );
    h.hub.disconnect(id(1), now(), &mut h.out);
    assert_eq!(h.hub.counts(), HubCounts::default());
    // Messages for a gone connection are ignored, not a panic.
    h.hub
        .on_text(id(1), r#"{"type":"chat","payload":1}"#, now(), &mut h.out);
    assert!(h.out.is_empty());
}

#[test]
fn counts_return_to_zero_after_many_cycles() {
    let mut h = Harness::new();
    for cycle in 0..10_000u32 {
        let n = cycle % 7;
        h.hub
            .connect(id(n), &format!("user{}", cycle % 13), now(), &mut h.out);
        h.hub.on_text(
            id(n),
            &format!(r#"{{"type":"join","room":"room{}"}}"#, cycle % 5),
            now(),
            &mut h.out,
        );
        h.hub.disconnect(id(n), now(), &mut h.out);
        h.out.sends.clear();
    }
    assert_eq!(h.hub.counts(), HubCounts::default());
}

#[test]
fn leave_acks_and_removes_empty_rooms() {
    let mut h = Harness::new();
    h.connect(1, "a");
    h.send(1, json!({"type":"join","room":"r"}));
    let got = h.send(1, json!({"type":"leave","room":"r","id":1}));
    assert_eq!(types(&got), [(1, "left")]);
    assert_eq!(got[0].1["members"], 0);
    assert_eq!(h.hub.counts().rooms, 0);
}

#[test]
fn rate_limit_drops_with_retry_after_then_closes_abusers() {
    let mut h = Harness::new();
    h.hub = Hub::new(HubConfig {
        rate_limit: crate::ratelimit::Rate {
            capacity: 3.0,
            refill_per_sec: 1.0,
        },
        abuse_strikes: 4,
        ..HubConfig::default()
    });
    h.connect(1, "spammer");
    h.connect(2, "spammer");
    h.connect(3, "bystander");
    let chat = json!({"type":"chat","payload":"x"});
    for _ in 0..3 {
        assert_eq!(
            h.send(1, chat.clone()).len(),
            3,
            "within the burst: delivered to all"
        );
    }
    // The bucket is per user: the same user's other connection is limited too.
    let got = h.send(2, chat.clone());
    assert_eq!(types(&got), [(2, "error")]);
    assert_eq!(got[0].1["code"], "rate_limited");
    assert_eq!(got[0].1["retry_after_ms"], 1000);
    // Another user is unaffected.
    assert_eq!(h.send(3, chat.clone()).len(), 3);
    for _ in 0..2 {
        assert_eq!(h.send(1, chat.clone())[0].1["code"], "rate_limited");
    }
    h.hub.on_text(id(1), &chat.to_string(), now(), &mut h.out);
    assert_eq!(h.out.closes.len(), 1, "the fourth strike in a row closes");
    assert_eq!(
        h.out.closes[0].code,
        crate::protocol::CloseCode::POLICY_VIOLATION
    );
    assert_eq!(h.out.closes[0].to, id(1));
    // A second later one token is back.
    h.out.closes.clear();
    let later = Now {
        mono: now().mono + Duration::from_millis(1001),
        ..now()
    };
    h.hub.on_text(id(1), &chat.to_string(), later, &mut h.out);
    assert_eq!(h.take().len(), 3);
}

#[test]
fn room_messages_carry_offsets_and_join_since_replays_the_gap() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    h.connect(2, "bob");
    let joined = h.send(1, json!({"type":"join","room":"r"}));
    assert_eq!(joined[0].1["offset"], 0);
    let epoch = joined[0].1["epoch"].as_str().expect("epoch").to_owned();
    for n in 1..=5 {
        let got = h.send(1, json!({"type":"chat","room":"r","payload":n}));
        assert_eq!(got[0].1["offset"], n);
        assert_eq!(got[0].1["epoch"], epoch.as_str());
    }
    // A broadcast is numbered in the broadcast feed, apart from the room.
    let broadcast = h.send(1, json!({"type":"chat","payload":0}));
    assert_eq!(broadcast[0].1["offset"], 1);
    assert_ne!(broadcast[0].1["epoch"], epoch.as_str());
    let got = h.send(
        2,
        json!({"type":"join","room":"r","since":{"offset":2,"epoch":epoch}}),
    );
    let kinds: Vec<&str> = got
        .iter()
        .map(|(_, v)| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["presence", "joined", "chat", "chat", "chat"]);
    let mine: Vec<&Value> = got
        .iter()
        .filter(|(to, _)| *to == 2)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(mine[0]["recovered"], true);
    assert_eq!(mine[0]["offset"], 5);
    let replayed: Vec<i64> = mine[1..]
        .iter()
        .map(|v| v["payload"].as_i64().unwrap())
        .collect();
    assert_eq!(replayed, [3, 4, 5]);
    // Live messages continue from there.
    let live = h.send(1, json!({"type":"chat","room":"r","payload":6}));
    assert!(live.iter().all(|(_, v)| v["offset"] == 6));
}

#[test]
fn join_since_an_unknown_epoch_is_not_recovered() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    h.send(1, json!({"type":"join","room":"r"}));
    h.send(1, json!({"type":"chat","room":"r","payload":1}));
    h.connect(2, "bob");
    let got = h.send(
        2,
        json!({"type":"join","room":"r","since":{"offset":1,"epoch":"not-this-one"}}),
    );
    let ack = got.iter().find(|(to, _)| *to == 2).map(|(_, v)| v).unwrap();
    assert_eq!(ack["recovered"], false);
    assert_eq!(
        got.iter()
            .filter(|(to, v)| *to == 2 && v["type"] == "chat")
            .count(),
        0
    );
}

#[test]
fn history_off_means_no_offsets() {
    let mut h = Harness::new();
    let config = HubConfig {
        rate_limit_enabled: false,
        history: crate::hub::history::HistoryConfig {
            size: 0,
            ..Default::default()
        },
        ..HubConfig::default()
    };
    h.hub = Hub::new(config);
    h.connect(1, "alice");
    let joined = h.send(
        1,
        json!({"type":"join","room":"r","since":{"offset":1,"epoch":"e"}}),
    );
    assert!(joined[0].1.get("offset").is_none() && joined[0].1.get("recovered").is_none());
    let got = h.send(1, json!({"type":"chat","room":"r","payload":1}));
    assert!(got[0].1.get("offset").is_none());
}

/// Private messages are numbered in the recipient's inbox, broadcasts in the broadcast
/// feed; `sync` with `since` replays what a connection missed there, like `join` does for a
/// room, and each feed is its own: alice's inbox is not bob's.
#[test]
fn feeds_are_numbered_and_sync_replays_what_was_missed() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    h.connect(2, "bob");
    let synced = h.send(2, json!({"type":"sync","feed":"private","id":"s"}));
    assert_eq!(synced.len(), 1, "{synced:?}");
    let start = &synced[0].1;
    assert_eq!(
        (
            &start["type"],
            &start["feed"],
            &start["id"],
            &start["offset"]
        ),
        (&json!("synced"), &json!("private"), &json!("s"), &json!(0)),
        "{start}"
    );
    assert!(
        start.get("recovered").is_none(),
        "no since, nothing recovered"
    );
    let epoch = start["epoch"].as_str().expect("an epoch").to_owned();
    for n in 1..=4 {
        let got = h.send(
            1,
            json!({"type":"private","recipient_id":"bob","payload":n}),
        );
        let to_bob: Vec<&Value> = got
            .iter()
            .filter(|(to, _)| *to == 2)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(to_bob[0]["offset"], n, "{got:?}");
        assert_eq!(to_bob[0]["epoch"], epoch.as_str());
    }
    // bob kept offset 1; he gets 2, 3, 4 back, after `synced`.
    let since = json!({"offset":1,"epoch":epoch});
    let got = h.send(2, json!({"type":"sync","feed":"private","since":since}));
    assert_eq!(got[0].1["type"], "synced");
    assert_eq!(got[0].1["recovered"], true);
    assert_eq!(got[0].1["offset"], 4);
    let replayed: Vec<&Value> = got[1..].iter().map(|(_, v)| &v["payload"]).collect();
    assert_eq!(replayed, [&json!(2), &json!(3), &json!(4)]);
    assert!(
        got[1..]
            .iter()
            .all(|(to, v)| *to == 2 && v["type"] == "private")
    );
    // An epoch the server never had: not recovered, nothing replayed.
    let unknown = json!({"offset":1,"epoch":"nope"});
    let got = h.send(2, json!({"type":"sync","feed":"private","since":unknown}));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["recovered"], false);
    // alice's inbox is hers alone: empty.
    let got = h.send(1, json!({"type":"sync","feed":"private"}));
    assert_eq!(got[0].1["offset"], 0);
    // The broadcasts are one feed for everyone.
    h.send(1, json!({"type":"chat","payload":"all-1"}));
    h.send(1, json!({"type":"chat","payload":"all-2"}));
    let got = h.send(2, json!({"type":"sync","feed":"broadcast"}));
    assert_eq!(got[0].1["offset"], 2);
    let since = json!({"offset":1,"epoch":got[0].1["epoch"]});
    let got = h.send(2, json!({"type":"sync","feed":"broadcast","since":since}));
    assert_eq!(got[0].1["recovered"], true);
    assert_eq!(got[1].1["payload"], "all-2");
    assert_eq!(got.len(), 2);
}

#[test]
fn sync_names_only_its_two_feeds() {
    let mut h = Harness::new();
    h.connect(1, "alice");
    for bad in [json!({"type":"sync"}), json!({"type":"sync","feed":"~all"})] {
        let got = h.send(1, bad.clone());
        assert_eq!(got[0].1["type"], "error", "{bad}");
        assert_eq!(got[0].1["code"], "invalid_field", "{bad}");
    }
}
