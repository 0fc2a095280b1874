//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 §4.2.1, §4.2.2).
//!
//! "The value of this header field MUST be a nonce consisting of a randomly selected 16-byte
//! value that has been base64-encoded" (§4.1). The server answers with "the base64-encoded
//! SHA-1 of the concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded)
//! with the string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"" (§4.2.2, step 5.4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// The GUID of §1.3 appended to the key before hashing.
pub const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Whether `key` is base64 of exactly 16 bytes.
pub fn is_valid_key(key: &str) -> bool {
    // 16 bytes encode to 24 characters with two '=' of padding.
    key.len() == 24 && STANDARD.decode(key).is_ok_and(|raw| raw.len() == 16)
}

/// The `Sec-WebSocket-Accept` value for `key`.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID);
    STANDARD.encode(sha.finalize())
}

/// A `Sec-WebSocket-Key` for 16 random bytes (the client's side of §4.1).
pub fn key_from_nonce(nonce: [u8; 16]) -> String {
    STANDARD.encode(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of §1.3 and §4.2.2.
    #[test]
    fn rfc_sample_nonce() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn keys_must_decode_to_16_bytes() {
        assert!(is_valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZQ")); // no padding
        assert!(!is_valid_key("dGhlIHNhbXBsZSBub25jZXg=")); // 17 bytes
        assert!(!is_valid_key("!!!!!!!!!!!!!!!!!!!!!!=="));
        assert!(is_valid_key(&key_from_nonce([7; 16])));
    }
}
