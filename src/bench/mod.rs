//! `wsloop bench`: a WebSocket load generator on one mio loop, cheap enough that the server,
//! not the loader, is what gets measured.
//!
//! It is the client role of the same protocol pieces the rest of the crate uses (the
//! handshake of [`wsloop::protocol::handshake::client`], [`FrameHeader`] for frames), cut down
//! to what a load generator needs:
//!
//! - frames are encoded and masked **once** and the same bytes re-sent ([`output`]); a
//!   connection only counts how many it owes, so one `write` sends many frames;
//! - server frames are parsed only far enough to count and check them ([`scan`]): header
//!   and length, and for fan-out the sequence number at the end of the payload;
//! - latency goes into a fixed-size log-linear [`histogram`].
//!
//! Modes ([`Mode`]): `echo` (C connections, S-byte messages, D in flight each), `fanout` (N
//! subscribers in one room of `/ws`, one publisher with D messages in flight), `connect`
//! (open, handshake, close, repeat, C at a time) and `idle` (hold N connections, report the
//! server's RSS per connection). Each returns a [`Report`], printed as a table or as JSON.
//!
//! Every phase has a timeout; a refused connection or a rejected handshake (429, 503, …) is
//! a [`BenchError`] naming the status, never a hang.
//!
//! [`FrameHeader`]: wsloop::protocol::FrameHeader

mod conn;
mod connect;
mod delivery;
mod echo;
mod fanout;
pub(crate) mod histogram;
mod idle;
mod net;
pub(crate) mod output;
pub(crate) mod procfs;
mod progress;
pub(crate) mod report;
pub(crate) mod scan;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;
use wsloop::client::tls::{TlsTrust, client_config, server_name};

pub(crate) use conn::Failure;
pub(crate) use report::Report;

use wsloop::client::WsUrl;
use wsloop::protocol::handshake::client::ClientHandshakeError;

/// What to run and against what.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    /// The server, e.g. `ws://127.0.0.1:8080/echo` (`/ws` for fan-out).
    pub url: WsUrl,
    /// The load.
    pub mode: Mode,
    /// How long the measured part runs (idle: how long connections are held). Default 10 s.
    pub duration: Duration,
    /// The longest any phase may take (connect, handshake, join, close, a stalled run).
    /// Default 10 s.
    pub timeout: Duration,
    /// The server's process id: its CPU time and RSS are read from `/proc`.
    pub pid: Option<u32>,
    /// Draw a progress bar on stderr (it hides itself when stderr is not a terminal).
    pub progress: bool,
    /// Spread connections over this many server addresses `127.0.0.1`, `127.0.0.2`, … (for
    /// more than ~28,000 connections to one port; the server must listen on `0.0.0.0`).
    /// Default 1.
    pub spread: u8,
    /// For `wss://`: which server certificates to accept. Default: the system roots.
    pub tls: TlsTrust,
}

impl BenchConfig {
    /// A configuration with the defaults for `url` and `mode`.
    pub(crate) fn new(url: WsUrl, mode: Mode) -> Self {
        Self {
            url,
            mode,
            duration: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            pid: None,
            progress: false,
            spread: 1,
            tls: TlsTrust::System,
        }
    }
}

/// The load to generate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub(crate) enum Mode {
    /// Round trips on an echo endpoint.
    Echo(EchoOptions),
    /// One publisher, many subscribers in a room of the `/ws` hub.
    Fanout(FanoutOptions),
    /// Opening handshakes per second.
    Connect(ConnectOptions),
    /// Idle connections held open.
    Idle(IdleOptions),
}

/// `echo`: C connections, S-byte messages, D in flight on each.
#[derive(Debug, Clone)]
pub(crate) struct EchoOptions {
    /// Connections. Default 100.
    pub connections: usize,
    /// Payload bytes per message. Default 32.
    pub size: usize,
    /// Messages in flight per connection. Default 16.
    pub depth: usize,
    /// Stop after this many round trips instead of after the duration.
    pub messages: Option<u64>,
    /// Send text frames (the payload is ASCII) instead of binary.
    pub text: bool,
}

impl Default for EchoOptions {
    fn default() -> Self {
        Self {
            connections: 100,
            size: 32,
            depth: 16,
            messages: None,
            text: false,
        }
    }
}

/// `fanout`: N subscribers joined to one room, one publisher.
#[derive(Debug, Clone)]
pub(crate) struct FanoutOptions {
    /// Subscribers. Default 100.
    pub subscribers: usize,
    /// Bytes of the chat payload string (sequence number, timestamp, padding); at least 32.
    /// Default 32.
    pub size: usize,
    /// Messages in flight (published, not yet delivered to every subscriber). Default 16.
    pub depth: usize,
    /// The room. Default `bench`.
    pub room: String,
    /// Raw pub/sub instead of the hub: no join, each message is the payload itself, and
    /// every connection to the URL (the publisher included) receives every message as it
    /// was sent: uWebSockets' pub/sub, `examples/broadcast.rs`. Default off.
    pub raw: bool,
}

