//! The local limiter: an exact token bucket per worker, or none at `max`.
//!
//! The bucket is evaluated exactly in integer arithmetic (equivalent to GCRA with an emission
//! interval of `1/rate`): the number of tokens ever allowed by time `t` is
//! `floor((t - start) * rate) + 1 + burst`; a grant subtracts from what is left. Because it is
//! computed from the start time, not accumulated step by step, it never drifts, so the average
//! over a run is exact to within one event per worker. The instance rate is split evenly
//! across workers and each worker's schedule is shifted by `worker / rate`, so the workers'
//! events interleave instead of arriving in clumps.
//!
//! When empty, the bucket answers `Acquire::Wait`; at high rates the wait is for a chunk of
//! about 1 ms worth of tokens, so a worker never sleeps per event.

use std::num::NonZeroU64;

use crate::{Acquire, Rate, RateLimiter};

const NS_PER_SEC: u128 = 1_000_000_000;

/// Exact token bucket for one worker's share of the instance rate.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Events per second for the whole instance (numerator of this worker's rate).
    rate: u64,
    /// Number of workers sharing `rate` (denominator).
    share: u64,
    /// Schedule origin (monotonic ns) including this worker's phase shift.
    start_ns: u64,
    /// Tokens granted since `start_ns` (may be advanced to forget idle credit).
    consumed: u64,
    /// Extra tokens beyond the first that may be taken at once.
    burst: u64,
    /// Tokens to wait for when empty: about 1 ms worth, at least 1.
    chunk: u64,
    /// Credit kept beyond `1 + burst`, in tokens: after a stall (a late wake-up, preemption,
    /// a loaded machine) the worker makes up this much lost schedule at full speed, so a long
    /// run's average holds; a longer stall is forgotten rather than flooded out.
    catch_up: u64,
    /// The same allowance as time (default 20 ms; `catch_up` in the config sets it).
    catch_up_ns: u64,
    worker: u64,
}

impl TokenBucket {
    /// Worker `worker` of `workers` gets `rate / workers` events/s and `burst / workers` burst.
    pub fn for_worker(
        rate: NonZeroU64,
        burst: u64,
        worker: usize,
        workers: usize,
        now_ns: u64,
    ) -> Self {
        let share = workers.max(1) as u64;
        let mut b = Self {
            rate: rate.get(),
            share,
            start_ns: 0,
            consumed: 0,
            burst: burst / share,
            chunk: 1,
            catch_up: 1,
            catch_up_ns: 20_000_000,
            worker: worker as u64,
        };
        b.restart(now_ns);
        b
    }

    /// Keeps up to `d` of missed schedule as credit (at least one chunk, so sleep overshoot is
    /// always made up).
    pub fn with_catch_up(mut self, d: std::time::Duration) -> Self {
        self.catch_up_ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.catch_up = self.catch_up_tokens();
        self
    }

    fn catch_up_tokens(&self) -> u64 {
        let t = u128::from(self.rate) * u128::from(self.catch_up_ns)
            / (u128::from(self.share) * NS_PER_SEC);
        (t.min(u128::from(u64::MAX)) as u64).max(self.chunk)
    }

    fn restart(&mut self, now_ns: u64) {
        // Phase: worker i's first token is at now + i/rate, so workers interleave.
        let phase = (u128::from(self.worker) * NS_PER_SEC / u128::from(self.rate)) as u64;
        self.start_ns = now_ns + phase;
        self.consumed = 0;
        self.chunk = (self.rate / self.share / 1000).max(1);
        self.catch_up = self.catch_up_tokens();
    }

    /// Tokens allowed in total by `now_ns` (before subtracting what was consumed).
    #[inline]
    fn allowed(&self, now_ns: u64) -> u64 {
        if now_ns < self.start_ns {
            return 0;
        }
        let elapsed = u128::from(now_ns - self.start_ns);
        (elapsed * u128::from(self.rate) / (u128::from(self.share) * NS_PER_SEC)) as u64
            + 1
            + self.burst
    }

    /// Earliest time at which `allowed` reaches `total`.
    fn time_of(&self, total: u64) -> u64 {
        let need = u128::from(total.saturating_sub(1 + self.burst));
        // ceil(need * share * 1e9 / rate)
        let num = need * u128::from(self.share) * NS_PER_SEC;
        let elapsed = num.div_ceil(u128::from(self.rate));
        self.start_ns + elapsed as u64
    }
}

