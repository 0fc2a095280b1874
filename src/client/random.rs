//! Randomness the client role needs: masking keys (RFC 6455 §5.3) and handshake nonces
//! (§4.1), from the operating system via `getrandom`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh masking key. §5.3: "The masking key needs to be unpredictable; thus, the masking
/// key MUST be derived from a strong source of entropy".
pub fn mask_key() -> [u8; 4] {
    match getrandom::u32() {
        Ok(n) => n.to_ne_bytes(),
        Err(_) => fallback_u64().to_ne_bytes()[..4]
            .try_into()
            .unwrap_or([0x5a; 4]),
    }
}

/// 16 random bytes for `Sec-WebSocket-Key`.
pub fn nonce() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&fallback_u64().to_ne_bytes());
        bytes[8..].copy_from_slice(&fallback_u64().rotate_left(17).to_ne_bytes());
    }
    bytes
}

/// A uniform number in `[0, 1)`, for backoff jitter.
pub fn unit() -> f64 {
    let bits = getrandom::u64().unwrap_or_else(|_| fallback_u64());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Only if the OS refuses randomness (it does not on Linux): the clock, mixed.
fn fallback_u64() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut x = t ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_and_unit_is_in_range() {
        let keys: std::collections::HashSet<[u8; 4]> = (0..64).map(|_| mask_key()).collect();
        assert!(
            keys.len() > 60,
            "64 random keys should be nearly all distinct"
        );
        assert_ne!(nonce(), nonce());
        for _ in 0..1000 {
            let u = unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
