//! Load balancing: three nodes over a real Redis behind nginx running `deploy/nginx.conf`.
//! 200 clients connect through nginx and land on every node (`least_conn`); room, global and
//! private messages sent from clients on different nodes reach exactly the right clients,
//! exactly once.
//!
//! Exactly once is checked with a final marker: every message goes through the one Redis
//! channel, whose order every node sees, so once each sender has seen its own message come
//! back (it is in Redis), a marker published afterwards reaches each client after all of
//! them. Everything a client got before the marker is then compared with what it should get.

mod cluster;

use std::collections::BTreeMap;

use cluster::peer::{Peer, http};
use cluster::procs::TempDir;
use cluster::servers::{Nginx, Node, Redis};
use serde_json::{Value, json};

const CLIENTS: usize = 200;
const ROOMS: usize = 4;

fn room_of(i: usize) -> String {
    format!("room-{}", i % ROOMS)
}

/// `kind:m` for a delivered message, `None` for the marker and for what is not a delivery.
fn delivery(peer: &Peer, message: &Value) -> Option<String> {
    let kind = message["type"].as_str().unwrap_or_default();
    match kind {
        "presence" | "ack" | "joined" => None,
        _ if message["payload"]["marker"] == true => None,
        "chat" | "private" => Some(format!("{kind}:{}", message["payload"]["m"].as_str()?)),
        _ => panic!("{}: unexpected {message}", peer.user),
    }
}

/// Reads `peer` up to the marker; adds every delivery before it to `got`.
fn read_to_marker(peer: &mut Peer, got: &mut Vec<String>) {
    loop {
        let message = peer.next();
        if message["payload"]["marker"] == true {
            return;
        }
        got.extend(delivery(peer, &message));
    }
}

/// Sends `request` from `peer` and reads until its own copy comes back from the bus (so it
/// is in Redis); adds what it read on the way to `got`.
fn send_and_see_it(peer: &mut Peer, request: &Value, got: &mut Vec<String>) {
    peer.send(request);
    loop {
        let message = peer.next();
        if message["type"] == "ack" {
            assert_eq!(message["published"], true, "cluster acks say so: {message}");
            continue;
        }
        got.extend(delivery(peer, &message));
        if message["payload"] == request["payload"] {
            return;
        }
    }
}

#[test]
fn clients_through_nginx_land_on_every_node_and_get_each_message_once() {
    let dir = TempDir::new("cluster-balance");
    let redis = Redis::start(dir.path());
    let nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| Node::start(dir.path(), id, &redis))
        .collect();
    let nginx = Nginx::start(dir.path(), &[&nodes[0], &nodes[1], &nodes[2]]);

    // 200 clients through the proxy, each in one of four rooms.
    let mut clients: Vec<Peer> = (0..CLIENTS)
        .map(|i| {
            let user = format!("u{i}");
            let mut peer = Peer::connect(&nginx.ws_url(&user), &user);
            peer.join(&room_of(i), None);
            peer
        })
        .collect();
    // One user with a connection straight to each of two nodes, for private messages.
    let mut multi: Vec<Peer> = nodes[..2]
        .iter()
        .map(|node| Peer::connect(&node.ws_url("multi"), "multi"))
        .collect();

    let counts: Vec<u64> = nodes.iter().map(Node::hub_connections).collect();
    assert_eq!(counts.iter().sum::<u64>(), 202, "per node: {counts:?}");
    for (node, count) in nodes.iter().zip(&counts) {
        // least_conn spreads the 200 evenly (67/67/66 less the direct ones).
        assert!(*count >= 50, "node {} has {count} of {counts:?}", node.id);
    }

    // What each client got, by index.
    let mut got: Vec<Vec<String>> = vec![Vec::new(); CLIENTS];
    // One message per room, each from a member (clients 0-3, spread over the nodes).
    for k in 0..ROOMS {
        let request = json!({"type": "chat", "id": k, "room": room_of(k),
                             "payload": {"m": room_of(k)}});
        send_and_see_it(&mut clients[k], &request, &mut got[k]);
    }
    // A global broadcast.
    let request = json!({"type": "chat", "id": "g", "payload": {"m": "global"}});
    send_and_see_it(&mut clients[5], &request, &mut got[5]);
    // Private messages to a user on one node and to a user on two nodes, then, from the
    // same connection (so after them on the bus), the marker.
    let sender = &mut clients[7];
    for to in ["u150", "multi"] {
        let payload = json!({"m": format!("to-{to}")});
        sender.send(&json!({"type": "private", "recipient_id": to, "payload": payload}));
    }
    sender.send(&json!({"type": "chat", "payload": {"marker": true}}));

    let mut wrong = BTreeMap::new();
    for (i, (peer, got)) in clients.iter_mut().zip(&mut got).enumerate() {
        let mut expected = vec![format!("chat:{}", room_of(i)), "chat:global".to_owned()];
        if i == 150 {
            expected.push("private:to-u150".to_owned());
        }
        read_to_marker(peer, got);
        got.sort();
        expected.sort();
        if *got != expected {
            wrong.insert(peer.user.clone(), (got.clone(), expected));
        }
    }
    for peer in &mut multi {
        let mut got = Vec::new();
        read_to_marker(peer, &mut got);
        assert_eq!(
            got,
            ["chat:global", "private:to-multi"],
            "both of multi's connections"
        );
    }
    assert!(wrong.is_empty(), "(got, expected) by user: {wrong:#?}");

    // The proxy keeps per-node figures to the nodes, and the same-origin check still works
    // through it (nginx passes the Host header with its port).
    for path in ["/metrics", "/stats"] {
        assert_eq!(http(nginx.port, "GET", path, &[], "").0, 404, "{path}");
    }
    let origin = format!("http://127.0.0.1:{}", nginx.port);
    let browser = Peer::try_connect(
        &nginx.ws_url("browser"),
        "browser",
        &[("Origin", origin.as_str())],
    );
    assert!(
        browser.is_ok(),
        "same-origin through nginx: {:?}",
        browser.err()
    );
}
