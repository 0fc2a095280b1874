//! History on disk: a single node with `--history-dir`, killed with SIGKILL mid-stream and
//! restarted, still recovers every message it acknowledged (`join` with `since`), under
//! the same epoch, and numbers new messages after them. A message the disk refuses (the
//! file size limit, as on a full disk) is neither delivered nor acked: its sender gets
//! `unavailable` (the publish API: 503), and a restart recovers exactly the acked messages.

mod cluster;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster::procs::{free_port, listening};
use serde_json::{Value, json};
use wsloop::client::{Client, ClientOptions, Message};

/// The real binary as a child process, killed when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path) -> (Node, u16) {
    start_with(dir, None)
}

/// Starts the node on a free port, and returns it with the port; with `max_file_kib`,
/// under that file size limit (`ulimit -f`, with SIGXFSZ ignored, so a write past it
/// fails with EFBIG like one to a full disk).
///
/// Another test may bind the port between `free_port` and the node's bind: then the
/// probe reaches that test's server and this node exits at its failed bind, so a node
/// that is not running once the port answers is started again on another port.
fn start_with(dir: &std::path::Path, max_file_kib: Option<u32>) -> (Node, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut node = spawn(port, dir, max_file_kib);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !listening(port) {
            assert!(Instant::now() < deadline, "wsloop did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        // A failed bind ends the process within milliseconds.
        std::thread::sleep(Duration::from_millis(100));
        if node.0.try_wait().expect("the node's status").is_none() {
            return (node, port);
        }
    }
    panic!("wsloop lost its port to another process 5 times");
}

/// Spawns the node on `port` (see [`start_with`]).
fn spawn(port: u16, dir: &std::path::Path, max_file_kib: Option<u32>) -> Node {
    let mut command = match max_file_kib {
        Some(kib) => {
            let mut sh = Command::new("sh");
            let script = format!("trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"", kib * 2);
            sh.args(["-c", &script, env!("CARGO_BIN_EXE_wsloop")]);
            sh
        }
        None => Command::new(env!("CARGO_BIN_EXE_wsloop")),
    };
    let child = command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--rate-limit",
            "off",
            "--handshake-rate",
            "0",
        ])
        .args([
            "--history-dir",
            &dir.display().to_string(),
            "--api-key",
            API_KEY,
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wsloop starts");
    Node(child)
}

/// Kills `node` (SIGKILL), restarts it on `dir`, and returns the `n` of every message of
/// room `r` a new member recovers from the start of its history.
fn recovered_after_a_kill_9(mut node: Node, dir: &std::path::Path) -> Vec<u64> {
    node.0.kill().expect("SIGKILL");
    node.0.wait().unwrap();
    // A fresh port: another test may have been given the old one meanwhile.
    let (_node, port) = start(dir);
    let mut carol = connect(port, "carol");
    expect_type(&mut carol, "welcome");
    carol
        .send_text(&json!({"type":"join","room":"r"}).to_string())
        .unwrap();
    let joined = expect_type(&mut carol, "joined");
    let since = json!({"offset":0,"epoch":joined["epoch"]});
    carol
        .send_text(&json!({"type":"join","room":"r","since":since}).to_string())
        .unwrap();
    // The replay follows `joined`: wait for it on the long timeout, so that `drain`'s short
    // one only has to cover the gaps between messages already on their way.
    expect_type(&mut carol, "joined");
    drain(&mut carol)
        .iter()
        .filter(|m| m["room"] == "r" && m["payload"].is_object())
        .map(|m| m["payload"]["n"].as_u64().unwrap())
        .collect()
}

/// The key the node's publish API accepts.
const API_KEY: &str = "history-test-key";

/// `POST /api/publish` with `body`; returns the status and the JSON answer.
fn api_publish(port: u16, body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (status.expect("a status line"), json)
}

fn json_of(client: &mut Client) -> Value {
    loop {
        match client.recv().expect("a message") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            _ => continue,
        }
    }
}

fn expect_type(client: &mut Client, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no {kind} message");
        let v = json_of(client);
        if v["type"] == kind {
            return v;
        }
    }
}

fn connect(port: u16, user: &str) -> Client {
    let client = Client::connect(
        &format!("ws://127.0.0.1:{port}/ws?user_id={user}"),
        &ClientOptions::default(),
    )
    .expect("connects");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
}

/// What the client was told before the kill: acked offsets with their `n`, and the epoch.
struct Acked {
    epoch: String,
    offsets: BTreeMap<u64, u64>,
}

