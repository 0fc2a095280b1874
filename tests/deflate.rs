//! permessage-deflate (RFC 7692) over loopback: negotiation in the real handshake, the
//! blocking client against `/echo`, hub broadcasts compressed once, and RSV1 rules.

mod common;

use std::net::SocketAddr;

use common::{FIN, OP_TEXT, RSV1, Request, TestServer, fresh_key};
use serde_json::{Value, json};
use wsloop::client::{Client, ClientOptions, Message};
use wsloop::protocol::deflate::{DeflateConfig, DeflateParams};
use wsloop::server::{App, ConnId, Ctx, Message as AppMessage, Server, ServerConfig};

fn compressing(config: DeflateConfig) -> TestServer {
    TestServer::start_with(|c| c.compression = Some(config))
}

/// The `Sec-WebSocket-Extensions` a server answers to `offer`, if any.
fn answer_to(server: &TestServer, offer: &str) -> Option<String> {
    let request = Request::upgrade("/echo")
        .set("Sec-WebSocket-Key", &fresh_key())
        .set("Sec-WebSocket-Extensions", offer);
    let mut client = server.connect();
    client.send(&request.to_bytes());
    let response = client.read_response();
    assert_eq!(response.status, 101, "{offer}");
    response
        .header("sec-websocket-extensions")
        .map(str::to_owned)
}

#[test]
fn the_server_answers_the_first_offer_it_can_honour() {
    let server = compressing(DeflateConfig::default());
    let cases: &[(&str, Option<&str>)] = &[
        (
            "permessage-deflate; client_max_window_bits",
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10",
            ),
        ),
        // Declined offers cost the connection nothing but compression.
        ("permessage-deflate; foo=bar", None),
        ("permessage-deflate; server_max_window_bits=\"1,0\"", None),
        ("x-webkit-deflate-frame", None),
    ];
    for (offer, expected) in cases {
        assert_eq!(answer_to(&server, offer).as_deref(), *expected, "{offer}");
    }
}

#[test]
fn with_compression_off_offers_are_ignored() {
    let server = TestServer::start();
    assert_eq!(answer_to(&server, "permessage-deflate"), None);
}

fn client_options(config: DeflateConfig) -> ClientOptions {
    ClientOptions {
        compression: Some(config),
        ..ClientOptions::default()
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

#[test]
fn blocking_client_round_trips_with_and_without_context_takeover() {
    let lenient = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        min_size: 0,
        ..DeflateConfig::default()
    };
    let server = compressing(lenient);
    for config in [lenient, DeflateConfig::default()] {
        let mut client =
            Client::connect(&url(server.addr, "/echo"), &client_options(config)).unwrap();
        let takeover = !config.server_no_context_takeover;
        assert_eq!(
            client.compression(),
            Some(&DeflateParams {
                server_no_context_takeover: !takeover,
                client_no_context_takeover: !takeover,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            })
        );
        let big: String = (0..20_000).map(|i| format!("{i},")).collect();
        for text in [
            "hi",
            "hello hello hello hello hello hello hello hello",
            big.as_str(),
        ] {
            client.send_text(text).unwrap();
            assert_eq!(client.recv().unwrap(), Message::Text(text.to_owned()));
        }
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        client.send_binary(&bytes).unwrap();
        assert_eq!(client.recv().unwrap(), Message::Binary(bytes));
        client.close(1000, "done").unwrap();
    }
}

#[test]
fn blocking_client_without_an_offer_gets_plain_messages() {
    let server = compressing(DeflateConfig::default());
    let mut client =
        Client::connect(&url(server.addr, "/echo"), &ClientOptions::default()).expect("connects");
    assert_eq!(client.compression(), None);
    client.send_text(&"plain ".repeat(100)).unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("plain ".repeat(100)));
}

/// RFC 6455 §5.2: RSV1 on a connection that did not agree on compression is 1002.
#[test]
fn rsv1_without_the_extension_is_1002() {
    let server = compressing(DeflateConfig::default());
    let mut client = server.open("/echo");
    client.send_frame(
        FIN | RSV1 | OP_TEXT,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    );
    client.expect_close(1002);
}

fn read_json(client: &mut Client) -> Value {
    match client.recv().expect("a message") {
        Message::Text(text) => serde_json::from_str(&text).expect("JSON"),
        other => panic!("unexpected {other:?}"),
    }
}

