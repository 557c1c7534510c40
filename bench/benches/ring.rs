//! SPSC ring: push and pop of whole batches between two threads, and the single-thread
//! round trip. Measures the cost the pipeline pays per batch (not per event).
//!
//! Run: `cargo bench -p spate-bench --bench ring`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spate_engine::batch::Batch;
use spate_engine::ring::ring;

fn ring_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(1));

    // Push then pop on one thread: the uncontended cost of a batch crossing the ring.
    g.bench_function("push_pop_same_thread", |b| {
        let (p, cons) = ring::<Batch>(16);
        let mut batch = Some(Batch::with_capacity(0, 1024, 1024 * 256));
        b.iter(|| {
            p.push(batch.take().unwrap()).unwrap();
            batch = cons.pop();
        });
    });

    // Producer thread pushes `iters` batches (recycled through a return ring, as workers do);
    // the measured thread pops and returns them. Time per batch transferred.
    g.bench_function("transfer_two_threads", |b| {
        b.iter_custom(|iters| {
            let (to_c, from_p) = ring::<Batch>(16);
            let (back_p, back_c) = ring::<Batch>(32);
            for _ in 0..18 {
                back_p.push(Batch::with_capacity(0, 1024, 1024)).unwrap();
            }
            let producer = std::thread::spawn(move || {
                let mut sent = 0;
                while sent < iters {
                    if let Some(mut b) = back_c.pop() {
                        b.clear();
                        let mut b = Some(b);
                        while let Err(x) = to_c.push(b.take().unwrap()) {
                            b = Some(x);
                            std::hint::spin_loop();
                        }
                        sent += 1;
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
            let start = Instant::now();
            let deadline = start + Duration::from_secs(60);
            let mut got = 0;
            while got < iters && Instant::now() < deadline {
                if let Some(b) = from_p.pop() {
                    got += 1;
                    let _ = back_p.push(b);
                } else {
                    std::hint::spin_loop();
                }
            }
            let t = start.elapsed();
            producer.join().unwrap();
            t
        });
    });
    g.finish();
}

criterion_group!(benches, ring_bench);
criterion_main!(benches);
