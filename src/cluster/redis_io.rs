//! The threads that own the Redis connections. The event loop never touches Redis: it
//! hands [`Command`]s to the publisher thread through a bounded queue and reads
//! [`Event`]s back from a queue both threads fill, woken by its `mio::Waker`.
//!
//! - The publisher runs commands in order on one connection (PUBLISH, the history-append
//!   script, history fetches). A command it cannot run comes back as [`Event::Failed`], so
//!   the loop can deliver the message locally instead: a node keeps serving its own clients
//!   while Redis is away.
//! - The subscriber listens on the bus channel and forwards every message.
//!
//! Both reconnect on their own with capped, jittered backoff, and report `Up`/`Down`.

// The loop's side of these queues only ever calls `try_send`/`try_recv`: no lock and no
// blocking inside the event loop. The Redis threads themselves may block.
#![allow(clippy::disallowed_types)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use redis::{Client, Connection, Script, Value};

use super::bus::BusMessage;
use crate::client::{Backoff, random};
use crate::hub::remote::{Fetched, RemoteMessage};
use crate::hub::request::Since;
use crate::id::ConnId;
use crate::server::ServerHandle;

/// Appends a room message to its history stream and publishes it, atomically, giving it
/// the room's next offset and epoch (a new epoch if the room's history was lost).
/// KEYS: offset counter, stream, epoch. ARGV: candidate epoch, max length, TTL (ms),
/// message head without position, payload, channel.
const APPEND_LUA: &str = r"
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[3], epoch)
  redis.call('DEL', KEYS[1], KEYS[2])
end
local offset = redis.call('INCR', KEYS[1])
local msg = ARGV[4] .. ' ' .. offset .. ' ' .. epoch .. '\n' .. ARGV[5]
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. offset, 'd', msg)
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
redis.call('PUBLISH', ARGV[6], msg)
return offset
";

/// Which connection an `Up`/`Down` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The publishing connection.
    Publisher,
    /// The subscribing connection.
    Subscriber,
}

/// Work for the publisher thread.
#[derive(Debug, Clone)]
pub enum Command {
    /// Publish a message without history.
    Publish(BusMessage),
    /// Append a room message to history and publish it.
    Append(BusMessage),
    /// Read a room's history after `since` for a recovering join.
    Fetch {
        /// The joining connection.
        conn: ConnId,
        /// The room.
        room: String,
        /// The client's position.
        since: Since,
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
    /// A command could not be run (Redis unreachable).
    Failed(Command),
    /// A history fetch finished (`None`: it failed).
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
}

impl RedisSettings {
    fn channel(&self) -> String {
        format!("{}:bus", self.prefix)
    }