/// Sends numbered chats to `room` with ids, `batch` at a time, until `count` are
/// acknowledged; then sends one more batch and returns without waiting for it.
fn acked_then_in_flight(client: &mut Client, room: &str, count: u64, batch: u64) -> Acked {
    client
        .send_text(&json!({"type":"join","room":room}).to_string())
        .unwrap();
    let epoch = expect_type(client, "joined")["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut offsets = BTreeMap::new();
    for start in (1..=count + batch).step_by(usize::try_from(batch).unwrap()) {
        for n in start..start + batch {
            let request = json!({"type":"chat","id":n,"room":room,"payload":{"n":n}});
            client.send_text(&request.to_string()).unwrap();
        }
        if start > count {
            break;
        }
        for _ in 0..batch {
            let ack = expect_type(client, "ack");
            let offset = ack["offset"].as_u64().expect("acks carry the offset");
            offsets.insert(offset, ack["id"].as_u64().unwrap());
        }
    }
    Acked { epoch, offsets }
}

#[test]
fn kill_9_mid_stream_and_restart_recovers_every_acknowledged_message() {
    let dir = std::env::temp_dir().join(format!("wsloop-history-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut node, port) = start(&dir);
    let mut alice = connect(port, "alice");
    expect_type(&mut alice, "welcome");
    // 50 messages acknowledged, 10 more in flight when SIGKILL comes: those may or may not
    // have been written, but every acknowledged one must come back.
    let acked = acked_then_in_flight(&mut alice, "orders", 50, 10);
    assert_eq!(acked.offsets.len(), 50);
    node.0.kill().expect("SIGKILL");
    node.0.wait().unwrap();
    drop((node, alice));

    // A fresh port: another test may have been given the old one meanwhile.
    let (_node, port) = start(&dir);
    let mut bob = connect(port, "bob");
    expect_type(&mut bob, "welcome");
    let since = json!({"offset":0,"epoch":acked.epoch});
    bob.send_text(&json!({"type":"join","room":"orders","since":since}).to_string())
        .unwrap();
    let joined = expect_type(&mut bob, "joined");
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(
        joined["epoch"], acked.epoch,
        "the epoch survives the restart"
    );
    let last = joined["offset"].as_u64().unwrap();
    let newest_acked = *acked.offsets.keys().last().unwrap();
    assert!(
        last >= newest_acked,
        "{last} < {newest_acked}: acked messages were lost"
    );
    // Everything written is replayed, in order, and every acknowledged message is in it.
    let replayed: Vec<(u64, u64)> = (1..=last)
        .map(|_| {
            let m = expect_type(&mut bob, "chat");
            let n = m["payload"]["n"].as_u64().unwrap();
            (m["offset"].as_u64().unwrap(), n)
        })
        .collect();
    let offsets: Vec<u64> = replayed.iter().map(|(offset, _)| *offset).collect();
    assert_eq!(offsets, (1..=last).collect::<Vec<_>>());
    let replayed: BTreeMap<u64, u64> = replayed.into_iter().collect();
    for (offset, n) in &acked.offsets {
        assert_eq!(
            replayed.get(offset),
            Some(n),
            "acked offset {offset} came back as sent"
        );
    }
    // New messages continue the offsets.
    bob.send_text(&json!({"type":"chat","room":"orders","payload":{"n":0}}).to_string())
        .unwrap();
    assert_eq!(expect_type(&mut bob, "chat")["offset"], last + 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every message `client` has until it is quiet for half a second.
fn drain(client: &mut Client) -> Vec<Value> {
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = Vec::new();
    while let Ok(Message::Text(text)) = client.recv() {
        got.push(serde_json::from_str(&text).expect("JSON"));
    }
    got
}

#[test]
fn a_write_the_disk_refuses_is_neither_delivered_nor_acked() {
    let dir = std::env::temp_dir().join(format!("wsloop-history-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (node, port) = start_with(&dir, Some(4));
    let mut alice = connect(port, "alice");
    let mut bob = connect(port, "bob");
    for client in [&mut alice, &mut bob] {
        expect_type(client, "welcome");
        client
            .send_text(&json!({"type":"join","room":"r"}).to_string())
            .unwrap();
        expect_type(client, "joined");
    }
    // One at a time, each answered before the next, until the disk has refused a few.
    let (mut acked, mut refused) = (BTreeMap::new(), Vec::new());
    for n in 1..=200u64 {
        let request =
            json!({"type":"chat","id":n,"room":"r","payload":{"n":n,"pad":"x".repeat(100)}});
        alice.send_text(&request.to_string()).unwrap();
        let answer = loop {
            let m = json_of(&mut alice);
            if m["id"] == n {
                break m;
            }
        };
        match answer["type"].as_str() {
            Some("ack") => _ = acked.insert(answer["offset"].as_u64().expect("offset"), n),
            Some("error") => {
                assert_eq!(answer["code"], "unavailable", "{answer}");
                refused.push(n);
                if refused.len() == 3 {
                    break;
                }
            }
            _ => panic!("{answer}"),
        }
    }
    assert!(
        !acked.is_empty() && refused.len() == 3,
        "acked {acked:?}, refused {refused:?}"
    );
    let offsets: Vec<u64> = acked.keys().copied().collect();
    assert_eq!(
        offsets,
        (1..=acked.len() as u64).collect::<Vec<_>>(),
        "no hole in the offsets"
    );
    let heard: Vec<u64> = drain(&mut bob)
        .iter()
        .filter(|m| m["type"] == "chat")
        .map(|m| m["payload"]["n"].as_u64().unwrap())
        .collect();
    let sent: Vec<u64> = acked.values().copied().collect();
    assert_eq!(heard, sent, "bob got exactly the acked messages");

    let recovered = recovered_after_a_kill_9(node, &dir);
    assert_eq!(
        recovered, sent,
        "a restart recovers the acked messages, nothing else"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The publish API's 200 says the message is in history: a message the disk refuses gets
/// 503 `unavailable` instead, reaches nobody, and is not recovered after a restart.
#[test]
fn an_api_publish_the_disk_refuses_is_answered_503() {
    let dir = std::env::temp_dir().join(format!("wsloop-history-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (node, port) = start_with(&dir, Some(4));
    let mut bob = connect(port, "bob");
    expect_type(&mut bob, "welcome");
    bob.send_text(&json!({"type":"join","room":"r"}).to_string())
        .unwrap();
    expect_type(&mut bob, "joined");
    let (mut published, mut refused) = (Vec::new(), 0);
    for n in 1..=200u64 {
        let body = json!({"room":"r","payload":{"n":n,"pad":"x".repeat(100)}});
        let (status, answer) = api_publish(port, &body);
        match status {
            200 => published.push(n),
            503 => {
                assert_eq!(answer["error"], "unavailable", "{answer}");
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
            _ => panic!("{status} {answer}"),
        }
    }
    assert!(
        !published.is_empty() && refused == 3,
        "published {published:?}, refused {refused}"
    );
    let heard: Vec<u64> = drain(&mut bob)
        .iter()
        .filter(|m| m["room"] == "r")
        .map(|m| m["payload"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(heard, published, "bob got exactly what was answered 200");

    let recovered = recovered_after_a_kill_9(node, &dir);
    assert_eq!(
        recovered, published,
        "a restart recovers what was answered 200"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Private messages and broadcasts are in the log too: after `kill -9` and a restart, a
/// `sync` from the start of each feed gets them back, in order.
#[test]
fn private_messages_and_broadcasts_survive_a_kill_9() {
    let dir = std::env::temp_dir().join(format!("wsloop-history-feeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut node, port) = start(&dir);
    let mut alice = connect(port, "alice");
    let mut bob = connect(port, "bob");
    expect_type(&mut alice, "welcome");
    expect_type(&mut bob, "welcome");
    let mut epochs = BTreeMap::new();
    for n in 1..=6u64 {
        let request = if n % 2 == 0 {
            json!({"type":"private","recipient_id":"bob","id":n,"payload":n})
        } else {
            json!({"type":"chat","id":n,"payload":n})
        };
        alice.send_text(&request.to_string()).unwrap();
        expect_type(&mut alice, "ack");
        let feed = if n % 2 == 0 { "private" } else { "broadcast" };
        let delivered = if n % 2 == 0 {
            expect_type(&mut bob, "private")
        } else {
            expect_type(&mut bob, "chat")
        };
        epochs.insert(feed, delivered["epoch"].clone());
    }
    node.0.kill().expect("SIGKILL");
    node.0.wait().unwrap();
    // A fresh port: another test may have been given the old one meanwhile.
    let (_node, port) = start(&dir);
    let mut bob = connect(port, "bob");
    expect_type(&mut bob, "welcome");
    for (feed, kind, expected) in [
        ("private", "private", [2, 4, 6]),
        ("broadcast", "chat", [1, 3, 5]),
    ] {
        let since = json!({"offset":0,"epoch":epochs[feed]});
        bob.send_text(&json!({"type":"sync","feed":feed,"since":since}).to_string())
            .unwrap();
        let synced = expect_type(&mut bob, "synced");
        assert_eq!(synced["recovered"], true, "{synced}");
        let got: Vec<u64> = (0..3)
            .map(|_| expect_type(&mut bob, kind)["payload"].as_u64().unwrap())
            .collect();
        assert_eq!(got, expected, "{feed} after a restart");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
