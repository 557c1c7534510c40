//! Observability of a run at the edge: the metric catalogue, the observer thread, and the
//! Prometheus exposition, around `RunView`, one run as status and metrics see it.
//!
//! Nothing here touches the hot path. Every number is read at scrape time from the per-thread
//! counters the engine already publishes once per batch (`stats.rs`), or from the 4 Hz observer
//! that derives rates and the batch-size histogram from those same counters. No metric is
//! updated per event.

pub(crate) mod catalogue;
mod observer;
mod prometheus;
mod view;

pub(crate) use observer::spawn_ticker;
pub(crate) use prometheus::{render, PROM_CONTENT_TYPE};
pub(crate) use view::RunView;
