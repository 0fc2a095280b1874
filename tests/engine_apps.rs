//! The application API from an embedder's side: a test app routed at `/app/*` on a real
//! loop, driven by real clients. Each callback is observed through what the app sends:
//! the upgrade request it saw (`on_open`), refusals before the 101 (`on_upgrade`), topics
//! (`subscribe`/`publish`, encoded once for every subscriber), the close code and reason
//! (`on_close`, told on a watcher topic), timers, the drain signal after backpressure, and
//! the app's own `close`; and `wsloop bench fanout --raw` through `publish`, as the
//! pub/sub benchmark runs it against `examples/broadcast.rs`.

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use wsloop::client::{Client, ClientError, ClientOptions, Message as Received};
use wsloop::server::{App, ConnId, Ctx, Message, Refusal, Request, Server, ServerConfig};

/// Bytes the app sends to build backpressure, in [`FLOOD_PARTS`] messages: past the
/// engine's 1 MiB high-water mark even after the kernel's loopback buffers, which grow to
/// 32 MiB (`tcp_rmem`) on a client that is not reading.
const FLOOD: usize = 64 << 20;
/// Messages the flood is sent in.
const FLOOD_PARTS: usize = 16;

/// The app under test. Its path's last segment names the topic it subscribes to.
#[derive(Default)]
struct Probe {
    topics: HashMap<ConnId, String>,
    flooded: HashMap<ConnId, bool>,
}

impl App for Probe {
    fn on_upgrade(&mut self, request: &Request<'_>) -> Result<(), Refusal> {
        if request.path().ends_with("/denied") {
            return Err(Refusal::new(403, "this topic is closed"));
        }
        Ok(())
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        let topic = request.path().rsplit('/').next().unwrap_or("").to_owned();
        ctx.subscribe(conn, &topic);
        let hello = format!(
            "open path={} who={} agent={} subscribers={}",
            request.path(),
            request.query_param("who").unwrap_or_default(),
            request.header("user-agent").unwrap_or("-"),
            ctx.subscribers(&topic),
        );
        ctx.send(conn, Message::Text(&hello));
        self.topics.insert(conn, topic);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        match message {
            Message::Text("tick") => ctx.timer(conn, Duration::from_millis(50), 7),
            Message::Text("flood") => {
                let part = vec![b'x'; FLOOD / FLOOD_PARTS];
                self.flooded.insert(conn, true);
                for _ in 0..FLOOD_PARTS {
                    ctx.send(conn, Message::Binary(&part));
                }
                let buffered = format!("buffered {}", ctx.buffered_amount(conn) >= FLOOD);
                ctx.send(conn, Message::Text(&buffered));
            }
            Message::Text("close me") => ctx.close(conn, 4321, "asked to"),
            Message::Text("ping me") => {
                ctx.send(conn, Message::Text("pong from the app"));
            }
            message => {
                let topic = self.topics.get(&conn).cloned().unwrap_or_default();
                ctx.publish(&topic, message);
            }
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, code: u16, reason: &str) {
        let topic = self.topics.remove(&conn).unwrap_or_default();
        ctx.publish(
            "watch",
            Message::Text(&format!("closed {topic} {code} {reason}")),
        );
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, token: u64) {
        ctx.send(conn, Message::Text(&format!("timer {token}")));
    }

    fn on_drain(&mut self, ctx: &mut Ctx<'_>, conn: ConnId) {
        if self.flooded.remove(&conn).is_some() {
            ctx.send(conn, Message::Text("drained"));
        }
    }
}

/// Raw pub/sub, as `examples/broadcast.rs`: the path is the topic, every message goes to
/// every subscriber.
#[derive(Default)]
struct Relay {
    topics: HashMap<ConnId, String>,
}

impl App for Relay {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        ctx.subscribe(conn, request.path());
        self.topics.insert(conn, request.path().to_owned());
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        if let Some(topic) = self.topics.get(&conn) {
            ctx.publish(topic, message);
        }
    }

    fn on_close(&mut self, _: &mut Ctx<'_>, conn: ConnId, _: u16, _: &str) {
        self.topics.remove(&conn);
    }
}

/// A loop with [`Probe`] at `/app/*`.
fn start() -> SocketAddr {
    start_with("/app/*", Probe::default)
}

/// A loop with the app `make` builds at `route`, on its own thread (the loop is not
/// `Send`: it is built there); the process's exit ends it.
fn start_with<A: App + 'static>(route: &'static str, make: fn() -> A) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections_per_ip: 0,
            handshake_rate: None,
            ..ServerConfig::default()
        };
        let mut server = Server::builder(config)
            .route(route, make())
            .bind()
            .expect("bind");
        tx.send(server.local_addr()).expect("send the address");
        server.run().expect("run");
    });
    rx.recv().expect("the server's address")
}

