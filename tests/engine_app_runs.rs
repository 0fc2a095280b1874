//! An app's messages are read in runs (one pass through the protocol per read, not per
//! message) and handed over one call at a time. What a peer and the app see must be what
//! they would see with the app called as each message was read: every reply before the
//! close reply, a pong in its place among the replies, the replies to messages before a
//! protocol error ahead of its close frame, nothing after the app closes the connection,
//! and `on_close` after the last message. Answers an app gives at the end of a run
//! (`App::on_run_end`) go out in the same place. Each test writes its frames in one `write`, so
//! the server reads them together, and follows the app's calls on a watcher connection.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use wsloop::client::{Client, ClientError, ClientOptions, Message as Received};
use wsloop::server::{App, ConnId, Ctx, Message, Request, Run, Server, ServerConfig};

/// Replies `r<rest>` to a text `m<rest>`, returns binary as it came, closes with 4000 on
/// `close` (and the connection at `/victim` with 4001 on `kick`), and answers the texts
/// `b<rest>` of a run together at its end (`batch b1 b2`), and the texts `p<rest>` with
/// one prepared message (`prepared p1 p2`); publishes `published e<rest>` for a text
/// `e<rest>` to the connections at `/echoes` (its sender among them); tells every other
/// call to the connections at `/watch`.
#[derive(Default)]
struct Tally {
    batched: Vec<String>,
    prepared: Vec<String>,
    victim: Option<ConnId>,
}

impl App for Tally {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        if request.path() == "/watch" {
            ctx.subscribe(conn, "watch");
            ctx.send(conn, Message::Text("watching"));
        }
        if request.path() == "/echoes" {
            ctx.subscribe(conn, "echoes");
        }
        if request.path() == "/victim" {
            self.victim = Some(conn);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        match message {
            Message::Text("close") => {
                report(ctx, "close asked");
                ctx.close(conn, 4000, "asked");
            }
            Message::Text("kick") => {
                report(ctx, "kick");
                if let Some(victim) = self.victim.take() {
                    ctx.close(victim, 4001, "kicked");
                }
            }
            Message::Text(text) if text.starts_with('b') => {
                report(ctx, text);
                self.batched.push(text.to_owned());
            }
            Message::Text(text) if text.starts_with('e') => {
                // Not reported: a publication to another topic would queue these at once.
                ctx.publish("echoes", Message::Text(&format!("published {text}")));
            }
            Message::Text(text) if text.starts_with('p') => {
                report(ctx, text);
                self.prepared.push(text.to_owned());
            }
            Message::Text(text) => {
                report(ctx, text);
                let reply = format!("r{}", text.strip_prefix('m').unwrap_or(text));
                ctx.send(conn, Message::Text(&reply));
            }
            Message::Binary(bytes) => {
                report(ctx, &format!("<{} bytes>", bytes.len()));
                ctx.send(conn, Message::Binary(bytes));
            }
        }
    }

    fn on_run_end(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if !self.batched.is_empty() {
            let batch = format!("batch {}", self.batched.join(" "));
            self.batched.clear();
            ctx.send(conn, Message::Text(&batch));
        }
        if !self.prepared.is_empty() {
            let answer = format!("prepared {}", self.prepared.join(" "));
            self.prepared.clear();
            let prepared = ctx.prepare(Message::Text(&answer));
            ctx.send_prepared(conn, &prepared);
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_>, _: ConnId, code: u16, _: &str) {
        report(ctx, &format!("closed {code}"));
    }
}

fn report(ctx: &mut Ctx<'_>, what: &str) {
    ctx.publish("watch", Message::Text(what));
}

/// A loop with [`Tally`] on every path, and a connection watching its calls.
fn start() -> (SocketAddr, Client) {
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections_per_ip: 0,
            handshake_rate: None,
            ..ServerConfig::default()
        };
        let mut server = Server::builder(config)
            .route("/*", Tally::default())
            .bind()
            .expect("bind");
        addr_tx.send(server.local_addr()).expect("address");
        server.run().expect("run");
    });
    let addr = addr_rx.recv().expect("the server's address");
    let mut watcher =
        Client::connect(&format!("ws://{addr}/watch"), &ClientOptions::default()).expect("watcher");
    watcher
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    assert_eq!(
        watcher.recv().expect("hello"),
        Received::Text("watching".into())
    );
    (addr, watcher)
}

