//! Work from another thread: a price feed runs on its own thread, and every tick reaches
//! every subscriber through the loop. The feed puts each tick in a bounded queue the app
//! owns and wakes the app ([`AppWaker`]); the loop calls `on_wake` on its own thread, and
//! the app publishes what it finds, each tick encoded once for all subscribers. When the
//! queue is full the feed drops the tick: a price feed wants the latest price, not a
//! backlog that grows while the loop is busy.
//!
//! ```text
//! cargo run --release --example ticker -- 127.0.0.1:9005
//! wsloop client ws://127.0.0.1:9005/prices
//! ```

use std::io;
// The app's own bounded queue, emptied with `try_recv` in `on_wake`: the loop never waits
// on it (the lint guards the engine's loop against blocking channels).
#[allow(clippy::disallowed_types)]
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::time::Duration;

use wsloop::server::{App, AppWaker, ConnId, Ctx, Message, Request, Server, ServerConfig};

/// Ticks the queue holds while the loop has not come for them.
const QUEUE: usize = 64;

/// Publishes the feed's ticks to the connections at `/prices`.
struct Ticker {
    #[allow(clippy::disallowed_types)]
    ticks: Receiver<String>,
}

impl App for Ticker {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        if request.path() == "/prices" {
            ctx.subscribe(conn, "prices");
        } else {
            ctx.close(conn, 4404, "subscribe at /prices");
        }
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}

    fn on_wake(&mut self, ctx: &mut Ctx<'_>) {
        while let Ok(tick) = self.ticks.try_recv() {
            ctx.publish("prices", Message::Text(&tick));
        }
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        ctx.publish("prices", Message::Text(r#"{"closing":true}"#));
    }
}

/// The feed: a random walk of one price, ten ticks a second.
fn feed(queue: std::sync::mpsc::SyncSender<String>, waker: AppWaker) {
    let (mut price, mut seed, mut dropped) = (100_000i64, 0x2545_f491_u64, 0u64);
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        price += (seed % 201) as i64 - 100;
        let tick = format!(r#"{{"symbol":"WSL","cents":{price},"dropped":{dropped}}}"#);
        match queue.try_send(tick) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => dropped += 1,
            Err(TrySendError::Disconnected(_)) => return, // the server is gone
        }
        if waker.wake().is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() -> io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9005".into());
    let config = ServerConfig {
        listen: listen.parse().map_err(io::Error::other)?,
        ..ServerConfig::default()
    };
    let (queue, ticks) = sync_channel(QUEUE);
    let mut server = Server::builder(config)
        .route("/*", Ticker { ticks })
        .bind()?;
    let waker = server.app_waker("/prices").expect("routed above");
    std::thread::spawn(move || feed(queue, waker));
    server.handle_signals()?;
    eprintln!("prices on ws://{}/prices", server.local_addr());
    server.run()
}
