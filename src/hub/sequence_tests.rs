//! The gap check on bus messages, without sockets or Redis: a member on a clustered hub
//! gets every room message once, in offset order, and a `reset` where a gap is lost.

use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{Value, json};

use super::publish::OwnedTarget;
use super::remote::{Fetched, RemoteMessage};
use super::request::Since;
use super::*;
use crate::protocol::{Decoded, FrameHeader};

fn now() -> Now {
    Now {
        wall: UNIX_EPOCH + Duration::from_millis(1_795_737_599_999),
        mono: Instant::now(),
    }
}

/// A clustered hub with one member in room `r`.
fn hub() -> (Hub, Outbox) {
    let mut hub = Hub::new(HubConfig {
        rate_limit_enabled: false,
        ..HubConfig::default()
    });
    hub.set_bus(true);
    let mut out = Outbox::default();
    hub.connect(ConnId::new(1, 1), "m", now(), &mut out);
    settle_feeds(&mut hub, &mut out);
    hub.on_text(
        ConnId::new(1, 1),
        &json!({"type": "join", "room": "r"}).to_string(),
        now(),
        &mut out,
    );
    // The first member's join waits for the room's roster (nobody else anywhere).
    assert_eq!(out.rosters, ["r"]);
    hub.finish_roster("r", Some(&[]), now(), &mut out);
    out.sends.clear();
    // The first member's join asked Redis for the room's position: none yet.
    assert_eq!(out.catch_ups.len(), 1, "the join asks for the position");
    out.catch_ups.clear();
    hub.finish_catch_up("r", &since(0, ""), Some(position_only("", 0)), &mut out);
    (hub, out)
}

/// A connection's first arrival asks Redis where its inbox and the broadcasts stand:
/// answers "empty" for both.
fn settle_feeds(hub: &mut Hub, out: &mut Outbox) {
    let asked: Vec<CatchUp> = out.catch_ups.drain(..).collect();
    assert!(
        !asked.is_empty(),
        "the inbox, and the broadcasts if new here"
    );
    for catch_up in asked {
        assert!(catch_up.position_only);
        hub.finish_catch_up(
            &catch_up.room,
            &catch_up.since,
            Some(position_only("", 0)),
            out,
        );
    }
}

/// The streams being caught up, sorted.
fn caught_up(out: &Outbox) -> Vec<&str> {
    let mut keys: Vec<&str> = out.catch_ups.iter().map(|c| c.room.as_str()).collect();
    keys.sort_unstable();
    keys
}

/// What Redis answers when only the room's position is asked for.
fn position_only(epoch: &str, last: u64) -> Fetched {
    Fetched {
        epoch: epoch.into(),
        last,
        entries: Vec::new(),
    }
}

fn fetched(epoch: &str, last: u64, offsets: std::ops::RangeInclusive<u64>) -> Fetched {
    Fetched {
        epoch: epoch.into(),
        last,
        entries: offsets.map(|o| message(o, epoch)).collect(),
    }
}

fn message(offset: u64, epoch: &str) -> RemoteMessage {
    RemoteMessage {
        kind: "chat".into(),
        target: OwnedTarget::Room("r".into()),
        sender: "s".into(),
        timestamp: "t".into(),
        at_ms: 0,
        position: Some((offset, epoch.into())),
        payload: offset.to_string(),
    }
}

/// What the member got: `n` for a message at offset n, `reset:o` for a reset.
fn got(out: &mut Outbox) -> Vec<String> {
    out.sends
        .drain(..)
        .map(|(_, frame)| {
            let Ok(Decoded::Complete(_, n)) = FrameHeader::decode(&frame) else {
                panic!("bad frame")
            };
            let v: Value = serde_json::from_slice(&frame[n..]).expect("JSON");
            match v["type"].as_str() {
                Some("reset") => format!("reset:{}:{}", v["epoch"].as_str().unwrap(), v["offset"]),
                _ => v["offset"].to_string(),
            }
        })
        .collect()
}

fn since(offset: u64, epoch: &str) -> Since {
    Since {
        offset,
        epoch: epoch.into(),
    }
}

