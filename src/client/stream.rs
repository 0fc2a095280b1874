//! The blocking client's byte stream: plain TCP, or TLS over it (rustls' `StreamOwned`
//! does the blocking reads and writes, the handshake included, on first use).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};

use rustls::{ClientConnection, StreamOwned};

/// A connected stream.
#[derive(Debug)]
pub(super) enum ClientStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl ClientStream {
    /// The TCP socket (timeouts, shutdown).
    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(s) => &s.sock,
        }
    }

    /// Ends the connection: TLS says `close_notify` first (RFC 8446 §6.1).
    pub(super) fn shutdown(&mut self) {
        if let Self::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            // A TCP end without close_notify is still an end (the session reports 1006).
            Self::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write_vectored(bufs),
            Self::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}
