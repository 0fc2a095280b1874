//! TLS on the listener, over loopback against the in-process server: `wss://` echo with an
//! ECDSA, an Ed25519 and an RSA certificate, refusals of a certificate from another CA or for
//! another name (and `--insecure` accepting both), plain HTTP and garbage to the TLS port
//! closed at once, and a stalled TLS handshake dropped at `handshake_timeout`.

mod cluster;
mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cluster::procs::TempDir;
use tls::{KeyType, TestCa, echo_once, trusting};
use wsloop::client::tls::TlsTrust;
use wsloop::client::{Client, ClientError, ClientOptions};
use wsloop::server::{Server, ServerConfig, ServerHandle, TlsFiles};

/// A TLS server on 127.0.0.1:0, stopped when dropped.
struct TlsServer {
    addr: SocketAddr,
    handle: ServerHandle,
}

impl TlsServer {
    fn start(cert: &std::path::Path, key: &std::path::Path, timeout: Duration) -> Self {
        Self::start_with(cert, key, timeout, |_| {})
    }

    fn start_with(
        cert: &std::path::Path,
        key: &std::path::Path,
        timeout: Duration,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            handshake_rate: None,
            max_connections_per_ip: 0,
            handshake_timeout: timeout,
            tls: Some(TlsFiles {
                cert: cert.to_owned(),
                key: key.to_owned(),
            }),
            ..ServerConfig::default()
        };
        configure(&mut config);
        let spawned = Server::spawn(config).expect("TLS server starts");
        Self {
            addr: spawned.local_addr,
            handle: spawned.handle,
        }
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("wss://{host}:{}{path}", self.addr.port())
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.handle.exit_now();
    }
}

#[test]
fn wss_echo_with_each_key_type() {
    let dir = TempDir::new("tls-keys");
    let ca = TestCa::new(dir.path(), "keys");
    for kind in [KeyType::Ecdsa, KeyType::Ed25519, KeyType::Rsa] {
        let (cert, key) = ca.server_cert(dir.path(), &format!("{kind:?}"), kind);
        let server = TlsServer::start(&cert, &key, Duration::from_secs(10));
        for host in ["localhost", "127.0.0.1"] {
            let mut client = Client::connect(&server.url(host, "/echo"), &trusting(&ca))
                .unwrap_or_else(|e| panic!("{kind:?} via {host}: {e}"));
            echo_once(&mut client, &format!("over TLS with {kind:?}"));
            // Larger than a TLS record (16 KiB): several records each way.
            let big = "x".repeat(100_000);
            echo_once(&mut client, &big);
            client.close(1000, "done").unwrap();
        }
    }
}

#[test]
fn a_certificate_from_another_ca_or_for_another_name_is_refused() {
    let dir = TempDir::new("tls-wrong");
    let ca = TestCa::new(dir.path(), "right");
    let other = TestCa::new(dir.path(), "other");
    let (cert, key) = ca.server_cert_for(dir.path(), "server", KeyType::Ecdsa, &["localhost"]);
    let server = TlsServer::start(&cert, &key, Duration::from_secs(10));
    let refused = |url: &str, options: &ClientOptions| match Client::connect(url, options) {
        Ok(_) => panic!("{url}: connected with an untrusted certificate"),
        Err(e) => e.to_string(),
    };
    let error = refused(&server.url("localhost", "/echo"), &trusting(&other));
    assert!(
        error.contains("UnknownIssuer") || error.contains("unknown issuer"),
        "{error}"
    );
    let error = refused(&server.url("127.0.0.1", "/echo"), &trusting(&ca));
    assert!(error.contains("not valid for name"), "{error}");
    // The system roots do not know a test CA either.
    let system = ClientOptions::default();
    let error = refused(&server.url("localhost", "/echo"), &system);
    assert!(
        error.contains("nknown") || error.contains("no root certificates"),
        "{error}"
    );
    // --insecure: encrypted, unauthenticated, but it works.
    let insecure = ClientOptions {
        tls: TlsTrust::Insecure,
        ..ClientOptions::default()
    };
    let mut client = Client::connect(&server.url("127.0.0.1", "/echo"), &insecure).unwrap();
    echo_once(&mut client, "insecure but encrypted");
    // A bad --ca file is named.
    let missing = ClientOptions {
        tls: TlsTrust::CaFile(dir.path().join("nope.pem")),
        ..ClientOptions::default()
    };
    match Client::connect(&server.url("localhost", "/echo"), &missing) {
        Err(ClientError::Tls(e)) => assert!(e.contains("nope.pem"), "{e}"),
        other => panic!("expected a TLS settings error, got {other:?}"),
    }
    // The server is still serving after those failed handshakes.
    let mut client = Client::connect(&server.url("localhost", "/echo"), &trusting(&ca)).unwrap();
    echo_once(&mut client, "still here");
}

/// Reads until EOF (or a reset) within `within`; returns what arrived.
fn read_to_end_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(within)).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("no close within {within:?} ({:?}): {e}", started.elapsed()),
        }
    }
}

#[test]
fn plaintext_to_the_tls_port_is_answered_and_closed() {
    let dir = TempDir::new("tls-plain");
    let ca = TestCa::new(dir.path(), "plain");
    let (cert, key) = ca.server_cert(dir.path(), "server", KeyType::Ecdsa);
    let server = TlsServer::start(&cert, &key, Duration::from_secs(10));
    let mut http = TcpStream::connect(server.addr).unwrap();
    http.write_all(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let answer = read_to_end_within(&mut http, Duration::from_secs(2));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    assert!(answer.contains("This port speaks TLS"), "{answer:?}");
    // Bytes that are neither TLS nor HTTP: a TLS alert at most, then the end.
    let mut junk = TcpStream::connect(server.addr).unwrap();
    junk.write_all(&[0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07])
        .unwrap();
    let alert = read_to_end_within(&mut junk, Duration::from_secs(2));
    assert!(alert.len() <= 7, "at most one alert record: {alert:02x?}");
}

#[test]
fn a_stalled_tls_handshake_is_dropped_at_the_handshake_timeout() {
    let dir = TempDir::new("tls-stall");
    let ca = TestCa::new(dir.path(), "stall");
    let (cert, key) = ca.server_cert(dir.path(), "server", KeyType::Ecdsa);
    let server = TlsServer::start(&cert, &key, Duration::from_millis(600));
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    // The start of a ClientHello record that promises 512 bytes and never sends them.
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let started = Instant::now();
    read_to_end_within(&mut stalled, Duration::from_secs(5));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "dropped after {waited:?}, expected about 600 ms"
    );
}

/// A client turned away at accept (the answer is queued before the TLS handshake is done)
/// still gets its 503 over TLS, once the handshake completes.
#[test]
fn a_refusal_at_accept_arrives_over_tls() {
    let dir = TempDir::new("tls-refusal");
    let ca = TestCa::new(dir.path(), "refusal");
    let (cert, key) = ca.server_cert(dir.path(), "server", KeyType::Ecdsa);
    let server = TlsServer::start_with(&cert, &key, Duration::from_secs(10), |c| {
        c.max_connections = 1;
    });
    let mut first = Client::connect(&server.url("localhost", "/echo"), &trusting(&ca)).unwrap();
    echo_once(&mut first, "the one allowed");
    match Client::connect(&server.url("localhost", "/echo"), &trusting(&ca)) {
        Err(ClientError::Handshake(e)) => assert!(e.to_string().contains("503"), "{e}"),
        other => panic!("expected a 503 over TLS, got {other:?}"),
    }
}
