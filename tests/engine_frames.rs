//! Loopback tests of data framing on `/echo` (RFC 6455 §5, §8.1, §10.4): echo of text and
//! binary, fragmentation with interleaved control frames, ping/pong, and every framing error
//! that must fail the connection with 1002, 1007 or 1009.
//!
//! Each test starts its own server on port 0 and speaks raw bytes through `common::Client`.

mod common;

use std::io::Write as _;
use std::thread;

use common::{
    FIN, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, RSV2, RSV3, TestServer,
    frame, unmasked_frame,
};
use wsloop::protocol::{Limits, OpCode};

// §5.6, §5.2: text and binary messages, including empty ones, come back as sent, and the
// server writes each length in its shortest form (7-bit, 16-bit, 64-bit).
#[test]
fn messages_of_every_length_form_are_echoed_in_shortest_form() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_text("");
    client.expect_text("");
    client.send_binary(&[]);
    client.expect_binary(&[]);
    for (len, header_len) in [(125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        client.send_binary(&payload);
        let echoed = client.read_frame();
        assert_eq!(echoed.opcode, OpCode::Binary);
        assert_eq!(
            echoed.header_len, header_len,
            "§5.2 minimal length for {len}"
        );
        assert!(echoed.payload == payload, "payload of {len} bytes differs");
    }
    client.send_text("héllo wörld ✓ 🦀");
    client.expect_text("héllo wörld ✓ 🦀");
    client.close_cleanly();
}

// §5.3: a frame split into 1-byte writes is unmasked correctly whatever the key phase.
#[test]
fn frame_split_into_one_byte_writes_is_reassembled() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let payload: Vec<u8> = (0..300u16).map(|i| (i * 7) as u8).collect();
    client.send_bytewise(&frame(FIN | OP_BINARY, &payload));
    client.expect_binary(&payload);
    client.send_bytewise(&frame(FIN | OP_PING, b"ping in pieces"));
    client.expect_pong(b"ping in pieces");
    client.send_bytewise(&frame(FIN | OP_CLOSE, &common::close_body(4001, b"bye")));
    client.expect_close(4001);
}

// §5.4: fragments are reassembled into one message; §5.4 and §5.5: control frames may be
// injected between fragments and are answered at once (pong before the message).
#[test]
fn fragmented_message_with_interleaved_pings_is_reassembled() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let mut bytes = frame(OP_TEXT, b"Hel");
    bytes.extend_from_slice(&frame(FIN | OP_PING, b"p1"));
    bytes.extend_from_slice(&frame(OP_CONT, b"lo, "));
    bytes.extend_from_slice(&frame(FIN | OP_PING, b"p2"));
    bytes.extend_from_slice(&frame(FIN | OP_PONG, b"unsolicited"));
    bytes.extend_from_slice(&frame(FIN | OP_CONT, b"world"));
    client.send(&bytes);
    client.expect_pong(b"p1");
    client.expect_pong(b"p2");
    client.expect_text("Hello, world");
    client.close_cleanly();
}

// §8.1, §5.6: a code point split across fragments is valid UTF-8 once joined.
#[test]
fn code_point_split_across_fragments_is_accepted() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let crab = "🦀".as_bytes(); // 4 bytes
    client.send_frame(OP_TEXT, &crab[..1]);
    client.send_frame(OP_CONT, &crab[1..3]);
    client.send_frame(FIN | OP_CONT, &crab[3..]);
    client.expect_text("🦀");
    client.close_cleanly();
}

// §5.5.2, §5.5.3: a ping is answered by a pong with the same payload (0 to 125 bytes).
#[test]
fn ping_is_answered_with_pong_of_the_same_payload() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_ping(b"");
    client.expect_pong(b"");
    client.send_ping(b"are you there?");
    client.expect_pong(b"are you there?");
    let max = [0xA5u8; 125];
    client.send_ping(&max);
    client.expect_pong(&max);
    client.close_cleanly();
}

