//! The publisher thread: runs the loop's commands in order on one Redis connection,
//! retrying each across reconnects for a while, and reports each one's outcome.

// The loop's side of the command queue only calls `try_send`: no lock and no blocking
// inside the event loop. This thread may block.
#![allow(clippy::disallowed_types)]

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use redis::Connection;

use super::presence_store::{HEARTBEAT, PresenceScripts};
use super::reads::{self, ReadFor};
use super::redis_io::{
    Command, Event, Outlet, RECONNECT, RedisSettings, Side, connect, interrupted,
};
use super::scripts::{self, Scripts as MessageScripts};
use crate::client::random;
use crate::hub::history_key;

/// How long the publisher keeps retrying one command (reconnecting in between) before it
/// reports it failed: every command is safe to run twice (appends and publishes are
/// de-duplicated by their publish id, reads change nothing), so a dropped connection or a
/// timeout is retried rather than turned into a lost or doubled message.
const RETRY_FOR: Duration = Duration::from_secs(3);

/// Every script the publisher runs.
struct Scripts {
    messages: MessageScripts,
    presence: PresenceScripts,
}

/// The publisher's connection and what it knows about it.
struct Link {
    conn: Option<(Connection, String)>,
    failures: u32,
    next_attempt: Instant,
    /// When the next heartbeat is due.
    next_beat: Instant,
    /// No heartbeat has succeeded yet in this process.
    first_beat: bool,
}

impl Link {
    /// Runs the heartbeat if it is due and the connection is up: refreshes this node's
    /// liveness key, removes dead nodes, and reports [`Event::Beat`].
    fn beat(&mut self, settings: &RedisSettings, scripts: &Scripts, outlet: &Outlet) {
        let now = Instant::now();
        if now < self.next_beat {
            return;
        }
        self.next_beat = now + HEARTBEAT;
        let Some((conn, _)) = self.conn.as_mut() else {
            return;
        };
        match scripts.presence.heartbeat(conn, settings) {
            Ok(had) => {
                outlet.emit(Event::Beat {
                    revived: !had || self.first_beat,
                });
                self.first_beat = false;
            }
            Err(e) => self.failed(&e, outlet),
        }
    }

    /// How long the idle thread may wait for a command: until the next heartbeat, at most
    /// 500 ms.
    fn idle_wait(&self) -> Duration {
        self.next_beat
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(10), Duration::from_millis(500))
    }

    /// Connects if it is time to try; reports `Up`/`Down`. Whether it is connected.
    fn ensure(&mut self, settings: &RedisSettings, outlet: &Outlet) -> bool {
        if self.conn.is_some() {
            return true;
        }
        if Instant::now() < self.next_attempt {
            return false;
        }
        match connect_publisher(settings) {
            Ok(c) => {
                self.conn = Some(c);
                self.failures = 0;
                // A new connection beats before its first command: until then other nodes
                // may take this one for dead.
                self.next_beat = Instant::now();
                outlet.emit(Event::Up(Side::Publisher));
                true
            }
            Err(e) => {
                self.failed(&e, outlet);
                false
            }
        }
    }

    /// A heartbeat, idle PING or connect failed. Interrupted by a signal (EINTR, as after
    /// SIGCONT), the connection is fine but its reply may still come and put later replies
    /// out of step: it is dropped and the next use reconnects, with no outage reported
    /// (commands are retried the same way in [`run_with_retries`]). Anything else is
    /// [`Link::lost`].
    fn failed(&mut self, e: &redis::RedisError, outlet: &Outlet) {
        if interrupted(e) {
            self.conn = None;
        } else {
            self.lost(e, outlet);
        }
    }

    /// The connection failed: back off, and report `Down` the first time.
    fn lost(&mut self, e: &redis::RedisError, outlet: &Outlet) {
        self.conn = None;
        self.failures = self.failures.saturating_add(1);
        self.next_attempt = Instant::now() + RECONNECT.delay(self.failures.min(6), random::unit());
        if self.failures == 1 {
            outlet.emit(Event::Down(Side::Publisher, e.to_string()));
        }
    }
}

/// A command connection and the incarnation of the Redis behind it.
fn connect_publisher(settings: &RedisSettings) -> redis::RedisResult<(Connection, String)> {
    let mut conn = connect(settings, Side::Publisher)?;
    let incarnation = scripts::incarnation(&mut conn)?;
    Ok((conn, incarnation))
}

