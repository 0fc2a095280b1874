//! Opening-handshake costs (RFC 6455 §4.2) on the example request of §1.3.
//!
//! Group `handshake`:
//! - `parse`: [`HeadParser::parse`] of the whole request head (httparse + owned head);
//! - `validate_upgrade`: the §4.2.1 checks and subprotocol choice on the parsed head;
//! - `accept_key`: SHA-1 + base64 of the key alone;
//! - `write_accept`: the `101 Switching Protocols` response (includes `accept_key`);
//! - `request_to_101`: all of the above, request bytes in, response bytes out.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wsloop::protocol::Decoded;
use wsloop::protocol::handshake::{
    HeadLimits, HeadParser, RequestHead, accept_key, validate_upgrade, write_accept,
};

/// The client's opening handshake from §1.3 (the server's path is `/chat`).
const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\
\r\n";

/// The `Sec-WebSocket-Accept` §1.3 gives for that key.
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Parses [`REQUEST`] with a fresh parser and default limits.
fn parse(request: &[u8]) -> RequestHead {
    match HeadParser::new(HeadLimits::default()).parse(request) {
        Ok(Decoded::Complete(head, _)) => head,
        other => panic!("the §1.3 request parses, got {other:?}"),
    }
}

/// Request bytes in, `101` response appended to `out`.
fn request_to_101(request: &[u8], protocols: &[String], out: &mut Vec<u8>) {
    let head = parse(request);
    let upgrade = validate_upgrade(&head, protocols).expect("the §1.3 request is valid");
    write_accept(&upgrade, &[], out);
}

/// Each handshake step alone, then the whole path.
fn handshake(c: &mut Criterion) {
    let protocols = vec!["chat".to_owned()];
    let head = parse(REQUEST);
    let upgrade = validate_upgrade(&head, &protocols).expect("the §1.3 request is valid");
    assert_eq!(accept_key(&upgrade.key), ACCEPT);
    let mut out = Vec::with_capacity(256);

    let mut group = c.benchmark_group("handshake");
    group.bench_function("parse", |b| b.iter(|| parse(black_box(REQUEST))));
    group.bench_function("validate_upgrade", |b| {
        b.iter(|| validate_upgrade(black_box(&head), black_box(&protocols)));
    });
    group.bench_function("accept_key", |b| {
        b.iter(|| accept_key(black_box(&upgrade.key)));
    });
    group.bench_function("write_accept", |b| {
        b.iter(|| {
            out.clear();
            write_accept(black_box(&upgrade), &[], &mut out);
            black_box(&out);
        });
    });
    group.bench_function("request_to_101", |b| {
        b.iter(|| {
            out.clear();
            request_to_101(black_box(REQUEST), black_box(&protocols), &mut out);
            black_box(&out);
        });
    });
    group.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
