//! Scaling out: several nodes share one message bus (Redis pub/sub) and one history (Redis
//! Streams), so a client gets every message exactly once whichever node it and the sender
//! are on, and recovers its rooms on any node after a reconnect.
//!
//! The event loop owns a [`Cluster`]: a bounded queue of commands to the Redis threads and
//! a bounded queue of events back, and nothing else; it never blocks on Redis. A Redis
//! thread that finds the event queue full waits for the loop (it is not the loop): the
//! subscriber then stops reading and Redis holds the backlog (past its
//! `client-output-buffer-limit` it drops the subscriber, which reconnects and catches up),
//! so a loop that falls behind cannot grow its own memory without bound. A client's message
//! is acked once Redis has it. With Redis away, publishing is refused with `unavailable`
//! (or, with [`WhenDown::Local`], delivered on this node only, without history offsets);
//! the node reports the degraded state on `/readyz` and in `/metrics`, and resumes when
//! the threads reconnect.
//!
//! Presence is cluster-wide too: each node records its users per room in Redis and
//! announces changes on the bus ([`presence`]), and the publisher thread beats a liveness
//! key so a dead node's users expire (`presence_store`).

// The loop only calls non-blocking `try_send`/`try_recv` on these queues: no lock and no
// blocking inside the event loop, which is what the clippy.toml ban protects.
#![allow(clippy::disallowed_types)]

pub mod bus;
pub mod presence;
mod presence_store;
mod publisher;
pub mod query;
mod reads;
mod redis_io;
pub mod scripts;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};

pub use presence_store::{EXPIRY, HEARTBEAT};
use redis_io::Outlet;
pub use redis_io::{Command, Event, Outgoing, RedisSettings, Side};

use crate::server::AppWaker;

/// The most commands waiting for the publisher thread; beyond it, messages are refused with
/// `unavailable` (and counted), so a stuck Redis cannot grow the loop's memory.
const QUEUE: usize = 65_536;
/// The most events waiting for the loop (bus messages, fetched history, up/down reports);
/// a Redis thread waits while it is full.
const EVENT_QUEUE: usize = 4_096;

/// What a node does with new messages while Redis is away (`cluster.when_redis_down`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenDown {
    /// Refuse them with `unavailable` (`retry_after_ms`; API: 503 and `Retry-After`), so
    /// nothing is delivered out of order or missing from history. The default.
    #[default]
    Refuse,
    /// Deliver them to this node's clients only, without history offsets: availability
    /// over consistency (other nodes never get them, `since` cannot recover them).
    Local,
}

/// The loop's end of the Redis threads.
#[derive(Debug)]
pub struct Cluster {
    node: String,
    commands: SyncSender<Command>,
    events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    publisher_up: bool,
    subscriber_up: bool,
    /// Both connections have been up at least once since start.
    was_up: bool,
    /// Commands submitted whose event has not come back yet.
    in_flight: usize,
    when_down: WhenDown,
    /// A presence change could not be recorded in Redis: rewrite this node's presence at
    /// the next heartbeat.
    presence_stale: bool,
}

impl Cluster {
    /// Starts the publisher and subscriber threads; `waker` wakes the app that drains
    /// their events (the hub).
    pub fn start(mut settings: RedisSettings, node: String, waker: AppWaker) -> io::Result<Self> {
        settings.node.clone_from(&node);
        let (commands, queue) = mpsc::sync_channel(QUEUE);
        let (events_tx, events) = mpsc::sync_channel(EVENT_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let outlet = Outlet {
            events: events_tx,
            waker,
            stop: stop.clone(),
        };
        let when_down = settings.when_down;
        let (s1, o1) = (settings.clone(), outlet.clone());
        std::thread::Builder::new()
            .name("wsloop-redis-pub".into())
            .spawn(move || publisher::publisher(s1, queue, o1))?;
        std::thread::Builder::new()
            .name("wsloop-redis-sub".into())
            .spawn(move || redis_io::subscriber(settings, outlet))?;
        Ok(Self {
            node,
            commands,
            events,
            stop,
            publisher_up: false,
            subscriber_up: false,
            was_up: false,
            in_flight: 0,
            when_down,
            presence_stale: false,
        })
    }

    /// This node's id on the bus.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether both connections are up (messages go through the bus).
    pub fn is_up(&self) -> bool {
        self.publisher_up && self.subscriber_up
    }

    /// Whether both connections have been up at least once since start: until then the
    /// node is not ready (`/readyz` 503), after that a lost Redis makes it degraded.
    pub fn was_up(&self) -> bool {
        self.was_up
    }

    /// Whether the publishing connection is up (messages can be put in Redis).
    pub fn publisher_up(&self) -> bool {
        self.publisher_up
    }

    /// What to do with new messages while Redis is away.
    pub fn when_down(&self) -> WhenDown {
        self.when_down
    }

    /// Notes that this node's presence in Redis may be wrong (a change was not recorded).
    pub fn mark_presence_stale(&mut self) {
        self.presence_stale = true;
    }

    /// Whether this node's presence in Redis may be wrong; clears the mark.
    pub fn take_presence_stale(&mut self) -> bool {
        std::mem::take(&mut self.presence_stale)
    }

    /// Whether every submitted command has been answered (the drain waits for this).
    pub fn idle(&self) -> bool {
        self.in_flight == 0
    }

    /// Queues a command for the publisher thread; gives it back if it cannot be queued.
    pub fn submit(&mut self, command: Command) -> Result<(), Box<Command>> {
        match self.commands.try_send(command) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(TrySendError::Full(c) | TrySendError::Disconnected(c)) => Err(Box::new(c)),
        }
    }

    /// Takes up to `max` events; updates the up/down state on the way.
    pub fn drain(&mut self, max: usize) -> Vec<Event> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.events.try_recv() {
                Ok(event) => {
                    match &event {
                        Event::Up(Side::Publisher) => self.publisher_up = true,
                        Event::Up(Side::Subscriber) => self.subscriber_up = true,
                        Event::Down(Side::Publisher, _) => self.publisher_up = false,
                        Event::Down(Side::Subscriber, _) => self.subscriber_up = false,
                        Event::Done { .. }
                        | Event::Failed(_)
                        | Event::Fetched { .. }
                        | Event::Rostered { .. }
                        | Event::Asked { .. }
                        | Event::HistoryRead { .. }
                        | Event::CaughtUp { .. } => {
                            self.in_flight = self.in_flight.saturating_sub(1);
                        }
                        Event::Message(_) | Event::Beat { .. } => {}
                    }
                    self.was_up |= self.is_up();
                    out.push(event);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A node id: the host name (if known), the process id and a random suffix.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let suffix = crate::hub::history::new_epoch();
    format!(
        "{}-{}-{}",
        if host.is_empty() { "node" } else { &host },
        std::process::id(),
        &suffix[..6]
    )
}