#[test]
fn in_order_messages_pass_and_duplicates_are_dropped() {
    let (mut hub, mut out) = hub();
    for offset in [1, 2, 2, 1, 3] {
        hub.on_remote(&message(offset, "e"), &mut out);
    }
    assert_eq!(got(&mut out), ["1", "2", "3"]);
    assert!(out.catch_ups.is_empty());
}

#[test]
fn a_gap_holds_messages_until_it_is_read_from_redis() {
    let (mut hub, mut out) = hub();
    hub.on_remote(&message(1, "e"), &mut out);
    hub.on_remote(&message(4, "e"), &mut out);
    hub.on_remote(&message(5, "e"), &mut out);
    assert_eq!(got(&mut out), ["1"], "4 and 5 wait");
    assert_eq!(out.catch_ups[0].since, since(1, "e"));
    out.catch_ups.clear();
    // The read failed (Redis away): still waiting, asked again when the publisher is back.
    hub.finish_catch_up("r", &since(1, "e"), None, &mut out);
    assert!(got(&mut out).is_empty());
    hub.retry_gaps(&mut out);
    assert_eq!(out.catch_ups.len(), 1);
    let fetched = Fetched {
        epoch: "e".into(),
        last: 5,
        entries: (2..=5).map(|o| message(o, "e")).collect(),
    };
    hub.finish_catch_up("r", &since(1, "e"), Some(fetched), &mut out);
    assert_eq!(
        got(&mut out),
        ["2", "3", "4", "5"],
        "no duplicate of 4 and 5"
    );
    hub.on_remote(&message(6, "e"), &mut out);
    assert_eq!(got(&mut out), ["6"]);
}

#[test]
fn a_gap_that_was_trimmed_away_is_announced() {
    let (mut hub, mut out) = hub();
    hub.on_remote(&message(1, "e"), &mut out);
    hub.on_remote(&message(9, "e"), &mut out);
    let fetched = Fetched {
        epoch: "e".into(),
        last: 9,
        entries: (7..=9).map(|o| message(o, "e")).collect(),
    };
    hub.finish_catch_up("r", &since(1, "e"), Some(fetched), &mut out);
    assert_eq!(got(&mut out), ["1", "reset:e:6", "7", "8", "9"]);
}

#[test]
fn a_new_epoch_is_announced() {
    let (mut hub, mut out) = hub();
    hub.on_remote(&message(1, "e"), &mut out);
    hub.on_remote(&message(2, "f"), &mut out);
    let fetched = Fetched {
        epoch: "f".into(),
        last: 2,
        entries: (1..=2).map(|o| message(o, "f")).collect(),
    };
    hub.finish_catch_up("r", &since(1, "e"), Some(fetched), &mut out);
    assert_eq!(got(&mut out), ["1", "reset:f:0", "1", "2"]);
}

#[test]
fn after_a_lost_subscription_every_room_with_members_catches_up() {
    let (mut hub, mut out) = hub();
    hub.on_remote(&message(1, "e"), &mut out);
    got(&mut out);
    hub.catch_up_all(&mut out);
    assert_eq!(
        caught_up(&out),
        ["r", "~all", "~u/m"],
        "the room and both feeds"
    );
    let fetched = Fetched {
        epoch: "e".into(),
        last: 3,
        entries: (2..=3).map(|o| message(o, "e")).collect(),
    };
    hub.finish_catch_up("r", &since(1, "e"), Some(fetched), &mut out);
    assert_eq!(got(&mut out), ["2", "3"], "the tail nobody followed");
}

/// A hub whose member joined while the position was being asked for.
fn joining() -> (Hub, Outbox) {
    let mut hub = Hub::new(HubConfig::default());
    hub.set_bus(true);
    let mut out = Outbox::default();
    hub.connect(ConnId::new(1, 1), "m", now(), &mut out);
    settle_feeds(&mut hub, &mut out);
    let join = json!({"type": "join", "room": "r"}).to_string();
    hub.on_text(ConnId::new(1, 1), &join, now(), &mut out);
    hub.finish_roster("r", Some(&[]), now(), &mut out);
    out.sends.clear();
    assert_eq!(out.catch_ups[0].since, since(0, ""));
    out.catch_ups.clear();
    (hub, out)
}

