//! The chaos workload: publishers and followers on several rooms of a cluster behind nginx,
//! churning (leaving, rejoining, reconnecting) while faults strike, and the tally that
//! judges them.
//!
//! Each room has one publisher sending 1, 2, 3… with a request `id` each, waiting for the
//! `ack` (resending the same request after `unavailable` or a broken connection, as a
//! client should) and followers that stay in the room: some through nginx, some pinned to
//! one node. A follower now and then leaves and rejoins with `since`, or drops its
//! connection and reconnects with `since`, as a real client does. What it receives must be
//! the room's offsets in order, each once, with every jump announced by a `reset` (or a
//! `recovered: false` join); at the end each follower must have reached the last acked
//! message unless a `reset` says why not.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::peer::Peer;

/// A small, seedable random source (xorshift64*), so a failing run can be replayed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A source started from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A duration between `low` and `high` milliseconds.
    pub(crate) fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high.saturating_sub(low).max(1)))
    }
}

/// What one publisher did: acked message `n` → (offset, epoch), and the attempts.
#[derive(Debug, Default)]
pub(crate) struct Published {
    /// Messages it tried to send.
    pub(crate) sent: u64,
    /// Acked messages.
    pub(crate) acked: BTreeMap<u64, (u64, String)>,
    /// `unavailable` answers (each retried).
    pub(crate) refusals: u64,
    /// Messages given up after no answer in time (never acked, so not promised).
    pub(crate) abandoned: u64,
}

/// One follower's record: its name, its room, and what it received (`chat` and `reset`).
#[derive(Debug)]
pub(crate) struct Followed {
    pub(crate) name: String,
    pub(crate) room: String,
    pub(crate) messages: Vec<Value>,
}

/// How long a publisher waits for one answer before it resends.
const ANSWER_WAIT: Duration = Duration::from_secs(3);
/// How many times a message is tried before it is abandoned.
const ATTEMPTS: u32 = 8;

/// Publishes to `room` through `url` (a `…?user_id=` URL missing the user) until `stop`.
pub(crate) fn publisher(url: String, room: String, stop: Arc<AtomicBool>) -> JoinHandle<Published> {
    thread::spawn(move || {
        let user = format!("pub-{room}");
        let url = format!("{url}{user}");
        let mut out = Published::default();
        let mut peer: Option<Peer> = None;
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            out.sent += 1;
            let id = format!("{room}-{n}");
            let request = json!({"type": "chat", "room": room, "id": id, "payload": {"n": n}});
            let mut attempts = 0;
            loop {
                attempts += 1;
                if attempts > ATTEMPTS {
                    out.abandoned += 1;
                    break;
                }
                let Some(connected) = connected(&mut peer, &url, &user, &room, None) else {
                    thread::sleep(Duration::from_millis(100));
                    continue;
                };
                if connected.try_send(&request).is_err() {
                    peer = None;
                    continue;
                }
                match await_answer(connected, &id) {
                    Answer::Acked(offset, epoch) => {
                        out.acked.insert(n, (offset, epoch));
                        break;
                    }
                    Answer::Refused(retry_ms) => {
                        out.refusals += 1;
                        thread::sleep(Duration::from_millis(retry_ms.min(500)));
                    }
                    Answer::Broken => peer = None,
                    Answer::Silent => {}
                }
            }
            thread::sleep(Duration::from_millis(15));
        }
        out
    })
}

/// A publisher's view of one request.
enum Answer {
    Acked(u64, String),
    Refused(u64),
    Broken,
    Silent,
}

