//! How a request's body is framed (RFC 9112 §6), as wsloop takes bodies: by
//! `Content-Length` only, up to a limit. The engine decides from this whether to read a
//! body; an app checking a request's head before its body is read (the hub's API) answers
//! 411 or 413 from it.

use super::handshake::RequestHead;

/// How a request's body is framed (RFC 9112 §6), as the server takes bodies: by
/// `Content-Length` only, up to a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length` bytes, `100 Continue` first if the client expects it.
    Length {
        /// The body's length.
        length: usize,
        /// `Expect: 100-continue` was sent.
        send_continue: bool,
    },
    /// No `Content-Length`, and no `Transfer-Encoding`.
    Unstated,
    /// `Transfer-Encoding` (chunked), which the server does not read.
    Chunked,
    /// A `Content-Length` that is not a number.
    Malformed,
    /// A `Content-Length` over the limit.
    TooLarge,
}

/// The framing of `head`'s body, with `max` the longest body taken.
pub fn body_framing(head: &RequestHead, max: usize) -> BodyFraming {
    if head.header("transfer-encoding").is_some() {
        return BodyFraming::Chunked;
    }
    match head.header("content-length").map(str::parse::<usize>) {
        None => BodyFraming::Unstated,
        Some(Err(_)) => BodyFraming::Malformed,
        Some(Ok(length)) if length > max => BodyFraming::TooLarge,
        Some(Ok(length)) => BodyFraming::Length {
            length,
            send_continue: head
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::Decoded;
    use crate::protocol::handshake::{HeadLimits, HeadParser};

    fn framing(headers: &str, max: usize) -> BodyFraming {
        let text = format!("POST /api/publish HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let mut parser = HeadParser::new(HeadLimits::default());
        match parser.parse(text.as_bytes()) {
            Ok(Decoded::Complete(head, _)) => body_framing(&head, max),
            other => panic!("not a head: {other:?}"),
        }
    }

    #[test]
    fn a_body_is_taken_by_content_length_only_and_up_to_the_limit() {
        assert_eq!(
            framing("Content-Length: 5\r\n", 10),
            BodyFraming::Length {
                length: 5,
                send_continue: false
            }
        );
        assert_eq!(
            framing("Content-Length: 10\r\nExpect: 100-Continue\r\n", 10),
            BodyFraming::Length {
                length: 10,
                send_continue: true
            }
        );
        assert_eq!(framing("Content-Length: 11\r\n", 10), BodyFraming::TooLarge);
        assert_eq!(
            framing("Content-Length: -1\r\n", 10),
            BodyFraming::Malformed
        );
        assert_eq!(framing("", 10), BodyFraming::Unstated);
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 10),
            BodyFraming::Chunked
        );
    }
}
