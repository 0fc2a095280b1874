//! Work from other threads, and the end of the loop, as an app sees them.
//!
//! A producer thread feeds an app through a small bounded queue the app owns and an
//! [`AppWaker`]: every item reaches the subscribers, in order, however the wakes and the
//! loop's turns interleave (a lost wake leaves the producer blocked on the full queue and
//! the client waiting). A graceful shutdown calls `on_shutdown` before the engine's 1001,
//! so an app's goodbye and its own close codes reach the clients.

use std::net::SocketAddr;
// The app's own bounded queue, polled in `on_wake`: the loop never blocks on it.
use std::sync::mpsc::channel;
#[allow(clippy::disallowed_types)]
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::time::Duration;

use wsloop::client::{Client, ClientError, ClientOptions, Message as Received};
use wsloop::server::{
    App, AppWaker, ConnId, Ctx, Message, Request, Server, ServerConfig, ServerHandle,
};

/// Items the producer sends; more than the queue holds many times over.
const ITEMS: u32 = 50_000;
/// The app's queue: small, so the producer blocks on it over and over.
const QUEUE: usize = 8;

/// Publishes every item from its queue to the `feed` topic; says goodbye on shutdown.
struct Feed {
    #[allow(clippy::disallowed_types)]
    items: Receiver<u32>,
    conns: Vec<ConnId>,
    wakes: u32,
}

impl App for Feed {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        ctx.subscribe(conn, "feed");
        ctx.send(conn, Message::Text(request.path()));
        self.conns.push(conn);
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}

    fn on_close(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: u16, _: &str) {
        self.conns.retain(|c| *c != conn);
    }

    fn on_wake(&mut self, ctx: &mut Ctx<'_>) {
        self.wakes += 1;
        loop {
            match self.items.try_recv() {
                Ok(item) => {
                    ctx.publish("feed", Message::Text(&item.to_string()));
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return,
            }
        }
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_>) {
        let goodbye = format!("bye after {} wakes", self.wakes);
        for (i, conn) in self.conns.clone().into_iter().enumerate() {
            ctx.send(conn, Message::Text(&goodbye));
            if i == 0 {
                ctx.close(conn, 4001, "moving to another node");
            }
        }
    }
}

/// A loop with [`Feed`] on every path; its producer's end of the queue, its waker, and a
/// handle to stop it.
#[allow(clippy::disallowed_types)]
fn start() -> (
    SocketAddr,
    std::sync::mpsc::SyncSender<u32>,
    AppWaker,
    ServerHandle,
) {
    let (parts_tx, parts_rx) = channel();
    std::thread::spawn(move || {
        let (producer, items) = sync_channel(QUEUE);
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections_per_ip: 0,
            handshake_rate: None,
            ..ServerConfig::default()
        };
        let feed = Feed {
            items,
            conns: Vec::new(),
            wakes: 0,
        };
        let mut server = Server::builder(config)
            .route("/*", feed)
            .bind()
            .expect("bind");
        assert!(
            Server::app_waker(&server, "/elsewhere").is_some(),
            "a prefix route"
        );
        let waker = server.app_waker("/feed").expect("a waker");
        parts_tx
            .send((server.local_addr(), producer, waker, server.handle()))
            .expect("parts");
        server.run().expect("run");
    });
    parts_rx.recv().expect("the server's parts")
}

fn subscribe(addr: SocketAddr, path: &str) -> Client {
    let mut client =
        Client::connect(&format!("ws://{addr}{path}"), &ClientOptions::default()).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(client.recv().expect("hello"), Received::Text(path.into()));
    client
}

fn next_text(client: &mut Client) -> String {
    match client.recv() {
        Ok(Received::Text(text)) => text,
        other => panic!("expected a text message, got {other:?}"),
    }
}

#[test]
fn a_thread_feeds_subscribers_through_a_bounded_queue_and_a_waker() {
    let (addr, producer, waker, handle) = start();
    let mut a = subscribe(addr, "/feed");
    let mut b = subscribe(addr, "/other");
    let thread = std::thread::spawn(move || {
        for item in 0..ITEMS {
            // Blocks while the queue is full: only the loop's `on_wake` empties it.
            producer.send(item).expect("the app's queue");
            waker.wake().expect("wake");
        }
    });
    for item in 0..ITEMS {
        assert_eq!(next_text(&mut a), item.to_string(), "a, in order");
        assert_eq!(next_text(&mut b), item.to_string(), "b, in order");
    }
    thread.join().expect("producer");

    // The goodbye before the engine's 1001, and the app's own close code where it used one.
    handle.shutdown().expect("shutdown");
    let goodbye_a = next_text(&mut a);
    let goodbye_b = next_text(&mut b);
    assert!(goodbye_a.starts_with("bye after "), "{goodbye_a}");
    assert_eq!(goodbye_a, goodbye_b);
    let wakes: u32 = goodbye_a["bye after ".len()..]
        .trim_end_matches(" wakes")
        .parse()
        .expect("a count");
    assert!(
        (1..=ITEMS).contains(&wakes),
        "{wakes} calls for {ITEMS} wakes"
    );
    let closes: Vec<(u16, String)> = [&mut a, &mut b]
        .into_iter()
        .map(|client| match client.recv() {
            Err(ClientError::Closed { code, reason }) => (code, reason),
            other => panic!("expected a close, got {other:?}"),
        })
        .collect();
    assert_eq!(
        closes,
        vec![
            (4001, "moving to another node".to_owned()),
            (1001, "server shutting down".to_owned())
        ]
    );
}
