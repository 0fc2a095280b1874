//! `wsloop bench MODE [URL]`: the load generator's command line (see [`crate::bench`]).
//!
//! Prints a table, or the JSON report with `--json`; exits non-zero when the run could not
//! be done (refused, rejected, timed out) or when its checks failed (lost connections,
//! wrong echo lengths, missing or reordered deliveries).

use std::time::Duration;

use crate::bench::{
    self, BenchConfig, ConnectOptions, EchoOptions, FanoutOptions, IdleOptions, Mode,
};
use crate::config::{parse_duration, parse_size};
use wsloop::client::WsUrl;

/// Flags of `wsloop bench`.
#[derive(Debug, clap::Args)]
pub(super) struct BenchArgs {
    #[command(subcommand)]
    mode: ModeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ModeArgs {
    /// Round trips on an echo endpoint: C connections, S-byte messages, D in flight each.
    Echo(EchoArgs),
    /// One publisher, N subscribers in a room of /ws (server: --rate-limit off
    /// --max-connections-per-user 0).
    Fanout(FanoutArgs),
    /// Handshakes per second: open, upgrade, close, repeat, C at a time.
    Connect(ConnectArgs),
    /// Hold N idle connections; with --pid, the server's RSS per connection.
    Idle(IdleArgs),
}

/// Flags every mode takes.
#[derive(Debug, clap::Args)]
struct Common {
    /// How long to measure (idle: how long to hold), e.g. 10s.
    #[arg(long, short = 't', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// The longest any phase may take (connect, handshake, join, a stalled run).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// The server's pid: report its CPU time and RSS from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Spread connections over server addresses 127.0.0.1..127.0.0.N (server on 0.0.0.0).
    #[arg(long, default_value_t = 1)]
    spread: u8,
    /// For wss://: trust the CA certificates in this PEM file instead of the system roots.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    ca: Option<std::path::PathBuf>,
    /// For wss://: accept any server certificate (encrypted, but NOT authenticated).
    #[arg(long)]
    insecure: bool,
}

#[derive(Debug, clap::Args)]
struct EchoArgs {
    /// Server URL: an echo endpoint.
    #[arg(default_value = "ws://127.0.0.1:8080/echo")]
    url: String,
    #[command(flatten)]
    common: Common,
    /// Connections.
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// Message size: bytes, or with a unit (16KiB, 1MiB, 16k).
    #[arg(long, short = 's', default_value = "32", value_parser = parse_size)]
    size: usize,
    /// Messages in flight per connection.
    #[arg(long, short = 'd', default_value_t = 16)]
    depth: usize,
    /// Stop after this many round trips instead of after --duration.
    #[arg(long, short = 'n')]
    messages: Option<u64>,
    /// Send text frames instead of binary.
    #[arg(long)]
    text: bool,
}

#[derive(Debug, clap::Args)]
struct FanoutArgs {
    /// Server URL: the hub.
    #[arg(default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    #[command(flatten)]
    common: Common,
    /// Subscribers (connections; -c as in every mode).
    #[arg(long, short = 'c', default_value_t = 100)]
    subscribers: usize,
    /// Payload bytes (at least 32: sequence number and timestamp).
    #[arg(long, short = 's', default_value = "32", value_parser = parse_size)]
    size: usize,
    /// Messages in flight (published but not yet delivered to every subscriber).
    #[arg(long, short = 'd', default_value_t = 16)]
    depth: usize,
    /// The room.
    #[arg(long, default_value = "bench")]
    room: String,
    /// Raw pub/sub instead of the hub: no join; every message is the payload itself and
    /// reaches every connection to the URL (examples/broadcast.rs, uWebSockets' pub/sub).
    #[arg(long)]
    raw: bool,
}

#[derive(Debug, clap::Args)]
struct ConnectArgs {
    /// Server URL.
    #[arg(default_value = "ws://127.0.0.1:8080/echo")]
    url: String,
    #[command(flatten)]
    common: Common,
    /// Connections in progress at once.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
}

#[derive(Debug, clap::Args)]
struct IdleArgs {
    /// Server URL.
    #[arg(default_value = "ws://127.0.0.1:8080/echo")]
    url: String,
    #[command(flatten)]
    common: Common,
    /// Connections to hold.
    #[arg(long, short = 'c', default_value_t = 10_000)]
    connections: usize,
    /// Handshakes in flight while opening them.
    #[arg(long, default_value_t = 128)]
    parallel: usize,
}

/// Runs `wsloop bench`.
pub(super) fn run(args: BenchArgs) -> Result<(), String> {
    let (common, mode, url) = match args.mode {
        ModeArgs::Echo(a) => {
            let mode = Mode::Echo(EchoOptions {
                connections: a.connections,
                size: a.size,
                depth: a.depth,
                messages: a.messages,
                text: a.text,
            });
            (a.common, mode, a.url)
        }
        ModeArgs::Fanout(a) => {
            let mode = Mode::Fanout(FanoutOptions {
                subscribers: a.subscribers,
                size: a.size,
                depth: a.depth,
                room: a.room,
                raw: a.raw,
            });
            (a.common, mode, a.url)
        }
        ModeArgs::Connect(a) => {
            let mode = Mode::Connect(ConnectOptions {
                concurrency: a.concurrency,
            });
            (a.common, mode, a.url)
        }
        ModeArgs::Idle(a) => {
            let mode = Mode::Idle(IdleOptions {
                connections: a.connections,
                parallel: a.parallel,
            });
            (a.common, mode, a.url)
        }
    };
    let mut config = BenchConfig::new(WsUrl::parse(&url)?, mode);
    config.duration = common.duration;
    config.timeout = common.timeout;
    config.pid = common.pid;
    config.progress = !common.quiet && !common.json;
    config.spread = common.spread;
    config.tls = super::client::trust(common.ca.as_ref(), common.insecure);
    let report = bench::run(&config).map_err(|e| e.to_string())?;
    if common.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print!("{report}");
    }
    let problems = report.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("the run had problems: {}", problems.join(", ")))
    }
}