/// The publisher thread's body.
pub(super) fn publisher(settings: RedisSettings, commands: Receiver<Command>, outlet: Outlet) {
    let scripts = Scripts {
        messages: MessageScripts::new(),
        presence: PresenceScripts::new(),
    };
    let mut link = Link {
        conn: None,
        failures: 0,
        next_attempt: Instant::now(),
        next_beat: Instant::now(),
        first_beat: true,
    };
    loop {
        link.beat(&settings, &scripts, &outlet);
        let command = match commands.recv_timeout(link.idle_wait()) {
            Ok(command) => command,
            Err(RecvTimeoutError::Timeout) => {
                // Idle: make sure the connection is still alive, so the loop learns of an
                // outage before the next message rather than by losing it to a dead socket.
                if let Some((c, _)) = link.conn.as_mut()
                    && let Err(e) = redis::cmd("PING").query::<String>(c)
                {
                    link.failed(&e, &outlet);
                }
                link.ensure(&settings, &outlet);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if !link.ensure(&settings, &outlet) {
            outlet.emit(Event::Failed(command));
            continue;
        }
        link.beat(&settings, &scripts, &outlet);
        match run_with_retries(&mut link, &settings, &scripts, &command) {
            Ok(event) => outlet.emit(event),
            Err(e) => {
                log::warn!("redis publisher: gave up on a command after {RETRY_FOR:?}: {e}");
                link.lost(&e, &outlet);
                outlet.emit(Event::Failed(command));
            }
        }
    }
}

/// Runs one command, reconnecting and running it again on any error for up to
/// [`RETRY_FOR`].
///
/// Without this, the first message after a Redis restart met the stale connection; and
/// with it alone, a connection dropped after Redis ran an append but before its answer
/// came back published the message twice, under two offsets: the publish id prevents that.
fn run_with_retries(
    link: &mut Link,
    settings: &RedisSettings,
    scripts: &Scripts,
    command: &Command,
) -> redis::RedisResult<Event> {
    let deadline = Instant::now() + RETRY_FOR;
    let mut attempt = 0u32;
    loop {
        let result = match link.conn.as_mut() {
            Some((conn, incarnation)) => run(conn, incarnation, settings, scripts, command),
            None => connect_publisher(settings).map(|c| {
                link.conn = Some(c);
                link.next_beat = Instant::now();
                None
            }),
        };
        let e = match result {
            Ok(Some(event)) => return Ok(event),
            Ok(None) => continue, // Reconnected: run it now.
            Err(e) => e,
        };
        link.conn = None;
        attempt += 1;
        let pause = Duration::from_millis(50 << attempt.min(4));
        if Instant::now() + pause >= deadline {
            return Err(e);
        }
        log::info!("redis publisher: {e}; retrying (attempt {attempt})");
        std::thread::sleep(pause);
    }
}

/// Runs one command; the event that reports it.
fn run(
    conn: &mut Connection,
    incarnation: &str,
    settings: &RedisSettings,
    scripts: &Scripts,
    command: &Command,
) -> redis::RedisResult<Option<Event>> {
    let event = match command {
        Command::Publish(out) => {
            scripts
                .messages
                .publish(conn, settings, &out.bus, &out.pid)?;
            Event::Done {
                origin: out.origin.clone(),
                position: None,
            }
        }
        Command::Append(out) => {
            let key = history_key(&out.bus.message.target);
            let position =
                scripts
                    .messages
                    .append(conn, settings, &key, &out.bus, &out.pid, incarnation)?;
            Event::Done {
                origin: out.origin.clone(),
                position: Some(position),
            }
        }
        Command::Fetch {
            conn: id,
            room,
            since,
        } => Event::Fetched {
            conn: *id,
            room: room.clone(),
            since: since.clone(),
            fetched: Some(reads::fetch(
                conn,
                settings,
                room,
                since,
                ReadFor::Recovery,
            )?),
        },
        Command::CatchUp {
            room,
            since,
            position_only,
        } => {
            let what = if *position_only {
                ReadFor::Position
            } else {
                ReadFor::CatchUp
            };
            Event::CaughtUp {
                room: room.clone(),
                since: since.clone(),
                fetched: reads::fetch(conn, settings, room, since, what)?,
            }
        }
        Command::Presence(change) => {
            let (room, user) = (&change.room, &change.user);
            scripts
                .presence
                .change(conn, settings, room, user, change.present)?;
            Event::Done {
                origin: None,
                position: None,
            }
        }
        Command::PresenceSync(rooms) => {
            scripts.presence.sync(conn, settings, rooms)?;
            Event::Done {
                origin: None,
                position: None,
            }
        }
        Command::Roster { room } => Event::Rostered {
            room: room.clone(),
            roster: scripts.presence.roster(conn, settings, room)?,
        },
        Command::Ask { qid, line } => Event::Asked {
            qid: *qid,
            nodes: scripts.presence.ask(conn, settings, line)?,
        },
        Command::Note(line) => {
            redis::cmd("PUBLISH")
                .arg(settings.channel())
                .arg(line)
                .query::<i64>(conn)?;
            Event::Done {
                origin: None,
                position: None,
            }
        }
        Command::ReadHistory {
            conn: id,
            room,
            since,
            limit,
        } => Event::HistoryRead {
            conn: *id,
            room: room.clone(),
            fetched: reads::page(conn, settings, room, *since, *limit)?,
        },
    };
    Ok(Some(event))
}
