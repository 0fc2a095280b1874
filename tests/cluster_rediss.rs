//! The cluster over TLS: a real `redis-server` with only a TLS port and a password, and a
//! node given `rediss://:PASSWORD@localhost:PORT` that trusts the test CA through
//! `SSL_CERT_FILE` (read by rustls-native-certs). The node becomes ready; one that does not
//! trust the CA does not. Neither prints the password, in its log or in `--print-config`.

mod cluster;
mod tls;

use std::process::Command;
use std::time::{Duration, Instant};

use cluster::peer::http;
use cluster::procs::{Proc, TempDir, free_port, require};
use cluster::{PATIENCE, eventually};
use tls::{KeyType, TestCa};

const PASSWORD: &str = "s3cret-rediss-password";

/// `redis-server` with TLS only (no plain port), a password, no persistence.
fn tls_redis(dir: &std::path::Path, ca: &TestCa) -> (Proc, u16) {
    let (cert, key) = ca.server_cert(dir, "redis", KeyType::Ecdsa);
    let port = free_port();
    let mut command = Command::new(require("redis-server"));
    command
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .args(["--tls-auth-clients", "no", "--requirepass", PASSWORD])
        .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir);
    let proc = Proc::spawn("redis-server --tls", command, &dir.join("redis.log"));
    let deadline = Instant::now() + PATIENCE;
    while !cluster::procs::listening(port) {
        assert!(
            Instant::now() < deadline,
            "redis-server --tls-port {port} not listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, port)
}

#[test]
fn a_node_joins_over_rediss_and_never_prints_the_password() {
    let dir = TempDir::new("rediss");
    let ca = TestCa::new(dir.path(), "redis");
    let stranger = TestCa::new(dir.path(), "stranger");
    let (_redis, redis_port) = tls_redis(dir.path(), &ca);
    let url = format!("rediss://:{PASSWORD}@localhost:{redis_port}");

    let (good, good_port) = node_with_flag(dir.path(), "trusting", &url, &ca.cert_file);
    eventually("the node reaches Redis over TLS", || {
        let (status, body) = http(good_port, "GET", "/readyz", &[], "");
        (status == 200 && body.trim() == "ready").then_some(())
    });
    let (bad, bad_port) = node_with_flag(dir.path(), "distrusting", &url, &stranger.cert_file);
    std::thread::sleep(Duration::from_secs(2));
    let (status, body) = http(bad_port, "GET", "/readyz", &[], "");
    assert_eq!(
        status, 503,
        "a node that cannot verify Redis is not ready: {body}"
    );
    for proc in [&good, &bad] {
        let log = proc.log_tail(200);
        assert!(!log.contains(PASSWORD), "the password is in a log:\n{log}");
    }
    let printed = Command::new(env!("CARGO_BIN_EXE_wsloop"))
        .args(["serve", "--print-config", "--redis-url", &url])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.contains("rediss://:***@localhost"), "{printed}");
    assert!(!printed.contains(PASSWORD), "{printed}");
}

/// `wsloop serve` joined to `url` (by flag, as an operator might, despite `ps`), trusting
/// the CA in `ca_file`; waits until it listens.
fn node_with_flag(
    dir: &std::path::Path,
    name: &str,
    url: &str,
    ca_file: &std::path::Path,
) -> (Proc, u16) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsloop"));
    command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--node-id",
            name,
        ])
        .args(["--redis-url", url])
        .env("SSL_CERT_FILE", ca_file);
    let proc = Proc::spawn(name, command, &dir.join(format!("{name}.log")));
    let deadline = Instant::now() + PATIENCE;
    while !cluster::procs::listening(port) {
        assert!(Instant::now() < deadline, "{name} not listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    (proc, port)
}
