//! Observability of a run at the edge: the metric catalogue, the observer thread, and the
//! Prometheus exposition, around `RunView`, one run as status and metrics see it.
//!
//! Nothing here touches the hot path. Every number is read at scrape time from the per-thread
//! counters the engine already publishes once per batch (`stats.rs`), or from the 4 Hz observer
//! that derives rates and the batch-size histogram from those same counters. No metric is
//! updated per event.

pub mod catalogue;
mod observer;
mod prometheus;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use spate_core::breaker::Breaker;
use spate_engine::sink::config::SinkConfig;
use spate_engine::run::RunShared;
use spate_engine::RunConfig;

pub use observer::{spawn_ticker, Observer};
pub use prometheus::{render, PROM_CONTENT_TYPE};

/// One run as the metrics and status code see it.
pub struct RunView {
    pub shared: Arc<RunShared>,
    pub config: RunConfig,
    pub observer: Observer,
}

impl RunView {
    pub fn new(shared: Arc<RunShared>, config: RunConfig) -> Self {
        Self { shared, config, observer: Observer::new() }
    }

    /// Generating or draining (the flush thread has not finished).
    pub fn active(&self) -> bool {
        !self.shared.flush_done.load(Relaxed)
    }

    /// Events per batch the workers aim for, within the configured batch size.
    pub fn batch_target(&self) -> u64 {
        self.shared.batch_target.load(Relaxed).clamp(1, self.config.batch_size.get() as u64)
    }

    /// The run's circuit breakers, in `BREAKERS` order, each with its recovery window.
    pub fn breakers(&self) -> Vec<BreakerView<'_>> {
        let sink_wait = match &self.config.sink {
            SinkConfig::Kafka(k) => k.breaker.open_wait,
            SinkConfig::Postgres(p) => p.breaker.open_wait,
            _ => Default::default(),
        };
        let waits = [sink_wait, self.config.redis.as_ref().map(|r| r.breaker.open_wait).unwrap_or_default()];
        breakers_of(&self.shared)
            .into_iter()
            .zip(BREAKERS)
            .zip(waits)
            .enumerate()
            .filter_map(|(i, ((b, name), wait))| {
                b.map(|breaker| BreakerView {
                    // The sink's breaker is named after the sink.
                    name: if i == 0 && self.config.sink.is_postgres() { "postgres" } else { name },
                    breaker,
                    open_seconds: self.observer.breaker_open_seconds(i),
                    open_wait_seconds: wait.as_secs_f64(),
                })
            })
            .collect()
    }
}

/// The breakers a run may have: the sink's (Kafka's produce calls, or PostgreSQL's
/// transactions: then named `postgres`) and Redis's (the global limiter's lease calls). Their
/// names are the `breaker` label of the metrics.
pub const BREAKERS: [&str; 2] = ["kafka", "redis"];

/// The run's breakers in `BREAKERS` order, None where the run has no such breaker.
fn breakers_of(shared: &RunShared) -> [Option<&Breaker>; 2] {
    [shared.breaker.as_deref(), shared.limiter.redis_breaker.get().map(|b| &**b)]
}

/// One circuit breaker as status and metrics show it.
pub struct BreakerView<'a> {
    pub name: &'static str,
    pub breaker: &'a Breaker,
    /// Seconds out of closed without recovering (0 while closed).
    pub open_seconds: f64,
    /// Time in open before a half-open trial.
    pub open_wait_seconds: f64,
}
