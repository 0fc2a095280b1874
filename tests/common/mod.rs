//! Shared pieces of the loopback integration tests: a server on port 0 that is always
//! stopped, and a small blocking raw WebSocket client on `std::net::TcpStream`.
//!
//! The client is deliberately dumb: it writes exactly the bytes a test asks for (any header
//! bits, masked or not, split or pipelined) and decodes what the server sends with the
//! crate's own sans-IO `FrameHeader::decode`. Every socket has read and write timeouts, so
//! a server that never answers fails the test instead of hanging it.
//!
//! - this file: constants, frame encoding, and [`TestServer`];
//! - [`client`]: the raw [`Client`], its writes and its frame reading;
//! - [`http`]: requests to send and responses to read;
//! - [`api`]: the publish API; [`authz`]: tokens and rules of the authorization tests.

#![allow(dead_code)] // Each test crate uses a different subset of these helpers.

pub(crate) mod api;
pub(crate) mod authz;
mod client;
pub(crate) mod guard;
mod http;
pub(crate) mod hub;

use std::io;
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use wsloop::protocol::OpCode;
use wsloop::protocol::frame::{FrameHeader, encode_frame};
use wsloop::protocol::handshake::accept::key_from_nonce;
use wsloop::server::{Server, ServerBuilder, ServerConfig, ServerHandle};

#[allow(unused_imports)] // Not every test crate names every helper.
pub(crate) use client::{Client, Frame};
#[allow(unused_imports)]
pub(crate) use http::{
    HttpResponse, Request, SAMPLE_ACCEPT, SAMPLE_KEY, assert_switching_protocols,
};

/// How long any single read or write may block before the test fails.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long asynchronous server-side effects (removal after close) get before we assert.
pub(crate) const SETTLE: Duration = Duration::from_secs(5);

/// FIN bit of byte 0.
pub(crate) const FIN: u8 = 0x80;
/// RSV1, RSV2, RSV3 bits of byte 0.
pub(crate) const RSV1: u8 = 0x40;
pub(crate) const RSV2: u8 = 0x20;
pub(crate) const RSV3: u8 = 0x10;
/// Opcodes as raw 4-bit values (so reserved ones can be sent too).
pub(crate) const OP_CONT: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// A masking key that changes from frame to frame (tests need variety, not entropy).
fn next_mask_key() -> [u8; 4] {
    use std::sync::atomic::{AtomicU32, Ordering};
    static STATE: AtomicU32 = AtomicU32::new(0x9E37_79B9);
    let x = STATE.fetch_add(0x6D2B_79F5, Ordering::Relaxed);
    (x ^ (x >> 15)).wrapping_mul(0x2C1B_3C6D).to_be_bytes()
}

/// A fresh `Sec-WebSocket-Key` (base64 of 16 bytes).
pub(crate) fn fresh_key() -> String {
    let mut nonce = [0u8; 16];
    for chunk in nonce.chunks_mut(4) {
        chunk.copy_from_slice(&next_mask_key());
    }
    key_from_nonce(nonce)
}

/// A masked client frame: `b0` is the whole first byte (FIN, RSV bits, raw opcode).
pub(crate) fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    encode_raw(b0, payload, Some(next_mask_key()))
}

/// An unmasked frame, which a server must refuse (§5.1).
pub(crate) fn unmasked_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    encode_raw(b0, payload, None)
}

/// Encodes with the crate's encoder, then overwrites byte 0 with arbitrary bits.
fn encode_raw(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let header = FrameHeader::single(OpCode::Binary, payload.len(), mask);
    let mut out = Vec::with_capacity(payload.len() + 14);
    encode_frame(&header, payload, &mut out);
    out[0] = b0;
    out
}

/// A close frame body: the code in network byte order, then the reason bytes.
pub(crate) fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason);
    body
}

/// The default configuration with the per-IP limits off, adjusted by `configure`, on
/// `127.0.0.1:0` whatever it says.
///
/// Every test connects from 127.0.0.1, many times a second, so the per-IP limits
/// (handshake rate, connections per IP) are off unless a test turns them on.
fn test_config(configure: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = ServerConfig {
        handshake_rate: None,
        max_connections_per_ip: 0,
        ..ServerConfig::default()
    };
    configure(&mut config);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config
}