#[test]
fn the_first_join_learns_the_position_so_an_early_loss_is_a_gap() {
    let (mut hub, mut out) = joining();
    hub.finish_catch_up("r", &since(0, ""), Some(position_only("e", 3)), &mut out);
    // 4 and 5 were lost on the way; 6 is the first message this node sees.
    hub.on_remote(&message(6, "e"), &mut out);
    assert!(got(&mut out).is_empty());
    assert_eq!(out.catch_ups[0].since, since(3, "e"));
    hub.finish_catch_up("r", &since(3, "e"), Some(fetched("e", 6, 4..=6)), &mut out);
    assert_eq!(got(&mut out), ["4", "5", "6"]);
}

#[test]
fn messages_arriving_while_the_position_is_asked_for_are_kept() {
    let (mut hub, mut out) = joining();
    hub.on_remote(&message(4, "e"), &mut out);
    hub.on_remote(&message(5, "e"), &mut out);
    assert!(got(&mut out).is_empty(), "held");
    // Redis answers after both were published: they are still delivered.
    hub.finish_catch_up("r", &since(0, ""), Some(position_only("e", 5)), &mut out);
    assert_eq!(got(&mut out), ["4", "5"]);
}

#[test]
fn a_message_read_with_the_position_but_still_on_the_bus_is_delivered() {
    let (mut hub, mut out) = joining();
    // Redis had appended 1 and 2 when it answered, but the bus had not brought them yet.
    hub.finish_catch_up("r", &since(0, ""), Some(position_only("e", 2)), &mut out);
    for offset in [1, 2, 2, 3] {
        hub.on_remote(&message(offset, "e"), &mut out);
    }
    assert_eq!(got(&mut out), ["1", "2", "3"]);
}

#[test]
fn a_room_empty_when_asked_notices_a_loss_before_its_first_message() {
    // hub(): Redis had nothing for the room when the member joined. 1 and 2 are lost on
    // the way; 3 is the first message this node sees.
    let (mut hub, mut out) = hub();
    hub.on_remote(&message(3, "e"), &mut out);
    assert!(got(&mut out).is_empty(), "3 waits");
    assert_eq!(out.catch_ups[0].since, since(0, ""));
    assert!(!out.catch_ups[0].position_only, "the stream from its start");
    hub.finish_catch_up("r", &since(0, ""), Some(fetched("e", 3, 1..=3)), &mut out);
    assert_eq!(got(&mut out), ["1", "2", "3"], "no reset: nothing is lost");
}

#[test]
fn the_tail_of_a_room_that_was_empty_is_caught_up_after_a_lost_subscription() {
    let (mut hub, mut out) = hub();
    // The subscription dropped before the room's first message: nothing arrived here.
    hub.catch_up_all(&mut out);
    assert_eq!(
        caught_up(&out),
        ["r", "~all", "~u/m"],
        "nothing arrived yet"
    );
    assert_eq!(out.catch_ups[0].since, since(0, ""));
    hub.finish_catch_up("r", &since(0, ""), Some(fetched("e", 2, 1..=2)), &mut out);
    assert_eq!(got(&mut out), ["1", "2"]);
}

#[test]
fn a_room_empty_when_asked_reports_no_position_on_join() {
    let (mut hub, mut out) = hub();
    hub.connect(ConnId::new(2, 1), "n", now(), &mut out);
    out.sends.clear();
    let join = json!({"type": "join", "room": "r"}).to_string();
    hub.on_text(ConnId::new(2, 1), &join, now(), &mut out);
    let (_, frame) = out.sends.first().expect("joined");
    let Ok(Decoded::Complete(_, n)) = FrameHeader::decode(frame) else {
        panic!("bad frame")
    };
    let joined: Value = serde_json::from_slice(&frame[n..]).expect("JSON");
    assert_eq!(joined["type"], "joined");
    assert!(joined.get("epoch").is_none(), "{joined}");
    assert!(joined.get("offset").is_none(), "{joined}");
}

#[test]
fn a_position_read_while_the_bus_dropped_is_followed_by_a_reset() {
    let (mut hub, mut out) = joining();
    // The subscription drops and comes back before Redis answers: messages 1-3 may have
    // been published after the join and lost on the way.
    hub.catch_up_all(&mut out);
    assert!(
        !out.catch_ups.iter().any(|c| c.room == "r"),
        "the read in flight covers the room"
    );
    hub.finish_catch_up("r", &since(0, ""), Some(position_only("e", 3)), &mut out);
    hub.on_remote(&message(4, "e"), &mut out);
    assert_eq!(got(&mut out), ["reset:e:3", "4"]);
}

