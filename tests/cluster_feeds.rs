//! Private messages and broadcasts in a cluster keep the rooms' promises: each feed (a
//! user's inbox, the broadcasts) is numbered by Redis, so a node whose subscription drops
//! fills the hole from the feed's stream, and a user who reconnects to another node gets
//! what they missed with `sync` and `since`, each message once and in order.
//!
//! Two nodes on one real `redis-server`; alice publishes on node a, bob reads on node b.

mod cluster;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use cluster::PATIENCE;
use cluster::peer::Peer;
use cluster::procs::TempDir;
use cluster::servers::{Node, Redis};

/// Messages per test: even numbers go to bob privately, odd ones to everyone.
const TOTAL: u64 = 160;

fn nodes(dir: &TempDir, redis: &Redis) -> (Node, Node) {
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[history]\nsize = 1000\n").expect("write the node config");
    let config = config.to_str().expect("a UTF-8 path");
    let node = |id| Node::start_with(dir.path(), id, redis, &[("--config", config)]);
    (node("a"), node("b"))
}

/// Message `n`: a private message to bob when even, a broadcast when odd.
fn request(n: u64) -> Value {
    let id = format!("m-{n}");
    if n.is_multiple_of(2) {
        json!({"type": "private", "recipient_id": "bob", "id": id, "payload": {"n": n}})
    } else {
        json!({"type": "chat", "id": id, "payload": {"n": n}})
    }
}

/// Sends messages `range` from `alice`, each acked before the next; returns the offsets
/// the acks gave, by `n`.
fn send(alice: &mut Peer, range: std::ops::RangeInclusive<u64>) -> BTreeMap<u64, u64> {
    let mut acked = BTreeMap::new();
    for n in range {
        let id = format!("m-{n}");
        alice.send(&request(n));
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(Instant::now() < deadline, "no ack for {id}");
            let Some(answer) = alice.poll(deadline - Instant::now()) else {
                continue;
            };
            if answer["id"] != id.as_str() {
                continue;
            }
            assert_eq!(answer["type"], "ack", "{answer}");
            acked.insert(n, answer["offset"].as_u64().expect("an offset"));
            break;
        }
        // Paced, so the stream outlasts the faults.
        std::thread::sleep(Duration::from_millis(3));
    }
    acked
}

/// What bob got, by feed: `(n, offset, epoch)` of each private message and broadcast, and
/// any `reset`; reads until `last` of both feeds arrived or nothing came for 5 s.
#[derive(Default, Debug)]
struct Got {
    private: Vec<(u64, u64, String)>,
    broadcast: Vec<(u64, u64, String)>,
    resets: Vec<Value>,
}

fn read(bob: &mut Peer, until: impl Fn(&Got) -> bool) -> Got {
    let mut got = Got::default();
    while !until(&got) {
        let Some(message) = bob.poll(Duration::from_secs(5)) else {
            break;
        };
        let (Some(n), Some(offset), Some(epoch)) = (
            message["payload"]["n"].as_u64(),
            message["offset"].as_u64(),
            message["epoch"].as_str(),
        ) else {
            if message["type"] == "reset" {
                got.resets.push(message);
            }
            continue;
        };
        let entry = (n, offset, epoch.to_owned());
        match message["type"].as_str() {
            Some("private") => got.private.push(entry),
            Some("chat") => got.broadcast.push(entry),
            _ => panic!("{message}"),
        }
    }
    got
}

/// Each feed's messages arrived once, in offset order, without a hole: exactly `expected`.
fn check_feed(name: &str, got: &[(u64, u64, String)], expected: &[u64]) {
    let ns: Vec<u64> = got.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(ns, expected, "{name}: every acked message once, in order");
    let offsets: Vec<u64> = got.iter().map(|(_, o, _)| *o).collect();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "{name}: consecutive offsets {offsets:?}"
    );
    assert!(
        got.windows(2).all(|w| w[0].2 == w[1].2),
        "{name}: one epoch"
    );
}

