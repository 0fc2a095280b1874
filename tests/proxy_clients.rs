//! Client addresses behind proxies (`server.trusted_proxies`, `server.proxy_protocol`), over
//! loopback against the in-process server: per-IP limits apply per real client when a
//! trusted proxy names it (X-Forwarded-For, X-Real-IP, PROXY v1 and v2), and not at all
//! when an untrusted peer claims to be someone else; malformed, oversized and stalled PROXY
//! headers end the connection.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Client, Request, TestServer};
use wsloop::protocol::proxy_header::encode_v2;
use wsloop::server::{ServerConfig, TrustedProxies};

fn trusting(list: &[&str], per_ip: usize) -> impl FnOnce(&mut ServerConfig) {
    let trusted = TrustedProxies::parse(list).unwrap();
    move |c| {
        c.trusted_proxies = trusted;
        c.max_connections_per_ip = per_ip;
    }
}

/// Opens `/echo` with extra headers; the status the server answered.
fn upgrade_status(server: &TestServer, headers: &[(&str, &str)]) -> (Client, u16) {
    let mut request = Request::upgrade("/echo");
    for (name, value) in headers {
        request = request.add(name, value);
    }
    let mut client = server.connect();
    client.send(&request.to_bytes());
    let status = client.read_response().status;
    (client, status)
}

fn xff(value: &str) -> [(&str, &str); 1] {
    [("X-Forwarded-For", value)]
}

#[test]
fn per_ip_limits_count_forwarded_clients_from_a_trusted_proxy() {
    let server = TestServer::start_with(trusting(&["127.0.0.1", "10.0.0.0/8"], 1));
    let (_a, status) = upgrade_status(&server, &xff("203.0.113.1"));
    assert_eq!(status, 101);
    // Through a second trusted hop, another client: its own count.
    let (_b, status) = upgrade_status(&server, &xff("203.0.113.2, 10.1.2.3"));
    assert_eq!(status, 101, "a different client behind the same proxy");
    // A client that prepends a fake address is still itself (right-most untrusted).
    let (_c, status) = upgrade_status(&server, &xff("192.0.2.77, 203.0.113.1"));
    assert_eq!(status, 429, "203.0.113.1 already has its one connection");
    let (_d, status) = upgrade_status(&server, &[("X-Real-IP", "203.0.113.3")]);
    assert_eq!(status, 101, "X-Real-IP when there is no X-Forwarded-For");
    let stats = server.stats();
    // 203.0.113.1, .2, .3 and the /stats request's own peer (no forwarding header).
    assert_eq!(stats["client_addresses"], 4, "{stats}");
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // 127.0.0.2 is trusted, but the tests connect from 127.0.0.1.
    let server = TestServer::start_with(trusting(&["127.0.0.2"], 1));
    let (_a, status) = upgrade_status(&server, &xff("203.0.113.1"));
    assert_eq!(status, 101);
    let (_b, status) = upgrade_status(&server, &xff("203.0.113.2"));
    assert_eq!(status, 429, "both are 127.0.0.1, whatever they say");
    let (_c, status) = upgrade_status(&server, &[("X-Real-IP", "203.0.113.3")]);
    assert_eq!(status, 429);
}

fn proxy_server(per_ip: usize, handshake_timeout: Duration) -> TestServer {
    let trusted = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    TestServer::start_with(move |c| {
        c.trusted_proxies = trusted;
        c.proxy_protocol = true;
        c.max_connections_per_ip = per_ip;
        c.handshake_timeout = handshake_timeout;
    })
}

fn v2(client: &str) -> Vec<u8> {
    let source: SocketAddr = client.parse().unwrap();
    let mut out = Vec::new();
    let destination: SocketAddr = match source {
        SocketAddr::V4(_) => "127.0.0.1:443".parse().unwrap(),
        SocketAddr::V6(_) => "[::1]:443".parse().unwrap(),
    };
    encode_v2(source, destination, &mut out);
    out
}

/// Sends `header` and an upgrade in one write, the way HAProxy does; the status.
fn proxied_upgrade(server: &TestServer, header: &[u8]) -> (Client, u16) {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&Request::upgrade("/echo").to_bytes());
    let mut client = server.connect();
    client.send(&bytes);
    let status = client.read_response().status;
    (client, status)
}

