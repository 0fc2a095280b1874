//! How a raw fuzz input chooses its chunking and limits, so unstructured targets stay small.
//!
//! Layout: byte 0 holds, in its low four bits, how many chunk-size bytes follow (0–15), and
//! in bit 4 whether to use small limits; then come the chunk sizes; the rest is the stream.
//! With no size bytes the stream is fed in one piece. Seeds start with `0x00` for "whole".

/// A raw input split into its chunk sizes, limit choice and stream.
#[derive(Debug, Clone, Copy)]
pub struct Framed<'a> {
    /// Chunk sizes in bytes, used in a cycle (0 is allowed: an empty read).
    pub sizes: &'a [u8],
    /// Use small limits, so the limit paths are reachable with short inputs.
    pub small_limits: bool,
    /// The bytes to feed.
    pub stream: &'a [u8],
}

impl<'a> Framed<'a> {
    /// Splits `data` by the layout above; never fails.
    pub fn parse(data: &'a [u8]) -> Self {
        let Some((&head, rest)) = data.split_first() else {
            return Self {
                sizes: &[],
                small_limits: false,
                stream: &[],
            };
        };
        let count = usize::from(head & 0x0F).min(rest.len());
        let (sizes, stream) = rest.split_at(count);
        Self {
            sizes,
            small_limits: head & 0x10 != 0,
            stream,
        }
    }

    /// The stream cut into the chunks the sizes describe.
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        split(self.stream, self.sizes)
    }
}

/// The most pieces [`split`] cuts before handing over the rest in one piece, so a long
/// payload in 1-byte reads does not slow the fuzzer down to a crawl.
pub const MAX_PIECES: usize = 512;

/// Cuts `data` into pieces of the given `sizes`, cycling through them; the last piece is the
/// remainder (possibly empty). At most [`MAX_PIECES`] pieces precede the remainder.
pub fn split<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = data;
    for &size in sizes.iter().cycle().take(MAX_PIECES) {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(usize::from(size).min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}
