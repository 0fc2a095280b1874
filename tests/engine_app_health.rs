//! What an app tells the engine about itself, for operators: its health in `GET /readyz`
//! (and in this node's `status` in `GET /api/info`)
//! ([`App::health`]: not ready takes the node out of a load balancer's pool with a 503,
//! degraded keeps it in with the reason), and work still in flight that a graceful
//! shutdown waits for ([`App::has_work_in_flight`]).
//!
//! The fault: a shutdown while the app's work is in flight (a write to its backend that
//! finishes 400 ms later). Without the wait the loop returned as soon as the last
//! connection closed, and the work was lost with the process.

mod common;

use std::net::SocketAddr;
#[allow(clippy::disallowed_types)]
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::Request as HttpGet;
use common::guard::request_at;
use wsloop::client::{Client, ClientError, ClientOptions, Message as Received};
use wsloop::server::{App, ConnId, Ctx, Health, Message, Server, ServerConfig, ServerHandle};

/// How long the app's work takes once started.
const WORK: Duration = Duration::from_millis(400);

/// Its health is set by messages ("heal", "degrade", "fail"); "work" starts work that
/// finishes at a tick `WORK` later.
struct Backend {
    health: Health,
    in_flight: bool,
    /// When the work finished, for the test.
    #[allow(clippy::disallowed_types)]
    finished: std::sync::mpsc::Sender<Instant>,
}

impl App for Backend {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        match message {
            Message::Text("heal") => self.health = Health::Ready,
            Message::Text("degrade") => self.health = Health::Degraded("backend lost".into()),
            Message::Text("fail") => self.health = Health::NotReady("backend down".into()),
            Message::Text("work") => {
                self.in_flight = true;
                ctx.tick(WORK, 1);
            }
            _ => return,
        }
        ctx.send(conn, Message::Text("done"));
    }

    fn on_tick(&mut self, _: &mut Ctx<'_>, _: u64) {
        self.in_flight = false;
        self.finished.send(Instant::now()).expect("the test's end");
    }

    fn health(&self) -> Health {
        self.health.clone()
    }

    fn has_work_in_flight(&self) -> bool {
        self.in_flight
    }
}

/// A loop with [`Backend`] at `/app` (not ready at first), on its own thread: its
/// address, a handle, when the work finished, and when `run` returned.
#[allow(clippy::disallowed_types)]
fn start() -> (
    SocketAddr,
    ServerHandle,
    Receiver<Instant>,
    Receiver<Instant>,
) {
    let (parts_tx, parts_rx) = channel();
    let (finished, finished_rx) = channel();
    let (returned, returned_rx) = channel();
    std::thread::spawn(move || {
        let mut config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            drain_timeout: Duration::from_secs(10),
            ..ServerConfig::default()
        };
        config.api.keys = vec![KEY.to_owned()];
        let backend = Backend {
            health: Health::NotReady("backend not reached yet".into()),
            in_flight: false,
            finished,
        };
        let mut server = Server::builder(config)
            .route("/app", backend)
            .bind()
            .expect("bind");
        parts_tx
            .send((server.local_addr(), server.handle()))
            .expect("parts");
        server.run().expect("run");
        returned.send(Instant::now()).expect("the test's end");
    });
    let (addr, handle) = parts_rx.recv().expect("the server's parts");
    (addr, handle, finished_rx, returned_rx)
}

/// The server API's key.
const KEY: &str = "test-key";

/// `GET /readyz`: the status line, the `Retry-After` header if any, and the body.
fn readyz(addr: SocketAddr) -> (u16, Option<String>, String) {
    get(addr, "/readyz")
}

/// This node's `status` in `GET /api/info`.
fn info_status(addr: SocketAddr) -> String {
    let (status, _, body) = get(addr, "/api/info");
    assert_eq!(status, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    info["nodes"][0]["status"]
        .as_str()
        .expect("a status")
        .to_owned()
}

/// A GET with the API key: the status, `Retry-After` if any, and the body.
fn get(addr: SocketAddr, target: &str) -> (u16, Option<String>, String) {
    let request = HttpGet::get(target).set("Authorization", &format!("Bearer {KEY}"));
    let response = request_at(addr, &request);
    let retry = response.header("Retry-After").map(str::to_owned);
    let body = String::from_utf8_lossy(&response.body)
        .trim_end()
        .to_owned();
    (response.status, retry, body)
}

fn tell(client: &mut Client, what: &str) {
    client.send_text(what).expect("send");
    assert_eq!(
        client.recv().expect("an answer"),
        Received::Text("done".into())
    );
}

#[test]
fn readyz_says_what_the_app_says() {
    let (addr, handle, _, _) = start();
    assert_eq!(
        readyz(addr),
        (
            503,
            Some("5".into()),
            "not ready: backend not reached yet".into()
        )
    );
    let mut client =
        Client::connect(&format!("ws://{addr}/app"), &ClientOptions::default()).expect("ws");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(info_status(addr), "not_ready", "/api/info says the same");
    tell(&mut client, "heal");
    assert_eq!(readyz(addr), (200, None, "ready".into()));
    assert_eq!(info_status(addr), "ready");
    tell(&mut client, "degrade");
    assert_eq!(readyz(addr), (200, None, "degraded: backend lost".into()));
    assert_eq!(info_status(addr), "degraded");
    tell(&mut client, "fail");
    assert_eq!(readyz(addr).2, "not ready: backend down");
    handle.exit_now().expect("stop");
}

#[test]
fn a_shutdown_waits_for_work_in_flight() {
    let (addr, handle, finished, returned) = start();
    let mut client =
        Client::connect(&format!("ws://{addr}/app"), &ClientOptions::default()).expect("ws");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tell(&mut client, "work");
    handle.shutdown().expect("shutdown");
    match client.recv() {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1001),
        other => panic!("expected the shutdown's close, got {other:?}"),
    }
    let returned = returned
        .recv_timeout(Duration::from_secs(10))
        .expect("the loop returns");
    let finished = finished
        .recv_timeout(Duration::from_secs(1))
        .expect("the work finished before the loop returned");
    assert!(
        returned >= finished,
        "the loop returned {:?} before the work finished",
        finished - returned
    );
}