/// A server started on `127.0.0.1:0`, stopped (at once) when dropped.
pub(crate) struct TestServer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its stop handle.
    pub(crate) handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// A server with the default configuration.
    pub(crate) fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// A server whose default configuration `configure` adjusts (see [`test_config`]).
    pub(crate) fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let spawned = Server::spawn(test_config(configure)).expect("server starts on port 0");
        Self {
            addr: spawned.local_addr,
            handle: spawned.handle,
            thread: Some(spawned.thread),
        }
    }

    /// A server with the applications `routes` adds (built on the loop's own thread, as
    /// apps need not be `Send`), and the configuration `configure` adjusts as in
    /// [`Self::start_with`].
    pub(crate) fn start_apps(
        configure: impl FnOnce(&mut ServerConfig),
        routes: impl FnOnce(ServerBuilder) -> ServerBuilder + Send + 'static,
    ) -> Self {
        let config = test_config(configure);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = thread::spawn(move || {
            let mut server = routes(Server::builder(config)).bind()?;
            let _ = tx.send((server.local_addr(), server.handle()));
            server.run()
        });
        let (addr, handle) = rx.recv().expect("server starts on port 0");
        Self {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// A [`wsloop::client::Client`] connected to `path`, which gives up on a read after
    /// 10 s.
    pub(crate) fn ws(&self, path: &str) -> wsloop::client::Client {
        let url = format!("ws://{}{path}", self.addr);
        let client = wsloop::client::Client::connect(&url, &Default::default()).expect("connect");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        client
    }

    /// Like [`Self::start_with`], but the loop runs on a thread with only `stack` bytes of
    /// stack, so a test can show that the loop's stack does not grow with its load.
    pub(crate) fn start_on_stack(stack: usize, configure: impl FnOnce(&mut ServerConfig)) -> Self {
        let config = test_config(configure);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = thread::Builder::new()
            .name("wsloop-small-stack".into())
            .stack_size(stack)
            .spawn(move || {
                let mut server = Server::bind(config)?;
                let _ = tx.send((server.local_addr(), server.handle()));
                server.run()
            })
            .expect("spawn the loop's thread");
        let (addr, handle) = rx.recv().expect("server starts on port 0");
        Self {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// A raw TCP client, nothing sent yet.
    pub(crate) fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A client that completed the opening handshake on `target` (asserts the 101).
    pub(crate) fn open(&self, target: &str) -> Client {
        let mut client = self.connect();
        client.upgrade(target);
        client
    }

    /// Sends a request on a new connection and reads the whole answer, up to EOF.
    pub(crate) fn request(&self, request: &Request) -> HttpResponse {
        let mut client = self.connect();
        client.send(&request.to_bytes());
        let response = client.read_response();
        client.expect_eof();
        response
    }

    /// The `/stats` document.
    pub(crate) fn stats(&self) -> serde_json::Value {
        let response = self.request(&Request::get("/stats"));
        assert_eq!(response.status, 200, "GET /stats");
        serde_json::from_slice(&response.body).expect("/stats is JSON")
    }

    /// Polls `/stats` until no connection but the poll's own is open; returns that document.
    ///
    /// Connections are removed asynchronously after they close, hence the bounded wait.
    pub(crate) fn wait_until_idle(&self) -> serde_json::Value {
        let deadline = Instant::now() + SETTLE;
        loop {
            let stats = self.stats();
            if stats["active_connections"] == 1 {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "connections still open after {SETTLE:?} (the /stats poll counts as 1): {stats}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a graceful shutdown (close 1001 to everyone, drain, exit).
    pub(crate) fn shutdown(&self) {
        self.handle.shutdown().expect("wake the loop");
    }

    /// Waits up to `within` for the loop's thread to end; returns the loop's result.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> io::Result<()> {
        let thread = self
            .thread
            .take()
            .expect("the server thread is joined once");
        let deadline = Instant::now() + within;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                self.thread = Some(thread);
                panic!("server loop still running {within:?} after it was asked to stop");
            }
            thread::sleep(Duration::from_millis(10));
        }
        thread.join().expect("server thread does not panic")
    }
}

impl Drop for TestServer {
    /// Stops the loop at once; a loop that does not stop within [`SETTLE`] is left behind
    /// (detached) rather than allowed to hang the test binary.
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = self.handle.exit_now();
        let deadline = Instant::now() + SETTLE;
        while !thread.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            eprintln!("server loop ignored exit_now for {SETTLE:?}; detaching its thread");
        }
    }
}