fn connect(addr: SocketAddr, target: &str) -> Client {
    let client = Client::connect(&format!("ws://{addr}{target}"), &ClientOptions::default())
        .unwrap_or_else(|e| panic!("{target}: {e}"));
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    client
}

fn text(client: &mut Client) -> String {
    loop {
        match client.recv().expect("a message") {
            Received::Text(text) => return text,
            Received::Binary(bytes) => return format!("<{} bytes>", bytes.len()),
            _ => {}
        }
    }
}

#[test]
fn an_app_sees_the_request_and_its_subscribers_share_each_message() {
    let addr = start();
    let mut watcher = connect(addr, "/app/watch");
    assert!(text(&mut watcher).starts_with("open path=/app/watch"));
    let mut a = connect(addr, "/app/prices?who=a");
    let hello = text(&mut a);
    assert!(
        hello.starts_with("open path=/app/prices who=a agent=") && hello.ends_with("subscribers=1"),
        "{hello}"
    );
    let mut b = connect(addr, "/app/prices?who=b");
    assert!(text(&mut b).ends_with("subscribers=2"));

    a.send_binary(&[1, 2, 3]).expect("send");
    for client in [&mut a, &mut b] {
        assert_eq!(
            client.recv().expect("publish"),
            Received::Binary(vec![1, 2, 3])
        );
    }
    b.send_text("to everyone on prices").expect("send");
    for client in [&mut a, &mut b] {
        assert_eq!(text(client), "to everyone on prices");
    }

    // on_close: the peer's code and reason; and the subscription is gone with it.
    a.close(4000, "leaving now").expect("close");
    assert_eq!(text(&mut watcher), "closed prices 4000 leaving now");
    b.send_text("after a left").expect("send");
    assert_eq!(text(&mut b), "after a left");
    // A connection that just vanishes: 1006.
    drop(b);
    assert_eq!(text(&mut watcher), "closed prices 1006 ");
}

#[test]
fn refusals_timers_closes_and_drain() {
    let addr = start();
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request = "GET /app/denied HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(
        answer.trim_end().ends_with("this topic is closed"),
        "{answer}"
    );
    // Paths the app is not routed stay the engine's.
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let mut watcher = connect(addr, "/app/watch");
    text(&mut watcher);
    let mut client = connect(addr, "/app/t");
    text(&mut client);
    client.send_text("tick").expect("send");
    assert_eq!(text(&mut client), "timer 7");

    // Backpressure: with 64 MiB queued the engine stops reading the connection; once the
    // client has read enough for the queue to drain, the app hears `on_drain`.
    client.send_text("flood").expect("send");
    std::thread::sleep(Duration::from_millis(300));
    client.send_text("ping me").expect("send");
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..FLOOD_PARTS {
        assert_eq!(
            text(&mut client),
            format!("<{} bytes>", FLOOD / FLOOD_PARTS)
        );
    }
    assert_eq!(text(&mut client), "buffered true");
    let mut rest = [text(&mut client), text(&mut client)];
    rest.sort();
    assert_eq!(rest, ["drained", "pong from the app"]);

    client.send_text("close me").expect("send");
    match client.recv() {
        Err(ClientError::Closed { code, reason }) => {
            assert_eq!((code, reason.as_str()), (4321, "asked to"));
        }
        other => panic!("expected the app's close, got {other:?}"),
    }
    assert_eq!(text(&mut watcher), "closed t 4321 asked to");
}

#[test]
fn a_raw_fan_out_load_through_publish_misses_nothing() {
    let addr = start_with("/*", Relay::default);
    // The load generator is the binary's (`wsloop bench`), not the library's: run it. It
    // exits non-zero when the report has problems (lost, missing or reordered deliveries).
    let output = Command::new(env!("CARGO_BIN_EXE_wsloop"))
        .args(["bench", "fanout", &format!("ws://{addr}/bench")])
        .args(["--raw", "-c", "50", "-d", "8", "--json"])
        .args(["-t", "300ms", "--timeout", "5s"])
        .output()
        .expect("wsloop bench runs");
    let r: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"));
    assert!(output.status.success(), "{r}\n{output:?}");
    let (published, deliveries) = (r["published"].as_u64(), r["deliveries"].as_u64());
    assert!(published > Some(10), "{r}");
    assert!(deliveries >= published.map(|p| (p - 8) * 50), "{r}");
    assert_eq!(
        (r["missing"].as_u64(), r["out_of_order"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        r["bad_frames"].as_u64(),
        Some(0),
        "every frame was a published payload"
    );
}
