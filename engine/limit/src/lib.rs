//! # spate-limit
//!
//! Rate limiting behind one small trait, so the local token bucket (`local.rs`), "no limit"
//! ([`Unlimited`]) and the Redis leased limiter (`redis/`) are interchangeable in the worker.
//! `stats.rs` holds what status and metrics read about the limiter of a run.
//!
//! A limiter answers "not until T" (`Acquire::Wait`) instead of spinning, so a worker never
//! busy-waits on it. Nothing here depends on the run or the engine: the engine builds each
//! worker's limiter through a [`LimiterFactory`].
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

use std::num::NonZeroU64;
use std::sync::Arc;

mod error;
pub mod local;
pub mod redis;
pub mod stats;

pub use error::LimitError;

/// What the instance rate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// As fast as the pipeline goes.
    Max,
    /// Events per second for the whole instance.
    PerSec(NonZeroU64),
}

impl Rate {
    /// The highest rate accepted, in events/s.
    pub const MAX_PER_SEC: u64 = 10_000_000;

    /// Events per second, or None for `max`.
    pub fn per_sec(self) -> Option<u64> {
        match self {
            Rate::Max => None,
            Rate::PerSec(n) => Some(n.get()),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Max => f.write_str("max"),
            Rate::PerSec(n) => write!(f, "{n}/s"),
        }
    }
}

/// The answer to "may I have `want` tokens now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// This many tokens (1..=want) are granted now.
    Granted(u32),
    /// None now; ask again later.
    Wait {
        /// The monotonic time (ns) to ask again at.
        until_ns: u64,
    },
}

/// A per-worker rate limiter. Owned by one worker thread: no sharing, no locks.
pub trait RateLimiter: Send {
    /// Asks for up to `want` events at monotonic time `now_ns`.
    fn acquire(&mut self, want: u32, now_ns: u64) -> Acquire;
    /// The rate changed at run time (`PUT /v1/rate`); restart the schedule from `now_ns`.
    fn set_rate(&mut self, rate: Rate, now_ns: u64);
    /// Short name for status and metrics ("local", "unlimited", "redis", "fallback").
    fn mode(&self) -> &'static str;
}

/// Builds each worker's limiter: `(worker, workers, now_ns) -> limiter`. The default is the
/// local token bucket; the Redis leased limiter plugs in here.
pub type LimiterFactory = Arc<dyn Fn(usize, usize, u64) -> Box<dyn RateLimiter> + Send + Sync>;

/// Grants everything asked.
#[derive(Debug, Default)]
pub struct Unlimited;

impl RateLimiter for Unlimited {
    #[inline]
    fn acquire(&mut self, want: u32, _now_ns: u64) -> Acquire {
        Acquire::Granted(want)
    }
    fn set_rate(&mut self, _rate: Rate, _now_ns: u64) {}
    fn mode(&self) -> &'static str {
        "unlimited"
    }
}
