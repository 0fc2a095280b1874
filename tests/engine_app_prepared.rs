//! Prepared messages: an app that keeps its own audience encodes a message once
//! ([`Ctx::prepare`]) and sends it to whom it picks ([`Ctx::send_prepared`]).
//!
//! Every recipient gets the message it was sent, plain or compressed (a compressed copy is
//! shared per window size within a callback, so a stale copy from an earlier callback
//! would show as the wrong text); the app's own bookkeeping decides who gets it; and the
//! promise that holds for topics holds here too: a recipient that stops reading is closed
//! 1008 "slow consumer" at `max_outbound_bytes`, not buffered without bound.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::TestServer;
use socket2::{Domain, Socket, Type};
use wsloop::client::{Client, ClientOptions, Message as Received};
use wsloop::protocol::deflate::DeflateConfig;
use wsloop::server::{App, ConnId, Ctx, Message, Request};

/// The unsent-bytes cap per connection under test.
const MAX_OUTBOUND: usize = 64 * 1024;

/// Connections whose path is `/listen` are the audience; a message from anyone goes to
/// every listener that is not muted, as one prepared frame; `mute` mutes the sender. The
/// sender is told how many it reached.
#[derive(Default)]
struct Audience {
    listeners: Vec<ConnId>,
    muted: Vec<ConnId>,
}

impl App for Audience {
    fn on_open(&mut self, _: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        if request.path() == "/listen" {
            self.listeners.push(conn);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        if message == Message::Text("mute") {
            self.muted.push(conn);
            return;
        }
        let prepared = ctx.prepare(message);
        let mut reached = 0;
        for &to in &self.listeners {
            if !self.muted.contains(&to) && ctx.send_prepared(to, &prepared) {
                reached += 1;
            }
        }
        if !self.listeners.contains(&conn) {
            ctx.send(conn, Message::Text(&format!("reached {reached}")));
        }
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: u16, _: &str) {
        self.listeners.retain(|c| *c != conn);
    }
}

/// A loop with [`Audience`] on every path; the process's exit ends it.
fn start() -> TestServer {
    TestServer::start_apps(
        |config| {
            config.max_outbound_bytes = MAX_OUTBOUND;
            config.compression = Some(DeflateConfig::default());
        },
        |routes| routes.route("/*", Audience::default()),
    )
}

fn connect(addr: SocketAddr, path: &str, compress: bool) -> Client {
    let options = ClientOptions {
        compression: compress.then(DeflateConfig::default),
        ..ClientOptions::default()
    };
    let client = Client::connect(&format!("ws://{addr}{path}"), &options).expect("connect");
    assert_eq!(client.compression().is_some(), compress, "negotiated");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client
}

fn text(client: &mut Client) -> String {
    match client.recv() {
        Ok(Received::Text(text)) => text,
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[test]
fn each_recipient_gets_its_message_plain_or_compressed() {
    let server = start();
    let addr = server.addr;
    let mut listeners: Vec<Client> = [false, true, false, true]
        .into_iter()
        .map(|compress| connect(addr, "/listen", compress))
        .collect();
    let mut sender = connect(addr, "/say", false);
    // Long enough to be compressed, and different each time.
    for round in 0..20 {
        let message = format!("round {round}: {}", "all work and no play ".repeat(8));
        sender.send_text(&message).expect("send");
        assert_eq!(text(&mut sender), "reached 4");
        for (i, listener) in listeners.iter_mut().enumerate() {
            assert_eq!(text(listener), message, "listener {i}, round {round}");
        }
    }
    // The app's own audience: a muted listener is skipped, the rest still get it.
    listeners[1].send_text("mute").expect("mute");
    // The mute is handled before the next message: the listener's reads are in order,
    // but the two connections are not, so wait for a message to pass first.
    std::thread::sleep(Duration::from_millis(200));
    sender.send_text("after the mute").expect("send");
    assert_eq!(text(&mut sender), "reached 3");
    for i in [0, 2, 3] {
        assert_eq!(text(&mut listeners[i]), "after the mute", "listener {i}");
    }
}

/// A listener that completes the upgrade and then never reads: a plain socket with a
/// small receive buffer.
fn stalled_listener(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    let request = "GET /listen HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the upgrade answer");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    stream
}

#[test]
fn a_listener_that_stops_reading_is_closed_at_the_cap() {
    let server = start();
    let addr = server.addr;
    let mut stalled = stalled_listener(addr);
    let mut reader = connect(addr, "/listen", false);
    let mut sender = connect(addr, "/say", false);
    let payload = vec![7u8; 16 * 1024];
    // 64 MiB to the stalled listener, if it were never closed: far more than its kernel
    // buffers, the engine's socket buffer and the cap hold.
    let mut reached_both = 0;
    for n in 0..4096 {
        sender.send_binary(&payload).expect("send");
        let reached = text(&mut sender);
        assert!(matches!(reader.recv(), Ok(Received::Binary(b)) if b == payload));
        match reached.as_str() {
            "reached 2" => reached_both += 1,
            "reached 1" => {
                eprintln!("closed after {n} messages");
                break;
            }
            other => panic!("{other}"),
        }
        assert!(
            n < 4095,
            "the stalled listener is still open after {n} messages"
        );
    }
    assert!(reached_both > 0, "it was a listener before it stalled");

    // Its socket ends with the close frame: 1008 "slow consumer".
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let close = [&[0x88u8, 15, 0x03, 0xf0][..], b"slow consumer"].concat();
    while !bytes.ends_with(&close) {
        let n = stalled.read(&mut chunk).expect("read the stalled socket");
        assert!(n > 0, "the stream ended without the close frame");
        bytes.extend_from_slice(&chunk[..n]);
    }
}