fn await_answer(peer: &mut Peer, id: &str) -> Answer {
    let deadline = Instant::now() + ANSWER_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Answer::Silent;
        }
        let message = match peer.try_poll(left) {
            Ok(Some(message)) => message,
            Ok(None) => return Answer::Silent,
            Err(_) => return Answer::Broken,
        };
        if message["id"] != id {
            continue;
        }
        match message["type"].as_str() {
            Some("ack") => {
                let offset = message["offset"]
                    .as_u64()
                    .expect("an ack carries its offset");
                let epoch = message["epoch"].as_str().expect("an ack carries its epoch");
                return Answer::Acked(offset, epoch.to_owned());
            }
            Some("error") if message["code"] == "unavailable" => {
                return Answer::Refused(message["retry_after_ms"].as_u64().unwrap_or(200));
            }
            _ => panic!("unexpected answer to {id}: {message}"),
        }
    }
}

/// The connected peer, connecting (and joining `room` with `since`) if there is none.
fn connected<'a>(
    peer: &'a mut Option<Peer>,
    url: &str,
    user: &str,
    room: &str,
    since: Option<&Value>,
) -> Option<&'a mut Peer> {
    if peer.is_none() {
        let mut fresh = Peer::try_connect(url, user, &[]).ok()?;
        fresh.try_join(room, since).ok()?;
        *peer = Some(fresh);
    }
    peer.as_mut()
}

/// Where the followers have to get before the run ends: each room's last acked message,
/// known once the publishers have stopped, and how many followers have reached theirs.
#[derive(Debug, Default)]
pub(crate) struct CatchUp {
    targets: OnceLock<BTreeMap<String, (u64, String)>>,
    reached: AtomicUsize,
}

impl CatchUp {
    /// Sets each room's target from what its publisher got acked (call once, after the
    /// publishers have stopped).
    pub(crate) fn set(&self, publishers: &BTreeMap<String, Published>) {
        let targets = publishers
            .iter()
            .filter_map(|(room, p)| Some((room.clone(), last_acked(p)?.clone())))
            .collect();
        let _ = self.targets.set(targets);
    }

    /// How many followers have reached their room's target.
    pub(crate) fn reached(&self) -> usize {
        self.reached.load(Ordering::SeqCst)
    }

    /// Whether `got` ends where the tally's last check on a follower of `room` passes.
    fn is_reached(&self, room: &str, got: &[Value]) -> bool {
        let Some(targets) = self.targets.get() else {
            return false;
        };
        let Some((offset, epoch)) = targets.get(room) else {
            return true; // nothing acked, nothing to reach
        };
        got.last()
            .is_some_and(|m| m["epoch"] != epoch.as_str() || m["offset"].as_u64() >= Some(*offset))
    }
}

/// The acked message with the highest offset: (offset, epoch).
fn last_acked(published: &Published) -> Option<&(u64, String)> {
    published.acked.values().max_by_key(|(o, _)| *o)
}

/// Follows `room` through `url` until `stop`, churning now and then (seeded by `seed`)
/// until `calm` (set when the publishers stop, so the last seconds only catch up); counts
/// itself in `catch_up` once it has reached its room's target.
pub(crate) fn follower(
    name: String,
    url: String,
    room: String,
    seed: u64,
    calm: Arc<AtomicBool>,
    catch_up: Arc<CatchUp>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Followed> {
    thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let url = format!("{url}{name}");
        let mut got: Vec<Value> = Vec::new();
        let mut peer = Peer::try_connect(&url, &name, &[]).ok();
        if let Some(p) = peer.as_mut()
            && p.try_join(&room, None).is_err()
        {
            peer = None;
        }
        let mut churn_at = Instant::now() + rng.millis(3_000, 12_000);
        let mut reached = false;
        while !stop.load(Ordering::SeqCst) {
            if !reached && catch_up.is_reached(&room, &got) {
                reached = true;
                catch_up.reached.fetch_add(1, Ordering::SeqCst);
            }
            if Instant::now() >= churn_at && !calm.load(Ordering::SeqCst) {
                churn_at = Instant::now() + rng.millis(3_000, 12_000);
                peer = churn(peer, &mut rng, &room, &mut got);
                continue;
            }
            let Some(connected) = peer.as_mut() else {
                peer = rejoin(&url, &name, &room, &mut got);
                if peer.is_none() {
                    thread::sleep(Duration::from_millis(100));
                }
                continue;
            };
            match connected.try_poll(Duration::from_millis(100)) {
                Ok(Some(message)) => {
                    if let Some("chat" | "reset") = message["type"].as_str() {
                        got.push(message);
                    }
                }
                Ok(None) => {}
                Err(_) => peer = None,
            }
        }
        Followed {
            name,
            room,
            messages: got,
        }
    })
}

