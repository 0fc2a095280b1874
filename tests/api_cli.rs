//! `wsloop publish` against the real binary: `wsloop serve --api-key` (or `[api] keys` in a
//! config file, or `WSLOOP_API_KEYS`) takes what the CLI sends; the CLI prints the server's
//! answer and exits 0, and exits non-zero with the status on stderr when the server
//! refuses (401 wrong key, 404 API off, 400 bad message) or cannot be reached.

mod common;

use common::guard::{Finished, Served, TempFile, run_wsloop, run_wsloop_stdin};
use common::hub::HubClient;
use serde_json::{Value, json};

const KEY: &str = "cli-tests-key-6a0b3e";

/// `wsloop publish --url http://ADDR ARGS`.
fn publish(served: &Served, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let url = format!("http://{}", served.addr);
    let mut full = vec!["publish", "--url", url.as_str()];
    full.extend_from_slice(args);
    run_wsloop(&full, env)
}

/// Asserts success and returns the answer the CLI printed (one line of JSON).
fn answer(finished: &Finished) -> Value {
    finished.assert_success();
    assert_eq!(finished.stdout.lines().count(), 1, "{finished:?}");
    serde_json::from_str(&finished.stdout).unwrap_or_else(|e| panic!("{e}: {finished:?}"))
}

