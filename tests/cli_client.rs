//! `wsloop client` as a user runs it: the real binary against a server started in-process on
//! loopback. Lines are echoed, `--binary` is raw, `--reconnect` comes back after a restart
//! and stops on a terminal answer, and a refused handshake fails with its status.
//!
//! The binary's stdout and stderr are read by two threads into a channel, so every wait has
//! a deadline and a stuck client fails the test instead of hanging it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
// Test plumbing, not the event loop: threads reading the child's pipes feed the test.
#[allow(clippy::disallowed_types)]
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use wsloop::server::{Server, ServerConfig, Spawned};

/// How long any expected output or exit may take.
const WAIT: Duration = Duration::from_secs(15);

/// A server on `addr` (port 0 for any) that exits when dropped.
struct Running(Option<Spawned>);

impl Running {
    fn start(addr: SocketAddr) -> Self {
        let config = ServerConfig {
            listen: addr,
            handshake_rate: None,
            max_connections_per_ip: 0,
            subprotocols: vec!["v2.echo".into()],
            ..ServerConfig::default()
        };
        // A port just released may take a moment to bind again.
        let deadline = Instant::now() + WAIT;
        loop {
            match Server::spawn(config.clone()) {
                Ok(spawned) => return Self(Some(spawned)),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("bind {addr}: {e}; retrying");
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("server did not start on {addr}: {e}"),
            }
        }
    }

    fn addr(&self) -> SocketAddr {
        self.0.as_ref().expect("running").local_addr
    }

    fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr())
    }

    /// Stops the loop at once (its connections are dropped) and waits for its thread.
    fn stop(&mut self) {
        if let Some(spawned) = self.0.take() {
            let _ = spawned.handle.exit_now();
            let _ = spawned.thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Output of the child, as it arrives.
enum Output {
    Stdout(Vec<u8>),
    Stderr(String),
}

/// A running `wsloop client`, killed if the test ends early.
#[allow(clippy::disallowed_types)]
struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    output: Receiver<Output>,
    stdout: Vec<u8>,
    stderr: String,
}

#[allow(clippy::disallowed_types)]
impl Cli {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsloop"))
            .arg("client")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wsloop starts");
        let (tx, output) = channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        pump(stdout, tx.clone(), Output::Stdout);
        pump(stderr, tx, |bytes| {
            Output::Stderr(String::from_utf8_lossy(&bytes).into_owned())
        });
        Self {
            stdin: child.stdin.take(),
            child,
            output,
            stdout: Vec::new(),
            stderr: String::new(),
        }
    }

    fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).expect("write stdin");
        stdin.write_all(b"\n").expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Takes what has arrived, waiting up to `timeout`; `false` once both pipes are closed.
    fn collect(&mut self, timeout: Duration) -> bool {
        match self.output.recv_timeout(timeout) {
            Ok(Output::Stdout(bytes)) => self.stdout.extend_from_slice(&bytes),
            Ok(Output::Stderr(text)) => self.stderr.push_str(&text),
            Err(e) => return e == std::sync::mpsc::RecvTimeoutError::Timeout,
        }
        true
    }

    /// Waits until `done(stdout, stderr)` holds.
    fn wait_for(&mut self, what: &str, done: impl Fn(&[u8], &str) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.stdout, &self.stderr) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero() && self.collect(left.min(Duration::from_millis(100))),
                "no {what} within {WAIT:?}\nstdout: {:?}\nstderr: {}",
                String::from_utf8_lossy(&self.stdout),
                self.stderr
            );
        }
    }

    fn wait_stdout(&mut self, expected: &str) {
        self.wait_for(&format!("{expected:?} on stdout"), |out, _| {
            String::from_utf8_lossy(out).contains(expected)
        });
    }

    fn wait_stderr(&mut self, expected: &str, times: usize) {
        self.wait_for(&format!("{expected:?} ×{times} on stderr"), |_, err| {
            err.matches(expected).count() >= times
        });
    }

    /// Closes stdin and waits for the exit and the end of the output.
    fn finish(mut self) -> (ExitStatus, String, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "wsloop client did not exit within {WAIT:?} after stdin closed\nstderr: {}",
                self.stderr
            );
            self.collect(Duration::from_millis(20));
        };
        while self.collect(Duration::from_secs(1)) && Instant::now() < deadline {}
        let stdout = String::from_utf8_lossy(&self.stdout).into_owned();
        (status, stdout, std::mem::take(&mut self.stderr))
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies a pipe into the channel, chunk by chunk, until it closes.
#[allow(clippy::disallowed_types)]
fn pump(mut pipe: impl Read + Send + 'static, tx: Sender<Output>, wrap: fn(Vec<u8>) -> Output) {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            if tx.send(wrap(chunk[..n].to_vec())).is_err() {
                return;
            }
        }
    });
}

