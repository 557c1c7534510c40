//! State shared by all threads of one run, and the handle the caller holds.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;

use crate::budget::ByteBudget;
use crate::config::RunConfig;
use crate::error::EngineError;
use crate::latency::LatencyStats;
use crate::lifecycle::Lifecycle;
use crate::stats::{Counters, Totals};
use spate_core::breaker::Breaker;
use spate_core::clock::{Clock, MonotonicClock, WallAnchor};
use spate_gen::RunId;
use spate_limit::Rate;

/// Everything the workers, the flush thread and the control plane share. Written rarely
/// (flags, per-batch counter stores), read by status and metrics.
pub struct RunShared {
    /// The run's id.
    pub run_id: RunId,
    /// The clock every thread of the run reads.
    pub clock: Arc<dyn Clock>,
    /// Maps clock ns to Unix time for event timestamps.
    pub wall: WallAnchor,
    /// Stop and abort requests, workers and the flush thread ending (`lifecycle.rs`).
    pub lifecycle: Arc<Lifecycle>,
    /// Every thread's counters.
    pub counters: Counters,
    /// Current instance rate in events/s (0 = max) and a change counter workers compare.
    pub rate: AtomicU64,
    /// Bumped on each rate change; workers compare it to see one.
    pub rate_epoch: AtomicU64,
    /// Number of worker threads.
    pub workers: usize,
    /// Bytes in rings and in the sink's queue, against the sink's cap (`budget.rs`).
    pub budget: Arc<ByteBudget>,
    /// Events per batch the workers aim for (the adaptive batcher moves it).
    pub batch_target: AtomicU64,
    /// The sink's circuit breaker (Kafka, PostgreSQL); None for sinks without one.
    pub breaker: Option<Arc<Breaker>>,
    /// Produce-to-ack latency (HDR) after the warm-up, merged by the flush thread off the hot
    /// path.
    pub latency: Mutex<LatencyStats>,
    /// The same for events scheduled during the warm-up (`RunConfig::warmup`).
    pub warmup_latency: Mutex<LatencyStats>,
    /// How long after the sink is ready acks count as warm-up, in ns.
    pub warmup_ns: u64,
    /// When the sink was ready (clock ns; 0 until then) and when its first ack came (0: none).
    pub sink_ready_ns: AtomicU64,
    /// When the first ack came (clock ns; 0: none yet).
    pub first_ack_ns: AtomicU64,
    /// First fatal error, if any (shown in status and the summary).
    pub error: Mutex<Option<String>>,
    /// Limiter mode, lease size and Redis call counts (see `limit::stats::LimiterStats`).
    pub limiter: Arc<spate_limit::stats::LimiterStats>,
    /// When the run started, for the summary's elapsed time.
    pub started: Instant,
    /// When the run started, in clock ns.
    pub start_ns: u64,
    /// The span exporter when tracing is on (`spans/`).
    pub tracer: Option<Arc<crate::spans::Tracer>>,
    /// When generation ends by itself (`duration`), in clock ns; `u64::MAX` for none.
    pub deadline_ns: AtomicU64,
    /// Once generation has ended, how long the sink may settle what is in flight.
    pub drain_timeout_ns: u64,
    /// Workers whose core pin failed (reported, not fatal).
    pub pin_failures: AtomicUsize,
    /// The memory budget and its watch (`memory.rs`).
    pub memory: crate::memory::Memory,
}

impl RunShared {
    /// `clock` drives the whole run (workers, limiters, the flush thread, the sinks' retries,
    /// reconnects, commit lingers and drain deadlines); `None` is the real monotonic clock, a
    /// `FakeClock` makes the run's time exact. (Socket and channel waits stay real: they are
    /// bounded by the time the clock gives them.)
    pub fn new(
        run_id: RunId,
        workers: usize,
        rate: Rate,
        max_inflight_bytes: u64,
        breaker: Option<Arc<Breaker>>,
        clock: Option<Arc<dyn Clock>>,
    ) -> Self {
        let clock: Arc<dyn Clock> = clock.unwrap_or_else(|| Arc::new(MonotonicClock::new()));
        let wall = WallAnchor::new(clock.as_ref());
        let start_ns = clock.now_ns();
        Self {
            run_id,
            clock,
            wall,
            lifecycle: Arc::new(Lifecycle::new(workers)),
            counters: Counters::new(workers),
            rate: AtomicU64::new(rate.per_sec().unwrap_or(0)),
            rate_epoch: AtomicU64::new(0),
            workers,
            budget: Arc::new(ByteBudget::new(max_inflight_bytes)),
            batch_target: AtomicU64::new(u64::MAX),
            breaker,
            latency: Mutex::new(LatencyStats::new()),
            warmup_latency: Mutex::new(LatencyStats::new()),
            warmup_ns: 0,
            sink_ready_ns: AtomicU64::new(0),
            first_ack_ns: AtomicU64::new(0),
            error: Mutex::new(None),
            limiter: Arc::new(spate_limit::stats::LimiterStats::default()),
            started: Instant::now(),
            start_ns,
            tracer: None,
            deadline_ns: AtomicU64::new(u64::MAX),
            drain_timeout_ns: 10_000_000_000,
            pin_failures: AtomicUsize::new(0),
            memory: crate::memory::Memory::default(),
        }
    }

