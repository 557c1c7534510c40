//! Property tests of the local token bucket's windows: whatever the callers ask and whenever,
//! no window of time sees more events than the rate allows (plus the bucket and the catch-up
//! credit), and a caller that waits as told is served.

use std::num::NonZeroU64;
use std::time::Duration;

use proptest::prelude::*;
use spate_limit::local::TokenBucket;
use spate_limit::{Acquire, RateLimiter};

const NS: u128 = 1_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every window [a, b] of a run holds at most rate x (b - a) + 1 + burst + catch-up events
    /// (+ 1 for the rounding of the two ends),
    /// and a `Wait` answer names a time at which the next ask is granted.
    #[test]
    fn no_window_sees_more_than_the_rate_allows(
        rate in 1u64..2_000_000,
        burst in 0u64..64,
        catch_up_ms in 0u64..50,
        steps in prop::collection::vec((0u64..5_000_000, 1u32..4096, any::<bool>()), 1..300),
    ) {
        let start = 1_000_000_000u64;
        let mut b = TokenBucket::for_worker(NonZeroU64::new(rate).unwrap(), burst, 0, 1, start)
            .with_catch_up(Duration::from_millis(catch_up_ms));
        let credit = {
            // The catch-up credit in tokens, as the bucket computes it (at least one chunk).
            let chunk = (rate / 1000).max(1);
            ((u128::from(rate) * u128::from(catch_up_ms) * 1_000_000 / NS) as u64).max(chunk)
        };
        let mut now = start;
        let mut grants: Vec<(u64, u64)> = Vec::new();
        for (advance, want, obey) in steps {
            now += advance;
            match b.acquire(want, now) {
                Acquire::Granted(n) => {
                    prop_assert!(n >= 1 && n <= want);
                    grants.push((now, u64::from(n)));
                }
                Acquire::Wait { until_ns } => {
                    prop_assert!(until_ns > now, "a wait until {until_ns} at {now}");
                    if obey {
                        now = until_ns;
                        match b.acquire(want, now) {
                            Acquire::Granted(n) => grants.push((now, u64::from(n))),
                            Acquire::Wait { until_ns: again } => prop_assert!(false, "waited until {now} as told, then told to wait until {again}"),
                        }
                    }
                }
            }
        }
        // Every window between two grant times.
        for i in 0..grants.len() {
            let mut sum = 0u64;
            for &(t, n) in &grants[i..] {
                sum += n;
                let span = u128::from(t - grants[i].0);
                let max = (span * u128::from(rate) / NS) as u64 + 2 + burst + credit;
                prop_assert!(sum <= max, "{sum} events in {span} ns at {rate}/s (burst {burst}, credit {credit}): max {max}");
            }
        }
        // And the run as a whole: never ahead of the schedule from its start.
        let total: u64 = grants.iter().map(|g| g.1).sum();
        let allowed = (u128::from(now - start) * u128::from(rate) / NS) as u64 + 1 + burst;
        prop_assert!(total <= allowed, "{total} events by {} ns: allowed {allowed}", now - start);
    }
}
