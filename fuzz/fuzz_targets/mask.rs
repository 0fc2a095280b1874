//! Fuzz target: the fast `apply_mask` against the byte-at-a-time definition (RFC 6455 §5.3).
//!
//! Oracle: for any data, key, payload offset and start alignment, the fast path equals
//! `apply_mask_naive`, and masking in two parts (resuming at the split) equals one pass.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wsloop::protocol::mask::{apply_mask, apply_mask_naive};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Bytes before the payload, so it starts at any alignment (taken modulo 16).
    align: u8,
    /// Where in the payload `data` starts (any value: only its phase modulo 4 matters).
    offset: usize,
    key: [u8; 4],
    /// Where to split for the resumed pass (taken modulo the length).
    split: u16,
    data: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let align = usize::from(input.align % 16);
    let mut fast = vec![0xA5; align];
    fast.extend_from_slice(&input.data);
    let mut naive = fast.clone();
    apply_mask(&mut fast[align..], input.key, input.offset);
    // The naive loop computes `offset + i`, which overflows for offsets near usize::MAX;
    // the phase is all that matters, and 2^64 is a multiple of 4.
    apply_mask_naive(&mut naive[align..], input.key, input.offset % 4);
    assert_eq!(fast, naive, "fast and naive masking differ");
    let mut parts = input.data.clone();
    let split = usize::from(input.split) % (parts.len() + 1);
    let (head, tail) = parts.split_at_mut(split);
    apply_mask(head, input.key, input.offset);
    apply_mask(tail, input.key, input.offset.wrapping_add(split));
    assert_eq!(parts, naive[align..], "masking resumed at {split} differs");
});
