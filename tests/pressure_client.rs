//! The client's reading of a server's answer, against a scripted server on a loopback
//! port: every `Sec-WebSocket-Extensions` line is checked (RFC 6455 §4.1), and an answer
//! that trickles in byte by byte is read as it arrives.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use wsloop::client::{Client, ClientError, ClientOptions};
use wsloop::protocol::deflate::DeflateConfig;
use wsloop::protocol::handshake::accept_key;
use wsloop::protocol::handshake::client::ClientHandshakeError;

const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// A one-connection server that answers the handshake with a 101 carrying `extra` header
/// lines, written `chunk` bytes at a time; returns its URL and thread.
fn scripted(extra: &'static str, chunk: usize) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let url = format!("ws://{}/echo", listener.local_addr().expect("addr"));
    let thread = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let key = read_key(&stream);
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            accept_key(&key)
        );
        let mut stream = stream;
        stream.set_nodelay(true).expect("nodelay");
        for piece in answer.as_bytes().chunks(chunk) {
            if stream.write_all(piece).is_err() {
                return;
            }
            if chunk < answer.len() {
                thread::sleep(Duration::from_micros(200));
            }
        }
        thread::sleep(Duration::from_millis(200));
    });
    (url, thread)
}

/// Reads the request head; returns its `Sec-WebSocket-Key`.
fn read_key(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut key = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("request line");
        if line.trim().is_empty() {
            return key;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("sec-websocket-key")
        {
            key = value.trim().to_owned();
        }
    }
}

fn offering_deflate() -> ClientOptions {
    ClientOptions {
        compression: Some(DeflateConfig::default()),
        ..ClientOptions::default()
    }
}

#[test]
fn an_unoffered_extension_on_a_second_line_fails_the_handshake() {
    let extra = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover\r\nSec-WebSocket-Extensions: x-unoffered\r\n";
    assert!(extra.contains(AGREED));
    let (url, server) = scripted(extra, usize::MAX);
    let result = Client::connect(&url, &offering_deflate());
    assert!(
        matches!(
            result,
            Err(ClientError::Handshake(ClientHandshakeError::BadExtension(
                _
            )))
        ),
        "{:?}",
        result.map(|_| "connected")
    );
    server.join().expect("server thread");
}

#[test]
fn an_answer_trickling_in_byte_by_byte_is_read() {
    let extra = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover\r\n";
    assert!(extra.contains(AGREED));
    let (url, server) = scripted(extra, 1);
    let client = Client::connect(&url, &offering_deflate()).expect("handshake");
    assert!(client.compression().is_some());
    server.join().expect("server thread");
}