impl RateLimiter for TokenBucket {
    #[inline]
    fn acquire(&mut self, want: u32, now_ns: u64) -> Acquire {
        let allowed = self.allowed(now_ns);
        // Forget credit beyond the bucket size: a worker that was blocked for long does not
        // catch up in a flood afterwards; a slightly late one does (exact average).
        let cap = 1 + self.burst + self.catch_up;
        if allowed > self.consumed + cap {
            self.consumed = allowed - cap;
        }
        let avail = allowed.saturating_sub(self.consumed);
        if avail == 0 {
            let k = self.chunk.min(u64::from(want.max(1)));
            return Acquire::Wait { until_ns: self.time_of(self.consumed + k) };
        }
        let n = avail.min(u64::from(want)) as u32;
        self.consumed += u64::from(n);
        Acquire::Granted(n)
    }

    fn set_rate(&mut self, rate: Rate, now_ns: u64) {
        if let Rate::PerSec(r) = rate {
            self.rate = r.get();
            self.restart(now_ns);
        }
    }

    fn mode(&self) -> &'static str {
        "local"
    }
}

/// The limiter of a local (non-Redis) run: a token bucket, or none at `max`; it can switch
/// between the two when the rate is changed at run time.
#[derive(Debug, Clone)]
pub struct Local {
    bucket: Option<TokenBucket>,
    burst: u64,
    catch_up: std::time::Duration,
    worker: usize,
    workers: usize,
}

impl RateLimiter for Local {
    #[inline]
    fn acquire(&mut self, want: u32, now_ns: u64) -> Acquire {
        match &mut self.bucket {
            None => Acquire::Granted(want),
            Some(b) => b.acquire(want, now_ns),
        }
    }
    fn set_rate(&mut self, rate: Rate, now_ns: u64) {
        self.bucket = match rate {
            Rate::Max => None,
            Rate::PerSec(r) => Some(
                TokenBucket::for_worker(r, self.burst, self.worker, self.workers, now_ns)
                    .with_catch_up(self.catch_up),
            ),
        };
    }
    fn mode(&self) -> &'static str {
        if self.bucket.is_some() {
            "local"
        } else {
            "unlimited"
        }
    }
}

