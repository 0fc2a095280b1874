//! Protocol errors: what the peer did wrong, and the close code that answers it.
//!
//! Every variant is the peer's fault (malformed bytes or a rule of RFC 6455 broken), so each
//! maps to the close status the RFC implies: 1002 for framing, 1007 for invalid UTF-8 in a
//! text message or close reason (and for compressed data that does not inflate, RFC 7692),
//! 1009 for a frame or message over the configured limit.
//! Mistakes by the caller of this crate are a separate type, [`UsageError`].

use std::fmt;

use super::close::CloseCode;

/// A rule of RFC 6455 broken by the peer. Each variant maps to a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// §5.2: RSV bits set while no extension defining them was negotiated.
    ReservedBits(u8),
    /// §5.2: an opcode from the reserved ranges 0x3–0x7 or 0xB–0xF.
    ReservedOpcode(u8),
    /// §5.2: a 64-bit payload length with its most significant bit set.
    LengthTopBitSet,
    /// §5.5: a control frame with a payload longer than 125 bytes.
    ControlFrameTooLong(u64),
    /// §5.5: a control frame without FIN ("Control frames … MUST NOT be fragmented").
    FragmentedControlFrame,
    /// §5.1: a client frame without the MASK bit, received by a server.
    UnmaskedFrame,
    /// §5.1: a server frame with the MASK bit, received by a client.
    MaskedFrame,
    /// §5.4: a continuation frame with no fragmented message in progress.
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame while a fragmented message is still open.
    ExpectedContinuation,
    /// §8.1: a text message (or the fragments so far) is not valid UTF-8.
    InvalidUtf8,
    /// §5.5.1: a close body of exactly one byte.
    CloseBodyTooShort,
    /// §7.4: a close code that may not appear on the wire.
    InvalidCloseCode(u16),
    /// §5.5.1: a close reason that is not UTF-8.
    InvalidCloseReason,
    /// §10.4: a frame declares more payload than the configured maximum frame size.
    FrameTooLarge {
        /// The length the frame declared.
        declared: u64,
        /// The configured limit.
        limit: u64,
    },
    /// §10.4: the message would grow beyond the configured maximum message size. For a
    /// compressed message (RFC 7692) the inflated bytes count.
    MessageTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// RFC 7692 §6.1: RSV1 on a control frame or a continuation frame ("An endpoint MUST NOT
    /// set the "Per-Message Compressed" bit of control frames and non-first fragments").
    MisplacedCompressionBit,
    /// RFC 7692 §7.2.2: a compressed message that is not valid DEFLATE data.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code RFC 6455 implies for this error.
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::InvalidUtf8 | Self::InvalidCloseReason | Self::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason for the close frame, under the 123-byte limit.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::ReservedBits(_) => "reserved bits set",
            Self::ReservedOpcode(_) => "reserved opcode",
            Self::LengthTopBitSet => "invalid 64-bit length",
            Self::ControlFrameTooLong(_) => "control frame too long",
            Self::FragmentedControlFrame => "fragmented control frame",
            Self::UnmaskedFrame => "client frame not masked",
            Self::MaskedFrame => "server frame masked",
            Self::UnexpectedContinuation => "unexpected continuation frame",
            Self::ExpectedContinuation => "expected continuation frame",
            Self::InvalidUtf8 => "invalid UTF-8 in text message",
            Self::CloseBodyTooShort => "close frame body of one byte",
            Self::InvalidCloseCode(_) => "invalid close code",
            Self::InvalidCloseReason => "invalid UTF-8 in close reason",
            Self::FrameTooLarge { .. } => "frame too large",
            Self::MessageTooLarge { .. } => "message too large",
            Self::MisplacedCompressionBit => "RSV1 on a control or continuation frame",
            Self::InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ReservedBits(bits) => write!(f, "reserved bits {bits:#04x} set"),
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::ControlFrameTooLong(len) => write!(f, "control frame of {len} bytes (max 125)"),
            Self::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            Self::FrameTooLarge { declared, limit } => {
                write!(f, "frame of {declared} bytes exceeds the limit of {limit}")
            }
            Self::MessageTooLarge { limit } => {
                write!(f, "message exceeds the limit of {limit} bytes")
            }
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A mistake by the code that drives a [`Session`](super::Session), not by the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// A data frame was sent after this side sent a close frame (§5.5.1: "the application
    /// MUST NOT send any more data frames").
    SendAfterClose,
    /// A control frame payload over 125 bytes (§5.5).
    ControlPayloadTooLong(usize),
    /// Not the caller's doing, but its call to report: permessage-deflate could not
    /// compress the message, so nothing was written (RFC 7692 §6: a message marked RSV1
    /// must be the whole compressed message). Close with 1011
    /// ([`crate::protocol::CloseCode::INTERNAL_ERROR`]).
    CompressionFailed,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SendAfterClose => f.write_str("cannot send data after the close frame"),
            Self::ControlPayloadTooLong(len) => {
                write!(f, "control frame payload of {len} bytes (max 125)")
            }
            Self::CompressionFailed => f.write_str("the message could not be compressed"),
        }
    }
}

impl std::error::Error for UsageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_the_rfc() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode(1007));
        assert_eq!(
            ProtocolError::InvalidCloseReason.close_code(),
            CloseCode(1007)
        );
        assert_eq!(
            ProtocolError::MessageTooLarge { limit: 1 }.close_code(),
            CloseCode(1009)
        );
        let big = ProtocolError::FrameTooLarge {
            declared: 2,
            limit: 1,
        };
        assert_eq!(big.close_code(), CloseCode(1009));
        assert_eq!(
            ProtocolError::ReservedOpcode(3).close_code(),
            CloseCode(1002)
        );
        assert_eq!(ProtocolError::UnmaskedFrame.close_code(), CloseCode(1002));
        assert_eq!(
            ProtocolError::MisplacedCompressionBit.close_code(),
            CloseCode(1002)
        );
        assert_eq!(
            ProtocolError::InvalidCompressedData.close_code(),
            CloseCode(1007)
        );
    }

    #[test]
    fn every_reason_fits_a_close_frame() {
        let all = [
            ProtocolError::ReservedBits(0x40),
            ProtocolError::ReservedOpcode(3),
            ProtocolError::LengthTopBitSet,
            ProtocolError::ControlFrameTooLong(126),
            ProtocolError::FragmentedControlFrame,
            ProtocolError::UnmaskedFrame,
            ProtocolError::MaskedFrame,
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ExpectedContinuation,
            ProtocolError::InvalidUtf8,
            ProtocolError::CloseBodyTooShort,
            ProtocolError::InvalidCloseCode(5),
            ProtocolError::InvalidCloseReason,
            ProtocolError::FrameTooLarge {
                declared: 2,
                limit: 1,
            },
            ProtocolError::MessageTooLarge { limit: 1 },
            ProtocolError::MisplacedCompressionBit,
            ProtocolError::InvalidCompressedData,
        ];
        for e in all {
            assert!(!e.reason().is_empty() && e.reason().len() <= 123, "{e:?}");
            assert!(!e.to_string().is_empty());
        }
    }
}
