//! Client conformance: runs every case an Autobahn fuzzing server offers through
//! [`wsloop::client::Client`], echoing as the suite expects.
//!
//! ```text
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 [AGENT]
//! ```
//!
//! The fuzzing server (`kosoku -m fuzzingserver`, or Autobahn's `wstest -m fuzzingserver`)
//! speaks a small protocol over WebSocket connections:
//!
//! 1. `/getCaseCount` sends the number of cases as one text message, then closes;
//! 2. `/runCase?case=N&agent=AGENT` (N from 1) plays case N: the client echoes every text
//!    and binary message back unchanged until the server closes, and answers the close
//!    (pings are answered by the client itself, as for any application);
//! 3. `/updateReports?agent=AGENT` ends the run and makes the server write its reports.
//!
//! Everything the suite checks (framing, fragmentation, UTF-8, control frames, the closing
//! handshake) is done by the client's sans-IO session; this program only echoes. It exits
//! non-zero if it could not talk to the server at all or a case could not be connected;
//! whether the cases *passed* is for the server's report (`index.json`) to say.

use std::io;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use wsloop::client::{Client, ClientError, ClientOptions, Message};

/// The agent name the reports are filed under, unless given on the command line.
const DEFAULT_AGENT: &str = "wsloop";
/// How long a case may go without a message before it is abandoned (a hang, not a pass).
const CASE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// After the close handshake, how long to wait for the server to close TCP first (§7.1.1:
/// "the server SHOULD close the underlying TCP connection first").
const LINGER: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(base) = args.first().map(|u| u.trim_end_matches('/')) else {
        eprintln!("usage: autobahn_client ws://HOST:PORT [AGENT]");
        return ExitCode::from(2);
    };
    let agent = args.get(1).map_or(DEFAULT_AGENT, String::as_str);
    match run(base, agent) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("autobahn_client: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs all cases, then asks for the reports.
fn run(base: &str, agent: &str) -> Result<(), String> {
    let count = case_count(base)?;
    eprintln!("autobahn_client: {count} cases at {base}, agent {agent}");
    let started = Instant::now();
    let mut unreachable = Vec::new();
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let case_started = Instant::now();
        let outcome = run_case(&url).unwrap_or_else(|e| {
            unreachable.push(case);
            format!("could not connect: {e}")
        });
        eprintln!(
            "case {case}/{count}: {outcome} ({} ms)",
            case_started.elapsed().as_millis()
        );
    }
    update_reports(base, agent)?;
    eprintln!(
        "autobahn_client: {count} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if unreachable.is_empty() {
        Ok(())
    } else {
        Err(format!("cases {unreachable:?} could not be connected"))
    }
}

/// `/getCaseCount`: one text message holding a number.
fn case_count(base: &str) -> Result<u32, String> {
    let url = format!("{base}/getCaseCount");
    let mut client = Client::connect(&url, &options()).map_err(|e| format!("{url}: {e}"))?;
    let count = match client.recv() {
        Ok(Message::Text(text)) => text
            .trim()
            .parse()
            .map_err(|_| format!("{url}: `{text}` is not a case count"))?,
        Ok(other) => return Err(format!("{url}: expected the count, got {other:?}")),
        Err(e) => return Err(format!("{url}: {e}")),
    };
    finish(&mut client);
    Ok(count)
}

/// `/updateReports`: the server writes its reports and ends the run.
fn update_reports(base: &str, agent: &str) -> Result<(), String> {
    let url = format!("{base}/updateReports?agent={agent}");
    let mut client = Client::connect(&url, &options()).map_err(|e| format!("{url}: {e}"))?;
    finish(&mut client);
    Ok(())
}

/// One case: echo until the connection ends; returns how it ended, for the log.
fn run_case(url: &str) -> Result<String, ClientError> {
    let mut client = Client::connect(url, &options())?;
    client.set_read_timeout(Some(CASE_IDLE_TIMEOUT))?;
    let ended = echo(&mut client);
    linger(&mut client);
    Ok(ended)
}

/// Echoes text and binary messages until the server closes or the connection fails.
fn echo(client: &mut Client) -> String {
    loop {
        let sent = match client.recv() {
            Ok(Message::Text(text)) => client.send_text(&text),
            Ok(Message::Binary(data)) => client.send_binary(&data),
            Ok(Message::Ping(_) | Message::Pong(_)) => Ok(()),
            Err(ClientError::Closed { code, reason }) => {
                return format!("closed {code} {reason}").trim_end().to_owned();
            }
            Err(ClientError::Io(e)) if is_timeout(&e) => {
                return format!("no message for {CASE_IDLE_TIMEOUT:?}, abandoned");
            }
            // A protocol error: the session has already sent the close with its code.
            Err(e) => return e.to_string(),
        };
        match sent {
            // The server's close may be in flight; the next `recv` reads it.
            Ok(()) | Err(ClientError::Usage(_)) => {}
            Err(e) => return format!("send failed: {e}"),
        }
    }
}

/// Reads (and ignores) what is left until the server closes TCP, or for at most [`LINGER`].
fn linger(client: &mut Client) {
    if client.set_read_timeout(Some(LINGER)).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    while Instant::now() < deadline && client.recv().is_ok() {}
}

/// Waits for the server's close on a helper connection, answers it, and lingers.
fn finish(client: &mut Client) {
    let _ = client.set_read_timeout(Some(LINGER));
    while client.recv().is_ok() {}
    linger(client);
}

fn options() -> ClientOptions {
    ClientOptions::default()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