/// Builds the limiter a worker uses for a local (non-Redis) run.
pub fn local(
    rate: Rate,
    burst: u64,
    catch_up: std::time::Duration,
    worker: usize,
    workers: usize,
    now_ns: u64,
) -> Box<dyn RateLimiter> {
    let mut l = Local { bucket: None, burst, catch_up, worker, workers };
    l.set_rate(rate, now_ns);
    Box::new(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spate_core::clock::{Clock, FakeClock};

    fn nz(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).unwrap()
    }

    /// Drives `workers` buckets on a fake clock for `secs` seconds, the way the worker loop
    /// does (take up to `want`, otherwise sleep until told), and returns grant timestamps.
    fn simulate(rate: u64, burst: u64, workers: usize, secs: u64, want: u32) -> Vec<(u64, u32)> {
        let clock = FakeClock::new();
        let mut buckets: Vec<_> =
            (0..workers).map(|w| TokenBucket::for_worker(nz(rate), burst, w, workers, 0)).collect();
        let mut next = vec![0u64; workers];
        let end = secs * 1_000_000_000;
        let mut grants = Vec::new();
        loop {
            // Run the worker whose next wake-up is earliest.
            let (w, &t) = next.iter().enumerate().min_by_key(|(_, t)| **t).unwrap();
            if t >= end {
                break;
            }
            clock.set_ns(t);
            match buckets[w].acquire(want, clock.now_ns()) {
                Acquire::Granted(n) => grants.push((t, n)),
                Acquire::Wait { until_ns } => {
                    assert!(until_ns > t, "wait must move time forward");
                    next[w] = until_ns;
                }
            }
        }
        grants
    }

    #[test]
    fn exact_totals_over_ten_seconds() {
        for &(rate, workers) in
            &[(1u64, 1usize), (10, 2), (1_000, 2), (100_000, 2), (1_000_000, 2), (7, 3)]
        {
            let grants = simulate(rate, 0, workers, 10, 1024);
            let total: u64 = grants.iter().map(|g| u64::from(g.1)).sum();
            // Exact but for the final partial chunk (under 1 ms of events per worker) that was
            // not yet due as a whole when the 10 s ended.
            let chunk = (rate / workers as u64 / 1000).max(1);
            assert!(
                total <= rate * 10 && total + workers as u64 * chunk > rate * 10,
                "rate {rate} x{workers}: {total}"
            );
        }
    }

    #[test]
    fn no_window_above_twice_its_share() {
        for &rate in &[10u64, 1_000, 100_000, 1_000_000] {
            let grants = simulate(rate, 0, 2, 3, 1024);
            let win = 100_000_000u64;
            let mut counts = vec![0u64; 30];
            for (t, n) in grants {
                counts[(t / win) as usize] += u64::from(n);
            }
            let share = rate / 10;
            assert!(counts.iter().all(|&c| c <= 2 * share.max(1)), "rate {rate}: {counts:?}");
        }
    }

    #[test]
    fn high_rate_waits_in_chunks_not_per_event() {
        let grants = simulate(1_000_000, 0, 1, 1, 4096);
        // ~1 ms chunks: about 1000 grants per second, never one per event.
        assert!(grants.len() < 5_000, "{} grants", grants.len());
    }

    #[test]
    fn idle_credit_is_forgotten() {
        let mut b = TokenBucket::for_worker(nz(1000), 10, 0, 1, 0);
        // After a long stall only the bucket (1 + burst + 20 ms of catch-up) is available.
        assert_eq!(b.acquire(1_000_000, 60_000_000_000), Acquire::Granted(31));
        assert!(matches!(b.acquire(1, 60_000_000_000), Acquire::Wait { .. }));
    }

    #[test]
    fn local_switches_between_max_and_a_rate() {
        let nz = |n| Rate::PerSec(NonZeroU64::new(n).unwrap());
        let mut l = local(Rate::Max, 0, std::time::Duration::ZERO, 0, 1, 0);
        assert_eq!(l.acquire(1000, 0), Acquire::Granted(1000));
        l.set_rate(nz(10), 0);
        assert_eq!(l.acquire(1000, 0), Acquire::Granted(1));
        assert!(matches!(l.acquire(1000, 0), Acquire::Wait { .. }));
        l.set_rate(Rate::Max, 1);
        assert_eq!(l.acquire(1000, 1), Acquire::Granted(1000));
    }

    #[test]
    fn set_rate_restarts_schedule() {
        let mut b = TokenBucket::for_worker(nz(10), 0, 0, 1, 0);
        assert_eq!(b.acquire(100, 0), Acquire::Granted(1));
        b.set_rate(Rate::PerSec(nz(1000)), 1_000_000_000);
        assert_eq!(b.acquire(100, 1_010_000_000), Acquire::Granted(11));
    }

    /// After a stall the bucket makes up to `catch_up` of missed schedule at once, and forgets
    /// the rest: 10,000/s with 1 s of catch-up gives 8,000 after a 0.8 s stall, and 10,000 (not
    /// 30,000) after a 3 s one; with catch-up off only a chunk (1 ms worth) is made up.
    #[test]
    fn catch_up_makes_up_a_bounded_stall() {
        let rate = NonZeroU64::new(10_000).unwrap();
        let ms = 1_000_000u64;
        let drain = |b: &mut TokenBucket, now: u64| {
            let mut got = 0u64;
            while let Acquire::Granted(n) = b.acquire(1 << 20, now) {
                got += u64::from(n);
            }
            got
        };
        let mut b = TokenBucket::for_worker(rate, 0, 0, 1, 0)
            .with_catch_up(std::time::Duration::from_secs(1));
        drain(&mut b, 0);
        assert_eq!(drain(&mut b, 800 * ms), 8_000, "a 0.8 s stall is made up");
        assert_eq!(
            drain(&mut b, 3_800 * ms),
            10_000 + 1,
            "a 3 s stall: 1 s made up (plus the bucket's one token)"
        );
        let mut off =
            TokenBucket::for_worker(rate, 0, 0, 1, 0).with_catch_up(std::time::Duration::ZERO);
        drain(&mut off, 0);
        assert_eq!(
            drain(&mut off, 800 * ms),
            10 + 1,
            "catch-up off: one chunk (1 ms) and the bucket's token"
        );
    }
}
