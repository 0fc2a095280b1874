//! Tests of a [`Session`] with permessage-deflate (RFC 7692): round trips with and without
//! context takeover, fragments, RSV1 rules, corrupt data, and decompression bombs.

use super::*;
use crate::protocol::deflate::codec::{INFLATE_STEP, TAIL};
use crate::protocol::deflate::{DeflateConfig, DeflateParams, Deflater, DeflaterPool};
use crate::protocol::error::UsageError;

fn params(no_context_takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: no_context_takeover,
        client_no_context_takeover: no_context_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

const CONFIG: DeflateConfig = DeflateConfig {
    level: 6,
    min_size: 16,
    server_no_context_takeover: true,
    client_no_context_takeover: true,
    server_max_window_bits: 15,
    client_max_window_bits: 15,
};

fn deflate_server(limits: Limits, takeover: bool) -> Session {
    Session::server(limits).with_deflate(params(!takeover), &CONFIG)
}

fn deflate_client(takeover: bool) -> Session {
    Session::client(Limits::default(), fixed_key).with_deflate(params(!takeover), &CONFIG)
}

/// A masked client frame with the given RSV bits.
fn masked_rsv(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut bytes = masked(fin, opcode, payload);
    bytes[0] |= rsv;
    bytes
}

fn compress(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Deflater::new(6, 15).compress(payload, &mut out).unwrap();
    out
}

fn chat(i: usize) -> String {
    format!(
        r#"{{"type":"chat","room":"lobby","sender_id":"user-{i}","payload":{{"text":"hello, hello, hello"}}}}"#
    )
}

#[test]
fn client_to_server_round_trip_with_and_without_context_takeover() {
    for takeover in [false, true] {
        for chunk in [1, 7, 4096] {
            let mut client = deflate_client(takeover);
            let mut server = deflate_server(Limits::default(), takeover);
            let mut wire = Vec::new();
            let messages: Vec<String> = (0..5).map(chat).collect();
            for m in &messages {
                client
                    .send(MessageKind::Text, m.as_bytes(), &mut wire)
                    .unwrap();
            }
            assert_eq!(wire[0] & RSV1, RSV1, "the first frame is compressed");
            let (seen, out) = drive(&mut server, &wire, chunk);
            let expected: Vec<Seen> = messages.iter().map(|m| Seen::Text(m.clone())).collect();
            assert_eq!(seen, expected, "takeover {takeover} chunk {chunk}");
            assert!(out.is_empty());
            let keeps = server.deflate().is_some_and(|d| d.holds_state());
            assert_eq!(
                keeps, takeover,
                "the inflater is kept only with context takeover"
            );
        }
    }
}

#[test]
fn server_to_client_round_trip_through_the_pool() {
    for takeover in [false, true] {
        let mut server = deflate_server(Limits::default(), takeover);
        let mut client = deflate_client(takeover);
        let mut pool = DeflaterPool::new(6);
        let mut wire = Vec::new();
        for i in 0..5 {
            let m = chat(i);
            server
                .send_pooled(MessageKind::Binary, m.as_bytes(), &mut pool, &mut wire)
                .unwrap();
        }
        let (seen, _) = drive(&mut client, &wire, 100);
        let expected: Vec<Seen> = (0..5).map(|i| Seen::Binary(chat(i).into_bytes())).collect();
        assert_eq!(seen, expected);
        let keeps = server.deflate().is_some_and(|d| d.holds_state());
        assert_eq!(
            keeps, takeover,
            "a compressor per connection only with context takeover"
        );
    }
}

#[test]
fn small_messages_and_control_frames_are_sent_plain() {
    let mut server = deflate_server(Limits::default(), false);
    let mut out = Vec::new();
    server.send(MessageKind::Text, b"tiny", &mut out).unwrap();
    server
        .ping(b"ping ping ping ping ping ping", &mut out)
        .unwrap();
    server.close(
        CloseCode::NORMAL,
        "closing closing closing closing",
        &mut out,
    );
    let mut rest = out.as_slice();
    while let Ok(Decoded::Complete(h, n)) = FrameHeader::decode(rest) {
        assert_eq!(h.rsv, 0, "{h:?}");
        rest = &rest[n + h.payload_len as usize..];
    }
    assert!(rest.is_empty());
}

#[test]
fn fragmented_compressed_message_with_a_ping_inside() {
    let text = chat(1).repeat(20);
    let compressed = compress(text.as_bytes());
    let third = compressed.len() / 3;
    let mut bytes = masked_rsv(false, RSV1, OpCode::Text, &compressed[..third]);
    bytes.extend(masked(true, OpCode::Ping, b"p"));
    bytes.extend(masked(
        false,
        OpCode::Continuation,
        &compressed[third..2 * third],
    ));
    bytes.extend(masked(true, OpCode::Continuation, &compressed[2 * third..]));
    for chunk in [1, 5, 10_000] {
        let mut s = deflate_server(Limits::default(), false);
        let (seen, _) = drive(&mut s, &bytes, chunk);
        assert_eq!(seen, [Seen::Ping(b"p".to_vec()), Seen::Text(text.clone())]);
    }
}

#[test]
fn uncompressed_messages_still_pass_with_the_extension_on() {
    let mut s = deflate_server(Limits::default(), false);
    let (seen, _) = drive(&mut s, &masked(true, OpCode::Text, b"plain"), 3);
    assert_eq!(seen, [Seen::Text("plain".into())]);
}

fn expect_deflate_failure(bytes: &[u8], limits: Limits, error: ProtocolError, code: u16) {
    for chunk in [1, 13, 100_000] {
        let mut s = deflate_server(limits, false);
        let (seen, out) = drive(&mut s, bytes, chunk);
        assert_eq!(seen.last(), Some(&Seen::Error(error)), "chunk {chunk}");
        let (op, body) = frames(&out).pop().expect("a close frame");
        assert_eq!(op, OpCode::Close);
        assert_eq!(u16::from_be_bytes([body[0], body[1]]), code);
    }
}

/// RFC 6455 §5.2: RSV1 with no extension that defines it fails the connection.
#[test]
fn compressed_message_without_the_extension_is_1002() {
    let bytes = masked_rsv(true, RSV1, OpCode::Text, &compress(b"Hello"));
    expect_failure(&bytes, ProtocolError::ReservedBits(RSV1), 1002);
}

/// RFC 7692 §6.1: RSV1 only on the first frame of a data message.
#[test]
fn rsv1_on_a_continuation_or_control_frame_is_1002() {
    let compressed = compress(b"Hello, Hello");
    let mut bytes = masked_rsv(false, RSV1, OpCode::Text, &compressed[..2]);
    bytes.extend(masked_rsv(
        true,
        RSV1,
        OpCode::Continuation,
        &compressed[2..],
    ));
    let error = ProtocolError::MisplacedCompressionBit;
    expect_deflate_failure(&bytes, Limits::default(), error, 1002);
    let ping = masked_rsv(true, RSV1, OpCode::Ping, b"");
    expect_deflate_failure(&ping, Limits::default(), error, 1002);
}

#[test]
fn corrupt_compressed_data_is_1007() {
    let bytes = masked_rsv(true, RSV1, OpCode::Binary, &[0xff, 0xff, 0xff, 0xff]);
    let error = ProtocolError::InvalidCompressedData;
    expect_deflate_failure(&bytes, Limits::default(), error, 1007);
}

#[test]
fn invalid_utf8_inside_compressed_text_is_1007() {
    let bytes = masked_rsv(
        true,
        RSV1,
        OpCode::Text,
        &compress(&[b'a', 0xC0, 0x80, b'b']),
    );
    expect_deflate_failure(&bytes, Limits::default(), ProtocolError::InvalidUtf8, 1007);
}

/// §10.4 with RFC 7692: the inflated size is what counts against `max_message`.
#[test]
fn inflated_size_counts_against_the_message_limit() {
    let limits = Limits {
        max_frame: 1 << 20,
        max_message: 4096,
    };
    let fits = compress(&[b'a'; 4096]);
    let mut s = deflate_server(limits, false);
    let (seen, _) = drive(&mut s, &masked_rsv(true, RSV1, OpCode::Binary, &fits), 1000);
    assert_eq!(seen, [Seen::Binary(vec![b'a'; 4096])]);
    let over = compress(&[b'a'; 4097]);
    assert!(over.len() < 64, "a few dozen bytes on the wire");
    let bytes = masked_rsv(true, RSV1, OpCode::Binary, &over);
    let error = ProtocolError::MessageTooLarge { limit: 4096 };
    expect_deflate_failure(&bytes, limits, error, 1009);
}

/// A message whose frames would inflate to 10 GiB: each frame carries the next MiB of zeros,
/// about a kilobyte compressed. The session stops after `max_message` inflated bytes plus at
/// most one inflate step, having read a few kilobytes of the 10 MiB it was promised.
#[test]
fn a_ten_gib_bomb_is_closed_with_1009_after_max_message_large_input() {
    let limits = Limits {
        max_frame: 1 << 20,
        max_message: 1 << 20,
    };
    let mut s = deflate_server(limits, false);
    let mut deflater = Deflater::new(9, 15);
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::new();
    let mut fed = 0usize;
    for i in 0..10 * 1024 {
        let mut piece = Vec::new();
        deflater.compress(&zeros, &mut piece).unwrap();
        // Only the message's end loses the flush tail (§7.2.1); mid-message it stays.
        piece.extend_from_slice(&TAIL);
        let (opcode, rsv) = if i == 0 {
            (OpCode::Binary, RSV1)
        } else {
            (OpCode::Continuation, 0)
        };
        let mut frame = masked_rsv(false, rsv, opcode, &piece);
        let len = frame.len();
        fed += len;
        match s.read(&mut frame, &mut out) {
            Ok(read) => assert_eq!((read.consumed, read.event), (len, None)),
            Err(error) => {
                assert_eq!(error, ProtocolError::MessageTooLarge { limit: 1 << 20 });
                assert!(i <= 1, "stopped at frame {i}");
                assert!(fed < 10 * 1024, "{fed} compressed bytes read");
                assert!(s.assembler.payload().len() <= (1 << 20) + INFLATE_STEP);
                let (op, body) = frames(&out).pop().expect("a close frame");
                assert_eq!(
                    (op, &body[..2]),
                    (OpCode::Close, &1009u16.to_be_bytes()[..])
                );
                return;
            }
        }
    }
    panic!("the bomb was not stopped");
}

proptest! {
    /// Any payload, compressed by a client session and cut into any frames, reads back.
    #[test]
    fn any_payload_round_trips(
        payload in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts in proptest::collection::vec(1usize..200, 0..6),
        takeover in any::<bool>(),
    ) {
        let compressed = compress(&payload);
        let mut pieces = Vec::new();
        let mut rest = compressed.as_slice();
        for cut in cuts {
            let (piece, tail) = rest.split_at(cut.min(rest.len()));
            pieces.push(piece);
            rest = tail;
        }
        pieces.push(rest);
        let mut bytes = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let (opcode, rsv) = if i == 0 { (OpCode::Binary, RSV1) } else { (OpCode::Continuation, 0) };
            bytes.extend(masked_rsv(i + 1 == pieces.len(), rsv, opcode, piece));
        }
        let (seen, _) = drive(&mut deflate_server(Limits::default(), takeover), &bytes, 64);
        prop_assert_eq!(seen, vec![Seen::Binary(payload)]);
    }
}

