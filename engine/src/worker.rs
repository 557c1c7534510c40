//! A worker: one pinned OS thread that generates events into batches and pushes them through
//! its SPSC ring to the flush thread.
//!
//! Per event it only runs the generator (no lock, no allocation, no syscall); per batch it
//! reads the clock, asks its limiter, checks the stop flag and the breaker, and publishes its
//! counters with plain stores. Its state is plain fields owned by this thread, allocated after
//! the thread is pinned (so the memory is local to its core).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::config::Backpressure;
use crate::ring::{Consumer, Producer};
use crate::run::RunShared;
use crate::stats::LocalWorker;
use spate_core::breaker::State as BreakerState;
use spate_gen::{EventMeta, EventSpec, Generator};
use spate_limit::{Acquire, Rate, RateLimiter};

/// Everything a worker thread is started with.
pub struct WorkerSetup {
    /// The worker's index, from 0.
    pub index: usize,
    /// The core to pin the thread to; None: not pinned.
    pub core: Option<core_affinity::CoreId>,
    /// The compiled events to generate.
    pub spec: Arc<EventSpec>,
    /// The run's shared state.
    pub shared: Arc<RunShared>,
    /// The producer end of this worker's ring to the flush thread.
    pub to_flush: Producer<Batch>,
    /// The consumer end of the return ring: emptied batches back from the flush thread.
    pub returns: Consumer<Batch>,
    /// Builds the limiter on the worker thread, after pinning.
    pub limiter: Box<dyn FnOnce(u64) -> Box<dyn RateLimiter> + Send>,
    /// This worker's share of `--count`.
    pub count: Option<u64>,
    /// When generation ends by itself, in clock ns; None: no deadline.
    pub deadline_ns: Option<u64>,
    /// Most events per batch.
    pub batch_size: usize,
    /// Most batches this worker allocates.
    pub pool: usize,
    /// What to do when the ring (or the in-flight byte budget) is full.
    pub backpressure: Backpressure,
    /// Expected bytes per event, to size new batches.
    pub bytes_hint: usize,
}

/// Longest single sleep, so stop requests and rate changes are seen promptly.
const MAX_NAP_NS: u64 = 20_000_000;

