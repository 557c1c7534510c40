//! Limiter costs, per call:
//!
//! - `limiter/lease_take`: one worker taking up to 64 tokens from the Redis limiter's shared
//!   lease pool (`LeasePool::take`, a `Relaxed` CAS loop on an `AtomicU64`), uncontended.
//! - `limiter/leased_acquire`: the same through the `RateLimiter` trait as a worker calls it
//!   (`LeasedLimiter::acquire`: mode load + take).
//! - `limiter/token_bucket_acquire`: the local `TokenBucket::acquire` (exact integer GCRA) with
//!   tokens always due.
//! - `redis/lua_grant`: one `EVALSHA` of the lease grant script (`GRANT_SCRIPT`) against a local
//!   `redis-server` the bench starts itself on a free loopback port, over one sync connection;
//!   criterion reports calls/s. The window is 1 ms so the lease log holds a few dozen entries,
//!   about what 20 instances at 20 leases/s leave in a 1 s window. If `redis-server` cannot be
//!   started, this part is skipped with a note.
//!
//! Run: `cargo bench -p spate-bench --bench limiter`
//! (quick: `cargo bench -p spate-bench --bench limiter -- --warm-up-time 1 --measurement-time 2`).

use std::hint::black_box;
use std::num::NonZeroU64;
use std::sync::atomic::AtomicU64;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spate_limit::local::TokenBucket;
use spate_limit::redis::grant::{call_grant, GRANT_SCRIPT};
use spate_limit::redis::pool::{LeasePool, LeasedLimiter};
use spate_limit::RateLimiter;
use spate_test_support::RedisServer;

fn local(c: &mut Criterion) {
    let mut g = c.benchmark_group("limiter");
    g.throughput(Throughput::Elements(1));

    let pool = LeasePool::standalone(u64::MAX / 2);
    g.bench_function("lease_take", |b| b.iter(|| black_box(pool.take(black_box(64)))));

    let mut leased = LeasedLimiter::new(LeasePool::standalone(u64::MAX / 2), 0, 1);
    g.bench_function("leased_acquire", |b| b.iter(|| black_box(leased.acquire(black_box(64), 0))));

    // 10M/s and 10 µs per call: 100 tokens due per call, so every call grants.
    let mut bucket = TokenBucket::for_worker(NonZeroU64::new(10_000_000).unwrap(), 0, 0, 1, 0);
    let mut now = 0u64;
    g.bench_function("token_bucket_acquire", |b| {
        b.iter(|| {
            now += 10_000;
            black_box(bucket.acquire(black_box(64), now))
        });
    });
    g.finish();
}

fn lua(c: &mut Criterion) {
    let server = match RedisServer::try_start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("note: skipping redis/lua_grant: {e}");
            return;
        }
    };
    let mut con = redis::Client::open(server.url())
        .and_then(|cl| cl.get_connection())
        .expect("connect to the bench's redis-server");
    let script = redis::Script::new(GRANT_SCRIPT);
    let calls = AtomicU64::new(0);
    let mut seq = 0u64;
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements(1));
    g.bench_function("lua_grant", |b| {
        b.iter(|| {
            seq += 1;
            let grant = call_grant(
                &mut con,
                &script,
                "spate:limit:{bench}",
                500,
                1,
                1_000_000_000,
                1_000,
                "bench",
                seq,
                &calls,
            )
            .expect("grant call");
            black_box(grant)
        });
    });
    g.finish();
}

criterion_group!(benches, local, lua);
criterion_main!(benches);
