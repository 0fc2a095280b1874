//! Hostile and sloppy token claims against the real binary, each signed with the server's
//! own secret: nothing a valid signature carries may panic the loop, outlive its expiry,
//! skip a configured check or take an id the server keeps for itself.
//!
//! Each refusal is a 401 with its reason at the upgrade and an `invalid_token` error at
//! `refresh`, and after each the server still serves the next client.

mod common;

use common::Request;
use common::guard::{
    Served, TempFile, assert_status, expect_welcome, now_secs, open_with, read_json, send_json,
    sign_hs256,
};
use serde_json::{Value, json};

const SECRET: &str = "guard-claims-secret-9c41";
const AUDIENCE: &str = "wsloop-claims";
const ISSUER: &str = "https://auth.claims.test";

/// A server requiring `aud` and `iss`, with a room only the `rooms` claim opens.
fn strict_server() -> (Served, TempFile) {
    let config = TempFile::new(
        "toml",
        &format!(
            r#"
[auth]
mode = "jwt"
secret = "{SECRET}"
audience = "{AUDIENCE}"
issuer = "{ISSUER}"
leeway = "1s"

[rate_limit]
enabled = false

[[rooms]]
pattern = "private-*"
join = "claim"
publish = "claim"
"#
        ),
    );
    let served = Served::start(&["--config", config.as_str()], &[]);
    (served, config)
}

/// Claims the strict server accepts for `user`, with `extra` merged over them.
fn claims(user: &str, extra: Value) -> Value {
    let mut claims = json!({
        "user_id": user, "aud": AUDIENCE, "iss": ISSUER, "exp": now_secs() + 600,
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut claims, extra) {
        base.extend(extra);
    }
    claims
}

fn signed(claims: &Value) -> String {
    sign_hs256(claims, SECRET.as_bytes())
}

/// The upgrade with `claims` is refused with 401 and exactly `reason`.
fn refused(served: &Served, claims: &Value, reason: &str) {
    let target = format!("/ws?token={}", signed(claims));
    let response = served.request(&Request::upgrade(&target));
    assert_status(&response, 401, reason);
}

/// A client with a valid token is welcomed as `user`: the server is up and serving.
fn still_serves(served: &Served, user: &str) {
    let token = signed(&claims(user, json!({})));
    let mut client = open_with(served.addr, &format!("/ws?token={token}"), &[]);
    assert_eq!(expect_welcome(&mut client), user);
    client.close_cleanly();
}

/// Sends a `refresh` with `claims`; returns the reply.
fn refresh(client: &mut common::Client, claims: &Value) -> Value {
    send_json(
        client,
        &json!({"type": "refresh", "token": signed(claims), "id": "r"}),
    );
    loop {
        let reply = read_json(client);
        if reply["type"] != "presence" {
            return reply;
        }
    }
}

#[test]
fn an_exp_past_any_clock_is_refused_and_the_server_stays_up() {
    let (served, _config) = strict_server();
    let reason = "token exp must be a whole number of seconds up to 253402300799";
    for exp in [
        json!(9_223_372_036_854_775_808u64),
        json!(u64::MAX),
        json!(1e300),
        json!(253_402_300_800u64),
    ] {
        refused(&served, &claims("u1", json!({"exp": exp})), reason);
        still_serves(&served, "u1");
    }
    // The same at refresh: refused, and the connection lives on.
    let token = signed(&claims("u2", json!({})));
    let mut client = open_with(served.addr, &format!("/ws?token={token}"), &[]);
    expect_welcome(&mut client);
    let reply = refresh(
        &mut client,
        &claims("u2", json!({"exp": 9_223_372_036_854_775_808u64})),
    );
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "invalid_token", "{reply}");
    assert_eq!(reply["message"], format!("refresh refused: {reason}"));
    let fine = refresh(&mut client, &claims("u2", json!({})));
    assert_eq!(fine["type"], "refreshed", "{fine}");
    client.close_cleanly();
    still_serves(&served, "u3");
}

#[test]
fn a_fractional_or_non_numeric_exp_or_nbf_is_refused() {
    let (served, _config) = strict_server();
    let soon = now_secs() + 600;
    let exp_reason = "token exp must be a whole number of seconds up to 253402300799";
    for exp in [
        json!(1.9e9),
        json!(soon as f64 + 0.5),
        json!(soon.to_string()),
        json!(-5),
    ] {
        refused(&served, &claims("u1", json!({"exp": exp})), exp_reason);
    }
    let nbf_reason = "token nbf must be a whole number of seconds up to 253402300799";
    refused(&served, &claims("u1", json!({"nbf": 1.5})), nbf_reason);
    refused(&served, &claims("u1", json!({"nbf": u64::MAX})), nbf_reason);
    still_serves(&served, "u1");
}