// §5.5.3: "A Pong frame MAY be sent unsolicited"; it needs no answer and breaks nothing.
#[test]
fn unsolicited_pong_is_ignored() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(FIN | OP_PONG, b"heartbeat");
    client.send_text("still here");
    client.expect_text("still here");
    client.close_cleanly();
}

// §5.5: "All control frames MUST have a payload length of 125 bytes or less".
#[test]
fn ping_over_125_bytes_fails_with_1002() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_ping(&[0u8; 126]);
    client.expect_close(1002);
}

// §5.5: control frames "MUST NOT be fragmented".
#[test]
fn fragmented_ping_fails_with_1002() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(OP_PING, b"no fin");
    client.expect_close(1002);
}

// §5.5 applies to every control frame, not to ping only: pong and close too.
#[test]
fn oversized_or_fragmented_pong_and_close_fail_with_1002() {
    let server = TestServer::start();
    let mut long_close = common::close_body(1000, b"");
    long_close.resize(126, b'r');
    let cases = [
        ("pong of 126 bytes", FIN | OP_PONG, vec![0u8; 126]),
        ("fragmented pong", OP_PONG, b"x".to_vec()),
        ("close of 126 bytes", FIN | OP_CLOSE, long_close),
        ("fragmented close", OP_CLOSE, common::close_body(1000, b"")),
    ];
    for (what, b0, payload) in cases {
        let mut client = server.open("/echo");
        client.send_frame(b0, &payload);
        let (code, reason) = client.read_close();
        assert_eq!(code, Some(1002), "{what} ({reason})");
        client.expect_eof();
    }
}

// §5.1: "The server MUST close the connection upon receiving a frame that is not masked",
// with 1002 (§7.4.1).
#[test]
fn unmasked_client_frame_fails_with_1002() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send(&unmasked_frame(FIN | OP_TEXT, b"naked"));
    client.expect_close(1002);
}

// §5.2: a nonzero RSV bit with no extension negotiated "MUST _Fail the WebSocket Connection_".
#[test]
fn rsv_bit_without_extension_fails_with_1002() {
    let server = TestServer::start();
    for rsv in [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3] {
        let mut client = server.open("/echo");
        client.send_frame(FIN | rsv | OP_TEXT, b"reserved");
        client.expect_close(1002);
    }
    let mut client = server.open("/echo");
    client.send_frame(FIN | RSV1 | OP_PING, b"");
    client.expect_close(1002);
}

// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved; receiving one fails the connection.
#[test]
fn reserved_opcode_fails_with_1002() {
    let server = TestServer::start();
    for opcode in (0x3..=0x7).chain(0xB..=0xF) {
        let mut client = server.open("/echo");
        client.send_frame(FIN | opcode, b"");
        let (code, reason) = client.read_close();
        assert_eq!(code, Some(1002), "opcode {opcode:#x} ({reason})");
        client.expect_eof();
    }
}

// §5.2: "the most significant bit MUST be 0" in a 64-bit payload length.
#[test]
fn length_with_top_bit_set_fails_with_1002() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let mut header = vec![FIN | OP_BINARY, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    client.send(&header);
    client.expect_close(1002);
}

// §5.4: a continuation frame with no message in progress is a protocol error.
#[test]
fn continuation_without_a_started_message_fails_with_1002() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(FIN | OP_CONT, b"orphan");
    client.expect_close(1002);
}

// §5.4: fragments of one message "MUST NOT be interleaved" with a new data message.
#[test]
fn new_data_frame_inside_a_fragmented_message_fails_with_1002() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(OP_TEXT, b"first half");
    client.send_frame(FIN | OP_BINARY, b"intruder");
    client.expect_close(1002);
}

// §8.1: a text message that is not valid UTF-8 fails the connection with 1007 (§7.4.1).
#[test]
fn text_with_invalid_utf8_fails_with_1007() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(FIN | OP_TEXT, b"ok so far \xC0\xAF");
    client.expect_close(1007);
}