fn next_of(client: &mut Client, kind: &str) -> Value {
    loop {
        let message = read_json(client);
        if message["type"] == kind {
            return message;
        }
    }
}

/// A broadcast to compressing recipients without server context takeover is compressed
/// once for all of them; a recipient that did not agree gets the plain shared frame.
#[test]
fn a_broadcast_is_compressed_once_for_all_recipients() {
    let server = compressing(DeflateConfig {
        min_size: 0,
        ..DeflateConfig::default()
    });
    let hub = |user: &str, compression: Option<DeflateConfig>| {
        let options = ClientOptions {
            compression,
            ..ClientOptions::default()
        };
        let mut client =
            Client::connect(&url(server.addr, &format!("/ws?user_id={user}")), &options).unwrap();
        next_of(&mut client, "welcome");
        client
            .send_text(&json!({"type": "join", "room": "lobby"}).to_string())
            .unwrap();
        next_of(&mut client, "joined");
        client
    };
    let mut recipients: Vec<Client> = (0..4)
        .map(|i| hub(&format!("z{i}"), Some(DeflateConfig::default())))
        .collect();
    let mut plain = hub("plain", None);
    let before = metric(&server, "wsloop_deflate_hub_compressions_total");
    let text = "the same words again and again, ".repeat(10);
    plain
        .send_text(&json!({"type": "chat", "room": "lobby", "payload": text}).to_string())
        .unwrap();
    for client in recipients.iter_mut().chain([&mut plain]) {
        assert_eq!(next_of(client, "chat")["payload"], json!(text));
    }
    let after = metric(&server, "wsloop_deflate_hub_compressions_total");
    assert_eq!(after - before, 1.0, "one compression for four recipients");
}

/// A counter from `/metrics`.
fn metric(server: &TestServer, name: &str) -> f64 {
    let response = server.request(&Request::get("/metrics"));
    let body = String::from_utf8(response.body).expect("text");
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

/// Sends each message back, and to the connection that sent the one before it.
struct Relay {
    last: Option<ConnId>,
}

impl App for Relay {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: AppMessage<'_>) {
        assert!(ctx.send(conn, message), "the reply is queued");
        if let Some(other) = self.last.filter(|other| *other != conn) {
            // `false` once `other` has gone (the previous pair of clients).
            ctx.send(other, message);
        }
        self.last = Some(conn);
    }
}

/// An app's `Ctx::send` compresses for connections that agreed to permessage-deflate: a
/// reply to the connection being read (its short path) and a send to another one, with
/// and without context takeover.
#[test]
fn an_apps_sends_are_compressed_to_the_connection_read_and_to_others() {
    let lenient = DeflateConfig {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        min_size: 0,
        ..DeflateConfig::default()
    };
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections_per_ip: 0,
            handshake_rate: None,
            compression: Some(lenient),
            ..ServerConfig::default()
        };
        let mut server = Server::builder(config)
            .route("/relay", Relay { last: None })
            .bind()
            .expect("bind");
        addr_tx.send(server.local_addr()).expect("address");
        server.run().expect("run");
    });
    let addr = addr_rx.recv().expect("the server's address");
    for takeover in [false, true] {
        let config = DeflateConfig {
            server_no_context_takeover: !takeover,
            client_no_context_takeover: !takeover,
            ..lenient
        };
        let connect = || {
            let client = Client::connect(&url(addr, "/relay"), &client_options(config));
            let client = client.expect("connects");
            assert!(client.compression().is_some(), "compression agreed");
            let timeout = Some(std::time::Duration::from_secs(5));
            client.set_read_timeout(timeout).expect("timeout");
            client
        };
        let (mut a, mut b) = (connect(), connect());
        for round in 0..3 {
            let from_a = format!("a {round} {}", "compressible ".repeat(20));
            a.send_text(&from_a).expect("send");
            assert_eq!(a.recv().expect("reply"), Message::Text(from_a.clone()));
            if round > 0 {
                assert_eq!(b.recv().expect("relay"), Message::Text(from_a));
            }
            let from_b = vec![7u8; 300 + round];
            b.send_binary(&from_b).expect("send");
            assert_eq!(b.recv().expect("reply"), Message::Binary(from_b.clone()));
            assert_eq!(a.recv().expect("relay"), Message::Binary(from_b));
        }
    }
}
