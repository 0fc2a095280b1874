//! Redis killed and restarted under two nodes. By default a node refuses new messages while
//! Redis is away (`unavailable`, API 503), and a client that resends with the same `id`
//! once it is back gets one ack and one delivery. With `when_redis_down = "local"` each
//! node keeps serving its own clients instead (a room message between two clients on one
//! node still arrives, without an offset). Either way the node says so on `/readyz` and in
//! `/metrics`, crashes or blocks nothing, and resumes cross-node delivery once Redis is
//! back; the lost history shows as a new epoch.

mod cluster;

use cluster::eventually;
use cluster::peer::{Peer, publish};
use cluster::procs::TempDir;
use cluster::servers::{Node, Redis};
use std::time::Duration;

use serde_json::{Value, json};

/// Sends a room chat from `peer`.
fn say(peer: &mut Peer, text: &str) {
    peer.send(&json!({"type": "chat", "room": "r", "payload": {"text": text}}));
}

/// The next room chat `peer` receives.
fn heard(peer: &mut Peer) -> Value {
    let message = peer.expect("chat");
    assert_eq!(message["room"], "r", "{message}");
    message
}

/// Whether `node` reports the state of its Redis link as `up`, on `/readyz` and `/metrics`.
fn reports(node: &Node, up: bool) -> bool {
    let (status, body) = node.readyz();
    let ready = if up {
        body == "ready"
    } else {
        body.starts_with("degraded")
    };
    status == 200 && ready && node.metric("wsloop_cluster_up") == Some(f64::from(u8::from(up)))
}

/// Starts node `id` with `when_redis_down = "local"`.
fn local_node(dir: &TempDir, id: &str, redis: &Redis) -> Node {
    let config = dir.path().join("local.toml");
    std::fs::write(&config, "[cluster]\nwhen_redis_down = \"local\"\n").expect("config");
    Node::start_with(
        dir.path(),
        id,
        redis,
        &[("--config", config.to_str().expect("path"))],
    )
}

#[test]
fn by_default_messages_are_refused_while_redis_is_away_and_a_resend_is_published_once() {
    let dir = TempDir::new("cluster-refuse");
    let mut redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);
    let mut a1 = Peer::connect(&a.ws_url("a1"), "a1");
    let mut a2 = Peer::connect(&a.ws_url("a2"), "a2");
    let mut b1 = Peer::connect(&b.ws_url("b1"), "b1");
    for peer in [&mut a1, &mut a2, &mut b1] {
        peer.join("r", None);
    }
    redis.kill();
    eventually("node a reports degraded", || {
        reports(&a, false).then_some(())
    });

    let request = json!({"type": "chat", "room": "r", "id": "m-1", "payload": {"text": "x"}});
    a1.send(&request);
    let refused = a1.expect("error");
    assert_eq!(refused["code"], "unavailable", "{refused}");
    assert_eq!(refused["id"], "m-1", "{refused}");
    assert!(refused["retry_after_ms"].as_u64() > Some(0), "{refused}");
    assert!(
        a2.poll(Duration::from_millis(300)).is_none(),
        "nothing delivered"
    );
    let (status, answer) = publish(a.port, &json!({"room": "r", "payload": 1}));
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "unavailable", "{answer}");
    assert!(a.metric("wsloop_cluster_refusals_total") >= Some(2.0));

    redis.restart();
    for node in [&a, &b] {
        eventually(&format!("node {} back on Redis", node.id), || {
            reports(node, true).then_some(())
        });
    }
    // The client resends (same id) twice, as after a timeout: one ack each, one message.
    a1.send(&request);
    a1.send(&request);
    let mut acks = Vec::new();
    while acks.len() < 2 {
        let message = a1.next();
        match message["type"].as_str() {
            Some("ack") => acks.push(message),
            Some("chat") => assert_eq!(message["offset"], 1, "{message}"),
            _ => {}
        }
    }
    assert_eq!(acks[0]["offset"], 1, "{acks:?}");
    assert_eq!(acks[0], acks[1], "the resend gets the original outcome");
    for peer in [&mut a2, &mut b1] {
        assert_eq!(heard(peer)["offset"], 1);
        assert!(
            peer.poll(Duration::from_millis(300)).is_none(),
            "published once"
        );
    }
}

