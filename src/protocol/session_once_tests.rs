//! Each text message is UTF-8-validated once and each close frame parsed once, however it
//! arrives: whole in one read, split over reads, or fragmented.

use super::*;
use crate::protocol::frame::encode_frame;
use crate::protocol::utf8::count;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const TEXT: &str = "κόσμε, €, 𝄞: hello, wörld";

fn frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut header = FrameHeader::single(opcode, payload.len(), Some(KEY));
    header.fin = fin;
    let mut out = Vec::new();
    encode_frame(&header, payload, &mut out);
    out
}

/// Feeds `bytes` in `chunk`-byte reads; returns the texts and close reasons seen.
fn drive(bytes: &[u8], chunk: usize) -> Vec<String> {
    let mut session = Session::server(Limits::default());
    let (mut seen, mut out, mut pending) = (Vec::new(), Vec::new(), Vec::new());
    for piece in bytes.chunks(chunk) {
        pending.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            let read = session
                .read(&mut pending[pos..], &mut out)
                .expect("valid input");
            pos += read.consumed;
            match read.event {
                Some(Event::Text(text)) => seen.push(text.to_owned()),
                Some(Event::Close(close)) => seen.push(format!("close {}", close.reason)),
                Some(_) => {}
                None => break,
            }
        }
        pending.drain(..pos);
    }
    seen
}

/// Bytes validated while `work` runs.
fn validated(work: impl FnOnce()) -> usize {
    let before = count::get();
    work();
    count::get() - before
}

#[test]
fn a_whole_text_frame_is_validated_once() {
    let bytes = frame(OpCode::Text, true, TEXT.as_bytes());
    let n = validated(|| assert_eq!(drive(&bytes, bytes.len()), [TEXT]));
    assert_eq!(n, TEXT.len());
}

#[test]
fn a_text_frame_split_over_reads_is_validated_once() {
    let bytes = frame(OpCode::Text, true, TEXT.as_bytes());
    for chunk in [1, 3, 7] {
        let n = validated(|| assert_eq!(drive(&bytes, chunk), [TEXT]));
        assert_eq!(n, TEXT.len(), "reads of {chunk} bytes");
    }
}

#[test]
fn a_fragmented_text_message_is_validated_once() {
    let (a, b) = TEXT.as_bytes().split_at(5);
    let mut bytes = frame(OpCode::Text, false, a);
    bytes.extend(frame(OpCode::Continuation, true, b));
    let n = validated(|| assert_eq!(drive(&bytes, bytes.len()), [TEXT]));
    assert_eq!(n, TEXT.len());
}

#[test]
fn a_close_frame_is_parsed_once() {
    let mut body = vec![0x03, 0xe8];
    body.extend_from_slice(b"bye now");
    let bytes = frame(OpCode::Close, true, &body);
    let n = validated(|| assert_eq!(drive(&bytes, bytes.len()), ["close bye now"]));
    assert_eq!(n, "bye now".len());
}