/// An upgraded connection, its 101 read.
fn upgrade(addr: SocketAddr) -> TcpStream {
    upgrade_at(addr, "/runs")
}

/// An upgraded connection to `path`, its 101 read.
fn upgrade_at(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the 101");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A masked client frame (payloads under 126 bytes). `first` is FIN, RSV and opcode.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let len = u8::try_from(payload.len()).expect("short payload");
    assert!(len < 126);
    let mut out = vec![first, 0x80 | len];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

fn text(body: &str) -> Vec<u8> {
    frame(0x81, body.as_bytes())
}

fn close(code: u16) -> Vec<u8> {
    frame(0x88, &code.to_be_bytes())
}

/// What the server sent, frame by frame, until it closed the TCP connection: `text`,
/// `<n bytes>` for binary, `pong <payload>`, `close <code>`.
fn frames_until_eof(stream: &mut TcpStream) -> Vec<String> {
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read to EOF");
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let opcode = bytes[at] & 0x0f;
        let len = usize::from(bytes[at + 1] & 0x7f);
        assert!(len < 126, "short frames only");
        let payload = &bytes[at + 2..at + 2 + len];
        frames.push(match opcode {
            0x1 => String::from_utf8(payload.to_vec()).expect("UTF-8"),
            0x2 => format!("<{} bytes>", payload.len()),
            0x8 => format!("close {}", u16::from_be_bytes([payload[0], payload[1]])),
            0xa => format!("pong {}", String::from_utf8_lossy(payload)),
            other => panic!("unexpected opcode {other:#x}"),
        });
        at += 2 + len;
    }
    assert_eq!(at, bytes.len(), "a whole number of frames");
    frames
}

/// The app's calls until it heard the close.
fn calls_until_closed(watcher: &mut Client) -> Vec<String> {
    let mut seen = Vec::new();
    while !seen
        .last()
        .is_some_and(|s: &String| s.starts_with("closed"))
    {
        match watcher.recv().expect("a call") {
            Received::Text(call) => seen.push(call),
            other => panic!("not a call: {other:?}"),
        }
    }
    seen
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_reply_goes_out_before_the_close_reply_and_on_close_comes_last() {
    let (addr, mut calls) = start();
    let mut stream = upgrade(addr);
    let mut burst = Vec::new();
    for i in 0..10 {
        burst.extend(text(&format!("m{i}")));
    }
    burst.extend(close(1000));
    stream.write_all(&burst).expect("burst");
    let mut expected: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    expected.push("close 1000".into());
    assert_eq!(frames_until_eof(&mut stream), expected);
    let mut told: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    told.push("closed 1000".into());
    assert_eq!(calls_until_closed(&mut calls), told);
}

#[test]
fn a_ping_among_messages_is_answered_in_its_place() {
    let (addr, mut calls) = start();
    let mut stream = upgrade(addr);
    let mut burst = text("m0");
    burst.extend(text("m1"));
    burst.extend(frame(0x89, b"hi"));
    burst.extend(text("m2"));
    burst.extend(close(1000));
    stream.write_all(&burst).expect("burst");
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["r0", "r1", "pong hi", "r2", "close 1000"])
    );
    assert_eq!(
        calls_until_closed(&mut calls),
        strings(&["m0", "m1", "m2", "closed 1000"])
    );
}

