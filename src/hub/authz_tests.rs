//! Authorization tests: each rule kind allowing and refusing, precedence, the publish API
//! writing where clients may not, and token refresh.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::rules::{Access, RoomRule, RoomRules};
use super::*;
use crate::auth::{Authenticator, JwtSettings, JwtVerifier, KeySource, MintRequest, mint};
use crate::hub::publish::decode_publish;
use crate::protocol::{Decoded, FrameHeader};

const SECRET: &[u8] = b"authz-test-secret";

fn now() -> Now {
    Now {
        wall: SystemTime::now(),
        mono: Instant::now(),
    }
}

fn id(n: u32) -> ConnId {
    ConnId::new(n, 1)
}

fn rule(pattern: &str, join: Access, publish: Access) -> RoomRule {
    RoomRule {
        pattern: pattern.into(),
        join,
        publish,
    }
}

fn hub() -> Hub {
    let rules = RoomRules {
        rules: vec![
            rule("public-*", Access::Anyone, Access::Authenticated),
            rule("private-*", Access::Claim, Access::Claim),
            rule("user:*", Access::Owner, Access::Server),
        ],
        default: (Access::Authenticated, Access::Authenticated),
    };
    let mut hub = Hub::new(HubConfig {
        rules,
        rate_limit_enabled: false,
        ..HubConfig::default()
    });
    let verifier = JwtVerifier::new(&JwtSettings {
        alg: "HS256",
        key: KeySource::Secret(SECRET),
        leeway: Duration::from_secs(1),
        issuer: None,
        audience: None,
        user_claim: "user_id",
        server_id: "server",
    })
    .unwrap();
    hub.set_authenticator(Authenticator::Jwt(Box::new(verifier)));
    hub
}

fn creds(authenticated: bool, claims: &[&str]) -> Credentials {
    Credentials {
        authenticated,
        claims: claims.iter().map(|c| (*c).to_owned()).collect(),
        expires_at: Some(1),
    }
}

fn replies(out: &mut Outbox) -> Vec<(usize, Value)> {
    out.sends
        .drain(..)
        .map(|(to, frame)| {
            let Ok(Decoded::Complete(_, n)) = FrameHeader::decode(&frame) else {
                panic!()
            };
            (to.index(), serde_json::from_slice(&frame[n..]).unwrap())
        })
        .collect()
}

fn send(hub: &mut Hub, conn: u32, request: Value) -> Vec<(usize, Value)> {
    let mut out = Outbox::default();
    hub.on_text(id(conn), &request.to_string(), now(), &mut out);
    replies(&mut out)
}

fn join_code(hub: &mut Hub, conn: u32, room: &str) -> String {
    let got = send(hub, conn, json!({"type":"join","room":room}));
    let last = &got.last().expect("a reply").1;
    if last["type"] == "error" {
        last["code"].as_str().unwrap_or("?").to_owned()
    } else {
        last["type"].as_str().unwrap_or("?").to_owned()
    }
}

fn connect(hub: &mut Hub, conn: u32, user: &str, credentials: Credentials) {
    let mut out = Outbox::default();
    hub.connect_with(id(conn), user, credentials, now(), &mut out);
}

#[test]
fn each_rule_kind_allows_and_refuses_join() {
    let mut h = hub();
    connect(&mut h, 1, "guest-1", creds(false, &[]));
    connect(
        &mut h,
        2,
        "42",
        creds(true, &["private-1", "private-team-*"]),
    );
    connect(&mut h, 3, "43", creds(true, &[]));
    assert_eq!(join_code(&mut h, 1, "public-news"), "joined", "anyone");
    assert_eq!(
        join_code(&mut h, 1, "lobby"),
        "forbidden",
        "default: authenticated"
    );
    assert_eq!(join_code(&mut h, 3, "lobby"), "joined");
    assert_eq!(
        join_code(&mut h, 2, "private-1"),
        "joined",
        "claim lists the room"
    );
    assert_eq!(
        join_code(&mut h, 2, "private-team-red"),
        "joined",
        "claim pattern"
    );
    assert_eq!(join_code(&mut h, 3, "private-1"), "forbidden", "no claim");
    assert_eq!(join_code(&mut h, 2, "user:42"), "joined", "owner");
    assert_eq!(
        join_code(&mut h, 3, "user:42"),
        "forbidden",
        "another user's room"
    );
}

#[test]
fn forbidden_names_the_room_and_is_counted() {
    let mut h = hub();
    connect(&mut h, 3, "43", creds(true, &[]));
    let got = send(&mut h, 3, json!({"type":"join","room":"user:42","id":7}));
    assert_eq!(got[0].1["code"], "forbidden");
    assert_eq!(got[0].1["id"], 7);
    assert!(got[0].1["message"].as_str().unwrap().contains("user:42"));
    assert_eq!(h.error_counts().get("forbidden"), Some(&1));
}

