//! One connection's permessage-deflate state, owned by its [`Session`](crate::protocol::Session).
//!
//! Only what the agreed parameters require is kept between messages:
//!
//! | state | kept between messages when | memory |
//! |---|---|---|
//! | compressor for what we send | we use context takeover (no `*_no_context_takeover` for our side) | ≈ 250 KiB (2^9 window) to 370 KiB (2^15) |
//! | inflater for what we receive | the peer uses context takeover | ≈ 46 KiB |
//!
//! Without context takeover nothing is kept: the inflater is freed after each message, and the
//! compressor comes from a [`DeflaterPool`] that the caller shares among all its connections
//! (the server has one per event loop), so a thousand idle connections cost a thousand times
//! the size of this struct (a few dozen bytes) and no more. The server's defaults ask for no
//! context takeover on both sides for that reason; context takeover compresses a stream of
//! similar messages better, at the memory above per connection.

use super::codec::{CompressError, Deflater, Inflater};
use super::negotiate::{DeflateConfig, DeflateParams, Direction};
use crate::protocol::error::ProtocolError;
use crate::protocol::rules::Role;

/// Compressors for senders without context takeover, shared among connections: one per
/// window size, created on first use and reset after every message.
#[derive(Debug)]
pub struct DeflaterPool {
    level: u8,
    /// Index `bits - 9` holds the compressor with a 2^bits window.
    by_bits: [Option<Box<Deflater>>; 7],
}

impl DeflaterPool {
    /// An empty pool whose compressors use `level`.
    pub fn new(level: u8) -> Self {
        Self {
            level,
            by_bits: Default::default(),
        }
    }

    /// The shared compressor for a 2^`window_bits` window (clamped to 9–15).
    pub fn get(&mut self, window_bits: u8) -> &mut Deflater {
        let index = usize::from(window_bits.clamp(9, 15) - 9);
        let level = self.level;
        self.by_bits[index].get_or_insert_with(|| Box::new(Deflater::new(level, window_bits)))
    }

    /// Appends `payload`, compressed as a message that refers to no other (§7.1.1.1), to
    /// `out`; on failure `out` is left as it was.
    pub fn compress_alone(
        &mut self,
        window_bits: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        compress_alone(self.get(window_bits), payload, out)
    }
}

