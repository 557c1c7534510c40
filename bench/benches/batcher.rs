//! The adaptive batcher's decision (AIMD, once per 100 ms on the flush thread) and the arena
//! write a worker does per event (generate into a reused batch: bytes, end offset, metadata).
//!
//! Run: `cargo bench -p spate-bench --bench batcher`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spate_engine::batch::Batch;
use spate_engine::sink::kafka::batcher::Aimd;
use spate_gen::{EventConfig, EventMeta, EventSpec, Format, Generator, RunId};

fn batcher(c: &mut Criterion) {
    let mut g = c.benchmark_group("batcher");
    g.throughput(Throughput::Elements(1));
    g.bench_function("aimd_decide", |b| {
        let mut a = Aimd::new(1024, Duration::from_millis(50));
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            a.observe(u128::from(i % 97) * 1_000_000 * 100, 100);
            std::hint::black_box(a.decide(i % 7))
        });
    });
    g.finish();

    let mut g = c.benchmark_group("arena");
    const N: usize = 1024;
    g.throughput(Throughput::Elements(N as u64));
    let cfg = EventConfig {
        format: Format::Json,
        sources: vec![("web".into(), 1)],
        seed: 1,
        trace: spate_gen::TraceContext::Traceparent,
        ..Default::default()
    };
    let spec = Arc::new(EventSpec::build(&cfg).unwrap());
    g.bench_function("write_batch_json_web_1024", |b| {
        let mut gen = Generator::new(spec.clone(), 0, RunId(7));
        let mut batch = Batch::with_capacity(0, N, N * 600);
        let mut meta = EventMeta::default();
        let mut seq = 0u64;
        let ts = 1_764_000_000_000_000_000u64;
        b.iter(|| {
            batch.clear();
            for _ in 0..N {
                gen.write_event(seq, ts + seq, &mut batch.buf, &mut meta);
                batch.ends.push(batch.buf.len() as u32);
                batch.metas.push(meta);
                seq += 1;
            }
            std::hint::black_box(batch.len())
        });
    });
    g.finish();
}

criterion_group!(benches, batcher);
criterion_main!(benches);
