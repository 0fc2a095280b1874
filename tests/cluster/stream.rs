//! A numbered stream through a cluster, and the checker the fault tests judge it by.
//!
//! A publisher sends 1, 2, 3… to one room, each with a unique request `id`, waiting for
//! each `ack` before the next; on `unavailable` it waits `retry_after_ms` and resends the
//! same request (same `id`), as a client should. Receivers on every node follow the room;
//! one whose connection breaks reconnects to the same URL and rejoins with `since` (a
//! `recovered: false` counts as a `reset`).
//! A fault is injected part way through. The checker then fails on anything a member may
//! not see under the README's guarantees: a delivery without an offset, an offset or epoch
//! jump without a `reset` before it, a duplicate or a reordering, and an acked message that
//! a connected member never got (unless a `reset` told it so).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::peer::Peer;

/// The room every stream uses.
pub(crate) const ROOM: &str = "stream";

/// How long an `ack` (or an error) may take before the test fails.
const ACK_PATIENCE: Duration = Duration::from_secs(10);

/// What the publisher saw: message `n` → (offset, epoch) of its ack.
pub(crate) type Acked = BTreeMap<u64, (u64, String)>;

/// The outcome of one stream, for [`check`].
pub(crate) struct Outcome {
    /// Acked messages.
    pub(crate) acked: Acked,
    /// `unavailable` answers the publisher got (and retried).
    pub(crate) refusals: u64,
    /// Each receiver's name and the room messages (`chat`, `reset`) it got, in order.
    pub(crate) received: Vec<(String, Vec<Value>)>,
}

/// Streams `total` messages from a client at `publisher_url` to receivers at
/// `receiver_urls`; once `fault_at` messages are acked, runs `fault` (in this thread,
/// while the stream goes on), then waits for the receivers to get the last message.
pub(crate) fn run(
    publisher_url: &str,
    receiver_urls: &[String],
    total: u64,
    fault_at: u64,
    fault: impl FnOnce(),
) -> Outcome {
    let done = Arc::new(AtomicBool::new(false));
    let receivers: Vec<JoinHandle<(String, Vec<Value>)>> = receiver_urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let user = format!("r{i}");
            let url = format!("{url}{user}");
            let mut peer = Peer::connect(&url, &user);
            peer.join(ROOM, None);
            let done = done.clone();
            thread::spawn(move || (user.clone(), receive(peer, &url, &user, total, &done)))
        })
        .collect();
    let progress = Arc::new(AtomicU64::new(0));
    let publisher = {
        let progress = progress.clone();
        let url = format!("{publisher_url}p");
        thread::spawn(move || publish(&url, total, &progress))
    };
    let deadline = Instant::now() + ACK_PATIENCE * 2;
    while progress.load(Ordering::SeqCst) < fault_at && !publisher.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the stream did not reach {fault_at}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    fault();
    let (acked, refusals) = match publisher.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    // Give the receivers time to catch up, then stop them.
    let stop_at = Instant::now() + Duration::from_secs(8);
    while Instant::now() < stop_at && !receivers.iter().all(JoinHandle::is_finished) {
        thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::SeqCst);
    let received = receivers
        .into_iter()
        .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        .collect();
    Outcome {
        acked,
        refusals,
        received,
    }
}

/// The publisher: one request at a time, resent on `unavailable`.
fn publish(url: &str, total: u64, progress: &AtomicU64) -> (Acked, u64) {
    let mut peer = Peer::connect(url, "p");
    peer.join(ROOM, None);
    let mut acked = Acked::new();
    let mut refusals = 0;
    for n in 1..=total {
        let id = format!("p-{n}");
        let request = json!({"type": "chat", "room": ROOM, "id": id, "payload": {"n": n}});
        loop {
            peer.send(&request);
            match answer(&mut peer, &id) {
                Ok((offset, epoch)) => {
                    acked.insert(n, (offset, epoch));
                    break;
                }
                Err(retry_ms) => {
                    refusals += 1;
                    thread::sleep(Duration::from_millis(retry_ms.min(500)));
                }
            }
        }
        progress.store(n, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(4));
    }
    (acked, refusals)
}

