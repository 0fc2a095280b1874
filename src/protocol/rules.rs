//! The frame rules that depend on the connection, not on the header alone (RFC 6455 §5).
//!
//! [`FrameHeader::decode`](super::FrameHeader::decode) checks what a header can say about
//! itself. [`FrameRules::check`] adds what the connection knows: which side we are, which RSV
//! bits an extension gave meaning to, how big a frame may be, and whether a fragmented
//! message is open. It is called once per frame, before any payload byte is read.

use super::error::ProtocolError;
use super::frame::{FrameHeader, RSV1};
use super::opcode::OpCode;

/// The longest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: u64 = 125;

/// Which end of the connection this endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Receives masked frames, sends unmasked ones.
    Server,
    /// Receives unmasked frames, sends masked ones.
    Client,
}

/// Per-connection frame rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRules {
    /// Which side we are; decides which masking the peer must use.
    pub role: Role,
    /// RSV bits that a negotiated extension allows (e.g. [`super::frame::RSV1`] for
    /// permessage-deflate). Default: none.
    pub allowed_rsv: u8,
    /// The largest payload one frame may declare. Default: 16 MiB.
    pub max_frame: u64,
}

impl FrameRules {
    /// Checks `header` against the connection's rules.
    ///
    /// `fragmenting` tells whether a fragmented data message is open (a text or binary frame
    /// without FIN was received and its final continuation was not).
    pub fn check(&self, header: &FrameHeader, fragmenting: bool) -> Result<(), ProtocolError> {
        self.check_masking(header)?;
        // §5.2: "If a nonzero value is received and none of the negotiated extensions defines
        // the meaning of such a nonzero value, the receiving endpoint MUST _Fail_".
        if header.rsv & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        // RFC 7692 §6.1, the one extension that gives RSV1 a meaning: "An endpoint MUST NOT set
        // the "Per-Message Compressed" bit of control frames and non-first fragments of a data
        // message. An endpoint receiving such a frame MUST _Fail the WebSocket Connection_."
        let first_data_frame = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & RSV1 != 0 && !first_data_frame {
            return Err(ProtocolError::MisplacedCompressionBit);
        }
        if header.opcode.is_control() {
            return check_control(header);
        }
        check_sequence(header.opcode, fragmenting)?;
        if header.payload_len > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                declared: header.payload_len,
                limit: self.max_frame,
            });
        }
        Ok(())
    }

    /// §5.1: "a client MUST mask all frames that it sends to the server … A server MUST NOT
    /// mask any frames that it sends to the client." Either side closes on a violation.
    fn check_masking(&self, header: &FrameHeader) -> Result<(), ProtocolError> {
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => Err(ProtocolError::MaskedFrame),
            _ => Ok(()),
        }
    }
}

/// §5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be
/// fragmented."
fn check_control(header: &FrameHeader) -> Result<(), ProtocolError> {
    if !header.fin {
        return Err(ProtocolError::FragmentedControlFrame);
    }
    if header.payload_len > MAX_CONTROL_PAYLOAD {
        return Err(ProtocolError::ControlFrameTooLong(header.payload_len));
    }
    Ok(())
}

