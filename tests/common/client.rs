//! The raw client: one blocking TCP connection with timeouts, writes of arbitrary bytes
//! and frames, and reading of the server's frames with the crate's own header decoder.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use wsloop::protocol::{Decoded, FrameHeader, OpCode};

use super::http::{Request, assert_switching_protocols};
use super::{FIN, IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, close_body, frame, fresh_key};

/// A frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// FIN bit.
    pub(crate) fin: bool,
    /// RSV bits as they sit in byte 0.
    pub(crate) rsv: u8,
    /// The opcode.
    pub(crate) opcode: OpCode,
    /// Header length on the wire (2, 4 or 10 for an unmasked server frame).
    pub(crate) header_len: usize,
    /// The payload.
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// The close code and reason of a close frame (`None` for an empty body).
    pub(crate) fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, OpCode::Close, "not a close frame: {self:?}");
        match self.payload.as_slice() {
            [] => None,
            [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
            [_] => panic!("server sent a 1-byte close body (§5.5.1 forbids it)"),
        }
    }
}

/// A blocking raw WebSocket client (or plain HTTP client) over one TCP connection.
pub(crate) struct Client {
    stream: TcpStream,
    /// Bytes received and not consumed yet, from `pos`.
    inbuf: Vec<u8>,
    pos: usize,
}

