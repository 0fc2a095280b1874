//! Compressing and inflating one message's payload (RFC 7692 §7.2), with bounded output.
//!
//! §7.2.1, compression: "Compress all the octets of the payload of the message using
//! DEFLATE. If the resulting data does not end with an empty DEFLATE block with no
//! compression (the "BTYPE" bits are set to 00), append an empty DEFLATE block with no
//! compression to the tail end. Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail
//! end." A zlib sync flush ends exactly so, and [`Deflater::compress`] strips those octets.
//!
//! §7.2.2, decompression: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the
//! payload of the message. Decompress the resulting data using DEFLATE." [`Inflater`] takes a
//! compressed message in pieces, as frames arrive, and hands its output to a sink in steps of
//! at most [`INFLATE_STEP`] bytes: the sink (the message assembler) refuses bytes past the
//! message limit, so a small input that would inflate to gigabytes stops after `max_message`
//! bytes plus one step, whatever it claims.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::negotiate::{MAX_WINDOW_BITS, MIN_WINDOW_BITS};
use crate::protocol::error::ProtocolError;

/// The empty stored block a sync flush ends with (§7.2.1).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Inflated bytes handed to the sink at a time; also the most inflated at once.
pub const INFLATE_STEP: usize = 16 * 1024;

/// The compressor failed (zlib reported an error, or could not take the whole message).
/// Not the peer's fault: nothing of the message was written, the compressor was reset, and
/// the sender closes the connection with 1011 (RFC 6455 §7.4.1: "an unexpected condition").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressError;

impl std::fmt::Display for CompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("compression failed")
    }
}

impl std::error::Error for CompressError {}

/// A raw-DEFLATE compressor for whole messages.
///
/// Memory: about 250 KiB with a 2^9 window and 370 KiB with 2^15 (zlib-rs at the default
/// memory level), held for as long as the value lives.
pub struct Deflater {
    inner: Compress,
    window_bits: u8,
    level: u8,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("window_bits", &self.window_bits)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor at `level` (clamped to 0–9) with a window of 2^`window_bits` bytes
    /// (clamped to 9–15).
    pub fn new(level: u8, window_bits: u8) -> Self {
        let level = level.min(9);
        let window_bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        Self {
            // The clamp above keeps window_bits in 9..=15, the range this asserts.
            inner: Compress::new_with_window_bits(
                Compression::new(u32::from(level)),
                false,
                window_bits,
            ),
            window_bits,
            level,
        }
    }

