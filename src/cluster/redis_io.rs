//! The threads that own the Redis connections. The event loop never touches Redis: it
//! hands [`Command`]s to the publisher thread through a bounded queue and reads
//! [`Event`]s back from a queue both threads fill, woken by its `mio::Waker`.
//!
//! - The publisher ([`super::publisher`]) runs commands in order on one connection (the idempotent publish and
//!   history-append scripts, history reads), retrying each for a while across reconnects.
//!   A published command comes back as [`Event::Done`] (with the offset Redis gave it), so
//!   the loop acks the sender only then; one it cannot run comes back as
//!   [`Event::Failed`], and the sender is told `unavailable` (or, with
//!   `when_redis_down = "local"`, the message is delivered on this node only).
//!   It also runs the presence scripts and, every [`super::HEARTBEAT`], refreshes the
//!   node's liveness key ([`Event::Beat`]).
//! - The subscriber listens on the bus channel and forwards every message (presence
//!   notes included).
//!
//! Both reconnect on their own with capped, jittered backoff, and report `Up`/`Down`.

// The loop's side of these queues only ever calls `try_send`/`try_recv`: no lock and no
// blocking inside the event loop. The Redis threads themselves may block.
#![allow(clippy::disallowed_types)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use redis::{Client, Connection, Value};

use super::bus::BusMessage;
use crate::client::{Backoff, random};
use crate::hub::remote::Fetched;
use crate::hub::request::Since;
use crate::hub::{Origin, PresenceChange};
use crate::id::ConnId;
use crate::server::AppWaker;

/// Which connection an `Up`/`Down` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The publishing connection.
    Publisher,
    /// The subscribing connection.
    Subscriber,
}

/// A message for the bus, with its publish id and the client waiting for the answer.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The message.
    pub bus: BusMessage,
    /// Its publish id: Redis publishes each id once (see [`super::scripts`]).
    pub pid: String,
    /// Who gets the `ack` (or `unavailable`).
    pub origin: Option<Origin>,
}

/// Work for the publisher thread. Each command ends in exactly one event: [`Event::Done`],
/// [`Event::Fetched`], [`Event::CaughtUp`] or [`Event::Rostered`] when it ran, [`Event::Failed`] when it could
/// not (so the loop can count what is in flight).
#[derive(Debug, Clone)]
pub enum Command {
    /// Publish a message without history.
    Publish(Outgoing),
    /// Append a room message to history and publish it.
    Append(Outgoing),
    /// Read a room's history after `since` for a recovering join.
    Fetch {
        /// The joining connection.
        conn: ConnId,
        /// The room.
        room: String,
        /// The client's position.
        since: Since,
    },
    /// Read a room's history after the last position this node delivered.
    CatchUp {
        /// The room.
        room: String,
        /// This node's position.
        since: Since,
        /// Only the room's position is wanted (a first member joined).
        position_only: bool,
    },
    /// Record that a user arrived in or left a room on this node, and tell the others.
    Presence(PresenceChange),
    /// Rewrite this node's presence in Redis: these rooms with these local users, and
    /// nothing else (Redis lost it, or a change could not be recorded).
    PresenceSync(Vec<(String, Vec<String>)>),
    /// Read which users every live node has in a room.
    Roster {
        /// The room.
        room: String,
    },
    /// Publish a question to every node ([`super::query`]) and learn which nodes are
    /// alive to answer it.
    Ask {
        /// The question's number.
        qid: u64,
        /// The question line.
        line: String,
    },
    /// Publish a line on the bus as it is (an answer to another node's question).
    Note(String),
    /// Read up to `limit` messages of a room's history after `since`, for the server API.
    ReadHistory {
        /// The API request waiting for them.
        conn: ConnId,
        /// The room.
        room: String,
        /// Messages after this offset (of the current epoch).
        since: u64,
        /// At most this many.
        limit: usize,
    },
}

