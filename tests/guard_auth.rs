//! JWT authentication before the upgrade, over loopback against the in-process server: every
//! way a token can be missing or bad gets `401` with its short plain-text reason,
//! `WWW-Authenticate: Bearer` and no upgrade; good tokens from `?token=` or
//! `Authorization: Bearer` are accepted for each algorithm, and the token's user wins over
//! `?user_id=`.

mod common;

use std::time::{Duration, SystemTime};

use common::guard::{
    AUDIENCE, SECRET, assert_status, expect_welcome, fixture, hs256_auth, hs256_token, mint_at,
    open_with, public_key_auth, request_at, sign_hs256, unsigned, valid_claims,
};
use common::{HttpResponse, Request, TestServer};
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);

/// A server that requires HS256 tokens with the tests' audience.
fn hs256_server() -> TestServer {
    TestServer::start_with(|c| c.auth = hs256_auth())
}

/// Asserts that an upgrade of `target` with `headers` is refused with 401 and `reason`,
/// with `WWW-Authenticate: Bearer`, and that the server closes TCP after the answer.
fn refused_401(
    server: &TestServer,
    target: &str,
    headers: &[(&str, &str)],
    reason: &str,
) -> HttpResponse {
    let mut request = Request::upgrade(target);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = request_at(server.addr, &request);
    assert_status(&response, 401, reason);
    assert_eq!(
        response.header("WWW-Authenticate"),
        Some("Bearer"),
        "{response:?}"
    );
    response
}

/// `refused_401` with the token in the query.
fn refused_token(server: &TestServer, token: &str, reason: &str) {
    refused_401(server, &format!("/ws?token={token}"), &[], reason);
}

#[test]
fn missing_token_is_refused_on_every_websocket_endpoint() {
    let server = hs256_server();
    for target in ["/ws", "/echo", "/ws?token=", "/ws?user_id=42"] {
        refused_401(&server, target, &[], "missing token");
    }
    // An Authorization header that is not a bearer token is no token at all.
    refused_401(
        &server,
        "/ws",
        &[("Authorization", "Basic dXNlcjpwYXNz")],
        "missing token",
    );
    refused_401(
        &server,
        "/ws",
        &[("Authorization", "Bearer ")],
        "missing token",
    );
    // Plain HTTP endpoints do not need a token.
    assert_eq!(server.request(&Request::get("/healthz")).status, 200);
}

#[test]
fn malformed_tokens_are_refused() {
    let server = hs256_server();
    let good = hs256_token("42");
    let parts: Vec<&str> = good.split('.').collect();
    // Correctly signed, but the claims are a JSON string, not an object.
    let not_an_object = sign_hs256(&json!("just a string"), SECRET);
    for token in [
        "not-a-jwt",
        "a.b.c",
        "...",
        "%%%.%%%.%%%",
        &format!("{}.{}", parts[0], parts[1]),
        &not_an_object,
    ] {
        refused_token(&server, token, "malformed token");
    }
    refused_401(
        &server,
        "/ws",
        &[("Authorization", "Bearer not-a-jwt")],
        "malformed token",
    );
}

#[test]
fn wrong_signature_is_refused() {
    let server = hs256_server();
    let now = SystemTime::now();
    let other_key = mint_at("HS256", b"another-secret", "42", Some(AUDIENCE), now, HOUR);
    refused_token(&server, &other_key, "invalid token signature");

    // A genuine token whose claims were swapped for someone else's keeps its signature.
    let genuine: Vec<String> = hs256_token("42").split('.').map(str::to_owned).collect();
    let forged_claims = common::guard::b64url(valid_claims("admin").to_string().as_bytes());
    let tampered = format!("{}.{forged_claims}.{}", genuine[0], genuine[2]);
    refused_token(&server, &tampered, "invalid token signature");
    let bearer = format!("Bearer {tampered}");
    refused_401(
        &server,
        "/ws",
        &[("Authorization", &bearer)],
        "invalid token signature",
    );
}