impl Client {
    /// Connects with read/write timeouts and Nagle off (each write is its own segment).
    pub(crate) fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the test server");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            inbuf: Vec::new(),
            pos: 0,
        }
    }

    /// A second handle on the socket, to write from another thread while this one reads.
    pub(crate) fn writer(&self) -> TcpStream {
        self.stream.try_clone().expect("clone the socket")
    }

    /// Performs the opening handshake on `target` with a fresh key; asserts the 101 (§4.2.2).
    pub(crate) fn upgrade(&mut self, target: &str) {
        let key = fresh_key();
        let request = Request::upgrade(target).set("Sec-WebSocket-Key", &key);
        self.send(&request.to_bytes());
        let response = self.read_response();
        assert_switching_protocols(&response, &key);
    }

    /// Writes `bytes` in one call.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
    }

    /// Writes `bytes` one byte per `write` call.
    ///
    /// The 1 ms pause only makes separate TCP segments likely; correctness does not depend
    /// on it, since the server must cope with any split.
    pub(crate) fn send_bytewise(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.stream.write_all(&[*byte]).expect("write one byte");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends a masked frame with first byte `b0`.
    pub(crate) fn send_frame(&mut self, b0: u8, payload: &[u8]) {
        self.send(&frame(b0, payload));
    }

    /// Sends a masked, final text frame.
    pub(crate) fn send_text(&mut self, text: &str) {
        self.send_frame(FIN | OP_TEXT, text.as_bytes());
    }

    /// Sends a masked, final binary frame.
    pub(crate) fn send_binary(&mut self, bytes: &[u8]) {
        self.send_frame(FIN | OP_BINARY, bytes);
    }

    /// Sends a masked ping.
    pub(crate) fn send_ping(&mut self, payload: &[u8]) {
        self.send_frame(FIN | OP_PING, payload);
    }

    /// Sends a masked close frame with `code` and `reason`.
    pub(crate) fn send_close(&mut self, code: u16, reason: &str) {
        self.send_frame(FIN | OP_CLOSE, &close_body(code, reason.as_bytes()));
    }

    /// Shuts down both directions without a closing handshake (the peer "disappears").
    pub(crate) fn vanish(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Shuts down our write side only (TCP half-close): we can still read the answer.
    pub(crate) fn half_close(&self) {
        self.stream
            .shutdown(Shutdown::Write)
            .expect("shutdown(Write)");
    }

    /// Sends `tail`, then drops the connection so that the kernel sends RST, not FIN: a
    /// ping's pong is left unread in the receive buffer when the socket is closed.
    pub(crate) fn reset_after(mut self, tail: &[u8]) {
        assert!(
            self.pending().is_empty(),
            "reset_after needs an empty read buffer"
        );
        self.send_ping(b"unread");
        let mut probe = [0u8; 1];
        let n = self.stream.peek(&mut probe).expect("the pong arrives");
        assert_eq!(n, 1, "server closed TCP before answering the ping");
        self.send(tail);
    }

    /// Reads more bytes into the buffer; false at EOF.
    pub(super) fn fill(&mut self) -> io::Result<bool> {
        if self.pos > 0 && self.pos * 2 >= self.inbuf.len() {
            self.inbuf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.inbuf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The unconsumed bytes.
    pub(super) fn pending(&self) -> &[u8] {
        &self.inbuf[self.pos..]
    }

    /// Marks `n` pending bytes as used.
    pub(super) fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    /// Reads the next frame; `Ok(None)` if the server closed TCP first.
    pub(crate) fn try_read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.parse_frame()? {
                return Ok(Some(frame));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// A complete frame at the front of the buffer, consumed, if there is one.
    fn parse_frame(&mut self) -> io::Result<Option<Frame>> {
        let decoded = FrameHeader::decode(self.pending()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad server frame: {e}"))
        })?;
        let Decoded::Complete(header, header_len) = decoded else {
            return Ok(None);
        };
        assert_eq!(header.mask, None, "§5.1: a server MUST NOT mask its frames");
        let len = usize::try_from(header.payload_len).expect("payload fits memory");
        if self.pending().len() < header_len + len {
            return Ok(None);
        }
        let payload = self.pending()[header_len..header_len + len].to_vec();
        self.consume(header_len + len);
        Ok(Some(Frame {
            fin: header.fin,
            rsv: header.rsv,
            opcode: header.opcode,
            header_len,
            payload,
        }))
    }

    /// Reads the next frame; panics on EOF or timeout.
    pub(crate) fn read_frame(&mut self) -> Frame {
        match self.try_read_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("server closed TCP where a frame was expected"),
            Err(e) => panic!("no frame from the server within {IO_TIMEOUT:?}: {e}"),
        }
    }

    /// Reads the next frame and asserts it is a final, unfragmented text frame with `text`.
    pub(crate) fn expect_text(&mut self, text: &str) {
        let frame = self.read_frame();
        assert_eq!(
            (frame.opcode, frame.fin, frame.rsv),
            (OpCode::Text, true, 0)
        );
        assert_eq!(String::from_utf8_lossy(&frame.payload), text);
    }

    /// Reads the next frame and asserts it is a final binary frame with `bytes`.
    pub(crate) fn expect_binary(&mut self, bytes: &[u8]) {
        let frame = self.read_frame();
        assert_eq!(
            (frame.opcode, frame.fin, frame.rsv),
            (OpCode::Binary, true, 0)
        );
        assert_eq!(frame.payload.len(), bytes.len(), "binary length");
        assert!(frame.payload == bytes, "binary payload differs");
    }

    /// Reads the next frame and asserts it is a pong carrying `payload` (§5.5.3).
    pub(crate) fn expect_pong(&mut self, payload: &[u8]) {
        let frame = self.read_frame();
        assert_eq!((frame.opcode, frame.fin), (OpCode::Pong, true), "{frame:?}");
        assert_eq!(
            frame.payload, payload,
            "§5.5.3: pong echoes the ping's payload"
        );
    }

    /// Reads the next frame, which must be a close frame; returns (code, reason).
    pub(crate) fn read_close(&mut self) -> (Option<u16>, String) {
        let frame = self.read_frame();
        assert_eq!(
            frame.opcode,
            OpCode::Close,
            "expected a close frame, got {frame:?}"
        );
        assert!(frame.fin, "§5.5: control frames are not fragmented");
        let code = frame.close_code();
        let reason = frame.payload.get(2..).unwrap_or_default();
        let reason = String::from_utf8(reason.to_vec()).expect("§5.5.1: close reason is UTF-8");
        (code, reason)
    }

    /// Expects a close frame with `code` as the next frame, then the server closing TCP.
    ///
    /// Returns the close reason.
    pub(crate) fn expect_close(&mut self, code: u16) -> String {
        let (got, reason) = self.read_close();
        assert_eq!(got, Some(code), "close code (reason {reason:?})");
        self.expect_eof();
        reason
    }

    /// Expects the server to close TCP (read returns 0) within [`IO_TIMEOUT`], with no bytes
    /// before it.
    pub(crate) fn expect_eof(&mut self) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            assert!(
                self.pending().is_empty(),
                "unexpected bytes where EOF was expected: {:02x?}",
                &self.pending()[..self.pending().len().min(64)]
            );
            match self.fill() {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => panic!("server did not close TCP within {IO_TIMEOUT:?}: {e}"),
            }
            assert!(
                Instant::now() < deadline,
                "server did not close TCP in time"
            );
        }
    }

    /// Runs the client side of a clean closing handshake (§5.5.1, §7.1.2).
    pub(crate) fn close_cleanly(mut self) {
        self.send_close(1000, "bye");
        self.expect_close(1000);
    }
}
