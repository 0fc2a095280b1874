//! Redis killed and restarted under two nodes: while it is away each node keeps serving its
//! own clients (a room message between two clients on one node still arrives, without an
//! offset), says so on `/readyz` and in `/metrics`, and crashes or blocks nothing; once it
//! is back, cross-node delivery resumes, and the lost history shows as a new epoch.

mod cluster;

use cluster::eventually;
use cluster::peer::Peer;
use cluster::procs::TempDir;
use cluster::servers::{Node, Redis};
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

#[test]
fn nodes_serve_local_clients_while_redis_is_away_then_resume() {
    let dir = TempDir::new("cluster-outage");
    let mut redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);
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
    // node b): the next thing it hears is "after".
    say(&mut a1, "after");
    let after = heard(&mut b1);
    assert_eq!(after["payload"]["text"], "after", "{after}");
    for peer in [&mut a1, &mut a2, &mut a3] {
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
