//! Faults injected into a real Redis under two nodes while numbered streams flow through
//! one room, privately to one user, and to everyone, with receivers on each node (see
//! `cluster/stream.rs` for the checker): no receiver may see a gap, a duplicate or a
//! reordering that was not signalled with `reset`, and every acked message reaches every
//! connected receiver unless a `reset` says otherwise.
//!
//! Each fault is one test: the subscriptions killed (`CLIENT KILL TYPE pubsub`), the
//! command connections killed (`CLIENT KILL TYPE normal`), Redis paused (`CLIENT PAUSE`) or
//! asleep (`DEBUG SLEEP`), Redis killed and restarted with AOF (same epoch, offsets go on)
//! and without persistence (a new epoch, members told), a node stopped (SIGSTOP) while the
//! cluster is busy until Redis cuts its subscription for a full output buffer, a stop and
//! resume that must not cost the subscription at all, one cut off before the room had
//! any message, one cut off before it
//! saw any message of the room, and one killed (`kill -9`) whose clients reconnect through
//! nginx to the others and rejoin with `since`.

mod cluster;

use std::time::Duration;

use serde_json::json;

use cluster::eventually;
use cluster::peer::{Peer, publish};
use cluster::procs::TempDir;
use cluster::servers::{Nginx, Node, Redis};
use cluster::stream::{self, Feed, Outcome};

/// A small pubsub output buffer: a node that stops reading is cut off within a second.
const SMALL_PUBSUB_BUFFER: [&str; 2] = ["--client-output-buffer-limit", "pubsub 256kb 128kb 1"];

/// Messages per stream and when the fault strikes.
const TOTAL: u64 = 240;
const FAULT_AT: u64 = 60;

