//! Counting server frames as bytes stream in, without copying what need not be looked at.
//!
//! The load generator does not run a full [`Session`](wsloop::protocol::Session) per
//! connection: it only needs to know where each server frame ends, its opcode and length,
//! and, for a few frames, the payload (control frames, which must be answered; the fan-out
//! deliveries, which carry a sequence number). [`Scanner::feed`] takes whatever a `read`
//! returned, decodes headers with the protocol's own [`FrameHeader::decode`], skips payloads
//! it is not asked to keep, and reports every complete frame. Kept payloads that straddle two
//! reads are carried in a buffer; skipped ones cost a subtraction.

use std::fmt;

use wsloop::protocol::frame::MAX_HEADER_LEN;
use wsloop::protocol::{Decoded, FrameHeader, OpCode, ProtocolError};

/// The largest control frame payload (RFC 6455 §5.5: "125 bytes or less").
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A complete frame from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// FIN: the last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The payload length.
    pub len: u64,
    /// The payload, for control frames and for data frames the scanner keeps.
    pub payload: Option<&'a [u8]>,
}

/// Bytes the scanner cannot make sense of: the connection is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// The header itself is invalid (reserved opcode, 64-bit length with the top bit set).
    Header(ProtocolError),
    /// A server frame was masked (§5.1: "A server MUST NOT mask any frames").
    Masked,
    /// A control frame longer than 125 bytes (§5.5).
    ControlTooLong(u64),
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(e) => write!(f, "bad frame header from the server: {e}"),
            Self::Masked => f.write_str("the server sent a masked frame"),
            Self::ControlTooLong(n) => write!(f, "the server sent a {n}-byte control frame"),
        }
    }
}

/// The frame being read.
#[derive(Debug, Clone, Copy)]
struct Current {
    header: FrameHeader,
    /// Payload bytes still to come.
    remaining: u64,
    /// Whether the payload is reported.
    keep: bool,
}

/// Per-connection frame boundary tracker.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    /// Bytes of a header split across reads.
    head: [u8; MAX_HEADER_LEN],
    head_len: usize,
    current: Option<Current>,
    /// A kept payload split across reads.
    carry: Vec<u8>,
    /// Data frames up to this many bytes have their payload kept (0: none).
    keep_data_up_to: u64,
}

impl Scanner {
    /// A scanner that keeps the payloads of data frames up to `keep_data_up_to` bytes
    /// (0 keeps none) and of every control frame.
    pub(crate) fn new(keep_data_up_to: u64) -> Self {
        Self {
            head: [0; MAX_HEADER_LEN],
            head_len: 0,
            current: None,
            carry: Vec::new(),
            keep_data_up_to,
        }
    }

    /// Consumes `input` (all of it) and calls `on_frame` for each frame it completes.
    pub(crate) fn feed(
        &mut self,
        mut input: &[u8],
        mut on_frame: impl FnMut(Frame<'_>),
    ) -> Result<(), ScanError> {
        while !input.is_empty() {
            match self.current {
                None => input = self.read_header(input, &mut on_frame)?,
                Some(current) => input = self.read_payload(current, input, &mut on_frame),
            }
        }
        Ok(())
    }

    /// Decodes a header from the stashed bytes plus `input`; returns what is left of `input`.
    fn read_header<'i>(
        &mut self,
        input: &'i [u8],
        on_frame: &mut impl FnMut(Frame<'_>),
    ) -> Result<&'i [u8], ScanError> {
        let stashed = self.head_len;
        let take = input.len().min(MAX_HEADER_LEN - stashed);
        let decoded = if stashed == 0 {
            FrameHeader::decode(input)
        } else {
            self.head[stashed..stashed + take].copy_from_slice(&input[..take]);
            FrameHeader::decode(&self.head[..stashed + take])
        };
        match decoded.map_err(ScanError::Header)? {
            Decoded::Partial => {
                // Partial means fewer than a whole header is here, so `take` is all of it.
                self.head[stashed..stashed + take].copy_from_slice(&input[..take]);
                self.head_len = stashed + take;
                Ok(&input[take..])
            }
            Decoded::Complete(header, used) => {
                self.head_len = 0;
                self.start(header, on_frame)?;
                Ok(&input[used - stashed..])
            }
        }
    }

