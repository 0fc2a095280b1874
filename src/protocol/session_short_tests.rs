//! The short path of [`Session::read`] (one whole, masked, final text or binary frame with a
//! 7-bit length) against the general reader: the same frames read whole take the short
//! path, read a byte at a time take the general one, and every outcome must match.

use super::tests::{Seen, drive, masked as frame};
use super::*;
use proptest::prelude::*;

/// The stream read whole (the short path) and a byte at a time (the general reader).
fn both_ways(limits: Limits, bytes: &[u8]) -> (Vec<Seen>, Vec<u8>) {
    let whole = drive(&mut Session::server(limits), bytes, usize::MAX);
    let split = drive(&mut Session::server(limits), bytes, 1);
    assert_eq!(
        whole, split,
        "the short path and the general reader disagree"
    );
    whole
}

#[test]
fn short_frames_of_every_length_read_as_the_general_reader_reads_them() {
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for len in [0, 1, 7, 8, 9, 124, 125, 126] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        bytes.extend(frame(true, OpCode::Binary, &payload));
        expected.push(Seen::Binary(payload));
    }
    bytes.extend(frame(true, OpCode::Text, "héllo".as_bytes()));
    expected.push(Seen::Text("héllo".into()));
    let (seen, out) = both_ways(Limits::default(), &bytes);
    assert_eq!(seen, expected);
    assert!(out.is_empty());
}

#[test]
fn a_short_text_frame_that_is_not_utf8_fails_with_1007() {
    let (seen, out) = both_ways(Limits::default(), &frame(true, OpCode::Text, &[0xff, 0x41]));
    assert_eq!(seen, vec![Seen::Error(ProtocolError::InvalidUtf8)]);
    assert_eq!(
        (out[0], &out[2..4]),
        (0x88, &[0x03, 0xef][..]),
        "a close frame, 1007"
    );
}

#[test]
fn short_frames_over_the_limits_are_refused_as_the_general_reader_refuses_them() {
    let payload = [7u8; 11];
    let cases = [(10, 100), (100, 10)].map(|(max_frame, max_message)| {
        let limits = Limits {
            max_frame,
            max_message,
        };
        both_ways(limits, &frame(true, OpCode::Binary, &payload)).0
    });
    assert!(matches!(
        cases[0][..],
        [Seen::Error(ProtocolError::FrameTooLarge { .. })]
    ));
    assert!(matches!(
        cases[1][..],
        [Seen::Error(ProtocolError::MessageTooLarge { .. })]
    ));
}

#[test]
fn a_short_frame_inside_a_fragmented_message_is_refused() {
    let first = frame(false, OpCode::Text, b"first ");
    let mut bytes = first.clone();
    // As long as the first frame, so reads of its length split exactly between the two.
    bytes.extend(frame(true, OpCode::Binary, b"second"));
    let (seen, _) = both_ways(Limits::default(), &bytes);
    assert_eq!(seen, vec![Seen::Error(ProtocolError::ExpectedContinuation)]);
    // Read in two pieces, the second frame starts a read of its own, whole: the short
    // path's reach.
    let (seen, _) = drive(&mut Session::server(Limits::default()), &bytes, first.len());
    assert_eq!(seen, vec![Seen::Error(ProtocolError::ExpectedContinuation)]);
}

#[test]
fn an_unmasked_short_frame_is_refused() {
    let bytes = [0x82, 0x01, 0x2a];
    let (seen, _) = both_ways(Limits::default(), &bytes);
    assert_eq!(seen, vec![Seen::Error(ProtocolError::UnmaskedFrame)]);
}

#[test]
fn after_its_own_close_a_server_reads_past_short_frames_without_handing_them_out() {
    // §1.4: after sending a Close frame, data received is discarded.
    let closed = || {
        let mut session = Session::server(Limits::default());
        assert!(session.close(crate::protocol::close::CloseCode(1001), "", &mut Vec::new()));
        session
    };
    let mut bytes = frame(true, OpCode::Binary, b"late");
    bytes.extend(frame(true, OpCode::Text, b"later"));
    assert_eq!(
        drive(&mut closed(), &bytes, usize::MAX),
        drive(&mut closed(), &bytes, 1)
    );
    assert_eq!(drive(&mut closed(), &bytes, usize::MAX).0, vec![]);
}

proptest! {
    /// Any run of short data frames (valid UTF-8 or not), read whole or in any chunking,
    /// gives the same events, the same error and the same bytes to send.
    #[test]
    fn short_frames_read_the_same_in_any_chunking(
        frames in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..=125)), 1..8),
        chunk in 1usize..40,
    ) {
        let mut bytes = Vec::new();
        for (text, payload) in &frames {
            let opcode = if *text { OpCode::Text } else { OpCode::Binary };
            bytes.extend(frame(true, opcode, payload));
        }
        let whole = drive(&mut Session::server(Limits::default()), &bytes, usize::MAX);
        let split = drive(&mut Session::server(Limits::default()), &bytes, chunk);
        prop_assert_eq!(whole, split);
    }
}
