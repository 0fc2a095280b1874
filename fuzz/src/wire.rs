//! Reads back the frames a session wrote into `out`: every one must be well formed.

use wsloop::protocol::mask::apply_mask_naive;
use wsloop::protocol::{Decoded, FrameHeader, OpCode, Role};

/// Decodes every frame in `out` into (opcode, unmasked payload).
///
/// Panics (the oracle) if a frame is truncated or malformed, fragmented, carries RSV bits,
/// or is masked when it must not be: a client masks every frame, a server none (§5.1).
pub fn frames(out: &[u8], role: Role) -> Vec<(OpCode, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut rest = out;
    while !rest.is_empty() {
        let Ok(Decoded::Complete(header, head_len)) = FrameHeader::decode(rest) else {
            panic!("the session wrote a malformed frame header: {rest:02x?}");
        };
        assert!(
            header.fin && header.rsv == 0,
            "the session wrote {header:?}"
        );
        assert_eq!(
            header.mask.is_some(),
            role == Role::Client,
            "masking of {header:?}"
        );
        let end = usize::try_from(header.payload_len)
            .ok()
            .and_then(|len| head_len.checked_add(len))
            .filter(|&end| end <= rest.len());
        let Some(end) = end else {
            panic!(
                "the session wrote a truncated frame: {header:?}, {} bytes",
                rest.len()
            );
        };
        let mut payload = rest[head_len..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask_naive(&mut payload, key, 0);
        }
        frames.push((header.opcode, payload));
        rest = &rest[end..];
    }
    frames
}

/// The status code of a close frame's payload, if it has one.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    match payload {
        [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}
