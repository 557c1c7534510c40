//! Counters: counted locally by the thread that owns them, published once per batch.
//!
//! Each thread owns one `CachePadded` block of atomics and is its only writer, so it publishes
//! with plain `store(Relaxed)` of its local running totals: no read-modify-write, no contention,
//! no false sharing. Readers (status, metrics, summary) sum the blocks with `load(Relaxed)`;
//! a snapshot taken while running can be a batch behind, and is exact once threads are joined
//! (thread join is the synchronisation point).
//!
//! The accounting invariant, always: generated = delivered + dead_lettered + shed + failed +
//! in_flight, where in_flight is what has been generated but has no outcome yet.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Published by one worker.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Events the limiter granted this worker (`rejected` included).
    pub generated: AtomicU64,
    /// Events dropped because the ring (or the byte budget) was full under `shed`.
    pub shed: AtomicU64,
    /// Events rejected because the circuit breaker was open (a kind of shed, counted apart).
    pub rejected: AtomicU64,
    /// Events shed because memory was above the budget's high-water mark (a part of `shed`).
    pub shed_memory: AtomicU64,
    /// Events that could not be handed on at a hard stop.
    pub failed: AtomicU64,
    /// Bytes of formatted events (shed ones included).
    pub bytes: AtomicU64,
    /// Batches pushed into the ring.
    pub batches_pushed: AtomicU64,
    /// Events pushed into the ring (generated minus shed, rejected and failed-at-stop).
    pub events_pushed: AtomicU64,
    /// Nanoseconds spent waiting on a full ring (backpressure).
    pub blocked_ns: AtomicU64,
}

/// Published by the flush thread.
#[derive(Debug, Default)]
pub struct FlushCounters {
    /// Events the sink delivered (acknowledged, committed or written).
    pub delivered: AtomicU64,
    /// Bytes of the delivered events.
    pub delivered_bytes: AtomicU64,
    /// Events the sink failed for good.
    pub failed: AtomicU64,
    /// Events written to the DLQ file instead of the sink.
    pub dead_lettered: AtomicU64,
    /// Send attempts retried after a retriable error.
    pub retried: AtomicU64,
    /// Events dropped on the flush side on purpose (the reader of stdout went away).
    pub shed: AtomicU64,
    /// Handed to the sink, outcome not yet known (Kafka: awaiting a delivery report).
    pub sink_in_flight: AtomicU64,
    /// Batches taken out of rings.
    pub batches_popped: AtomicU64,
    /// Events taken out of rings and handed to the sink.
    pub events_handed: AtomicU64,
    /// Events per batch the Kafka sink's adaptive batcher aims for now.
    pub batch_size: AtomicU64,
    /// Messages in the Kafka producer's queue awaiting delivery.
    pub producer_queue: AtomicU64,
    /// Records the Kafka sink lets wait for acks now (`kafka/inflight.rs`).
    pub inflight_limit: AtomicU64,
    /// Kafka producers replaced because the broker forgot the producer id (`sink/kafka/`).
    pub producer_restarts: AtomicU64,
}

/// A plain-number view of all counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Events generated.
    pub generated: u64,
    /// Events the sink delivered (acknowledged, committed or written).
    pub delivered: u64,
    /// Events written to the DLQ file instead of the sink.
    pub dead_lettered: u64,
    /// Events dropped on purpose, by policy (`rejected` included).
    pub shed: u64,
    /// Events that failed for good, in the sink or at a hard stop.
    pub failed: u64,
    /// Events generated without an outcome yet: in rings or held by the sink.
    pub in_flight: u64,
    /// Bytes of formatted events.
    pub bytes: u64,
    /// Bytes of the delivered events.
    pub delivered_bytes: u64,
    /// Send attempts retried after a retriable error.
    pub retried: u64,
    /// Events rejected because the circuit breaker was open (a part of `shed`).
    pub rejected: u64,
    /// Events shed because memory was above the budget's high-water mark (a part of `shed`).
    pub shed_memory: u64,
}

impl Totals {
    /// generated == delivered + dead_lettered + shed + failed + in_flight
    /// (`rejected` is a part of `shed`).
    pub fn balanced(&self) -> bool {
        self.generated
            == self.delivered + self.dead_lettered + self.shed + self.failed + self.in_flight
    }
}

impl std::ops::Add for Totals {
    type Output = Totals;
    /// Totals of several runs together (e.g. instances sharing a global rate).
    fn add(self, o: Totals) -> Totals {
        Totals {
            generated: self.generated + o.generated,
            delivered: self.delivered + o.delivered,
            dead_lettered: self.dead_lettered + o.dead_lettered,
            shed: self.shed + o.shed,
            failed: self.failed + o.failed,
            in_flight: self.in_flight + o.in_flight,
            bytes: self.bytes + o.bytes,
            delivered_bytes: self.delivered_bytes + o.delivered_bytes,
            retried: self.retried + o.retried,
            rejected: self.rejected + o.rejected,
            shed_memory: self.shed_memory + o.shed_memory,
        }
    }
}