    /// Begins a frame; a frame with an empty payload is complete at once.
    fn start(
        &mut self,
        header: FrameHeader,
        on_frame: &mut impl FnMut(Frame<'_>),
    ) -> Result<(), ScanError> {
        if header.mask.is_some() {
            return Err(ScanError::Masked);
        }
        let control = header.opcode.is_control();
        if control && header.payload_len > MAX_CONTROL_PAYLOAD {
            return Err(ScanError::ControlTooLong(header.payload_len));
        }
        let keep = control || header.payload_len <= self.keep_data_up_to;
        if header.payload_len == 0 {
            on_frame(frame(&header, keep.then_some(&[])));
            return Ok(());
        }
        self.current = Some(Current {
            header,
            remaining: header.payload_len,
            keep,
        });
        Ok(())
    }

    /// Consumes payload bytes of the current frame; returns what is left of `input`.
    fn read_payload<'i>(
        &mut self,
        mut current: Current,
        input: &'i [u8],
        on_frame: &mut impl FnMut(Frame<'_>),
    ) -> &'i [u8] {
        let take = usize::try_from(current.remaining).map_or(input.len(), |r| r.min(input.len()));
        let (here, rest) = input.split_at(take);
        current.remaining -= take as u64;
        let done = current.remaining == 0;
        match (current.keep, done) {
            (false, true) => on_frame(frame(&current.header, None)),
            (false, false) => {}
            (true, true) if self.carry.is_empty() => on_frame(frame(&current.header, Some(here))),
            (true, _) => {
                self.carry.extend_from_slice(here);
                if done {
                    on_frame(frame(&current.header, Some(&self.carry)));
                    self.carry.clear();
                }
            }
        }
        self.current = (!done).then_some(current);
        rest
    }
}

fn frame<'a>(header: &FrameHeader, payload: Option<&'a [u8]>) -> Frame<'a> {
    Frame {
        fin: header.fin,
        opcode: header.opcode,
        len: header.payload_len,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsloop::protocol::frame::encode_frame;

    fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(
            &FrameHeader::single(opcode, payload.len(), None),
            payload,
            &mut out,
        );
        out
    }

    /// What the tests compare: (opcode, length, kept payload).
    type Seen = (OpCode, u64, Option<Vec<u8>>);

    /// Feeds `bytes` in pieces of `step` bytes; returns (opcode, len, payload) per frame.
    fn scan_in_steps(keep: u64, bytes: &[u8], step: usize) -> Result<Vec<Seen>, ScanError> {
        let mut scanner = Scanner::new(keep);
        let mut got = Vec::new();
        for piece in bytes.chunks(step) {
            scanner.feed(piece, |f| {
                got.push((f.opcode, f.len, f.payload.map(<[u8]>::to_vec)))
            })?;
        }
        Ok(got)
    }

    #[test]
    fn every_split_gives_the_same_frames() {
        let big = vec![7u8; 70_000];
        let mut stream = server_frame(OpCode::Binary, b"hello");
        stream.extend(server_frame(OpCode::Ping, b"are you there"));
        stream.extend(server_frame(OpCode::Text, b""));
        stream.extend(server_frame(OpCode::Binary, &big));
        stream.extend(server_frame(OpCode::Text, &[b'x'; 300]));
        let whole = scan_in_steps(1000, &stream, stream.len()).unwrap();
        assert_eq!(whole.len(), 5);
        assert_eq!(whole[0], (OpCode::Binary, 5, Some(b"hello".to_vec())));
        assert_eq!(
            whole[1],
            (OpCode::Ping, 13, Some(b"are you there".to_vec()))
        );
        assert_eq!(whole[2], (OpCode::Text, 0, Some(Vec::new())));
        assert_eq!(whole[3], (OpCode::Binary, 70_000, None), "too big to keep");
        assert_eq!(whole[4], (OpCode::Text, 300, Some(vec![b'x'; 300])));
        for step in [1, 2, 3, 7, 13, 100, 4096] {
            assert_eq!(
                scan_in_steps(1000, &stream, step).unwrap(),
                whole,
                "step {step}"
            );
        }
    }

    #[test]
    fn data_payloads_are_skipped_unless_asked_for() {
        let stream = server_frame(OpCode::Binary, &[1; 32]);
        let got = scan_in_steps(0, &stream, 5).unwrap();
        assert_eq!(got, vec![(OpCode::Binary, 32, None)]);
    }

    #[test]
    fn broken_server_frames_are_errors() {
        let mut masked = Vec::new();
        encode_frame(
            &FrameHeader::single(OpCode::Text, 2, Some([1, 2, 3, 4])),
            b"hi",
            &mut masked,
        );
        assert_eq!(scan_in_steps(0, &masked, 1), Err(ScanError::Masked));
        let long_ping = server_frame(OpCode::Ping, &[0; 126]);
        assert_eq!(
            scan_in_steps(0, &long_ping, 3),
            Err(ScanError::ControlTooLong(126))
        );
        assert!(matches!(
            scan_in_steps(0, &[0x83, 0x00], 1),
            Err(ScanError::Header(_))
        ));
    }
}
