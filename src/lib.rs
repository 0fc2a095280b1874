//! wsloop: a WebSocket protocol engine and lightweight real-time server, by hand on `mio`.
//!
//! The crate is layered so each part can be read and tested alone:
//!
//! - [`protocol`]: RFC 6455 without I/O (handshake, framing, masking, fragmentation,
//!   close, UTF-8), and RFC 7692 permessage-deflate. It takes bytes and returns events; it
//!   never panics.
//! - [`server`]: one thread, one `mio::Poll`, a slab of connections; moves bytes between
//!   sockets and the protocol, and runs applications on its App API ([`server::App`]).
//! - [`hub`]: the chat/pub-sub application of `/ws` as plain data (rooms, members,
//!   history), which a private module runs as an app on that API, with its Redis link
//!   ([`cluster`]), history file and HTTP API.
//!
//! Run it with `wsloop serve`; see README.md. The binary's command line, configuration
//! file and load generator (`wsloop bench`) live in the binary target, not in this library.

// Every public item carries `///` docs (Cargo.toml's [lints] only warns, which a plain
// `cargo build` lets through): an undocumented public item fails the build.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod cluster;
pub mod hub;
mod hub_app;

pub mod id;
pub mod protocol;
pub mod ratelimit;
pub mod server;
mod transport;
