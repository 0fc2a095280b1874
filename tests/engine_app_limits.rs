//! What an app decides about its connections before and at the upgrade: its own frame and
//! message limits ([`App::limits`]: over them, close 1009, while another app on the same
//! server keeps the server's), a refusal with headers the client acts on
//! ([`Refusal::header`]: a 429 with `Retry-After`), and nothing of the hub's (a `user_id`
//! the hub would refuse reaches the app).

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::TestServer;
use wsloop::client::{ClientError, Message as Received};
use wsloop::protocol::Limits;
use wsloop::server::{App, ConnId, Ctx, Message, Refusal, Request};

/// The small app's largest message.
const SMALL: usize = 4096;

/// Echoes; with `limits`, its connections have those; `/small/busy` is refused 429.
struct Echo {
    limits: Option<Limits>,
}

impl App for Echo {
    fn limits(&self) -> Option<Limits> {
        self.limits
    }

    fn on_upgrade(&mut self, request: &Request<'_>) -> Result<(), Refusal> {
        if request.path() == "/small/busy" {
            return Err(Refusal::new(429, "too many connections").header("Retry-After", "5"));
        }
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        ctx.send(conn, message);
    }
}

/// A loop with a small-limits echo at `/small/*` and a default one at `/big`.
fn start() -> TestServer {
    let small = Limits {
        max_frame: 1024,
        max_message: SMALL,
    };
    TestServer::start_apps(
        |_| {},
        move |routes| {
            routes
                .route(
                    "/small/*",
                    Echo {
                        limits: Some(small),
                    },
                )
                .route("/big", Echo { limits: None })
        },
    )
}

#[test]
fn an_apps_own_limits_hold_for_its_connections_only() {
    let server = start();
    let over = "x".repeat(SMALL + 1);

    // Under the limit, echoed; over it (one frame of 4 KiB + 1), closed 1009.
    let mut small = server.ws("/small/room");
    small.send_text("fits").expect("send");
    assert_eq!(small.recv().expect("echo"), Received::Text("fits".into()));
    small.send_text(&over).expect("send");
    match small.recv() {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 1009, "too big"),
        other => panic!("expected close 1009, got {other:?}"),
    }

    // The engine has no notion of users: a `user_id` the hub would refuse is the app's
    // business (it was a 400 from the engine while the hub's rules were its own).
    let mut big = server.ws("/big?user_id=");
    big.send_text(&over).expect("send");
    assert_eq!(big.recv().expect("echo"), Received::Text(over));
}

#[test]
fn a_refusal_carries_its_headers() {
    let server = start();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = "GET /small/busy HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("the answer");
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nretry-after: 5\r\n"),
        "{answer}"
    );
    assert!(
        answer.trim_end().ends_with("too many connections"),
        "{answer}"
    );
}