#[test]
fn answers_given_at_the_end_of_a_run_precede_the_pong_and_close_after_it() {
    let (addr, mut calls) = start();
    let mut stream = upgrade(addr);
    let mut burst = text("b1");
    burst.extend(text("b2"));
    burst.extend(frame(0x89, b"hi"));
    burst.extend(text("b3"));
    burst.extend(close(1000));
    stream.write_all(&burst).expect("burst");
    // A run ends before a control frame: two runs, each answered at its end, in place.
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["batch b1 b2", "pong hi", "batch b3", "close 1000"])
    );
    assert_eq!(
        calls_until_closed(&mut calls),
        strings(&["b1", "b2", "b3", "closed 1000"])
    );

    // Before a protocol error's close frame too.
    let mut stream = upgrade(addr);
    let mut burst = text("b4");
    burst.extend(text("b5"));
    burst.extend(frame(0xC1, b"bad"));
    stream.write_all(&burst).expect("burst");
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["batch b4 b5", "close 1002"])
    );
}

#[test]
fn a_prepared_answer_at_the_end_of_a_run_precedes_a_protocol_errors_close() {
    let (addr, mut calls) = start();
    let mut stream = upgrade(addr);
    let mut burst = text("p1");
    burst.extend(text("p2"));
    burst.extend(frame(0xC1, b"bad"));
    stream.write_all(&burst).expect("burst");
    // The session failed on the frame after them: what answers them still goes first.
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["prepared p1 p2", "close 1002"])
    );
    assert_eq!(
        calls_until_closed(&mut calls),
        strings(&["p1", "p2", "closed 1006"])
    );
}

/// Publications are held until the turn's output is flushed (`publications`); the
/// sender's own copies still go out in the order the peer wrote its frames.
#[test]
fn publications_to_the_sender_precede_the_pong_and_close_after_their_run() {
    let (addr, _calls) = start();
    let mut stream = upgrade_at(addr, "/echoes");
    let mut burst = text("e1");
    burst.extend(text("e2"));
    burst.extend(frame(0x89, b"hi"));
    burst.extend(text("e3"));
    burst.extend(close(1000));
    stream.write_all(&burst).expect("burst");
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&[
            "published e1",
            "published e2",
            "pong hi",
            "published e3",
            "close 1000"
        ])
    );
}

#[test]
fn publications_to_the_sender_precede_a_protocol_errors_close() {
    let (addr, _calls) = start();
    let mut stream = upgrade_at(addr, "/echoes");
    let mut burst = text("e1");
    burst.extend(text("e2"));
    burst.extend(frame(0xC1, b"bad"));
    stream.write_all(&burst).expect("burst");
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["published e1", "published e2", "close 1002"])
    );
}

#[test]
fn replies_to_messages_before_a_protocol_error_precede_its_close() {
    let (addr, mut calls) = start();
    let mut stream = upgrade(addr);
    let mut burst = Vec::new();
    for i in 0..5 {
        burst.extend(text(&format!("m{i}")));
    }
    // RSV1 without an extension that defines it: §5.2, fail the connection (1002).
    burst.extend(frame(0xC1, b"bad"));
    burst.extend(text("m9"));
    stream.write_all(&burst).expect("burst");
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["r0", "r1", "r2", "r3", "r4", "close 1002"])
    );
    assert_eq!(
        calls_until_closed(&mut calls),
        strings(&["m0", "m1", "m2", "m3", "m4", "closed 1006"])
    );
}

