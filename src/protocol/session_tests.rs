//! Tests of [`Session`]: the RFC's examples, fragmentation, control frames, close, limits.

use super::*;
use crate::protocol::close::CloseCode;
use crate::protocol::error::UsageError;
use crate::protocol::frame::encode_frame;
use proptest::prelude::*;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What a driver saw, owned so tests can compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Error(ProtocolError),
}

fn own(event: Event<'_>) -> Seen {
    match event {
        Event::Text(t) => Seen::Text(t.to_owned()),
        Event::Binary(b) => Seen::Binary(b.to_vec()),
        Event::Ping(p) => Seen::Ping(p.to_vec()),
        Event::Pong(p) => Seen::Pong(p.to_vec()),
        Event::Close(c) => Seen::Close(c.code.map(|c| c.0), c.reason.to_owned()),
    }
}

/// Feeds `bytes` to `session` in chunks of `chunk` bytes, keeping leftovers like a server.
pub(super) fn drive(session: &mut Session, bytes: &[u8], chunk: usize) -> (Vec<Seen>, Vec<u8>) {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            match session.read(&mut pending[pos..], &mut out) {
                Ok(Read { consumed, event }) => {
                    pos += consumed;
                    match event {
                        Some(e) => seen.push(own(e)),
                        None => break,
                    }
                }
                Err(e) => {
                    seen.push(Seen::Error(e));
                    return (seen, out);
                }
            }
        }
        pending.drain(..pos);
    }
    (seen, out)
}

/// A client frame: masked with `KEY`.
pub(super) fn masked(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: Some(KEY),
        payload_len: payload.len() as u64,
    };
    let mut out = Vec::new();
    encode_frame(&header, payload, &mut out);
    out
}

fn server() -> Session {
    Session::server(Limits::default())
}

fn fixed_key() -> [u8; 4] {
    KEY
}

/// Decodes the frames a server wrote (unmasked) into (opcode, payload).
fn frames(mut bytes: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
    let mut result = Vec::new();
    while let Ok(Decoded::Complete(h, n)) = FrameHeader::decode(bytes) {
        let len = h.payload_len as usize;
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut payload, k, 0);
        }
        result.push((h.opcode, payload));
        bytes = &bytes[n + len..];
    }
    result
}

#[test]
fn rfc_5_7_masked_hello_in_every_chunking() {
    let bytes = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    for chunk in 1..=bytes.len() {
        let (seen, out) = drive(&mut server(), &bytes, chunk);
        assert_eq!(seen, [Seen::Text("Hello".into())], "chunk {chunk}");
        assert!(out.is_empty());
    }
}

#[test]
fn whole_message_in_input_is_not_copied() {
    let mut s = server();
    let mut bytes = masked(true, OpCode::Binary, b"zero-copy");
    let range = bytes.as_ptr_range();
    let mut out = Vec::new();
    let read = s.read(&mut bytes, &mut out).unwrap();
    let Some(Event::Binary(payload)) = read.event else {
        panic!("{read:?}")
    };
    assert!(range.contains(&payload.as_ptr()));
}

#[test]
fn rfc_5_7_fragmented_text_with_interleaved_pings() {
    let mut bytes = masked(false, OpCode::Text, b"Hel");
    bytes.extend(masked(true, OpCode::Ping, b"p1"));
    bytes.extend(masked(false, OpCode::Continuation, b"l"));
    bytes.extend(masked(true, OpCode::Ping, b"p2"));
    bytes.extend(masked(true, OpCode::Continuation, b"o"));
    for chunk in [1, 2, 3, 7, 100] {
        let (seen, out) = drive(&mut server(), &bytes, chunk);
        assert_eq!(
            seen,
            [
                Seen::Ping(b"p1".to_vec()),
                Seen::Ping(b"p2".to_vec()),
                Seen::Text("Hello".into())
            ]
        );
        assert_eq!(
            frames(&out),
            [
                (OpCode::Pong, b"p1".to_vec()),
                (OpCode::Pong, b"p2".to_vec())
            ]
        );
    }
}

/// §5.5.2: "the Pong frame sent in response … MUST have identical 'Application data'".
#[test]
fn ping_is_answered_with_the_same_payload() {
    let payload: Vec<u8> = (0..125).collect();
    let (seen, out) = drive(&mut server(), &masked(true, OpCode::Ping, &payload), 9);
    assert_eq!(seen, [Seen::Ping(payload.clone())]);
    assert_eq!(frames(&out), [(OpCode::Pong, payload)]);
}

#[test]
fn unsolicited_pong_is_fine() {
    let (seen, out) = drive(&mut server(), &masked(true, OpCode::Pong, b"hi"), 64);
    assert_eq!(seen, [Seen::Pong(b"hi".to_vec())]);
    assert!(out.is_empty());
}

