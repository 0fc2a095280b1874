//! `wsloop admin` against the real binary: a `wsloop serve --api-key` child, hub clients in
//! rooms, and the CLI's tables and `--json` checked against what the clients did. A refusal
//! (wrong key, API off, unknown room) exits 1 with the server's `error: message` on stderr
//! and nothing on stdout; no key at all exits 2; a server that is not there exits 3.

mod common;

use common::guard::{Finished, Served, run_wsloop};
use common::hub::HubClient;
use serde_json::{Value, json};

const KEY: &str = "admin-cli-tests-key-91c2d4";

/// `wsloop admin --url http://ADDR ARGS` with `env`.
fn admin(served: &Served, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let url = format!("http://{}", served.addr);
    let mut full = vec!["admin", "--url", url.as_str()];
    full.extend_from_slice(args);
    run_wsloop(&full, env)
}

/// `wsloop admin --key KEY ARGS`; asserts success and returns stdout.
fn table(served: &Served, args: &[&str]) -> String {
    let mut full = vec!["--key", KEY];
    full.extend_from_slice(args);
    let finished = admin(served, &full, &[]);
    finished.assert_success();
    assert!(
        finished.stderr.is_empty(),
        "alone: no missing nodes: {finished:?}"
    );
    finished.stdout
}

/// `wsloop admin --key KEY --json ARGS`; asserts success and returns the JSON printed.
fn json_answer(served: &Served, args: &[&str]) -> Value {
    let mut full = vec!["--key", KEY, "--json"];
    full.extend_from_slice(args);
    let finished = admin(served, &full, &[]);
    finished.assert_success();
    assert_eq!(finished.stdout.lines().count(), 1, "{finished:?}");
    serde_json::from_str(&finished.stdout).unwrap_or_else(|e| panic!("{e}: {finished:?}"))
}

