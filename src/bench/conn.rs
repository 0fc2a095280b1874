//! One bench connection on mio: TCP connect, the opening handshake (RFC 6455 §4.1), frames
//! counted by the [`Scanner`], pings answered, and the closing handshake (§7.1.2).
//!
//! The mode in charge (echo, fan-out, …) sees a connection through [`Handler`]: when it
//! opens, each data frame it receives (with its [`Output`] to queue replies), and how it
//! ended. Everything protocol-level the mode does not care about (pongs, close replies,
//! handshake checks) happens here.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use rustls::ClientConnection;

use super::output::{Output, Prebuilt};
use super::scan::{Frame, ScanError, Scanner};
use wsloop::client::MioStream;
use wsloop::client::random::nonce;
use wsloop::protocol::handshake::accept::key_from_nonce;
use wsloop::protocol::handshake::client::{ClientHandshakeError, ClientRequest, ResponseParser};
use wsloop::protocol::{CloseFrame, Decoded, OpCode};

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Request sent, waiting for the `101`.
    Handshaking,
    /// WebSocket open.
    Open,
    /// We sent a close frame and wait for the server's.
    Closing,
}

/// Why a connection failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Failure {
    /// The TCP connect failed (refused, unreachable, out of ports).
    Connect(io::Error),
    /// The server refused the upgrade (e.g. 429, 503) or answered wrongly.
    Handshake(ClientHandshakeError),
    /// A read or write failed (e.g. reset by the server).
    Io(io::Error),
    /// The server closed TCP without a close frame; the phase it happened in.
    Eof(&'static str),
    /// The server sent bytes that are not valid frames.
    Protocol(ScanError),
    /// A phase took longer than the timeout.
    Timeout(&'static str),
    /// The server closed the connection with this code and reason.
    Closed(u16, String),
}

impl Failure {
    /// A short stable name, for counting failures by kind.
    pub(crate) fn kind(&self) -> String {
        match self {
            Self::Connect(e) => format!("connect: {}", e.kind()),
            Self::Handshake(ClientHandshakeError::Status { status, .. }) => {
                format!("http {status}")
            }
            Self::Handshake(_) => "bad handshake".into(),
            Self::Io(e) => format!("io: {}", e.kind()),
            Self::Eof(phase) => format!("eof during {phase}"),
            Self::Protocol(_) => "protocol".into(),
            Self::Timeout(phase) => format!("timeout during {phase}"),
            Self::Closed(code, _) => format!("closed {code}"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "TCP connect failed: {e}"),
            Self::Handshake(e) => write!(f, "handshake rejected: {e}"),
            Self::Io(e) => write!(f, "network error: {e}"),
            Self::Eof(phase) => write!(f, "the server closed TCP during {phase}"),
            Self::Protocol(e) => write!(f, "{e}"),
            Self::Timeout(phase) => write!(f, "timed out during {phase}"),
            Self::Closed(code, reason) => write!(f, "the server closed with {code} {reason}"),
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The closing handshake we started completed.
    Closed,
    /// Anything else.
    Failed(Failure),
}

/// What a mode learns about its connections.
pub(crate) trait Handler {
    /// The handshake of connection `id` completed (frames the server sent with its `101`
    /// are reported after this).
    fn on_open(&mut self, _id: usize, _conn: &mut Conn, _now: Instant) {}
    /// A data frame arrived; `out` is the connection's output, flushed after the read.
    fn on_frame(&mut self, id: usize, frame: &Frame<'_>, out: &mut Output, now: Instant);
    /// A ping arrived (already answered).
    fn on_ping(&mut self, _id: usize) {}
    /// Connection `id` is gone; its slot is free.
    fn on_end(&mut self, id: usize, end: End, now: Instant);
}

/// One connection and its protocol state.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: MioStream,
    phase: Phase,
    /// When the current phase began.
    since: Instant,
    /// When the TCP connect began.
    started: Instant,
    /// The `Sec-WebSocket-Key` sent.
    key: String,
    /// The response head, while handshaking.
    head: Vec<u8>,
    /// Reads `head` as it grows.
    head_parser: ResponseParser,
    /// Bytes to send.
    pub(crate) out: Output,
    scan: Scanner,
}

impl Conn {
    /// Starts a non-blocking connect to `addr` and registers it under `token`.
    ///
    /// `keep_data_up_to`: data frames up to this many bytes reach the handler with their
    /// payload (see [`Scanner::new`]).
    pub(crate) fn connect(
        registry: &Registry,
        token: Token,
        (addr, tls): (SocketAddr, Option<ClientConnection>),
        request: (&str, &str),
        keep_data_up_to: u64,
    ) -> io::Result<Self> {
        let started = Instant::now();
        let mut stream = MioStream::connect(addr, tls)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        let key = key_from_nonce(nonce());
        let mut out = Output::default();
        let mut bytes = Vec::with_capacity(160);
        let (host, target) = request;
        ClientRequest {
            host,
            target,
            key: &key,
            protocols: &[],
            headers: &[],
        }
        .encode(&mut bytes);
        out.queue_raw(&bytes);
        Ok(Self {
            stream,
            phase: Phase::Connecting,
            since: started,
            started,
            key,
            head: Vec::new(),
            head_parser: ResponseParser::new(),
            out,
            scan: Scanner::new(keep_data_up_to),
        })
    }

    /// The phase.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// When the TCP connect began.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Starts the closing handshake (a no-op unless open). Flush afterwards.
    pub(crate) fn begin_close(&mut self, now: Instant) {
        if self.phase == Phase::Open {
            self.out.queue_close(1000);
            self.set_phase(Phase::Closing, now);
        }
    }

    /// The phase name if it has lasted longer than `timeout`.
    pub(crate) fn overdue(&self, now: Instant, timeout: Duration) -> Option<&'static str> {
        let name = match self.phase {
            Phase::Open => return None,
            Phase::Connecting => "TCP connect",
            Phase::Handshaking => "the opening handshake",
            Phase::Closing => "the closing handshake",
        };
        (now.saturating_duration_since(self.since) > timeout).then_some(name)
    }

    /// Deregisters the socket (dropping it closes it).
    pub(crate) fn deregister(mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }

    /// Handles readiness: finish connecting, read everything, write what is queued.
    /// `Some` when the connection is over.
    pub(crate) fn service(
        &mut self,
        id: usize,
        buf: &mut [u8],
        prebuilt: &Prebuilt,
        handler: &mut impl Handler,
    ) -> Option<End> {
        if self.phase == Phase::Connecting {
            match self.stream.connected() {
                Ok(false) => return None,
                Ok(true) => self.set_phase(Phase::Handshaking, Instant::now()),
                Err(e) => return Some(End::Failed(Failure::Connect(e))),
            }
        }
        if let Some(end) = self.read_all(id, buf, handler) {
            return Some(end);
        }
        self.flush(prebuilt)
    }

    /// Writes what is queued. `Some` when the write failed.
    pub(crate) fn flush(&mut self, prebuilt: &Prebuilt) -> Option<End> {
        if self.phase == Phase::Connecting {
            return None;
        }
        let flushed = self.out.flush(&mut self.stream, prebuilt).and_then(|()| {
            // TLS records (the handshake, or what the queue just gave rustls) still to send;
            // the next WRITABLE edge resumes them.
            match self.stream.flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                other => other,
            }
        });
        flushed.err().map(|e| End::Failed(Failure::Io(e)))
    }

    fn read_all(&mut self, id: usize, buf: &mut [u8], handler: &mut impl Handler) -> Option<End> {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => return Some(self.eof()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(End::Failed(Failure::Io(e))),
            };
            let now = Instant::now();
            let end = match self.phase {
                Phase::Handshaking => self.absorb_head(id, &buf[..n], handler, now),
                _ => self.absorb_frames(id, &buf[..n], handler, now),
            };
            if end.is_some() {
                return end;
            }
            // With TLS, plaintext says nothing of the ciphertext left in the socket.
            if n < buf.len() && !self.stream.is_tls() {
                // A short read drained the socket; epoll reports new data as a new edge.
                return None;
            }
        }
    }

    fn eof(&self) -> End {
        match self.phase {
            Phase::Closing => End::Closed,
            Phase::Connecting | Phase::Handshaking => End::Failed(Failure::Eof("the handshake")),
            Phase::Open => End::Failed(Failure::Eof("the run")),
        }
    }

    fn absorb_head(
        &mut self,
        id: usize,
        bytes: &[u8],
        handler: &mut impl Handler,
        now: Instant,
    ) -> Option<End> {
        self.head.extend_from_slice(bytes);
        match self.head_parser.parse(&self.head, &self.key, &[]) {
            Ok(Decoded::Partial) => None,
            Err(e) => Some(End::Failed(Failure::Handshake(e))),
            Ok(Decoded::Complete(_, used)) => {
                let tail = self.head.split_off(used);
                self.head = Vec::new();
                self.set_phase(Phase::Open, now);
                handler.on_open(id, self, now);
                self.absorb_frames(id, &tail, handler, now)
            }
        }
    }

    fn absorb_frames(
        &mut self,
        id: usize,
        bytes: &[u8],
        handler: &mut impl Handler,
        now: Instant,
    ) -> Option<End> {
        let Self {
            scan, out, phase, ..
        } = self;
        let mut end = None;
        let scanned = scan.feed(bytes, |frame| {
            if end.is_some() {
                return;
            }
            match frame.opcode {
                OpCode::Ping => {
                    out.queue_frame(OpCode::Pong, frame.payload.unwrap_or_default());
                    handler.on_ping(id);
                }
                OpCode::Pong => {}
                OpCode::Close => end = Some(closed_by_server(*phase, frame.payload, out)),
                _ => handler.on_frame(id, &frame, out, now),
            }
        });
        match scanned {
            Err(e) => Some(End::Failed(Failure::Protocol(e))),
            Ok(()) => end,
        }
    }

    fn set_phase(&mut self, phase: Phase, now: Instant) {
        self.phase = phase;
        self.since = now;
    }
}

/// A close frame from the server: the end of our closing handshake, or the server's own
/// close, which is answered (§5.5.1) and reported as a failure of the run.
fn closed_by_server(phase: Phase, body: Option<&[u8]>, out: &mut Output) -> End {
    if phase == Phase::Closing {
        return End::Closed;
    }
    let (code, reason) = match CloseFrame::parse(body.unwrap_or_default()) {
        Ok(frame) => (frame.code.map_or(1005, |c| c.0), frame.reason.to_owned()),
        Err(_) => (1002, "invalid close frame".to_owned()),
    };
    out.queue_close(code_to_echo(code));
    End::Failed(Failure::Closed(code, reason))
}

/// The code to answer a close with: the server's own, unless it may not be sent (1005).
fn code_to_echo(code: u16) -> u16 {
    if code == 1005 || code == 1006 || code == 1015 {
        1000
    } else {
        code
    }
}
