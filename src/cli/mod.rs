//! The `wsloop` command line: `serve`, `token` (and the client, bench and operator tools).
//!
//! `src/main.rs` only calls [`main`]; each subcommand lives in its own file.

mod admin;
mod bench;
mod client;
mod http;
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
    /// Ask the operator API: rooms, presence, history, nodes; disconnect a user.
    #[command(after_help = admin::EXIT_CODES)]
    Admin(admin::AdminArgs),
    /// Talk to a WebSocket server: stdin lines out, messages to stdout.
    #[command(after_help = client::EXIT_CODES)]
    Client(client::ClientArgs),
}

/// Parses the command line and runs the subcommand.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args).map_err(Failure::from),
        Command::Bench(args) => bench::run(args).map_err(Failure::from),
        Command::Token(args) => token::run(&args).map_err(Failure::from),
        Command::Publish(args) => publish::run(&args).map_err(Failure::from),
        Command::Client(args) => client::run(&args),
        Command::Admin(args) => admin::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("wsloop: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Why a subcommand failed, and the exit status that says so.
#[derive(Debug)]
struct Failure {
    /// The exit status: 1 unless the subcommand documents others.
    code: u8,
    /// The message printed after `wsloop: `.
    message: String,
}

impl Failure {
    /// A bad command line: exit 2, like clap's own usage errors.
    fn usage(message: String) -> Self {
        Self { code: 2, message }
    }

    /// A wait that ran out (`wsloop client --timeout`): exit 3.
    fn timed_out(message: String) -> Self {
        Self { code: 3, message }
    }

    /// No answer, or one that is not the API's (`wsloop admin`): exit 3.
    fn unreachable(message: String) -> Self {
        Self { code: 3, message }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { code: 1, message }
    }
}
