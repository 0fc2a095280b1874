//! The application API's promise about slow subscribers, with the fault that would break
//! it: a subscriber to an app's topic that stops reading is closed 1008 "slow consumer"
//! once it holds more than `server.max_outbound_bytes` unsent, instead of growing the
//! server's memory with every `publish`; the app hears `on_close` with that code; a
//! subscriber that reads keeps every message, in order; and the stalled one's socket holds
//! a whole, in-order prefix of the topic followed by the close frame (what it had not
//! started receiving was dropped so the close went out next). Under the cap, one that
//! stops reading mid-run and then reads again gets every message, whole and in order.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::TestServer;
use socket2::{Domain, Socket, Type};
use wsloop::client::{Client, ClientOptions, Message as Received};
use wsloop::server::{App, ConnId, Ctx, Message, Request};

/// The unsent-bytes cap per connection under test.
const MAX_OUTBOUND: usize = 64 * 1024;
/// Bytes per published message (an 8-byte sequence number, then padding).
const SIZE: usize = 16 * 1024;
/// Give up if the stalled subscriber is still open after this many messages (64 MiB to
/// it: far more than its kernel buffers, the engine's socket buffer and the cap hold).
const MAX_MESSAGES: u64 = 4_096;
/// Messages published after the close was seen, to show the topic carries on.
const AFTER_CLOSE: u64 = 64;

/// Every connection subscribes to the topic "feed"; what one sends is published to it, and
/// a close is told on it too, so the reader sees it in line with the messages.
#[derive(Default)]
struct Feed;

impl App for Feed {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &Request<'_>) {
        ctx.subscribe(conn, "feed");
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, _: ConnId, message: Message<'_>) {
        ctx.publish("feed", message);
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_>, _: ConnId, code: u16, reason: &str) {
        ctx.publish("feed", Message::Text(&format!("closed {code} {reason}")));
    }
}

/// A loop with [`Feed`] at `/feed`, on its own thread; the process's exit ends it.
fn start() -> TestServer {
    TestServer::start_apps(
        |config| config.max_outbound_bytes = MAX_OUTBOUND,
        |routes| routes.route("/feed", Feed),
    )
}

/// A subscriber that completes the upgrade and then never reads: a plain socket with a
/// small receive buffer, so the kernel absorbs little of what is sent to it.
fn stalled_subscriber(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    let request = "GET /feed HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
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

/// The message with sequence number `seq`.
fn message(seq: u64) -> Vec<u8> {
    let mut bytes = seq.to_be_bytes().to_vec();
    bytes.resize(SIZE, (seq % 251) as u8);
    bytes
}

/// One server frame (unmasked) from `bytes` at `at`: (opcode, payload, next position).
fn frame(bytes: &[u8], at: usize) -> Option<(u8, &[u8], usize)> {
    let head = bytes.get(at..at + 2)?;
    let (opcode, short) = (head[0] & 0x0f, usize::from(head[1] & 0x7f));
    let (len, start) = match short {
        126 => (
            usize::from(u16::from_be_bytes(
                bytes.get(at + 2..at + 4)?.try_into().ok()?,
            )),
            at + 4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(
                bytes.get(at + 2..at + 10)?.try_into().ok()?,
            ))
            .ok()?,
            at + 10,
        ),
        len => (len, at + 2),
    };
    Some((opcode, bytes.get(start..start + len)?, start + len))
}