/// What the Redis threads report.
#[derive(Debug)]
pub enum Event {
    /// A connection is (again) established.
    Up(Side),
    /// A connection failed; the text says why.
    Down(Side, String),
    /// A message arrived on the bus.
    Message(Vec<u8>),
    /// A publish or append is in Redis.
    Done {
        /// Who waits for the answer.
        origin: Option<Origin>,
        /// The (offset, epoch) an append got.
        position: Option<(u64, String)>,
    },
    /// A command could not be run (Redis unreachable, or not answering in time).
    Failed(Command),
    /// A history fetch finished.
    Fetched {
        /// The joining connection.
        conn: ConnId,
        /// The room.
        room: String,
        /// The client's position.
        since: Since,
        /// What Redis holds.
        fetched: Option<Fetched>,
    },
    /// A roster read finished: the users of each live node in the room.
    Rostered {
        /// The room.
        room: String,
        /// Users by node (this node's included).
        roster: Vec<(String, Vec<String>)>,
    },
    /// A heartbeat refreshed this node's liveness key; `revived` if the key had gone (Redis
    /// lost it, or the node was declared dead) or this is the process's first heartbeat:
    /// the node must rewrite its presence.
    Beat {
        /// The node's presence in Redis cannot be trusted.
        revived: bool,
    },
    /// A question went out; these nodes are alive to answer it.
    Asked {
        /// The question's number.
        qid: u64,
        /// The live nodes (this one included).
        nodes: Vec<String>,
    },
    /// A history read for the server API finished.
    HistoryRead {
        /// The API request waiting.
        conn: ConnId,
        /// The room.
        room: String,
        /// What Redis holds (`None`: the room has no history).
        fetched: Option<Fetched>,
    },
    /// A catch-up read finished.
    CaughtUp {
        /// The room.
        room: String,
        /// The position it read after.
        since: Since,
        /// What Redis holds.
        fetched: Fetched,
    },
}

/// Where the threads connect and what they use.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Prefix of every key and of the channel name.
    pub prefix: String,
    /// History size per room (stream MAXLEN).
    pub history_size: usize,
    /// History TTL.
    pub history_ttl: Duration,
    /// What the node does with new messages while Redis is away.
    pub when_down: super::WhenDown,
    /// The node's id: its connections are named `wsloop-<node>-pub` and `-sub` in Redis
    /// (`CLIENT LIST`), so an operator can tell them apart. Set by [`super::Cluster::start`].
    pub node: String,
}

impl RedisSettings {
    pub(super) fn channel(&self) -> String {
        format!("{}:bus", self.prefix)
    }

    pub(super) fn dedupe_key(&self, pid: &str) -> String {
        format!("{}:d:{pid}", self.prefix)
    }

    pub(super) fn keys(&self, room: &str) -> [String; 3] {
        let p = &self.prefix;
        [
            format!("{p}:o:{room}"),
            format!("{p}:h:{room}"),
            format!("{p}:e:{room}"),
        ]
    }
}

/// The state shared by the loop's side and the threads: events out, the waker, a stop flag.
#[derive(Debug, Clone)]
pub(super) struct Outlet {
    pub(super) events: SyncSender<Event>,
    pub(super) waker: AppWaker,
    pub(super) stop: Arc<AtomicBool>,
}

impl Outlet {
    pub(super) fn emit(&self, event: Event) {
        if send_bounded(&self.events, event, &self.stop) {
            let _ = self.waker.wake();
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// How long a Redis thread waits before trying a full event queue again.
const FULL_WAIT: Duration = Duration::from_millis(5);

/// Queues `event` for the loop, waiting while the queue is full (this is a Redis thread,
/// never the loop); false once the loop is gone or `stop` is set.
fn send_bounded(events: &SyncSender<Event>, mut event: Event, stop: &AtomicBool) -> bool {
    loop {
        match events.try_send(event) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) if !stop.load(Ordering::Relaxed) => {
                event = back;
                std::thread::sleep(FULL_WAIT);
            }
            Err(_) => return false,
        }
    }
}

/// Reconnection schedule for both threads: up to 5 s between attempts.
pub(super) const RECONNECT: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(5),
    max_retries: None,
    reset_after: Duration::from_secs(10),
};

pub(super) fn connect(settings: &RedisSettings, side: Side) -> redis::RedisResult<Connection> {
    let client = Client::open(settings.url.as_str())?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let side = match side {
        Side::Publisher => "pub",
        Side::Subscriber => "sub",
    };
    let name = format!("wsloop-{}-{side}", settings.node);
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query::<()>(&mut conn)?;
    Ok(conn)
}

/// The subscriber thread's body.
pub(super) fn subscriber(settings: RedisSettings, outlet: Outlet) {
    let mut failures = 0u32;
    while !outlet.stopped() {
        match listen(&settings, &outlet, &mut failures) {
            Ok(()) => return,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    outlet.emit(Event::Down(Side::Subscriber, e.to_string()));
                }
                let wait = RECONNECT
                    .delay(failures.min(6), random::unit())
                    .max(Duration::from_millis(50));
                std::thread::sleep(wait);
            }
        }
    }
}