/// The table's lines as whitespace-separated cells.
fn cells(stdout: &str) -> Vec<Vec<String>> {
    stdout
        .lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Asserts exit status `code`, `fragments` on stderr, and nothing on stdout.
fn assert_failed(finished: &Finished, code: i32, fragments: &[&str]) {
    assert_eq!(
        finished.status.and_then(|s| s.code()),
        Some(code),
        "{finished:?}"
    );
    for fragment in fragments {
        assert!(
            finished.stderr.contains(fragment),
            "stderr should name {fragment:?}: {finished:?}"
        );
    }
    assert!(finished.stdout.is_empty(), "{finished:?}");
}

/// A hub client on the child server as `user`.
fn connect(served: &Served, user: &str) -> HubClient {
    let mut raw = served.connect();
    raw.upgrade(&format!("/ws?user_id={user}"));
    let client = HubClient::from_raw(raw);
    assert_eq!(client.user_id, user);
    client
}

#[test]
fn info_shows_this_node_ready_with_its_connections() {
    let served = Served::start(&["--api-key", KEY], &[]);
    let _alice = connect(&served, "alice");

    let answer = json_answer(&served, &["info"]);
    assert_eq!(answer["version"], env!("CARGO_PKG_VERSION"), "{answer}");
    assert_eq!(answer["missing"], json!([]), "{answer}");
    let nodes = answer["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{answer}");
    assert_eq!(nodes[0]["node"], answer["node"], "{answer}");
    assert_eq!(nodes[0]["status"], "ready", "{answer}");
    assert_eq!(nodes[0]["connections"], 1, "{answer}");

    let printed = cells(&table(&served, &["info"]));
    assert_eq!(
        printed[0][..2],
        ["version", env!("CARGO_PKG_VERSION")],
        "{printed:?}"
    );
    assert_eq!(
        printed[1],
        ["NODE", "VERSION", "STATUS", "CONNECTIONS", "UPTIME"]
    );
    let node = answer["nodes"][0]["node"].as_str().expect("node id");
    assert_eq!(
        printed[2][..4],
        [node, env!("CARGO_PKG_VERSION"), "ready", "1"]
    );
    assert_eq!(printed.len(), 3, "{printed:?}");
}

#[test]
fn rooms_and_presence_show_who_is_where() {
    let served = Served::start(&["--api-key", KEY], &[]);
    let mut alice = connect(&served, "alice");
    let mut alice_2 = connect(&served, "alice");
    let mut bob = connect(&served, "bob");
    alice.join("team-blue");
    alice_2.join("team-blue");
    bob.join("team-blue");
    bob.join("zz-solo");

    let answer = json_answer(&served, &["rooms"]);
    let rooms = answer["rooms"].as_array().expect("rooms");
    let mine: Vec<&Value> = rooms
        .iter()
        .filter(|r| r["room"] == "team-blue" || r["room"] == "zz-solo")
        .collect();
    assert_eq!(
        mine,
        [
            &json!({"room": "team-blue", "users": 2, "connections": 3}),
            &json!({"room": "zz-solo", "users": 1, "connections": 1})
        ],
        "{answer}"
    );
    let printed = cells(&table(&served, &["rooms"]));
    assert_eq!(printed[0], ["ROOM", "USERS", "CONNECTIONS"]);
    assert!(
        printed.contains(&vec!["team-blue".into(), "2".into(), "3".into()]),
        "{printed:?}"
    );
    assert!(
        printed.contains(&vec!["zz-solo".into(), "1".into(), "1".into()]),
        "{printed:?}"
    );

    let printed = cells(&table(&served, &["presence", "team-blue"]));
    assert_eq!(
        printed,
        [
            vec!["USER", "CONNECTIONS"],
            vec!["alice", "2"],
            vec!["bob", "1"]
        ],
        "sorted by user"
    );
    let answer = json_answer(&served, &["presence", "zz-solo"]);
    assert_eq!(
        answer["users"],
        json!([{"user_id": "bob", "connections": 1}])
    );

    // A room nobody is in: 404 unknown_room, exit 1.
    let nobody = admin(&served, &["--key", KEY, "presence", "empty-room"], &[]);
    assert_failed(&nobody, 1, &["unknown_room", "404"]);
    // After leaving, the room is gone from the list.
    bob.leave("zz-solo");
    let answer = json_answer(&served, &["rooms"]);
    assert!(
        !answer["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .any(|r| r["room"] == "zz-solo"),
        "{answer}"
    );
}

#[test]
fn history_lists_a_rooms_messages_from_an_offset() {
    let served = Served::start(&["--api-key", KEY], &[("WSLOOP_HISTORY_SIZE", "50")]);
    let mut alice = connect(&served, "alice");
    alice.join("news");
    for n in 1..=3 {
        alice.chat(Some("news"), json!({"n": n}), None);
        let echoed = alice.next_skipping(&["presence"]);
        assert_eq!(echoed["payload"], json!({"n": n}), "{echoed}");
    }

    let answer = json_answer(&served, &["history", "news"]);
    let messages = answer["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3, "{answer}");
    assert_eq!(answer["last"], messages[2]["offset"], "{answer}");
    for (n, message) in (1..).zip(messages) {
        assert_eq!(
            (&message["type"], &message["room"], &message["sender_id"]),
            (&json!("chat"), &json!("news"), &json!("alice")),
            "{message}"
        );
        assert_eq!(message["payload"], json!({"n": n}), "{message}");
    }
    let first = messages[0]["offset"].as_u64().expect("offset");

    let since = first.to_string();
    let printed = cells(&table(
        &served,
        &["history", "news", "--since", &since, "--limit", "1"],
    ));
    assert_eq!(printed[0][..2], ["room", "news"], "{printed:?}");
    assert_eq!(
        printed[1],
        ["OFFSET", "TIMESTAMP", "SENDER", "TYPE", "PAYLOAD"]
    );
    assert_eq!(printed.len(), 3, "one message after {since}: {printed:?}");
    let row = &printed[2];
    assert_eq!(row[0], (first + 1).to_string(), "{printed:?}");
    assert_eq!(row[2..], ["alice", "chat", r#"{"n":2}"#], "{printed:?}");

    // A room without history: 404 unknown_room.
    let none = admin(&served, &["--key", KEY, "history", "never-used"], &[]);
    assert_failed(&none, 1, &["unknown_room"]);
    // History off: 404 history_off.
    let off = Served::start(&["--api-key", KEY], &[("WSLOOP_HISTORY_SIZE", "0")]);
    let off = admin(&off, &["--key", KEY, "history", "news"], &[]);
    assert_failed(&off, 1, &["history_off", "404"]);
    // --limit is checked before anything is sent.
    let bad = admin(
        &served,
        &["--key", KEY, "history", "news", "--limit", "0"],
        &[],
    );
    assert_eq!(bad.status.and_then(|s| s.code()), Some(2), "{bad:?}");
}

#[test]
fn disconnect_closes_every_connection_of_the_user_with_the_code() {
    let served = Served::start(&["--api-key", KEY], &[]);
    let alice = connect(&served, "alice");
    let alice_2 = connect(&served, "alice");
    let mut bob = connect(&served, "bob");

    let printed = table(
        &served,
        &[
            "disconnect",
            "alice",
            "--code",
            "4003",
            "--reason",
            "banned",
        ],
    );
    assert_eq!(printed, "disconnected 2 connection(s)\n");
    for client in [alice, alice_2] {
        assert_eq!(client.expect_close(4003), "banned");
    }
    bob.expect_no_message_within(std::time::Duration::from_millis(200));

    // Nobody left: 0, and the JSON as the server sent it.
    let answer = json_answer(&served, &["disconnect", "alice"]);
    assert_eq!(answer, json!({"disconnected": 0, "missing": []}));
    // The default code is 4000.
    let bob_disconnected = json_answer(&served, &["disconnect", "bob"]);
    assert_eq!(bob_disconnected["disconnected"], 1);
    bob.expect_close(4000);
    // A code outside 4000–4999 is refused before anything is sent.
    let bad = admin(
        &served,
        &["--key", KEY, "disconnect", "x", "--code", "1000"],
        &[],
    );
    assert_eq!(bad.status.and_then(|s| s.code()), Some(2), "{bad:?}");
    // What only the server checks comes back as its 400 and exit 1.
    let spaced = admin(&served, &["--key", KEY, "disconnect", "a b"], &[]);
    assert_failed(&spaced, 1, &["bad_request", "user id", "400"]);
    let long = "r".repeat(124);
    let long = admin(
        &served,
        &["--key", KEY, "disconnect", "x", "--reason", &long],
        &[],
    );
    assert_failed(&long, 1, &["bad_request", "123 bytes"]);
}

#[test]
fn refusals_exit_non_zero_with_the_servers_message() {
    let served = Served::start(&["--api-key", KEY], &[]);
    let _alice = connect(&served, "alice");

    let wrong = admin(&served, &["--key", "not-the-key", "info"], &[]);
    assert_failed(&wrong, 1, &["unauthorized", "401"]);
    let wrong = admin(
        &served,
        &["disconnect", "alice"],
        &[("WSLOOP_API_KEYS", "nope")],
    );
    assert_failed(&wrong, 1, &["unauthorized"]);
    // The key from the environment: the first of the list.
    let keys = format!("{KEY},other");
    let from_env = admin(&served, &["--json", "info"], &[("WSLOOP_API_KEYS", &keys)]);
    from_env.assert_success();

    let no_key = admin(&served, &["rooms"], &[("WSLOOP_API_KEYS", "")]);
    assert_failed(&no_key, 2, &["no API key"]);

    let off = Served::start(&[], &[]);
    let api_off = admin(&off, &["--key", KEY, "rooms"], &[]);
    assert_failed(&api_off, 1, &["api_off", "404"]);

    let nowhere = run_wsloop(
        &["admin", "--url", "http://127.0.0.1:1", "--key", KEY, "info"],
        &[],
    );
    assert_failed(&nowhere, 3, &["cannot connect"]);
    let bad_url = run_wsloop(&["admin", "--url", "ws://x", "--key", KEY, "info"], &[]);
    assert_failed(&bad_url, 2, &["http://"]);
}