#[test]
fn a_stalled_subscriber_is_closed_at_the_cap_and_the_topic_goes_on() {
    let server = start();
    let addr = server.addr;
    let mut stalled = stalled_subscriber(addr);
    let mut reader = Client::connect(&format!("ws://{addr}/feed"), &ClientOptions::default())
        .expect("connect the reader");
    reader
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");

    // The reader publishes and reads its own copy of each message before the next, so
    // only the stalled subscriber can build a backlog.
    let mut closed_at = None;
    let mut seq = 0;
    while closed_at.is_none_or(|at| seq < at + AFTER_CLOSE) {
        assert!(
            seq < MAX_MESSAGES,
            "the stalled subscriber is still open after {seq} messages of {SIZE} bytes"
        );
        reader.send_binary(&message(seq)).expect("publish");
        loop {
            match reader.recv().expect("the reader's copy") {
                Received::Binary(bytes) => {
                    assert_eq!(bytes, message(seq), "the reader's copy of {seq}");
                    break;
                }
                Received::Text(text) => {
                    assert_eq!(text, "closed 1008 slow consumer", "the app's on_close");
                    assert!(closed_at.is_none(), "on_close told twice");
                    closed_at = Some(seq);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        seq += 1;
    }

    // The stalled socket holds whole messages 0, 1, 2, … in order, then the close.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Read as it comes (the close waits behind what the kernel and the partly written
    // message hold), up to the close frame; answer it, and the server ends the stream.
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let (mut at, mut received) = (0, 0);
    'frames: loop {
        while let Some((opcode, payload, next)) = frame(&bytes, at) {
            at = next;
            if opcode == 0x8 {
                assert_eq!(&payload[..2], &1008u16.to_be_bytes(), "the close code");
                assert_eq!(&payload[2..], b"slow consumer", "the close reason");
                break 'frames;
            }
            assert_eq!(opcode, 0x2, "a binary message");
            assert_eq!(
                payload,
                message(received),
                "message {received}, whole and in order"
            );
            received += 1;
        }
        let n = stalled.read(&mut chunk).expect("read the stalled socket");
        assert!(
            n > 0,
            "the stream ended after {received} messages, with no close frame"
        );
        bytes.extend_from_slice(&chunk[..n]);
    }
    // Our close reply (code 1000, masked with a zero key), then the end of the stream.
    stalled
        .write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
        .expect("reply to the close");
    let mut rest = Vec::new();
    stalled
        .read_to_end(&mut rest)
        .expect("the server ends the stream");
    assert_eq!(
        bytes.len() - at + rest.len(),
        0,
        "nothing after the close frame"
    );
    let closed_at = closed_at.expect("closed");
    eprintln!("closed after {closed_at} messages; it had received {received}");
    assert!(
        received <= closed_at,
        "it received {received} of the {closed_at} messages published before its close"
    );
    // What was dropped: its backlog in the server, past the cap by at most one message.
    assert!(
        closed_at - received <= (MAX_OUTBOUND / SIZE) as u64 + 2,
        "closed {} messages behind",
        closed_at - received
    );
}

/// A masked client frame (mask key zero: the payload goes as it is) of a binary message.
fn masked(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x82];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len => {
            out.push(0x80 | 126);
            out.extend_from_slice(&u16::try_from(len).expect("short").to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    out
}

/// A subscriber that stops reading is written with the turn's publications in one write
/// from the shared frames (`publications`); the write its full socket cuts short leaves
/// the rest queued from mid-frame on, and once it reads again it gets every message,
/// whole and in order. Runs of large and small messages make the cut land mid-frame with
/// a smaller frame after it (the case an off-by-a-frame resume would drop).
#[test]
fn a_subscriber_whose_socket_fills_mid_run_gets_every_message_once_it_reads() {
    const RUNS: u64 = 64;
    const PER_RUN: u64 = 8;
    let server = TestServer::start_apps(
        |config| config.max_outbound_bytes = 8 << 20,
        |routes| routes.route("/feed", Feed),
    );
    let mut behind = stalled_subscriber(server.addr);
    // The publisher is a subscriber too (the topic includes its sender): it reads its
    // own copy of each run before it sends the next, so each run is one turn's.
    let mut publisher = stalled_subscriber(server.addr);
    publisher
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let payload = |seq: u64| {
        let mut bytes = seq.to_be_bytes().to_vec();
        bytes.resize(
            if seq.is_multiple_of(2) { 1_500 } else { 20 },
            (seq % 251) as u8,
        );
        bytes
    };
    let mut copies = Frames::default();
    for run in 0..RUNS {
        let seqs = run * PER_RUN..(run + 1) * PER_RUN;
        let burst: Vec<u8> = seqs.clone().flat_map(|seq| masked(&payload(seq))).collect();
        publisher.write_all(&burst).expect("a run of messages");
        for seq in seqs {
            assert_eq!(
                copies.next(&mut publisher),
                payload(seq),
                "the publisher's copy"
            );
        }
    }
    behind
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut held_back = Frames::default();
    for seq in 0..RUNS * PER_RUN {
        let got = held_back.next(&mut behind);
        assert!(
            got == payload(seq),
            "message {seq}, whole and in order: got {} bytes, sequence number {:?}",
            got.len(),
            got.get(..8),
        );
    }
}

/// The binary messages read from one socket.
#[derive(Default)]
struct Frames {
    bytes: Vec<u8>,
    at: usize,
}

impl Frames {
    /// The next message's payload, read as it comes.
    fn next(&mut self, from: &mut TcpStream) -> Vec<u8> {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            if let Some((opcode, payload, next)) = frame(&self.bytes, self.at) {
                assert_eq!(opcode, 0x2, "a binary message");
                let payload = payload.to_vec();
                self.at = next;
                return payload;
            }
            let n = from.read(&mut chunk).expect("read");
            assert!(n > 0, "the stream ended");
            self.bytes.extend_from_slice(&chunk[..n]);
        }
    }
}
