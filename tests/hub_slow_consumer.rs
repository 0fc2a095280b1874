//! Loopback test of the slow-consumer cap: a room member that never reads is closed (1008
//! "slow consumer", counted in `/stats`) once its unsent bytes pass `max_outbound_bytes`,
//! while 100 other members (and the sender) keep receiving every message, in order.
//!
//! The sender paces itself on the readers, never more than [`WINDOW`] messages ahead of the
//! slowest of them, so a reader's unsent bytes stay under the cap whatever the scheduler
//! does; only the member that never reads can pass it. Readers find each message's sequence
//! number in its first bytes instead of decoding megabytes of JSON in a debug build.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::hub::{HubClient, is_timeout};
use common::{FIN, OP_TEXT, TestServer};
use serde_json::Value;
use wsloop::protocol::OpCode;

/// Members that read (besides the sender, which reads its own copies too).
const READERS: usize = 100;
/// Padding per message: large, so the never-reading member's kernel buffers fill quickly.
const PAD: usize = 20 * 1024;
/// The unsent-bytes cap per connection; two padded messages fit under it, four do not.
const MAX_OUTBOUND: usize = 64 * 1024;
/// Messages the sender may be ahead of the slowest reader.
const WINDOW: u64 = 2;
/// Messages sent after the slow consumer was seen closed, to show delivery carries on.
const AFTER_CLOSE: u64 = 32;
/// Give up if the slow consumer is still open after this many messages (~40 MiB to it, far more than kernel buffers hold).
const MAX_MESSAGES: u64 = 2_000;
/// Give up if some reader makes no progress for this long.
const STALL: Duration = Duration::from_secs(20);

/// What follows the sequence number in every feed payload (and closes the payload).
fn tail() -> String {
    format!(r#","pad":"{}"}}"#, "x".repeat(PAD))
}

/// The sequence number of a feed message, if `text` is one; checks that the payload after
/// it arrived intact and ends the message.
fn seq_of(text: &str) -> Option<u64> {
    const KEY: &str = r#""payload":{"seq":"#;
    let head = &text[..text.len().min(256)];
    let start = head.find(KEY)? + KEY.len();
    let digits = text[start..].bytes().take_while(u8::is_ascii_digit).count();
    let rest = &text[start + digits..];
    let intact = rest
        .strip_suffix('}')
        .is_some_and(|payload_end| payload_end == tail());
    assert!(intact, "feed message damaged: {}...", &text[..200]);
    text[start..start + digits].parse().ok()
}

/// Raises the shared `failed` flag if its thread panics, so the others stop quietly.
struct FailOnPanic<'a>(&'a AtomicBool);

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// The next data message, or `None` once another thread of the test has failed.
fn next_feed_text(client: &mut HubClient, failed: &AtomicBool) -> Option<String> {
    let waiting = Instant::now();
    loop {
        match client.try_next_frame() {
            Ok(Some(frame)) if frame.opcode == OpCode::Text => {
                return Some(String::from_utf8(frame.payload).expect("UTF-8"));
            }
            Ok(frame) => panic!("{}: {frame:?} in the feed", client.user_id),
            Err(e) if is_timeout(&e) && failed.load(Ordering::Acquire) => return None,
            Err(e) if is_timeout(&e) && waiting.elapsed() < STALL => {}
            Err(e) => panic!(
                "{}: no message for {:?}: {e}",
                client.user_id,
                waiting.elapsed()
            ),
        }
    }
}

/// A reader's loop: every feed message once and in order, then the end marker. Returns the
/// count and the client (still connected), or `None` if another thread failed first.
fn read_feed(
    mut client: HubClient,
    progress: &AtomicU64,
    failed: &AtomicBool,
) -> Option<(u64, HubClient)> {
    let _guard = FailOnPanic(failed);
    client.set_read_timeout(Duration::from_millis(500));
    let mut next = 0;
    loop {
        let text = next_feed_text(&mut client, failed)?;
        if let Some(seq) = seq_of(&text) {
            assert_eq!(
                seq, next,
                "{}: message out of order or duplicated",
                client.user_id
            );
            next += 1;
            progress.store(next, Ordering::Release);
            continue;
        }
        let message: Value = serde_json::from_str(&text).expect("JSON");
        match message["type"].as_str() {
            Some("presence") => {}
            Some("chat") if message["payload"]["end"] == next => return Some((next, client)),
            _ => panic!(
                "{}: unexpected {message} after {next} messages",
                client.user_id
            ),
        }
    }
}

/// Waits until every reader has read at least `count` messages.
fn wait_for_readers(progress: &[AtomicU64], failed: &AtomicBool, count: u64) {
    let mut last = (0, Instant::now());
    loop {
        assert!(
            !failed.load(Ordering::Acquire),
            "a reader failed (see its panic)"
        );
        let (slowest, read) = progress
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .enumerate()
            .min_by_key(|(_, read)| *read)
            .expect("readers");
        if read >= count {
            return;
        }
        if read != last.0 {
            last = (read, Instant::now());
        }
        assert!(
            last.1.elapsed() < STALL,
            "reader {slowest} stuck at {read} messages"
        );
        thread::sleep(Duration::from_micros(200));
    }
}

