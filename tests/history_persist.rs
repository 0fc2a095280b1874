//! History on disk: a single node with `--history-dir`, killed with SIGKILL mid-stream and
//! restarted, still recovers every message it delivered (`join` with `since`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(port: u16, dir: &std::path::Path) -> Node {
    let child = Command::new(env!("CARGO_BIN_EXE_wsloop"))
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
            "--log-level",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wsloop starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "wsloop did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    Node(child)
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

#[test]
fn kill_9_and_restart_recovers_every_delivered_message() {
    let dir = std::env::temp_dir().join(format!("wsloop-history-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let node = start(port, &dir);
    let mut alice = connect(port, "alice");
    expect_type(&mut alice, "welcome");
    alice
        .send_text(&json!({"type":"join","room":"orders"}).to_string())
        .unwrap();
    let epoch = expect_type(&mut alice, "joined")["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 1..=50 {
        alice
            .send_text(&json!({"type":"chat","room":"orders","payload":{"n":n}}).to_string())
            .unwrap();
    }
    // Every one of the 50 was delivered (so it was written to the log first).
    let mut last = 0;
    while last < 50 {
        let v = expect_type(&mut alice, "chat");
        last = v["offset"].as_u64().unwrap();
    }
    let mut node = node;
    node.0.kill().expect("SIGKILL");
    node.0.wait().unwrap();
    drop(alice);

    let _node = start(port, &dir);
    let mut bob = connect(port, "bob");
    expect_type(&mut bob, "welcome");
    bob.send_text(
        &json!({"type":"join","room":"orders","since":{"offset":10,"epoch":epoch}}).to_string(),
    )
    .unwrap();
    let joined = expect_type(&mut bob, "joined");
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(
        joined["epoch"],
        epoch.as_str(),
        "the epoch survives the restart"
    );
    let replayed: Vec<u64> = (11..=50)
        .map(|_| {
            expect_type(&mut bob, "chat")["payload"]["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(replayed, (11..=50).collect::<Vec<u64>>());
    // New messages continue the offsets.
    bob.send_text(&json!({"type":"chat","room":"orders","payload":{"n":51}}).to_string())
        .unwrap();
    assert_eq!(expect_type(&mut bob, "chat")["offset"], 51);
    let _ = std::fs::remove_dir_all(&dir);
}