#[test]
fn an_app_that_closes_mid_run_is_handed_nothing_after() {
    let (addr, mut calls) = start();
    let mut stream = upgrade(addr);
    let mut burst = text("m0");
    burst.extend(text("close"));
    burst.extend(text("m2"));
    burst.extend(text("m3"));
    stream.write_all(&burst).expect("burst");
    // The server's close is answered, which ends the connection.
    let mut first = [0u8; 4];
    stream.read_exact(&mut first).expect("r0");
    assert_eq!(&first, b"\x81\x02r0");
    stream.write_all(&close(4000)).expect("close reply");
    assert_eq!(frames_until_eof(&mut stream), strings(&["close 4000"]));
    assert_eq!(
        calls_until_closed(&mut calls),
        strings(&["m0", "close asked", "closed 4000"])
    );
    // Anything the app were handed after its close would follow within the same read.
    calls
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    match calls.recv() {
        Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(ClientError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {}
        other => panic!("a call after on_close: {other:?}"),
    }
}

#[test]
fn binary_and_fragmented_messages_in_one_run_keep_their_order() {
    let (addr, mut calls) = start();
    let mut stream = upgrade(addr);
    let mut burst = frame(0x82, &[1; 7]);
    // A text message in two fragments, then a binary one in three.
    burst.extend(frame(0x01, b"m1"));
    burst.extend(frame(0x80, b"x"));
    burst.extend(frame(0x02, &[2; 3]));
    burst.extend(frame(0x00, &[2; 4]));
    burst.extend(frame(0x80, &[2; 5]));
    burst.extend(text("m3"));
    burst.extend(close(1000));
    stream.write_all(&burst).expect("burst");
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["<7 bytes>", "r1x", "<12 bytes>", "r3", "close 1000"])
    );
    assert_eq!(
        calls_until_closed(&mut calls),
        strings(&["<7 bytes>", "m1x", "<12 bytes>", "m3", "closed 1000"])
    );
}

#[test]
fn a_close_a_message_causes_is_told_before_the_next_message_of_its_run() {
    let (addr, mut calls) = start();
    let _victim =
        Client::connect(&format!("ws://{addr}/victim"), &ClientOptions::default()).expect("victim");
    let mut stream = upgrade(addr);
    let mut burst = text("m0");
    burst.extend(text("kick"));
    burst.extend(text("m2"));
    burst.extend(close(1000));
    stream.write_all(&burst).expect("burst");
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["r0", "r2", "close 1000"])
    );
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match calls.recv().expect("a call") {
            Received::Text(call) => seen.push(call),
            other => panic!("not a call: {other:?}"),
        }
    }
    // The run stops at the close `kick` caused, which is told before `m2` is handled.
    assert_eq!(
        seen,
        strings(&["m0", "kick", "closed 4001", "m2", "closed 1000"])
    );
}

/// Handles a run as a whole ([`App::on_messages`]): one reply per run, `run m0 m1`, taking
/// messages until one says `stop` (the rest of that run is left untaken).
struct PerRun;

impl App for PerRun {
    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {
        unreachable!("on_messages takes every run");
    }

    fn on_messages(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, run: &mut Run<'_>) {
        let mut taken = Vec::new();
        while let Some(message) = run.next(ctx) {
            let Message::Text(text) = message else {
                continue;
            };
            taken.push(text.to_owned());
            if text == "stop" {
                break;
            }
        }
        ctx.send(conn, Message::Text(&format!("run {}", taken.join(" "))));
    }
}

#[test]
fn an_app_can_take_a_run_as_a_whole_and_leave_the_rest_of_it() {
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ServerConfig::default()
        };
        let mut server = Server::builder(config)
            .route("/*", PerRun)
            .bind()
            .expect("bind");
        addr_tx.send(server.local_addr()).expect("address");
        server.run().expect("run");
    });
    let addr = addr_rx.recv().expect("the server's address");
    let mut stream = upgrade(addr);
    let mut burst = Vec::new();
    for body in ["m0", "m1", "m2"] {
        burst.extend(text(body));
    }
    burst.extend(frame(0x89, b"hi"));
    for body in ["m3", "stop", "m5"] {
        burst.extend(text(body));
    }
    burst.extend(close(1000));
    stream.write_all(&burst).expect("burst");
    // One call per run (a run ends before the ping); what an override leaves is dropped.
    assert_eq!(
        frames_until_eof(&mut stream),
        strings(&["run m0 m1 m2", "pong hi", "run m3 stop", "close 1000"])
    );
}
