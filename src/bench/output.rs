//! What a bench connection has to send: a count of pre-masked frames, plus a few one-off
//! frames.
//!
//! Echo load is the same frame over and over, so it is encoded and masked once into a
//! [`Prebuilt`] run of identical frames shared by every connection (RFC 6455 wants a fresh
//! key per frame; a load generator may reuse one, and the server cannot tell). A connection
//! then only counts how many bytes of that endless stream it owes, and one `write` sends
//! many frames straight from the shared buffer. Joins, chat messages, pongs and closes go in
//! a small per-connection buffer, written only at a frame boundary of the stream.

use std::io::{self, Write};

use wsloop::client::random::mask_key;
use wsloop::protocol::frame::{FrameHeader, encode_frame};
use wsloop::protocol::{CloseCode, CloseFrame, OpCode};

/// Identical masked frames back to back, shared by all connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prebuilt {
    bytes: Vec<u8>,
    frame_len: usize,
}

impl Prebuilt {
    /// `copies + 1` copies of one masked frame (`copies` is the most frames ever owed at once;
    /// the spare copy lets a write start mid-frame and still find them contiguous).
    pub(crate) fn new(opcode: OpCode, payload: &[u8], copies: usize) -> Self {
        let mut frame = Vec::new();
        let header = FrameHeader::single(opcode, payload.len(), Some(mask_key()));
        encode_frame(&header, payload, &mut frame);
        let frame_len = frame.len();
        Self {
            bytes: frame.repeat(copies + 1),
            frame_len,
        }
    }

    /// Bytes per frame, header included.
    pub(crate) fn frame_len(&self) -> usize {
        self.frame_len
    }
}

/// A connection's pending output.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// One-off frames not yet written, from `extra_sent` on.
    extra: Vec<u8>,
    extra_sent: usize,
    /// Bytes of the prebuilt stream owed.
    owed: usize,
    /// Position inside the current prebuilt frame (0: at a frame boundary).
    phase: usize,
}

impl Output {
    /// Owes `frames` more frames of the prebuilt stream, each `frame_len` bytes
    /// ([`Prebuilt::frame_len`]).
    pub(crate) fn queue_prebuilt(&mut self, frames: usize, frame_len: usize) {
        self.owed += frames * frame_len;
    }

    /// Queues raw bytes (a handshake request).
    pub(crate) fn queue_raw(&mut self, bytes: &[u8]) {
        self.extra.extend_from_slice(bytes);
    }

    /// Queues a one-off frame, masked with a fresh key.
    pub(crate) fn queue_frame(&mut self, opcode: OpCode, payload: &[u8]) {
        let header = FrameHeader::single(opcode, payload.len(), Some(mask_key()));
        encode_frame(&header, payload, &mut self.extra);
    }

    /// Queues a close frame with `code`.
    pub(crate) fn queue_close(&mut self, code: u16) {
        let mut body = Vec::with_capacity(2);
        CloseFrame::encode_body(Some(CloseCode(code)), "", &mut body);
        self.queue_frame(OpCode::Close, &body);
    }

    /// Whether anything is left to write.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.owed == 0 && self.extra_sent == self.extra.len()
    }

    /// Writes as much as the socket takes. `Ok` also when it stopped at `WouldBlock`.
    pub(crate) fn flush(&mut self, socket: &mut impl Write, prebuilt: &Prebuilt) -> io::Result<()> {
        loop {
            let extra_ready = self.extra_sent < self.extra.len() && self.phase == 0;
            let chunk = if extra_ready {
                &self.extra[self.extra_sent..]
            } else if self.owed > 0 {
                // At most `copies` frames are owed, so this stays inside the buffer; the
                // `min` only keeps a caller that owes more from panicking (it writes less).
                let end = (self.phase + self.owed).min(prebuilt.bytes.len());
                &prebuilt.bytes[self.phase..end]
            } else {
                return Ok(());
            };
            let wanted = chunk.len();
            let written = match socket.write(chunk) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.advance(extra_ready, written, prebuilt.frame_len);
            if written < wanted {
                // The socket buffer is full; the next WRITABLE event resumes.
                return Ok(());
            }
        }
    }

    fn advance(&mut self, extra: bool, written: usize, frame_len: usize) {
        if extra {
            self.extra_sent += written;
            if self.extra_sent == self.extra.len() {
                self.extra.clear();
                self.extra_sent = 0;
            }
        } else {
            self.owed -= written;
            self.phase = (self.phase + written) % frame_len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `limit` bytes per write and then says `WouldBlock` once.
    struct Trickle {
        got: Vec<u8>,
        limit: usize,
        blocked: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.blocked {
                self.blocked = false;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.blocked = true;
            let n = buf.len().min(self.limit);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_never_split_a_frame_for_an_extra() {
        let prebuilt = Prebuilt::new(OpCode::Binary, &[9; 10], 4);
        let frame_len = prebuilt.frame_len();
        assert_eq!(frame_len, 2 + 4 + 10);
        let mut out = Output::default();
        let mut socket = Trickle {
            got: Vec::new(),
            limit: 5,
            blocked: false,
        };
        out.queue_prebuilt(3, frame_len);
        out.flush(&mut socket, &prebuilt).unwrap();
        out.queue_raw(b"PONG");
        while !out.is_empty() {
            out.flush(&mut socket, &prebuilt).unwrap();
        }
        let frames = &prebuilt.bytes[..frame_len];
        let mut expected = frames.repeat(3);
        expected.extend_from_slice(b"PONG");
        assert_eq!(socket.got, expected);
    }

    #[test]
    fn close_frames_are_masked_and_carry_the_code() {
        let mut out = Output::default();
        out.queue_close(1000);
        let bytes = &out.extra;
        assert_eq!(bytes[0], 0x88);
        assert_eq!(bytes[1], 0x80 | 2);
        let key = [bytes[2], bytes[3], bytes[4], bytes[5]];
        let mut body = bytes[6..].to_vec();
        wsloop::protocol::mask::apply_mask(&mut body, key, 0);
        assert_eq!(body, 1000u16.to_be_bytes());
    }
}
