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
}
