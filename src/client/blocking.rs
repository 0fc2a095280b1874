//! A blocking client over `std::net` (`ws://`, and `wss://` with rustls), for scripts, tests
//! and the interactive `wsloop client`.
//!
//! It is the client role of the same sans-IO [`Session`] the server uses: every frame it
//! sends is masked with a fresh key from the OS (§5.3), pings are answered, and the close
//! handshake is completed. The load generator does not use it; it drives the same pieces
//! on mio.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};

use super::error::ClientError;
use super::random::{mask_key, nonce};
use super::stream::ClientStream;
use super::tls::{TlsTrust, client_config, server_name};
use super::url::WsUrl;
use crate::protocol::deflate::{DeflateConfig, DeflateParams, DeflaterPool, client_offer};
use crate::protocol::handshake::accept::key_from_nonce;
use crate::protocol::handshake::client::{ClientRequest, ResponseParser, accepted_deflate};
use crate::protocol::{
    CloseCode, CloseState, Decoded, Event, Limits, MessageKind, Read as Got, Session,
};

/// Settings for [`Client::connect`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// Extra handshake headers, e.g. `Authorization: Bearer …`.
    pub headers: Vec<(String, String)>,
    /// Size limits on what the server sends. Default: 16 MiB.
    pub limits: Limits,
    /// TCP connect and handshake timeout. Default: 10 s.
    pub connect_timeout: Duration,
    /// Offer permessage-deflate (RFC 7692) with these parameters; the server may decline.
    /// Default: `None` (no offer).
    pub compression: Option<DeflateConfig>,
    /// For `wss://`: which server certificates to accept. Default: the system roots.
    pub tls: TlsTrust,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            headers: Vec::new(),
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(10),
            compression: None,
            tls: TlsTrust::System,
        }
    }
}

/// A message received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (already answered).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
}

/// An open WebSocket connection to a server.
#[derive(Debug)]
pub struct Client {
    stream: ClientStream,
    session: Session,
    /// Received bytes not consumed yet.
    input: Vec<u8>,
    /// The subprotocol the server chose.
    protocol: Option<String>,
    /// The compressor for messages sent without context takeover (permessage-deflate).
    deflaters: DeflaterPool,
}

impl Client {
    /// Connects, performs the opening handshake and checks the answer (§4.1).
    pub fn connect(url: &str, options: &ClientOptions) -> Result<Self, ClientError> {
        let url = WsUrl::parse(url).map_err(ClientError::Url)?;
        let tcp = connect_tcp(&url, options.connect_timeout)?;
        tcp.set_nodelay(true)?;
        // Bounds the TLS handshake too: it runs on the first write and read below.
        tcp.set_read_timeout(Some(options.connect_timeout))?;
        let stream = if url.secure {
            let tls = ClientConnection::new(client_config(&options.tls)?, server_name(&url.host)?)
                .map_err(|e| ClientError::Tls(e.to_string()))?;
            ClientStream::Tls(Box::new(StreamOwned::new(tls, tcp)))
        } else {
            ClientStream::Plain(tcp)
        };
        let key = key_from_nonce(nonce());
        let mut request = Vec::with_capacity(256);
        let host = url.host_header();
        let mut headers = options.headers.clone();
        if let Some(config) = &options.compression {
            headers.push(("Sec-WebSocket-Extensions".into(), client_offer(config)));
        }
        ClientRequest {
            host: &host,
            target: &url.target,
            key: &key,
            protocols: &options.protocols,
            headers: &headers,
        }
        .encode(&mut request);
        let mut client = Self {
            stream,
            session: Session::client(options.limits, mask_key),
            input: Vec::new(),
            protocol: None,
            deflaters: DeflaterPool::new(options.compression.map_or(6, |c| c.level)),
        };
        client.stream.write_all(&request)?;
        client.read_handshake(&key, options)?;
        client.stream.tcp().set_read_timeout(None)?;
        Ok(client)
    }