#[test]
fn lines_are_echoed_and_end_of_stdin_closes_cleanly() {
    let server = Running::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let url = server.url("/echo");
    let mut cli = Cli::start(&["--protocol", "v2.echo", "-H", "X-Test: 1", &url]);
    cli.wait_stderr("(protocol v2.echo)", 1);
    cli.send_line("hello");
    cli.wait_stdout("hello\n");
    cli.send_line("wörld");
    cli.send_line("");
    cli.send_line("last, right before the end");
    let (status, stdout, stderr) = cli.finish();
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    assert_eq!(stdout, "hello\nwörld\n\nlast, right before the end\n");
}

#[test]
fn binary_mode_sends_lines_as_binary_and_prints_raw_bytes() {
    let server = Running::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut cli = Cli::start(&["--binary", &server.url("/echo")]);
    cli.send_line("abc");
    cli.send_line("\u{1}\u{2}");
    let (status, stdout, stderr) = cli.finish();
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    assert_eq!(stdout, "abc\u{1}\u{2}", "raw bytes, no separator");
}

#[test]
fn reconnect_comes_back_after_the_server_restarts() {
    let mut server = Running::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let addr = server.addr();
    let url = server.url("/echo");
    let mut cli = Cli::start(&["--reconnect", &url]);
    cli.send_line("one");
    cli.wait_stdout("one\n");
    server.stop();
    cli.wait_stderr("reconnecting in", 1);
    let _again = Running::start(addr);
    cli.wait_stderr("connected to", 2);
    cli.send_line("two");
    cli.wait_stdout("two\n");
    let (status, stdout, stderr) = cli.finish();
    assert!(status.success(), "exit {status}; stderr: {stderr}");
    assert_eq!(stdout, "one\ntwo\n");
    assert!(
        stderr.contains("(retry 1)"),
        "each retry is logged: {stderr}"
    );
}

#[test]
fn reconnect_stops_on_a_terminal_answer() {
    let server = Running::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let url = server.url("/echo");
    // Not the server's own origin: 403, which retrying cannot change.
    let mut cli = Cli::start(&["--reconnect", "-H", "Origin: http://evil.example", &url]);
    cli.wait_stderr("403", 1);
    let (status, _, stderr) = cli.finish();
    assert!(!status.success(), "a 403 is a failure: {stderr}");
    assert!(
        !stderr.contains("reconnecting in"),
        "403 is not retried: {stderr}"
    );
    assert!(stderr.contains("giving up"), "{stderr}");
}

#[test]
fn a_refused_handshake_prints_the_status_and_fails() {
    let server = Running::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let cli = Cli::start(&[&server.url("/no-such-path")]);
    let (status, stdout, stderr) = cli.finish();
    assert!(!status.success(), "exit {status}");
    assert!(stderr.contains("404"), "status on stderr: {stderr}");
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
}

#[test]
fn reconnect_gives_up_at_the_retry_limit() {
    let mut server = Running::start(SocketAddr::from(([127, 0, 0, 1], 0)));
    let url = server.url("/echo");
    server.stop();
    let mut cli = Cli::start(&["--reconnect", "--max-retries", "2", &url]);
    cli.wait_stderr("giving up (--max-retries reached)", 1);
    let (status, _, stderr) = cli.finish();
    assert!(!status.success(), "exit {status}");
    assert_eq!(stderr.matches("reconnecting in").count(), 2, "{stderr}");
}
