//! The load generator's event loop: one `mio::Poll`, connections in numbered slots (the slot
//! number is the mio token), and the phases every mode shares: open many connections with a
//! bounded number of handshakes in flight, run, close them all.
//!
//! Every wait has a deadline. A connection stuck in TCP connect, the opening handshake or the
//! closing handshake for longer than the timeout is failed by [`Net::turn`]'s sweep, so a
//! server that stops answering turns into an error message, not a hang.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::BenchError;
use super::conn::{Conn, End, Failure, Handler, Phase};
use super::output::{Output, Prebuilt};
use super::progress::Progress;
use super::scan::Frame;

/// How often connections are checked against the phase timeout.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// The longest single wait in `poll`, so deadlines and the progress bar stay current.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// Where to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Server addresses; connection `i` uses `addrs[i % len]`.
    pub(crate) addrs: Vec<SocketAddr>,
    /// The `Host` header.
    pub(crate) host: String,
    /// For `wss://`: the rustls settings and the name the certificate must carry.
    pub(crate) tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

/// Connections to open with [`Net::establish`].
#[derive(Debug, Clone)]
pub(crate) struct Plan<'a> {
    /// Slot numbers to fill.
    pub(crate) ids: Range<usize>,
    /// Request target, e.g. `/echo`.
    pub(crate) path: &'a str,
    /// Keep data payloads up to this many bytes (see `Scanner::new`).
    pub(crate) keep: u64,
    /// The most connections in TCP connect or handshake at once.
    pub(crate) parallel: usize,
}

/// The poll, the connections and the shared buffers.
#[derive(Debug)]
pub(crate) struct Net {
    poll: Poll,
    events: Events,
    ready: Vec<usize>,
    buf: Vec<u8>,
    /// The frame echo connections send over and over.
    pub(crate) prebuilt: Prebuilt,
    slots: Vec<Option<Conn>>,
    target: Target,
    timeout: Duration,
    last_sweep: Instant,
}

