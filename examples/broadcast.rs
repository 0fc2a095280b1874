//! A pub/sub application on the engine, the equivalent of uWebSockets' pub/sub: a
//! connection subscribes to the topic named by its path (`ws://host/prices` → `/prices`),
//! and every message it sends is published, as it is, to every subscriber of that topic,
//! the sender included. Each message is encoded once and queued to every subscriber by
//! reference; a subscriber that falls more than `server.max_outbound_bytes` behind is
//! closed with 1008 instead of holding everyone else back.
//!
//! ```text
//! cargo run --release --example broadcast -- 127.0.0.1:9004
//! wsloop bench fanout --raw ws://127.0.0.1:9004/bench -c 100 -s 32 -d 16
//! ```

use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use wsloop::server::{App, ConnId, Ctx, Message, Request, Server, ServerConfig};

/// Each connection's topic.
#[derive(Default)]
struct Broadcast {
    topics: HashMap<ConnId, Rc<str>>,
}

impl App for Broadcast {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        let topic: Rc<str> = request.path().into();
        ctx.subscribe(conn, &topic);
        self.topics.insert(conn, topic);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        if let Some(topic) = self.topics.get(&conn) {
            ctx.publish(topic, message);
        }
    }

    fn on_close(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId, _code: u16, _reason: &str) {
        // The engine has already dropped the connection's subscriptions.
        self.topics.remove(&conn);
    }
}

fn main() -> io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9004".into());
    let config = ServerConfig {
        listen: listen.parse().map_err(io::Error::other)?,
        // Load generators open thousands of connections from one address.
        max_connections_per_ip: 0,
        handshake_rate: None,
        max_connections: 200_000,
        ..ServerConfig::default()
    };
    let mut server = Server::builder(config)
        .route("/*", Broadcast::default())
        .bind()?;
    eprintln!("pub/sub on ws://{}/<topic>", server.local_addr());
    server.run()
}