/// A compression failure sends nothing of the message (no truncated RSV1 frame) and fails
/// the connection with 1011 (RFC 6455 §7.4.1: "an unexpected condition").
#[test]
fn a_compression_failure_closes_1011_and_sends_no_data() {
    let mut server = deflate_server(Limits::default(), true);
    server
        .deflate
        .as_deref_mut()
        .expect("deflate agreed")
        .break_compressor_for_test();
    let mut out = Vec::new();
    let message = chat(1).repeat(20);
    assert_eq!(
        server.send(MessageKind::Text, message.as_bytes(), &mut out),
        Err(UsageError::CompressionFailed)
    );
    assert!(server.has_failed());
    let Ok(Decoded::Complete(header, len)) = FrameHeader::decode(&out) else {
        panic!("no close frame: {out:02x?}");
    };
    assert_eq!((header.opcode, header.rsv), (OpCode::Close, 0));
    assert_eq!(
        out.len(),
        len + usize::try_from(header.payload_len).unwrap()
    );
    assert_eq!(out[len..len + 2], 1011u16.to_be_bytes());
    let mut more = Vec::new();
    assert_eq!(
        server.send(MessageKind::Text, b"later", &mut more),
        Err(UsageError::SendAfterClose)
    );
    assert!(more.is_empty());
}
