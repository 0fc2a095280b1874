//! The global budget for partly received messages (`server.max_buffered_bytes`), over
//! loopback: many clients each send most of a maximum-size message and stop. The first ones
//! fit in the budget and are held; every later one is closed 1013 "server busy" instead of
//! growing the server's memory, and the server's own accounting stays under the budget. A
//! held client that finishes its message gets it echoed.

mod common;

use std::io::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use common::{Client, FIN, OP_BINARY, SETTLE, TestServer};
use wsloop::protocol::{Limits, OpCode};

/// Clients that each start a message.
const CLIENTS: usize = 64;
/// The message size limit, and the size each client declares.
const MESSAGE: usize = 1 << 20;
/// How much of its message each client sends before it stops.
const SENT: usize = 900 * 1024;
/// The global budget: room for a few messages in progress, not for all.
const BUDGET: usize = 8 << 20;
/// How long the budget's accounting must stay unchanged before the server counts as done
/// with what the clients sent.
const QUIET: Duration = Duration::from_millis(200);

/// A client that sent the first `SENT` bytes of a `MESSAGE`-byte binary frame; returns the
/// client and the frame's remaining bytes.
fn start_message(server: &TestServer) -> (Client, Vec<u8>) {
    let mut client = server.open("/echo");
    let mut frame = common::frame(FIN | OP_BINARY, &vec![b'x'; MESSAGE]);
    let rest = frame.split_off(frame.len() - (MESSAGE - SENT));
    client.send(&frame);
    (client, rest)
}

/// Polls `/stats` until the bytes held and the closes sent have not changed for [`QUIET`]
/// and several polls (each a turn of the loop, which would have read any input pending);
/// checks every poll against the budget and returns the last. A debug server on a loaded
/// machine can still be reading the last clients' bytes when the last send returns.
fn quiet_stats(server: &TestServer) -> serde_json::Value {
    let deadline = Instant::now() + SETTLE;
    let mut last = server.stats();
    let (mut unchanged_since, mut unchanged_polls) = (Instant::now(), 0);
    loop {
        let buffered = last["buffered_bytes"].as_u64().expect("buffered_bytes");
        assert!(buffered <= BUDGET as u64, "{buffered} bytes buffered");
        if unchanged_since.elapsed() >= QUIET && unchanged_polls >= 5 {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "not quiet after {SETTLE:?}: {last}"
        );
        thread::sleep(Duration::from_millis(20));
        let stats = server.stats();
        let moved = |key: &str| stats[key] != last[key];
        if moved("buffered_bytes") || moved("close_sent") {
            (unchanged_since, unchanged_polls) = (Instant::now(), 0);
        } else {
            unchanged_polls += 1;
        }
        last = stats;
    }
}

#[test]
fn partly_received_messages_share_one_budget() {
    let server = TestServer::start_with(|c| {
        c.limits = Limits {
            max_frame: MESSAGE as u64,
            max_message: MESSAGE,
        };
        c.max_buffered_bytes = BUDGET;
    });
    let started: Vec<(Client, Vec<u8>)> = (0..CLIENTS).map(|_| start_message(&server)).collect();
    quiet_stats(&server);
    let (mut held, mut refused) = (Vec::new(), 0);
    for (mut client, rest) in started {
        client
            .writer()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        match client.try_read_frame() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => held.push((client, rest)),
            Ok(Some(frame)) if frame.opcode == OpCode::Close => {
                assert_eq!(frame.close_code(), Some(1013), "{frame:?}");
                refused += 1;
            }
            other => panic!("neither held nor refused: {other:?}"),
        }
    }
    assert!(
        !held.is_empty() && held.len() <= BUDGET / SENT,
        "{} held, {refused} refused",
        held.len()
    );
    assert_eq!(held.len() + refused, CLIENTS);
    let (mut client, rest) = held.pop().expect("a held client");
    client.writer().write_all(&rest).expect("the rest");
    client
        .writer()
        .set_read_timeout(Some(common::IO_TIMEOUT))
        .expect("timeout");
    let echo = client.read_frame();
    assert_eq!((echo.opcode, echo.payload.len()), (OpCode::Binary, MESSAGE));
}