fn compress_alone(
    deflater: &mut Deflater,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CompressError> {
    let result = deflater.compress(payload, out);
    deflater.reset();
    result
}

/// The permessage-deflate state of one connection.
#[derive(Debug)]
pub struct PerMessageDeflate {
    role: Role,
    params: DeflateParams,
    level: u8,
    min_size: usize,
    /// Our compressor, present only while we use context takeover.
    tx: Option<Box<Deflater>>,
    /// The inflater, present while a compressed message is being read, and between
    /// messages only if the peer uses context takeover.
    rx: Option<Box<Inflater>>,
}

impl PerMessageDeflate {
    /// The state for `role` after agreeing on `params`; level and minimum size from `config`.
    /// Allocates nothing until the first compressed message.
    pub fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        Self {
            role,
            params,
            level: config.level,
            min_size: config.min_size,
            tx: None,
            rx: None,
        }
    }

    /// The agreed parameters.
    pub fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// How we compress.
    pub fn sending(&self) -> Direction {
        self.params.sending(self.role)
    }

    /// Messages shorter than this are sent uncompressed.
    pub fn min_size(&self) -> usize {
        self.min_size
    }

    /// Whether a compressor or inflater is held right now (for tests and memory accounting).
    pub fn holds_state(&self) -> bool {
        self.tx.is_some() || self.rx.is_some()
    }

    /// Inflates the next piece of a compressed message into `sink`.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        sink: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.rx
            .get_or_insert_with(Box::default)
            .inflate(input, sink)
    }

    /// Ends a compressed message; frees the inflater if the peer starts afresh each time.
    pub(crate) fn finish(
        &mut self,
        sink: &mut impl FnMut(&[u8]) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        self.rx.get_or_insert_with(Box::default).finish(sink)?;
        if self.params.receiving(self.role).no_context_takeover {
            self.rx = None;
        }
        Ok(())
    }

    /// Compresses `payload` for sending and appends it to `out`, or returns false (leaving
    /// `out` alone) when the message is shorter than the minimum size and goes uncompressed.
    /// A failed compression leaves `out` alone too and is an error: the message cannot be
    /// sent (with context takeover, the peer's window would no longer match ours).
    /// A message that does not shrink is still sent compressed: with context takeover the
    /// peer's window must see it, and a few bytes of overhead are not worth a second rule.
    /// Without context takeover the compressor comes from `pool`, or is made for this
    /// message alone when there is none.
    pub fn compress(
        &mut self,
        payload: &[u8],
        pool: Option<&mut DeflaterPool>,
        out: &mut Vec<u8>,
    ) -> Result<bool, CompressError> {
        if payload.len() < self.min_size {
            return Ok(false);
        }
        let Direction {
            no_context_takeover,
            max_window_bits,
        } = self.sending();
        if no_context_takeover {
            match pool {
                Some(pool) => pool.compress_alone(max_window_bits, payload, out)?,
                None => {
                    let mut deflater = Deflater::new(self.level, max_window_bits);
                    compress_alone(&mut deflater, payload, out)?;
                }
            }
            return Ok(true);
        }
        let level = self.level;
        self.tx
            .get_or_insert_with(|| Box::new(Deflater::new(level, max_window_bits)))
            .compress(payload, out)?;
        Ok(true)
    }

    /// Breaks our compressor (context takeover only) so the next message fails to
    /// compress, for tests of the failure path.
    #[cfg(test)]
    pub(crate) fn break_compressor_for_test(&mut self) {
        let Direction {
            max_window_bits, ..
        } = self.sending();
        let level = self.level;
        self.tx
            .get_or_insert_with(|| Box::new(Deflater::new(level, max_window_bits)))
            .break_for_test();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(no_context_takeover: bool) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: no_context_takeover,
            client_no_context_takeover: no_context_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    fn receive(state: &mut PerMessageDeflate, compressed: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        state.inflate(compressed, &mut sink).unwrap();
        state.finish(&mut sink).unwrap();
        out
    }

    #[test]
    fn no_state_is_kept_without_context_takeover() {
        let config = DeflateConfig::default();
        let mut server = PerMessageDeflate::new(Role::Server, params(true), &config);
        let mut client = PerMessageDeflate::new(Role::Client, params(true), &config);
        let mut pool = DeflaterPool::new(6);
        let message = b"a message long enough to be compressed, a message long enough".repeat(4);
        for _ in 0..3 {
            let mut wire = Vec::new();
            assert!(server.compress(&message, Some(&mut pool), &mut wire) == Ok(true));
            assert!(wire.len() < message.len());
            assert_eq!(receive(&mut client, &wire), message);
            assert!(!server.holds_state() && !client.holds_state());
        }
        let mut wire = Vec::new();
        assert!(client.compress(&message, None, &mut wire) == Ok(true));
        assert_eq!(receive(&mut server, &wire), message);
        assert!(!client.holds_state() && !server.holds_state());
    }

    #[test]
    fn context_takeover_keeps_both_ends() {
        let config = DeflateConfig::default();
        let mut server = PerMessageDeflate::new(Role::Server, params(false), &config);
        let mut client = PerMessageDeflate::new(Role::Client, params(false), &config);
        let message = b"{\"type\":\"chat\",\"room\":\"lobby\",\"text\":\"hello there\"}".repeat(2);
        let mut sizes = Vec::new();
        for _ in 0..3 {
            let mut wire = Vec::new();
            assert!(server.compress(&message, None, &mut wire) == Ok(true));
            sizes.push(wire.len());
            assert_eq!(receive(&mut client, &wire), message);
            assert!(server.holds_state() && client.holds_state());
        }
        assert!(sizes[1] < sizes[0] / 2, "{sizes:?}");
    }

    /// What an idle connection with the extension holds: this struct, boxed, and no more.
    #[test]
    fn the_idle_state_is_a_few_dozen_bytes() {
        assert!(std::mem::size_of::<PerMessageDeflate>() <= 48);
        let idle = PerMessageDeflate::new(Role::Server, params(true), &DeflateConfig::default());
        assert!(!idle.holds_state());
    }

    #[test]
    fn only_messages_under_min_size_go_plain() {
        let config = DeflateConfig {
            min_size: 10,
            ..DeflateConfig::default()
        };
        let mut server = PerMessageDeflate::new(Role::Server, params(true), &config);
        let mut out = Vec::new();
        assert_eq!(server.compress(b"short", None, &mut out), Ok(false));
        assert!(out.is_empty());
        assert!(server.compress(b"just long enough", None, &mut out) == Ok(true));
        assert!(!out.is_empty());
    }
}