#[test]
fn peer_close_is_answered_once_and_later_data_ignored() {
    let mut bytes = masked(true, OpCode::Close, &[0x03, 0xE8, b'b', b'y', b'e']);
    bytes.extend(masked(true, OpCode::Text, b"after close"));
    bytes.extend(masked(true, OpCode::Close, &[0x03, 0xE8]));
    let mut s = server();
    let (seen, out) = drive(&mut s, &bytes, 64);
    assert_eq!(seen, [Seen::Close(Some(1000), "bye".into())]);
    assert_eq!(frames(&out), [(OpCode::Close, vec![0x03, 0xE8])]);
    assert_eq!(s.close_state(), CloseState::Closed);
    let mut more = Vec::new();
    assert!(!s.close(CloseCode::NORMAL, "again", &mut more));
    assert!(more.is_empty());
    assert_eq!(
        s.send(MessageKind::Text, b"x", &mut more),
        Err(UsageError::SendAfterClose)
    );
}

#[test]
fn empty_close_gets_an_empty_reply() {
    let (seen, out) = drive(&mut server(), &masked(true, OpCode::Close, &[]), 64);
    assert_eq!(seen, [Seen::Close(None, String::new())]);
    assert_eq!(frames(&out), [(OpCode::Close, vec![])]);
}

#[test]
fn server_initiated_close_waits_for_the_reply_and_skips_data() {
    let mut s = server();
    let mut out = Vec::new();
    assert!(s.close(CloseCode::GOING_AWAY, "server shutting down", &mut out));
    assert!(!s.close(CloseCode::NORMAL, "twice", &mut out));
    let sent = frames(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1[..2], [0x03, 0xE9]);
    assert_eq!(&sent[0].1[2..], b"server shutting down");
    assert_eq!(s.close_state(), CloseState::CloseSent);
    let mut bytes = masked(true, OpCode::Text, b"late data");
    bytes.extend(masked(true, OpCode::Ping, b"late ping"));
    bytes.extend(masked(true, OpCode::Close, &[0x03, 0xE9]));
    let (seen, replies) = drive(&mut s, &bytes, 5);
    assert_eq!(seen, [Seen::Close(Some(1001), String::new())]);
    assert!(
        replies.is_empty(),
        "no pong and no second close after our close"
    );
    assert_eq!(s.close_state(), CloseState::Closed);
}

/// A server frame: unmasked.
fn plain(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader::single(opcode, payload.len(), None);
    let mut out = Vec::new();
    encode_frame(&FrameHeader { fin, ..header }, payload, &mut out);
    out
}

#[test]
fn client_initiated_close_still_delivers_the_data_sent_before_the_reply() {
    // The answers to the client's last requests, a ping, then the close reply (§1.4).
    let mut bytes = plain(true, OpCode::Text, b"late answer");
    bytes.extend(plain(false, OpCode::Binary, b"par"));
    bytes.extend(plain(true, OpCode::Continuation, b"ts"));
    bytes.extend(plain(true, OpCode::Ping, b"late ping"));
    bytes.extend(plain(true, OpCode::Close, &[0x03, 0xE8]));
    for chunk in [1, 4, 1000] {
        let mut c = Session::client(Limits::default(), fixed_key);
        let mut out = Vec::new();
        assert!(c.close(CloseCode::NORMAL, "", &mut out));
        let (seen, replies) = drive(&mut c, &bytes, chunk);
        assert_eq!(
            seen,
            [
                Seen::Text("late answer".into()),
                Seen::Binary(b"parts".to_vec()),
                Seen::Close(Some(1000), String::new()),
            ],
            "chunk {chunk}"
        );
        assert!(replies.is_empty(), "no pong after our close");
        assert_eq!(c.close_state(), CloseState::Closed);
    }
}

fn expect_failure(bytes: &[u8], error: ProtocolError, code: u16) {
    for chunk in [1, 3, 1000] {
        let mut s = server();
        let (seen, out) = drive(&mut s, bytes, chunk);
        assert_eq!(seen.last(), Some(&Seen::Error(error)), "chunk {chunk}");
        let sent = frames(&out);
        let (op, body) = sent.last().expect("a close frame");
        assert_eq!(*op, OpCode::Close);
        assert_eq!(u16::from_be_bytes([body[0], body[1]]), code);
        assert!(s.has_failed());
        assert_eq!(s.close_state(), CloseState::CloseSent);
        // Everything after a failure is ignored.
        let mut more = masked(true, OpCode::Text, b"x");
        let read = s.read(&mut more, &mut Vec::new()).unwrap();
        assert_eq!(read.event, None);
    }
}