#[test]
fn a_position_read_with_the_bus_up_needs_no_reset() {
    let (mut hub, mut out) = joining();
    hub.finish_catch_up("r", &since(0, ""), Some(position_only("e", 3)), &mut out);
    hub.on_remote(&message(4, "e"), &mut out);
    assert_eq!(got(&mut out), ["4"]);
}

/// What each connection got: `(connection index, offset)` of every room message.
fn got_by_conn(out: &mut Outbox) -> Vec<(u32, u64)> {
    out.sends
        .drain(..)
        .filter_map(|(to, frame)| {
            let Ok(Decoded::Complete(_, n)) = FrameHeader::decode(&frame) else {
                panic!("bad frame")
            };
            let v: Value = serde_json::from_slice(&frame[n..]).expect("JSON");
            v["offset"]
                .as_u64()
                .filter(|_| v["type"] == "chat")
                .map(|o| (to.index() as u32, o))
        })
        .collect()
}

/// A member whose recovery was read from Redis while the node itself was still filling a
/// gap must not get the replayed messages a second time when the gap is filled.
#[test]
fn a_replay_past_an_open_gap_is_not_delivered_twice() {
    let (mut hub, mut out) = hub();
    for offset in 1..=5 {
        hub.on_remote(&message(offset, "e"), &mut out);
    }
    // 6 and 7 are lost on the way here; 8 opens a gap after 5.
    hub.on_remote(&message(8, "e"), &mut out);
    out.sends.clear();
    out.catch_ups.clear();
    // A second member joins with since 6 (they saw it on another node): this node's copy
    // stops at 5, so the join reads Redis, which already has 7 and 8.
    let n = ConnId::new(2, 1);
    hub.connect(n, "n", now(), &mut out);
    settle_feeds(&mut hub, &mut out);
    let join = json!({"type": "join", "room": "r", "since": {"offset": 6, "epoch": "e"}});
    hub.on_text(n, &join.to_string(), now(), &mut out);
    let fetch = out.fetches.pop().expect("the join reads Redis");
    hub.finish_fetch(n, "r", &fetch.since, Some(fetched("e", 8, 7..=8)), &mut out);
    assert_eq!(got_by_conn(&mut out), [(2, 7), (2, 8)], "the replay");
    // The node's gap is filled: the first member gets 6-8, the second nothing twice.
    hub.finish_catch_up("r", &since(5, "e"), Some(fetched("e", 8, 6..=8)), &mut out);
    assert_eq!(got_by_conn(&mut out), [(1, 6), (1, 7), (1, 8)]);
    hub.on_remote(&message(9, "e"), &mut out);
    let mut live = got_by_conn(&mut out);
    live.sort_unstable();
    assert_eq!(live, [(1, 9), (2, 9)], "then both, live");
}

/// The same when no gap is open: Redis is simply ahead of the bus (messages on their way to
/// this node while the join read the stream). Those must reach the member once.
#[test]
fn a_replay_ahead_of_the_bus_is_not_delivered_twice() {
    let (mut hub, mut out) = hub();
    for offset in 1..=5 {
        hub.on_remote(&message(offset, "e"), &mut out);
    }
    out.sends.clear();
    let n = ConnId::new(2, 1);
    hub.connect(n, "n", now(), &mut out);
    settle_feeds(&mut hub, &mut out);
    // n saw up to 7 on another node; Redis already has 8; this node has delivered 5.
    let join = json!({"type": "join", "room": "r", "since": {"offset": 7, "epoch": "e"}});
    hub.on_text(n, &join.to_string(), now(), &mut out);
    let fetch = out.fetches.pop().expect("the join reads Redis");
    hub.finish_fetch(n, "r", &fetch.since, Some(fetched("e", 8, 8..=8)), &mut out);
    assert_eq!(got_by_conn(&mut out), [(2, 8)], "the replay");
    for offset in 6..=9 {
        hub.on_remote(&message(offset, "e"), &mut out);
    }
    let mut got = got_by_conn(&mut out);
    got.sort_unstable();
    assert_eq!(got, [(1, 6), (1, 7), (1, 8), (1, 9), (2, 9)]);
}
