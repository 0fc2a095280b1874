//! The three kinds of server a cluster test runs: `redis-server` (no persistence), `wsloop
//! serve` nodes, and `nginx` with the committed `deploy/nginx.conf`, ports filled in.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::peer::http;
use super::procs::{Proc, free_port, listening, require};
use super::{API_KEY, PATIENCE, eventually};

/// Waits until something accepts TCP connections on `port`; false if `proc` exits first.
fn wait_listening(proc: &mut Proc, what: &str, port: u16) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !listening(port) {
        if proc.exited().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "{what} not listening on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Starts `spawn(port)` on a free port until it listens: a port taken by another process
/// between the probe and the bind (other tests run on this machine too) is retried.
fn start_on_free_port(what: &str, mut spawn: impl FnMut(u16) -> Proc) -> (Proc, u16) {
    let mut log = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut proc = spawn(port);
        if wait_listening(&mut proc, what, port) {
            return (proc, port);
        }
        log = proc.log_tail(20);
    }
    panic!("{what} exited before listening, 5 times; its log ends:\n{log}");
}

/// `redis-server` on a loopback port, without RDB snapshots or AOF: a restart loses
/// everything, as a real Redis outage without persistence does.
pub(crate) struct Redis {
    proc: Proc,
    /// Its port.
    pub(crate) port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl Redis {
    /// Starts it in `dir` on a free port and waits for `PING`.
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// Starts it with `extra` arguments after the defaults (they win: `--appendonly yes`
    /// turns AOF on); a restart keeps them.
    pub(crate) fn start_with(dir: &Path, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let (proc, port) =
            start_on_free_port("redis-server", |port| Self::spawn(dir, port, &extra));
        let mut redis = Self {
            proc,
            port,
            dir: dir.to_owned(),
            extra,
        };
        redis.wait_pong();
        redis
    }

    fn spawn(dir: &Path, port: u16, extra: &[String]) -> Proc {
        let mut command = Command::new(require("redis-server"));
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
        command.args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        command.arg("--dir").arg(dir);
        command.args(extra);
        Proc::spawn("redis-server", command, &dir.join("redis.log"))
    }

    /// Runs one command on a fresh connection and returns its reply.
    pub(crate) fn command(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).expect("redis url");
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to redis");
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query(&mut conn)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    fn wait_pong(&mut self) {
        let port = self.port;
        if !wait_listening(&mut self.proc, "redis-server", port) {
            panic!("redis-server exited:\n{}", self.proc.log_tail(20));
        }
        eventually("redis answers PING", || {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            stream.write_all(b"PING\r\n").ok()?;
            let mut answer = [0u8; 7];
            stream.read_exact(&mut answer).ok()?;
            (&answer == b"+PONG\r\n").then_some(())
        });
    }

    /// `redis://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL (its data is gone: there is no persistence).
    pub(crate) fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts it again on the same port, empty.
    pub(crate) fn restart(&mut self) {
        self.proc.kill();
        self.proc = Self::spawn(&self.dir, self.port, &self.extra);
        self.wait_pong();
    }
}

/// One `wsloop serve` node, clustered over Redis, on a loopback port.
pub(crate) struct Node {
    proc: Proc,
    /// Its `--node-id`.
    pub(crate) id: String,
    /// Its port.
    pub(crate) port: u16,
    args: Vec<String>,
    log: PathBuf,
}

impl Node {
    /// The last `lines` lines of its log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.proc.log_tail(lines)
    }

    /// Starts node `id` joined to `redis`, with per-IP and rate limits off (every client
    /// comes from one address, nginx's) and the API key on; waits until it is ready
    /// (connected to Redis).
    pub(crate) fn start(dir: &Path, id: &str, redis: &Redis) -> Self {
        Self::start_with(dir, id, redis, &[])
    }