/// Waits for the `ack` (Ok: its offset and epoch) or `unavailable` error (Err: retry after
/// ms) of request `id`; fails the test on any other error or after [`ACK_PATIENCE`].
fn answer(peer: &mut Peer, id: &str) -> Result<(u64, String), u64> {
    let deadline = Instant::now() + ACK_PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no ack for {id} within {ACK_PATIENCE:?}");
        let Some(message) = peer.poll(left) else {
            continue;
        };
        if message["id"] != id {
            continue;
        }
        match message["type"].as_str() {
            Some("ack") => {
                let offset = message["offset"].as_u64();
                let epoch = message["epoch"].as_str();
                let (Some(offset), Some(epoch)) = (offset, epoch) else {
                    panic!("an ack without offset and epoch: {message}");
                };
                return Ok((offset, epoch.to_owned()));
            }
            Some("error") if message["code"] == "unavailable" => {
                return Err(message["retry_after_ms"].as_u64().expect("retry_after_ms"));
            }
            _ => panic!("unexpected answer to {id}: {message}"),
        }
    }
}

/// A receiver: every `chat` and `reset` of the room until message `total` or `done`,
/// reconnecting to `url` when its connection breaks.
fn receive(peer: Peer, url: &str, user: &str, total: u64, done: &AtomicBool) -> Vec<Value> {
    let mut got: Vec<Value> = Vec::new();
    let mut peer = Some(peer);
    while !done.load(Ordering::SeqCst) {
        let Some(connected) = peer.as_mut() else {
            peer = rejoin(url, user, &mut got);
            continue;
        };
        let message = match connected.try_poll(Duration::from_millis(100)) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(_) => {
                peer = None;
                continue;
            }
        };
        if let Some("chat" | "reset") = message["type"].as_str() {
            let last = message["payload"]["n"] == total;
            got.push(message);
            if last {
                break;
            }
        }
    }
    got
}

/// Reconnects and rejoins after the last message in `got` (a `recovered: false` is
/// recorded there as a `reset`).
fn rejoin(url: &str, user: &str, got: &mut Vec<Value>) -> Option<Peer> {
    let Ok(mut peer) = Peer::try_connect(url, user, &[]) else {
        thread::sleep(Duration::from_millis(50));
        return None;
    };
    let since = got
        .last()
        .map(|m| json!({"offset": m["offset"], "epoch": m["epoch"]}));
    let joined = peer.join(ROOM, since.as_ref());
    if joined["recovered"] == false {
        got.push(json!({"type": "reset", "epoch": joined["epoch"], "offset": joined["offset"]}));
    }
    Some(peer)
}

/// A `reset`: delivery continues after `offset` of `epoch`.
struct Reset {
    epoch: String,
    offset: u64,
}

/// Fails the test, naming the receiver and the problem, on any promise broken.
pub(crate) fn check(outcome: &Outcome) {
    assert!(!outcome.acked.is_empty(), "nothing was acked");
    for (user, messages) in &outcome.received {
        let resets = check_receiver(user, messages);
        eprintln!(
            "{user}: {} messages, {} resets; publisher: {} acked, {} refusals",
            messages.len(),
            resets.len(),
            outcome.acked.len(),
            outcome.refusals
        );
        let seen: BTreeMap<u64, ()> = messages
            .iter()
            .filter_map(|m| m["payload"]["n"].as_u64())
            .map(|n| (n, ()))
            .collect();
        for (n, (offset, epoch)) in &outcome.acked {
            if seen.contains_key(n) {
                continue;
            }
            let explained = resets
                .iter()
                .any(|r| r.epoch != *epoch || r.offset >= *offset);
            assert!(
                explained,
                "{user}: acked message {n} (offset {offset} of {epoch}) never arrived \
                 and no reset covers it; got {} messages",
                messages.len()
            );
        }
    }
}

/// Checks one receiver's sequence; returns the resets it got.
fn check_receiver(user: &str, messages: &[Value]) -> Vec<Reset> {
    let mut resets = Vec::new();
    let mut position: Option<(String, u64)> = None;
    let mut last_n = 0;
    let mut after_reset = false;
    for message in messages {
        let epoch = message["epoch"].as_str().map(str::to_owned);
        let offset = message["offset"].as_u64();
        let (Some(epoch), Some(offset)) = (epoch, offset) else {
            panic!("{user}: a room message without offset and epoch: {message}");
        };
        if message["type"] == "reset" {
            position = Some((epoch.clone(), offset));
            resets.push(Reset { epoch, offset });
            after_reset = true;
            continue;
        }
        if let Some((e, o)) = &position {
            assert!(
                *e == epoch && offset == o + 1,
                "{user}: {message} follows offset {o} of {e} without a reset"
            );
        }
        position = Some((epoch, offset));
        let n = message["payload"]["n"].as_u64().expect("payload.n");
        assert!(
            n > last_n,
            "{user}: message {n} after {last_n} (duplicate or reordered)"
        );
        assert!(
            n == last_n + 1 || after_reset,
            "{user}: message {n} after {last_n} without a reset between"
        );
        last_n = n;
        after_reset = false;
    }
    resets
}
