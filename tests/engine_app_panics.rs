//! An app's bugs stay with the connection they hit: a panic in `on_message` closes that
//! connection with 1011, and an `on_close` that panics as well (told of that very close)
//! is caught too. The loop goes on serving every other connection, each panic counted in
//! `wsloop_panics_total`. The app is told of each panic (`App::on_panicked`), so what the
//! callback left half-done is dropped, not sent to the next connection.

mod common;

use common::{Request, TestServer};
use wsloop::client::{ClientError, Message as Received};
use wsloop::server::{App, ConnId, Ctx, Message};

/// Echoes, but panics on "boom"; its `on_close` panics for a connection that said it.
#[derive(Default)]
struct Fragile {
    doomed: Vec<ConnId>,
}

impl App for Fragile {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        if message == Message::Text("boom") {
            self.doomed.push(conn);
            panic!("a bug in on_message");
        }
        ctx.send(conn, message);
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: u16, _: &str) {
        assert!(!self.doomed.contains(&conn), "a bug in on_close too");
    }
}

/// Answers each run of texts at its end (`batch a b`), and panics on "boom" once it has
/// gathered it; drops what it gathered when told of the panic.
#[derive(Default)]
struct Gatherer {
    gathered: Vec<String>,
}

impl App for Gatherer {
    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, message: Message<'_>) {
        if let Message::Text(text) = message {
            self.gathered.push(text.to_owned());
            assert_ne!(text, "boom", "a bug after gathering");
        }
    }

    fn on_run_end(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        let batch = format!("batch {}", self.gathered.join(" "));
        self.gathered.clear();
        ctx.send(conn, Message::Text(&batch));
    }

    fn on_panicked(&mut self) {
        self.gathered.clear();
    }
}

/// Handles each word of a text as an event of its own under [`Ctx::contained`]: each is
/// echoed, and "boom" panics.
struct Events;

impl App for Events {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        let Message::Text(text) = message else {
            return;
        };
        for word in text.split(' ') {
            let panicked = ctx.contained("an event", |ctx| {
                assert_ne!(word, "boom", "a bug in one event");
                ctx.send(conn, Message::Text(word));
            });
            if panicked {
                ctx.send(conn, Message::Text(&format!("dropped {word}")));
            }
        }
    }
}

fn start() -> TestServer {
    TestServer::start_apps(
        |_| {},
        |routes| {
            routes
                .route("/fragile", Fragile::default())
                .route("/gather", Gatherer::default())
                .route("/events", Events)
        },
    )
}

/// `wsloop_panics_total` from `/metrics`.
fn panics(server: &TestServer) -> String {
    let response = server.request(&Request::get("/metrics"));
    String::from_utf8_lossy(&response.body)
        .lines()
        .find(|l| l.starts_with("wsloop_panics_total "))
        .expect("the panic counter")
        .to_owned()
}

#[test]
fn panics_in_on_message_and_on_close_close_one_connection() {
    let server = start();
    let mut bystander = server.ws("/fragile");
    let mut victim = server.ws("/fragile");
    victim.send_text("boom").expect("send");
    match victim.recv() {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1011),
        other => panic!("expected close 1011, got {other:?}"),
    }
    bystander.send_text("still here").expect("send");
    assert_eq!(
        bystander.recv().expect("echo"),
        Received::Text("still here".into())
    );
    assert_eq!(
        panics(&server),
        "wsloop_panics_total 2",
        "both bugs counted"
    );
    // A new connection is served too.
    let mut late = server.ws("/fragile");
    late.send_text("hello").expect("send");
    assert_eq!(late.recv().expect("echo"), Received::Text("hello".into()));
}

#[test]
fn what_a_panicking_callback_gathered_is_dropped_not_sent_to_the_next() {
    let server = start();
    let mut victim = server.ws("/gather");
    victim.send_text("boom").expect("send");
    match victim.recv() {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1011),
        other => panic!("expected close 1011, got {other:?}"),
    }
    // Told of the panic, the app dropped "boom": the next run's answer is its own.
    let mut next = server.ws("/gather");
    next.send_text("hello").expect("send");
    assert_eq!(
        next.recv().expect("batch"),
        Received::Text("batch hello".into())
    );
}

#[test]
fn a_panic_contained_by_the_app_drops_one_event_and_closes_nothing() {
    let server = start();
    let mut client = server.ws("/events");
    client.send_text("a boom b").expect("send");
    for expected in ["a", "dropped boom", "b"] {
        assert_eq!(
            client.recv().expect("an answer"),
            Received::Text(expected.into())
        );
    }
    assert_eq!(panics(&server), "wsloop_panics_total 1");
    // The connection was not closed for it.
    client.send_text("c").expect("send");
    assert_eq!(client.recv().expect("echo"), Received::Text("c".into()));
}