/// Sends the feed until the slow consumer is closed and `AFTER_CLOSE` more went out, then
/// the end marker. Returns how many feed messages were sent.
fn send_feed(
    server: &TestServer,
    mut writer: TcpStream,
    progress: &[AtomicU64],
    failed: &AtomicBool,
) -> u64 {
    let _guard = FailOnPanic(failed);
    let tail = tail();
    let mut closed_at: Option<u64> = None;
    let mut seq = 0;
    while closed_at.is_none_or(|at| seq < at + AFTER_CLOSE) {
        assert!(
            seq < MAX_MESSAGES,
            "slow consumer still open after {seq} messages"
        );
        wait_for_readers(progress, failed, (seq + 1).saturating_sub(WINDOW));
        let text = format!(r#"{{"type":"chat","room":"feed","payload":{{"seq":{seq}{tail}}}"#);
        writer
            .write_all(&common::frame(FIN | OP_TEXT, text.as_bytes()))
            .expect("send");
        seq += 1;
        if closed_at.is_none() && seq % 16 == 0 && server.stats()["slow_consumer_closes"] != 0 {
            closed_at = Some(seq);
        }
    }
    let end = format!(r#"{{"type":"chat","room":"feed","payload":{{"end":{seq}}}}}"#);
    writer
        .write_all(&common::frame(FIN | OP_TEXT, end.as_bytes()))
        .expect("send");
    eprintln!("slow consumer closed after about {closed_at:?} of {seq} messages");
    seq
}

/// Reads what the slow consumer was sent: a gap-free prefix of the feed, then the 1008
/// close (or only EOF, if the server dropped it before the close frame could be written).
/// Returns how many feed messages it got.
fn drain_slow_consumer(mut slow: HubClient) -> u64 {
    let mut next = 0;
    while let Some(frame) = slow.next_frame() {
        if frame.opcode == OpCode::Close {
            let reason = String::from_utf8_lossy(&frame.payload[2..]).into_owned();
            assert_eq!(
                (frame.close_code(), reason.as_str()),
                (Some(1008), "slow consumer")
            );
            slow.raw().send_close(1008, "");
            break;
        }
        let text = String::from_utf8(frame.payload).expect("UTF-8");
        match seq_of(&text) {
            Some(seq) => {
                assert_eq!(seq, next, "the slow consumer's messages have a gap");
                next += 1;
            }
            None => assert!(text.contains(r#""type":"presence""#), "{text}"),
        }
    }
    next
}

// A member that never reads is closed with 1008 once `max_outbound_bytes` is passed, and
// counted; 100 members that read get every message in order, before and after.
#[test]
fn slow_consumer_is_closed_while_others_keep_receiving_in_order() {
    let server = TestServer::start_with(|c| {
        c.hub.rate_limit_enabled = false;
        c.max_outbound_bytes = MAX_OUTBOUND;
    });
    let mut slow = HubClient::connect(&server, "slow");
    slow.join("feed");
    let mut sender = HubClient::connect(&server, "sender");
    sender.join("feed");
    let writer = sender.raw().writer();
    let mut members: Vec<HubClient> = (0..READERS)
        .map(|i| {
            let mut reader = HubClient::connect(&server, &format!("reader{i}"));
            reader.join("feed");
            reader
        })
        .collect();
    members.push(sender);
    let progress: Vec<AtomicU64> = members.iter().map(|_| AtomicU64::new(0)).collect();
    let failed = AtomicBool::new(false);

    let (sent, _members) = thread::scope(|scope| {
        let readers: Vec<_> = members
            .into_iter()
            .zip(&progress)
            .map(|(member, progress)| {
                let failed = &failed;
                scope.spawn(move || read_feed(member, progress, failed))
            })
            .collect();
        let sent = send_feed(&server, writer, &progress, &failed);
        let mut members = Vec::new();
        for reader in readers {
            let (got, member) = reader
                .join()
                .expect("reader thread")
                .expect("readers stop early only when something failed");
            assert_eq!(got, sent, "{}: every message arrived", member.user_id);
            members.push(member);
        }
        (sent, members)
    });

    let stats = server.stats();
    assert_eq!(
        stats["slow_consumer_closes"], 1,
        "only the member that never reads: {stats}"
    );
    let got = drain_slow_consumer(slow);
    assert!(
        got < sent,
        "the slow consumer missed the messages after its close ({got} of {sent})"
    );
    let stats = server.wait_for_hub(READERS as u64 + 1, READERS as u64 + 1, 1);
    assert_eq!(
        stats["abnormal_closures"], 0,
        "no reader was dropped: {stats}"
    );
}
