//! What a [`Session`] writes: data messages (compressed when permessage-deflate is on and the
//! message is worth it), pings, and its close frame.

use super::{ReadState, Session};
use crate::protocol::assembler::MessageKind;
use crate::protocol::close::{CloseCode, CloseFrame};
use crate::protocol::close_state::{CloseAction, CloseInput};
use crate::protocol::deflate::DeflaterPool;
use crate::protocol::error::UsageError;
use crate::protocol::frame::{FrameHeader, RSV1, encode_frame};
use crate::protocol::opcode::OpCode;
use crate::protocol::rules::MAX_CONTROL_PAYLOAD;

impl Session {
    /// Appends a data message as one frame. Fails after a close was sent or received.
    ///
    /// With permessage-deflate on, a message of at least the configured minimum size is
    /// compressed and its frame marked with RSV1 (RFC 7692 §6). If compression fails, none
    /// of the message is written: the session fails with close 1011 instead (written to
    /// `out`) and the error is [`UsageError::CompressionFailed`]. Without context takeover on
    /// our side this builds a compressor for the one message; [`Session::send_pooled`] uses a
    /// shared one instead.
    pub fn send(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        self.send_message(kind, payload, None, out)
    }

    /// Like [`Session::send`], taking the compressor from `pool` when our side does not use
    /// context takeover, so no connection holds one of its own.
    pub fn send_pooled(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        pool: &mut DeflaterPool,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        self.send_message(kind, payload, Some(pool), out)
    }

    fn send_message(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        pool: Option<&mut DeflaterPool>,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        if !self.close.is_open() {
            return Err(UsageError::SendAfterClose);
        }
        let opcode = match kind {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        };
        let mask = self.next_mask();
        let mut compressed = Vec::new();
        let deflated = match self.deflate.as_deref_mut() {
            Some(deflate) => match deflate.compress(payload, pool, &mut compressed) {
                Ok(deflated) => deflated,
                Err(_) => {
                    // With context takeover the windows no longer match, so no later
                    // message could be sent either.
                    self.fail_internal("compression failed", out);
                    return Err(UsageError::CompressionFailed);
                }
            },
            None => false,
        };
        let (rsv, body) = if deflated {
            (RSV1, compressed.as_slice())
        } else {
            (0, payload)
        };
        let header = FrameHeader {
            rsv,
            ..FrameHeader::single(opcode, body.len(), mask)
        };
        encode_frame(&header, body, out);
        Ok(())
    }

    /// Appends a ping (§5.5.2). The payload is at most 125 bytes.
    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        if u64::try_from(payload.len()).unwrap_or(u64::MAX) > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooLong(payload.len()));
        }
        if !self.close.is_open() {
            return Err(UsageError::SendAfterClose);
        }
        self.write_control(OpCode::Ping, payload, out);
        Ok(())
    }

    /// Starts the closing handshake with `code` and `reason` (cut to 123 bytes).
    ///
    /// Returns whether a close frame was written: a second call, or a call after the peer's
    /// close was answered, writes nothing.
    pub fn close(&mut self, code: CloseCode, reason: &str, out: &mut Vec<u8>) -> bool {
        if self.close.on(CloseInput::Send) != CloseAction::SendClose {
            return false;
        }
        let mut body = Vec::with_capacity(2 + reason.len().min(123));
        CloseFrame::encode_body(Some(code), reason, &mut body);
        self.write_control(OpCode::Close, &body, out);
        true
    }

    /// Fails the connection for a fault of this side, such as a compressor that failed on a
    /// shared frame: close 1011 (RFC 6455 §7.4.1: "an unexpected condition that prevented
    /// it from fulfilling the request"), then nothing more is read or sent, as after a
    /// protocol error ([`Session::has_failed`]). Does nothing after a close was sent.
    pub fn fail_internal(&mut self, reason: &str, out: &mut Vec<u8>) {
        self.read = ReadState::Failed;
        self.close(CloseCode::INTERNAL_ERROR, reason, out);
    }

    /// Control frames are never compressed (RFC 7692 §6.1).
    pub(super) fn write_control(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
        let header = FrameHeader::single(opcode, payload.len(), self.next_mask());
        encode_frame(&header, payload, out);
    }

    fn next_mask(&self) -> Option<[u8; 4]> {
        self.mask_keys.map(|keys| keys())
    }
}