    /// Sets when generation ends by itself and how long the drain may take afterwards.
    pub fn with_ends(
        mut self,
        duration: Option<std::time::Duration>,
        drain: std::time::Duration,
    ) -> Self {
        self.deadline_ns = AtomicU64::new(
            duration.map_or(u64::MAX, |d| self.start_ns.saturating_add(d.as_nanos() as u64)),
        );
        self.drain_timeout_ns = drain.as_nanos() as u64;
        self
    }

    /// Sets how long after the sink is ready acks count as warm-up.
    pub fn with_warmup(mut self, warmup: std::time::Duration) -> Self {
        self.warmup_ns = warmup.as_nanos() as u64;
        self
    }

    /// Sets the memory budget (before the run is shared).
    pub fn with_memory_budget(mut self, budget: u64) -> Self {
        self.memory = crate::memory::Memory::new(budget);
        self
    }

    /// Sets the span exporter (before the run is shared).
    pub fn with_tracer(mut self, tracer: Option<Arc<crate::spans::Tracer>>) -> Self {
        self.tracer = tracer;
        self
    }

    /// Records `e` as the run's error, unless one is already recorded.
    pub fn set_error(&self, e: String) {
        let mut g = self.error.lock();
        if g.is_none() {
            *g = Some(e);
        }
    }

    /// The instance rate in force now.
    pub fn current_rate(&self) -> Rate {
        match std::num::NonZeroU64::new(self.rate.load(Relaxed)) {
            None => Rate::Max,
            Some(n) => Rate::PerSec(n),
        }
    }
}

/// Final report of a run (also written by `--summary-json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The run's id.
    pub run_id: String,
    /// The sink: its kind and where (passwords masked).
    pub sink: String,
    /// The event format.
    pub format: String,
    /// Worker threads.
    pub threads: usize,
    /// The rate in force at the end (a run's rate can change while it runs).
    pub rate: String,
    /// Event counts at the end.
    #[serde(flatten)]
    pub totals: Totals,
    /// Seconds from the start of the run to the summary.
    pub elapsed_s: f64,
    /// Events generated per second of `elapsed_s`.
    pub events_per_sec: f64,
    /// Megabytes (10^6 bytes) generated per second of `elapsed_s`.
    pub mb_per_sec: f64,
    /// Worker time per generated event, in ns (elapsed time times threads, over events).
    pub ns_per_event_per_thread: f64,
    /// Ack latency of events scheduled after the warm-up.
    pub latency_ms: Option<crate::latency::Percentiles>,
    /// Ack latency of events scheduled during the warm-up (`warmup_s` after the sink was
    /// ready), kept apart.
    pub warmup_latency_ms: Option<crate::latency::Percentiles>,
    /// The warm-up, in seconds.
    pub warmup_s: f64,
    /// From the start of the run to the sink being ready (connected, metadata known), and to
    /// the first ack; None when the sink has no acks.
    pub sink_ready_ms: Option<f64>,
    /// From the start of the run to the first ack, in ms; None when there was none.
    pub first_ack_ms: Option<f64>,
    /// State changes of the sink's circuit breaker (0 without one).
    pub breaker_transitions: u64,
    /// The seed the events came from; `seed_given` false when it was drawn at random.
    pub seed: u64,
    /// False when the seed was drawn at random.
    pub seed_given: bool,
    /// Workers that could not be pinned to their core.
    pub pin_failures: usize,
    /// Why events were shed, by reason: `breaker` (rejected while it was open), `memory` (above
    /// the budget's high-water mark), `backpressure` (a full ring or in-flight budget, or the
    /// reader of stdout gone). Reasons with no event are left out.
    pub shed_reasons: std::collections::BTreeMap<&'static str, u64>,
    /// The memory budget, the highest resident memory sampled, and how many times generation
    /// was held back for memory.
    pub memory: MemoryReport,
    /// The reader of stdout went away and the run ended early, as asked.
    pub reader_gone: bool,
    /// How the run ended.
    pub outcome: Outcome,
    /// The first fatal error, if any.
    pub error: Option<String>,
}

/// How a run ended, for exit codes a script can trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything generated was delivered (or shed, as the policy asked).
    Delivered,
    /// Some events were dead-lettered, failed or left unsettled.
    Partial,
    /// Events were generated and none could be delivered (the sink was unreachable).
    NothingDelivered,
}

