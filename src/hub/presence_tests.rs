//! Cluster-wide presence on one clustered hub, without sockets or Redis: the other nodes
//! are played by roster snapshots and presence notes.

use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::{Value, json};

use super::presence::PresenceNote;
use super::*;
use crate::protocol::{Decoded, FrameHeader};

fn now() -> Now {
    Now {
        wall: UNIX_EPOCH + Duration::from_secs(1_795_737_599),
        mono: Instant::now(),
    }
}

fn id(n: u32) -> ConnId {
    ConnId::new(n, 1)
}

/// What each connection got, as JSON, in order.
fn got(out: &mut Outbox) -> Vec<(ConnId, Value)> {
    out.sends
        .drain(..)
        .map(|(to, frame)| {
            let Ok(Decoded::Complete(_, n)) = FrameHeader::decode(&frame) else {
                panic!("bad frame")
            };
            (to, serde_json::from_slice(&frame[n..]).expect("JSON"))
        })
        .collect()
}

fn clustered(private_messages: PrivatePolicy) -> (Hub, Outbox) {
    let mut hub = Hub::new(HubConfig {
        rate_limit_enabled: false,
        private_messages,
        ..HubConfig::default()
    });
    hub.set_bus(true);
    (hub, Outbox::default())
}

fn connect_and_join(hub: &mut Hub, out: &mut Outbox, conn: ConnId, user: &str, room: &str) {
    hub.connect(conn, user, now(), out);
    let join = json!({"type": "join", "room": room, "id": 1}).to_string();
    hub.on_text(conn, &join, now(), out);
}

fn here(node: &str, user: &str, present: bool) -> PresenceNote {
    PresenceNote::Here {
        node: node.into(),
        room: "r".into(),
        user: user.into(),
        present,
    }
}

/// A clustered hub where alice (conn 1) is in `r`, and node `b` has bob there.
fn alice_here_bob_on_b() -> (Hub, Outbox) {
    let (mut hub, mut out) = clustered(PrivatePolicy::SharedRoom);
    connect_and_join(&mut hub, &mut out, id(1), "alice", "r");
    assert_eq!(
        out.rosters,
        ["r"],
        "the first local member asks for the roster"
    );
    assert_eq!(
        out.presence,
        [PresenceChange {
            room: "r".into(),
            user: "alice".into(),
            present: true
        }]
    );
    let before = got(&mut out);
    assert_eq!(
        before.len(),
        1,
        "only the welcome: joined waits for the roster"
    );
    let snapshot = [("b".to_owned(), vec!["bob".to_owned()])];
    hub.finish_roster("r", Some(&snapshot), now(), &mut out);
    let joined = got(&mut out);
    assert_eq!(joined.len(), 1, "{joined:?}");
    let (to, joined) = &joined[0];
    assert_eq!(*to, id(1));
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["members"], 2);
    assert_eq!(joined["users"], json!(["alice", "bob"]));
    out.presence.clear();
    out.rosters.clear();
    (hub, out)
}

#[test]
fn joined_and_presence_count_every_node() {
    let (mut hub, mut out) = alice_here_bob_on_b();
    hub.on_presence(&here("c", "carol", true), now(), &mut out);
    let sent = got(&mut out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1["action"], "join");
    assert_eq!(sent[0].1["user_id"], "carol");
    assert_eq!(sent[0].1["members"], 3);

    // carol on a second node, then leaving it: she is still on c.
    hub.on_presence(&here("b", "carol", true), now(), &mut out);
    hub.on_presence(&here("b", "carol", false), now(), &mut out);
    assert!(got(&mut out).is_empty(), "no presence for a second node");

    hub.on_presence(&here("c", "carol", false), now(), &mut out);
    let sent = got(&mut out);
    assert_eq!(
        (&sent[0].1["action"], &sent[0].1["members"]),
        (&json!("leave"), &json!(2))
    );
}

#[test]
fn a_user_here_and_elsewhere_arrives_and_leaves_once() {
    let (mut hub, mut out) = alice_here_bob_on_b();
    // bob's connection here: no presence (he is already in the room on b).
    connect_and_join(&mut hub, &mut out, id(2), "bob", "r");
    let sent = got(&mut out);
    assert!(
        sent.iter().all(|(_, m)| m["type"] != "presence"),
        "{sent:?}"
    );
    let joined = &sent.iter().find(|(_, m)| m["type"] == "joined").unwrap().1;
    assert_eq!(joined["members"], 2);
    assert_eq!(
        out.presence.len(),
        1,
        "b's Redis entry is b's; this node adds its own"
    );

    // bob leaves b but is still here: nothing.
    hub.on_presence(&here("b", "bob", false), now(), &mut out);
    assert!(got(&mut out).is_empty());
    // bob leaves here too: gone everywhere.
    hub.disconnect(id(2), now(), &mut out);
    let sent = got(&mut out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, id(1));
    assert_eq!(sent[0].1["action"], "leave");
    assert_eq!(sent[0].1["user_id"], "bob");
    assert_eq!(sent[0].1["members"], 1);
}