/// The worker thread's body: pins the thread, then generates and pushes batches until the run
/// stops, its count is reached or the deadline passes.
pub fn run(setup: WorkerSetup) {
    if let Some(core) = setup.core {
        // Pin first, then allocate: the arena and generator land on this core's memory.
        if !core_affinity::set_for_current(core) {
            // Not fatal (the run goes on unpinned), but reported in the summary and status.
            setup.shared.pin_failures.fetch_add(1, Relaxed);
            spate_core::rate_log::warn(
                "pin",
                &format!("cannot pin worker {} to core {}: running unpinned", setup.index, core.id),
            );
        }
    }
    let WorkerSetup {
        index,
        spec,
        shared,
        to_flush,
        returns,
        limiter,
        count,
        deadline_ns,
        batch_size,
        pool,
        backpressure,
        bytes_hint,
        ..
    } = setup;
    let clock = shared.clock.clone();
    let mut limiter = limiter(clock.now_ns());
    let mut gen = Generator::new(spec, index as u16, shared.run_id);
    let mut w = Worker {
        index,
        shared: &shared,
        to_flush,
        returns,
        allocated: 0,
        pool,
        batch_size,
        bytes_hint,
        backpressure,
        local: LocalWorker::default(),
    };
    let mut remaining = count.unwrap_or(u64::MAX);
    let mut seq: u64 = 0;
    // No epoch seen yet: the first loop applies the current shared rate, so a rate change
    // made between start and this thread's first batch is not lost.
    let mut epoch = u64::MAX;
    let mut interval_ns = interval(shared.current_rate(), shared.workers);
    let mut cur: Option<Batch> = None;
    let mut meta = EventMeta::default();
    let mut sampler = match &shared.tracer {
        Some(t) => t.sampler(index as u64 * 7),
        None => crate::spans::Sampler::new(0, 0),
    };

    loop {
        let now = clock.now_ns();
        if shared.lifecycle.is_stopping() || remaining == 0 || deadline_ns.is_some_and(|d| now >= d)
        {
            break;
        }
        // Acquire pairs with `Run::set_rate`'s Release: the rate read below is the new one.
        let e = shared.rate_epoch.load(std::sync::atomic::Ordering::Acquire);
        if e != epoch {
            epoch = e;
            let rate = shared.current_rate();
            limiter.set_rate(rate, now);
            interval_ns = interval(rate, shared.workers);
        }
        if let Some(b) = shared.breaker.as_ref().filter(|_| backpressure != Backpressure::Spill) {
            if b.state() == BreakerState::Open {
                // Fail fast while the sink is known to be down: under `block` generation
                // pauses (nothing is lost); under `shed` what the schedule grants is counted
                // as rejected without being formatted.
                if let Some(batch) = cur.take() {
                    if !batch.is_empty() {
                        w.push(batch);
                    } else {
                        cur = Some(batch);
                    }
                }
                match backpressure {
                    Backpressure::Block | Backpressure::Spill => clock.sleep_until(now + 1_000_000),
                    Backpressure::Shed => {
                        let want = batch_size.min(remaining as usize) as u32;
                        match limiter.acquire(want, now) {
                            Acquire::Granted(n) => {
                                w.shed_unformatted(n, Shed::Breaker);
                                remaining -= u64::from(n);
                                seq += u64::from(n);
                            }
                            Acquire::Wait { until_ns } => {
                                clock.sleep_until(until_ns.min(now + MAX_NAP_NS));
                            }
                        }
                    }
                }
                continue;
            }
        }
        if shared.memory.pressed() {
            // Memory above the budget's high-water mark (`memory.rs`): hand on what is filled,
            // free the batches that came back (the pool refills when memory allows), then wait
            // under `block` (nothing is lost) or shed what the schedule grants.
            if let Some(batch) = cur.take() {
                if batch.is_empty() {
                    w.allocated -= 1;
                } else {
                    w.push(batch);
                }
            }
            w.free_returned();
            match backpressure {
                Backpressure::Block => {
                    clock.sleep_until(now + 1_000_000);
                    w.local.blocked_ns += clock.now_ns().saturating_sub(now);
                    w.local.publish(&shared.counters.workers[index]);
                }
                Backpressure::Shed | Backpressure::Spill => {
                    let want = batch_size.min(remaining as usize) as u32;
                    match limiter.acquire(want, now) {
                        Acquire::Granted(n) => {
                            w.shed_unformatted(n, Shed::Memory);
                            remaining -= u64::from(n);
                            seq += u64::from(n);
                        }
                        Acquire::Wait { until_ns } => {
                            clock.sleep_until(until_ns.min(now + MAX_NAP_NS));
                        }
                    }
                }
            }
            continue;
        }
        let batch = match &mut cur {
            Some(b) => b,
            None => match w.take_batch() {
                Some(b) => cur.insert(b),
                None => break, // aborted while waiting for a free batch
            },
        };
        // The adaptive batcher's target (Kafka), never above the configured batch size.
        let target = (shared.batch_target.load(Relaxed) as usize).clamp(1, batch_size);
        if batch.len() >= target {
            let full = cur.take().expect("batch present");
            w.push(full);
            continue;
        }
        let want = (target - batch.len()).min(remaining.min(u64::from(u32::MAX)) as usize) as u32;
        match limiter.acquire(want, now) {
            Acquire::Granted(n) => {
                if batch.is_empty() {
                    batch.sched_ns = now;
                    batch.trace.sampled = sampler.hit();
                }
                // Timestamps: the granted events were due over the last n intervals.
                let wall = shared.wall.unix_ns(now);
                let first_ts = wall.saturating_sub(interval_ns * (u64::from(n) - 1));
                for i in 0..u64::from(n) {
                    gen.write_event(seq, first_ts + i * interval_ns, &mut batch.buf, &mut meta);
                    batch.ends.push(batch.buf.len() as u32);
                    batch.metas.push(meta);
                    seq += 1;
                }
                w.local.generated += u64::from(n);
                remaining -= u64::from(n);
                if batch.len() >= target || remaining == 0 {
                    let full = cur.take().expect("batch present");
                    w.push(full);
                }
            }
            Acquire::Wait { until_ns } => {
                // Nothing more is due yet: send what we have now rather than hold it.
                if let Some(b) = cur.take() {
                    if b.is_empty() {
                        cur = Some(b);
                    } else {
                        w.push(b);
                    }
                }
                let mut wake = until_ns.min(now + MAX_NAP_NS);
                if let Some(d) = deadline_ns {
                    wake = wake.min(d);
                }
                clock.sleep_until(wake);
            }
        }
    }
    shared.lifecycle.generation_ended(1);
    if let Some(b) = cur.take() {
        if !b.is_empty() {
            w.push(b);
        }
    }
    w.local.publish(&shared.counters.workers[index]);
    shared.lifecycle.workers_ended(1);
}

fn interval(rate: Rate, workers: usize) -> u64 {
    match rate {
        Rate::Max => 0,
        Rate::PerSec(r) => 1_000_000_000 * workers as u64 / r.get(),
    }
}

struct Worker<'a> {
    index: usize,
    shared: &'a RunShared,
    to_flush: Producer<Batch>,
    returns: Consumer<Batch>,
    allocated: usize,
    pool: usize,
    batch_size: usize,
    bytes_hint: usize,
    backpressure: Backpressure,
    local: LocalWorker,
}

