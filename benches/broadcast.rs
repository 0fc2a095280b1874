//! The broadcast path in process: one room message to N members.
//!
//! Measures the hub's share of a fan-out (decode the request once, serialize and frame the
//! delivery once, push one shared reference per member into the outbox) as time per
//! delivery, for 100, 1,000 and 10,000 members. It also counts heap allocations per
//! broadcast with `dhat` and fails if they grow with the member count: a broadcast must cost
//! a constant number of allocations, whatever the room size.

use std::time::{Duration, Instant, UNIX_EPOCH};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use wsloop::hub::{Hub, HubConfig, Now, Outbox};
use wsloop::id::ConnId;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Room sizes measured.
const SIZES: [u32; 3] = [100, 1_000, 10_000];

const MESSAGE: &str =
    r#"{"type":"chat","room":"bench","payload":{"text":"hello, room","n":12345}}"#;

fn now() -> Now {
    Now {
        wall: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        mono: Instant::now(),
    }
}

/// A hub with `members` connections in room `bench`; connection 0 sends.
fn room_of(members: u32) -> (Hub, Outbox) {
    let mut hub = Hub::new(HubConfig {
        rate_limit_enabled: false,
        ..HubConfig::default()
    });
    let mut out = Outbox::default();
    for i in 0..members {
        let id = ConnId::new(i, 1);
        hub.connect(id, &format!("user{i}"), now(), &mut out);
        hub.on_text(id, r#"{"type":"join","room":"bench"}"#, now(), &mut out);
        out.sends.clear();
    }
    (hub, out)
}

/// One broadcast; returns the deliveries queued.
fn broadcast(hub: &mut Hub, out: &mut Outbox) -> usize {
    hub.on_text(ConnId::new(0, 1), MESSAGE, now(), out);
    let delivered = out.sends.len();
    out.sends.clear();
    delivered
}

fn bench_broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    for members in SIZES {
        let (mut hub, mut out) = room_of(members);
        group.throughput(Throughput::Elements(u64::from(members)));
        group.bench_function(BenchmarkId::new("room", members), |b| {
            b.iter(|| broadcast(&mut hub, &mut out));
        });
    }
    group.finish();
}

/// Allocations of one broadcast into a room of `members`, after a warm-up that grows the
/// outbox to its working size.
fn allocations_per_broadcast(members: u32) -> u64 {
    let (mut hub, mut out) = room_of(members);
    assert_eq!(broadcast(&mut hub, &mut out), members as usize);
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().total_blocks;
    broadcast(&mut hub, &mut out);
    dhat::HeapStats::get().total_blocks - before
}

/// Prints allocations per broadcast per room size; panics if they grow with the room.
fn check_allocations() {
    let counts: Vec<(u32, u64)> = SIZES
        .iter()
        .map(|&n| (n, allocations_per_broadcast(n)))
        .collect();
    for (members, allocations) in &counts {
        println!(
            "broadcast/allocations: {members:>6} members: {allocations} allocations per broadcast"
        );
    }
    let smallest = counts[0].1;
    for (members, allocations) in &counts {
        assert_eq!(
            *allocations, smallest,
            "allocations grew with the room size at {members} members"
        );
    }
}

criterion_group!(benches, bench_broadcast);

fn main() {
    check_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
