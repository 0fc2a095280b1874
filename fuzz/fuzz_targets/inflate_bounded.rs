//! Fuzz target: inflating arbitrary bytes as a compressed message under a size limit
//! (RFC 7692 §7.2.2 with RFC 6455 §10.4).
//!
//! Input: two bytes of limit, one byte of frame size, then the "compressed" payload. It goes
//! twice through the code: straight into an `Inflater` with a sink that refuses bytes past
//! the limit, and as RSV1 frames into a server `Session` with `max_message` = the limit.
//! Oracle: nothing panics; the inflater never hands out more than the limit plus one step;
//! the session delivers at most `max_message` bytes, or fails with 1009 (too large), 1007
//! (not DEFLATE) or 1002, never anything else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::deflate::codec::INFLATE_STEP;
use wsloop::protocol::deflate::{DeflateConfig, DeflateParams, Inflater};
use wsloop::protocol::frame::{FrameHeader, RSV1, encode_frame};
use wsloop::protocol::{Event, Limits, OpCode, ProtocolError, Session};

fn inflate_directly(limit: usize, payload: &[u8]) {
    let mut total = 0usize;
    let mut sink = |bytes: &[u8]| {
        total += bytes.len();
        if total > limit {
            return Err(ProtocolError::MessageTooLarge { limit });
        }
        Ok(())
    };
    let mut inflater = Inflater::new();
    let _ = inflater
        .inflate(payload, &mut sink)
        .and_then(|()| inflater.finish(&mut sink));
    assert!(total <= limit + INFLATE_STEP, "{total} bytes past a limit of {limit}");
}

fn frames(payload: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    let pieces: Vec<&[u8]> = payload.chunks(size.max(1)).collect();
    let count = pieces.len().max(1);
    for i in 0..count {
        let piece = pieces.get(i).copied().unwrap_or_default();
        let header = FrameHeader {
            fin: i + 1 == count,
            rsv: if i == 0 { RSV1 } else { 0 },
            opcode: if i == 0 { OpCode::Binary } else { OpCode::Continuation },
            mask: Some([1, 2, 3, 4]),
            payload_len: piece.len() as u64,
        };
        encode_frame(&header, piece, &mut bytes);
    }
    bytes
}

fuzz_target!(|data: &[u8]| {
    let [a, b, size, payload @ ..] = data else {
        return;
    };
    let limit = usize::from(u16::from_le_bytes([*a, *b]));
    inflate_directly(limit, payload);
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let limits = Limits {
        max_frame: 1 << 20,
        max_message: limit,
    };
    let mut session = Session::server(limits).with_deflate(params, &DeflateConfig::default());
    let mut input = frames(payload, usize::from(*size));
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        match session.read(&mut input[pos..], &mut out) {
            Ok(read) => {
                pos += read.consumed;
                match read.event {
                    Some(Event::Binary(message)) => assert!(message.len() <= limit),
                    Some(other) => panic!("unexpected {other:?}"),
                    None if read.consumed == 0 => break,
                    None => {}
                }
            }
            Err(error) => {
                let code = error.close_code().0;
                assert!(matches!(code, 1002 | 1007 | 1009), "{error:?}");
                break;
            }
        }
    }
});
