//! Global rate across instances: a Redis sliding-window limiter that hands out **leased quota
//! chunks**, so Redis sees about one call per lease (2,000 events or more), never one per event.
//!
//! - `config.rs`: the `redis:` config section, its validation, the window Redis counts.
//! - `redact.rs`: keeping passwords in the URL out of every message.
//! - `grant.lua` and `lease.rs`: the grant script, and the lease thread that asks for leases,
//!   paces the granted tokens into the pool and falls back to a local rate while Redis is
//!   unavailable.
//! - `io.rs`: the calls to Redis, each with a deadline, on a thread of their own; the check at
//!   start.
//! - `pool.rs`: the token pool the workers take from without locks, and their limiter.
//!
//! ## Precision and the overshoot bound
//!
//! Redis grants at most `limit = global_rate × window` tokens in any window (exact, server
//! time). Events lag their grant by the prefetch margin plus the release period, at most
//! `lease_ms` + 1 ms, and released tokens not taken within `lease_ms` (e.g. workers blocked by
//! backpressure) are dropped: **unused tokens of an expired lease are never carried over**, and
//! the pool is emptied on every switch to fallback. So the events of any window come from grants
//! made in that window plus at most the leases outstanding at its start: the worst-case overshoot
//! is `instances × lease size`, where a lease is the larger of `1.05 × rate × lease_ms` and
//! `lease_min_events` (2,000), capped at a quarter window at that rate (`lease.rs`): e.g. 3 ×
//! 2,000 = 6,000 events (20 % of one 1 s window) for 3 instances sharing 30,000/s, 5,250 (5 %)
//! for one instance at 100,000/s; and 0 over a long run. A smaller `lease_min_events` trades
//! Redis calls for a smaller overshoot.
//!
//! When `redis` is configured, the instance's own `rate` is irrelevant (the global rate rules;
//! the run's rate is reported as the global rate), and `PUT /v1/rate` does not change it.
//! Redis must be there at start: a refused or unanswered connection, or credentials Redis does
//! not accept, is a configuration error at `redis.url` and the run does not begin. Once running,
//! a Redis that goes away or hangs makes the instance fall back (`lease.rs`), and come back.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use spate_core::clock::Clock;
use spate_core::notes::SharedNotes;

use crate::error::LimitError;
use crate::redis::config::RedisConfig;
use crate::redis::pool::{LeasePool, LeasedLimiter};
use crate::redis::redact::{redact, scrub};
use crate::stats::{LimiterStats, MODE_REDIS};
use crate::{LimiterFactory, RateLimiter};

pub mod config;
pub mod grant;
mod io;
pub mod lease;
pub mod pool;
pub mod redact;

/// A running Redis limiter: the pool the workers share. The lease thread stops on its own
/// (within ~10 ms) once every handle and limiter built from it is dropped.
#[derive(Clone)]
pub struct RedisLimiter {
    pool: Arc<LeasePool>,
}

impl RedisLimiter {
    /// Connects to Redis and loads the grant script (at most about the call timeout, 200 ms,
    /// per step), then starts the lease thread. A Redis that cannot be reached or does not accept
    /// the credentials is a `ConfigError` at `redis.url`: better no run than a run that silently
    /// ignores the global rate.
    pub fn start(
        cfg: &RedisConfig,
        stats: Arc<LimiterStats>,
        clock: Arc<dyn Clock>,
        notes: SharedNotes,
    ) -> Result<Self, LimitError> {
        for w in cfg.warnings() {
            spate_core::rate_log::warn("redis_security", &w);
        }
        let client = cfg.client().map_err(|e| {
            LimitError::Config(spate_core::ConfigError::new(
                if cfg.tls.is_some() { "redis.tls" } else { "redis.url" },
                format!("cannot use {}: {}", redact(&cfg.url), scrub(&e.to_string(), &cfg.url)),
                "check redis.url and redis.tls (PEM certificate and key files)",
            ))
        })?;
        let conn = io::check_at_start(cfg, &client, &stats)?;
        let pool = Arc::new(LeasePool::new(0));
        stats.mode.store(MODE_REDIS, Ordering::Relaxed);
        let _ = stats.redis_breaker.set(pool.breaker.clone());
        let seen = cfg.expected_instances.map_or(1, std::num::NonZero::get);
        pool.fallback_rate.store(cfg.fallback_rate_for(seen).get(), Ordering::Relaxed);
        lease::spawn(&pool, cfg, (client, conn), seen, stats, clock, notes)
            .map_err(|(name, source)| LimitError::Spawn { name: name.into(), source })?;
        Ok(Self { pool })
    }

    /// The limiter for worker `worker` of `workers`.
    pub fn limiter(&self, worker: usize, workers: usize) -> Box<dyn RateLimiter> {
        Box::new(LeasedLimiter::new(self.pool.clone(), worker, workers))
    }

    /// The lease pool the workers' limiters draw from.
    pub fn pool(&self) -> &Arc<LeasePool> {
        &self.pool
    }

    /// The engine's limiter factory for this limiter.
    pub fn factory(&self) -> LimiterFactory {
        let me = self.clone();
        Arc::new(move |w, n, _now| me.limiter(w, n))
    }
}
