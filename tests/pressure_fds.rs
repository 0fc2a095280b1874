//! Running out of file descriptors, against the real binary under `prlimit`: at startup the
//! server warns (with the numbers) that its descriptor limit is below what
//! `max_connections` needs; when `accept` fails with EMFILE, every client still gets a 101
//! or a prompt refusal (none is left hanging in the backlog), the refusals are counted in
//! `/metrics`, and once the clients leave, new ones are served.

mod common;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::guard::{Metrics, Served};
use common::{Request, SETTLE};

/// The descriptor limit the server runs under (soft and hard).
const NOFILE: &str = "--nofile=256:256";
/// Clients opened at once: well past what 256 descriptors can hold.
const CLIENTS: usize = 400;
/// How long a client may wait for its answer before it counts as hanging.
const PROMPT: Duration = Duration::from_secs(5);

/// What a client got back.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Upgraded,
    /// 503 with a `Retry-After`.
    Unavailable,
    /// Closed (EOF or reset) without an answer.
    Closed,
    /// Anything else: the head as received.
    Other(String),
    /// Nothing by the deadline.
    Hung,
}

/// Reads one response head from `stream`, giving up at `deadline`.
fn outcome(stream: &mut TcpStream, deadline: Instant) -> Outcome {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Hung;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Outcome::Closed,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Outcome::Hung;
            }
            Err(_) => return Outcome::Closed,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    if text.starts_with("HTTP/1.1 101") {
        Outcome::Upgraded
    } else if text.starts_with("HTTP/1.1 503") && text.contains("Retry-After: ") {
        Outcome::Unavailable
    } else {
        Outcome::Other(text)
    }
}

/// Connects and sends an upgrade request to `/echo`; a connect that times out (the
/// backlog is full because nobody accepts) hangs. A full backlog also drops SYNs for a
/// moment when clients connect faster than a debug build accepts, hence the second
/// chances the kernel gives a SYN (after 1 s, then 3 s) before this counts as hanging.
fn open(addr: SocketAddr) -> Result<TcpStream, Outcome> {
    let mut stream = match TcpStream::connect_timeout(&addr, PROMPT) {
        Ok(stream) => stream,
        Err(e) if e.kind() == ErrorKind::TimedOut => return Err(Outcome::Hung),
        Err(_) => return Err(Outcome::Closed),
    };
    match stream.write_all(&Request::upgrade("/echo").to_bytes()) {
        Ok(()) => Ok(stream),
        Err(_) => Err(Outcome::Closed),
    }
}

/// Upgrades a new client once the server has descriptors again.
fn served_again(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if let Ok(mut stream) = open(addr)
            && outcome(&mut stream, Instant::now() + PROMPT) == Outcome::Upgraded
        {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn every_client_is_answered_when_descriptors_run_out() {
    let served = Served::start_under(
        &["prlimit", NOFILE, "--"],
        &["--max-connections-per-ip", "0", "--handshake-rate", "0"],
        &[("RUST_LOG", "warn")],
    );
    let log = served.log();
    assert!(
        log.contains("RLIMIT_NOFILE") && log.contains("256") && log.contains("10000"),
        "no warning about the descriptor limit:\n{log}"
    );

    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let client = open(served.addr);
        let hung = client.as_ref().is_err_and(|e| *e == Outcome::Hung);
        clients.push(client);
        if hung {
            break;
        }
    }
    let deadline = Instant::now() + PROMPT;
    let outcomes: Vec<Outcome> = clients
        .iter_mut()
        .map(|c| match c {
            Ok(stream) => outcome(stream, deadline),
            Err(e) => std::mem::replace(e, Outcome::Closed),
        })
        .collect();
    let count = |o: &Outcome| outcomes.iter().filter(|x| *x == o).count();
    let (upgraded, unavailable) = (count(&Outcome::Upgraded), count(&Outcome::Unavailable));
    let others: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Other(_) | Outcome::Hung))
        .collect();
    assert!(
        others.is_empty(),
        "{} clients without a prompt 101 or refusal ({upgraded} upgraded, {unavailable} \
         refused): {:?}",
        others.len(),
        others.iter().take(3).collect::<Vec<_>>()
    );
    assert!(upgraded >= 200, "only {upgraded} upgraded");
    assert!(unavailable > 0, "no 503 answers: {outcomes:?}");
    drop(clients);

    assert!(
        served_again(served.addr),
        "not served after the clients left"
    );
    let metrics = served.request(&Request::get("/metrics"));
    let metrics = Metrics::parse(&String::from_utf8_lossy(&metrics.body));
    let counted = metrics.get("wsloop_accept_fd_exhausted_total");
    assert!(
        counted >= unavailable as f64,
        "{counted} counted, {unavailable} refused"
    );
}