#[test]
fn nodes_serve_local_clients_while_redis_is_away_then_resume() {
    let dir = TempDir::new("cluster-outage");
    let mut redis = Redis::start(dir.path());
    let a = local_node(&dir, "a", &redis);
    let b = local_node(&dir, "b", &redis);
    let mut a1 = Peer::connect(&a.ws_url("a1"), "a1");
    let mut a2 = Peer::connect(&a.ws_url("a2"), "a2");
    let mut b1 = Peer::connect(&b.ws_url("b1"), "b1");
    for peer in [&mut a1, &mut a2, &mut b1] {
        peer.join("r", None);
    }

    // Redis up: across nodes, numbered by Redis.
    say(&mut a1, "before");
    let before = heard(&mut b1);
    assert_eq!(before["payload"]["text"], "before");
    assert_eq!(before["offset"], 1, "{before}");
    let old_epoch = before["epoch"].clone();
    assert_eq!(heard(&mut a2)["payload"]["text"], "before");
    assert_eq!(heard(&mut a1)["payload"]["text"], "before");

    redis.kill();
    for node in [&a, &b] {
        eventually(&format!("node {} reports degraded", node.id), || {
            reports(node, false).then_some(())
        });
        assert!(node.metric("wsloop_redis_disconnects_total") >= Some(1.0));
    }

    // Redis down: local delivery still works, without offsets (Redis assigns those).
    say(&mut a1, "local");
    for peer in [&mut a2, &mut a1] {
        let local = heard(peer);
        assert_eq!(local["payload"]["text"], "local", "{local}");
        assert!(
            local.get("offset").is_none(),
            "no offset without Redis: {local}"
        );
    }
    assert!(a.metric("wsloop_cluster_fallbacks_total") >= Some(1.0));
    // A new client is served too.
    let mut a3 = Peer::connect(&a.ws_url("a3"), "a3");
    a3.join("r", None);

    redis.restart();
    for node in [&a, &b] {
        eventually(&format!("node {} back on Redis", node.id), || {
            reports(node, true).then_some(())
        });
    }

    // Cross-node delivery resumes, both ways. b1 never got "local" (it could not reach
    // node b): the next thing it hears is "after", in Redis's new epoch, announced first
    // with a `reset` (the room's history was lost with Redis).
    say(&mut a1, "after");
    let reset = b1.expect("reset");
    assert_eq!(
        (&reset["room"], &reset["offset"]),
        (&json!("r"), &json!(0)),
        "{reset}"
    );
    let after = heard(&mut b1);
    assert_eq!(after["payload"]["text"], "after", "{after}");
    assert_eq!(after["epoch"], reset["epoch"], "{after}");
    for peer in [&mut a1, &mut a2, &mut a3] {
        assert_eq!(peer.expect("reset")["epoch"], reset["epoch"]);
        assert_eq!(heard(peer)["payload"]["text"], "after");
    }
    say(&mut b1, "from b");
    for peer in [&mut a1, &mut a2, &mut a3, &mut b1] {
        assert_eq!(heard(peer)["payload"]["text"], "from b");
    }
    // The restarted Redis had no history: a new epoch, so a client holding the old one is
    // told to reload instead of trusting a gap.
    assert_ne!(after["epoch"], old_epoch, "{after}");
    assert_eq!(after["offset"], 1, "{after}");
    let mut late = Peer::connect(&b.ws_url("late"), "late");
    let joined = late.join("r", Some(&json!({"offset": 1, "epoch": old_epoch})));
    assert_eq!(joined["recovered"], false, "{joined}");
}