/// Why granted events are shed before they are formatted.
#[derive(Clone, Copy)]
enum Shed {
    /// The sink's circuit breaker is open (`rejected`).
    Breaker,
    /// Memory is above the budget's high-water mark (`shed_memory`).
    Memory,
}

impl Worker<'_> {
    /// Drops the batches the flush thread has sent back, giving their memory up.
    fn free_returned(&mut self) {
        let mut freed = false;
        while let Some(b) = self.returns.pop() {
            drop(b);
            self.allocated -= 1;
            freed = true;
        }
        #[cfg(feature = "mimalloc")]
        if freed {
            crate::alloc::collect();
        }
        let _ = freed;
    }

    /// Counts `n` granted events as generated and shed for `why`, then publishes.
    fn shed_unformatted(&mut self, n: u32, why: Shed) {
        let n = u64::from(n);
        self.local.generated += n;
        match why {
            Shed::Breaker => self.local.rejected += n,
            Shed::Memory => {
                self.local.shed += n;
                self.local.shed_memory += n;
            }
        }
        self.local.publish(&self.shared.counters.workers[self.index]);
    }

    /// A cleared batch from the return ring, a new one while the pool is not full, or (pool
    /// exhausted: everything is queued downstream) wait for one to come back.
    fn take_batch(&mut self) -> Option<Batch> {
        let mut backoff = Backoff::new();
        loop {
            if let Some(mut b) = self.returns.pop() {
                b.clear();
                return Some(b);
            }
            if self.allocated < self.pool {
                self.allocated += 1;
                return Some(Batch::with_capacity(
                    self.index as u16,
                    self.batch_size,
                    self.batch_size * self.bytes_hint,
                ));
            }
            if self.shared.lifecycle.is_aborting() {
                return None;
            }
            backoff.wait(&mut self.local.blocked_ns);
        }
    }

    /// Pushes a full (or final) batch, applying the backpressure policy, then publishes.
    fn push(&mut self, batch: Batch) {
        let n = batch.len() as u64;
        let bytes = batch.buf.len() as u64;
        self.local.bytes += bytes;
        let budget = &self.shared.budget;
        let mut backoff = Backoff::new();
        let mut b = batch;
        if b.trace.sampled {
            b.trace.pushed_ns = self.shared.clock.now_ns();
        }
        // Once the run is aborting, how long this batch may still wait for ring space.
        let mut last_call: Option<u64> = None;
        loop {
            // Reserve the bytes before pushing and give them back if the push fails: the flush
            // thread subtracts only what was added before the batch became visible to it, so the
            // counter never wraps, and concurrent workers cannot overshoot the budget together.
            // An aborting run takes them anyway: the flush thread is emptying the rings into the
            // sink's `abandon` (the DLQ file of Kafka and PostgreSQL), which is where this
            // batch belongs, not among the failed.
            let aborting = self.shared.lifecycle.is_aborting();
            let reserved = budget.reserve(bytes)
                || (aborting && {
                    budget.force(bytes);
                    true
                });
            let res = if reserved { self.to_flush.push(b) } else { Err(b) };
            match res {
                Ok(()) => {
                    self.local.events_pushed += n;
                    self.local.batches += 1;
                    break;
                }
                Err(back) => {
                    if reserved {
                        budget.release(bytes);
                    }
                    let give_up = match self.backpressure {
                        Backpressure::Shed => {
                            self.local.shed += n;
                            true
                        }
                        Backpressure::Block | Backpressure::Spill if aborting => {
                            // The flush thread pops every 200 µs while it gives up; a second
                            // without room means it has stopped popping: count the batch failed.
                            let now = self.shared.clock.now_ns();
                            let until = *last_call.get_or_insert(now + 1_000_000_000);
                            if now >= until || self.shared.lifecycle.is_finished() {
                                self.local.failed += n;
                                true
                            } else {
                                false
                            }
                        }
                        Backpressure::Block | Backpressure::Spill => false,
                    };
                    if give_up {
                        // The pool forgets a dropped batch (its buffer is freed and a new one
                        // allocated later): shedding is the overload path, not steady state.
                        drop(back);
                        self.allocated -= 1;
                        break;
                    }
                    b = back;
                    backoff.wait(&mut self.local.blocked_ns);
                }
            }
        }
        self.local.publish(&self.shared.counters.workers[self.index]);
    }
}

/// Spin briefly, then yield, then sleep in short naps: a blocked worker costs little CPU and
/// still reacts within ~50 µs when space appears.
struct Backoff {
    step: u32,
}

impl Backoff {
    fn new() -> Self {
        Self { step: 0 }
    }
    fn wait(&mut self, blocked_ns: &mut u64) {
        self.step += 1;
        if self.step < 64 {
            std::hint::spin_loop();
        } else if self.step < 80 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
            *blocked_ns += 50_000;
        }
    }
}
