//! `wsloop client URL`: an interactive WebSocket client, like websocat.
//!
//! - **stdin**: each line, without its `\n` (or `\r\n`), is sent as a text message, or as a
//!   binary message with `--binary`. A line that is not UTF-8 cannot be a text message: it is
//!   reported on stderr and skipped. A line longer than [`MAX_LINE`] is sent in pieces of
//!   that size.
//! - **stdout**: each text message received, followed by `\n`. Each binary message as
//!   lowercase hex followed by `\n`, or with `--binary` its raw bytes with nothing added.
//!   Pings are answered, pings and pongs are not shown.
//! - **stderr**: `connected to …`, how a connection ended, each reconnection and its delay,
//!   and errors (a refused handshake prints the HTTP status and the start of the body).
//! - **End of stdin**: the client starts the closing handshake (1000) and prints what
//!   arrives until the server's close reply, so the answers to the last lines are not lost
//!   whatever order the server sends control frames in (a server answers a ping at once, but
//!   sends its close reply after everything it queued before). With `--wait-replies N` it
//!   first waits until N messages have arrived on the connection (for answers that come
//!   later, e.g. through a cluster). Either wait is bounded by `--timeout`.
//!
//! Exit status ([`EXIT_CODES`]): 0 after the end of stdin and the close handshake, or when
//! the server closes with 1000 and `--reconnect` is off; 1 on any other end (refused
//! handshake, network error, another close code, a terminal answer or the retry limit with
//! `--reconnect`); 2 for a bad command line (flags or URL); 3 when `--timeout` passed at the
//! end of stdin before the replies (or the close reply) arrived.
//!
//! With `--reconnect`, every end but the end of stdin is followed by a new attempt after the
//! [`Backoff`] delay (full jitter from 0.5 s, doubling, capped at 30 s, reset after 30 s up);
//! 401, 403 and close 1008 stop it. A line that could not be sent is sent again first.
//!
//! Threads: the blocking [`Client`] needs `&mut` both to send and to receive, so one thread
//! owns it and alternates between lines from a stdin thread (a bounded channel) and `recv`
//! with a short read timeout ([`POLL`]). Every wait is a blocking call with a timeout.

use std::io::{self, BufRead, Write};
#[allow(clippy::disallowed_types)] // Not the event loop: see `Lines`.
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use super::Failure;
use crate::config::parse_duration;
use wsloop::client::tls::TlsTrust;
use wsloop::client::{
    Backoff, Client, ClientError, ClientOptions, Decision, Message, WsUrl, random,
};

/// The exit codes, for `wsloop client --help`.
pub(super) const EXIT_CODES: &str = "Exit status:
  0  stdin ended and the close handshake completed (or the server closed with 1000)
  1  the connection failed or ended otherwise: refused handshake (HTTP status on stderr),
     network error, a close code other than 1000, --reconnect gave up
  2  bad command line (flags or URL)
  3  --timeout passed at the end of stdin before the replies (or the close reply) arrived

Example: printf '{\"type\":\"join\",\"room\":\"r1\"}\n' | wsloop client --wait-replies 2 \\
           'ws://127.0.0.1:8080/ws?user_id=v'   # prints welcome and joined, exits 0";

/// The longest line sent as one message; longer lines are split. 16 MiB, the default
/// message limit of wsloop's server.
const MAX_LINE: usize = 16 << 20;
/// How long one `recv` may block before stdin is looked at again.
const POLL: Duration = Duration::from_millis(50);
/// The `recv` timeout while stdin has more lines waiting (stay responsive both ways).
const POLL_BUSY: Duration = Duration::from_millis(1);
/// Lines forwarded per turn before the socket is read again.
const LINES_PER_TURN: usize = 64;
/// Lines read ahead of the connection; the stdin thread waits when it is full.
const LINE_QUEUE: usize = 256;

