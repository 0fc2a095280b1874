//! A client connection's byte stream for a caller's own `mio` loop: plain TCP, or TLS that
//! the same loop drives.
//!
//! [`Client`](super::Client) blocks, one connection per thread. A program that runs many
//! client connections on one thread (a load generator such as `wsloop bench`, a bridge, a
//! monitor) registers each [`MioStream`] with its `mio::Poll` and puts the sans-IO client
//! handshake ([`crate::protocol::handshake::client`]) and frame codec on top. The TLS
//! details a non-blocking caller would otherwise have to get right are the server's own
//! (`src/transport.rs`): rustls is read until it has no more records, handshake messages go
//! out as soon as the socket takes them, and no plaintext is accepted while earlier
//! ciphertext is still unsent, so rustls holds at most one batch of records.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token, event};
use rustls::ClientConnection;

use crate::transport::Stream;

/// A non-blocking client connection: plain TCP (`ws://`), or TLS over it (`wss://`).
///
/// Register it with a `mio` registry (it is an [`event::Source`]), wait until
/// [`connected`](Self::connected), then read and write as with any non-blocking socket:
/// `WouldBlock` means "wait for the next readiness event". With TLS, [`Read`] and [`Write`]
/// carry plaintext; [`Write::flush`] sends ciphertext rustls still holds (the TLS handshake,
/// or records a short write left behind) and returns `WouldBlock` if some remains, to be
/// resumed on the next WRITABLE event. A read of 0 bytes is the end of the stream (for
/// TLS, the server's `close_notify` or TCP EOF).
#[derive(Debug)]
pub struct MioStream(Stream);

impl MioStream {
    /// Starts a non-blocking TCP connect to `addr` (it returns before the connection is
    /// made; see [`connected`](Self::connected)). With `tls`, a rustls client connection
    /// for the server's name (see [`client_config`](super::tls::client_config)), the TLS
    /// handshake runs over it as the stream is read and flushed.
    pub fn connect(addr: SocketAddr, tls: Option<ClientConnection>) -> io::Result<Self> {
        let tcp = TcpStream::connect(addr)?;
        Ok(Self(Stream::new(tcp, tls.map(Into::into))))
    }

    /// Whether the non-blocking connect has finished: `Ok(false)` while it is in progress,
    /// `Err` with the reason if it failed (refused, unreachable). Call it on the first
    /// readiness event, as mio's `TcpStream::connect` asks.
    pub fn connected(&self) -> io::Result<bool> {
        let tcp = self.0.tcp();
        if let Some(e) = tcp.take_error()? {
            return Err(e);
        }
        match tcp.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether this is a TLS connection. A short plaintext read then says nothing of what
    /// is left in the socket: keep reading until `WouldBlock`.
    pub fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

impl Read for MioStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for MioStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl event::Source for MioStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.0.register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.0.reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.0.deregister(registry)
    }
}