#[test]
fn publish_rules_and_the_server_room() {
    let mut h = hub();
    connect(&mut h, 1, "guest-1", creds(false, &[]));
    connect(&mut h, 2, "42", creds(true, &[]));
    join_code(&mut h, 1, "public-news");
    join_code(&mut h, 2, "public-news");
    join_code(&mut h, 2, "user:42");
    let refused = send(
        &mut h,
        1,
        json!({"type":"chat","room":"public-news","payload":1}),
    );
    assert_eq!(refused, [(1, refused[0].1.clone())]);
    assert_eq!(refused[0].1["code"], "forbidden");
    assert_eq!(
        send(
            &mut h,
            2,
            json!({"type":"chat","room":"public-news","payload":1})
        )
        .len(),
        2
    );
    let own_room = send(
        &mut h,
        2,
        json!({"type":"chat","room":"user:42","payload":1}),
    );
    assert_eq!(own_room[0].1["code"], "forbidden", "server-only publish");
    // The publish API writes where clients may not.
    let body = br#"{"room":"user:42","payload":{"title":"invoice ready"}}"#;
    let request = decode_publish(body, &HubConfig::default()).unwrap();
    let mut out = Outbox::default();
    let routed = h.publish(&request.items[0], "server", None, now(), &mut out);
    assert!(matches!(routed, Routed::Delivered { recipients: 1, .. }));
    assert_eq!(replies(&mut out)[0].1["sender_id"], "server");
}

#[test]
fn broadcast_and_private_policies() {
    let mut h = hub();
    h.config.private_messages = PrivatePolicy::SharedRoom;
    connect(&mut h, 1, "guest-1", creds(false, &[]));
    connect(&mut h, 2, "42", creds(true, &[]));
    connect(&mut h, 3, "43", creds(true, &[]));
    assert_eq!(
        send(&mut h, 1, json!({"type":"chat","payload":1}))[0].1["code"],
        "forbidden"
    );
    assert_eq!(send(&mut h, 2, json!({"type":"chat","payload":1})).len(), 3);
    let got = send(
        &mut h,
        2,
        json!({"type":"private","recipient_id":"43","payload":1}),
    );
    assert_eq!(got[0].1["code"], "forbidden", "no shared room yet");
    join_code(&mut h, 2, "lobby");
    join_code(&mut h, 3, "lobby");
    let got = send(
        &mut h,
        2,
        json!({"type":"private","recipient_id":"43","payload":1}),
    );
    assert_eq!(got[0].1["type"], "private");
}

#[test]
fn shared_room_is_between_users_not_connections() {
    let mut h = hub();
    h.config.private_messages = PrivatePolicy::SharedRoom;
    connect(&mut h, 1, "42", creds(true, &[]));
    connect(&mut h, 2, "42", creds(true, &[]));
    connect(&mut h, 3, "43", creds(true, &[]));
    join_code(&mut h, 1, "lobby");
    join_code(&mut h, 3, "lobby");
    // Connection 2 is in no room, but its user shares `lobby` with 43 through connection 1.
    let got = send(
        &mut h,
        2,
        json!({"type":"private","recipient_id":"43","payload":1}),
    );
    assert_eq!(got[0].1["type"], "private", "{got:?}");
}

fn token(user: &str, ttl_secs: u64) -> String {
    let req = MintRequest {
        user,
        ttl: Duration::from_secs(ttl_secs),
        alg: "HS256",
        key: SECRET,
        rooms: &[],
        audience: None,
        issuer: None,
    };
    mint(&req, SystemTime::now()).unwrap()
}

#[test]
fn refresh_renews_the_expiry_for_the_same_user_only() {
    let mut h = hub();
    connect(&mut h, 2, "42", creds(true, &[]));
    assert_eq!(h.token_expiry(id(2)), Some(1));
    let got = send(
        &mut h,
        2,
        json!({"type":"refresh","token":token("42", 600),"id":"r1"}),
    );
    assert_eq!(got[0].1["type"], "refreshed");
    assert_eq!(got[0].1["id"], "r1");
    let expiry = h.token_expiry(id(2)).unwrap();
    let now_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expiry >= now_secs + 590, "{expiry}");
    let other = send(
        &mut h,
        2,
        json!({"type":"refresh","token":token("43", 600)}),
    );
    assert_eq!(other[0].1["code"], "forbidden");
    assert!(
        other[0].1["message"]
            .as_str()
            .unwrap()
            .contains("another user")
    );
    let bad = send(&mut h, 2, json!({"type":"refresh","token":"not.a.token"}));
    assert_eq!(bad[0].1["code"], "invalid_token");
    assert_eq!(
        h.token_expiry(id(2)),
        Some(expiry),
        "failed refreshes change nothing"
    );
}

#[test]
fn only_a_successful_refresh_asks_the_loop_to_recheck_the_expiry() {
    let mut h = hub();
    connect(&mut h, 2, "42", creds(true, &[]));
    let mut out = Outbox::default();
    let other = json!({"type":"refresh","token":token("43", 600)}).to_string();
    h.on_text(id(2), &other, now(), &mut out);
    assert!(
        out.renewed.is_empty(),
        "another user's token renews nothing"
    );
    let own = json!({"type":"refresh","token":token("42", 5)}).to_string();
    h.on_text(id(2), &own, now(), &mut out);
    assert_eq!(out.renewed, [id(2)]);
}
