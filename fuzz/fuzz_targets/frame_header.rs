//! Fuzz target: `FrameHeader::decode` on arbitrary bytes (RFC 6455 §5.2).
//!
//! Oracle: it never panics; a Complete header claims at most the input and at most 14 bytes,
//! every shorter prefix of those bytes is Partial, and encode → decode gives the header back
//! (compared as headers: `encode` picks the shortest length form, the input may not have).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::frame::MAX_HEADER_LEN;
use wsloop::protocol::{Decoded, FrameHeader};

fuzz_target!(|data: &[u8]| {
    let Ok(Decoded::Complete(header, len)) = FrameHeader::decode(data) else {
        return;
    };
    assert!(
        len <= data.len() && len <= MAX_HEADER_LEN,
        "claimed {len} of {} bytes",
        data.len()
    );
    for cut in 0..len {
        assert_eq!(
            FrameHeader::decode(&data[..cut]),
            Ok(Decoded::Partial),
            "prefix {cut}"
        );
    }
    let (bytes, encoded_len) = header.encode();
    assert!(
        encoded_len <= len,
        "encode used {encoded_len} bytes, the input {len}"
    );
    let again = FrameHeader::decode(&bytes[..encoded_len]);
    assert_eq!(
        again,
        Ok(Decoded::Complete(header, encoded_len)),
        "round trip"
    );
});