/// A client's whims: leave and rejoin with `since`, or drop the connection (the next turn
/// reconnects with `since`).
fn churn(peer: Option<Peer>, rng: &mut Rng, room: &str, got: &mut Vec<Value>) -> Option<Peer> {
    let mut peer = peer?;
    if rng.below(2) == 0 {
        drop(peer);
        return None;
    }
    if peer
        .try_send(&json!({"type": "leave", "room": room}))
        .is_err()
    {
        return None;
    }
    // Whatever arrives before `left` is the room's last words to this member: keep them.
    loop {
        match peer.try_poll(Duration::from_secs(5)) {
            Ok(Some(message)) if message["type"] == "left" => break,
            Ok(Some(message)) => {
                if let Some("chat" | "reset") = message["type"].as_str() {
                    got.push(message);
                }
            }
            Ok(None) | Err(_) => return None,
        }
    }
    thread::sleep(rng.millis(50, 1_500));
    let joined = peer.try_join(room, since_of(got).as_ref()).ok()?;
    note_recovery(&joined, got);
    Some(peer)
}

/// Reconnects and rejoins after the last message received.
fn rejoin(url: &str, name: &str, room: &str, got: &mut Vec<Value>) -> Option<Peer> {
    let mut peer = Peer::try_connect(url, name, &[]).ok()?;
    let joined = peer.try_join(room, since_of(got).as_ref()).ok()?;
    note_recovery(&joined, got);
    Some(peer)
}

fn since_of(got: &[Value]) -> Option<Value> {
    got.last()
        .map(|m| json!({"offset": m["offset"], "epoch": m["epoch"]}))
}

/// A join that could not recover is a signalled reset: delivery continues from its position.
fn note_recovery(joined: &Value, got: &mut Vec<Value>) {
    if joined["recovered"] == false {
        got.push(json!({"type": "reset", "epoch": joined["epoch"], "offset": joined["offset"]}));
    }
}

/// The verdict on one run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) sent: u64,
    pub(crate) acked: u64,
    pub(crate) refusals: u64,
    pub(crate) abandoned: u64,
    pub(crate) delivered: u64,
    pub(crate) duplicates: u64,
    pub(crate) unexplained_gaps: u64,
    pub(crate) resets: u64,
    /// The first problems seen, for the report.
    pub(crate) problems: Vec<String>,
}

impl Tally {
    /// Judges `followers` against what the `publishers` (room → record) got acked.
    pub(crate) fn of(publishers: &BTreeMap<String, Published>, followers: &[Followed]) -> Self {
        let mut tally = Self::default();
        for published in publishers.values() {
            tally.sent += published.sent;
            tally.acked += published.acked.len() as u64;
            tally.refusals += published.refusals;
            tally.abandoned += published.abandoned;
        }
        for follower in followers {
            tally.follower(follower, publishers.get(&follower.room));
        }
        tally
    }

    fn problem(&mut self, text: String) {
        if self.problems.len() < 20 {
            self.problems.push(text);
        }
    }