    fn keys(&self, room: &str) -> [String; 3] {
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
    pub(super) waker: ServerHandle,
    pub(super) stop: Arc<AtomicBool>,
}

impl Outlet {
    fn emit(&self, event: Event) {
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
const RECONNECT: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(5),
    max_retries: None,
    reset_after: Duration::from_secs(10),
};

fn connect(url: &str) -> redis::RedisResult<Connection> {
    let client = Client::open(url)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(conn)
}

/// The publisher thread's body.
pub(super) fn publisher(settings: RedisSettings, commands: Receiver<Command>, outlet: Outlet) {
    let script = Script::new(APPEND_LUA);
    let mut conn: Option<Connection> = None;
    let mut failures = 0u32;
    let mut next_attempt = Instant::now();
    loop {
        let command = match commands.recv_timeout(Duration::from_millis(500)) {
            Ok(command) => Some(command),
            Err(RecvTimeoutError::Timeout) => {
                // Idle: make sure the connection is still alive, so the loop learns of an
                // outage before the next message rather than by losing it to a dead socket.
                if let Some(c) = conn.as_mut()
                    && let Err(e) = redis::cmd("PING").query::<String>(c)
                {
                    conn = None;
                    failures = 1;
                    next_attempt = Instant::now() + RECONNECT.delay(failures, random::unit());
                    outlet.emit(Event::Down(Side::Publisher, e.to_string()));
                }
                None
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if conn.is_none() && Instant::now() >= next_attempt {
            match connect(&settings.url) {
                Ok(c) => {
                    conn = Some(c);
                    failures = 0;
                    outlet.emit(Event::Up(Side::Publisher));
                }
                Err(e) => {
                    failures += 1;
                    next_attempt =
                        Instant::now() + RECONNECT.delay(failures.min(6), random::unit());
                    if failures == 1 {
                        outlet.emit(Event::Down(Side::Publisher, e.to_string()));
                    }
                }
            }
        }
        let Some(command) = command else { continue };
        let Some(c) = conn.as_mut() else {
            outlet.emit(Event::Failed(command));
            continue;
        };
        if let Err(e) = run_or_retry(c, &settings, &script, &command, &outlet) {
            conn = None;
            failures = 1;
            next_attempt = Instant::now() + RECONNECT.delay(failures, random::unit());
            outlet.emit(Event::Down(Side::Publisher, e.to_string()));
            outlet.emit(Event::Failed(command));
        }
    }
}

/// Runs one command; if the connection turns out to have died while idle (Redis restarted,
/// or closed it between two idle-time pings), reconnects at once and runs it again, once.
///
/// Without this, the first message after a Redis restart met the stale connection and was
/// delivered on this node only, although Redis was back and `/readyz` said `ready`. A dropped
/// connection means Redis never got the command (it is not retried after a timeout, where
/// Redis may have run it).
fn run_or_retry(
    conn: &mut Connection,
    settings: &RedisSettings,
    script: &Script,
    command: &Command,
    outlet: &Outlet,
) -> redis::RedisResult<()> {
    match run(conn, settings, script, command, outlet) {
        Err(e) if e.is_connection_dropped() && !e.is_timeout() => {
            *conn = connect(&settings.url)?;
            log::info!("redis publisher: the connection had dropped ({e}); reconnected");
            run(conn, settings, script, command, outlet)
        }
        other => other,
    }
}

/// Runs one command.
fn run(
    conn: &mut Connection,
    settings: &RedisSettings,
    script: &Script,
    command: &Command,
    outlet: &Outlet,
) -> redis::RedisResult<()> {
    match command {
        Command::Publish(message) => {
            redis::cmd("PUBLISH")
                .arg(settings.channel())
                .arg(message.encode())
                .query::<i64>(conn)?;
        }
        Command::Append(message) => {
            let room = match &message.message.target {
                crate::hub::publish::OwnedTarget::Room(room) => room.as_str(),
                _ => return Ok(()),
            };
            let [offset_key, stream_key, epoch_key] = settings.keys(room);
            let ttl_ms = u64::try_from(settings.history_ttl.as_millis()).unwrap_or(u64::MAX);
            script
                .key(offset_key)
                .key(stream_key)
                .key(epoch_key)
                .arg(crate::hub::history::new_epoch().to_string())
                .arg(settings.history_size.max(1))
                .arg(ttl_ms)
                .arg(message.head_without_position())
                .arg(&message.message.payload)
                .arg(settings.channel())
                .invoke::<u64>(conn)?;
        }
        Command::Fetch {
            conn: id,
            room,
            since,
        } => {
            let fetched = fetch(conn, settings, room, since)?;
            outlet.emit(Event::Fetched {
                conn: *id,
                room: room.clone(),
                since: since.clone(),
                fetched: Some(fetched),
            });
        }
    }
    Ok(())
}

/// Reads the room's epoch, last offset and the messages after `since`.
fn fetch(
    conn: &mut Connection,
    settings: &RedisSettings,
    room: &str,
    since: &Since,
) -> redis::RedisResult<Fetched> {
    let [offset_key, stream_key, epoch_key] = settings.keys(room);
    let epoch: Option<String> = redis::cmd("GET").arg(&epoch_key).query(conn)?;
    let last: Option<u64> = redis::cmd("GET").arg(&offset_key).query(conn)?;
    let reply: Value = redis::cmd("XRANGE")
        .arg(&stream_key)
        .arg(format!("(0-{}", since.offset))
        .arg("+")
        .arg("COUNT")
        .arg(settings.history_size.max(1))
        .query(conn)?;
    let entries = stream_payloads(reply)
        .iter()
        .filter_map(|bytes| BusMessage::parse(bytes))
        .map(|b| b.message)
        .collect::<Vec<RemoteMessage>>();
    Ok(Fetched {
        epoch: epoch.unwrap_or_default(),
        last: last.unwrap_or(0),
        entries,
    })
}

/// The `d` field of each XRANGE entry.
fn stream_payloads(reply: Value) -> Vec<Vec<u8>> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(mut parts) = entry else {
                return None;
            };
            let Value::Array(fields) = parts.pop()? else {
                return None;
            };
            let mut fields = fields.into_iter();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if matches!(&name, Value::BulkString(n) if n == b"d")
                    && let Value::BulkString(bytes) = value
                {
                    return Some(bytes);
                }
            }
            None
        })
        .collect()
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
    let mut conn = connect(&settings.url)?;
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
            Err(e) if e.is_timeout() => {
                // Quiet: prove the connection is alive, so a silent partition (no FIN, no
                // RST) is noticed instead of leaving the node "ready" but deaf. Messages
                // that arrive while waiting for the PONG are kept for `get_message`.
                if last_ping.elapsed() >= SUBSCRIBER_PING {
                    pubsub.ping::<Value>()?;
                    last_ping = Instant::now();
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// How often a quiet subscription connection is pinged.
const SUBSCRIBER_PING: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use super::*;

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