#[test]
fn configured_audience_and_issuer_must_be_present() {
    let (served, _config) = strict_server();
    let mut no_aud = claims("u1", json!({}));
    no_aud.as_object_mut().map(|c| c.remove("aud"));
    refused(&served, &no_aud, "token has no audience (aud)");
    let mut no_iss = claims("u1", json!({}));
    no_iss.as_object_mut().map(|c| c.remove("iss"));
    refused(&served, &no_iss, "token has no issuer (iss)");
    refused(
        &served,
        &claims("u1", json!({"aud": "other"})),
        "token audience not accepted",
    );
    refused(
        &served,
        &claims("u1", json!({"iss": "https://evil"})),
        "token issuer not accepted",
    );

    // And at refresh, with the connection left as it was.
    let token = signed(&claims("u1", json!({})));
    let mut client = open_with(served.addr, &format!("/ws?token={token}"), &[]);
    expect_welcome(&mut client);
    for (claims, reason) in [
        (&no_aud, "token has no audience (aud)"),
        (&no_iss, "token has no issuer (iss)"),
    ] {
        let reply = refresh(&mut client, claims);
        assert_eq!(reply["code"], "invalid_token", "{reply}");
        assert_eq!(reply["message"], format!("refresh refused: {reason}"));
    }
    client.close_cleanly();
}

#[test]
fn token_user_ids_are_validated_and_reserved_ids_refused() {
    let (served, _config) = strict_server();
    let malformed = "token user id must be 1-64 printable ASCII characters without spaces";
    for bad in [
        "has space",
        "tab\there",
        "line\nbreak",
        "nul\u{0}",
        "ümlaut",
        &"x".repeat(65),
    ] {
        refused(&served, &claims(bad, json!({})), malformed);
    }
    let reserved = "token user id is reserved by the server";
    for id in ["server", "guest-1", "guest-0123456789abcdef"] {
        refused(&served, &claims(id, json!({})), reserved);
        // `sub` is the fallback claim: the same rules.
        let mut via_sub = claims(id, json!({"sub": id}));
        via_sub.as_object_mut().map(|c| c.remove("user_id"));
        refused(&served, &via_sub, reserved);
    }
    still_serves(&served, "user-1");
}

#[test]
fn query_user_ids_cannot_take_reserved_ids_either() {
    let served = Served::start(&[], &[]);
    for id in ["server", "guest-1"] {
        let response = served.request(&Request::upgrade(&format!("/ws?user_id={id}")));
        assert_status(&response, 400, "user_id: user id is reserved by the server");
    }
    let response = served.request(&Request::upgrade("/ws?user_id=a%20b"));
    assert_status(
        &response,
        400,
        "user_id: user id must be 1-64 printable ASCII characters without spaces",
    );
}

/// Guest ids are random, so two nodes (or one node restarted) never hand out the same one.
#[test]
fn guest_ids_are_unique_across_nodes() {
    let args = ["--auth", "optional", "--jwt-secret", SECRET];
    let nodes = [Served::start(&args, &[]), Served::start(&args, &[])];
    let mut seen = std::collections::HashSet::new();
    for node in &nodes {
        for _ in 0..3 {
            let mut client = open_with(node.addr, "/ws", &[]);
            let guest = expect_welcome(&mut client);
            let hex = guest
                .strip_prefix("guest-")
                .unwrap_or_else(|| panic!("{guest}"));
            assert_eq!(hex.len(), 16, "{guest}");
            assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{guest}");
            assert!(seen.insert(guest.clone()), "{guest} handed out twice");
            client.close_cleanly();
        }
    }
}

#[test]
fn refresh_narrowing_rooms_leaves_the_rooms_no_longer_granted() {
    let (served, _config) = strict_server();
    let both = json!({"rooms": ["private-a", "private-b"]});
    let token = signed(&claims("u1", both));
    let mut client = open_with(served.addr, &format!("/ws?token={token}"), &[]);
    expect_welcome(&mut client);
    for room in ["private-a", "private-b"] {
        send_json(&mut client, &json!({"type": "join", "room": room}));
        let joined = read_json(&mut client);
        assert_eq!(
            (joined["type"].as_str(), joined["room"].as_str()),
            (Some("joined"), Some(room))
        );
    }
    let narrowed = claims("u1", json!({"rooms": ["private-a"]}));
    let left = refresh(&mut client, &narrowed);
    assert_eq!(left["type"], "left", "{left}");
    assert_eq!(left["room"], "private-b");
    assert_eq!(left["reason"], "forbidden");
    let refreshed = read_json(&mut client);
    assert_eq!(refreshed["type"], "refreshed", "{refreshed}");

    // A publisher with both rooms: the narrowed client reads private-a only.
    let publisher_token = signed(&claims("u2", json!({"rooms": ["private-*"]})));
    let mut publisher = open_with(served.addr, &format!("/ws?token={publisher_token}"), &[]);
    expect_welcome(&mut publisher);
    for room in ["private-b", "private-a"] {
        send_json(&mut publisher, &json!({"type": "join", "room": room}));
        send_json(
            &mut publisher,
            &json!({"type": "chat", "room": room, "payload": room}),
        );
    }
    let mut got = read_json(&mut client);
    while got["type"] == "presence" {
        got = read_json(&mut client);
    }
    assert_eq!(
        (got["type"].as_str(), got["room"].as_str()),
        (Some("chat"), Some("private-a")),
        "{got}"
    );
    client.close_cleanly();
    drop(publisher);
}