/// §5.4: a fragmented message is one text/binary frame without FIN, then continuation frames,
/// the last with FIN; "the fragments of one message MUST NOT be interleaved between the
/// fragments of another message".
fn check_sequence(opcode: OpCode, fragmenting: bool) -> Result<(), ProtocolError> {
    match (opcode, fragmenting) {
        (OpCode::Continuation, false) => Err(ProtocolError::UnexpectedContinuation),
        (OpCode::Text | OpCode::Binary, true) => Err(ProtocolError::ExpectedContinuation),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: FrameRules = FrameRules {
        role: Role::Server,
        allowed_rsv: 0,
        max_frame: 1000,
    };
    const CLIENT: FrameRules = FrameRules {
        role: Role::Client,
        allowed_rsv: 0,
        max_frame: 1000,
    };
    const KEY: Option<[u8; 4]> = Some([1, 2, 3, 4]);

    fn header(fin: bool, opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn server_requires_masked_frames() {
        let unmasked = header(true, OpCode::Text, 5, None);
        assert_eq!(
            SERVER.check(&unmasked, false),
            Err(ProtocolError::UnmaskedFrame)
        );
        assert_eq!(
            SERVER.check(&header(true, OpCode::Text, 5, KEY), false),
            Ok(())
        );
    }

    #[test]
    fn client_refuses_masked_frames() {
        let masked = header(true, OpCode::Text, 5, KEY);
        assert_eq!(
            CLIENT.check(&masked, false),
            Err(ProtocolError::MaskedFrame)
        );
        assert_eq!(
            CLIENT.check(&header(true, OpCode::Text, 5, None), false),
            Ok(())
        );
    }

    #[test]
    fn rsv_bits_need_an_extension() {
        for rsv in [0x40, 0x20, 0x10, 0x70] {
            let h = FrameHeader {
                rsv,
                ..header(true, OpCode::Binary, 1, KEY)
            };
            assert_eq!(
                SERVER.check(&h, false),
                Err(ProtocolError::ReservedBits(rsv))
            );
        }
        let deflate = FrameRules {
            allowed_rsv: RSV1,
            ..SERVER
        };
        let h = FrameHeader {
            rsv: RSV1,
            ..header(true, OpCode::Binary, 1, KEY)
        };
        assert_eq!(deflate.check(&h, false), Ok(()));
        let h = FrameHeader { rsv: 0x20, ..h };
        assert_eq!(
            deflate.check(&h, false),
            Err(ProtocolError::ReservedBits(0x20))
        );
    }

    /// RFC 7692 §6.1: with permessage-deflate on, RSV1 only on the first frame of a message.
    #[test]
    fn compression_bit_only_on_first_data_frames() {
        let deflate = FrameRules {
            allowed_rsv: RSV1,
            ..SERVER
        };
        let with_rsv1 = |fin, opcode| FrameHeader {
            rsv: RSV1,
            ..header(fin, opcode, 1, KEY)
        };
        assert_eq!(
            deflate.check(&with_rsv1(false, OpCode::Text), false),
            Ok(())
        );
        assert_eq!(
            deflate.check(&with_rsv1(true, OpCode::Binary), false),
            Ok(())
        );
        assert_eq!(
            deflate.check(&with_rsv1(true, OpCode::Continuation), true),
            Err(ProtocolError::MisplacedCompressionBit)
        );
        for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
            assert_eq!(
                deflate.check(&with_rsv1(true, op), false),
                Err(ProtocolError::MisplacedCompressionBit)
            );
        }
    }

    #[test]
    fn control_frames_are_short_and_final() {
        for op in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
            assert_eq!(SERVER.check(&header(true, op, 125, KEY), false), Ok(()));
            assert_eq!(
                SERVER.check(&header(true, op, 126, KEY), false),
                Err(ProtocolError::ControlFrameTooLong(126))
            );
            assert_eq!(
                SERVER.check(&header(false, op, 1, KEY), true),
                Err(ProtocolError::FragmentedControlFrame)
            );
        }
    }

    #[test]
    fn control_frames_may_interleave_a_fragmented_message() {
        assert_eq!(
            SERVER.check(&header(true, OpCode::Ping, 3, KEY), true),
            Ok(())
        );
    }

    #[test]
    fn fragment_sequence_is_enforced() {
        let cont = header(true, OpCode::Continuation, 1, KEY);
        assert_eq!(
            SERVER.check(&cont, false),
            Err(ProtocolError::UnexpectedContinuation)
        );
        assert_eq!(SERVER.check(&cont, true), Ok(()));
        let text = header(false, OpCode::Text, 1, KEY);
        assert_eq!(
            SERVER.check(&text, true),
            Err(ProtocolError::ExpectedContinuation)
        );
    }

    #[test]
    fn frames_over_the_limit_are_refused_before_reading() {
        assert_eq!(
            SERVER.check(&header(true, OpCode::Binary, 1001, KEY), false),
            Err(ProtocolError::FrameTooLarge {
                declared: 1001,
                limit: 1000
            })
        );
        assert_eq!(
            SERVER.check(&header(true, OpCode::Binary, 1000, KEY), false),
            Ok(())
        );
    }
}
