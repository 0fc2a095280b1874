//! The publish API across the cluster (issue 8): two nodes over a real Redis; a
//! `POST /api/publish` to node A reaches the room members, the user and everyone connected
//! to node B, once each, and no one else. And the fault: Redis paused past the request's
//! deadline (`handshake_timeout`) gets the backend a 504, not a hang, and its resend with
//! the same `Idempotency-Key` publishes the message once.

mod cluster;

use std::time::{Duration, Instant};

use cluster::eventually;
use cluster::peer::{Peer, http, publish};
use cluster::procs::TempDir;
use cluster::servers::{Node, Redis};
use serde_json::json;

#[test]
fn a_publish_to_node_a_reaches_members_on_node_b() {
    let dir = TempDir::new("cluster-publish");
    let redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);

    let mut member_a = Peer::connect(&a.ws_url("member-a"), "member-a");
    let mut member_b = Peer::connect(&b.ws_url("member-b"), "member-b");
    let mut outsider_b = Peer::connect(&b.ws_url("outsider-b"), "outsider-b");
    member_a.join("orders-42", None);
    member_b.join("orders-42", None);

    // A room publish on A: both members get it once, with the offset Redis assigned.
    let (status, answer) = publish(
        a.port,
        &json!({"room": "orders-42", "payload": {"title": "Shipped"}}),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["published"], true,
        "clustered answers say so: {answer}"
    );
    assert_eq!(answer["offset"], 1, "answered once Redis has it: {answer}");
    assert!(answer["epoch"].is_string(), "{answer}");
    for peer in [&mut member_b, &mut member_a] {
        let got = peer.expect("notification");
        assert_eq!(got["room"], "orders-42", "{got}");
        assert_eq!(got["sender_id"], "server", "{got}");
        assert_eq!(got["payload"], json!({"title": "Shipped"}), "{got}");
        assert_eq!(got["offset"], 1, "Redis numbers the room's messages: {got}");
        assert!(got["epoch"].is_string(), "{got}");
    }

    // To a user connected to B only, then to everyone: the batch keeps its order.
    let (status, answer) = publish(
        a.port,
        &json!({"messages": [
            {"user_id": "outsider-b", "type": "job.done", "payload": {"job": 7}},
            {"payload": "everyone"},
        ]}),
    );
    assert_eq!(status, 200, "{answer}");
    let got = outsider_b.expect("job.done");
    assert_eq!(
        (got["recipient_id"].clone(), got["payload"].clone()),
        (json!("outsider-b"), json!({"job": 7})),
        "{got}"
    );
    // Not the room message: the broadcast is the next thing outsider-b gets.
    assert_eq!(outsider_b.expect("notification")["payload"], "everyone");
    for peer in [&mut member_a, &mut member_b] {
        assert_eq!(peer.expect("notification")["payload"], "everyone");
    }

    // A backend resending with the same Idempotency-Key (after a timeout, say) gets the
    // first answer, and the message goes out once.
    let auth = format!("Bearer {}", cluster::API_KEY);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Idempotency-Key", "order-42-shipped-again"),
    ];
    let body = json!({"room": "orders-42", "payload": "again"}).to_string();
    let first = http(a.port, "POST", "/api/publish", &headers, &body);
    let second = http(b.port, "POST", "/api/publish", &headers, &body);
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first, second, "the same outcome");
    for peer in [&mut member_a, &mut member_b] {
        let got = peer.expect("notification");
        assert_eq!(
            (&got["payload"], &got["offset"]),
            (&json!("again"), &json!(2))
        );
    }

    // Nothing else, twice or otherwise, reached anyone.
    for peer in [&mut member_a, &mut member_b, &mut outsider_b] {
        let extra = peer.poll(Duration::from_millis(300));
        assert!(extra.is_none(), "{}: unexpected {extra:?}", peer.user);
    }
}

#[test]
fn a_publish_outlasting_its_deadline_gets_504_and_its_resend_publishes_once() {
    let dir = TempDir::new("cluster-publish-deadline");
    let redis = Redis::start(dir.path());
    let a = Node::start_with(dir.path(), "a", &redis, &[("--handshake-timeout", "1s")]);
    let mut member = Peer::connect(&a.ws_url("member"), "member");
    member.join("slow", None);

    let auth = format!("Bearer {}", cluster::API_KEY);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Idempotency-Key", "slow-1"),
    ];
    let body = json!({"room": "slow", "payload": "late"}).to_string();
    // Redis answers nobody for 2.5 s; the node keeps retrying its command meanwhile.
    redis.command(&["CLIENT", "PAUSE", "2500", "ALL"]);
    let started = Instant::now();
    let (status, answer) = http(a.port, "POST", "/api/publish", &headers, &body);
    assert_eq!(status, 504, "answered at the deadline: {answer}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Once Redis is back, the resend gets the message's one outcome.
    let resent = eventually("the resend answered", || {
        let (status, answer) = http(a.port, "POST", "/api/publish", &headers, &body);
        (status == 200).then_some(answer)
    });
    let resent: serde_json::Value = serde_json::from_str(&resent).expect("JSON");
    assert_eq!(resent["offset"], 1, "{resent}");
    let got = member.expect("notification");
    assert_eq!(
        (&got["payload"], &got["offset"]),
        (&json!("late"), &json!(1))
    );
    let extra = member.poll(Duration::from_millis(300));
    assert!(extra.is_none(), "once: {extra:?}");
}
