//! Exponential backoff with full jitter (the AWS Architecture Blog's "Exponential Backoff And
//! Jitter"): the wait before attempt `n` is drawn uniformly from `[0, min(cap, base × 2^n))`.
//! Full jitter spreads the retries of many clients that failed together (every instance of a
//! fleet losing its broker at once) instead of bringing them back in waves.
//!
//! One type for every retry in spate: Kafka's application retries (the attempt is the record's),
//! and reconnects of the TCP and PostgreSQL sinks, the audit writer and the Redis lease thread
//! (the attempt is the count of consecutive failures, reset on success).

use std::time::Duration;

use crate::rng::Rng;

/// A backoff schedule and its PRNG.
#[derive(Debug, Clone)]
pub struct Backoff {
    base_ns: u64,
    cap_ns: u64,
    rng: Rng,
    /// Consecutive failures (for [`Backoff::failed`]); 0 after [`Backoff::succeeded`].
    failures: u8,
}

impl Backoff {
    /// Waits below `base × 2^attempt`, never above `cap`; `seed` makes the jitter repeatable.
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        let base_ns = (base.as_nanos() as u64).max(1);
        Self {
            base_ns,
            cap_ns: (cap.as_nanos() as u64).max(base_ns),
            rng: Rng::new(seed),
            failures: 0,
        }
    }

    /// A reconnect schedule for the peer `key`, seeded from the key, this process and the wall
    /// clock, so that instances that lost the same peer together draw different waits.
    pub fn reconnects(base: Duration, cap: Duration, key: &str) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed =
            crate::rng::fnv1a(key.as_bytes()) ^ u64::from(std::process::id()).rotate_left(32) ^ now;
        Self::new(base, cap, seed)
    }

    /// The upper bound of the wait before attempt `attempt` (0-based).
    pub fn ceiling_ns(&self, attempt: u8) -> u64 {
        self.base_ns.saturating_mul(1u64 << attempt.min(32)).min(self.cap_ns)
    }

    /// A wait before attempt `attempt`, drawn from `[0, ceiling)`.
    pub fn next_ns(&mut self, attempt: u8) -> u64 {
        self.rng.next_u64() % self.ceiling_ns(attempt)
    }

    /// One more consecutive failure: the wait before trying again.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next_ns(self.failures);
        self.failures = self.failures.saturating_add(1);
        Duration::from_nanos(wait)
    }

    /// A success: the next failure starts from the base again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u8 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30), 42)
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = kafka();
        assert_eq!(b.ceiling_ns(0), 100_000_000);
        assert_eq!(b.ceiling_ns(1), 200_000_000);
        assert_eq!(b.ceiling_ns(3), 800_000_000);
        assert_eq!(b.ceiling_ns(8), 25_600_000_000);
        assert_eq!(b.ceiling_ns(9), 30_000_000_000);
        assert_eq!(b.ceiling_ns(255), 30_000_000_000);
    }

    #[test]
    fn full_jitter_within_the_ceiling() {
        let mut b = kafka();
        for attempt in 0..10u8 {
            let cap = b.ceiling_ns(attempt);
            let waits: Vec<u64> = (0..2000).map(|_| b.next_ns(attempt)).collect();
            assert!(waits.iter().all(|&w| w < cap));
            // Full jitter spreads over the whole range: some waits in the lowest and the
            // highest tenth.
            assert!(waits.iter().any(|&w| w < cap / 10), "attempt {attempt}");
            assert!(waits.iter().any(|&w| w > cap / 10 * 9), "attempt {attempt}");
        }
    }

    #[test]
    fn consecutive_failures_grow_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 7);
        for n in 0..6u8 {
            let cap = b.ceiling_ns(n);
            assert!(b.failed() < Duration::from_nanos(cap));
        }
        assert_eq!(b.failures(), 6);
        assert_eq!(b.ceiling_ns(b.failures()), 2_000_000_000, "capped");
        b.succeeded();
        assert_eq!(b.failures(), 0);
    }
}
