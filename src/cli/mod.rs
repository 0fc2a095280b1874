//! The `wsloop` command line: `serve`, `token` (and the client and bench tools).
//!
//! `src/main.rs` only calls [`main`]; each subcommand lives in its own file.

mod bench;
mod client;
mod publish;
mod serve;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A WebSocket server and protocol engine on one mio event loop.
#[derive(Debug, Parser)]
#[command(name = "wsloop", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<serve::ServeArgs>),
    /// Generate load against a server and measure it (echo, fanout, connect, idle).
    Bench(bench::BenchArgs),
    /// Mint a development JWT for `auth.mode = "jwt"`.
    Token(token::TokenArgs),
    /// Push a message through the HTTP publish API.
    Publish(publish::PublishArgs),
    /// Talk to a WebSocket server: stdin lines out, messages to stdout.
    Client(client::ClientArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Token(args) => token::run(&args),
        Command::Publish(args) => publish::run(&args),
        Command::Client(args) => client::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wsloop: {message}");
            ExitCode::FAILURE
        }
    }
}
