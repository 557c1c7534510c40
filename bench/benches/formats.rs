//! Event formatting throughput: one worker's [`Generator::write_event`] per format, on the
//! `web` source (json lines average ~450 bytes: the id and W3C trace context alone take
//! ~210). Each iteration writes a batch of 1024 events into a reused `BytesMut` (cleared
//! per batch, capacity kept, as the worker's arena does), so the figure is the steady-state
//! per-event cost: variant pick, literal copies, timestamp, id, trace context, per-event
//! fields. Criterion reports elements/s; ns/event = 1e9 / that.
//!
//! Run: `cargo bench -p spate-bench --bench formats`
//! (quick: `cargo bench -p spate-bench --bench formats -- --warm-up-time 1 --measurement-time 2`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spate_gen::{EventConfig, EventMeta, EventSpec, Format, Generator, RunId};

const BATCH: u64 = 1024;

/// Benchmarks `cfg`'s generator as `name`; prints the mean event size (terminator excluded).
fn bench(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    cfg: &EventConfig,
) {
    let spec = Arc::new(EventSpec::build(cfg).expect("valid config"));
    let mut gen = Generator::new(spec, 0, RunId(0x0123_4567_89ab_cdef));
    let mut buf = BytesMut::with_capacity(BATCH as usize * 1024);
    let mut meta = EventMeta::default();
    let mut seq = 0u64;
    // Wall-clock-like timestamps, 1 µs apart: the per-second prefix is re-rendered as
    // often as it would be at 1M events/s.
    let mut ts = 1_795_611_540_000_000_000u64;
    for _ in 0..BATCH {
        gen.write_event(seq, ts, &mut buf, &mut meta);
    }
    eprintln!("{name}: {:.1} bytes per event", buf.len() as f64 / BATCH as f64 - 1.0);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                buf.clear();
                let start = Instant::now();
                for _ in 0..BATCH {
                    gen.write_event(seq, ts, &mut buf, &mut meta);
                    seq += 1;
                    ts += 1_000;
                }
                spent += start.elapsed();
                black_box((&buf, &meta));
            }
            spent
        });
    });
}

fn formats(c: &mut Criterion) {
    let mut group = c.benchmark_group("formats");
    group.throughput(Throughput::Elements(BATCH));
    for format in Format::ALL {
        let cfg =
            EventConfig { format, sources: vec![("web".into(), 1)], seed: 1, ..Default::default() };
        bench(&mut group, &format.to_string(), &cfg);
    }
    group.finish();
}

/// Records generated from a user's schema (`schemas/examples/`), as Avro and as JSON.
fn schemas(c: &mut Criterion) {
    let mut group = c.benchmark_group("schema");
    group.throughput(Throughput::Elements(BATCH));
    for name in ["pageviews", "orders"] {
        let text = std::fs::read_to_string(format!(
            "{}/../schemas/examples/{name}.avsc",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("example schema");
        for format in [Format::Avro, Format::Json] {
            let cfg =
                EventConfig { format, schema: Some(text.clone()), seed: 1, ..Default::default() };
            bench(&mut group, &format!("{name}/{format}"), &cfg);
        }
    }
    group.finish();
}

criterion_group!(benches, formats, schemas);
criterion_main!(benches);
