//! Real client addresses through the committed proxy configurations: nginx running
//! `deploy/nginx.conf` (`X-Forwarded-For`) and HAProxy running `deploy/haproxy.cfg`
//! (`send-proxy-v2`), in front of a node that trusts them and keeps its per-IP limits on.
//!
//! Test clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3): to the
//! node, behind the proxy, they must be two clients, each held to one connection, while a
//! node that did not know its proxy would see one address for both.

mod cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cluster::procs::TempDir;
use cluster::servers::{Haproxy, Nginx, Node, Redis};
use socket2::{Domain, Socket, Type};

/// Opens a WebSocket on `/echo` through `port`, from `source`; the status of the answer
/// and the connection (kept open while the caller holds it).
fn upgrade_from(source: [u8; 4], port: u16) -> (u16, TcpStream) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind a loopback source address");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect to the proxy");
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line from {source:?}: {head:?}"));
    (status, stream)
}

/// One connection per client: the second from 127.0.0.2 is refused, 127.0.0.3 is not.
fn per_ip_limit_applies_per_client(port: u16) {
    let (first, _a) = upgrade_from([127, 0, 0, 2], port);
    assert_eq!(first, 101, "first connection from 127.0.0.2");
    let (second, _b) = upgrade_from([127, 0, 0, 2], port);
    assert_eq!(second, 429, "127.0.0.2 already has its one connection");
    let (other, _c) = upgrade_from([127, 0, 0, 3], port);
    assert_eq!(
        other, 101,
        "127.0.0.3 is another client, not the proxy's address"
    );
}

#[test]
fn nginx_forwards_client_addresses() {
    let dir = TempDir::new("proxies-nginx");
    let redis = Redis::start(dir.path());
    let flags = [
        ("--trusted-proxy", "127.0.0.1"),
        ("--max-connections-per-ip", "1"),
        ("--handshake-rate", "16"),
    ];
    let node = Node::start_with(dir.path(), "n1", &redis, &flags);
    // The node three times over: every connection lands on it.
    let nginx = Nginx::start(dir.path(), &[&node, &node, &node]);
    per_ip_limit_applies_per_client(nginx.port);
}

#[test]
fn haproxy_sends_proxy_v2() {
    let dir = TempDir::new("proxies-haproxy");
    let redis = Redis::start(dir.path());
    let flags = [
        ("--trusted-proxy", "127.0.0.1"),
        ("--proxy-protocol", "on"),
        ("--max-connections-per-ip", "1"),
        ("--handshake-rate", "16"),
    ];
    let node = Node::start_with(dir.path(), "n1", &redis, &flags);
    let haproxy = Haproxy::start(dir.path(), &[&node, &node, &node]);
    // HAProxy's health checks (PROXY v2 too) must find the node up before it forwards.
    cluster::eventually("haproxy forwards to the node", || {
        let (status, _) = upgrade_from([127, 0, 0, 4], haproxy.port);
        (status == 101).then_some(())
    });
    per_ip_limit_applies_per_client(haproxy.port);
}
