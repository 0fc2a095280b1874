//! The smallest embedding of the engine: an echo application on every path.
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:9002
//! ```
//!
//! serves `ws://127.0.0.1:9002/` (any path); `./scripts/autobahn-server` runs Autobahn
//! 1.*–10.* against it (`AUTOBAHN_EXAMPLE=echo_server`). The engine does the upgrade,
//! RFC 6455, backpressure and limits; the app only sees whole messages.

use std::io;

use wsloop::server::{App, ConnId, Ctx, Message, Server, ServerConfig};

/// Every text and binary message goes back as it came.
struct Echo;

impl App for Echo {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        ctx.send(conn, message);
    }
}

fn main() -> io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let config = ServerConfig {
        listen: listen.parse().map_err(io::Error::other)?,
        // Test suites and load generators connect from one address, many times a second.
        max_connections_per_ip: 0,
        handshake_rate: None,
        ..ServerConfig::default()
    };
    let mut server = Server::builder(config).route("/*", Echo).bind()?;
    eprintln!("echo on ws://{}/", server.local_addr());
    server.run()
}