fn evens(range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    range.filter(|n| n.is_multiple_of(2)).collect()
}

fn odds(range: std::ops::RangeInclusive<u64>) -> Vec<u64> {
    range.filter(|n| !n.is_multiple_of(2)).collect()
}

#[test]
fn private_messages_and_broadcasts_survive_lost_subscriptions() {
    let dir = TempDir::new("feeds-pubsub");
    let redis = Redis::start(dir.path());
    let (a, b) = nodes(&dir, &redis);
    let mut bob = Peer::connect(&b.ws_url("bob"), "bob");
    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    send(&mut alice, 1..=TOTAL / 4);
    // The subscriptions are cut four times while the stream flows.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..4 {
                redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
                std::thread::sleep(Duration::from_millis(120));
            }
        });
        send(&mut alice, TOTAL / 4 + 1..=TOTAL);
    });
    let got = read(&mut bob, |g| {
        g.private.last().is_some_and(|p| p.0 == TOTAL) && g.broadcast.len() as u64 == TOTAL / 2
    });
    assert!(got.resets.is_empty(), "nothing was lost: {:?}", got.resets);
    check_feed("private", &got.private, &evens(1..=TOTAL));
    check_feed("broadcast", &got.broadcast, &odds(1..=TOTAL));
    assert!(
        b.metric("wsloop_redis_disconnects_total") >= Some(1.0),
        "the fault cut node b's subscription"
    );
}

#[test]
fn a_user_back_on_another_node_syncs_what_they_missed() {
    let dir = TempDir::new("feeds-sync");
    let redis = Redis::start(dir.path());
    let (a, b) = nodes(&dir, &redis);
    let mut bob = Peer::connect(&b.ws_url("bob"), "bob");
    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    let half = TOTAL / 2;
    let first = send(&mut alice, 1..=half);
    let got = read(&mut bob, |g| {
        g.private.len() + g.broadcast.len() == half as usize
    });
    check_feed("private", &got.private, &evens(1..=half));
    check_feed("broadcast", &got.broadcast, &odds(1..=half));
    let last = |feed: &[(u64, u64, String)]| {
        let (_, offset, epoch) = feed.last().expect("a message").clone();
        json!({"offset": offset, "epoch": epoch})
    };
    let (private_since, broadcast_since) = (last(&got.private), last(&got.broadcast));
    bob.close();

    // While bob is away: the rest, which his old node b still receives and keeps.
    let rest = send(&mut alice, half + 1..=TOTAL);
    assert_eq!(first.len() + rest.len(), TOTAL as usize);

    // bob comes back on node a, which never had a connection of his.
    let mut bob = Peer::connect(&a.ws_url("bob"), "bob");
    for (feed, since) in [("private", &private_since), ("broadcast", &broadcast_since)] {
        bob.send(&json!({"type": "sync", "feed": feed, "since": since, "id": feed}));
        let synced = bob.expect("synced");
        assert_eq!(synced["feed"], feed, "{synced}");
        assert_eq!(synced["recovered"], true, "{synced}");
        let missed = read(&mut bob, |g| {
            let n = if feed == "private" {
                &g.private
            } else {
                &g.broadcast
            };
            n.len() as u64 == (TOTAL - half) / 2
        });
        let (got, expected) = if feed == "private" {
            (&missed.private, evens(half + 1..=TOTAL))
        } else {
            (&missed.broadcast, odds(half + 1..=TOTAL))
        };
        check_feed(feed, got, &expected);
        let next = since["offset"].as_u64().expect("an offset") + 1;
        assert_eq!(got[0].1, next, "{feed}: recovery starts right after since");
    }
    // Nothing twice: the live feed goes on after the replay.
    let live = send(&mut alice, TOTAL + 1..=TOTAL + 2);
    let got = read(&mut bob, |g| g.private.len() + g.broadcast.len() == 2);
    assert_eq!(got.private.len() + got.broadcast.len(), 2, "{got:?}");
    assert_eq!(got.private[0].1, live[&(TOTAL + 2)]);
}
