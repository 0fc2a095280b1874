//! TLS with the real binary: `wsloop serve --tls-cert --tls-key` refuses a bad file at
//! startup, reloads its certificate on SIGHUP under live connections (and keeps the old one
//! when the new file is bad), and `wsloop client --ca` talks to `/echo` and the hub over
//! `wss://`.

mod cluster;
mod tls;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::procs::{Proc, TempDir, free_port};
use cluster::{PATIENCE, eventually};
use tls::{KeyType, TestCa, echo_once, trusting};
use wsloop::client::Client;

const WSLOOP: &str = env!("CARGO_BIN_EXE_wsloop");

/// `wsloop serve` with TLS on a free port; waits until it accepts TCP connections.
fn serve_tls(dir: &Path, cert: &Path, key: &Path) -> (Proc, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut command = Command::new(WSLOOP);
        command
            .args([
                "serve",
                "--handshake-rate",
                "0",
                "--max-connections-per-ip",
                "0",
            ])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
        let mut proc = Proc::spawn("wsloop serve --tls", command, &dir.join("serve.log"));
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline && proc.exited().is_none() {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (proc, port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("wsloop serve --tls did not start");
}

/// Replaces `to` with `from` in one step (rename), as a certificate manager would.
fn install(from: &Path, to: &Path) {
    let staged = to.with_extension("staged");
    fs::copy(from, &staged).unwrap();
    fs::rename(&staged, to).unwrap();
}

#[test]
fn a_bad_tls_file_stops_startup_with_its_name() {
    let dir = TempDir::new("tls-startup");
    let ca = TestCa::new(dir.path(), "startup");
    let (cert, _key) = ca.server_cert(dir.path(), "server", KeyType::Ecdsa);
    let missing = dir.path().join("missing-key.pem");
    let output = Command::new(WSLOOP)
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started without its key");
    assert!(stderr.contains("missing-key.pem"), "{stderr}");
    let output = Command::new(WSLOOP)
        .args(["serve", "--check", "--tls-cert"])
        .arg(&cert)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "a certificate without a key passed --check"
    );
    assert!(
        format!("{stdout}{stderr}").contains("key_file"),
        "{stdout}{stderr}"
    );
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    let dir = TempDir::new("tls-reload");
    let (old_ca, new_ca) = (
        TestCa::new(dir.path(), "old"),
        TestCa::new(dir.path(), "new"),
    );
    let (cert, key) = old_ca.server_cert(dir.path(), "live", KeyType::Ecdsa);
    let (new_cert, new_key) = new_ca.server_cert(dir.path(), "next", KeyType::Ed25519);
    let (mut server, port) = serve_tls(dir.path(), &cert, &key);
    let url = format!("wss://localhost:{port}/echo");
    let mut live = Client::connect(&url, &trusting(&old_ca)).unwrap();
    echo_once(&mut live, "before the reload");

    install(&new_cert, &cert);
    install(&new_key, &key);
    server.signal("HUP");
    eventually("new handshakes use the new certificate", || {
        Client::connect(&url, &trusting(&new_ca)).ok()
    });
    assert!(
        Client::connect(&url, &trusting(&old_ca)).is_err(),
        "the old certificate is still served"
    );
    echo_once(&mut live, "after the reload, same connection");

    // A broken file: the certificate in use stays, and the log says why.
    fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    server.signal("HUP");
    eventually("the failed reload is logged", || {
        let log = server.log_tail(20);
        log.contains("still serving the previous certificate")
            .then_some(())
    });
    let mut fresh = Client::connect(&url, &trusting(&new_ca)).unwrap();
    echo_once(&mut fresh, "the last good certificate");
    echo_once(&mut live, "and the first connection lives on");
    live.close(1000, "done").unwrap();
    fresh.close(1000, "done").unwrap();
    server.signal("TERM");
    assert!(
        server.wait_exit(PATIENCE).success(),
        "clean exit after SIGTERM"
    );
}

/// Runs `wsloop client --ca CA --wait-replies N URL` with `stdin`; returns its stdout.
fn client_once(ca: &TestCa, url: &str, replies: u32, stdin: &str) -> String {
    let mut child = Command::new(WSLOOP)
        .args([
            "client",
            "--timeout",
            "5s",
            "--wait-replies",
            &replies.to_string(),
        ])
        .arg("--ca")
        .arg(&ca.cert_file)
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{url}: {stdout}\n{stderr}");
    stdout
}

#[test]
fn wsloop_client_over_wss_echo_and_hub() {
    let dir = TempDir::new("tls-client");
    let ca = TestCa::new(dir.path(), "client");
    let (cert, key) = ca.server_cert(dir.path(), "server", KeyType::Rsa);
    let (_server, port) = serve_tls(dir.path(), &cert, &key);
    let echo = client_once(
        &ca,
        &format!("wss://localhost:{port}/echo"),
        2,
        "one\ntwo\n",
    );
    assert_eq!(echo, "one\ntwo\n");
    let hub_url = format!("wss://localhost:{port}/ws?user_id=alice");
    let hub = client_once(&ca, &hub_url, 2, "{\"type\":\"join\",\"room\":\"tls\"}\n");
    let kinds: Vec<String> = hub
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
        .collect();
    assert_eq!(kinds, ["\"welcome\"", "\"joined\""], "{hub}");
}

/// Runs `wsloop bench MODE wss://… --ca CA` for a moment; its JSON report.
fn bench(ca: &TestCa, mode: &str, url: &str, flags: &[&str]) -> serde_json::Value {
    let output = Command::new(WSLOOP)
        .args([
            "bench",
            mode,
            url,
            "--duration",
            "500ms",
            "--timeout",
            "5s",
            "--json",
        ])
        .args(flags)
        .arg("--ca")
        .arg(&ca.cert_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench {mode}: {stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn wsloop_bench_over_wss() {
    let dir = TempDir::new("tls-bench");
    let ca = TestCa::new(dir.path(), "bench");
    let (cert, key) = ca.server_cert(dir.path(), "server", KeyType::Ecdsa);
    let (_server, port) = serve_tls(dir.path(), &cert, &key);
    let url = format!("wss://localhost:{port}/echo");
    let echo = bench(&ca, "echo", &url, &["-c", "4", "-s", "20000", "-d", "4"]);
    assert!(echo["messages"].as_u64().unwrap() > 0, "{echo}");
    let connect = bench(&ca, "connect", &url, &["-c", "2"]);
    assert!(connect["handshakes"].as_u64().unwrap() > 0, "{connect}");
    // Without the CA the load generator refuses to run rather than measure failures.
    let output = Command::new(WSLOOP)
        .args([
            "bench",
            "connect",
            &url,
            "--duration",
            "300ms",
            "--timeout",
            "2s",
            "-c",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "bench trusted a test CA without --ca"
    );
}
