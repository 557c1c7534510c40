//! Adaptive batch size: AIMD (additive increase, multiplicative decrease, the TCP congestion
//! control law, also Netflix concurrency-limits' `AIMDLimit`) driven by produce-to-ack latency
//! and the producer's queue depth.
//!
//! Every decision interval (100 ms, on the flush thread):
//! - if the mean ack latency of the interval is above the target, or the producer queue grew
//!   for three intervals in a row: size = max(min, size * 0.5) (back off hard);
//! - else if acks are fast (below half the target): size = min(max, size + step) (probe up);
//! - otherwise hold.
//!
//! Larger batches cost fewer ring operations, limiter calls and clock reads per event; smaller
//! ones wait less before being handed to the producer. Workers read the size once per batch.

use std::time::Duration;

/// The adaptive batch size, decided every interval from ack latency and queue depth.
#[derive(Debug, Clone)]
pub struct Aimd {
    size: usize,
    min: usize,
    max: usize,
    step: usize,
    target_ns: u64,
    sum_ns: u128,
    n: u64,
    last_queue: u64,
    growing: u32,
}

impl Aimd {
    /// Starts at a quarter of `max` (at least 64, or `max` if smaller), steering ack latency under
    /// `target`.
    pub fn new(max: usize, target: Duration) -> Self {
        let max = max.max(1);
        let min = 64.min(max);
        Self {
            size: (max / 4).max(min),
            min,
            max,
            step: (max / 16).max(1),
            target_ns: target.as_nanos() as u64,
            sum_ns: 0,
            n: 0,
            last_queue: 0,
            growing: 0,
        }
    }

    /// Adds acks observed since the last call: total latency and count.
    pub fn observe(&mut self, sum_ns: u128, n: u64) {
        self.sum_ns += sum_ns;
        self.n += n;
    }

    /// Decides the batch size for the next interval given the producer queue depth now.
    pub fn decide(&mut self, queue: u64) -> usize {
        self.growing = if queue > self.last_queue && queue > 0 { self.growing + 1 } else { 0 };
        self.last_queue = queue;
        let mean = if self.n > 0 { (self.sum_ns / u128::from(self.n)) as u64 } else { 0 };
        let have = self.n > 0;
        self.sum_ns = 0;
        self.n = 0;
        if (have && mean > self.target_ns) || self.growing >= 3 {
            self.size = (self.size / 2).max(self.min);
            self.growing = 0;
        } else if have && mean < self.target_ns / 2 {
            self.size = (self.size + self.step).min(self.max);
        }
        self.size
    }

    /// The batch size decided last.
    pub fn size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u128 = 1_000_000;

    #[test]
    fn grows_while_fast_and_halves_when_slow() {
        let mut a = Aimd::new(1024, Duration::from_millis(50));
        let start = a.size();
        for _ in 0..100 {
            a.observe(10 * MS * 100, 100);
            a.decide(0);
        }
        assert_eq!(a.size(), 1024, "grows to the max while acks are fast");
        a.observe(200 * MS * 10, 10);
        assert_eq!(a.decide(0), 512, "halves when latency passes the target");
        a.observe(40 * MS, 1);
        assert_eq!(a.decide(0), 512, "holds between half the target and the target");
        assert!(start < 1024);
    }

    #[test]
    fn backs_off_when_queue_keeps_growing() {
        let mut a = Aimd::new(1024, Duration::from_millis(50));
        let s = a.size();
        a.decide(10);
        a.decide(20);
        assert_eq!(a.decide(30), s / 2);
    }

    #[test]
    fn never_below_min() {
        let mut a = Aimd::new(1024, Duration::from_millis(1));
        for _ in 0..50 {
            a.observe(100 * MS, 1);
            a.decide(0);
        }
        assert_eq!(a.size(), 64);
    }
}