/// Subscribes and forwards messages until an error or the stop flag.
fn listen(settings: &RedisSettings, outlet: &Outlet, failures: &mut u32) -> redis::RedisResult<()> {
    let mut conn = connect(settings, Side::Subscriber)?;
    let mut pubsub = conn.as_pubsub();
    pubsub.subscribe(settings.channel())?;
    pubsub.set_read_timeout(Some(Duration::from_millis(500)))?;
    *failures = 0;
    outlet.emit(Event::Up(Side::Subscriber));
    let mut last_ping = Instant::now();
    loop {
        if outlet.stopped() {
            return Ok(());
        }
        match pubsub.get_message() {
            Ok(message) => outlet.emit(Event::Message(message.get_payload_bytes().to_vec())),
            // signal(7): a read with a timeout fails with EINTR when a stopped process
            // resumes, and on any signal handled by this thread; the connection is fine.
            Err(e) if interrupted(&e) => {}
            Err(e) if e.is_timeout() => {
                // Quiet: prove the connection is alive, so a silent partition (no FIN, no
                // RST) is noticed instead of leaving the node "ready" but deaf. Messages
                // that arrive while waiting for the PONG are kept for `get_message`.
                if last_ping.elapsed() >= SUBSCRIBER_PING {
                    match pubsub.ping::<Value>() {
                        // The PONG may still come: `get_message` skips it.
                        Ok(_) => {}
                        Err(e) if interrupted(&e) => {}
                        Err(e) => return Err(e),
                    }
                    last_ping = Instant::now();
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` is a blocking read or write that a signal interrupted (EINTR): the
/// connection is fine. signal(7): a socket call with a timeout (`SO_RCVTIMEO`) fails so when
/// a stopped process resumes, whatever `SA_RESTART` says.
pub(super) fn interrupted(e: &redis::RedisError) -> bool {
    io_error_kind(e) == Some(io::ErrorKind::Interrupted)
}

/// The kind of the I/O error behind `e`, if one is (the redis crate keeps it private).
fn io_error_kind(e: &redis::RedisError) -> Option<io::ErrorKind> {
    let inner = std::error::Error::source(e)?;
    let shared = inner.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()?;
    shared.downcast_ref::<io::Error>().map(io::Error::kind)
}

/// How often a quiet subscription connection is pinged.
const SUBSCRIBER_PING: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use super::*;

    /// The subscriber reads on after EINTR only if it can tell it from other errors.
    #[test]
    fn an_interrupted_read_is_told_apart() {
        let interrupted = redis::RedisError::from(io::Error::from(io::ErrorKind::Interrupted));
        assert_eq!(
            io_error_kind(&interrupted),
            Some(io::ErrorKind::Interrupted)
        );
        let reset = redis::RedisError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(io_error_kind(&reset), Some(io::ErrorKind::ConnectionReset));
    }

    fn message(n: u8) -> Event {
        Event::Message(vec![n])
    }

    /// The loop's event queue is bounded: a thread that finds it full waits for the loop to
    /// take an event, loses nothing, and gives up once told to stop.
    #[test]
    fn a_full_event_queue_makes_the_redis_thread_wait() {
        let (tx, rx) = mpsc::sync_channel(2);
        let stop = Arc::new(AtomicBool::new(false));
        assert!(send_bounded(&tx, message(1), &stop));
        assert!(send_bounded(&tx, message(2), &stop));
        let (tx2, stop2) = (tx.clone(), stop.clone());
        let waiting = thread::spawn(move || send_bounded(&tx2, message(3), &stop2));
        thread::sleep(Duration::from_millis(50));
        assert!(!waiting.is_finished(), "the third event was not held back");
        assert!(matches!(rx.recv(), Ok(Event::Message(m)) if m == [1]));
        assert!(waiting.join().unwrap());
        assert!(matches!(rx.recv(), Ok(Event::Message(m)) if m == [2]));
        assert!(matches!(rx.recv(), Ok(Event::Message(m)) if m == [3]));

        assert!(send_bounded(&tx, message(4), &stop));
        assert!(send_bounded(&tx, message(5), &stop));
        stop.store(true, Ordering::Relaxed);
        assert!(!send_bounded(&tx, message(6), &stop), "stopping: give up");
        drop(rx);
        stop.store(false, Ordering::Relaxed);
        assert!(!send_bounded(&tx, message(7), &stop), "the loop is gone");
    }
}
