//! The `wsloop` binary: `wsloop serve` runs the server.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wsloop::server::{Server, ServerConfig};

/// A WebSocket server and protocol engine on one mio event loop.
#[derive(Debug, Parser)]
#[command(name = "wsloop", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

/// Flags of `wsloop serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Largest frame payload accepted, in bytes (over it: close 1009).
    #[arg(long, default_value_t = 16 << 20)]
    max_frame: u64,
    /// Largest message accepted, in bytes (over it: close 1009).
    #[arg(long, default_value_t = 16 << 20)]
    max_message: usize,
    /// Largest request head, in bytes (over it: 431).
    #[arg(long, default_value_t = 8192)]
    max_header_bytes: usize,
    /// Most request header fields (over it: 431).
    #[arg(long, default_value_t = 32)]
    max_headers: usize,
    /// Seconds a client has to finish its handshake.
    #[arg(long, default_value_t = 10.0)]
    handshake_timeout: f64,
    /// Seconds to wait for the peer's close reply.
    #[arg(long, default_value_t = 5.0)]
    close_timeout: f64,
    /// Most simultaneous connections (over it: 503).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> std::io::Result<()> {
    let mut config = ServerConfig {
        listen: args.listen,
        ..ServerConfig::default()
    };
    config.limits.max_frame = args.max_frame;
    config.limits.max_message = args.max_message;
    config.head.max_bytes = args.max_header_bytes;
    config.head.max_headers = args.max_headers;
    config.handshake_timeout = Duration::from_secs_f64(args.handshake_timeout);
    config.close_timeout = Duration::from_secs_f64(args.close_timeout);
    config.max_connections = args.max_connections;
    let mut server = Server::bind(config)?;
    server.run()
}
