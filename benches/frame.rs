//! Framing costs (RFC 6455 §5.2): header decode and encode, whole-frame encode, and the
//! server session reading a buffer of pipelined masked frames.
//!
//! - `frame_header/decode/<len>_<masked|unmasked>` and `frame_header/encode/…`: one header
//!   with a 7-bit (32 B), 16-bit (16 KiB) or 64-bit (1 MiB) payload length, with and without
//!   a masking key; nanoseconds per header.
//! - `encode_frame/<server|client>/<bytes>`: [`encode_frame`] of a 32 B and a 16 KiB payload
//!   into a reused buffer, unmasked (server role) and masked (client role); bytes per second.
//! - `session_read/pipelined_text_32B`: [`Session::read`] over a buffer holding 1,000 masked
//!   32-byte text frames, read to the end; messages per second. `read` unmasks in place, so
//!   each iteration starts from a fresh copy of the buffer, made outside the timed part.

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsloop::protocol::frame::encode_frame;
use wsloop::protocol::{Decoded, Event, FrameHeader, Limits, OpCode, Session};

/// The masking key of the RFC's §5.7 examples.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One payload length per length form: 7-bit, 16-bit and 64-bit.
const LENGTHS: [(&str, usize); 3] = [("len7", 32), ("len16", 16 << 10), ("len64", 1 << 20)];

/// Frames in the pipelined read benchmark.
const PIPELINED: usize = 1_000;

/// The text payload of each pipelined frame: 32 bytes of ASCII.
const TEXT_32: &[u8; 32] = b"wsloop pipelined text frame 32B.";

/// A final binary frame header for `len` bytes, masked or not.
fn header(len: usize, masked: bool) -> FrameHeader {
    FrameHeader::single(OpCode::Binary, len, masked.then_some(KEY))
}

/// The mask variants, named as they appear in benchmark ids.
fn mask_variants() -> [(&'static str, bool); 2] {
    [("unmasked", false), ("masked", true)]
}

/// Header decode and encode for each length form, masked and unmasked.
fn frame_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_header");
    for (form, len) in LENGTHS {
        for (masking, masked) in mask_variants() {
            let head = header(len, masked);
            let (bytes, used) = head.encode();
            let wire = &bytes[..used];
            assert_eq!(
                FrameHeader::decode(wire),
                Ok(Decoded::Complete(head, used)),
                "the encoded header decodes back"
            );
            let id = format!("{form}_{masking}");
            group.bench_function(BenchmarkId::new("decode", &id), |b| {
                b.iter(|| FrameHeader::decode(black_box(wire)));
            });
            group.bench_function(BenchmarkId::new("encode", &id), |b| {
                b.iter(|| black_box(black_box(&head).encode()));
            });
        }
    }
    group.finish();
}

/// Whole-frame encode of a small and a large payload, for both roles.
fn frame_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_frame");
    for size in [32, 16 << 10] {
        group.throughput(Throughput::Bytes(size as u64));
        let payload = vec![b'x'; size];
        let mut out = Vec::with_capacity(size + 14);
        for (role, masked) in [("server", false), ("client", true)] {
            let head = header(size, masked);
            group.bench_function(BenchmarkId::new(role, size), |b| {
                b.iter(|| {
                    out.clear();
                    encode_frame(black_box(&head), black_box(&payload), &mut out);
                    black_box(&out);
                });
            });
        }
    }
    group.finish();
}

/// [`PIPELINED`] masked text frames of [`TEXT_32`], back to back, each with its own key.
fn pipelined_frames() -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..PIPELINED {
        let key = (i as u32).wrapping_mul(0x9e37_79b9).to_be_bytes();
        let head = FrameHeader::single(OpCode::Text, TEXT_32.len(), Some(key));
        encode_frame(&head, TEXT_32, &mut wire);
    }
    wire
}

/// Reads every message in `input` with a fresh server session; returns how many there were.
fn read_all(session: &mut Session, input: &mut [u8], out: &mut Vec<u8>) -> usize {
    let mut pos = 0;
    let mut messages = 0;
    while pos < input.len() {
        let read = session
            .read(&mut input[pos..], out)
            .expect("the frames are valid");
        pos += read.consumed;
        match read.event {
            Some(Event::Text(text)) => {
                black_box(text);
                messages += 1;
            }
            Some(other) => panic!("unexpected event {other:?}"),
            None => break,
        }
    }
    messages
}

/// Session::read throughput over pipelined small frames, in messages per second.
fn session_read(c: &mut Criterion) {
    let pristine = pipelined_frames();
    let mut check = pristine.clone();
    let count = read_all(
        &mut Session::server(Limits::default()),
        &mut check,
        &mut Vec::new(),
    );
    assert_eq!(count, PIPELINED, "every pipelined frame is read");

    let mut group = c.benchmark_group("session_read");
    group.throughput(Throughput::Elements(PIPELINED as u64));
    let mut out = Vec::new();
    group.bench_function("pipelined_text_32B", |b| {
        b.iter_batched_ref(
            || (pristine.clone(), Session::server(Limits::default())),
            |(input, session)| read_all(session, input, &mut out),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, frame_header, frame_encode, session_read);
criterion_main!(benches);