    /// Checks one follower's sequence, then that it reached the room's last acked message.
    fn follower(&mut self, f: &Followed, published: Option<&Published>) {
        let mut position: Option<(String, u64)> = None;
        let mut seen = std::collections::HashSet::new();
        for message in &f.messages {
            let epoch = message["epoch"].as_str().unwrap_or("").to_owned();
            let Some(offset) = message["offset"].as_u64() else {
                self.unexplained_gaps += 1;
                self.problem(format!(
                    "{}: a room message without an offset: {message}",
                    f.name
                ));
                continue;
            };
            if message["type"] == "reset" {
                self.resets += 1;
                position = Some((epoch, offset));
                continue;
            }
            self.delivered += 1;
            if !seen.insert((epoch.clone(), offset)) {
                self.duplicates += 1;
                self.problem(format!("{}: offset {offset} of {epoch} twice", f.name));
                continue;
            }
            if let Some((e, o)) = &position
                && !(*e == epoch && offset == o + 1)
            {
                self.unexplained_gaps += 1;
                self.problem(format!(
                    "{}: offset {offset} of {epoch} after {o} of {e}",
                    f.name
                ));
            }
            position = Some((epoch, offset));
        }
        let last_acked = published.and_then(last_acked);
        if let (Some((offset, epoch)), Some((e, o))) = (last_acked, &position)
            && e == epoch
            && o < offset
        {
            self.unexplained_gaps += 1;
            self.problem(format!(
                "{}: stopped at offset {o}; {offset} of {epoch} was acked",
                f.name
            ));
        }
    }

    /// The table the run prints.
    pub(crate) fn table(&self) -> String {
        format!(
            "| sent | acked | refused (retried) | abandoned | delivered | duplicates | unexplained gaps | signalled resets |\n\
             |---|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.sent,
            self.acked,
            self.refusals,
            self.abandoned,
            self.delivered,
            self.duplicates,
            self.unexplained_gaps,
            self.resets
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(epoch: &str, offset: u64) -> Value {
        json!({"type": "chat", "epoch": epoch, "offset": offset, "payload": {"n": offset}})
    }

    fn follower(messages: Vec<Value>) -> Followed {
        Followed {
            name: "f".into(),
            room: "r".into(),
            messages,
        }
    }

    fn acked(last: u64, epoch: &str) -> BTreeMap<String, Published> {
        let mut p = Published::default();
        p.acked.insert(last, (last, epoch.into()));
        BTreeMap::from([("r".to_owned(), p)])
    }

    #[test]
    fn the_tally_counts_what_it_should() {
        let clean = follower(vec![chat("e", 1), chat("e", 2), chat("e", 3)]);
        let t = Tally::of(&acked(3, "e"), &[clean]);
        assert_eq!((t.duplicates, t.unexplained_gaps, t.delivered), (0, 0, 3));

        let gap = follower(vec![chat("e", 1), chat("e", 3)]);
        assert_eq!(Tally::of(&acked(3, "e"), &[gap]).unexplained_gaps, 1);

        let twice = follower(vec![chat("e", 1), chat("e", 2), chat("e", 2)]);
        assert_eq!(Tally::of(&acked(2, "e"), &[twice]).duplicates, 1);

        let reset = json!({"type": "reset", "epoch": "f", "offset": 7});
        let signalled = follower(vec![chat("e", 1), reset, chat("f", 8)]);
        let t = Tally::of(&acked(8, "f"), &[signalled]);
        assert_eq!((t.unexplained_gaps, t.resets), (0, 1));

        let short = follower(vec![chat("e", 1), chat("e", 2)]);
        assert_eq!(Tally::of(&acked(5, "e"), &[short]).unexplained_gaps, 1);
    }

    #[test]
    fn a_follower_has_caught_up_where_the_tally_stops_looking() {
        let catch_up = CatchUp::default();
        assert!(!catch_up.is_reached("r", &[chat("e", 3)]), "no target yet");
        catch_up.set(&acked(3, "e"));
        assert!(!catch_up.is_reached("r", &[]));
        assert!(!catch_up.is_reached("r", &[chat("e", 1), chat("e", 2)]));
        assert!(catch_up.is_reached("r", &[chat("e", 2), chat("e", 3)]));
        let reset = json!({"type": "reset", "epoch": "e", "offset": 5});
        assert!(catch_up.is_reached("r", &[chat("e", 1), reset]));
        assert!(catch_up.is_reached("r", &[chat("f", 1)]), "another epoch");
        assert!(catch_up.is_reached("elsewhere", &[]), "a room with no ack");
    }
}
