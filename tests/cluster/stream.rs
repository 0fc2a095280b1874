//! A numbered stream through a cluster, and the checker the fault tests judge it by.
//!
//! A publisher sends 1, 2, 3… to one room (or, with [`Feed`], privately to one user, or to
//! everyone), each with a unique request `id`, waiting for
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

use super::PATIENCE;
use super::peer::Peer;

/// The room every stream uses.
pub(crate) const ROOM: &str = "stream";

/// How long an `ack` (or an error) may take before the test fails.
const ACK_PATIENCE: Duration = Duration::from_secs(10);

/// What the publisher saw: message `n` → (offset, epoch) of its ack.
pub(crate) type Acked = BTreeMap<u64, (u64, String)>;

/// A receiver's name and what it got, in order.
type Received = (String, Vec<Value>);

/// The outcome of one stream, for [`check`].
pub(crate) struct Outcome {
    /// Acked messages.
    pub(crate) acked: Acked,
    /// `unavailable` answers the publisher got (and retried).
    pub(crate) refusals: u64,
    /// Each receiver's name and the room messages (`chat`, `reset`) it got, in order.
    pub(crate) received: Vec<(String, Vec<Value>)>,
}

/// What a stream flows through: a room, a user's private messages, or the broadcasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// Chats to [`ROOM`]; each receiver is its own user and joins the room.
    Room,
    /// Private messages to user `bob`; every receiver is a connection of `bob`.
    Private,
    /// Chats to everyone; each receiver is its own user.
    Broadcast,
}

impl Feed {
    /// Every kind of stream.
    pub(crate) const ALL: [Self; 3] = [Self::Room, Self::Private, Self::Broadcast];

    fn name(self) -> &'static str {
        match self {
            Self::Room => "room",
            Self::Private => "private",
            Self::Broadcast => "broadcast",
        }
    }

    /// The user of receiver `i`.
    fn receiver(self, i: usize) -> String {
        match self {
            Self::Private => "bob".to_owned(),
            _ => format!("r{i}-{}", self.name()),
        }
    }

    /// Message `n` of the stream, with request id `id`.
    fn request(self, id: &str, n: u64) -> Value {
        match self {
            Self::Room => json!({"type": "chat", "room": ROOM, "id": id, "payload": {"n": n}}),
            Self::Private => {
                json!({"type": "private", "recipient_id": "bob", "id": id, "payload": {"n": n}})
            }
            Self::Broadcast => json!({"type": "chat", "id": id, "payload": {"n": n}}),
        }
    }

    /// Starts following the stream (after `since`, if given): `joined` or `synced`. What
    /// arrives before the answer is skipped: a feed reaches every connection at once, and
    /// what it brought before the `sync` is in the replay that follows the answer.
    fn follow(self, peer: &mut Peer, since: Option<&Value>) -> Value {
        let (mut request, answer) = match self {
            Self::Room => (json!({"type": "join", "room": ROOM}), "joined"),
            _ => (json!({"type": "sync", "feed": self.name()}), "synced"),
        };
        if let Some(since) = since {
            request["since"] = since.clone();
        }
        peer.send(&request);
        loop {
            let message = peer.next();
            assert_ne!(message["type"], "error", "{}: {message}", peer.user);
            if message["type"] == answer {
                return message;
            }
        }
    }

    /// Whether `message` belongs to this stream (a delivery or a `reset`).
    fn carries(self, message: &Value) -> bool {
        let kind = message["type"].as_str();
        match self {
            Self::Room => matches!(kind, Some("chat" | "reset")) && message["room"] == ROOM,
            Self::Private => {
                kind == Some("private") || (kind == Some("reset") && message["feed"] == "private")
            }
            Self::Broadcast => match kind {
                Some("chat") => message.get("room").is_none(),
                Some("reset") => message["feed"] == "broadcast",
                _ => false,
            },
        }
    }
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
    let mut outcomes = run_feeds(
        &[Feed::Room],
        publisher_url,
        receiver_urls,
        total,
        fault_at,
        fault,
    );
    outcomes.remove(0).1
}

