//! Fuzz target: the opening handshake: `HeadParser::parse`, then `validate_upgrade` (§4.2).
//!
//! Oracle: nothing panics; the head fed in arbitrary chunks (each call with the grown buffer,
//! as the server does) gives the same result as fed whole; a Complete head claims at most the
//! input; an accepted upgrade has a 28-character `Sec-WebSocket-Accept`, a subprotocol from
//! the server's list, and a 101 answer with exactly one blank line; a refusal's answer
//! carries its status. Input layout: `wsloop_fuzz::input` (bit 4: 256-byte, 4-header limits).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::Decoded;
use wsloop::protocol::handshake::{
    HeadError, HeadLimits, HeadParser, Rejection, RequestHead, accept_key, validate_upgrade,
    write_accept,
};
use wsloop_fuzz::input::Framed;

const SMALL: HeadLimits = HeadLimits {
    max_bytes: 256,
    max_headers: 4,
};

fuzz_target!(|data: &[u8]| {
    let input = Framed::parse(data);
    let limits = if input.small_limits {
        SMALL
    } else {
        HeadLimits::default()
    };
    let whole = HeadParser::new(limits).parse(input.stream);
    assert_eq!(
        chunked(limits, &input),
        whole,
        "chunked and whole parses differ"
    );
    match whole {
        Ok(Decoded::Complete(head, len)) => {
            assert!(
                len <= input.stream.len(),
                "claimed {len} of {}",
                input.stream.len()
            );
            check_head(&head);
        }
        Ok(Decoded::Partial) => {}
        Err(error) => check_refusal(Rejection::Head(error)),
    }
});

/// Parses as the server does: the buffer grows by one piece per call.
fn chunked(limits: HeadLimits, input: &Framed<'_>) -> Result<Decoded<RequestHead>, HeadError> {
    let mut parser = HeadParser::new(limits);
    let mut end = 0;
    for piece in input.pieces() {
        end += piece.len();
        let result = parser.parse(&input.stream[..end]);
        if result != Ok(Decoded::Partial) {
            return result;
        }
    }
    Ok(Decoded::Partial)
}

fn check_head(head: &RequestHead) {
    let _ = head.query_param("token");
    let _ = head.redacted_target();
    let protocols = ["chat".to_owned(), "superchat".to_owned()];
    let upgrade = match validate_upgrade(head, &protocols) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return check_refusal(rejection),
    };
    assert_eq!(
        accept_key(&upgrade.key).len(),
        28,
        "accept key of {:?}",
        upgrade.key
    );
    let chosen = upgrade.protocol.as_ref();
    assert!(
        chosen.is_none_or(|p| protocols.contains(p)),
        "subprotocol {chosen:?}"
    );
    let mut out = Vec::new();
    write_accept(&upgrade, &[], &mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"),
        "101 status line"
    );
    assert_eq!(
        blank_lines(&out),
        1,
        "101 answer: {:?}",
        String::from_utf8_lossy(&out)
    );
}

fn check_refusal(rejection: Rejection) {
    let status = rejection.status();
    assert!(
        matches!(status, 400 | 404 | 405 | 426 | 431),
        "{rejection:?} → {status}"
    );
    let mut out = Vec::new();
    rejection.response().encode(&mut out);
    assert!(
        out.starts_with(format!("HTTP/1.1 {status} ").as_bytes()),
        "status line"
    );
}

fn blank_lines(head: &[u8]) -> usize {
    head.windows(4).filter(|w| *w == b"\r\n\r\n").count()
}
