//! The `wsloop` binary; the command line lives in [`wsloop::cli`].

fn main() -> std::process::ExitCode {
    wsloop::cli::main()
}
