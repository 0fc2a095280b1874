//! The transport under a non-blocking connection: plain TCP, or TLS driven by the same
//! loop. The server's connections use it, and so does a client's
//! [`MioStream`](crate::client::MioStream) (the load generator's connections).
//!
//! rustls does no I/O: a [`rustls::Connection`] (server or client side) takes ciphertext (`read_tls`), decrypts
//! it (`process_new_packets`, then `reader`), encrypts what it is given (`writer`) and hands
//! ciphertext back (`write_tls`). [`Stream`] puts those calls behind `Read` and `Write`, so
//! the read path, the outbound queue and the protocol above see plaintext either way; the
//! loop adds three things for TLS: read until `WouldBlock` (a decrypted record may leave
//! ciphertext in the socket), flush ciphertext the handshake produced
//! ([`Stream::wants_write`]), and keep a connection that is still handshaking open until its
//! answer is encrypted and out ([`Stream::settled`]).
//!
//! Backpressure stays in the outbound queue: [`Stream`] accepts no plaintext while earlier
//! ciphertext is still unsent, so rustls holds at most one batch of records.

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token, event};
use rustls::Connection;

/// What a client that speaks plain HTTP to a TLS port gets back before the connection is
/// closed (TLS records start with 0x16; an HTTP request with a letter).
const NOT_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 46\r\nConnection: close\r\n\r\nThis port speaks TLS: use https:// or wss://.\n";

/// A connection's byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
}

/// A TCP stream with its rustls server state.
#[derive(Debug)]
pub(crate) struct TlsStream {
    tcp: TcpStream,
    tls: Connection,
    /// Ciphertext bytes received while the TLS handshake was in progress (they count towards
    /// the handshake byte-rate floor, like the bytes of a request head).
    handshake_bytes: usize,
    /// Whether the first bytes were looked at (a plain HTTP request gets a 400).
    sniffed: bool,
}

impl Stream {
    /// Wraps a socket: TLS when given a rustls connection (an accepting listener's server
    /// side, or a client's).
    pub(crate) fn new(tcp: TcpStream, tls: Option<Connection>) -> Self {
        match tls {
            None => Self::Plain(tcp),
            Some(tls) => Self::Tls(Box::new(TlsStream {
                tcp,
                tls,
                handshake_bytes: 0,
                sniffed: false,
            })),
        }
    }

    /// Whether this is a TLS connection.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    /// TLS bytes received during the TLS handshake (0 for plain TCP).
    pub(crate) fn handshake_bytes(&self) -> usize {
        match self {
            Self::Plain(_) => 0,
            Self::Tls(s) => s.handshake_bytes,
        }
    }

    /// Whether TLS has ciphertext to send (a handshake message, an alert).
    pub(crate) fn wants_write(&self) -> bool {
        matches!(self, Self::Tls(s) if s.tls.wants_write())
    }

    /// Whether everything written so far is on the wire: the TLS handshake is done and no
    /// ciphertext is held back. A lingering connection is shut only once settled.
    pub(crate) fn settled(&self) -> bool {
        match self {
            Self::Plain(_) => true,
            Self::Tls(s) => !s.tls.is_handshaking() && !s.tls.wants_write(),
        }
    }

    /// Sends pending ciphertext; `WouldBlock` if some is left for a WRITABLE event.
    pub(crate) fn flush_transport(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(_) => Ok(()),
            Self::Tls(s) => s.flush_tls(),
        }
    }

    /// Shuts the write side; for TLS, sends `close_notify` first (RFC 8446 §6.1: "Each
    /// party MUST send a "close_notify" alert before closing its write side of the
    /// connection"), best effort: the queue is empty, so it normally fits the socket buffer.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.shutdown(Shutdown::Write),
            Self::Tls(s) => {
                s.tls.send_close_notify();
                let _ = s.flush_tls();
                s.tcp.shutdown(Shutdown::Write)
            }
        }
    }
}

impl TlsStream {
    fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.tcp)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Reads ciphertext once and decrypts it; `Ok(false)` at EOF.
    fn read_records(&mut self) -> io::Result<bool> {
        if !self.sniffed && matches!(self.tls, Connection::Server(_)) {
            self.sniffed = true;
            self.refuse_plain_http()?;
        }
        let n = self.tls.read_tls(&mut self.tcp)?;
        if n == 0 {
            return Ok(false);
        }
        if self.tls.is_handshaking() {
            self.handshake_bytes += n;
        }
        if let Err(e) = self.tls.process_new_packets() {
            // The alert rustls queued says why; then the connection is dropped.
            let _ = self.flush_tls();
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // Handshake messages go out at once where the socket takes them; the rest is sent
        // when the loop flushes the connection (see `wants_write`).
        match self.flush_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(true),
        }
    }

    /// A client speaking plain HTTP to the TLS port gets a readable 400, not a TLS alert.
    fn refuse_plain_http(&mut self) -> io::Result<()> {
        let mut first = [0u8; 1];
        match self.tcp.peek(&mut first) {
            Ok(1) if first[0].is_ascii_alphabetic() => {
                let _ = self.tcp.write(NOT_TLS);
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "plain HTTP on the TLS port",
                ))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.sniffed = false;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = match self {
            Self::Plain(tcp) => return tcp.read(buf),
            Self::Tls(s) => s,
        };
        loop {
            match s.tls.reader().read(buf) {
                Ok(n) => return Ok(n), // 0: the peer's close_notify
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP EOF without close_notify: an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !s.read_records()? {
                return Ok(0);
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            // send(2): one slice skips the iovec import and the VFS layer of a writev.
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(_) => self.write_vectored(&[IoSlice::new(buf)]),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let s = match self {
            Self::Plain(tcp) => return tcp.write_vectored(bufs),
            Self::Tls(s) => s,
        };
        s.flush_tls()?;
        let n = s.tls.writer().write_vectored(bufs)?;
        match s.flush_tls() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_transport()
    }
}

impl event::Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp_mut().register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.tcp_mut().reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp_mut().deregister(registry)
    }
}

impl Stream {
    /// The TCP socket under the stream.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(s) => &s.tcp,
        }
    }

    fn tcp_mut(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(s) => &mut s.tcp,
        }
    }
}
