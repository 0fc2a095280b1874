//! A decompression bomb against the real server over loopback: a compressed message that
//! would inflate to 10 GiB is closed with 1009 once `max_message` inflated bytes arrived,
//! and the process's heap grows by no more than that limit and a few buffers.
//!
//! Alone in its test binary because it counts every heap byte of the process with `dhat`.

mod common;

use std::io::Write;
use std::thread;

use common::{Request, TestServer, fresh_key};
use wsloop::protocol::Limits;
use wsloop::protocol::deflate::codec::TAIL;
use wsloop::protocol::deflate::{DeflateConfig, Deflater};
use wsloop::protocol::frame::{FrameHeader, encode_frame};
use wsloop::protocol::{CloseCode, OpCode};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const MIB: usize = 1 << 20;
/// The message the frames add up to: 10 GiB of zeros, one MiB per frame.
const FRAMES: usize = 10 * 1024;

/// A masked client frame carrying the next piece of one compressed message.
fn piece_frame(first: bool, compressed: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin: false,
        rsv: if first { 0x40 } else { 0 },
        opcode: if first {
            OpCode::Binary
        } else {
            OpCode::Continuation
        },
        mask: Some([0x5a, 0x17, 0xc3, 0x09]),
        payload_len: compressed.len() as u64,
    };
    let mut frame = Vec::new();
    encode_frame(&header, compressed, &mut frame);
    frame
}

/// The compressed pieces of 10 GiB of zeros: the first MiB, then the piece every further MiB
/// compresses to (with context takeover the output repeats once the window is all zeros, so
/// repeating it is exactly how zlib would compress the whole message).
fn bomb_pieces() -> (Vec<u8>, Vec<u8>) {
    let zeros = vec![0u8; MIB];
    let mut deflater = Deflater::new(9, 15);
    let mut next = || {
        let mut piece = Vec::new();
        deflater.compress(&zeros, &mut piece).unwrap();
        piece.extend_from_slice(&TAIL); // Mid-message pieces keep the flush tail.
        piece
    };
    let (first, second, third) = (next(), next(), next());
    assert_eq!(second, third, "the steady-state piece repeats");
    (first, second)
}

#[test]
fn a_ten_gib_bomb_is_closed_with_1009_and_the_heap_stays_flat() {
    let (first, steady) = bomb_pieces();
    let claimed = first.len() + steady.len() * (FRAMES - 1);
    assert!(first.len() + steady.len() < 4 * 1024, "a few KiB per MiB");
    let server = TestServer::start_with(|c| {
        c.limits = Limits {
            max_frame: MIB as u64,
            max_message: MIB,
        };
        c.compression = Some(DeflateConfig::default());
    });
    let mut client = server.connect();
    let request = Request::upgrade("/echo")
        .set("Sec-WebSocket-Key", &fresh_key())
        .set("Sec-WebSocket-Extensions", "permessage-deflate");
    client.send(&request.to_bytes());
    assert_eq!(client.read_response().status, 101);

    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get();
    let mut writer = client.writer();
    let (first_frame, steady_frame) = (piece_frame(true, &first), piece_frame(false, &steady));
    let sender = thread::spawn(move || {
        let mut sent = first_frame.len();
        if writer.write_all(&first_frame).is_err() {
            return sent;
        }
        for _ in 1..FRAMES {
            // The server stops reading once it has failed the connection.
            if writer.write_all(&steady_frame).is_err() {
                break;
            }
            sent += steady_frame.len();
        }
        sent
    });
    let (code, reason) = client.read_close();
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG.0), "{reason}");
    let peak = dhat::HeapStats::get()
        .max_bytes
        .saturating_sub(before.curr_bytes);
    drop(client);
    let sent = sender.join().expect("writer thread");
    eprintln!(
        "bomb: {claimed} compressed bytes would inflate to {} GiB; the client got {sent} \
         bytes out before the close; heap peak +{} KiB",
        FRAMES / 1024,
        peak / 1024
    );
    // The message limit (1 MiB) plus the assembler's growth, an inflate step, zlib's state.
    assert!(peak < 4 * MIB, "heap grew by {peak} bytes");
}