/// Redis with the `DEBUG` command allowed (Redis 7 refuses it by default).
fn redis(dir: &TempDir, extra: &[&str]) -> Redis {
    let mut args = vec!["--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    Redis::start_with(dir.path(), &args)
}

/// Two nodes keeping 1000 messages of history per room (enough to fill any gap these
/// faults open); the publisher on `a`, a receiver on each.
fn nodes(dir: &TempDir, redis: &Redis) -> (Node, Node) {
    (node(dir, "a", redis), node(dir, "b", redis))
}

fn node(dir: &TempDir, id: &str, redis: &Redis) -> Node {
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[history]\nsize = 1000\n").expect("write the node config");
    let config = config.to_str().expect("a UTF-8 path");
    Node::start_with(dir.path(), id, redis, &[("--config", config)])
}

/// Streams a room, private messages and broadcasts through `a` and `b` while `fault`
/// strikes; checks the guarantees for each.
fn stream_through(a: &Node, b: &Node, fault: impl FnOnce()) -> Vec<Outcome> {
    let url = |node: &Node| format!("ws://127.0.0.1:{}/ws?user_id=", node.port);
    let outcomes = stream::run_feeds(
        &Feed::ALL,
        &url(a),
        &[url(a), url(b)],
        TOTAL,
        FAULT_AT,
        fault,
    );
    for (feed, outcome) in &outcomes {
        eprintln!("{feed:?}:");
        stream::check(outcome);
    }
    for node in [a, b] {
        let gaps = node.metric("wsloop_cluster_gaps");
        assert_eq!(
            gaps,
            Some(0.0),
            "node {}: a room still waits for a gap",
            node.id
        );
    }
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// The fault did cut `node`'s subscription (else the test proves nothing).
fn was_cut(node: &Node) {
    let lost = node.metric("wsloop_redis_disconnects_total");
    assert!(
        lost >= Some(1.0),
        "node {} never lost Redis: {lost:?}",
        node.id
    );
}

/// Redis kept everything: every gap could be filled, so nobody needed a `reset`.
fn no_resets(outcomes: &[Outcome]) {
    for (user, messages) in outcomes.iter().flat_map(|o| &o.received) {
        let resets: Vec<_> = messages.iter().filter(|m| m["type"] == "reset").collect();
        assert!(
            resets.is_empty(),
            "{user}: a reset although nothing was lost: {resets:?}"
        );
    }
}

#[test]
fn subscriptions_killed_mid_stream() {
    let dir = TempDir::new("fault-pubsub");
    let redis = redis(&dir, &[]);
    let (a, b) = nodes(&dir, &redis);
    let outcome = stream_through(&a, &b, || {
        for _ in 0..3 {
            redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    no_resets(&outcome);
    was_cut(&b);
}

#[test]
fn command_connections_killed_mid_stream() {
    let dir = TempDir::new("fault-normal");
    let redis = redis(&dir, &[]);
    let (a, b) = nodes(&dir, &redis);
    let outcome = stream_through(&a, &b, || {
        for _ in 0..3 {
            redis.command(&["CLIENT", "KILL", "TYPE", "normal"]);
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    no_resets(&outcome);
}

#[test]
fn redis_paused() {
    let dir = TempDir::new("fault-pause");
    let redis = redis(&dir, &[]);
    let (a, b) = nodes(&dir, &redis);
    let outcome = stream_through(&a, &b, || {
        redis.command(&["CLIENT", "PAUSE", "2000", "ALL"]);
    });
    no_resets(&outcome);
}

#[test]
fn redis_asleep() {
    let dir = TempDir::new("fault-sleep");
    let redis = redis(&dir, &[]);
    let (a, b) = nodes(&dir, &redis);
    let outcome = stream_through(&a, &b, || {
        redis.command(&["DEBUG", "SLEEP", "2"]);
    });
    no_resets(&outcome);
}

#[test]
fn redis_restarted_with_aof_keeps_the_epoch() {
    let dir = TempDir::new("fault-aof");
    // `always`: Redis answers a write once it is on disk. With the default `everysec` a
    // killed Redis may lose up to a second or two of writes it acknowledged (more under
    // disk pressure, when it postpones them), and hand their offsets out again.
    let mut redis = redis(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let (a, b) = nodes(&dir, &redis);
    let outcomes = stream_through(&a, &b, || redis.restart());
    no_resets(&outcomes);
    for outcome in &outcomes {
        let epochs: Vec<&String> = outcome.acked.values().map(|(_, e)| e).collect();
        assert!(
            epochs.windows(2).all(|w| w[0] == w[1]),
            "the epoch changed although Redis kept its data"
        );
        let offsets: Vec<u64> = outcome.acked.values().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (1..=TOTAL).collect::<Vec<_>>(),
            "offsets go on, once each"
        );
    }
}

#[test]
fn redis_restarted_empty_starts_a_new_epoch_and_says_so() {
    let dir = TempDir::new("fault-empty");
    let mut redis = redis(&dir, &[]);
    let (a, b) = nodes(&dir, &redis);
    for outcome in stream_through(&a, &b, || redis.restart()) {
        let first = &outcome.acked[&1].1;
        let last = &outcome.acked[&TOTAL].1;
        assert_ne!(first, last, "Redis lost everything: a new epoch");
        for (user, messages) in &outcome.received {
            assert!(
                messages
                    .iter()
                    .any(|m| m["type"] == "reset" && m["epoch"] == *last),
                "{user} was not told of the new epoch"
            );
        }
    }
}

#[test]
fn node_stopped_until_redis_cuts_its_subscription() {
    let dir = TempDir::new("fault-stop");
    let redis = redis(&dir, &SMALL_PUBSUB_BUFFER);
    let (a, b) = nodes(&dir, &redis);
    let outcome = stream_through(&a, &b, || {
        b.signal("STOP");
        // The stream alone is a few kilobytes, which the kernel's socket buffers take
        // in whole: the cluster must be busy enough to overflow them, as it would be
        // in production. Another room's traffic fills them until Redis cuts b off.
        let filler = json!({"room": "filler", "payload": "x".repeat(4 * 1024)});
        let mut published = 0;
        while subscription(&redis, "b").is_some() {
            assert!(published < 16_384, "Redis never cut the stopped node b off");
            let (status, answer) = publish(a.port, &filler);
            assert_eq!(status, 200, "{answer}");
            published += 1;
        }
        println!("node b cut off after {published} messages of 4 KiB to another room");
        std::thread::sleep(Duration::from_secs(1));
        b.signal("CONT");
    });
    no_resets(&outcome);
    was_cut(&b);
}

/// A stop and a resume is no fault: Linux fails a blocking read with a timeout with EINTR
/// when the process resumes (signal(7)), and the subscriber must read on, not reconnect.
#[test]
fn node_stopped_and_resumed_keeps_its_subscription() {
    let dir = TempDir::new("fault-resume");
    let redis = redis(&dir, &[]);
    let b = node(&dir, "b", &redis);
    let before = subscription(&redis, "b").expect("node b subscribed");
    for _ in 0..3 {
        b.signal("STOP");
        std::thread::sleep(Duration::from_millis(300));
        b.signal("CONT");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(b.metric("wsloop_redis_disconnects_total"), Some(0.0));
    assert_eq!(
        subscription(&redis, "b"),
        Some(before),
        "the same connection"
    );
}

#[test]
fn node_stopped_while_waiting_on_redis_keeps_its_connections() {
    let dir = TempDir::new("fault-resume-waiting");
    let redis = redis(&dir, &[]);
    let b = node(&dir, "b", &redis);
    let before = subscription(&redis, "b").expect("node b subscribed");
    // Redis answers nothing for 2 s: node b's idle PING, heartbeat and subscriber ping
    // wait on it, so stopping and resuming b ends those waits with EINTR (signal(7)).
    let url = redis.url();
    let sleeper = std::thread::spawn(move || {
        let mut conn = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("connect to redis");
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(2)
            .query::<()>(&mut conn)
            .expect("DEBUG SLEEP");
    });
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        b.signal("STOP");
        std::thread::sleep(Duration::from_millis(50));
        b.signal("CONT");
    }
    sleeper.join().expect("the sleeper");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        b.metric("wsloop_redis_disconnects_total"),
        Some(0.0),
        "an interrupted wait is not an outage; node b's log:\n{}",
        b.log_tail(20)
    );
    assert_eq!(
        subscription(&redis, "b"),
        Some(before),
        "the same connection"
    );
}

/// The Redis client id of node `id`'s subscription (named `wsloop-<id>-sub`), if any.
fn subscription(redis: &Redis, id: &str) -> Option<String> {
    let list = redis.command(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    let list: String = redis::from_redis_value(list).expect("CLIENT LIST is text");
    let name = format!("name=wsloop-{id}-sub");
    list.lines()
        .find(|l| l.split(' ').any(|f| f == name))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
}

/// Kills node `id`'s subscription.
fn kill_subscription(redis: &Redis, id: &str) {
    let client = subscription(redis, id).unwrap_or_else(|| panic!("node {id} has no subscription"));
    redis.command(&["CLIENT", "KILL", "ID", &client]);
}

#[test]
fn node_cut_off_before_it_saw_a_message_of_the_room() {
    let dir = TempDir::new("fault-first");
    let redis = redis(&dir, &[]);
    let a = node(&dir, "a", &redis);
    // The room has history before node b starts: b knows nothing of it but what its
    // first member's join asks Redis.
    let (status, answer) = publish(a.port, &json!({"room": stream::ROOM, "payload": 0}));
    assert_eq!(status, 200, "{answer}");
    let b = node(&dir, "b", &redis);
    stream_to_b_cut_off_at_once(&a, &b, &redis);
}

#[test]
fn node_cut_off_before_the_room_had_any_message() {
    let dir = TempDir::new("fault-empty-room");
    let redis = redis(&dir, &[]);
    let (a, b) = nodes(&dir, &redis);
    // b learns at a first member's join that the room has no message at all; what it
    // misses while it resubscribes is the room's very first messages.
    let mut watcher = Peer::connect(&b.ws_url("watcher"), "watcher");
    watcher.join(stream::ROOM, None);
    eventually("node b to learn the room's position", || {
        (b.metric("wsloop_cluster_gaps") == Some(0.0)).then_some(())
    });
    stream_to_b_cut_off_at_once(&a, &b, &redis);
}

/// Streams the room from `a` to a receiver on `b`, whose subscription is cut as the stream
/// starts: b misses the first messages while it resubscribes, and must catch them up.
fn stream_to_b_cut_off_at_once(a: &Node, b: &Node, redis: &Redis) {
    let outcome = stream::run(
        &format!("ws://127.0.0.1:{}/ws?user_id=", a.port),
        &[format!("ws://127.0.0.1:{}/ws?user_id=", b.port)],
        TOTAL,
        0,
        || kill_subscription(redis, "b"),
    );
    stream::check(&outcome);
    no_resets(std::slice::from_ref(&outcome));
    was_cut(b);
}

#[test]
fn a_node_killed_mid_stream_its_clients_recover_on_the_others_through_nginx() {
    let dir = TempDir::new("fault-kill");
    let redis = redis(&dir, &[]);
    let (a, b, c) = (
        node(&dir, "a", &redis),
        node(&dir, "b", &redis),
        node(&dir, "c", &redis),
    );
    let nginx = Nginx::start(dir.path(), &[&a, &b, &c]);
    let through_nginx = format!("ws://127.0.0.1:{}/ws?user_id=", nginx.port);
    let outcomes = stream::run_feeds(
        &Feed::ALL,
        &format!("ws://127.0.0.1:{}/ws?user_id=", a.port),
        &vec![through_nginx; 6],
        TOTAL,
        FAULT_AT,
        || {
            assert!(c.hub_connections() > 0, "node c has receivers to lose");
            c.signal("KILL");
        },
    );
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    for outcome in &outcomes {
        stream::check(outcome);
    }
    no_resets(&outcomes);
}