impl Default for FanoutOptions {
    fn default() -> Self {
        Self {
            subscribers: 100,
            size: 32,
            depth: 16,
            room: "bench".into(),
            raw: false,
        }
    }
}

/// `connect`: open, handshake, close, repeat.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    /// Connections in progress at once. Default 16.
    pub concurrency: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { concurrency: 16 }
    }
}

/// `idle`: hold N open connections.
#[derive(Debug, Clone)]
pub(crate) struct IdleOptions {
    /// Connections. Default 10,000.
    pub connections: usize,
    /// Handshakes in flight while opening them. Default 128.
    pub parallel: usize,
}

impl Default for IdleOptions {
    fn default() -> Self {
        Self {
            connections: 10_000,
            parallel: 128,
        }
    }
}

/// Why a run could not be done.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum BenchError {
    /// Options that cannot work (e.g. zero connections).
    Invalid(String),
    /// A connection could not be set up: refused, rejected (with the HTTP status), timed out.
    Setup {
        /// Which connection (0-based) of how many.
        index: usize,
        /// How many were being opened.
        total: usize,
        /// What went wrong.
        failure: Failure,
    },
    /// A phase did not finish in time (e.g. subscribers never got their `joined`).
    Timeout(String),
    /// The server answered a request with an error (e.g. `rate_limited`).
    Server(String),
    /// A connection that was set up ended before the run could start.
    Lost(String),
    /// The loader's own I/O failed (poll, /proc).
    Io(io::Error),
}

impl BenchError {
    pub(crate) fn setup(index: usize, total: usize, failure: Failure) -> Self {
        Self::Setup {
            index,
            total,
            failure,
        }
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(what) => f.write_str(what),
            Self::Setup {
                index,
                total,
                failure,
            } => {
                write!(f, "connection {} of {total}: {failure}", index + 1)?;
                match hint(failure) {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            Self::Timeout(what) => write!(f, "timed out: {what}"),
            Self::Server(what) => write!(f, "the server refused a request: {what}"),
            Self::Lost(what) => write!(f, "a connection was lost before the run: {what}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BenchError {}

impl From<io::Error> for BenchError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// What the user can do about a setup failure.
fn hint(failure: &Failure) -> Option<&'static str> {
    match failure {
        Failure::Connect(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Some("is the server running and listening on that address?")
        }
        Failure::Connect(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
            Some("out of local ports: fewer connections, or --spread over more addresses")
        }
        Failure::Handshake(ClientHandshakeError::Status { status: 429, .. }) => Some(
            "a per-IP or per-user limit: run wsloop serve with --handshake-rate 0 \
             --max-connections-per-ip 0 --max-connections-per-user 0",
        ),
        Failure::Handshake(ClientHandshakeError::Status { status: 503, .. }) => {
            Some("the server is full: raise its --max-connections")
        }
        _ => None,
    }
}

/// Runs the load described by `config` and returns what it measured.
pub(crate) fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    let tls = match config.url.secure {
        true => Some((
            client_config(&config.tls).map_err(|e| BenchError::Invalid(e.to_string()))?,
            server_name(&config.url.host).map_err(|e| BenchError::Invalid(e.to_string()))?,
        )),
        false => None,
    };
    let target = net::Target {
        addrs: addresses(&config.url, config.spread)?,
        host: config.url.host_header(),
        tls,
    };
    match &config.mode {
        Mode::Echo(options) => echo::run(config, options, target),
        Mode::Fanout(options) => fanout::run(config, options, target),
        Mode::Connect(options) => connect::run(config, options, target),
        Mode::Idle(options) => idle::run(config, options, target),
    }
}

/// The server address(es) to connect to.
fn addresses(url: &WsUrl, spread: u8) -> Result<Vec<SocketAddr>, BenchError> {
    let first = url
        .socket_addr()
        .to_socket_addrs()
        .map_err(|e| BenchError::Invalid(format!("{url}: {e}")))?
        .next()
        .ok_or_else(|| BenchError::Invalid(format!("{url}: the host has no address")))?;
    if spread <= 1 {
        return Ok(vec![first]);
    }
    if first.ip() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        return Err(BenchError::Invalid(
            "--spread needs the server at 127.0.0.1 (it uses 127.0.0.1..127.0.0.N)".into(),
        ));
    }
    Ok((1..=spread)
        .map(|last| SocketAddr::from(([127, 0, 0, last], first.port())))
        .collect())
}

/// Nanoseconds in `d`, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
