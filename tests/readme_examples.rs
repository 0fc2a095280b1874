//! README's examples, run as written against the real binary: the hub session (`>` sent by
//! alice, `<` received: same fields, same values but for ids, times and offsets), the
//! publish block (its curl and `wsloop publish` lines through `sh`), and README's sentence
//! on which deliveries carry `room`, `recipient_id` or neither.

mod common;

use std::path::Path;
use std::process::Command;

use common::Client;
use common::guard::{Served, expect_welcome, open_with, read_json, send_json};
use serde_json::{Value, json};

/// Fields whose values differ from run to run: only their JSON type is compared.
const VOLATILE: [&str; 4] = ["timestamp", "connection_id", "epoch", "offset"];

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(path).expect("README.md")
}

/// The first fenced block after the line containing `marker`.
fn block_after(text: &str, marker: &str) -> Vec<String> {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("README lacks {marker:?}"));
    let mut lines = text[start..]
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1);
    let block: Vec<String> = lines
        .by_ref()
        .take_while(|l| !l.starts_with("```"))
        .map(str::to_owned)
        .collect();
    assert!(!block.is_empty(), "empty block after {marker:?}");
    block
}

/// Asserts `got` has exactly `want`'s fields, with equal values (volatile ones: same type).
fn assert_shape(got: &Value, want: &Value) {
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        panic!("not objects: {got} / {want}");
    };
    let mut got_keys: Vec<&String> = g.keys().collect();
    let mut want_keys: Vec<&String> = w.keys().collect();
    got_keys.sort();
    want_keys.sort();
    assert_eq!(
        got_keys, want_keys,
        "fields differ:\n got  {got}\n want {want}"
    );
    for (key, value) in w {
        if VOLATILE.contains(&key.as_str()) {
            let same_type = std::mem::discriminant(value) == std::mem::discriminant(&g[key]);
            assert!(same_type, "{key}: {} vs {value}", g[key]);
        } else {
            assert_eq!(&g[key], value, "{key}:\n got  {got}\n want {want}");
        }
    }
}

/// A hub connection as `user` that has joined `room` (its replies read).
fn member(served: &Served, user: &str, room: &str) -> Client {
    let mut client = open_with(served.addr, &format!("/ws?user_id={user}"), &[]);
    assert_eq!(expect_welcome(&mut client), user);
    send_json(&mut client, &json!({"type": "join", "room": room}));
    assert_eq!(read_json(&mut client)["type"], "joined");
    client
}

#[test]
fn the_hub_session_runs_as_written() {
    let session = block_after(&readme(), "An example session");
    let served = Served::start(&[], &[]);
    let _bob = member(&served, "bob", "lobby");
    let mut alice = open_with(served.addr, "/ws?user_id=alice", &[]);
    let mut carol = None;
    let mut checked = 0;
    for line in &session {
        let (dir, text) = line.split_at(2);
        let message: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{line}: {e}"));
        match dir {
            "> " => send_json(&mut alice, &message),
            "< " => {
                if message["type"] == "presence" && carol.is_none() {
                    let user = message["user_id"].as_str().expect("presence user");
                    carol = Some(member(&served, user, "lobby"));
                }
                assert_shape(&read_json(&mut alice), &message);
                checked += 1;
            }
            _ => panic!("a session line starts with `> ` or `< `: {line}"),
        }
    }
    assert!(checked >= 6, "only {checked} replies in README's session");
}

#[test]
fn the_publish_block_runs_as_written() {
    let block = block_after(&readme(), "## Publishing from a backend");
    let served = Served::start(&[], &[("WSLOOP_API_KEYS", "s3cr3t")]);
    let mut members: Vec<Client> = ["p1", "p2", "p3"]
        .iter()
        .map(|u| member(&served, u, "orders-42"))
        .collect();
    let addr = served.addr.to_string();
    let script: Vec<String> = block
        .iter()
        .filter(|l| !l.starts_with("wsloop serve"))
        .map(|l| l.replace("127.0.0.1:8080", &addr))
        .collect();
    let expected: Vec<Value> = block
        .iter()
        .filter_map(|l| l.strip_prefix("# "))
        .map(|j| serde_json::from_str(j).expect("README's answer is JSON"))
        .collect();
    let bin = Path::new(env!("CARGO_BIN_EXE_wsloop"))
        .parent()
        .expect("bin dir");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-ec", &script.join("\n")])
        .env("PATH", path)
        .env_remove("WSLOOP_API_KEYS")
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // curl prints its answer without a newline: read the JSON values one after another.
    let answers: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .map(|v| v.unwrap_or_else(|e| panic!("{stdout}: {e}")))
        .collect();
    assert_eq!(
        answers.len(),
        2,
        "curl and wsloop publish each print an answer: {stdout}"
    );
    for (got, want) in answers.iter().zip(&expected) {
        assert_shape(got, want);
        assert_eq!(got["delivered"], 3, "{got}");
    }
    assert_eq!(
        answers[1]["offset"].as_u64(),
        answers[0]["offset"].as_u64().map(|o| o + 1)
    );
    for client in &mut members {
        let mut notifications = 0;
        while notifications < 2 {
            let got = read_json(client);
            if got["type"] == "presence" {
                continue; // the other members joining
            }
            notifications += 1;
            assert_eq!(got["type"], "notification", "{got}");
            assert_eq!(got["payload"], json!({"title": "Shipped"}), "{got}");
            assert_eq!(
                (&got["room"], &got["sender_id"]),
                (&json!("orders-42"), &json!("server"))
            );
        }
    }
}

#[test]
fn deliveries_carry_room_or_recipient_id_or_neither_for_a_broadcast() {
    let text = readme();
    assert!(
        text.contains("or neither (a broadcast to everyone"),
        "README states what a broadcast carries"
    );
    let served = Served::start(&[], &[]);
    let mut bob = member(&served, "bob", "lobby");
    let mut alice = member(&served, "alice", "lobby");
    assert_eq!(read_json(&mut bob)["type"], "presence");
    for (request, kind, field) in [
        (
            json!({"type": "chat", "room": "lobby", "payload": 1}),
            "chat",
            Some("room"),
        ),
        (
            json!({"type": "private", "recipient_id": "bob", "payload": 2}),
            "private",
            Some("recipient_id"),
        ),
        (json!({"type": "chat", "payload": 3}), "chat", None),
    ] {
        send_json(&mut alice, &request);
        let got = read_json(&mut bob);
        assert_eq!(got["type"], kind, "{got}");
        let has = |f: &str| got.get(f).is_some();
        match field {
            Some(f) => assert!(has(f), "{got}"),
            None => assert!(!has("room") && !has("recipient_id"), "a broadcast: {got}"),
        }
    }
}