#[test]
fn unmasked_client_frame_is_1002() {
    expect_failure(
        &[0x81, 0x02, b'h', b'i'],
        ProtocolError::UnmaskedFrame,
        1002,
    );
}

#[test]
fn rsv_without_extension_is_1002() {
    let mut bytes = masked(true, OpCode::Text, b"x");
    bytes[0] |= RSV1;
    expect_failure(&bytes, ProtocolError::ReservedBits(RSV1), 1002);
}

#[test]
fn reserved_opcodes_are_1002() {
    for op in [3u8, 7, 0xB, 0xF] {
        let mut bytes = masked(true, OpCode::Binary, b"");
        bytes[0] = 0x80 | op;
        expect_failure(&bytes, ProtocolError::ReservedOpcode(op), 1002);
    }
}

#[test]
fn long_or_fragmented_control_frames_are_1002() {
    expect_failure(
        &masked(true, OpCode::Ping, &[0; 126]),
        ProtocolError::ControlFrameTooLong(126),
        1002,
    );
    expect_failure(
        &masked(false, OpCode::Ping, b"x"),
        ProtocolError::FragmentedControlFrame,
        1002,
    );
    expect_failure(
        &masked(true, OpCode::Close, &[0; 126]),
        ProtocolError::ControlFrameTooLong(126),
        1002,
    );
}

