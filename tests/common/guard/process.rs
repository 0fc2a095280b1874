//! The real `wsloop` binary as a child process: one-shot invocations with their output
//! (`wsloop token`, `wsloop serve --print-config`, refused configurations) and a running
//! `wsloop serve` on a free loopback port, always killed when dropped.

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::super::{Client, HttpResponse, Request};
use super::request_at;

/// How long a child process gets to start listening or to exit on its own.
pub(crate) const PROCESS_TIMEOUT: Duration = Duration::from_secs(15);

/// A unique path in the temp directory for this test process.
pub(crate) fn temp_path(stem: &str, ext: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!(
        "wsloop-guard-{}-{stem}-{n}.{ext}",
        std::process::id()
    ))
}

/// A file in the temp directory, removed when dropped.
pub(crate) struct TempFile {
    /// Its path.
    pub(crate) path: PathBuf,
}

impl TempFile {
    /// Writes `text` to a new temp file ending in `.ext`.
    pub(crate) fn new(ext: &str, text: &str) -> Self {
        let path = temp_path("file", ext);
        fs::write(&path, text).expect("write temp file");
        Self { path }
    }

    /// Its path as a `&str` (temp paths are UTF-8 here).
    pub(crate) fn as_str(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A `wsloop` command with no `WSLOOP_*` or `RUST_LOG` inherited from the test's caller.
fn wsloop_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    wsloop_command_under(&[], args, env)
}

/// [`wsloop_command`] run by a wrapper that execs it (`prlimit --nofile=256:256 --`), so the
/// child's pid is still wsloop's.
fn wsloop_command_under(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Command {
    let binary = env!("CARGO_BIN_EXE_wsloop");
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command.args(args).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        let inherited = name.to_string_lossy();
        if inherited.starts_with("WSLOOP_") || inherited == "RUST_LOG" {
            command.env_remove(&name);
        }
    }
    command.envs(env.iter().copied());
    command
}

/// What a finished `wsloop` invocation printed.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Its exit status; `None` if it was still running at the deadline (and was killed).
    pub(crate) status: Option<ExitStatus>,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Finished {
    /// Asserts a zero exit status.
    pub(crate) fn assert_success(&self) {
        assert!(
            self.status.is_some_and(|s| s.success()),
            "wsloop failed ({:?}); stderr:\n{}",
            self.status,
            self.stderr
        );
    }
}

/// Runs `wsloop ARGS` to completion (killed and failed after [`PROCESS_TIMEOUT`]).
pub(crate) fn run_wsloop(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let finished = run_wsloop_within(args, env, PROCESS_TIMEOUT);
    assert!(
        finished.status.is_some(),
        "wsloop {args:?} still running after {PROCESS_TIMEOUT:?}; stderr:\n{}",
        finished.stderr
    );
    finished
}

/// Runs `wsloop ARGS` for at most `within`; a process still running then is killed and
/// reported with `status: None`.
pub(crate) fn run_wsloop_within(args: &[&str], env: &[(&str, &str)], within: Duration) -> Finished {
    run_wsloop_fed(args, env, within, Stdio::null())
}

/// Runs `wsloop ARGS` with `input` as its stdin (killed and failed after
/// [`PROCESS_TIMEOUT`]), like `printf INPUT | wsloop ARGS`.
pub(crate) fn run_wsloop_stdin(args: &[&str], env: &[(&str, &str)], input: &str) -> Finished {
    let file = TempFile::new("stdin", input);
    let stdin = File::open(&file.path).expect("open stdin file");
    let finished = run_wsloop_fed(args, env, PROCESS_TIMEOUT, stdin.into());
    assert!(
        finished.status.is_some(),
        "wsloop {args:?} still running after {PROCESS_TIMEOUT:?}; stderr:\n{}",
        finished.stderr
    );
    finished
}

fn run_wsloop_fed(args: &[&str], env: &[(&str, &str)], within: Duration, stdin: Stdio) -> Finished {
    let out_path = temp_path("stdout", "txt");
    let err_path = temp_path("stderr", "txt");
    let mut command = wsloop_command(args, env);
    command
        .stdin(stdin)
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let mut child = command.spawn().expect("spawn wsloop");
    let status = wait_child(&mut child, within);
    let read = |p: &PathBuf| fs::read_to_string(p).unwrap_or_default();
    let (stdout, stderr) = (read(&out_path), read(&err_path));
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    Finished {
        status,
        stdout,
        stderr,
    }
}

/// Waits up to `within` for `child` to exit; kills and reaps it if it does not.
fn wait_child(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A free loopback port, as far as the kernel can tell right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// `wsloop serve` running as a child process on a loopback port; killed when dropped.
///
/// Its stderr (the log) goes to a file read by [`Served::log`].
pub(crate) struct Served {
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    log_path: PathBuf,
    exited: Option<ExitStatus>,
}

impl Served {
    /// Starts `wsloop serve ARGS --listen 127.0.0.1:PORT` and waits until `/healthz`
    /// answers. A port taken between the probe and the bind is retried with another.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_under(&[], args, env)
    }

    /// [`Served::start`] under a wrapper that execs wsloop (`prlimit --nofile=256:256 --`).
    pub(crate) fn start_under(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Self {
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let listen = addr.to_string();
            let mut full = vec!["serve", "--listen", listen.as_str()];
            full.extend_from_slice(args);
            let log_path = temp_path("serve", "log");
            let mut command = wsloop_command_under(wrapper, &full, env);
            command
                .stdout(Stdio::null())
                .stderr(File::create(&log_path).expect("log file"));
            let mut served = Self {
                child: command.spawn().expect("spawn wsloop serve"),
                addr,
                log_path,
                exited: None,
            };
            if served.wait_ready() {
                return served;
            }
            let log = served.log();
            assert!(
                log.contains("cannot listen"),
                "wsloop serve {args:?} exited before listening:\n{log}"
            );
        }
        panic!("no free port after 5 attempts");
    }

    /// Polls `/healthz` until it answers 200 (true) or the process exits (false).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return false;
            }
            if healthz_ok(self.addr) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "wsloop serve not ready in {PROCESS_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`, ...) with `kill(1)`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits up to `within` for the process to exit; panics (after killing it) if it does not.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        match wait_child(&mut self.child, within) {
            Some(status) => {
                self.exited = Some(status);
                status
            }
            None => panic!(
                "wsloop still running {within:?} later; log:\n{}",
                self.log()
            ),
        }
    }

    /// Whether the process is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.exited.is_none() && self.child.try_wait().expect("try_wait").is_none()
    }

    /// Everything it has logged so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A raw client connected to it.
    pub(crate) fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends a request on a new connection and reads the answer up to EOF.
    pub(crate) fn request(&self, request: &Request) -> HttpResponse {
        request_at(self.addr, request)
    }
}

/// One `GET /healthz`; false on any failure (not listening yet).
fn healthz_ok(addr: SocketAddr) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = Request::get("/healthz").to_bytes();
    if stream.write_all(&request).is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/1.1 200")
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_file(&self.log_path);
    }
}