/// Flags of `wsloop client`.
#[derive(Debug, clap::Args)]
pub(super) struct ClientArgs {
    /// The server: ws://host[:port][/path][?query] or wss://… (TLS).
    url: String,
    /// For wss://: trust the CA certificates in this PEM file instead of the system roots.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<std::path::PathBuf>,
    /// For wss://: accept any server certificate (encrypted, but NOT authenticated).
    #[arg(long)]
    insecure: bool,
    /// Send stdin lines as binary messages, and write binary messages received raw to
    /// stdout (without a separator). Without it: text messages, and binary shown as hex lines.
    #[arg(long)]
    binary: bool,
    /// An extra handshake header, `Name: value`, e.g. `Authorization: Bearer …` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// A subprotocol to offer, in order of preference (repeatable).
    #[arg(long = "protocol", value_name = "NAME")]
    protocols: Vec<String>,
    /// Reconnect after the connection fails or ends: exponential backoff with full jitter
    /// (0.5 s doubling to 30 s); stops on 401, 403 and close 1008.
    #[arg(long)]
    reconnect: bool,
    /// With --reconnect: give up after this many failed attempts in a row [default: never].
    #[arg(long, requires = "reconnect")]
    max_retries: Option<u32>,
    /// Send a ping this often, e.g. 30s; no pong by the next ping ends the connection.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    ping_interval: Option<Duration>,
    /// TCP connect and handshake timeout.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    connect_timeout: Duration,
    /// At the end of stdin, wait until N messages have arrived on the connection (a hub's
    /// `welcome` counts as one), then close: a one-shot mode for scripts.
    #[arg(long, value_name = "N")]
    wait_replies: Option<u64>,
    /// At the end of stdin, the longest wait for the replies (--wait-replies) and the
    /// server's close reply; past it, exit 3.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,
}

/// Connects and runs until stdin ends or the connection ends for good.
pub(super) fn run(args: &ClientArgs) -> Result<(), Failure> {
    WsUrl::parse(&args.url).map_err(Failure::usage)?;
    let options = ClientOptions {
        protocols: args.protocols.clone(),
        headers: args.headers.clone(),
        connect_timeout: args.connect_timeout,
        tls: trust(args.ca.as_ref(), args.insecure),
        ..ClientOptions::default()
    };
    let mut interactive = Interactive {
        args,
        options,
        lines: Lines::spawn(args.binary),
        pending: None,
        received: 0,
    };
    interactive.run()
}

/// `--ca FILE`, `--insecure`, or the system roots.
pub(super) fn trust(ca: Option<&std::path::PathBuf>, insecure: bool) -> TlsTrust {
    match (ca, insecure) {
        (_, true) => TlsTrust::Insecure,
        (Some(file), false) => TlsTrust::CaFile(file.clone()),
        (None, false) => TlsTrust::System,
    }
}

/// One item from stdin.
#[derive(Debug)]
enum Input {
    /// A line without its terminator.
    Line(Vec<u8>),
    /// End of stdin (or a read error, already reported).
    End,
}

/// Lines from the stdin thread.
///
/// `std::sync::mpsc` is on clippy's `disallowed-types` list because the server's event loop
/// owns its data and must not use channels. This is the CLI, not the loop: a thread blocked
/// on stdin handing lines to the thread that owns the connection is the plain design here.
#[allow(clippy::disallowed_types)]
#[derive(Debug)]
struct Lines(Receiver<Input>);

#[allow(clippy::disallowed_types)]
impl Lines {
    /// Starts the stdin thread.
    fn spawn(binary: bool) -> Self {
        let (tx, rx) = sync_channel(LINE_QUEUE);
        thread::spawn(move || read_lines(io::stdin().lock(), binary, &tx));
        Self(rx)
    }

    /// The next item if one is ready.
    fn try_next(&self) -> Option<Input> {
        match self.0.try_recv() {
            Ok(input) => Some(input),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Input::End),
        }
    }

    /// The next item, waiting up to `timeout`.
    fn next_within(&self, timeout: Duration) -> Option<Input> {
        match self.0.recv_timeout(timeout) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Input::End),
        }
    }
}

/// The stdin thread: reads lines until the end, then sends [`Input::End`].
#[allow(clippy::disallowed_types)]
fn read_lines(input: impl BufRead, binary: bool, tx: &SyncSender<Input>) {
    let mut input = input.take(0);
    for number in 1u64.. {
        let mut line = Vec::new();
        input.set_limit(MAX_LINE as u64);
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("wsloop: stdin: {e}");
                break;
            }
        }
        strip_newline(&mut line);
        if !binary && std::str::from_utf8(&line).is_err() {
            eprintln!("wsloop: stdin line {number} is not UTF-8, not sent (see --binary)");
        } else if tx.send(Input::Line(line)).is_err() {
            return;
        }
    }
    let _ = tx.send(Input::End);
}

