//! Origin checks before the upgrade (RFC 6455 §10.2), over loopback against the in-process
//! server: an allow-list of exact origins and `*.domain` wildcards, the switch for requests
//! without `Origin`, the same-origin default, and the order of checks (403 before 401).

mod common;

use common::guard::{
    assert_status, expect_welcome, hs256_auth, hs256_token, open_with, request_at,
};
use common::{Request, TestServer};
use wsloop::auth::OriginPolicy;

/// A server allowing `allowed` (and requests without `Origin` if `allow_missing`).
fn server_allowing(allowed: &[&str], allow_missing: bool) -> TestServer {
    let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
    TestServer::start_with(|c| {
        c.origin = OriginPolicy::new(&allowed, allow_missing).expect("valid allow-list");
    })
}

/// Asserts that an upgrade from `origin` (with `Host: host`) is upgraded.
fn accepted(server: &TestServer, origin: &str, host: &str) {
    let mut client = open_with(server.addr, "/echo", &[("Origin", origin), ("Host", host)]);
    client.send_text(origin);
    client.expect_text(origin);
    client.close_cleanly();
}

/// Asserts that an upgrade from `origin` is refused with 403 "origin … is not allowed".
fn forbidden(server: &TestServer, origin: &str, host: &str) {
    let request = Request::upgrade("/echo")
        .set("Origin", origin)
        .set("Host", host);
    let response = request_at(server.addr, &request);
    assert_status(&response, 403, &format!("origin {origin} is not allowed"));
}

#[test]
fn allow_list_accepts_exact_origins_and_subdomains_of_wildcards() {
    let server = server_allowing(&["https://app.example.com", "https://*.example.org"], true);
    for origin in [
        "https://app.example.com",
        "https://app.example.com:443",
        "https://chat.example.org",
        "https://a.b.example.org",
    ] {
        accepted(&server, origin, "wsloop.internal");
    }
}

#[test]
fn origins_off_the_allow_list_get_403() {
    let server = server_allowing(&["https://app.example.com", "https://*.example.org"], true);
    for origin in [
        "https://evil.example.com",
        "http://app.example.com",           // scheme differs
        "https://app.example.com:8443",     // port differs
        "https://app.example.com.evil.net", // suffix trick
        "https://example.org",              // the wildcard wants a subdomain
        "http://chat.example.org",          // wildcard scheme differs
        "https://chat.example.org.evil.net",
        "https://notexample.org",
        "null", // sandboxed iframes and file: pages
        "not an origin",
    ] {
        // Not the listed host: same-origin requests pass besides the list (below).
        forbidden(&server, origin, "wsloop.internal");
    }
}

#[test]
fn the_servers_own_origin_passes_a_list_unless_switched_off() {
    // README's "try it in one minute": the chat page this server serves keeps working.
    let server = server_allowing(&["https://*.example.com"], true);
    accepted(&server, "http://127.0.0.1:8080", "127.0.0.1:8080");
    forbidden(&server, "http://127.0.0.1:8081", "127.0.0.1:8080");
    let allowed = vec!["https://*.example.com".to_owned()];
    let strict = TestServer::start_with(|c| {
        c.origin = OriginPolicy::new(&allowed, true)
            .expect("valid allow-list")
            .with_same_origin(false);
    });
    forbidden(&strict, "http://127.0.0.1:8080", "127.0.0.1:8080");
    accepted(&strict, "https://chat.example.com", "127.0.0.1:8080");
}

#[test]
fn missing_origin_is_refused_or_allowed_by_the_switch() {
    let strict = server_allowing(&["https://app.example.com"], false);
    let response = request_at(strict.addr, &Request::upgrade("/echo"));
    assert_status(&response, 403, "Origin header required");

    let lenient = server_allowing(&["https://app.example.com"], true);
    let mut client = lenient.open("/echo");
    client.send_text("no origin, non-browser client");
    client.expect_text("no origin, non-browser client");
    client.close_cleanly();
}

// With no list, only same-origin requests pass: the Origin's host and port must equal the
// Host header's (gorilla/websocket's default).
#[test]
fn default_policy_is_same_origin_only() {
    let server = TestServer::start();
    accepted(&server, "http://127.0.0.1", "127.0.0.1");
    accepted(&server, "http://localhost:8080", "localhost:8080");
    accepted(&server, "https://chat.example.com", "chat.example.com:443");
    forbidden(&server, "http://evil.example.com", "127.0.0.1");
    forbidden(&server, "http://127.0.0.1:9999", "127.0.0.1");
    forbidden(&server, "http://localhost:8080", "localhost:8081");
    // `Host` carries no scheme (TLS may end at a proxy), so, as in gorilla, only host and
    // port are compared: the port implied by the Origin's scheme stands in for Host's.
    accepted(&server, "https://127.0.0.1", "127.0.0.1");
    forbidden(&server, "https://127.0.0.1", "127.0.0.1:80");
    server.open("/echo").close_cleanly(); // no Origin at all: allowed by default
}

// A browser page from a foreign origin learns nothing about tokens: the origin is checked
// first (403), and only an allowed origin gets to the token check (401).
#[test]
fn origin_is_checked_before_the_token() {
    let allowed = vec!["https://app.example.com".to_owned()];
    let server = TestServer::start_with(|c| {
        c.origin = OriginPolicy::new(&allowed, false).expect("valid allow-list");
        c.auth = hs256_auth();
    });
    let token = hs256_token("42");
    let evil = "https://evil.example.com";
    let with_token = format!("/ws?token={token}");
    for target in ["/ws", with_token.as_str()] {
        let request = Request::upgrade(target).set("Origin", evil);
        let response = request_at(server.addr, &request);
        assert_status(&response, 403, &format!("origin {evil} is not allowed"));
    }
    let good = "https://app.example.com";
    let response = request_at(server.addr, &Request::upgrade("/ws").set("Origin", good));
    assert_status(&response, 401, "missing token");
    let mut client = open_with(server.addr, &with_token, &[("Origin", good)]);
    assert_eq!(expect_welcome(&mut client), "42");
    client.close_cleanly();
}

// "Unknown keys and bad values are refused at startup": an allow-list entry that is not a
// serialized origin (RFC 6454 §6.2: scheme "://" host [":" port]) is a bad value. Accepting
// one silently leaves the operator with a list that matches nothing they meant.
#[test]
fn invalid_allow_list_entries_are_refused_when_building_the_policy() {
    let mut accepted = Vec::new();
    for bad in [
        "example.com",
        "ftp://example.com",
        "https://example.com/path",
        "https://*",                 // a wildcard with no domain
        "https://a.*.com",           // a wildcard in the middle
        "https://*.*.example.com",   // two wildcards
        "https://ex ample.com",      // a space in the host
        "https://:443",              // no host
        "https://example.com:99999", // port out of range
        "https://user@example.com",  // userinfo is not part of an origin
    ] {
        if let Ok(policy) = OriginPolicy::new(&[bad.to_owned()], true) {
            accepted.push(format!("{bad:?} -> {policy:?}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "invalid origin patterns accepted:\n{}",
        accepted.join("\n")
    );
}
