//! The observer: one thread that samples a run's counters at `TICK` and derives what a single
//! reading cannot give, the current rate, the batch-size histogram and how long the breaker has
//! been out of closed. The workers publish plain counters once per batch; nothing here is
//! updated per event, and nothing here touches the hot path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use parking_lot::Mutex;
use spate_core::breaker::{Breaker, State as BreakerState};
use spate_engine::run::RunShared;

/// How often the observer samples the counters (rates, batch-size histogram, breaker timer).
const TICK: Duration = Duration::from_millis(250);
/// Upper bounds of the batch-size histogram (events).
pub(super) const BATCH_BOUNDS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/// Values derived from successive counter snapshots, sampled by one thread at `TICK`.
#[derive(Default)]
pub(crate) struct Observer {
    inner: Mutex<ObserverInner>,
}

#[derive(Default)]
struct ObserverInner {
    /// (time, generated) over the last ~1.5 s, for the current rate.
    samples: VecDeque<(Instant, u64)>,
    batches_seen: u64,
    events_seen: u64,
    batch_buckets: [u64; BATCH_BOUNDS.len()],
    batch_count: u64,
    batch_sum: u64,
    /// When each breaker (`BREAKERS` order) was last seen leaving closed (None while closed).
    not_closed_since: [Option<Instant>; BREAKERS.len()],
}

impl Observer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Takes one sample of the run's counters. Called a few times a second, never per event.
    pub(crate) fn tick(&self, shared: &RunShared) {
        let now = Instant::now();
        let (mut batches, mut events, mut generated) = (0u64, 0u64, 0u64);
        for w in &shared.counters.workers {
            batches += w.batches_pushed.load(Relaxed);
            events += w.events_pushed.load(Relaxed);
            generated += w.generated.load(Relaxed);
        }
        let closed =
            breakers_of(shared).map(|b| b.is_none_or(|b| b.state() == BreakerState::Closed));
        let mut g = self.inner.lock();
        g.samples.push_back((now, generated));
        while g.samples.len() > 2
            && now.duration_since(g.samples[0].0) > Duration::from_millis(1500)
        {
            g.samples.pop_front();
        }
        let (db, de) =
            (batches.saturating_sub(g.batches_seen), events.saturating_sub(g.events_seen));
        if db > 0 {
            // The interval's batches all land in the bucket of the interval's mean size: exact
            // count and sum, approximate shape, at no cost to the workers.
            let mean = de.div_ceil(db);
            if let Some(i) = BATCH_BOUNDS.iter().position(|&b| mean <= b) {
                g.batch_buckets[i] += db;
            }
            g.batch_count += db;
            g.batch_sum += de;
        }
        g.batches_seen = batches;
        g.events_seen = events;
        for (since, closed) in g.not_closed_since.iter_mut().zip(closed) {
            *since = match (closed, *since) {
                (true, _) => None,
                (false, None) => Some(now),
                (false, s) => s,
            };
        }
    }

    /// Events per second over the last second or so (0 before two samples exist).
    pub(crate) fn current_rate(&self) -> f64 {
        let g = self.inner.lock();
        match (g.samples.front(), g.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                (b.1.saturating_sub(a.1)) as f64 / b.0.duration_since(a.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Seconds breaker `i` (`BREAKERS` order) has been out of closed without recovering (0
    /// while closed).
    pub(crate) fn breaker_open_seconds(&self, i: usize) -> f64 {
        self.inner.lock().not_closed_since[i].map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// The batch-size histogram: cumulative counts at `BATCH_BOUNDS`, the sum and the count.
    pub(crate) fn batch_histogram(&self) -> (Vec<u64>, u64, u64) {
        let g = self.inner.lock();
        let mut acc = 0;
        let cumulative = g
            .batch_buckets
            .iter()
            .map(|n| {
                acc += n;
                acc
            })
            .collect();
        (cumulative, g.batch_sum, g.batch_count)
    }
}

/// Runs `f` every `TICK` on its own thread until `stop` is set.
pub(crate) fn spawn_ticker(
    stop: Arc<AtomicBool>,
    f: impl Fn() + Send + 'static,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("spate-observer".into())
        .spawn(move || {
            while !stop.load(Relaxed) {
                f();
                std::thread::sleep(TICK);
            }
        })
        .context("cannot spawn the observer thread")
}

/// The breakers a run may have: the sink's (Kafka's produce calls, or PostgreSQL's
/// transactions: then named `postgres`) and Redis's (the global limiter's lease calls). Their
/// names are the `breaker` label of the metrics.
pub(super) const BREAKERS: [&str; 2] = ["kafka", "redis"];

/// The run's breakers in `BREAKERS` order, None where the run has no such breaker.
pub(super) fn breakers_of(shared: &RunShared) -> [Option<&Breaker>; 2] {
    [shared.breaker.as_deref(), shared.limiter.redis_breaker.get().map(|b| &**b)]
}