impl Net {
    /// A loop with a read buffer of `read_buf` bytes and `timeout` for each phase.
    pub(crate) fn new(target: Target, timeout: Duration, read_buf: usize) -> io::Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            buf: vec![0; read_buf],
            prebuilt: Prebuilt::default(),
            slots: Vec::new(),
            target,
            timeout,
            last_sweep: Instant::now(),
        })
    }

    /// Starts connecting slot `id` (which must be free) to `path`.
    pub(crate) fn open(&mut self, id: usize, path: &str, keep: u64) -> io::Result<()> {
        if self.slots.len() <= id {
            self.slots.resize_with(id + 1, || None);
        }
        let addr = self.target.addrs[id % self.target.addrs.len()];
        let tls = match &self.target.tls {
            Some((config, name)) => Some(
                ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(io::Error::other)?,
            ),
            None => None,
        };
        let conn = Conn::connect(
            self.poll.registry(),
            Token(id),
            (addr, tls),
            (&self.target.host, path),
            keep,
        )?;
        self.slots[id] = Some(conn);
        Ok(())
    }

    /// The connection in slot `id`.
    pub(crate) fn conn_mut(&mut self, id: usize) -> Option<&mut Conn> {
        self.slots.get_mut(id).and_then(Option::as_mut)
    }

    /// Connections in any phase.
    pub(crate) fn live(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Writes what slot `id` has queued (after a mode queued output outside an event).
    pub(crate) fn flush(&mut self, id: usize, handler: &mut impl Handler) {
        let Some(conn) = self.slots.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        if let Some(end) = conn.flush(&self.prebuilt) {
            self.finish(id, end, handler);
        }
    }

    /// Queues on every open connection, then flushes each.
    pub(crate) fn for_each_open(
        &mut self,
        handler: &mut impl Handler,
        mut queue: impl FnMut(usize, &mut Output, &Prebuilt),
    ) {
        for id in 0..self.slots.len() {
            if let Some(conn) = self.slots[id].as_mut()
                && conn.phase() == Phase::Open
            {
                queue(id, &mut conn.out, &self.prebuilt);
                self.flush(id, handler);
            }
        }
    }

    /// Waits up to `wait` for readiness and services every ready connection.
    pub(crate) fn turn(&mut self, handler: &mut impl Handler, wait: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.ready.clear();
        self.ready.extend(self.events.iter().map(|e| e.token().0));
        for i in 0..self.ready.len() {
            let id = self.ready[i];
            let Some(conn) = self.slots.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            if let Some(end) = conn.service(id, &mut self.buf, &self.prebuilt, handler) {
                self.finish(id, end, handler);
            }
        }
        self.sweep(handler);
        Ok(())
    }

    /// Fails connections stuck in a phase for longer than the timeout.
    fn sweep(&mut self, handler: &mut impl Handler) {
        let now = Instant::now();
        if now.duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        for id in 0..self.slots.len() {
            let overdue = self.slots[id]
                .as_ref()
                .and_then(|c| c.overdue(now, self.timeout));
            if let Some(phase) = overdue {
                self.finish(id, End::Failed(Failure::Timeout(phase)), handler);
            }
        }
    }

    /// Empties slot `id` and tells the handler.
    fn finish(&mut self, id: usize, end: End, handler: &mut impl Handler) {
        if let Some(mut conn) = self.slots.get_mut(id).and_then(Option::take) {
            // A close reply queued on the way out gets one chance to leave.
            let _ = conn.flush(&self.prebuilt);
            conn.deregister(self.poll.registry());
            handler.on_end(id, end, Instant::now());
        }
    }

    /// Opens the connections of `plan`, at most `plan.parallel` at a time, and returns once
    /// all are open. The first failure (refused, rejected handshake, timeout) is the error.
    pub(crate) fn establish(
        &mut self,
        handler: &mut impl Handler,
        plan: Plan<'_>,
        progress: &Progress,
    ) -> Result<(), BenchError> {
        let total = plan.ids.len();
        let mut counting = Counting {
            inner: handler,
            opened: 0,
            failure: None,
        };
        let mut next = plan.ids.start;
        while counting.opened < total {
            // Started but not yet open: in TCP connect or the handshake.
            while next < plan.ids.end && next - plan.ids.start - counting.opened < plan.parallel {
                self.open(next, plan.path, plan.keep).map_err(|e| {
                    BenchError::setup(next - plan.ids.start, total, Failure::Connect(e))
                })?;
                next += 1;
            }
            self.turn(&mut counting, TICK)?;
            if let Some((id, failure)) = counting.failure.take() {
                return Err(BenchError::setup(id - plan.ids.start, total, failure));
            }
            progress.set(counting.opened as u64);
        }
        Ok(())
    }

    /// Starts the closing handshake on every open connection and waits up to `within` for
    /// them to finish; what is left is dropped.
    pub(crate) fn close_all(&mut self, handler: &mut impl Handler, within: Duration) {
        let now = Instant::now();
        for id in 0..self.slots.len() {
            match self.slots[id].as_mut() {
                Some(conn) if conn.phase() == Phase::Open => {
                    conn.begin_close(now);
                    self.flush(id, handler);
                }
                Some(conn) if conn.phase() != Phase::Closing => {
                    self.finish(id, End::Closed, handler);
                }
                _ => {}
            }
        }
        let deadline = now + within;
        while self.live() > 0 && Instant::now() < deadline {
            if self.turn(handler, TICK).is_err() {
                break;
            }
        }
        for id in 0..self.slots.len() {
            self.finish(id, End::Closed, handler);
        }
    }
}

/// Wraps a mode's handler while connections open: counts opens, keeps the first failure.
struct Counting<'h, H> {
    inner: &'h mut H,
    opened: usize,
    failure: Option<(usize, Failure)>,
}

impl<H: Handler> Handler for Counting<'_, H> {
    fn on_open(&mut self, id: usize, conn: &mut Conn, now: Instant) {
        self.opened += 1;
        self.inner.on_open(id, conn, now);
    }

    fn on_frame(&mut self, id: usize, frame: &Frame<'_>, out: &mut Output, now: Instant) {
        self.inner.on_frame(id, frame, out, now);
    }

    fn on_ping(&mut self, id: usize) {
        self.inner.on_ping(id);
    }

    fn on_end(&mut self, id: usize, end: End, now: Instant) {
        match end {
            End::Failed(failure) if self.failure.is_none() => self.failure = Some((id, failure)),
            other => self.inner.on_end(id, other, now),
        }
    }
}
