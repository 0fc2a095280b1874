//! Fuzz target: the incremental `Utf8Validator` over arbitrary chunking (RFC 6455 §8.1).
//!
//! Oracle: the final verdict equals `std::str::from_utf8` of the whole, and it fails fast:
//! `feed` fails exactly at the first chunk after which the bytes so far can no longer become
//! UTF-8. Input layout: `wsloop_fuzz::input`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::utf8::Utf8Validator;
use wsloop_fuzz::input::Framed;

fuzz_target!(|data: &[u8]| {
    let input = Framed::parse(data);
    let whole = std::str::from_utf8(input.stream).is_ok();
    let mut validator = Utf8Validator::new();
    let mut seen = 0;
    for piece in input.pieces() {
        seen += piece.len();
        let fed = validator.feed(piece).is_ok();
        assert_eq!(
            fed,
            can_become_utf8(&input.stream[..seen]),
            "feed verdict at {seen} bytes"
        );
        if !fed {
            assert!(!whole, "valid UTF-8 refused");
            return;
        }
    }
    assert_eq!(validator.finish().is_ok(), whole, "final verdict");
});

/// Whether `bytes` is UTF-8 or a prefix of UTF-8 (it ends inside a code point).
fn can_become_utf8(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).map_or_else(|e| e.error_len().is_none(), |_| true)
}
