//! Loopback tests of token lifetime on open connections: a connection whose token expires
//! is closed with 4001 "token expired" (a terminal code: 4000–4499 say "do not reconnect
//! with the same credentials") at `exp` plus the leeway, never before; a `refresh` with a
//! fresh token for the same user keeps it open past the old expiry (and renews the token's
//! room claims); a refresh with another user's token is `forbidden`, an invalid one
//! `invalid_token`, and neither changes the expiry.
//!
//! Tokens live 2 s and the leeway is 1 s, so each expiry test takes about 3 s; the
//! assertions compare the wall clock to `exp + leeway`, which is what the server does,
//! and allow seconds of slack in the other direction.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use common::authz::{LEEWAY_SECS, SECRET, connect_with_token, jwt_auth, rule, token, token_with};
use common::guard::scrape;
use common::hub::{HubClient, str_field};
use serde_json::{Value, json};
use wsloop::client::Disconnect;
use wsloop::hub::rules::{Access, RoomRules};

/// How long a short token lives.
const SHORT_TTL: u64 = 2;
/// Lateness allowed for the close after `exp + leeway` (the timer fires on time; this
/// only absorbs a slow machine).
const SLACK: Duration = Duration::from_secs(3);

fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.auth = jwt_auth();
        c.hub.rate_limit_enabled = false;
        c.hub.rules = RoomRules {
            rules: vec![rule("private-*", Access::Claim, Access::Claim)],
            default: (Access::Authenticated, Access::Authenticated),
        };
    })
}

/// When a token with `exp` stops being accepted: `exp + leeway`.
fn end_of(exp: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(exp + LEEWAY_SECS)
}

/// Sends `{"type":"refresh","token":…,"id":"r"}`; returns the reply.
fn refresh(client: &mut HubClient, token: &str) -> Value {
    client.send_json(&json!({"type": "refresh", "token": token, "id": "r"}));
    let reply = client.next_skipping(&["presence"]);
    assert_eq!(reply["id"], "r", "the reply echoes the id: {reply}");
    reply
}

/// Waits for the 4001 close; asserts it came at `exp + leeway`, not before, not much later.
fn expect_expiry_close(client: HubClient, exp: u64) {
    let reason = client.expect_close(4001);
    let now = SystemTime::now();
    assert_eq!(reason, "token expired");
    assert!(now >= end_of(exp), "closed before exp + leeway");
    assert!(now <= end_of(exp) + SLACK, "closed {SLACK:?} late or more");
}

/// Asserts `client` is still served: a join round trip.
fn assert_open(client: &mut HubClient, room: &str) {
    client.join(room);
}

#[test]
fn an_expired_token_closes_the_connection_with_4001() {
    let server = server();
    let (short, exp) = token_with("brief", SHORT_TTL, &[], SECRET);
    let brief = connect_with_token(&server, "brief", &short);
    let mut lasting = connect_with_token(&server, "lasting", &token("lasting", &[]));
    expect_expiry_close(brief, exp);

    assert_open(&mut lasting, "still-here");
    let metrics = scrape(&server);
    assert_eq!(metrics.get("wsloop_close_sent_total{code=\"4001\"}"), 1.0);
    // 4001 is in the terminal range: the crate's own client does not retry it.
    assert!(Disconnect::Closed(4001).is_terminal());
    assert!(Disconnect::Closed(4499).is_terminal());
    assert!(!Disconnect::Closed(4500).is_terminal());
    assert!(!Disconnect::Closed(4999).is_terminal());
}

#[test]
fn a_refresh_before_expiry_keeps_the_connection_open() {
    let server = server();
    let (short, exp) = token_with("r", SHORT_TTL, &[], SECRET);
    let mut client = connect_with_token(&server, "r", &short);
    let (fresh, fresh_exp) = token_with("r", 3600, &[], SECRET);
    let reply = refresh(&mut client, &fresh);
    assert_eq!(
        (&reply["type"], &reply["expires_at"]),
        (&json!("refreshed"), &json!(fresh_exp)),
        "{reply}"
    );

    // Quiet (pings answered) until well past the old token's end, then still served.
    let past = end_of(exp) + Duration::from_millis(1500);
    let wait = past.duration_since(SystemTime::now()).unwrap_or_default();
    client.expect_no_message_within(wait);
    assert_open(&mut client, "after-old-expiry");
    client.close();
}