#[test]
fn continuation_rules_are_1002() {
    expect_failure(
        &masked(true, OpCode::Continuation, b"x"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    let mut bytes = masked(false, OpCode::Text, b"a");
    bytes.extend(masked(true, OpCode::Text, b"b"));
    expect_failure(&bytes, ProtocolError::ExpectedContinuation, 1002);
}

#[test]
fn invalid_close_bodies_are_refused() {
    expect_failure(
        &masked(true, OpCode::Close, &[3]),
        ProtocolError::CloseBodyTooShort,
        1002,
    );
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let body = code.to_be_bytes();
        expect_failure(
            &masked(true, OpCode::Close, &body),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
    let bad_reason = [0x03, 0xE8, 0xff];
    expect_failure(
        &masked(true, OpCode::Close, &bad_reason),
        ProtocolError::InvalidCloseReason,
        1007,
    );
}

#[test]
fn invalid_utf8_is_1007_and_fails_fast() {
    expect_failure(
        &masked(true, OpCode::Text, &[0xce, 0xba, 0xff]),
        ProtocolError::InvalidUtf8,
        1007,
    );
    // The first fragment is valid, the second breaks it: fail before the third arrives.
    let mut s = server();
    let mut bytes = masked(false, OpCode::Text, "κόσμε".as_bytes());
    bytes.extend(masked(
        false,
        OpCode::Continuation,
        &[0xF4, 0x90, 0x80, 0x80],
    ));
    let (seen, _) = drive(&mut s, &bytes, 1000);
    assert_eq!(seen, [Seen::Error(ProtocolError::InvalidUtf8)]);
    // Within a single frame that has only partly arrived (Autobahn 6.4.3).
    let frame = masked(
        true,
        OpCode::Text,
        &[b'a', b'b', 0xF4, 0x90, b'c', b'd', b'e', b'f'],
    );
    let (seen, _) = drive(&mut server(), &frame[..frame.len() - 3], 1000);
    assert_eq!(seen, [Seen::Error(ProtocolError::InvalidUtf8)]);
}

#[test]
fn code_point_split_across_fragments_is_accepted() {
    let text = "€𝄞".as_bytes();
    for split in 0..=text.len() {
        let mut bytes = masked(false, OpCode::Text, &text[..split]);
        bytes.extend(masked(true, OpCode::Continuation, &text[split..]));
        let (seen, _) = drive(&mut server(), &bytes, 2);
        assert_eq!(seen, [Seen::Text("€𝄞".into())], "split {split}");
    }
}

#[test]
fn message_over_the_limit_is_1009_before_its_payload() {
    let limits = Limits {
        max_frame: 1 << 20,
        max_message: 10,
    };
    let mut s = Session::server(limits);
    // Only the header of an 11-byte frame: refused before any payload arrives.
    let frame = masked(true, OpCode::Binary, &[0; 11]);
    let (seen, out) = drive(&mut s, &frame[..6], 64);
    assert_eq!(
        seen,
        [Seen::Error(ProtocolError::MessageTooLarge { limit: 10 })]
    );
    assert_eq!(frames(&out)[0].1[..2], [0x03, 0xF1]);
    // Fragments adding up past the limit.
    let mut bytes = masked(false, OpCode::Binary, &[0; 6]);
    bytes.extend(masked(true, OpCode::Continuation, &[0; 5]));
    let (seen, _) = drive(&mut Session::server(limits), &bytes, 64);
    assert_eq!(
        seen,
        [Seen::Error(ProtocolError::MessageTooLarge { limit: 10 })]
    );
}

#[test]
fn frame_over_the_limit_is_1009() {
    let limits = Limits {
        max_frame: 4,
        max_message: 100,
    };
    let (seen, _) = drive(
        &mut Session::server(limits),
        &masked(true, OpCode::Binary, &[0; 5]),
        64,
    );
    assert_eq!(
        seen,
        [Seen::Error(ProtocolError::FrameTooLarge {
            declared: 5,
            limit: 4
        })]
    );
}

#[test]
fn huge_declared_length_allocates_nothing_up_front() {
    // A 2^62-byte frame header with a few payload bytes: refused by the limit, no allocation.
    let mut bytes = vec![0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&KEY);
    let (seen, _) = drive(&mut server(), &bytes, 64);
    assert!(matches!(
        seen[..],
        [Seen::Error(ProtocolError::FrameTooLarge { .. })]
    ));
}

#[test]
fn client_role_refuses_masked_frames_and_masks_its_own() {
    let mut client = Session::client(Limits::default(), fixed_key);
    let mut out = Vec::new();
    client.send(MessageKind::Text, b"Hello", &mut out).unwrap();
    assert_eq!(
        out,
        [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    let (seen, _) = drive(&mut client, &[0x81, 0x05, b'H', b'e', b'l', b'l', b'o'], 2);
    assert_eq!(seen, [Seen::Text("Hello".into())]);
    let (seen, _) = drive(
        &mut Session::client(Limits::default(), fixed_key),
        &masked(true, OpCode::Text, b"x"),
        64,
    );
    assert_eq!(seen, [Seen::Error(ProtocolError::MaskedFrame)]);
}

#[test]
fn ping_payload_over_125_is_a_usage_error() {
    let mut out = Vec::new();
    assert_eq!(
        server().ping(&[0; 126], &mut out),
        Err(UsageError::ControlPayloadTooLong(126))
    );
    assert!(server().ping(&[0; 125], &mut out).is_ok());
}

#[test]
fn large_message_across_many_reads() {
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let bytes = masked(true, OpCode::Binary, &payload);
    let (seen, _) = drive(&mut server(), &bytes, 4096);
    assert_eq!(seen, [Seen::Binary(payload)]);
}

#[test]
fn empty_messages_and_empty_fragments() {
    let mut bytes = masked(true, OpCode::Text, b"");
    bytes.extend(masked(false, OpCode::Binary, b""));
    bytes.extend(masked(false, OpCode::Continuation, b""));
    bytes.extend(masked(true, OpCode::Continuation, b""));
    let (seen, _) = drive(&mut server(), &bytes, 3);
    assert_eq!(seen, [Seen::Text(String::new()), Seen::Binary(vec![])]);
}

/// A message, as fragments, and the expected delivery.
fn arb_message() -> impl Strategy<Value = (bool, Vec<Vec<u8>>)> {
    (
        any::<bool>(),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..5),
    )
        .prop_map(|(text, parts)| {
            if text {
                let s: String = parts
                    .concat()
                    .iter()
                    .map(|b| char::from(b'a' + b % 26))
                    .collect();
                let mut bytes = s.into_bytes();
                let mut out = Vec::new();
                for p in &parts {
                    out.push(bytes.drain(..p.len()).collect());
                }
                (true, out)
            } else {
                (false, parts)
            }
        })
}

proptest! {
    /// fragment → reassemble: any message in any fragmentation and chunking comes back whole.
    #[test]
    fn fragment_then_reassemble(messages in proptest::collection::vec(arb_message(), 1..5), chunk in 1usize..50) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (text, parts) in &messages {
            let first = if *text { OpCode::Text } else { OpCode::Binary };
            for (i, part) in parts.iter().enumerate() {
                let op = if i == 0 { first } else { OpCode::Continuation };
                bytes.extend(masked(i + 1 == parts.len(), op, part));
            }
            let whole = parts.concat();
            expected.push(if *text { Seen::Text(String::from_utf8(whole).unwrap()) } else { Seen::Binary(whole) });
        }
        let (seen, out) = drive(&mut server(), &bytes, chunk);
        prop_assert_eq!(seen, expected);
        prop_assert!(out.is_empty());
    }

    /// Arbitrary bytes never panic the session, and consumption never exceeds the input.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), chunk in 1usize..20) {
        let _ = drive(&mut server(), &bytes, chunk);
        let _ = drive(&mut Session::client(Limits::default(), fixed_key), &bytes, chunk);
    }
}

#[path = "session_deflate_tests.rs"]
mod deflate;