// `alg: none` must never pass: unsigned, or carrying the signature of a genuine token.
// (`AuthError::WrongAlgorithm` documents `none` as its case; the unit test in
// src/auth/tests.rs also accepts "malformed", since jsonwebtoken cannot even parse it.)
#[test]
fn alg_none_is_refused() {
    let server = hs256_server();
    let claims = valid_claims("42");
    let genuine_signature = hs256_token("42").rsplit('.').next().unwrap().to_owned();
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None", "typ": "JWT"}),
        json!({"alg": "none"}),
    ] {
        let bare = unsigned(&header, &claims);
        for token in [bare.clone(), format!("{bare}{genuine_signature}")] {
            let response = request_at(
                server.addr,
                &Request::upgrade(&format!("/ws?token={token}")),
            );
            let reason = String::from_utf8_lossy(&response.body).into_owned();
            assert_eq!(response.status, 401, "{header} -> {response:?}");
            assert!(
                ["token algorithm not accepted", "malformed token"].contains(&reason.trim()),
                "{header}: unexpected reason {reason:?}"
            );
        }
    }
}

// Algorithm confusion: an attacker signs HS256 with the server's RS256 *public* key as the
// HMAC secret. The configured algorithm is pinned, so the token is refused for its alg.
#[test]
fn hs256_token_against_an_rs256_config_is_refused() {
    let server = TestServer::start_with(|c| c.auth = public_key_auth("RS256", "rs256-public.pem"));
    let public_pem = fixture("rs256-public.pem");
    let confused = sign_hs256(&valid_claims("42"), &public_pem);
    refused_token(&server, &confused, "token algorithm not accepted");
    let hs_secret = mint_at("HS256", SECRET, "42", None, SystemTime::now(), HOUR);
    refused_token(&server, &hs_secret, "token algorithm not accepted");
    let es = mint_at(
        "ES256",
        &fixture("es256-private.pem"),
        "42",
        None,
        SystemTime::now(),
        HOUR,
    );
    refused_token(&server, &es, "token algorithm not accepted");

    // The same server does accept a genuine RS256 token, so the refusals above are real.
    let rs = mint_at(
        "RS256",
        &fixture("rs256-private.pem"),
        "rsa-user",
        None,
        SystemTime::now(),
        HOUR,
    );
    let mut client = open_with(server.addr, &format!("/ws?token={rs}"), &[]);
    assert_eq!(expect_welcome(&mut client), "rsa-user");
    client.close_cleanly();
}

#[test]
fn expired_token_is_refused_beyond_the_leeway_only() {
    let server = hs256_server();
    let two_hours_ago = SystemTime::now() - 2 * HOUR;
    let expired = mint_at("HS256", SECRET, "42", Some(AUDIENCE), two_hours_ago, HOUR);
    refused_token(&server, &expired, "token expired");

    // Expired one second ago: inside the 5 s leeway, still accepted.
    let issued = SystemTime::now() - HOUR - Duration::from_secs(1);
    let just_expired = mint_at("HS256", SECRET, "42", Some(AUDIENCE), issued, HOUR);
    let mut client = open_with(server.addr, &format!("/ws?token={just_expired}"), &[]);
    assert_eq!(expect_welcome(&mut client), "42");
    client.close_cleanly();
}

#[test]
fn token_not_yet_valid_is_refused() {
    let server = hs256_server();
    let mut claims = valid_claims("42");
    let later = claims["nbf"].as_u64().unwrap() + 3600;
    claims["nbf"] = json!(later);
    claims["exp"] = json!(later + 3600);
    refused_token(&server, &sign_hs256(&claims, SECRET), "token not yet valid");
}