/// Asserts a failure exit whose stderr names `status` (and `fragment`), stdout empty.
fn assert_refused(finished: &Finished, status: &str, fragment: &str) {
    let code = finished.status.and_then(|s| s.code());
    assert!(code.is_some_and(|c| c != 0), "{finished:?}");
    assert!(
        finished.stderr.contains(status) && finished.stderr.contains(fragment),
        "stderr should name {status} and {fragment:?}: {finished:?}"
    );
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
fn publish_delivers_to_a_room_a_user_or_everyone_and_prints_the_answer() {
    let served = Served::start(&["--api-key", KEY], &[]);
    let mut alice = connect(&served, "alice");
    let mut bob = connect(&served, "bob");
    alice.join("orders-42");

    let to_room = publish(
        &served,
        &[
            "--key",
            KEY,
            "--room",
            "orders-42",
            r#"{"title":"Shipped"}"#,
        ],
        &[],
    );
    let printed = answer(&to_room);
    assert_eq!(printed["delivered"], 1, "{printed}");
    assert!(printed["offset"].is_u64(), "history on: {printed}");
    let message = alice.expect("notification");
    assert_eq!(
        (&message["room"], &message["payload"], &message["sender_id"]),
        (
            &json!("orders-42"),
            &json!({"title": "Shipped"}),
            &json!("server")
        ),
        "{message}"
    );

    // A plain word is sent as a JSON string; --type sets the type.
    let to_user = publish(
        &served,
        &[
            "--key", KEY, "--user", "bob", "--type", "job.done", "finished",
        ],
        &[],
    );
    // The first message of bob's inbox (private messages are numbered per recipient).
    assert_eq!(answer(&to_user), json!({"delivered": 1, "offset": 1}));
    let message = bob.expect("job.done");
    assert_eq!(
        (&message["recipient_id"], &message["payload"]),
        (&json!("bob"), &json!("finished")),
        "{message}"
    );

    // Neither --room nor --user: everyone. A trailing slash on the URL is fine.
    let url = format!("http://{}/", served.addr);
    let everyone = run_wsloop(&["publish", "--url", &url, "--key", KEY, "[1,2]"], &[]);
    assert_eq!(answer(&everyone), json!({"delivered": 2, "offset": 1}));
    for client in [&mut alice, &mut bob] {
        assert_eq!(client.expect("notification")["payload"], json!([1, 2]));
    }
}

/// The payload from a file (`@FILE`) or stdin (`-`); JSON that does not parse is refused
/// before anything is sent, unless `--string` says to send it as text.
#[test]
fn payloads_come_from_files_or_stdin_and_broken_json_is_refused() {
    let served = Served::start(&["--api-key", KEY], &[]);
    let mut member = connect(&served, "p");
    member.join("r");
    let url = format!("http://{}", served.addr);

    let file = TempFile::new("json", "{\"report\": [1, 2, 3]}\n");
    let from_file = format!("@{}", file.as_str());
    answer(&publish(
        &served,
        &["--key", KEY, "--room", "r", &from_file],
        &[],
    ));
    assert_eq!(
        member.expect("notification")["payload"],
        json!({"report": [1, 2, 3]})
    );

    let args = ["publish", "--url", &url, "--key", KEY, "--room", "r", "-"];
    answer(&run_wsloop_stdin(&args, &[], "{\"from\": \"stdin\"}"));
    assert_eq!(
        member.expect("notification")["payload"],
        json!({"from": "stdin"})
    );

    let broken = publish(
        &served,
        &["--key", KEY, "--room", "r", "{\"unclosed\": 1"],
        &[],
    );
    assert!(!broken.status.is_some_and(|s| s.success()), "{broken:?}");
    assert!(
        broken.stderr.contains("does not parse") && broken.stderr.contains("--string"),
        "{broken:?}"
    );
    let missing = publish(
        &served,
        &["--key", KEY, "--room", "r", "@/nonexistent/payload.json"],
        &[],
    );
    assert!(
        missing.stderr.contains("/nonexistent/payload.json"),
        "{missing:?}"
    );

    let as_text = publish(
        &served,
        &["--key", KEY, "--room", "r", "--string", "{\"unclosed\": 1"],
        &[],
    );
    answer(&as_text);
    // Neither refused payload was delivered: the next message is the --string one.
    assert_eq!(member.expect("notification")["payload"], "{\"unclosed\": 1");
}

#[test]
fn publish_exits_non_zero_when_the_server_refuses() {
    let served = Served::start(&["--api-key", KEY], &[]);
    let mut member = connect(&served, "m");
    member.join("r");

    let wrong_key = publish(&served, &["--key", "wrong", "--room", "r", "1"], &[]);
    assert_refused(&wrong_key, "401", "API key");
    let reserved = publish(&served, &["--key", KEY, "--type", "welcome", "1"], &[]);
    assert_refused(&reserved, "400", "reserved");
    let bad_room = publish(&served, &["--key", KEY, "--room", "a b", "1"], &[]);
    assert_refused(&bad_room, "400", "room");

    // None of them delivered anything: the next message is this one.
    let ok = publish(&served, &["--key", KEY, "--room", "r", "last"], &[]);
    answer(&ok);
    assert_eq!(member.expect("notification")["payload"], "last");

    let off = Served::start(&[], &[]);
    let refused = publish(&off, &["--key", KEY, "1"], &[]);
    assert_refused(&refused, "404", "off");
}

#[test]
fn publish_fails_cleanly_without_a_server_or_with_conflicting_targets() {
    // Port 1 is privileged: no test listens there.
    let url = "http://127.0.0.1:1";
    let nobody = run_wsloop(&["publish", "--url", url, "--key", KEY, "1"], &[]);
    assert_refused(&nobody, "cannot connect", "");

    let both = run_wsloop(
        &["publish", "--key", KEY, "--room", "r", "--user", "u", "1"],
        &[],
    );
    assert_eq!(both.status.and_then(|s| s.code()), Some(2), "{both:?}");
    assert!(both.stderr.contains("--user"), "{both:?}");
}

#[test]
fn keys_come_from_the_environment_for_both_server_and_cli() {
    let keys = [("WSLOOP_API_KEYS", "env-key-1,env-key-2")];
    let served = Served::start(&[], &keys);
    let mut client = connect(&served, "e");
    // The CLI takes the first key of WSLOOP_API_KEYS when --key is absent.
    assert_eq!(
        answer(&publish(&served, &["one"], &keys)),
        json!({"delivered": 1, "offset": 1})
    );
    assert_eq!(client.expect("notification")["payload"], "one");
    let second = publish(&served, &["--key", "env-key-2", "two"], &[]);
    assert_eq!(answer(&second), json!({"delivered": 1, "offset": 2}));
    assert_eq!(client.expect("notification")["payload"], "two");
    let missing = publish(&served, &["three"], &[]);
    assert!(!missing.status.is_some_and(|s| s.success()), "{missing:?}");
}

#[test]
fn a_config_file_server_room_refuses_clients_and_takes_the_cli() {
    let config = TempFile::new(
        "toml",
        &format!(
            r#"
[api]
keys = ["{KEY}"]
sender_id = "ops"

[[rooms]]
pattern = "announcements"
join = "anyone"
publish = "server"
"#
        ),
    );
    let served = Served::start(&["--config", config.as_str()], &[]);
    let mut reader = connect(&served, "reader");
    reader.join("announcements");
    reader.chat(Some("announcements"), json!("me too"), None);
    let refused = reader.expect_error("forbidden");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("announcements")),
        "{refused}"
    );
    let sent = publish(
        &served,
        &["--key", KEY, "--room", "announcements", "v2"],
        &[],
    );
    assert_eq!(answer(&sent)["delivered"], 1);
    let message = reader.expect("notification");
    assert_eq!(
        (&message["payload"], &message["sender_id"]),
        (&json!("v2"), &json!("ops"))
    );
}
