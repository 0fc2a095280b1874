//! Stalled consumers over loopback (issue 13's scenario): many members of one room stop
//! reading while a publisher sends ~1 KB messages at ~1,000/s. `cargo test` stalls 200
//! members; `scripts/stall --members 2000` (`WSLOOP_STALL_MEMBERS`) runs the full scale,
//! where the kernel's TCP memory pressure used to take the healthy reader down too.
//!
//! The byte cap is set far above what the test sends, so only the stall clock can catch
//! them: every stalled member is closed 1008 "stalled" (its unsent backlog dropped, so the
//! close is what it reads next after what the kernel already held), the member that reads
//! as fast as it can gets every message in order and stays connected, and the server stays
//! up and counts the closes.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::hub::{HubClient, join_members};
use common::{FIN, OP_TEXT, SETTLE, TestServer};
use serde_json::json;
use wsloop::protocol::OpCode;

/// Members that stop reading, unless `WSLOOP_STALL_MEMBERS` says otherwise.
const STALLED: usize = 200;

fn stalled_count() -> usize {
    std::env::var("WSLOOP_STALL_MEMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(STALLED)
}
/// Messages the publisher sends.
const MESSAGES: u64 = 2_000;
/// Messages per burst; a burst every [`BURST_GAP`] makes ~1,000 messages a second.
const BURST: u64 = 10;
const BURST_GAP: Duration = Duration::from_millis(10);
/// Padding that makes each delivery about 1 KB.
const PAD: usize = 900;
/// The stall clock of the test. It runs for the healthy readers too, whose kernel buffers
/// hold only ~0.2 s of the stream: it must outlast a reader descheduled on a loaded
/// machine. The stalled members are closed about this long after their buffers filled,
/// often after the ~2 s stream has ended (3 s for the whole test).
const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The `seq` of a feed delivery, `None` for anything else (presence).
fn seq_of(text: &str) -> Option<u64> {
    const KEY: &str = r#""seq":"#;
    let start = text.find(KEY)? + KEY.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    text[start..start + digits].parse().ok()
}

/// Whether `text` is a `presence` leave (a stalled member closed).
fn is_leave(text: &str) -> bool {
    let message: serde_json::Value = serde_json::from_str(text).expect("JSON");
    message["type"] == "presence" && message["action"] == "leave"
}

/// Reads the whole feed; panics on a gap, a reordering or a close. Returns the member and
/// the `presence` leaves that came with the feed.
fn read_feed(mut member: HubClient) -> (HubClient, usize) {
    let (mut next, mut leaves) = (0, 0);
    while next < MESSAGES {
        let text = member.next_text();
        if let Some(seq) = seq_of(&text) {
            assert_eq!(seq, next, "{}: out of order", member.user_id);
            next += 1;
        } else if is_leave(&text) {
            leaves += 1;
        }
    }
    (member, leaves)
}

/// Waits until the server has closed `count` members for stalling; returns when, after
/// `since`. Their closes can come after the stream ends, and a stalled member must not be
/// read before: reading would let its output progress again.
fn wait_for_stalled_closes(server: &TestServer, count: usize, since: Instant) -> Duration {
    let deadline = Instant::now() + STALL_TIMEOUT + SETTLE;
    loop {
        let stats = server.stats();
        if stats["stalled_closes"] == json!(count) {
            return since.elapsed();
        }
        assert!(Instant::now() < deadline, "not all closed in time: {stats}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Reads past what the kernel held for a stalled member to its close; returns code, reason.
fn close_of(member: &mut HubClient) -> (Option<u16>, String) {
    loop {
        let frame = member.next_frame().expect("a close frame before EOF");
        if frame.opcode == OpCode::Close {
            let reason = String::from_utf8_lossy(frame.payload.get(2..).unwrap_or_default());
            return (frame.close_code(), reason.into_owned());
        }
    }
}

#[test]
fn stalled_members_are_closed_while_a_reader_gets_everything_in_order() {
    let server = TestServer::start_with(|c| {
        c.hub.rate_limit_enabled = false;
        c.max_outbound_bytes = 64 << 20;
        c.stall_timeout = STALL_TIMEOUT;
        c.close_timeout = Duration::from_secs(60);
    });
    let count = stalled_count();
    let mut members = join_members(&server, count + 2);
    let mut stalled = members.split_off(2);
    let reader = members.pop().expect("reader");
    let mut publisher = members.pop().expect("publisher");
    let mut sender = publisher.raw().writer();
    let readers = [reader, publisher].map(|m| thread::spawn(move || read_feed(m)));
    let pad = "x".repeat(PAD);
    let started = Instant::now();
    for seq in 0..MESSAGES {
        let chat = json!({"type": "chat", "room": "all", "payload": {"seq": seq, "pad": pad}});
        let bytes = common::frame(FIN | OP_TEXT, chat.to_string().as_bytes());
        std::io::Write::write_all(&mut sender, &bytes).expect("publish");
        if seq % BURST == BURST - 1 {
            thread::sleep(BURST_GAP);
        }
    }
    let mut healthy: Vec<(HubClient, usize)> = readers
        .map(|r| r.join().expect("a reader got everything in order"))
        .into();
    let closed = wait_for_stalled_closes(&server, count, started);
    eprintln!("{count} stalled members closed {closed:?} after the stream started");
    for member in &mut stalled {
        assert_eq!(
            close_of(member),
            (Some(1008), "stalled".to_owned()),
            "{}",
            member.user_id
        );
    }
    // Each stalled member's leave that did not come with the feed, then nothing.
    for (member, leaves) in &mut healthy {
        for _ in *leaves..count {
            let leave = member.expect("presence");
            assert_eq!(leave["action"], "leave", "{}: {leave}", member.user_id);
        }
        member.expect_no_message_within(Duration::from_millis(200));
    }
    let stats = server.stats();
    assert_eq!(stats["stalled_closes"], json!(count), "{stats}");
    assert_eq!(stats["hub_connections"], json!(2), "{stats}");
    for (member, _) in healthy {
        member.close();
    }
}
