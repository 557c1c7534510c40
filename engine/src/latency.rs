//! Produce-to-ack latency in an HDR histogram. The flush thread records into its own
//! histogram (plain `&mut`, no lock) and merges it into the shared one a few times a second;
//! status, metrics and the summary read the shared one.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// Latencies recorded.
    pub count: u64,
    /// Median, in ms.
    pub p50: f64,
    /// 99th percentile, in ms.
    pub p99: f64,
    /// 99.9th percentile, in ms.
    pub p999: f64,
    /// Largest latency recorded, in ms.
    pub max: f64,
}

/// Microsecond resolution, 1 µs to 1 hour, 3 significant digits.
pub struct LatencyStats {
    hist: Histogram<u64>,
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyStats {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid"),
        }
    }

    /// Records one latency of `ns` nanoseconds (at least 1 µs).
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record((ns / 1000).max(1));
    }

    /// Adds `other`'s latencies to these and empties `other`.
    pub fn merge_from(&mut self, other: &mut LatencyStats) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.hist.add(&other.hist);
        other.hist.reset();
    }

    /// Latencies recorded.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// Whether no latency has been recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// The percentiles in ms, or `None` before any latency is recorded.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.hist.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            count: self.hist.len(),
            p50: ms(self.hist.value_at_quantile(0.50)),
            p99: ms(self.hist.value_at_quantile(0.99)),
            p999: ms(self.hist.value_at_quantile(0.999)),
            max: ms(self.hist.max()),
        })
    }

    /// Cumulative bucket counts at the given upper bounds (seconds) for a Prometheus histogram.
    pub fn cumulative(&self, bounds_s: &[f64]) -> Vec<u64> {
        bounds_s.iter().map(|b| self.hist.count_between(0, (b * 1e6) as u64)).collect()
    }

    /// Sum of all recorded values in seconds (approximate, from bucket midpoints).
    pub fn sum_s(&self) -> f64 {
        self.hist
            .iter_recorded()
            .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
            .sum::<f64>()
            / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_merge() {
        let mut local = LatencyStats::new();
        for i in 1..=1000u64 {
            local.record_ns(i * 1_000_000);
        }
        let mut shared = LatencyStats::new();
        shared.merge_from(&mut local);
        assert!(local.is_empty());
        let p = shared.percentiles().unwrap();
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 500.0).abs() < 2.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() < 3.0, "{p:?}");
        assert!((p.max - 1000.0).abs() < 2.0, "{p:?}");
    }
}