#[test]
fn a_dead_node_takes_its_users_away() {
    let (mut hub, mut out) = alice_here_bob_on_b();
    hub.on_presence(&here("b", "dave", true), now(), &mut out);
    got(&mut out);
    hub.on_presence(&PresenceNote::Gone { node: "b".into() }, now(), &mut out);
    let sent = got(&mut out);
    assert_eq!(sent.len(), 1, "one frame for the batch: {sent:?}");
    assert_eq!(sent[0].1["users_left"], 2);
    assert_eq!(sent[0].1["user_ids"], json!(["bob", "dave"]));
    assert_eq!(sent[0].1["members"], 1);
}

#[test]
fn shared_room_counts_users_on_other_nodes() {
    let (mut hub, mut out) = alice_here_bob_on_b();
    let to = |who: &str| json!({"type": "private", "recipient_id": who, "payload": 1}).to_string();
    hub.on_text(id(1), &to("bob"), now(), &mut out);
    assert_eq!(out.bus.len(), 1, "to bob, on b: published");
    assert!(got(&mut out).is_empty());
    hub.on_text(id(1), &to("zoe"), now(), &mut out);
    let sent = got(&mut out);
    assert_eq!(sent[0].1["code"], "forbidden", "{sent:?}");
    assert_eq!(out.bus.len(), 1);
}

#[test]
fn without_redis_the_join_answers_with_what_the_node_knows() {
    let (mut hub, mut out) = clustered(PrivatePolicy::Anyone);
    connect_and_join(&mut hub, &mut out, id(1), "alice", "r");
    got(&mut out);
    hub.finish_roster("r", None, now(), &mut out);
    let sent = got(&mut out);
    assert_eq!(sent[0].1["type"], "joined");
    assert_eq!(sent[0].1["members"], 1);
    assert_eq!(sent[0].1["users"], json!(["alice"]));
}

#[test]
fn messages_arriving_before_the_roster_wait_behind_joined() {
    let (mut hub, mut out) = clustered(PrivatePolicy::Anyone);
    connect_and_join(&mut hub, &mut out, id(1), "alice", "r");
    got(&mut out);
    let message = remote::RemoteMessage {
        kind: "chat".into(),
        target: publish::OwnedTarget::Room("r".into()),
        sender: "bob".into(),
        timestamp: "t".into(),
        at_ms: 0,
        position: None,
        payload: "1".into(),
    };
    hub.on_remote(&message, &mut out);
    assert!(got(&mut out).is_empty(), "held");
    hub.finish_roster("r", Some(&[]), now(), &mut out);
    let kinds: Vec<Value> = got(&mut out)
        .into_iter()
        .map(|(_, m)| m["type"].clone())
        .collect();
    assert_eq!(kinds, ["joined", "chat"]);
}

#[test]
fn the_last_local_member_leaving_stops_the_mirror() {
    let (mut hub, mut out) = alice_here_bob_on_b();
    let leave = json!({"type": "leave", "room": "r"}).to_string();
    hub.on_text(id(1), &leave, now(), &mut out);
    let sent = got(&mut out);
    assert_eq!(sent[0].1["type"], "left");
    assert_eq!(sent[0].1["members"], 1, "bob is still in the room, on b");
    assert_eq!(out.presence.len(), 1);
    assert_eq!(hub.member_count("r"), 0, "no longer mirrored");
    assert!(hub.local_presence().is_empty());
}

#[test]
fn a_reread_after_a_lost_subscription_tells_what_changed() {
    let (mut hub, mut out) = alice_here_bob_on_b();
    // Notes were missed while the subscription was down: bob left b, carol came to c.
    hub.reread_rosters(&mut out);
    assert_eq!(out.rosters, ["r"]);
    let snapshot = [("c".to_owned(), vec!["carol".to_owned()])];
    hub.finish_roster("r", Some(&snapshot), now(), &mut out);
    let mut told: Vec<(String, String, u64)> = got(&mut out)
        .into_iter()
        .map(|(_, m)| {
            let user = m["user_id"].as_str().unwrap_or_default().to_owned();
            let action = m["action"].as_str().unwrap_or_default().to_owned();
            (action, user, m["members"].as_u64().unwrap_or(0))
        })
        .collect();
    told.sort();
    assert_eq!(
        told,
        [
            ("join".into(), "carol".into(), 2),
            ("leave".into(), "bob".into(), 2)
        ]
    );
}
