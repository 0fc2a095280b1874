//! The `wsloop` binary: its command line ([`cli`]), the configuration file, environment and
//! flags it reads ([`config`]), and the load generator behind `wsloop bench` ([`bench`]).
//! None of them is part of the library: they are programs built on its public API.

mod bench;
mod cli;
mod config;

fn main() -> std::process::ExitCode {
    cli::main()
}
