//! [`RunConfig`]: the checked configuration the engine runs with (built by
//! `RawConfig::validate`, never checked again).

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use serde::Serialize;

use spate_gen::EventConfig;
use spate_limit::redis::config::RedisConfig;
use spate_limit::Rate;

use super::raw::RawConfig;
use crate::audit::AuditConfig;
use crate::avro::config::AvroConfig;
use crate::sink::config::SinkConfig;
use crate::spans::TracingConfig;

/// What to do when a ring (or the in-flight byte budget) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backpressure {
    /// Wait for room: nothing is lost.
    Block,
    /// Drop what does not fit, counted.
    Shed,
    /// Kafka and PostgreSQL: while the sink's circuit breaker is OPEN, events keep being
    /// generated and go to the DLQ file (counted dead-lettered) instead of the sink; a full ring
    /// blocks as `block`.
    Spill,
}

/// A validated run configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Events per second for this instance, or `max`.
    pub rate: Rate,
    /// Extra events that may be sent at once above the steady rate.
    pub burst: u64,
    /// How long to generate; `None`: until stopped or `count` is reached.
    pub duration: Option<Duration>,
    /// Once generation stops, how long the sink may take to settle what is in flight.
    pub drain_timeout: Duration,
    /// Missed schedule the limiter makes up after a stall.
    pub catch_up: Duration,
    /// Acks of events scheduled this long after the sink is ready are warm-up.
    pub warmup: Duration,
    /// False when the seed was drawn at random (`events.seed` holds it either way).
    pub seed_given: bool,
    /// Stop after this many events.
    pub count: Option<NonZeroU64>,
    /// Worker threads.
    pub threads: NonZeroUsize,
    /// Pin workers to cores.
    pub pin: bool,
    /// Where events go.
    pub sink: SinkConfig,
    /// What events to generate, and in which format.
    pub events: EventConfig,
    /// What to do when a ring (or the in-flight byte budget) is full.
    pub backpressure: Backpressure,
    /// Batches each worker ring holds.
    pub ring_capacity: NonZeroUsize,
    /// Most events per batch.
    pub batch_size: NonZeroUsize,
    /// Bytes the run may use (`memory.rs`).
    pub memory_budget: u64,
    /// The Redis global limiter, if configured (then `rate` is the global rate, for display).
    pub redis: Option<RedisConfig>,
    /// Batch spans, if an endpoint is configured.
    pub tracing: Option<TracingConfig>,
    /// Avro framing, codec and registry (defaults unless the format is Avro).
    pub avro: AvroConfig,
    /// The audit trail, if configured.
    pub audit: Option<AuditConfig>,
    /// Deprecated forms the config used (a warning each, at start).
    pub deprecated: Vec<String>,
    /// The raw form it was built from, echoed by status.
    pub raw: RawConfig,
}

impl RunConfig {
    /// Bytes the run may hold in rings and in the sink's queue (0: no cap).
    pub fn max_inflight_bytes(&self) -> u64 {
        self.sink.kafka().map_or(0, |k| k.max_inflight_bytes)
    }
}