/// [`run`] for several streams at once, each with its publisher and its receivers (one per
/// URL), under one fault; an outcome per stream.
pub(crate) fn run_feeds(
    feeds: &[Feed],
    publisher_url: &str,
    receiver_urls: &[String],
    total: u64,
    fault_at: u64,
    fault: impl FnOnce(),
) -> Vec<(Feed, Outcome)> {
    let done = Arc::new(AtomicBool::new(false));
    let mut receivers: Vec<(Feed, JoinHandle<Received>)> = Vec::new();
    for &feed in feeds {
        for (i, url) in receiver_urls.iter().enumerate() {
            let user = feed.receiver(i);
            let url = format!("{url}{user}");
            let mut peer = Peer::connect(&url, &user);
            feed.follow(&mut peer, None);
            let done = done.clone();
            let label = format!("{}:{user}@{i}", feed.name());
            let handle = thread::spawn(move || {
                let got = receive(feed, peer, &url, &user, total, &done);
                (label, got)
            });
            receivers.push((feed, handle));
        }
    }
    type Publisher = (Feed, Arc<AtomicU64>, JoinHandle<(Acked, u64)>);
    let publishers: Vec<Publisher> = feeds
        .iter()
        .map(|&feed| {
            let progress = Arc::new(AtomicU64::new(0));
            let url = format!("{publisher_url}p-{}", feed.name());
            let counter = progress.clone();
            let handle = thread::spawn(move || publish(feed, &url, total, &counter));
            (feed, progress, handle)
        })
        .collect();
    let deadline = Instant::now() + ACK_PATIENCE * 2;
    while publishers
        .iter()
        .any(|(_, p, h)| p.load(Ordering::SeqCst) < fault_at && !h.is_finished())
    {
        assert!(
            Instant::now() < deadline,
            "the stream did not reach {fault_at}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    fault();
    let mut published = Vec::new();
    for (feed, _, handle) in publishers {
        match handle.join() {
            Ok(result) => published.push((feed, result)),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    // Wait until every receiver has the last message, then stop them; the checker judges
    // any that never gets it (skipped by a `reset`, or lost). The deadline is generous:
    // debug nodes on a loaded machine can take many seconds to catch up after a fault.
    let stop_at = Instant::now() + PATIENCE;
    while Instant::now() < stop_at && !receivers.iter().all(|(_, r)| r.is_finished()) {
        thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::SeqCst);
    let mut received: Vec<(Feed, Received)> = receivers
        .into_iter()
        .map(|(feed, r)| {
            (
                feed,
                r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            )
        })
        .collect();
    published
        .into_iter()
        .map(|(feed, (acked, refusals))| {
            let (mine, others): (Vec<_>, Vec<_>) =
                received.drain(..).partition(|(f, _)| *f == feed);
            received = others;
            let outcome = Outcome {
                acked,
                refusals,
                received: mine.into_iter().map(|(_, r)| r).collect(),
            };
            (feed, outcome)
        })
        .collect()
}

/// The publisher: one request at a time, resent on `unavailable`.
fn publish(feed: Feed, url: &str, total: u64, progress: &AtomicU64) -> (Acked, u64) {
    let user = url.rsplit('=').next().unwrap_or("p").to_owned();
    let mut peer = Peer::connect(url, &user);
    if feed == Feed::Room {
        feed.follow(&mut peer, None);
    }
    let mut acked = Acked::new();
    let mut refusals = 0;
    for n in 1..=total {
        let id = format!("{user}-{n}");
        let request = feed.request(&id, n);
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

/// A receiver: every delivery and `reset` of its stream until message `total` or `done`,
/// reconnecting to `url` when its connection breaks.
fn receive(
    feed: Feed,
    peer: Peer,
    url: &str,
    user: &str,
    total: u64,
    done: &AtomicBool,
) -> Vec<Value> {
    let mut got: Vec<Value> = Vec::new();
    let mut peer = Some(peer);
    while !done.load(Ordering::SeqCst) {
        let Some(connected) = peer.as_mut() else {
            peer = rejoin(feed, url, user, &mut got);
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
        if feed.carries(&message) {
            let last = message["payload"]["n"] == total;
            got.push(message);
            if last {
                break;
            }
        }
    }
    got
}

/// Reconnects and follows the stream again after the last message in `got` (a
/// `recovered: false` is recorded there as a `reset`).
fn rejoin(feed: Feed, url: &str, user: &str, got: &mut Vec<Value>) -> Option<Peer> {
    let Ok(mut peer) = Peer::try_connect(url, user, &[]) else {
        thread::sleep(Duration::from_millis(50));
        return None;
    };
    let since = got
        .last()
        .map(|m| json!({"offset": m["offset"], "epoch": m["epoch"]}));
    let answer = feed.follow(&mut peer, since.as_ref());
    if answer["recovered"] == false {
        got.push(json!({"type": "reset", "epoch": answer["epoch"], "offset": answer["offset"]}));
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