    /// [`Node::start`] with flags changed: each `(flag, value)` replaces that flag's value
    /// or is added (`("--max-connections-per-ip", "1")` turns the per-IP limit back on).
    pub(crate) fn start_with(dir: &Path, id: &str, redis: &Redis, flags: &[(&str, &str)]) -> Self {
        let mut args: Vec<String> = [
            "serve",
            "--node-id",
            id,
            "--rate-limit",
            "off",
            "--handshake-rate",
            "0",
            "--max-connections-per-ip",
            "0",
            "--api-key",
            API_KEY,
            "--log-level",
            "info",
            "--redis-url",
            &redis.url(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for (flag, value) in flags {
            match args.iter().position(|a| a == flag) {
                Some(i) => args[i + 1] = (*value).to_owned(),
                None => args.extend([(*flag).to_owned(), (*value).to_owned()]),
            }
        }
        let log = dir.join(format!("{id}.log"));
        let (proc, port) = start_on_free_port(&format!("node {id}"), |port| {
            let mut args = args.clone();
            args.extend(["--listen".to_owned(), format!("127.0.0.1:{port}")]);
            Self::spawn(id, &args, &log)
        });
        args.extend(["--listen".to_owned(), format!("127.0.0.1:{port}")]);
        let mut node = Self {
            proc,
            id: id.to_owned(),
            port,
            args,
            log,
        };
        node.wait_ready();
        node
    }

    fn spawn(id: &str, args: &[String], log: &Path) -> Proc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsloop"));
        command.args(args);
        Proc::spawn(&format!("wsloop node {id}"), command, log)
    }

    /// Waits for `/readyz` to say `ready`: listening, and connected to Redis.
    fn wait_ready(&mut self) {
        let port = self.port;
        if !wait_listening(&mut self.proc, &format!("node {}", self.id), port) {
            panic!("node {} exited:\n{}", self.id, self.proc.log_tail(20));
        }
        eventually(&format!("node {} ready", self.id), || {
            let (status, body) = http(port, "GET", "/readyz", &[], "");
            (status == 200 && body.trim() == "ready").then_some(())
        });
    }

    /// `ws://127.0.0.1:PORT/ws?user_id=USER`, straight to this node.
    pub(crate) fn ws_url(&self, user: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?user_id={user}", self.port)
    }

    /// Sends a signal (`STOP`, `CONT`, …) to the node's process.
    pub(crate) fn signal(&self, name: &str) {
        self.proc.signal(name);
    }

    /// Sends SIGTERM: a graceful drain (close 1001 to every client), then exit.
    pub(crate) fn terminate(&self) {
        self.proc.signal("TERM");
    }

    /// Waits for the process to exit and asserts it exited cleanly.
    pub(crate) fn wait_clean_exit(&mut self) {
        let status = self.proc.wait_exit(PATIENCE);
        assert!(status.success(), "node {} exited with {status}", self.id);
    }

    /// Kills it at once (`kill -9`) and reaps it.
    pub(crate) fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the node again with the same flags on the same port (after it exited).
    pub(crate) fn restart(&mut self) {
        assert!(
            self.proc.exited().is_some(),
            "restart a node that has exited"
        );
        self.proc = Self::spawn(&self.id, &self.args, &self.log);
        self.wait_ready();
    }

    /// The `hub_connections` figure of `/stats`.
    pub(crate) fn hub_connections(&self) -> u64 {
        let (status, body) = http(self.port, "GET", "/stats", &[], "");
        assert_eq!(status, 200, "/stats of {}: {body}", self.id);
        let stats: serde_json::Value = serde_json::from_str(&body).expect("/stats is JSON");
        stats["hub_connections"].as_u64().expect("hub_connections")
    }

    /// The value of an unlabelled metric in `/metrics`.
    pub(crate) fn metric(&self, name: &str) -> Option<f64> {
        let (status, body) = http(self.port, "GET", "/metrics", &[], "");
        assert_eq!(status, 200, "/metrics of {}", self.id);
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }

    /// `GET /readyz`: (status, body without its newline).
    pub(crate) fn readyz(&self) -> (u16, String) {
        let (status, body) = http(self.port, "GET", "/readyz", &[], "");
        (status, body.trim_end().to_owned())
    }
}

/// The committed load-balancer configuration.
const NGINX_CONF: &str = include_str!("../../deploy/nginx.conf");
/// Where `deploy/nginx.conf` listens and where its three nodes are.
const CONF_LISTEN: &str = "127.0.0.1:8080;";
const CONF_NODES: [&str; 3] = ["127.0.0.1:8081 ", "127.0.0.1:8082 ", "127.0.0.1:8083 "];

/// `nginx` running `deploy/nginx.conf` in front of three nodes, as the current user, in the
/// foreground and as a single process (`master_process off`: no worker can outlive it),
/// with its pid file, logs and temp files in its own prefix directory.
pub(crate) struct Nginx {
    proc: Proc,
    /// Its port.
    pub(crate) port: u16,
}

impl Nginx {
    /// Renders the config for `nodes` into `dir/nginx/` and starts nginx on a free port.
    pub(crate) fn start(dir: &Path, nodes: &[&Node; 3]) -> Self {
        let prefix = dir.join("nginx");
        fs::create_dir_all(&prefix).expect("nginx prefix directory");
        let conf = prefix.join("nginx.conf");
        let (proc, port) = start_on_free_port("nginx", |port| {
            let text = render(
                NGINX_CONF,
                CONF_LISTEN,
                &format!("127.0.0.1:{port};"),
                nodes,
            );
            fs::write(&conf, text).expect("write nginx.conf");
            let mut command = Command::new(require("nginx"));
            command
                .arg("-p")
                .arg(format!("{}/", prefix.display()))
                .arg("-c")
                .arg(&conf)
                .args(["-g", "daemon off; master_process off;"]);
            // Startup errors (stderr) and the config's `error_log` share one file.
            Proc::spawn("nginx", command, &prefix.join("error.log"))
        });
        Self { proc, port }
    }

