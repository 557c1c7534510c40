//! The run's circuit breaker as the PostgreSQL sink drives it: each transaction is a call, a
//! failed reconnect opens it at once.

use std::sync::Arc;
use std::time::Duration;

use spate_core::breaker::{Breaker, BreakerReporter, BreakerWindow, State};
use spate_core::clock::Clock;

/// The run's breaker as the sink drives it (see the module doc).
pub(super) struct SinkBreaker {
    pub(super) shared: Arc<Breaker>,
    pub(super) window: BreakerWindow,
    pub(super) reporter: BreakerReporter,
    pub(super) clock: Arc<dyn Clock>,
    /// `backpressure: spill`: batches go to the DLQ file while it is open.
    pub(super) spill: bool,
}

impl SinkBreaker {
    pub(super) fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    pub(super) fn record(&mut self, failed: bool, took: Duration) {
        let now = self.now();
        self.window.record(&self.shared, failed, took, now);
        self.log();
    }

    /// A reconnect failed: open at once from closed; a failed trial from half-open.
    pub(super) fn down(&mut self, why: &str, took: Duration) {
        let now = self.now();
        match self.shared.state() {
            State::Closed => self.window.force_open(&self.shared, now, why),
            _ => self.window.record(&self.shared, true, took, now),
        }
        self.log();
    }

    pub(super) fn tick(&mut self) -> State {
        let now = self.now();
        self.window.tick(&self.shared, now);
        self.log();
        self.shared.state()
    }

    pub(super) fn log(&mut self) {
        self.reporter.take_and_report(&mut self.window, &self.shared);
    }
}
