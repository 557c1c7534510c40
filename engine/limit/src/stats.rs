//! What status and metrics read about a run's limiter: its mode and the Redis lease counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use spate_core::breaker::Breaker;

/// Limiter observability, shared by the workers' limiters (and the Redis lease thread) with
/// status and metrics. Updated per lease or per transition, never per event.
#[derive(Debug, Default)]
pub struct LimiterStats {
    /// One of `MODES`.
    pub mode: AtomicUsize,
    /// Tokens in the current lease (Redis) or 0.
    pub lease_size: AtomicU64,
    /// Grant calls made to Redis.
    pub redis_calls: AtomicU64,
    /// Times a worker found no tokens in its lease and had to wait for the next one.
    pub lease_waits: AtomicU64,
    /// Mode changes (redis <-> fallback).
    pub transitions: AtomicU64,
    /// Tokens granted by Redis in total.
    pub granted: AtomicU64,
    /// The circuit breaker of the Redis calls, once the Redis limiter has started.
    pub redis_breaker: OnceLock<Arc<Breaker>>,
}

/// Limiter modes, indexed by `LimiterStats::mode`.
pub const MODES: [&str; 4] = ["local", "unlimited", "redis", "fallback"];
/// Index of "redis" in `MODES`.
pub const MODE_REDIS: usize = 2;
/// Index of "fallback" in `MODES`.
pub const MODE_FALLBACK: usize = 3;

impl LimiterStats {
    /// The current mode's name (one of `MODES`).
    pub fn mode_name(&self) -> &'static str {
        MODES.get(self.mode.load(Ordering::Relaxed)).copied().unwrap_or("local")
    }
}
