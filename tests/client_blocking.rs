//! The blocking client against the real server over loopback: echo, ping, close, refusals.

use std::net::SocketAddr;

use wsloop::client::{Client, ClientError, ClientOptions, Disconnect, Message};
use wsloop::protocol::handshake::client::ClientHandshakeError;
use wsloop::server::{Server, ServerConfig, Spawned};

/// A server on 127.0.0.1:0 that exits when dropped.
struct Running(Option<Spawned>);

impl Running {
    fn start() -> Self {
        let config = ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            handshake_rate: None,
            subprotocols: vec!["v2.echo".into()],
            ..ServerConfig::default()
        };
        Self(Some(Server::spawn(config).expect("server starts")))
    }

    fn url(&self, path: &str) -> String {
        format!(
            "ws://{}{path}",
            self.0.as_ref().map(|s| s.local_addr).expect("running")
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(spawned) = self.0.take() {
            let _ = spawned.handle.exit_now();
            let _ = spawned.thread.join();
        }
    }
}

#[test]
fn echo_round_trip_text_binary_and_large() {
    let server = Running::start();
    let mut client = Client::connect(&server.url("/echo"), &ClientOptions::default()).unwrap();
    client.send_text("héllo").unwrap();
    assert_eq!(client.recv().unwrap(), Message::Text("héllo".into()));
    client.send_binary(&[0, 1, 2, 255]).unwrap();
    assert_eq!(client.recv().unwrap(), Message::Binary(vec![0, 1, 2, 255]));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    client.send_binary(&big).unwrap();
    assert_eq!(client.recv().unwrap(), Message::Binary(big));
    client.ping(b"are you there").unwrap();
    assert_eq!(
        client.recv().unwrap(),
        Message::Pong(b"are you there".to_vec())
    );
    client.close(1000, "bye").unwrap();
    assert!(matches!(
        client.send_text("late"),
        Err(ClientError::Usage(_))
    ));
}

#[test]
fn subprotocol_is_negotiated() {
    let server = Running::start();
    let options = ClientOptions {
        protocols: vec!["v1.echo".into(), "v2.echo".into()],
        ..ClientOptions::default()
    };
    let client = Client::connect(&server.url("/echo"), &options).unwrap();
    assert_eq!(client.protocol(), Some("v2.echo"));
}

#[test]
fn refusals_carry_the_status_and_classify_for_retry() {
    let server = Running::start();
    let err = Client::connect(&server.url("/nope"), &ClientOptions::default()).unwrap_err();
    match &err {
        ClientError::Handshake(ClientHandshakeError::Status { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    assert_eq!(err.disconnect(), Disconnect::Refused(404));
    let refused = Client::connect("ws://127.0.0.1:1/", &ClientOptions::default()).unwrap_err();
    assert!(matches!(refused, ClientError::Io(_)));
    assert_eq!(refused.disconnect(), Disconnect::Network);
    assert!(matches!(
        Client::connect("ftp://x/", &ClientOptions::default()),
        Err(ClientError::Url(_))
    ));
}

#[test]
fn server_close_is_reported_with_its_code() {
    let server = Running::start();
    let mut client =
        Client::connect(&server.url("/ws?user_id=ann"), &ClientOptions::default()).unwrap();
    let Message::Text(welcome) = client.recv().unwrap() else {
        panic!("welcome expected")
    };
    assert!(welcome.contains("\"user_id\":\"ann\""));
    if let Some(spawned) = &server.0 {
        spawned.handle.shutdown().unwrap();
    }
    match client.recv() {
        Err(ClientError::Closed { code: 1001, reason }) => {
            assert_eq!(reason, "server shutting down")
        }
        other => panic!("expected close 1001, got {other:?}"),
    }
}