    /// `ws://127.0.0.1:PORT/ws?user_id=USER`, through the proxy.
    pub(crate) fn ws_url(&self, user: &str) -> String {
        format!("ws://127.0.0.1:{}/ws?user_id={user}", self.port)
    }
}

/// The committed HAProxy configuration (`send-proxy-v2`).
const HAPROXY_CFG: &str = include_str!("../../deploy/haproxy.cfg");
/// Where `deploy/haproxy.cfg` listens.
const HAPROXY_BIND: &str = "bind 127.0.0.1:8080\n";

/// `haproxy` running `deploy/haproxy.cfg` in the foreground (`-db`) in front of three nodes.
pub(crate) struct Haproxy {
    proc: Proc,
    /// Its port.
    pub(crate) port: u16,
}

impl Haproxy {
    /// Renders the config for `nodes` into `dir/haproxy.cfg` and starts HAProxy on a free
    /// port.
    pub(crate) fn start(dir: &Path, nodes: &[&Node; 3]) -> Self {
        let conf = dir.join("haproxy.cfg");
        let log = dir.join("haproxy.log");
        let (proc, port) = start_on_free_port("haproxy", |port| {
            let bind = format!("bind 127.0.0.1:{port}\n");
            fs::write(&conf, render(HAPROXY_CFG, HAPROXY_BIND, &bind, nodes))
                .expect("write haproxy.cfg");
            let mut command = Command::new(require("haproxy"));
            command.arg("-db").arg("-f").arg(&conf);
            Proc::spawn("haproxy", command, &log)
        });
        Self { proc, port }
    }
}

/// A committed proxy config with its listen address and its three node addresses replaced;
/// each must appear exactly once, so the test runs the committed file or fails loudly.
fn render(template: &str, listen: &str, listen_to: &str, nodes: &[&Node; 3]) -> String {
    let once = |conf: &str, from: &str, to: &str| {
        assert_eq!(
            conf.matches(from).count(),
            1,
            "the deploy/ config must contain `{from}` exactly once"
        );
        conf.replace(from, to)
    };
    let mut conf = once(template, listen, listen_to);
    for (placeholder, node) in CONF_NODES.iter().zip(nodes) {
        conf = once(&conf, placeholder, &format!("127.0.0.1:{} ", node.port));
    }
    conf
}
