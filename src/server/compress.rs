//! Shared frames (a message encoded once for many: `Ctx::publish`, `Ctx::prepare`, the
//! hub's fan-out) for connections that agreed on permessage-deflate (RFC 7692).
//!
//! Each message is encoded once, as an uncompressed shared frame. Per recipient:
//!
//! - without the extension, or for a message under `min_size`, the shared frame is queued;
//! - without context takeover on the server's side, the frame is compressed once per window
//!   size for the whole batch ([`FrameCache`]) with the loop's shared [`DeflaterPool`], and
//!   every such recipient shares the compressed bytes: a broadcast to ten thousand browsers is
//!   compressed once, not ten thousand times;
//! - with context takeover each recipient's compressor has its own history, so its copy is
//!   compressed separately, by its own session. That cost (CPU per recipient, and the
//!   compressor's memory per connection) is why the server asks for no context takeover by
//!   default.
//!
//! If compression fails, no part of the message goes out marked RSV1: the recipient's
//! session fails with close 1011 instead, and the loop moves it to lingering.

use std::collections::HashMap;
use std::rc::Rc;

use super::outbound::{BufPool, OutQueue, SharedFrame};
use super::stats::Stats;
use crate::protocol::deflate::DeflaterPool;
use crate::protocol::frame::{FrameHeader, MAX_HEADER_LEN, RSV1, encode_frame};
use crate::protocol::{Decoded, MessageKind, OpCode, Session};

/// Compressed variants of shared frames, for one batch of deliveries.
///
/// Keyed by the original frame's address and the window size; the original is kept in the
/// entry so its address cannot be reused while the entry lives. Cleared after each batch.
#[derive(Debug, Default)]
pub(super) struct FrameCache {
    /// (frame address, window bits) → (the original, kept alive; its compressed frame, or
    /// `None` if the compressor failed on it).
    entries: HashMap<(usize, u8), (SharedFrame, Option<SharedFrame>)>,
}

impl FrameCache {
    /// Forgets the batch. Called after every input, nearly always with nothing to forget:
    /// the check is inlined.
    #[inline]
    pub(super) fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries.clear();
        }
    }
}

/// What the loop lends to compression.
pub(super) struct Compression<'a> {
    pub(super) pool: &'a mut BufPool,
    pub(super) deflaters: &'a mut DeflaterPool,
    pub(super) cache: &'a mut FrameCache,
    pub(super) stats: &'a mut Stats,
}

/// Queues a shared `frame` on a connection: as it is, shared compressed, or compressed by
/// the session itself. Returns the bytes queued.
pub(super) fn queue_shared_frame(
    session: &mut Session,
    out: &mut OutQueue,
    frame: &SharedFrame,
    c: &mut Compression<'_>,
) -> usize {
    let Some((direction, min_size)) = session.deflate().map(|d| (d.sending(), d.min_size())) else {
        return push(out, c.pool, frame);
    };
    let Some((kind, payload)) = data_payload(frame) else {
        return push(out, c.pool, frame);
    };
    if payload.len() < min_size {
        return push(out, c.pool, frame);
    }
    if !direction.no_context_takeover {
        c.stats.shared_compressions += 1;
        let before = out.len();
        let _ = out.append(c.pool, |buf| session.send(kind, payload, buf));
        return out.len() - before;
    }
    let bits = direction.max_window_bits;
    let key = (Rc::as_ptr(frame).cast::<u8>() as usize, bits);
    let (_, compressed) = c.cache.entries.entry(key).or_insert_with(|| {
        c.stats.shared_compressions += 1;
        (
            frame.clone(),
            compress_shared(kind, payload, bits, c.deflaters),
        )
    });
    match compressed {
        Some(compressed) => push(out, c.pool, compressed),
        None => {
            // Never a truncated frame marked RSV1: the recipient is failed with 1011.
            let before = out.len();
            out.append(c.pool, |buf| {
                session.fail_internal("compression failed", buf)
            });
            out.len() - before
        }
    }
}

fn push(out: &mut OutQueue, pool: &mut BufPool, frame: &SharedFrame) -> usize {
    out.push_shared(pool, frame.clone());
    frame.len()
}

/// The kind and payload of an unmasked, final text or binary frame.
fn data_payload(frame: &[u8]) -> Option<(MessageKind, &[u8])> {
    let Ok(Decoded::Complete(header, head_len)) = FrameHeader::decode(frame) else {
        return None;
    };
    let kind = match header.opcode {
        OpCode::Text => MessageKind::Text,
        OpCode::Binary => MessageKind::Binary,
        _ => return None,
    };
    (header.fin && header.rsv == 0 && header.mask.is_none()).then_some(())?;
    Some((kind, frame.get(head_len..)?))
}

/// A shared frame carrying `payload` compressed without context takeover; `None` if the
/// compressor failed.
fn compress_shared(
    kind: MessageKind,
    payload: &[u8],
    bits: u8,
    deflaters: &mut DeflaterPool,
) -> Option<SharedFrame> {
    let mut body = Vec::with_capacity(payload.len() / 2 + 64);
    deflaters.compress_alone(bits, payload, &mut body).ok()?;
    let opcode = match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    };
    let header = FrameHeader {
        rsv: RSV1,
        ..FrameHeader::single(opcode, body.len(), None)
    };
    let mut bytes = Vec::with_capacity(MAX_HEADER_LEN + body.len());
    encode_frame(&header, &body, &mut bytes);
    Some(SharedFrame::from(bytes))
}