    fn read_handshake(&mut self, key: &str, options: &ClientOptions) -> Result<(), ClientError> {
        let mut parser = ResponseParser::new();
        loop {
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed during the handshake",
                )
                .into());
            }
            self.input.extend_from_slice(&chunk[..n]);
            let parsed = parser.parse(&self.input, key, &options.protocols);
            match parsed.map_err(ClientError::Handshake)? {
                Decoded::Partial => continue,
                Decoded::Complete(accept, used) => {
                    self.input.drain(..used);
                    let offered = options.compression.as_ref();
                    let agreed =
                        accepted_deflate(&accept, offered).map_err(ClientError::Handshake)?;
                    if let (Some(params), Some(config)) = (agreed, offered) {
                        let session = std::mem::replace(
                            &mut self.session,
                            Session::client(options.limits, mask_key),
                        );
                        self.session = session.with_deflate(params, config);
                    }
                    self.protocol = accept.protocol;
                    return Ok(());
                }
            }
        }
    }

    /// The subprotocol the server selected.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate parameters agreed with the server, if any.
    pub fn compression(&self) -> Option<&DeflateParams> {
        self.session.deflate().map(|d| d.params())
    }

    /// Sets how long [`Client::recv`] may block (`None`: forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.tcp().set_read_timeout(timeout)
    }

    /// Sends a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.send(MessageKind::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.send(MessageKind::Binary, data)
    }

    fn send(&mut self, kind: MessageKind, payload: &[u8]) -> Result<(), ClientError> {
        let mut out = Vec::with_capacity(payload.len() + 14);
        let sent = self
            .session
            .send_pooled(kind, payload, &mut self.deflaters, &mut out);
        // On a compression failure `out` holds the session's close 1011 instead.
        self.stream.write_all(&out)?;
        sent.map_err(ClientError::Usage)
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        let mut out = Vec::new();
        self.session
            .ping(payload, &mut out)
            .map_err(ClientError::Usage)?;
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// Waits for the next message. Pings are answered on the way.
    ///
    /// When the server closes, the close is answered and `Err(Closed { code, reason })`
    /// returned; a connection lost without a close frame gives `Closed { code: 1006 }`.
    pub fn recv(&mut self) -> Result<Message, ClientError> {
        loop {
            if let Some(result) = self.next_buffered()? {
                return result;
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(ClientError::Closed {
                    code: 1006,
                    reason: "connection lost".into(),
                });
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }

    /// Takes one event out of the buffered input, if a whole one is there.
    #[allow(clippy::type_complexity)]
    fn next_buffered(&mut self) -> Result<Option<Result<Message, ClientError>>, ClientError> {
        let mut out = Vec::new();
        let read = self.session.read(&mut self.input, &mut out);
        let (consumed, result) = match read {
            Ok(Got { consumed, event }) => (consumed, event.map(owned)),
            Err(e) => (self.input.len(), Some(Err(ClientError::Protocol(e)))),
        };
        self.input.drain(..consumed);
        if !out.is_empty() {
            self.stream.write_all(&out)?;
        }
        Ok(result)
    }

    /// Sends a close frame with `code` and `reason` and returns at once. [`Client::recv`]
    /// still returns the messages the server sent before its reply (the answers to the last
    /// requests), then `Err(Closed)` when the reply arrives.
    pub fn start_close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        let mut out = Vec::new();
        if self.session.close(CloseCode(code), reason, &mut out) {
            self.stream.write_all(&out)?;
        }
        Ok(())
    }

    /// Whether the closing handshake is complete (both close frames seen).
    pub fn is_closed(&self) -> bool {
        self.session.close_state() == CloseState::Closed
    }

    /// Closes with `code` and `reason` and waits (up to 5 s) for the server's reply.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        self.start_close(code, reason)?;
        self.stream
            .tcp()
            .set_read_timeout(Some(Duration::from_secs(5)))?;
        while self.session.close_state() != CloseState::Closed {
            match self.recv() {
                Ok(_) => {}
                Err(ClientError::Closed { .. }) => break,
                Err(ClientError::Io(e))
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.stream.shutdown();
        Ok(())
    }
}

/// Converts a borrowed event into an owned message, or the end of the connection.
fn owned(event: Event<'_>) -> Result<Message, ClientError> {
    Ok(match event {
        Event::Text(t) => Message::Text(t.to_owned()),
        Event::Binary(b) => Message::Binary(b.to_vec()),
        Event::Ping(p) => Message::Ping(p.to_vec()),
        Event::Pong(p) => Message::Pong(p.to_vec()),
        Event::Close(frame) => {
            let code = frame.code.map_or(1005, |c| c.0);
            return Err(ClientError::Closed {
                code,
                reason: frame.reason.to_owned(),
            });
        }
    })
}

fn connect_tcp(url: &WsUrl, timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last = None;
    for addr in url.socket_addr().to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host has no address"))
        .into())
}
