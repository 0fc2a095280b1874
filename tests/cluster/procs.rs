//! Child processes that cannot outlive the test, a temp directory that is removed, and the
//! binaries the cluster tests need.

use std::fs::{self, File};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The full path of `name` (searched in `PATH`, then the sbin directories, where Debian
/// puts nginx); fails the test with what to do if it is not installed.
pub(crate) fn require(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').chain(["/usr/sbin", "/usr/bin", "/sbin"]);
    for dir in dirs.filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed: run ./scripts/test, which installs the Debian packages \
         redis-server, nginx and haproxy that the cluster tests need"
    );
}

/// A free loopback port, as far as the kernel can tell right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether a server listens on loopback `port`. A connection whose peer is itself does
/// not count: probing a free port in the ephemeral range can pick that very port as its
/// source, and the kernel then connects the socket to itself (TCP simultaneous open),
/// which looks like a listener until the real server's connection is reset.
pub(crate) fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port))
        .is_ok_and(|stream| stream.local_addr().ok() != stream.peer_addr().ok())
}

/// A fresh directory under the system temp directory, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `wsloop-<stem>-<pid>-<n>`.
    pub(crate) fn new(stem: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("wsloop-{stem}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the temp directory");
        Self(dir)
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped. Its stdout and stderr
/// go to `log`, whose end is printed if the test is failing.
pub(crate) struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Starts `command` with its output appended to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> Self {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the log file");
        let err = out.try_clone().expect("clone the log file");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // What the tests' caller has set must not change the nodes' configuration.
            .env_remove("RUST_LOG");
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("WSLOOP_") {
                command.env_remove(&var);
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            exited: None,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `KILL`, …) to this process only, with `kill(1)`.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(
            status.success(),
            "kill -{name} {} ({}) failed",
            self.pid(),
            self.name
        );
    }

    /// Whether it has exited (and reaps it if so).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    /// Waits up to `within` for it to exit; fails the test if it does not.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running {within:?} later",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it at once (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// The last `lines` lines of its log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (pid {}), end of {} ----\n{}",
                self.name,
                self.pid(),
                self.log.display(),
                self.log_tail(40)
            );
        }
    }
}
