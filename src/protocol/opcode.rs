//! Frame opcodes (RFC 6455 §5.2, §11.8).
//!
//! The four-bit opcode says how to read a frame's payload. Values 0x3–0x7 are reserved for
//! further non-control frames and 0xB–0xF for further control frames; a receiver that gets one
//! "MUST _Fail the WebSocket Connection_" (§5.2), which [`OpCode::from_bits`] reports.

use std::fmt;

/// A frame opcode that RFC 6455 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a continuation frame of a fragmented message (§5.4).
    Continuation,
    /// 0x1: the first frame of a text message; its payload is UTF-8 (§5.6).
    Text,
    /// 0x2: the first frame of a binary message (§5.6).
    Binary,
    /// 0x8: a close frame (§5.5.1).
    Close,
    /// 0x9: a ping (§5.5.2).
    Ping,
    /// 0xA: a pong (§5.5.3).
    Pong,
}

impl OpCode {
    /// Reads the low four bits of the first header byte.
    ///
    /// Returns `Err(bits)` for a reserved opcode (0x3–0x7, 0xB–0xF).
    pub const fn from_bits(bits: u8) -> Result<Self, u8> {
        match bits & 0x0F {
            0x0 => Ok(Self::Continuation),
            0x1 => Ok(Self::Text),
            0x2 => Ok(Self::Binary),
            0x8 => Ok(Self::Close),
            0x9 => Ok(Self::Ping),
            0xA => Ok(Self::Pong),
            other => Err(other),
        }
    }

    /// The four-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Control frames have an opcode whose most significant bit is 1 (§5.5).
    pub const fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Continuation => "continuation",
            Self::Text => "text",
            Self::Binary => "binary",
            Self::Close => "close",
            Self::Ping => "ping",
            Self::Pong => "pong",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_opcode_round_trips() {
        for op in [
            OpCode::Continuation,
            OpCode::Text,
            OpCode::Binary,
            OpCode::Close,
            OpCode::Ping,
            OpCode::Pong,
        ] {
            assert_eq!(OpCode::from_bits(op.bits()), Ok(op));
        }
    }

    #[test]
    fn reserved_opcodes_are_refused() {
        for bits in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(OpCode::from_bits(bits), Err(bits));
        }
    }

    #[test]
    fn control_bit_is_the_high_bit() {
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
        assert!(!OpCode::Text.is_control());
        assert!(!OpCode::Binary.is_control());
        assert!(!OpCode::Continuation.is_control());
    }
}
