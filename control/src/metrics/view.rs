//! [`RunView`]: one run as status and metrics see it (its shared state, its config, the observer),
//! and its circuit breakers.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use spate_core::breaker::Breaker;
use spate_engine::run::RunShared;
use spate_engine::sink::config::SinkConfig;
use spate_engine::RunConfig;

use super::observer::{breakers_of, Observer, BREAKERS};

/// One run as the metrics and status code see it.
pub(crate) struct RunView {
    pub shared: Arc<RunShared>,
    pub config: RunConfig,
    pub observer: Observer,
}

impl RunView {
    pub(crate) fn new(shared: Arc<RunShared>, config: RunConfig) -> Self {
        Self { shared, config, observer: Observer::new() }
    }

    /// Generating or draining (the flush thread has not finished).
    pub(crate) fn active(&self) -> bool {
        !self.shared.lifecycle.is_finished()
    }

    /// Events per batch the workers aim for, within the configured batch size.
    pub(crate) fn batch_target(&self) -> u64 {
        self.shared.batch_target.load(Relaxed).clamp(1, self.config.batch_size.get() as u64)
    }

    /// The run's circuit breakers, in `BREAKERS` order, each with its recovery window.
    pub(crate) fn breakers(&self) -> Vec<BreakerView<'_>> {
        let sink_wait = match &self.config.sink {
            SinkConfig::Kafka(k) => k.breaker.open_wait,
            SinkConfig::Postgres(p) => p.breaker.open_wait,
            _ => Default::default(),
        };
        let waits = [
            sink_wait,
            self.config.redis.as_ref().map(|r| r.breaker.open_wait).unwrap_or_default(),
        ];
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

/// One circuit breaker as status and metrics show it.
pub(crate) struct BreakerView<'a> {
    pub name: &'static str,
    pub breaker: &'a Breaker,
    /// Seconds out of closed without recovering (0 while closed).
    pub open_seconds: f64,
    /// Time in open before a half-open trial.
    pub open_wait_seconds: f64,
}