/// Removes a trailing `\n` or `\r\n`.
fn strip_newline(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// How a connection ended.
#[derive(Debug)]
enum Ended {
    /// Stdin ended and the connection was closed with 1000.
    InputDone,
    /// The connection failed or the server closed it.
    Lost(ClientError),
    /// Stdout failed; the connection was closed.
    Output(io::Error),
    /// Stdin ended but `--timeout` passed before the replies arrived.
    TimedOut(String),
}

/// The client's state across connections.
#[derive(Debug)]
struct Interactive<'a> {
    args: &'a ClientArgs,
    options: ClientOptions,
    lines: Lines,
    /// An item taken from stdin but not handled yet (a line to resend, or the end).
    pending: Option<Input>,
    /// Data messages received on the current connection.
    received: u64,
}

impl Interactive<'_> {
    /// Connects, converses, and reconnects as `--reconnect` says.
    fn run(&mut self) -> Result<(), Failure> {
        let backoff = Backoff {
            max_retries: self.args.max_retries,
            ..Backoff::default()
        };
        let mut failures = 0;
        loop {
            let (error, up_for) = match self.connect() {
                Ok(mut client) => {
                    let started = Instant::now();
                    match self.converse(&mut client) {
                        Ended::InputDone => return Ok(()),
                        Ended::Output(e) => return output_result(e),
                        Ended::TimedOut(why) => return Err(Failure::timed_out(why)),
                        Ended::Lost(e) => (e, Some(started.elapsed())),
                    }
                }
                Err(e) => (e, None),
            };
            if !self.args.reconnect {
                return final_result(error).map_err(Failure::from);
            }
            match backoff.decide(failures, up_for, error.disconnect(), random::unit()) {
                Decision::GiveUp => return Err(give_up(&error).into()),
                Decision::Retry { after, attempt } => {
                    eprintln!("wsloop: {error}; reconnecting in {after:.2?} (retry {attempt})");
                    failures = attempt;
                    if !self.wait(after) {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn connect(&mut self) -> Result<Client, ClientError> {
        let client = Client::connect(&self.args.url, &self.options)?;
        client.set_read_timeout(Some(POLL))?;
        self.received = 0;
        // Like the server's logs: query values (a token) never reach the terminal.
        let url = WsUrl::parse(&self.args.url).map_or_else(|e| e, |u| u.redacted());
        match client.protocol() {
            Some(p) => eprintln!("wsloop: connected to {url} (protocol {p})"),
            None => eprintln!("wsloop: connected to {url}"),
        }
        Ok(client)
    }

    /// Moves lines to the server and messages to stdout until the connection ends.
    fn converse(&mut self, client: &mut Client) -> Ended {
        let mut pinger = self.args.ping_interval.map(Pinger::new);
        loop {
            let busy = match self.forward(client) {
                Ok(busy) => busy,
                Err(ended) => return ended,
            };
            if let Some(Err(e)) = pinger.as_mut().map(|p| p.tick(client)) {
                return Ended::Lost(e);
            }
            let _ = client.set_read_timeout(Some(if busy { POLL_BUSY } else { POLL }));
            match client.recv() {
                Ok(message) => {
                    if let Some(p) = pinger.as_mut() {
                        p.saw(&message);
                    }
                    if let Err(e) = self.print(&message) {
                        let _ = client.close(1000, "");
                        return Ended::Output(e);
                    }
                }
                Err(ClientError::Io(e)) if is_timeout(&e) => {}
                Err(e) => return Ended::Lost(e),
            }
        }
    }

    /// Sends up to [`LINES_PER_TURN`] lines; `Ok(true)` if more may be waiting.
    fn forward(&mut self, client: &mut Client) -> Result<bool, Ended> {
        for _ in 0..LINES_PER_TURN {
            let Some(input) = self.pending.take().or_else(|| self.lines.try_next()) else {
                return Ok(false);
            };
            let Input::Line(line) = input else {
                return Err(self.finish(client));
            };
            let sent = if self.args.binary {
                client.send_binary(&line)
            } else {
                client.send_text(&String::from_utf8_lossy(&line))
            };
            if let Err(e) = sent {
                self.pending = Some(Input::Line(line));
                return Err(Ended::Lost(e));
            }
        }
        Ok(true)
    }

    /// End of stdin: wait for `--wait-replies` messages, then close 1000 and print what
    /// arrives until the server's close reply; all within `--timeout`.
    fn finish(&mut self, client: &mut Client) -> Ended {
        let deadline = Instant::now() + self.args.timeout;
        let wanted = self.args.wait_replies.unwrap_or(0);
        while self.received < wanted {
            if Instant::now() >= deadline {
                let _ = client.close(1000, "");
                let got = self.received;
                let waited = self.args.timeout;
                return Ended::TimedOut(format!(
                    "{got} of {wanted} messages within --timeout {waited:?}"
                ));
            }
            if let Some(ended) = self.receive_one(client) {
                return ended;
            }
        }
        if let Err(e) = client.start_close(1000, "") {
            return Ended::Lost(e);
        }
        while Instant::now() < deadline {
            match self.receive_one(client) {
                Some(Ended::Lost(ClientError::Closed { .. })) if client.is_closed() => {
                    let _ = client.close(1000, "");
                    return Ended::InputDone;
                }
                Some(ended) => return ended,
                None => {}
            }
        }
        let _ = client.close(1000, "");
        let waited = self.args.timeout;
        Ended::TimedOut(format!("no close reply within --timeout {waited:?}"))
    }

    /// Receives and prints one message (or waits one read timeout); `Some` when it ends.
    fn receive_one(&mut self, client: &mut Client) -> Option<Ended> {
        match client.recv() {
            Ok(message) => self.print(&message).err().map(|e| {
                let _ = client.close(1000, "");
                Ended::Output(e)
            }),
            Err(ClientError::Io(e)) if is_timeout(&e) => None,
            Err(e) => Some(Ended::Lost(e)),
        }
    }

    /// Writes a received message to stdout (see the module docs for the format), and
    /// counts it.
    fn print(&mut self, message: &Message) -> io::Result<()> {
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            self.received += 1;
        }
        let mut out = io::stdout().lock();
        match message {
            Message::Text(text) => writeln!(out, "{text}")?,
            Message::Binary(data) if self.args.binary => out.write_all(data)?,
            Message::Binary(data) => writeln!(out, "{}", hex(data))?,
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        }
        out.flush()
    }

    /// Waits out a reconnection delay; `false` if stdin ended meanwhile (nothing to send).
    fn wait(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        while self.pending.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            self.pending = self.lines.next_within(left);
        }
        if matches!(self.pending, Some(Input::End)) {
            return false;
        }
        // A line waits for the next connection; the queue holds the ones after it.
        thread::sleep(deadline.saturating_duration_since(Instant::now()));
        true
    }
}

/// Pings every `every`; a ping still unanswered when the next is due ends the connection.
#[derive(Debug)]
struct Pinger {
    every: Duration,
    next: Instant,
    awaiting: bool,
}

impl Pinger {
    fn new(every: Duration) -> Self {
        Self {
            every,
            next: Instant::now() + every,
            awaiting: false,
        }
    }

    fn tick(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let now = Instant::now();
        if now < self.next {
            return Ok(());
        }
        if self.awaiting {
            let late = format!("no pong within {:?}", self.every);
            return Err(io::Error::new(io::ErrorKind::TimedOut, late).into());
        }
        client.ping(b"wsloop")?;
        self.awaiting = true;
        self.next = now + self.every;
        Ok(())
    }

    fn saw(&mut self, message: &Message) {
        if matches!(message, Message::Pong(_)) {
            self.awaiting = false;
        }
    }
}

/// Without `--reconnect`: a close 1000 from the server is a normal end, anything else not.
fn final_result(error: ClientError) -> Result<(), String> {
    match error {
        ClientError::Closed { code: 1000, .. } => {
            eprintln!("wsloop: {error}");
            Ok(())
        }
        other => Err(other.to_string()),
    }
}

/// Why `--reconnect` stops.
fn give_up(error: &ClientError) -> String {
    if error.disconnect().is_terminal() {
        format!("{error}; giving up (retrying cannot change this answer)")
    } else {
        format!("{error}; giving up (--max-retries reached)")
    }
}

/// A closed stdout (`| head`) is a normal end; other stdout errors are not.
fn output_result(error: io::Error) -> Result<(), Failure> {
    if error.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(format!("stdout: {error}").into())
    }
}

/// Parses `--header 'Name: value'`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `Name: value`"))?;
    let name = name.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`{name}` is not a header name"));
    }
    if value.contains(['\r', '\n']) {
        return Err("a header value cannot contain a line break".into());
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Lowercase hex of `data`.
fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_refuse_injection() {
        assert_eq!(
            parse_header("Authorization:  Bearer abc "),
            Ok(("Authorization".into(), "Bearer abc".into()))
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": value").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header("X: a\r\nEvil: 1").is_err());
    }

    #[test]
    fn lines_lose_their_terminator_only() {
        for (raw, line) in [
            (&b"a\n"[..], &b"a"[..]),
            (b"a\r\n", b"a"),
            (b"a", b"a"),
            (b"a\r", b"a\r"),
            (b"\n", b""),
        ] {
            let mut v = raw.to_vec();
            strip_newline(&mut v);
            assert_eq!(v, line);
        }
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