// §8.1 and §5.6: invalid UTF-8 is detected in the first fragment, before the message ends
// (the final fragment is never sent here).
#[test]
fn invalid_utf8_in_a_first_fragment_fails_fast_with_1007() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(OP_TEXT, b"\xF4\x90\x80\x80 above U+10FFFF");
    client.expect_close(1007);
}

// §8.1: a text message ending in the middle of a code point is invalid.
#[test]
fn text_ending_mid_code_point_fails_with_1007() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    client.send_frame(OP_TEXT, "caf".as_bytes());
    client.send_frame(FIN | OP_CONT, &"é".as_bytes()[..1]);
    client.expect_close(1007);
}

// §10.4, §7.4.1: a message over the configured maximum is refused with 1009, counting
// every fragment; a message exactly at the limit passes.
#[test]
fn message_over_max_message_fails_with_1009() {
    let limits = Limits {
        max_frame: 1 << 20,
        max_message: 1000,
    };
    let server = TestServer::start_with(|c| c.limits = limits);
    let mut client = server.open("/echo");
    client.send_binary(&[7u8; 1000]);
    client.expect_binary(&[7u8; 1000]);
    client.send_frame(OP_BINARY, &[1u8; 400]);
    client.send_frame(OP_CONT, &[2u8; 400]);
    client.send_frame(FIN | OP_CONT, &[3u8; 400]);
    client.expect_close(1009);

    let mut client = server.open("/echo");
    client.send_text(&"x".repeat(1001));
    client.expect_close(1009);
}

// §10.4: a single frame declaring more than the configured maximum frame is refused with
// 1009 from its header alone, before its payload is read or buffered.
#[test]
fn frame_over_max_frame_fails_with_1009_from_its_header() {
    let limits = Limits {
        max_frame: 4096,
        max_message: 1 << 20,
    };
    let server = TestServer::start_with(|c| c.limits = limits);
    let mut client = server.open("/echo");
    let mut header = vec![FIN | OP_BINARY, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[9, 9, 9, 9]);
    client.send(&header);
    client.expect_close(1009);
}

// §5.2, §5.3: a 2 MiB binary message (one masked frame) comes back byte for byte.
#[test]
fn two_mib_binary_message_is_echoed_intact() {
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let payload: Vec<u8> = (0..2usize << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let bytes = frame(FIN | OP_BINARY, &payload);
    let mut writer = client.writer();
    let sender = thread::spawn(move || writer.write_all(&bytes));
    client.expect_binary(&payload);
    sender.join().expect("writer thread").expect("write 2 MiB");
    client.close_cleanly();
}

// §5.4 ("in the order sent"), §6.1: many small messages pipelined in one write come back
// complete and in order, text and binary alike.
#[test]
fn many_small_pipelined_messages_are_echoed_in_order() {
    const COUNT: usize = 5_000;
    let server = TestServer::start();
    let mut client = server.open("/echo");
    let mut bytes = Vec::new();
    for i in 0..COUNT {
        let body = format!("message {i}");
        let op = if i % 2 == 0 { OP_TEXT } else { OP_BINARY };
        bytes.extend_from_slice(&frame(FIN | op, body.as_bytes()));
    }
    let mut writer = client.writer();
    let sender = thread::spawn(move || writer.write_all(&bytes));
    for i in 0..COUNT {
        let echoed = client.read_frame();
        let expected_op = if i % 2 == 0 {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        assert_eq!(echoed.opcode, expected_op, "message {i}");
        assert_eq!(
            echoed.payload,
            format!("message {i}").as_bytes(),
            "message {i}"
        );
    }
    sender.join().expect("writer thread").expect("write all");
    client.close_cleanly();
    let stats = server.wait_until_idle();
    assert_eq!(stats["messages_received"], COUNT, "{stats}");
    assert_eq!(stats["messages_sent"], COUNT, "{stats}");
}