#[test]
fn proxy_protocol_v1_and_v2_name_the_client() {
    let server = proxy_server(1, Duration::from_secs(10));
    let (mut a, status) = proxied_upgrade(&server, &v2("198.51.100.1:40000"));
    assert_eq!(status, 101);
    a.send_text("through haproxy");
    a.expect_text("through haproxy");
    let (_b, status) = proxied_upgrade(&server, b"PROXY TCP4 198.51.100.2 127.0.0.1 40001 443\r\n");
    assert_eq!(status, 101, "v1, another client");
    let (_c, status) = proxied_upgrade(&server, &v2("[2001:db8::5]:1"));
    assert_eq!(status, 101, "v2 over IPv6");
    let (_d, status) = proxied_upgrade(&server, &v2("198.51.100.1:40002"));
    assert_eq!(status, 429, "198.51.100.1 has its one connection");
    // The header byte by byte (a slow proxy) still works.
    let mut bytewise = server.connect();
    bytewise.send_bytewise(b"PROXY TCP4 198.51.100.9 127.0.0.1 9 443\r\n");
    bytewise.send(&Request::upgrade("/echo").to_bytes());
    assert_eq!(bytewise.read_response().status, 101);
    // A LOCAL header (HAProxy's health check) is the proxy itself.
    let stats = local_get(&server, "/stats");
    assert_eq!(stats.status, 200, "{stats:?}");
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    assert_eq!(
        stats["client_addresses"], 5,
        "four clients and the probe: {stats}"
    );
}

#[test]
fn bad_proxy_headers_end_the_connection() {
    let server = proxy_server(0, Duration::from_millis(500));
    let mut too_long = b"PROXY UNKNOWN ".to_vec();
    too_long.resize(200, b'x');
    let mut huge_v2 = v2("198.51.100.1:1");
    huge_v2[14..16].copy_from_slice(&60_000u16.to_be_bytes());
    for (what, bytes) in [
        ("bad v1", b"PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n".to_vec()),
        ("v1 over 107 bytes", too_long),
        (
            "v2 version 3",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\x00\x0c".to_vec(),
        ),
        ("v2 length over the limit", huge_v2),
    ] {
        let mut client = server.connect();
        client.send(&bytes);
        client.expect_eof();
        eprintln!("{what}: closed");
    }
    // Without a header, the proxy speaks for itself (its health checks), or forwards.
    let mut own = server.connect();
    own.send(&Request::get("/healthz").to_bytes());
    assert_eq!(own.read_response().status, 200);
    // A header that stops half-way is dropped at the handshake timeout.
    let mut stalled = server.connect();
    stalled.send(b"PROXY TCP4 198.51.");
    let started = std::time::Instant::now();
    stalled.expect_eof();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "dropped early"
    );
    let metrics = local_get(&server, "/metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("wsloop_proxy_header_errors_total 4"),
        "four bad headers counted (the stalled one timed out): {text}"
    );
}

/// A GET through a PROXY v2 `LOCAL` header: the proxy speaking for itself.
fn local_get(server: &TestServer, target: &str) -> common::HttpResponse {
    let mut bytes = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec();
    bytes.extend_from_slice(&Request::get(target).to_bytes());
    let mut client = server.connect();
    client.send(&bytes);
    client.read_response()
}

#[test]
fn a_proxy_header_from_an_untrusted_peer_is_just_bad_http() {
    let trusted = TrustedProxies::parse(&["127.0.0.2"]).unwrap();
    let server = TestServer::start_with(move |c| {
        c.trusted_proxies = trusted;
        c.proxy_protocol = true;
    });
    let mut bytes = v2("198.51.100.1:1");
    bytes.extend_from_slice(&Request::get("/healthz").to_bytes());
    let mut client = server.connect();
    client.send(&bytes);
    assert_eq!(client.read_response().status, 400);
    let mut plain = server.connect();
    plain.send(&Request::get("/healthz").to_bytes());
    assert_eq!(
        plain.read_response().status,
        200,
        "direct clients need no header"
    );
}