/// Running totals a thread keeps in plain integers and publishes per batch.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalWorker {
    /// Events the limiter granted this worker.
    pub generated: u64,
    /// Events dropped because the ring was full under `shed`.
    pub shed: u64,
    /// Events rejected because the circuit breaker was open.
    pub rejected: u64,
    /// Events shed because memory was above the budget's high-water mark (part of `shed`).
    pub shed_memory: u64,
    /// Events that could not be handed on at a hard stop.
    pub failed: u64,
    /// Bytes of formatted events.
    pub bytes: u64,
    /// Batches pushed into the ring.
    pub batches: u64,
    /// Events pushed into the ring.
    pub events_pushed: u64,
    /// Nanoseconds spent waiting on a full ring.
    pub blocked_ns: u64,
}

impl LocalWorker {
    /// Stores the running totals into the worker's shared counters.
    #[inline]
    pub fn publish(&self, to: &WorkerCounters) {
        to.generated.store(self.generated, Relaxed);
        to.shed.store(self.shed, Relaxed);
        to.rejected.store(self.rejected, Relaxed);
        to.shed_memory.store(self.shed_memory, Relaxed);
        to.failed.store(self.failed, Relaxed);
        to.bytes.store(self.bytes, Relaxed);
        to.batches_pushed.store(self.batches, Relaxed);
        to.events_pushed.store(self.events_pushed, Relaxed);
        to.blocked_ns.store(self.blocked_ns, Relaxed);
    }
}

/// Running totals the flush thread keeps in plain integers and publishes per pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalFlush {
    /// Events the sink delivered (acknowledged, committed or written).
    pub delivered: u64,
    /// Bytes of the delivered events.
    pub delivered_bytes: u64,
    /// Events the sink failed for good.
    pub failed: u64,
    /// Events written to the DLQ file instead of the sink.
    pub dead_lettered: u64,
    /// Send attempts retried after a retriable error.
    pub retried: u64,
    /// Events dropped on purpose (the reader of stdout went away).
    pub shed: u64,
    /// Events the sink holds without an outcome yet.
    pub sink_in_flight: u64,
    /// Batches taken out of rings.
    pub batches: u64,
    /// Events taken out of rings and handed to the sink.
    pub events_handed: u64,
}

impl LocalFlush {
    /// Stores the running totals into the flush thread's shared counters.
    #[inline]
    pub fn publish(&self, to: &FlushCounters) {
        to.delivered.store(self.delivered, Relaxed);
        to.delivered_bytes.store(self.delivered_bytes, Relaxed);
        to.failed.store(self.failed, Relaxed);
        to.dead_lettered.store(self.dead_lettered, Relaxed);
        to.retried.store(self.retried, Relaxed);
        to.shed.store(self.shed, Relaxed);
        to.sink_in_flight.store(self.sink_in_flight, Relaxed);
        to.batches_popped.store(self.batches, Relaxed);
        to.events_handed.store(self.events_handed, Relaxed);
    }
}

/// All counters of a run.
#[derive(Debug)]
pub struct Counters {
    /// One block per worker, by worker index.
    pub workers: Box<[CachePadded<WorkerCounters>]>,
    /// The flush thread's block.
    pub flush: CachePadded<FlushCounters>,
    /// Batches popped per worker ring, for ring depth (pushed - popped).
    pub popped_per_ring: Box<[CachePadded<AtomicU64>]>,
}

impl Counters {
    /// Zeroed counters for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers).map(|_| CachePadded::new(WorkerCounters::default())).collect(),
            flush: CachePadded::new(FlushCounters::default()),
            popped_per_ring: (0..workers).map(|_| CachePadded::new(AtomicU64::new(0))).collect(),
        }
    }

    /// Sums the blocks into one snapshot (exact once the threads are joined).
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let mut worker_failed = 0;
        let mut pushed = 0;
        for w in &self.workers {
            pushed += w.events_pushed.load(Relaxed);
            t.generated += w.generated.load(Relaxed);
            t.shed += w.shed.load(Relaxed) + w.rejected.load(Relaxed);
            t.rejected += w.rejected.load(Relaxed);
            t.shed_memory += w.shed_memory.load(Relaxed);
            worker_failed += w.failed.load(Relaxed);
            t.bytes += w.bytes.load(Relaxed);
        }
        let f = &self.flush;
        t.delivered = f.delivered.load(Relaxed);
        t.delivered_bytes = f.delivered_bytes.load(Relaxed);
        t.failed = f.failed.load(Relaxed) + worker_failed;
        t.dead_lettered = f.dead_lettered.load(Relaxed);
        t.retried = f.retried.load(Relaxed);
        t.shed += f.shed.load(Relaxed);
        // In flight, counted on its own (not as a remainder, so `balanced` is a real check):
        // events in rings plus events the sink holds without an outcome yet.
        t.in_flight =
            pushed.saturating_sub(f.events_handed.load(Relaxed)) + f.sink_in_flight.load(Relaxed);
        t
    }

    /// Batches waiting in each worker's ring.
    pub fn ring_depths(&self) -> Vec<u64> {
        self.workers
            .iter()
            .zip(self.popped_per_ring.iter())
            .map(|(w, p)| w.batches_pushed.load(Relaxed).saturating_sub(p.load(Relaxed)))
            .collect()
    }
}
