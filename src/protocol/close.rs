//! Close frames: status codes and reasons (RFC 6455 §5.5.1, §7.4).
//!
//! "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned integer (in
//! network byte order) representing a status code … Following the 2-byte integer, the body
//! MAY contain UTF-8-encoded data" (§5.5.1). [`CloseFrame::parse`] applies those rules and
//! the code ranges of §7.4; [`CloseFrame::encode_body`] writes a body.

use std::fmt;

use super::error::ProtocolError;

/// The longest reason that fits a control frame: 125 bytes minus the 2-byte code (§5.5).
pub const MAX_REASON_LEN: usize = 123;

/// A close status code (§7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present. Never sent on the wire.
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a close frame. Never sent on the wire.
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: a message's data was not consistent with its type (invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1015: the TLS handshake failed. Never sent on the wire.
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether an endpoint may put this code in a close frame (§7.4.1, §7.4.2).
    ///
    /// 1000–1003 and 1007–1014 are defined or registered; 1004 is reserved; 1005, 1006 and
    /// 1015 "MUST NOT be set as a status code in a Close control frame"; 0–999 are unused,
    /// 1016–2999 are reserved for future revisions; 3000–4999 belong to libraries, frameworks
    /// and applications; 5000 and above are undefined.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A parsed close frame body, borrowing its reason from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code, or `None` for an empty body (reported to applications as 1005).
    pub code: Option<CloseCode>,
    /// The UTF-8 reason; empty when absent.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parses a received close body.
    ///
    /// An empty body is allowed; a 1-byte body, a code not valid on the wire, or a reason that
    /// is not UTF-8 is a protocol error (1002, or 1007 for the reason).
    pub fn parse(body: &'a [u8]) -> Result<Self, ProtocolError> {
        super::utf8::count::add(body.len().saturating_sub(2));
        match body {
            [] => Ok(Self {
                code: None,
                reason: "",
            }),
            [_] => Err(ProtocolError::CloseBodyTooShort),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = simdutf8::basic::from_utf8(reason)
                    .map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Self {
                    code: Some(code),
                    reason,
                })
            }
        }
    }

    /// Appends the body for `code` and `reason` to `out`.
    ///
    /// The reason is cut at a character boundary to fit [`MAX_REASON_LEN`]. `None` writes an
    /// empty body.
    pub fn encode_body(code: Option<CloseCode>, reason: &str, out: &mut Vec<u8>) {
        if let Some(code) = code {
            out.extend_from_slice(&code.0.to_be_bytes());
            out.extend_from_slice(truncate_reason(reason).as_bytes());
        }
    }
}

/// The longest prefix of `reason` that fits [`MAX_REASON_LEN`] bytes on a char boundary.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut b = code.to_be_bytes().to_vec();
        b.extend_from_slice(reason);
        b
    }

    #[test]
    fn empty_body_means_no_status() {
        assert_eq!(
            CloseFrame::parse(&[]),
            Ok(CloseFrame {
                code: None,
                reason: ""
            })
        );
    }

    /// §5.5.1: a body, if present, starts with a 2-byte code, so one byte is malformed.
    #[test]
    fn one_byte_body_is_an_error() {
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(ProtocolError::CloseBodyTooShort)
        );
    }

    #[test]
    fn valid_codes_are_accepted() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ]
        .into_iter()
        .chain([3000, 3999, 4000, 4999])
        {
            let bytes = body(code, b"bye");
            let frame = CloseFrame::parse(&bytes).expect("valid code");
            assert_eq!(frame.code, Some(CloseCode(code)));
            assert_eq!(frame.reason, "bye");
        }
    }

    /// §7.4.1: 1005, 1006 and 1015 are never on the wire; 0–999, 1004, 1016–2999 and 5000+
    /// are not valid either.
    #[test]
    fn invalid_codes_are_refused() {
        for code in [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                CloseFrame::parse(&body(code, b"")),
                Err(ProtocolError::InvalidCloseCode(code)),
                "code {code}"
            );
        }
    }

    #[test]
    fn reason_must_be_utf8() {
        assert_eq!(
            CloseFrame::parse(&body(
                1000,
                &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xff]
            )),
            Err(ProtocolError::InvalidCloseReason)
        );
        assert!(CloseFrame::parse(&body(1000, "κόσμε".as_bytes())).is_ok());
    }

    #[test]
    fn encode_truncates_long_reasons_on_a_char_boundary() {
        let reason = "é".repeat(100);
        let mut out = Vec::new();
        CloseFrame::encode_body(Some(CloseCode::NORMAL), &reason, &mut out);
        assert!(out.len() <= 125);
        let parsed = CloseFrame::parse(&out).expect("round trip");
        assert_eq!(parsed.reason.len(), 122);
    }

    #[test]
    fn encode_without_code_is_empty() {
        let mut out = Vec::new();
        CloseFrame::encode_body(None, "ignored", &mut out);
        assert!(out.is_empty());
    }
}
