//! Closes are told to an app in batches ([`App::on_closes`]), so an app that tells its
//! other connections of a departure (a presence list) sends one frame per batch, not one
//! per leaver: for a room of N emptied at once, N frames instead of N².
//!
//! The faults: an app closing many connections from one callback (every close of the wave
//! in one batch; the reader sees one "left" message), closes made from inside `on_closes`
//! (the next batch, after the call returns: a cascade is a loop, not a recursion), and a
//! graceful shutdown (every connection's 1001 in one batch).

use std::net::SocketAddr;
#[allow(clippy::disallowed_types)]
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::time::Duration;

use wsloop::client::{Client, ClientError, ClientOptions, Message as Received};
use wsloop::server::{
    App, Closed, ConnId, Ctx, Message, Request, Server, ServerConfig, ServerHandle,
};

/// Victims kicked in one callback.
const VICTIMS: usize = 20;

/// A room: everyone who connects is a member. "kick" closes every member but the first
/// (the reader) and the sender with 4000; a batch of departures is told to the members
/// left as one "left N" message, and when the kick's wave has been told, the kicker is
/// closed too (4001, from inside `on_closes`).
struct Room {
    members: Vec<ConnId>,
    kicker: Option<ConnId>,
    /// Each batch's close codes, for the test to see.
    #[allow(clippy::disallowed_types)]
    batches: SyncSender<Vec<u16>>,
}

impl App for Room {
    fn on_open(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: &Request<'_>) {
        self.members.push(conn);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        if message != Message::Text("kick") {
            return;
        }
        self.kicker = Some(conn);
        let reader = self.members[0];
        let victims: Vec<ConnId> = self
            .members
            .iter()
            .copied()
            .filter(|m| *m != reader && *m != conn)
            .collect();
        for victim in victims {
            ctx.close(victim, 4000, "kicked");
        }
        // Nobody has been told yet: the app is still in this call.
        ctx.send(
            conn,
            Message::Text(&format!("kicked, {} members", self.members.len())),
        );
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, _: ConnId, _: u16, _: &str) {
        panic!("on_closes is overridden: on_close is never called");
    }

    fn on_closes(&mut self, ctx: &mut Ctx<'_>, closed: &[Closed<'_>]) {
        self.members.retain(|m| closed.iter().all(|c| c.conn != *m));
        let left = Message::Text(&format!("left {}", closed.len()));
        for member in &self.members {
            ctx.send(*member, left);
        }
        self.batches
            .send(closed.iter().map(|c| c.code).collect())
            .expect("the test's end");
        if closed.iter().any(|c| c.code == 4000)
            && let Some(kicker) = self.kicker.take()
        {
            ctx.close(kicker, 4001, "last");
        }
    }
}

/// A loop with [`Room`] at `/room`, on its own thread; its address, a handle to stop it,
/// and the batches it is told.
#[allow(clippy::disallowed_types)]
fn start() -> (SocketAddr, ServerHandle, Receiver<Vec<u16>>) {
    let (parts_tx, parts_rx) = channel();
    std::thread::spawn(move || {
        let (batches, told) = sync_channel(1024);
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections_per_ip: 0,
            handshake_rate: None,
            ..ServerConfig::default()
        };
        let room = Room {
            members: Vec::new(),
            kicker: None,
            batches,
        };
        let mut server = Server::builder(config)
            .route("/room", room)
            .bind()
            .expect("bind");
        parts_tx
            .send((server.local_addr(), server.handle(), told))
            .expect("parts");
        server.run().expect("run");
    });
    parts_rx.recv().expect("the server's parts")
}

fn join(addr: SocketAddr) -> Client {
    let client =
        Client::connect(&format!("ws://{addr}/room"), &ClientOptions::default()).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client
}

fn next_text(client: &mut Client) -> String {
    match client.recv() {
        Ok(Received::Text(text)) => text,
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn close_of(client: &mut Client) -> (u16, String) {
    match client.recv() {
        Err(ClientError::Closed { code, reason }) => (code, reason),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[allow(clippy::disallowed_types)]
fn next_batch(told: &Receiver<Vec<u16>>) -> Vec<u16> {
    told.recv_timeout(Duration::from_secs(10))
        .expect("a batch of closes")
}

#[test]
fn a_wave_of_closes_is_one_batch_and_closes_made_in_it_the_next() {
    let (addr, handle, told) = start();
    let mut reader = join(addr);
    let mut victims: Vec<Client> = (0..VICTIMS).map(|_| join(addr)).collect();
    let mut kicker = join(addr);
    kicker.send_text("kick").expect("kick");
    assert_eq!(
        next_text(&mut kicker),
        format!("kicked, {} members", VICTIMS + 2)
    );

    // The kick's wave: one batch, one message to each member left.
    assert_eq!(next_batch(&told), vec![4000; VICTIMS]);
    assert_eq!(next_text(&mut reader), format!("left {VICTIMS}"));
    for victim in &mut victims {
        assert_eq!(close_of(victim), (4000, "kicked".to_owned()));
    }
    // The close made from inside that batch: the next one, on its own.
    assert_eq!(next_text(&mut kicker), format!("left {VICTIMS}"));
    assert_eq!(close_of(&mut kicker), (4001, "last".to_owned()));
    assert_eq!(next_batch(&told), vec![4001]);
    assert_eq!(next_text(&mut reader), "left 1");

    // A peer that leaves by itself is a batch of one.
    reader.close(1000, "bye").expect("close");
    assert_eq!(next_batch(&told), vec![1000]);
    handle.exit_now().expect("stop");
}

#[test]
fn a_shutdown_tells_every_departure_in_one_batch() {
    let (addr, handle, told) = start();
    let mut clients: Vec<Client> = (0..30).map(|_| join(addr)).collect();
    // Every upgrade is done (an answered message comes after its `on_open`).
    for client in &mut clients {
        client.send_text("hello").expect("send");
        client.ping(b"p").expect("ping");
        assert_eq!(client.recv().expect("pong"), Received::Pong(b"p".to_vec()));
    }
    handle.shutdown().expect("shutdown");
    for client in &mut clients {
        assert_eq!(close_of(client), (1001, "server shutting down".to_owned()));
    }
    assert_eq!(next_batch(&told), vec![1001; 30], "one batch of 30");
}
