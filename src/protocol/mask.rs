//! Payload masking (RFC 6455 §5.3).
//!
//! "Octet i of the transformed data ("transformed-octet-i") is the XOR of octet i of the
//! original data ("original-octet-i") with octet at index i modulo 4 of the masking key."
//!
//! [`apply_mask`] does this in place over 8-byte chunks, which the compiler turns into SIMD
//! XORs; it works for any alignment and any length, and can resume in the middle of a payload
//! (the `offset` argument), which is how a frame that arrives over several reads is unmasked
//! without copying it first. [`apply_mask_naive`] is the byte-at-a-time definition, kept as
//! the oracle for tests, fuzzing and benches.

/// XORs `buf` with the masking `key`, as if `buf` started at byte `offset` of the payload.
///
/// Masking and unmasking are the same operation. Never panics.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let (chunks, tail) = buf.as_chunks_mut::<8>();
    for chunk in chunks {
        *chunk = (u64::from_ne_bytes(*chunk) ^ wide).to_ne_bytes();
    }
    // `chunks` covered a multiple of 8 bytes, so the key phase is unchanged for the tail.
    for (byte, k) in tail.iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

/// The definition from §5.3, one byte at a time. Slow; used as a test oracle.
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[(offset % 4 + i) % 4];
    }
}

/// The key as seen from byte `offset` of the payload.
///
/// Rotating the key as one `u32` avoids the `memmove` that `[u8; 4]::rotate_left` compiles
/// to (9 ns per call on short frames, measured in `benches/mask.rs`).
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(key).rotate_right(shift).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// §5.7: "A single-frame masked text message" carries "Hello" under key 37 fa 21 3d.
    #[test]
    fn rfc_5_7_masked_hello() {
        let mut payload = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut payload, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&payload, b"Hello");
    }

    /// An offset near `usize::MAX` must not overflow (found by fuzzing).
    #[test]
    fn naive_mask_takes_any_offset() {
        let mut buf = [0u8; 2];
        apply_mask_naive(&mut buf, [1, 2, 3, 4], usize::MAX);
        assert_eq!(buf, [4, 1]);
        let mut fast = [0u8; 2];
        apply_mask(&mut fast, [1, 2, 3, 4], usize::MAX);
        assert_eq!(fast, buf);
    }

    #[test]
    fn masking_twice_is_the_identity() {
        let original: Vec<u8> = (0..=255).collect();
        let mut buf = original.clone();
        apply_mask(&mut buf, [1, 2, 3, 4], 0);
        assert_ne!(buf, original);
        apply_mask(&mut buf, [1, 2, 3, 4], 0);
        assert_eq!(buf, original);
    }

    #[test]
    fn resuming_at_an_offset_equals_one_pass() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split in 0..data.len() {
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(parts, whole, "split at {split}");
        }
    }

    proptest! {
        /// The fast path equals the naive loop for every length, start alignment, phase and key.
        #[test]
        fn fast_equals_naive(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            align in 0usize..16,
            offset in 0usize..8,
            key in any::<[u8; 4]>(),
        ) {
            let mut backing = vec![0u8; align];
            backing.extend_from_slice(&data);
            let mut fast = backing.clone();
            apply_mask(&mut fast[align..], key, offset);
            let mut naive = backing;
            apply_mask_naive(&mut naive[align..], key, offset);
            prop_assert_eq!(fast, naive);
        }
    }

    /// Exhaustive over small lengths and every alignment and phase, for one key.
    #[test]
    fn fast_equals_naive_exhaustive_small() {
        let key = [0x11, 0x22, 0x33, 0x44];
        for len in 0..70 {
            for align in 0..8 {
                for offset in 0..4 {
                    let data: Vec<u8> = (0..len + align).map(|i| (i * 7) as u8).collect();
                    let mut fast = data.clone();
                    let mut naive = data;
                    apply_mask(&mut fast[align..], key, offset);
                    apply_mask_naive(&mut naive[align..], key, offset);
                    assert_eq!(fast, naive, "len {len} align {align} offset {offset}");
                }
            }
        }
    }
}
