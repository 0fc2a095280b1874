//! permessage-deflate on chat traffic: what a message costs to compress and what it saves.
//!
//! The traffic is the hub's own `chat` deliveries (`hub::messages::Delivery`, serialized as
//! the server sends them): a room name, a sender, a timestamp, a history offset and a payload
//! of 1 to 40 words from a small vocabulary, about 190 to 450 bytes per message. Before measuring, the bench prints the
//! bytes saved over 1,000 such messages for each mode:
//!
//! - `no_context`: every message compressed alone (`server_no_context_takeover`, the
//!   server's default; what a broadcast costs once for all its recipients);
//! - `context`: one compressor for the whole stream (context takeover; what one connection
//!   costs when it keeps ~370 KiB of compressor state).
//!
//! Then criterion measures, per message: `deflate/compress/<mode>/level<N>` and
//! `deflate/inflate/<mode>`; throughput is in messages.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::value::RawValue;
use wsloop::hub::messages::Delivery;
use wsloop::protocol::ProtocolError;
use wsloop::protocol::deflate::{Deflater, Inflater};

/// Messages in the traffic sample.
const MESSAGES: usize = 1_000;

/// Words the chat lines are made of; each line picks 1 to 40 of them, so lines rarely repeat
/// while the vocabulary does, as in a real room.
const WORDS: [&str; 48] = [
    "the",
    "a",
    "to",
    "and",
    "is",
    "it",
    "for",
    "on",
    "in",
    "we",
    "you",
    "I",
    "this",
    "that",
    "build",
    "deploy",
    "server",
    "fix",
    "review",
    "merge",
    "test",
    "green",
    "red",
    "again",
    "today",
    "tomorrow",
    "meeting",
    "standup",
    "link",
    "thanks",
    "ok",
    "lol",
    "sure",
    "why",
    "websocket",
    "latency",
    "p99",
    "connections",
    "staging",
    "prod",
    "rollback",
    "patch",
    "anyone",
    "know",
    "broken",
    "works",
    "now",
    "later",
];

/// A deterministic pseudo-random number (SplitMix64), so every run sees the same traffic.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn chat_line(i: usize) -> String {
    let seed = mix(i as u64);
    let words = 1 + (seed % 40) as usize;
    (0..words)
        .map(|w| WORDS[(mix(seed + w as u64) % WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The hub's encoding of the `i`-th chat message of the sample.
fn chat_message(i: usize) -> Vec<u8> {
    let payload =
        serde_json::json!({"text": chat_line(i), "client_msg_id": format!("m-{}", 100_000 + i)});
    let payload = RawValue::from_string(payload.to_string()).expect("valid JSON");
    let timestamp = format!(
        "2026-11-26T08:{:02}:{:02}.{:03}Z",
        i / 60 % 60,
        i % 60,
        i % 1000
    );
    let sender = format!("user-{}", 1_000 + i % 37);
    let delivery = Delivery {
        kind: "chat",
        room: Some("team-backend"),
        recipient_id: None,
        sender_id: &sender,
        timestamp: &timestamp,
        offset: Some(40_000 + i as u64),
        epoch: Some("e7f3a9"),
        payload: &payload,
    };
    serde_json::to_vec(&delivery).expect("serializes")
}

fn sample() -> Vec<Vec<u8>> {
    (0..MESSAGES).map(chat_message).collect()
}

/// Compresses every message; `context` keeps the window between messages.
fn compress_all(messages: &[Vec<u8>], level: u8, context: bool) -> Vec<Vec<u8>> {
    let mut deflater = Deflater::new(level, 15);
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::new();
            deflater.compress(m, &mut out).unwrap();
            if !context {
                deflater.reset();
            }
            out
        })
        .collect()
}

fn report_savings(messages: &[Vec<u8>]) {
    let plain: usize = messages.iter().map(Vec::len).sum();
    println!(
        "chat sample: {MESSAGES} messages, {plain} bytes, {} bytes on average",
        plain / MESSAGES
    );
    for (mode, context) in [("no_context", false), ("context", true)] {
        for level in [1, 6, 9] {
            let compressed: usize = compress_all(messages, level, context)
                .iter()
                .map(Vec::len)
                .sum();
            println!(
                "  {mode:<10} level {level}: {compressed:>7} bytes = {:.1} % of the original, \
                 {:.0} bytes saved per message",
                100.0 * compressed as f64 / plain as f64,
                (plain - compressed) as f64 / MESSAGES as f64
            );
        }
    }
}

fn bench_compress(c: &mut Criterion) {
    let messages = sample();
    report_savings(&messages);
    let mut group = c.benchmark_group("deflate/compress");
    group.throughput(Throughput::Elements(1));
    for (mode, context) in [("no_context", false), ("context", true)] {
        for level in [1u8, 6] {
            let mut deflater = Deflater::new(level, 15);
            let mut out = Vec::with_capacity(1024);
            let mut i = 0;
            group.bench_function(BenchmarkId::new(mode, format!("level{level}")), |b| {
                b.iter(|| {
                    out.clear();
                    deflater
                        .compress(black_box(&messages[i % MESSAGES]), &mut out)
                        .unwrap();
                    if !context {
                        deflater.reset();
                    }
                    i += 1;
                    out.len()
                });
            });
        }
    }
    group.finish();
}

fn bench_inflate(c: &mut Criterion) {
    let messages = sample();
    let mut group = c.benchmark_group("deflate/inflate");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    for (mode, context) in [("no_context", false), ("context", true)] {
        let compressed = compress_all(&messages, 6, context);
        group.bench_function(BenchmarkId::new(mode, "1000_messages"), |b| {
            b.iter(|| {
                let mut inflater = Inflater::new();
                let mut total = 0;
                let mut sink = |bytes: &[u8]| -> Result<(), ProtocolError> {
                    total += bytes.len();
                    Ok(())
                };
                for m in &compressed {
                    let _ = inflater.inflate(black_box(m), &mut sink);
                    let _ = inflater.finish(&mut sink);
                    if !context {
                        inflater.reset();
                    }
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_compress, bench_inflate);
criterion_main!(benches);