#[test]
fn wrong_audience_is_refused() {
    let server = hs256_server();
    let now = SystemTime::now();
    let other = mint_at("HS256", SECRET, "42", Some("another-service"), now, HOUR);
    refused_token(&server, &other, "token audience not accepted");
    let mut claims = valid_claims("42");
    claims["aud"] = json!(["another-service", "a-third-one"]);
    refused_token(
        &server,
        &sign_hs256(&claims, SECRET),
        "token audience not accepted",
    );
}

// The hand-made HS256 signer used for the `nbf` and audience cases produces tokens the
// server accepts when nothing is wrong with them (so those refusals are not signer bugs).
#[test]
fn hand_signed_valid_claims_are_accepted() {
    let server = hs256_server();
    let token = sign_hs256(&valid_claims("hand-made"), SECRET);
    let mut client = open_with(server.addr, &format!("/ws?token={token}"), &[]);
    assert_eq!(expect_welcome(&mut client), "hand-made");
    client.close_cleanly();
}

#[test]
fn valid_token_from_query_or_bearer_header_is_accepted() {
    let server = hs256_server();
    let token = hs256_token("42");
    let mut by_query = open_with(server.addr, &format!("/ws?token={token}"), &[]);
    assert_eq!(expect_welcome(&mut by_query), "42");

    for scheme in ["Bearer", "bearer"] {
        let header = format!("{scheme} {token}");
        let mut by_header = open_with(server.addr, "/ws", &[("Authorization", &header)]);
        assert_eq!(expect_welcome(&mut by_header), "42", "{scheme}");
        by_header.close_cleanly();
    }
    // /echo is behind the same check.
    let mut echo = open_with(server.addr, &format!("/echo?token={token}"), &[]);
    echo.send_text("authenticated echo");
    echo.expect_text("authenticated echo");
    echo.close_cleanly();
    by_query.close_cleanly();
}

// With auth on, `?user_id=` cannot choose who you are: the token's user wins.
#[test]
fn user_id_query_is_ignored_when_auth_is_on() {
    let server = hs256_server();
    let token = hs256_token("alice");
    let target = format!("/ws?user_id=mallory&token={token}");
    let mut client = open_with(server.addr, &target, &[]);
    assert_eq!(expect_welcome(&mut client), "alice");
    client.close_cleanly();

    let bearer = format!("Bearer {token}");
    let mut client = open_with(
        server.addr,
        "/ws?user_id=mallory",
        &[("Authorization", &bearer)],
    );
    assert_eq!(expect_welcome(&mut client), "alice");
    client.close_cleanly();
}

#[test]
fn each_public_key_algorithm_accepts_its_own_tokens() {
    for (alg, private, public) in [
        ("RS256", "rs256-private.pem", "rs256-public.pem"),
        ("ES256", "es256-private.pem", "es256-public.pem"),
        ("EdDSA", "eddsa-private.pem", "eddsa-public.pem"),
    ] {
        let server = TestServer::start_with(|c| c.auth = public_key_auth(alg, public));
        let user = format!("user-{alg}");
        let token = mint_at(alg, &fixture(private), &user, None, SystemTime::now(), HOUR);
        let bearer = format!("Bearer {token}");
        let mut client = open_with(server.addr, "/ws", &[("Authorization", &bearer)]);
        assert_eq!(expect_welcome(&mut client), user, "{alg}");
        client.close_cleanly();
        let forged = sign_hs256(&valid_claims(&user), &fixture(public));
        refused_token(&server, &forged, "token algorithm not accepted");
    }
}

// The algorithm is pinned: a token announcing any other one is refused for that reason,
// before its signature is even looked at.
#[test]
fn any_algorithm_but_the_configured_one_is_refused() {
    let server = hs256_server();
    let claims = valid_claims("42");
    for alg in ["HS384", "HS512", "RS256", "ES256", "EdDSA", "PS256"] {
        let token = format!("{}c2lnbmF0dXJl", unsigned(&json!({"alg": alg}), &claims));
        refused_token(&server, &token, "token algorithm not accepted");
    }
}