    /// The window size this compressor uses, as a base-2 logarithm.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// The compression level.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Appends `payload`, compressed as one message without the `00 00 ff ff` tail, to
    /// `out`. The window carries over to the next message unless [`Deflater::reset`] is
    /// called (context takeover, §7.1.1). On failure `out` is left as it was.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CompressError> {
        let start = out.len();
        // Small or incompressible payloads grow by a few bytes at most.
        out.reserve(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            let (before_in, before_out) = (self.inner.total_in(), out.len());
            let status = self.inner.compress_vec(input, out, FlushCompress::Sync);
            let used = usize::try_from(self.inner.total_in() - before_in).unwrap_or(input.len());
            input = input.get(used..).unwrap_or_default();
            let full = out.len() == out.capacity();
            // zlib: "If deflate returns with avail_out == 0, this function must be called
            // again with the same value of the flush parameter and more output space".
            let stuck = out.len() == before_out && used == 0 && !full;
            if status.is_err() || (stuck && !input.is_empty()) {
                // Never hand on part of a message: the peer would inflate a truncated one.
                out.truncate(start);
                self.inner.reset();
                return Err(CompressError);
            }
            if (!full && input.is_empty()) || stuck {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        Ok(())
    }

    /// Puts the compressor in a state where the next [`Deflater::compress`] fails (a
    /// finished stream), so tests can exercise the failure path.
    #[cfg(test)]
    pub(crate) fn break_for_test(&mut self) {
        let mut sink = Vec::with_capacity(64);
        let _ = self
            .inner
            .compress_vec(b"x", &mut sink, flate2::FlushCompress::Finish);
    }

    /// Forgets the window: the next message is compressed without reference to earlier ones.
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

/// A raw-DEFLATE decompressor with a 2^15 window, which reads any smaller one.
///
/// Memory: about 46 KiB (zlib-rs), held for as long as the value lives.
pub struct Inflater {
    inner: Decompress,
    /// A BFINAL block ended the DEFLATE stream; at most one 0x00 octet may follow in this
    /// message (see [`Inflater::after_final_block`]).
    ended: bool,
    /// Octets of this message after its final block.
    after_final: usize,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// A decompressor ready for the first message.
    pub fn new() -> Self {
        Self {
            inner: Decompress::new_with_window_bits(false, MAX_WINDOW_BITS),
            ended: false,
            after_final: 0,
        }
    }

    /// Inflates `input`, the next piece of a compressed message, handing the output to `sink`
    /// in steps of at most [`INFLATE_STEP`] bytes. Stops at the first error of the sink
    /// (such as the message limit) or of the data (1007), including data after a final
    /// block.
    pub fn inflate(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let rest = self.inflate_until_end(input, sink)?;
        self.after_final_block(rest)
    }

    /// Inflates until `input` is used up or the DEFLATE stream ends; returns what is left.
    fn inflate_until_end<'a>(
        &mut self,
        mut input: &'a [u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<&'a [u8], ProtocolError> {
        let mut step = [0u8; INFLATE_STEP];
        while !self.ended {
            let (before_in, before_out) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress(input, &mut step, FlushDecompress::Sync)
                .map_err(|_| ProtocolError::InvalidCompressedData)?;
            let used = usize::try_from(self.inner.total_in() - before_in).unwrap_or(input.len());
            let made = usize::try_from(self.inner.total_out() - before_out).unwrap_or(0);
            input = input.get(used..).unwrap_or_default();
            sink(step.get(..made).unwrap_or_default())?;
            if status == Status::StreamEnd {
                // A sender may end a message with a BFINAL block (§7.2.3.4); the DEFLATE
                // stream cannot go on after it.
                self.ended = true;
            }
            // Done when the input is used up and the step was not filled (nothing pending),
            // or when no progress is possible.
            if made < step.len() && (input.is_empty() || used == 0 && made == 0) {
                break;
            }
        }
        Ok(if self.ended { input } else { &[] })
    }

    /// RFC 7692 §7.2.3.4: a sender that flushes with a BFINAL block adds one octet, 0x00,
    /// "necessary to allow the payload to be decompressed in the same manner as messages
    /// compressed using the flush method described in Section 7.2.1" (it begins the empty
    /// stored block the receiver's appended tail completes). Anything more after the final
    /// block is not DEFLATE data the message can carry: 1007.
    fn after_final_block(&mut self, rest: &[u8]) -> Result<(), ProtocolError> {
        self.after_final = self.after_final.saturating_add(rest.len());
        if self.after_final > 1 || rest.iter().any(|&b| b != 0) {
            return Err(ProtocolError::InvalidCompressedData);
        }
        Ok(())
    }

    /// Ends a message: inflates the `00 00 ff ff` tail (§7.2.2). Call once the last frame's
    /// payload went through [`Inflater::inflate`].
    pub fn finish(
        &mut self,
        sink: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        // The appended tail is the receiver's, not the message's: not checked as data after
        // a final block.
        self.inflate_until_end(&TAIL, sink)?;
        if self.ended {
            // A stream ended by BFINAL starts afresh with the next message.
            self.reset();
        }
        Ok(())
    }

    /// Forgets the window, for a peer that does not use context takeover.
    pub fn reset(&mut self) {
        self.inner.reset(false);
        self.ended = false;
        self.after_final = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(inflater: &mut Inflater, compressed: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        let mut sink = |bytes: &[u8]| {
            out.extend_from_slice(bytes);
            Ok(())
        };
        inflater.inflate(compressed, &mut sink)?;
        inflater.finish(&mut sink)?;
        Ok(out)
    }

    /// RFC 7692 §7.2.3.1: "Hello" compressed with no context takeover.
    #[test]
    fn rfc_7692_hello() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_all(&mut Inflater::new(), &hello).unwrap(), b"Hello");
        // §7.2.3.2: the same message sent twice with context takeover; the second time it
        // is a back-reference to the first.
        let mut inflater = Inflater::new();
        assert_eq!(inflate_all(&mut inflater, &hello).unwrap(), b"Hello");
        let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
        assert_eq!(inflate_all(&mut inflater, &again).unwrap(), b"Hello");
        // §7.2.3.3: a block with no compression.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(
            inflate_all(&mut Inflater::new(), &stored).unwrap(),
            b"Hello"
        );
        // §7.2.3.4: a block with BFINAL set.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(
            inflate_all(&mut Inflater::new(), &bfinal).unwrap(),
            b"Hello"
        );
        // §7.2.3.5: two DEFLATE blocks in one message.
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(inflate_all(&mut Inflater::new(), &two).unwrap(), b"Hello");
    }

    #[test]
    fn empty_message_is_one_zero_byte() {
        let mut out = Vec::new();
        Deflater::new(6, 15).compress(b"", &mut out).unwrap();
        assert_eq!(out, [0x00]);
        assert_eq!(inflate_all(&mut Inflater::new(), &out).unwrap(), b"");
    }

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        let messages: Vec<Vec<u8>> = (0..20)
            .map(|i| format!(r#"{{"type":"chat","room":"lobby","n":{i},"text":"hello hello"}}"#))
            .map(String::into_bytes)
            .collect();
        for takeover in [true, false] {
            let (mut deflater, mut inflater) = (Deflater::new(6, 15), Inflater::new());
            let mut sizes = Vec::new();
            for message in &messages {
                let mut compressed = Vec::new();
                deflater.compress(message, &mut compressed).unwrap();
                assert!(!compressed.ends_with(&TAIL));
                sizes.push(compressed.len());
                assert_eq!(&inflate_all(&mut inflater, &compressed).unwrap(), message);
                if !takeover {
                    deflater.reset();
                    inflater.reset();
                }
            }
            // With context takeover later messages refer back to earlier ones.
            assert_eq!(sizes[5] < sizes[0], takeover, "{sizes:?}");
        }
    }

    #[test]
    fn every_window_size_round_trips_large_input() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{} ", i % 50).into_bytes())
            .collect();
        for bits in [0, 8, 9, 12, 15, 200] {
            let mut compressed = Vec::new();
            Deflater::new(9, bits)
                .compress(&text, &mut compressed)
                .unwrap();
            assert!(compressed.len() < text.len() / 2, "bits {bits}");
            assert_eq!(
                inflate_all(&mut Inflater::new(), &compressed).unwrap(),
                text
            );
        }
    }

    #[test]
    fn large_input_inflates_in_bounded_steps() {
        let zeros = vec![0u8; 1 << 20];
        let mut compressed = Vec::new();
        Deflater::new(9, 15)
            .compress(&zeros, &mut compressed)
            .unwrap();
        assert!(compressed.len() < 2048);
        let mut steps = 0;
        let mut total = 0;
        let mut sink = |bytes: &[u8]| {
            assert!(bytes.len() <= INFLATE_STEP);
            steps += 1;
            total += bytes.len();
            Ok(())
        };
        let mut inflater = Inflater::new();
        inflater.inflate(&compressed, &mut sink).unwrap();
        inflater.finish(&mut sink).unwrap();
        assert_eq!(total, 1 << 20);
        assert!(steps >= (1 << 20) / INFLATE_STEP);
    }

    #[test]
    fn the_sink_can_stop_a_large_input_bomb() {
        let zeros = vec![0u8; 1 << 20];
        let mut compressed = Vec::new();
        Deflater::new(9, 15)
            .compress(&zeros, &mut compressed)
            .unwrap();
        let mut total = 0;
        let mut sink = |bytes: &[u8]| {
            total += bytes.len();
            if total > 100_000 {
                return Err(ProtocolError::MessageTooLarge { limit: 100_000 });
            }
            Ok(())
        };
        let result = Inflater::new().inflate(&compressed, &mut sink);
        assert_eq!(
            result,
            Err(ProtocolError::MessageTooLarge { limit: 100_000 })
        );
        assert!(total <= 100_000 + INFLATE_STEP);
    }

    /// RFC 7692 §7.2.3.4: after a block with BFINAL set, the sender's one 0x00 octet (the
    /// header of an empty stored block, completed by the appended tail) is all a message may
    /// still hold; anything else is not part of the DEFLATE data: 1007.
    #[test]
    fn data_after_the_final_block_is_invalid() {
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let cases: [(&[u8], bool); 5] = [
            (&[], true),
            (&[0x00], true),
            (&[0x00, 0x00], false),
            (&[0x01], false),
            (&bfinal, false),
        ];
        for (after, valid) in cases {
            let message = [bfinal.as_slice(), after].concat();
            let whole = inflate_all(&mut Inflater::new(), &message);
            let expected = if valid {
                Ok(b"Hello".to_vec())
            } else {
                Err(ProtocolError::InvalidCompressedData)
            };
            assert_eq!(whole, expected, "after {after:02x?}");
            // The same split across frames: the final block in one, the rest in the next.
            let mut inflater = Inflater::new();
            let mut sink = |_: &[u8]| Ok(());
            inflater.inflate(&bfinal, &mut sink).unwrap();
            let split = inflater
                .inflate(after, &mut sink)
                .and_then(|()| inflater.finish(&mut sink));
            assert_eq!(split.is_ok(), valid, "after {after:02x?}, split");
        }
    }

    /// A compressor that fails leaves `out` as it was: a truncated message must never go
    /// out marked as compressed.
    #[test]
    fn a_failed_compression_writes_nothing() {
        let mut deflater = Deflater::new(6, 15);
        deflater.break_for_test();
        let mut out = b"before".to_vec();
        let payload = b"a message that will not be compressed".repeat(10);
        assert_eq!(deflater.compress(&payload, &mut out), Err(CompressError));
        assert_eq!(out, b"before");
        // The next message starts from a reset compressor.
        let mut again = Vec::new();
        deflater.compress(b"Hello", &mut again).unwrap();
        assert_eq!(inflate_all(&mut Inflater::new(), &again).unwrap(), b"Hello");
    }

    #[test]
    fn corrupt_data_is_invalid() {
        // BTYPE 11 is reserved (RFC 1951 §3.2.3).
        let result = inflate_all(&mut Inflater::new(), &[0xff, 0xff, 0xff]);
        assert_eq!(result, Err(ProtocolError::InvalidCompressedData));
    }
}