#[test]
fn a_refresh_with_another_users_token_is_refused_and_the_old_expiry_stands() {
    let server = server();
    let (short, exp) = token_with("alice", SHORT_TTL, &[], SECRET);
    let mut alice = connect_with_token(&server, "alice", &short);
    let reply = refresh(&mut alice, &token("bob", &["private-bob"]));
    assert_eq!(
        (&reply["type"], &reply["code"]),
        (&json!("error"), &json!("forbidden")),
        "{reply}"
    );
    assert!(
        str_field(&reply, "message").contains("another user"),
        "{reply}"
    );
    // Still open, still alice, and bob's claims were not taken.
    alice.send_json(&json!({"type": "join", "room": "private-bob"}));
    alice.expect_error("forbidden");
    assert_open(&mut alice, "lobby");
    expect_expiry_close(alice, exp);
    let metrics = scrape(&server);
    assert_eq!(
        metrics.get("wsloop_hub_errors_total{code=\"forbidden\"}"),
        2.0
    );
}

#[test]
fn an_invalid_refresh_token_is_refused_and_changes_nothing() {
    let server = server();
    let (short, exp) = token_with("v", SHORT_TTL, &[], SECRET);
    let mut client = connect_with_token(&server, "v", &short);
    let cases = [
        ("not.a.jwt".to_owned(), "malformed"),
        (token_with("v", 3600, &[], b"another-secret").0, "signature"),
        (
            common::guard::sign_hs256(&json!({"user_id": "v", "exp": 1_000}), SECRET),
            "expired",
        ),
        (
            common::guard::sign_hs256(&json!({"user_id": "v"}), SECRET),
            "no expiry",
        ),
    ];
    for (bad, reason) in &cases {
        let reply = refresh(&mut client, bad);
        assert_eq!(reply["code"], "invalid_token", "{reason}: {reply}");
        let message = str_field(&reply, "message");
        assert!(message.contains(reason), "{reason}: {message}");
    }
    // Not a string: a malformed request, not a token problem.
    client.send_json(&json!({"type": "refresh", "token": 5}));
    assert_eq!(client.expect("error")["code"], "invalid_field");
    assert_open(&mut client, "still-open");
    expect_expiry_close(client, exp);
}

#[test]
fn a_refresh_renews_the_rooms_claim() {
    let server = server();
    let mut client = connect_with_token(&server, "c", &token("c", &[]));
    client.send_json(&json!({"type": "join", "room": "private-1"}));
    client.expect_error("forbidden");
    let reply = refresh(&mut client, &token("c", &["private-*"]));
    assert_eq!(reply["type"], "refreshed", "{reply}");
    client.join("private-1");
    client.close();
}

#[test]
fn a_refresh_to_a_shorter_lived_token_closes_at_the_new_expiry() {
    let server = server();
    let mut client = connect_with_token(&server, "s", &token("s", &[]));
    let (short, exp) = token_with("s", SHORT_TTL, &[], SECRET);
    assert_eq!(refresh(&mut client, &short)["expires_at"], exp);
    expect_expiry_close(client, exp);
}

#[test]
fn refresh_needs_authentication_to_be_on() {
    let server = TestServer::start();
    let mut client = HubClient::connect(&server, "anon");
    let reply = refresh(&mut client, &token("anon", &[]));
    assert_eq!(reply["code"], "forbidden", "{reply}");
    assert!(
        str_field(&reply, "message").contains("not enabled"),
        "{reply}"
    );
    assert_open(&mut client, "fine");
}
