//! The safety net on a real loop over loopback: a panic injected (test builds only) into one
//! connection's message, request or timer closes that connection with 1011 or HTTP 500,
//! is counted, and the clients around it go on exchanging messages.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::PANIC_TRIGGER;
use crate::client::ClientError;
use crate::client::{Client, ClientOptions, Message};
use crate::server::{Server, ServerConfig, Spawned};

const API_KEY: &str = "isolation-test-key";

fn spawn() -> Spawned {
    let mut config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    config.api.keys = vec![API_KEY.into()];
    config.hub.rate_limit_enabled = false;
    Server::spawn(config).expect("spawn the loop")
}

fn connect(addr: SocketAddr, target: &str) -> Client {
    let client = Client::connect(&format!("ws://{addr}{target}"), &ClientOptions::default())
        .expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    client
}

fn trigger() -> String {
    String::from_utf8(PANIC_TRIGGER.to_vec()).expect("ASCII trigger")
}

/// The next text message that is not presence.
fn next_text(client: &mut Client) -> String {
    loop {
        match client.recv().expect("a message") {
            Message::Text(text) if !text.contains(r#""presence""#) => return text,
            _ => {}
        }
    }
}

/// Waits for the server's close; returns its code and reason.
fn expect_close(client: &mut Client) -> (u16, String) {
    loop {
        match client.recv() {
            Ok(_) => {}
            Err(ClientError::Closed { code, reason }) => return (code, reason),
            Err(e) => panic!("expected a close, got {e}"),
        }
    }
}

/// A plain HTTP exchange: sends `request`, reads to EOF.
fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// Bystanders: an echo client, and two hub users in a room. Each round proves all three
/// are still served.
struct Bystanders {
    echo: Client,
    alice: Client,
    bob: Client,
    round: u32,
}

impl Bystanders {
    fn new(addr: SocketAddr) -> Self {
        let echo = connect(addr, "/echo");
        let mut alice = connect(addr, "/ws?user_id=alice");
        let mut bob = connect(addr, "/ws?user_id=bob");
        for client in [&mut alice, &mut bob] {
            assert!(next_text(client).contains("welcome"));
            client
                .send_text(r#"{"type":"join","room":"lobby"}"#)
                .expect("join");
            assert!(next_text(client).contains("joined"));
        }
        Self {
            echo,
            alice,
            bob,
            round: 0,
        }
    }

    fn still_served(&mut self) {
        self.round += 1;
        let text = format!("round {}", self.round);
        self.echo.send_text(&text).expect("echo send");
        assert_eq!(self.echo.recv().expect("echo"), Message::Text(text.clone()));
        let chat = format!(r#"{{"type":"chat","room":"lobby","payload":"{text}"}}"#);
        self.alice.send_text(&chat).expect("chat send");
        let got = next_text(&mut self.bob);
        assert!(got.contains(&text), "{got}");
        let own = next_text(&mut self.alice);
        assert!(own.contains(&text), "{own}");
    }
}

fn panics_total(addr: SocketAddr) -> u64 {
    let metrics = http(addr, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("wsloop_panics_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no wsloop_panics_total in:\n{metrics}"))
}

#[test]
fn a_panic_closes_one_connection_and_the_loop_serves_the_rest() {
    let server = spawn();
    let addr = server.local_addr;
    let mut others = Bystanders::new(addr);
    others.still_served();
    assert_eq!(panics_total(addr), 0);

    // An echo message.
    let mut victim = connect(addr, "/echo");
    victim.send_text(&trigger()).expect("send");
    assert_eq!(expect_close(&mut victim), (1011, "internal error".into()));
    others.still_served();

    // A hub request: the victim also leaves the room (bob sees it go).
    let mut victim = connect(addr, "/ws?user_id=mallory");
    assert!(next_text(&mut victim).contains("welcome"));
    victim
        .send_text(r#"{"type":"join","room":"lobby"}"#)
        .expect("join");
    assert!(next_text(&mut victim).contains("joined"));
    victim.send_text(&trigger()).expect("send");
    assert_eq!(expect_close(&mut victim), (1011, "internal error".into()));
    others.still_served();

    // An API request.
    let body = format!(r#"{{"room":"lobby","payload":"{}"}}"#, trigger());
    let request = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = http(addr, &request);
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    others.still_served();

    // A timer: the handshake timeout of a request head that never ends.
    let partial = format!("GET /echo HTTP/1.1\r\nX-Trigger: {}\r\n", trigger());
    let answer = http(addr, &partial);
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    others.still_served();

    assert_eq!(panics_total(addr), 4);
    server.handle.exit_now().expect("stop");
    server
        .thread
        .join()
        .expect("loop thread")
        .expect("loop result");
}