impl Outcome {
    /// The outcome the totals `t` show.
    pub fn of(t: &Totals) -> Outcome {
        let lost = t.dead_lettered + t.failed + t.in_flight;
        if lost == 0 {
            Outcome::Delivered
        } else if t.delivered == 0 {
            Outcome::NothingDelivered
        } else {
            Outcome::Partial
        }
    }
}

/// The handle of a running engine.
pub struct Run {
    /// State shared with the run's threads.
    pub shared: Arc<RunShared>,
    /// The configuration the run was started with.
    pub config: RunConfig,
    pub(crate) workers: Vec<JoinHandle<()>>,
    pub(crate) flush: Option<JoinHandle<Result<(), EngineError>>>,
    /// The memory watch; `None` if its thread could not be spawned (the budget still sized
    /// the batches; only the watch is missing, said at start).
    pub(crate) memory: Option<JoinHandle<()>>,
}

impl Run {
    /// Asks for a graceful stop: stop generating, deliver what is queued.
    pub fn stop(&self) {
        self.shared.lifecycle.stop();
    }

    /// Asks for a hard stop: also give up on events blocked by backpressure (counted failed).
    pub fn abort(&self) {
        self.shared.lifecycle.abort();
    }

    /// Whether the run is over: its counters are final.
    pub fn is_finished(&self) -> bool {
        self.shared.lifecycle.is_finished()
    }

    /// Changes the instance rate while running.
    pub fn set_rate(&self, rate: Rate) {
        self.shared.rate.store(rate.per_sec().unwrap_or(0), Relaxed);
        // Release pairs with the worker's Acquire load of the epoch: a worker that sees the new
        // epoch also sees the new rate (on any CPU, not only x86).
        self.shared.rate_epoch.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The counts so far (a snapshot).
    pub fn totals(&self) -> Totals {
        self.shared.counters.totals()
    }

    /// Waits for every thread and returns the summary.
    pub fn join(mut self) -> Summary {
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                self.shared.set_error("a worker thread panicked".into());
            }
        }
        if let Some(f) = self.flush.take() {
            match f.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.shared.set_error(e.to_string()),
                Err(_) => self.shared.set_error("the flush thread panicked".into()),
            }
        }
        if let Some(m) = self.memory.take() {
            let _ = m.join();
        }
        if let Some(t) = &self.shared.tracer {
            t.finish();
        }
        summarize(&self.shared, &self.config)
    }
}

/// The run's memory, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryReport {
    /// `memory_budget` in bytes.
    pub budget_bytes: u64,
    /// The highest resident memory sampled (every 50 ms).
    pub peak_rss_bytes: u64,
    /// Times memory crossed the high-water mark.
    pub pressed: u64,
}

/// Milliseconds from the run's start to clock time `ns` (0: never happened).
fn since_start(shared: &RunShared, ns: u64) -> Option<f64> {
    (ns != 0).then(|| ns.saturating_sub(shared.start_ns) as f64 / 1e6)
}

/// Builds the summary of a run from its shared state and configuration.
pub fn summarize(shared: &RunShared, config: &RunConfig) -> Summary {
    let totals = shared.counters.totals();
    let elapsed = shared.started.elapsed().as_secs_f64().max(1e-9);
    let lat = shared.latency.lock();
    Summary {
        run_id: shared.run_id.to_string(),
        sink: config.sink.to_string(),
        format: config.events.format.to_string(),
        threads: config.threads.get(),
        // The rate in force at the end (a run's rate can change while it runs).
        rate: shared.current_rate().to_string(),
        totals,
        elapsed_s: elapsed,
        events_per_sec: totals.generated as f64 / elapsed,
        mb_per_sec: totals.bytes as f64 / elapsed / 1e6,
        ns_per_event_per_thread: if totals.generated > 0 {
            elapsed * 1e9 * config.threads.get() as f64 / totals.generated as f64
        } else {
            0.0
        },
        latency_ms: lat.percentiles(),
        warmup_latency_ms: shared.warmup_latency.lock().percentiles(),
        warmup_s: shared.warmup_ns as f64 / 1e9,
        sink_ready_ms: since_start(shared, shared.sink_ready_ns.load(Relaxed)),
        first_ack_ms: since_start(shared, shared.first_ack_ns.load(Relaxed)),
        breaker_transitions: shared.breaker.as_ref().map_or(0, |b| b.transitions()),
        seed: config.events.seed,
        seed_given: config.seed_given,
        pin_failures: shared.pin_failures.load(Relaxed),
        shed_reasons: [
            ("breaker", totals.rejected),
            ("memory", totals.shed_memory),
            ("backpressure", totals.shed - totals.rejected - totals.shed_memory),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect(),
        memory: MemoryReport {
            budget_bytes: shared.memory.budget,
            peak_rss_bytes: shared.memory.peak_rss.load(Relaxed),
            pressed: shared.memory.pressed_count.load(Relaxed),
        },
        reader_gone: shared.lifecycle.is_reader_gone(),
        outcome: Outcome::of(&totals),
        error: shared.error.lock().clone(),
    }
}
