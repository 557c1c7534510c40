//! The instance's shared token pool and the workers' limiters that take from it.
//!
//! The lease thread (`lease.rs`) releases leased tokens into the pool, an `AtomicU64` of
//! tokens. Workers take tokens with a **CAS loop on the pool** (`compare_exchange_weak`, taking
//! `min(available, want)`; the lease thread adds with `fetch_add` and expires with a saturating
//! CAS). All counter operations are `Relaxed`: a token is a permit, not a pointer to data,
//! so there is nothing else to publish with it, and the CAS alone makes a take exact (no token
//! is handed out twice). The limiter **mode** (redis / fallback) is stored with `Release` by the
//! lease thread and loaded with `Acquire` by workers, so a worker that sees the mode change also
//! sees the pool that was reset before it. Nothing on the worker path locks, allocates or calls
//! Redis; a worker makes one CAS per batch.
//!
//! While Redis is unavailable (mode fallback) each worker runs a local token bucket at its share
//! of the fallback rate instead, started fresh at the switch.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::local::TokenBucket;
use crate::stats::{MODE_FALLBACK, MODE_REDIS};
use crate::{Acquire, Rate, RateLimiter};
use spate_core::breaker::Breaker;

/// State shared by the lease thread and the workers' limiters.
#[derive(Debug)]
pub struct LeasePool {
    /// Released tokens not yet taken.
    pub(super) tokens: AtomicU64,
    /// `MODE_REDIS` or `MODE_FALLBACK`; Release by the lease thread, Acquire by workers.
    pub(super) mode: AtomicUsize,
    /// Instance rate (events/s) while in fallback.
    pub(super) fallback_rate: AtomicU64,
    /// Monotonic ns of the next release tick or Redis call (a hint for waiting workers).
    pub(super) next_ns: AtomicU64,
    /// Shared with `LimiterStats::redis_breaker`, for status and metrics.
    pub(super) breaker: Arc<Breaker>,
}

impl LeasePool {
    /// Takes up to `want` tokens: a CAS loop, `Relaxed` (see the module doc).
    #[inline]
    pub fn take(&self, want: u32) -> u32 {
        let mut cur = self.tokens.load(Ordering::Relaxed);
        loop {
            if cur == 0 || want == 0 {
                return 0;
            }
            let n = cur.min(u64::from(want));
            match self.tokens.compare_exchange_weak(
                cur,
                cur - n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return n as u32,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Adds released tokens.
    pub fn put(&self, n: u64) {
        self.tokens.fetch_add(n, Ordering::Relaxed);
    }

    /// Removes up to `n` tokens (expiry), never going below 0.
    pub(super) fn remove(&self, n: u64) {
        let _ = self
            .tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| Some(cur.saturating_sub(n)));
    }

    /// Tokens currently in the pool.
    pub fn available(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }

    /// A pool in redis mode with `tokens` in it and no lease thread (tests, benchmarks).
    pub fn standalone(tokens: u64) -> Arc<Self> {
        Arc::new(Self::new(tokens))
    }

    pub(super) fn new(tokens: u64) -> Self {
        Self {
            tokens: AtomicU64::new(tokens),
            mode: AtomicUsize::new(MODE_REDIS),
            fallback_rate: AtomicU64::new(1),
            next_ns: AtomicU64::new(0),
            breaker: Arc::new(Breaker::new()),
        }
    }

    /// The breaker of the Redis calls (state for status and tests).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

/// A worker's limiter: takes leased tokens from the pool, or runs a local token bucket at its
/// share of the fallback rate while Redis is unavailable.
pub struct LeasedLimiter {
    pool: Arc<LeasePool>,
    worker: usize,
    workers: usize,
    fallback: Option<TokenBucket>,
    fallback_rate: u64,
}

/// How long past the lease thread's next tick a waiting worker looks again.
const POLL_SLACK_NS: u64 = 100_000;

impl LeasedLimiter {
    /// The limiter of worker `worker` of `workers`, drawing on `pool`.
    pub fn new(pool: Arc<LeasePool>, worker: usize, workers: usize) -> Self {
        Self { pool, worker, workers, fallback: None, fallback_rate: 0 }
    }
}

impl RateLimiter for LeasedLimiter {
    #[inline]
    fn acquire(&mut self, want: u32, now_ns: u64) -> Acquire {
        if self.pool.mode.load(Ordering::Acquire) == MODE_FALLBACK {
            let r = self.pool.fallback_rate.load(Ordering::Relaxed).max(1);
            if self.fallback.is_none() || r != self.fallback_rate {
                // A fresh schedule from now: no credit from before the switch.
                self.fallback_rate = r;
                self.fallback = Some(TokenBucket::for_worker(
                    NonZeroU64::new(r).unwrap_or(NonZeroU64::MIN),
                    0,
                    self.worker,
                    self.workers,
                    now_ns,
                ));
            }
            if let Some(b) = &mut self.fallback {
                return b.acquire(want, now_ns);
            }
        }
        self.fallback = None;
        match self.pool.take(want) {
            0 => Acquire::Wait {
                until_ns: self.pool.next_ns.load(Ordering::Relaxed).max(now_ns) + POLL_SLACK_NS,
            },
            n => Acquire::Granted(n),
        }
    }

    /// The global rate rules: a run-time rate change does not apply to a Redis-limited run.
    fn set_rate(&mut self, _rate: Rate, _now_ns: u64) {}

    fn mode(&self) -> &'static str {
        if self.pool.mode.load(Ordering::Relaxed) == MODE_FALLBACK {
            "fallback"
        } else {
            "redis"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_is_exact_under_contention() {
        let pool = LeasePool::standalone(1_000_000);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = pool.clone();
                std::thread::spawn(move || {
                    let mut got = 0u64;
                    loop {
                        match p.take(7) {
                            0 => return got,
                            n => got += u64::from(n),
                        }
                    }
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1_000_000);
        assert_eq!(pool.available(), 0);
        pool.put(5);
        pool.remove(9);
        assert_eq!(pool.available(), 0);
    }

    #[test]
    fn worker_falls_back_and_returns() {
        let pool = LeasePool::standalone(10);
        let mut l = LeasedLimiter::new(pool.clone(), 0, 1);
        assert_eq!(l.acquire(4, 0), Acquire::Granted(4));
        assert_eq!(l.acquire(100, 0), Acquire::Granted(6));
        assert!(matches!(l.acquire(1, 0), Acquire::Wait { .. }));
        pool.fallback_rate.store(1000, Ordering::Relaxed);
        pool.mode.store(MODE_FALLBACK, Ordering::Release);
        assert_eq!(l.mode(), "fallback");
        assert_eq!(l.acquire(100, 5_000_000_000), Acquire::Granted(1));
        assert_eq!(l.acquire(100, 5_010_000_000), Acquire::Granted(10));
        pool.mode.store(MODE_REDIS, Ordering::Release);
        pool.put(3);
        assert_eq!(l.acquire(100, 5_020_000_000), Acquire::Granted(3));
    }
}
