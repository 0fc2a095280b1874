//! A rolling restart under load: three nodes over a real Redis behind nginx
//! (`deploy/nginx.conf`), 30 clients in one room through nginx, and a publisher sending a
//! numbered sequence to that room. Two nodes in turn get SIGTERM mid-stream and are started
//! again. Their clients get close 1001, reconnect through nginx (which moves them to a
//! running node), rejoin with `since`, and every client ends with the complete sequence, in
//! order, without a gap or a duplicate. A client that was offline across a restart recovers
//! on the restarted node, from the history in Redis.

mod cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cluster::peer::Peer;
use cluster::procs::TempDir;
use cluster::servers::{Nginx, Node, Redis};
use cluster::{PATIENCE, eventually};
use serde_json::{Value, json};
use wsloop::client::ClientError;

const CLIENTS: usize = 30;
const ROOM: &str = "feed";

/// What one client saw.
struct Followed {
    /// The `n` of every message, in arrival order.
    seen: Vec<u64>,
    /// Times the server closed it with 1001 and it reconnected.
    reconnects: u64,
}

/// Connects through the proxy, retrying while no node takes the handshake.
fn connect_retry(url: &str, user: &str) -> Peer {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match Peer::try_connect(url, user, &[]) {
            Ok(peer) => return peer,
            Err(e) => assert!(Instant::now() < deadline, "{user}: cannot reconnect: {e}"),
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A client with simple reconnect logic: on close 1001 it reconnects and rejoins with the
/// position of the last message it has. Counts its first join in `joined`; returns at the
/// message marked `last`.
fn follow(url: &str, user: &str, joined: &AtomicUsize, progress: &AtomicU64) -> Followed {
    let mut followed = Followed {
        seen: Vec::new(),
        reconnects: 0,
    };
    let mut since: Option<Value> = None;
    loop {
        let mut peer = connect_retry(url, user);
        let ack = peer.join(ROOM, since.as_ref());
        match since {
            Some(_) => assert_eq!(ack["recovered"], true, "{user}: {ack}"),
            None => _ = joined.fetch_add(1, Ordering::SeqCst),
        }
        loop {
            let message = match peer.next_json() {
                Ok(message) => message,
                Err(ClientError::Closed { code: 1001, .. }) => break,
                Err(e) => panic!("{user}: {e} after {:?}", followed.seen.last()),
            };
            if message["type"] != "chat" {
                continue;
            }
            let n = message["payload"]["n"].as_u64().expect("payload.n");
            followed.seen.push(n);
            progress.store(n, Ordering::SeqCst);
            since = Some(json!({"offset": message["offset"], "epoch": message["epoch"]}));
            if message["payload"]["last"] == true {
                return followed;
            }
        }
        followed.reconnects += 1;
    }
}

/// Sends 1, 2, 3… to the room, each after the previous one came back, until `stop`; then
/// one more marked `last`. Returns that last number.
fn publish_sequence(mut peer: Peer, stop: &AtomicBool, progress: &AtomicU64) -> u64 {
    peer.join(ROOM, None);
    for n in 1.. {
        let last = stop.load(Ordering::SeqCst);
        peer.send(&json!({"type": "chat", "room": ROOM, "payload": {"n": n, "last": last}}));
        while peer.expect("chat")["payload"]["n"] != n {}
        progress.store(n, Ordering::SeqCst);
        if last {
            return n;
        }
        thread::sleep(Duration::from_millis(25));
    }
    unreachable!()
}

/// Joins `node` with `since` (message `from` of the stream) and checks the replay and the
/// live messages after it are the sequence from `from + 1` on.
fn recover_from_redis(node: &Node, since: &Value, from: u64, published: &AtomicU64) {
    let mut peer = Peer::connect(&node.ws_url("offline"), "offline");
    let joined = peer.join(ROOM, Some(since));
    assert_eq!(joined["recovered"], true, "{joined}");
    let until = published.load(Ordering::SeqCst) + 1;
    for n in from + 1..=until {
        assert_eq!(
            peer.expect("chat")["payload"]["n"],
            n,
            "offline client on {}",
            node.id
        );
    }
    peer.close();
}

/// Waits until a new connection through nginx lands on `node` again.
fn back_in_rotation(nginx: &Nginx, node: &Node) {
    eventually(&format!("nginx sends clients to {} again", node.id), || {
        let probe = Peer::try_connect(&nginx.ws_url("probe"), "probe", &[]).ok()?;
        let landed = node.hub_connections() > 0;
        probe.close();
        landed.then_some(())
    });
}

/// Fails the test at once if a thread has ended (none may before the stream does), with
/// its panic message.
fn check<T>(threads: &mut Vec<JoinHandle<T>>) {
    if let Some(i) = threads.iter().position(JoinHandle::is_finished) {
        match threads.remove(i).join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(_) => panic!("a thread ended before the stream did"),
        }
    }
}

#[test]
fn sigterm_mid_stream_loses_nothing_for_anyone() {
    let dir = TempDir::new("cluster-rolling");
    let redis = Redis::start(dir.path());
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .map(|id| Node::start(dir.path(), id, &redis))
        .collect();
    let nginx = Nginx::start(dir.path(), &[&nodes[0], &nodes[1], &nodes[2]]);

    let joined = Arc::new(AtomicUsize::new(0));
    let progress: Vec<Arc<AtomicU64>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let mut clients: Vec<JoinHandle<Followed>> = (0..CLIENTS)
        .map(|i| {
            let user = format!("c{i}");
            let url = nginx.ws_url(&user);
            let (joined, progress) = (joined.clone(), progress[i].clone());
            thread::spawn(move || follow(&url, &user, &joined, &progress))
        })
        .collect();
    eventually("every client joins", || {
        check(&mut clients);
        (joined.load(Ordering::SeqCst) == CLIENTS).then_some(())
    });
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    // The publisher sits on n1, which stays up.
    let publisher = Peer::connect(&nodes[0].ws_url("publisher"), "publisher");
    let mut publishers = vec![{
        let (stop, published) = (stop.clone(), published.clone());
        thread::spawn(move || publish_sequence(publisher, &stop, &published))
    }];
    // Everyone is receiving before the first node goes.
    eventually("every client receives the stream", || {
        check(&mut clients);
        check(&mut publishers);
        progress
            .iter()
            .all(|p| p.load(Ordering::SeqCst) > 0)
            .then_some(())
    });

    // A client that goes offline now and comes back after n3's restart, straight to n3,
    // whose own copy of the history starts at its restart: its recovery comes from Redis.
    let mut offline = Peer::connect(&nodes[0].ws_url("offline"), "offline");
    offline.join(ROOM, None);
    let seen = offline.expect("chat");
    let since = json!({"offset": seen["offset"], "epoch": seen["epoch"]});
    let offline_n = seen["payload"]["n"].as_u64().expect("payload.n");
    offline.close();

    let mut moved = 0;
    for victim in [2, 1] {
        let node = &mut nodes[victim];
        let here = node.hub_connections();
        assert!(here > 0, "node {} has no clients to move", node.id);
        moved += here;
        node.terminate();
        node.wait_clean_exit();
        node.restart();
        if victim == 2 {
            recover_from_redis(&nodes[2], &since, offline_n, &published);
        }
        // Every client has caught up past this point before the next node goes.
        let now = published.load(Ordering::SeqCst);
        eventually("clients catch up after the restart", || {
            check(&mut clients);
            check(&mut publishers);
            progress
                .iter()
                .all(|p| p.load(Ordering::SeqCst) > now)
                .then_some(())
        });
        if victim == 2 {
            // nginx takes n3 back (passive checks: after fail_timeout), so the next node's
            // clients can move to it.
            back_in_rotation(&nginx, &nodes[victim]);
        }
    }
    assert!(
        nodes[2].hub_connections() > 0,
        "n2's clients moved to the restarted n3 too"
    );
    stop.store(true, Ordering::SeqCst);
    let last = publishers.remove(0).join().expect("the publisher");
    assert!(
        last > 20,
        "the stream was long enough to cross both restarts"
    );

    let mut reconnects = 0;
    for (i, client) in clients.into_iter().enumerate() {
        let followed = client.join().expect("a client thread");
        assert_eq!(
            followed.seen,
            (1..=last).collect::<Vec<u64>>(),
            "c{i} after {} reconnects",
            followed.reconnects
        );
        reconnects += followed.reconnects;
    }
    // Exactly the clients of the stopped nodes moved (some twice), and nobody else.
    assert_eq!(reconnects, moved);
}
