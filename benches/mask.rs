//! Masking throughput (RFC 6455 §5.3): the fast 8-byte-chunk [`apply_mask`] against the naive
//! byte loop, with `copy_from_slice` of the same buffer as the memory-bandwidth baseline.
//!
//! Every benchmark reports bytes per second for one buffer size, so criterion prints GB/s.
//! Group `mask`, one benchmark per function and size (`mask/<function>/<bytes>`):
//!
//! - `fast`: [`apply_mask`] in place, buffer start as allocated, key phase 0;
//! - `fast_unaligned`: [`apply_mask`] on a buffer that starts one byte into the allocation,
//!   resumed at key phase 3 (a frame split across reads at an odd offset);
//! - `naive`: [`apply_mask_naive`], the byte-at-a-time definition;
//! - `copy`: `copy_from_slice` of a buffer of the same size, the bandwidth ceiling.
//!
//! Issue 5's micro target reads `mask/fast/65536` against `mask/copy/65536`: the fast path
//! must reach at least half the copy's throughput (`scripts/bench-smoke` checks it).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wsloop::protocol::mask::{apply_mask, apply_mask_naive};

/// Payload sizes: tiny, the largest control payload, then 1 KiB to 1 MiB.
const SIZES: [usize; 6] = [16, 125, 1 << 10, 16 << 10, 64 << 10, 1 << 20];

/// The masking key of the RFC's §5.7 examples.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A buffer of `len` bytes that is not all zeros.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Benchmarks the four variants for every size in [`SIZES`].
fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        // One spare byte in front for the unaligned variant.
        let mut buf = pattern(size + 1);
        let src = pattern(size);
        group.bench_function(BenchmarkId::new("fast", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf[..size]), black_box(KEY), black_box(0)));
        });
        group.bench_function(BenchmarkId::new("fast_unaligned", size), |b| {
            b.iter(|| apply_mask(black_box(&mut buf[1..]), black_box(KEY), black_box(3)));
        });
        group.bench_function(BenchmarkId::new("naive", size), |b| {
            b.iter(|| apply_mask_naive(black_box(&mut buf[..size]), black_box(KEY), black_box(0)));
        });
        group.bench_function(BenchmarkId::new("copy", size), |b| {
            b.iter(|| black_box(&mut buf[..size]).copy_from_slice(black_box(&src)));
        });
    }
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
