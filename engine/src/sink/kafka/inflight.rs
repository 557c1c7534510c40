//! The in-flight window: how many records the sink lets wait in librdkafka for their ack.
//!
//! librdkafka queues whatever it is given (up to `queue.buffering.max.*`); at full speed that
//! queue grows until about a second of records waits in it, and every record's ack waits that
//! long. Throughput does not need it: a broker acks at its own pace once enough records are in
//! flight to fill its batches. The window keeps just that many, in the manner of TCP Vegas: it
//! grows while the ack latency stays near the lowest latency observed lately, and shrinks when
//! latency climbs above it, which is the sign of a queue building.
//!
//! Every decision interval (100 ms, with the batcher's), from the interval's mean ack latency
//! `rtt` and the lowest interval mean of the last [`BASE_INTERVALS`] intervals `base`:
//! - `rtt > max(TOLERANCE × base, base + SLACK)`: a queue is building:
//!   `limit = max(MIN, limit × DECREASE)`;
//! - else, if the window was at least half used in the interval (a window the run does not
//!   fill says nothing about the broker): `limit = min(MAX, limit + max(limit / 8, 64))`;
//! - no acks in the interval (an outage, or a paused run): no change. The window never fights
//!   the breaker: while the breaker is not closed it is frozen, and the lowest-latency memory
//!   is cleared, so the window starts from fresh figures when the broker is back.

/// Fewest records the window allows: enough for librdkafka to fill a batch.
pub const MIN: u64 = 2_048;
/// Most records the window allows (librdkafka's own queue holds 1,000,000).
pub const MAX: u64 = 1_000_000;
/// Where the window starts. Measured against `spate broker` on this 2-core machine, 1M events
/// at max rate: 32,768 gave p99 ack 208-417 ms, 8,192 gave 68-94 ms at the same throughput,
/// 4,096 lost a quarter of the throughput.
pub const INITIAL: u64 = 8_192;
/// Latency up to this many times the observed minimum counts as "near the minimum".
/// Measured against `spate broker` (5M events, headers, median of 3): tighter bands (grow
/// below 1.25x or 1.5x, shrink above 1.5x) took the window to its floor and cost 40-50 % of
/// the throughput, because the minimum is taken while the queue is still short; with 2x the
/// window settles at 20-50k records (992k events/s, p99 68 ms) where a fixed 8,192
/// (`kafka.inflight_records`) gave 1.05M events/s at p99 33 ms (docs/benchmarks.md).
pub const TOLERANCE: f64 = 2.0;
/// ...or up to this much above it (ns): on a fast broker twice a tiny minimum is noise.
pub const SLACK_NS: u64 = 5_000_000;
/// Multiplicative decrease when a queue builds.
pub const DECREASE: f64 = 0.75;
/// Intervals whose lowest mean latency is the base (3 s at 100 ms).
pub const BASE_INTERVALS: usize = 30;

/// The number of records the Kafka sink lets wait for their ack, adjusted every interval.
#[derive(Debug, Clone)]
pub struct InflightWindow {
    limit: u64,
    /// A window fixed by configuration (`kafka.inflight_records`): never moves.
    fixed: bool,
    /// Lowest mean latency of each recent interval, a ring of `BASE_INTERVALS`.
    recent: [u64; BASE_INTERVALS],
    next: usize,
    sum_ns: u128,
    n: u64,
    peak: u64,
}

impl Default for InflightWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl InflightWindow {
    /// A moving window starting at [`INITIAL`] records.
    pub fn new() -> Self {
        Self {
            limit: INITIAL,
            fixed: false,
            recent: [u64::MAX; BASE_INTERVALS],
            next: 0,
            sum_ns: 0,
            n: 0,
            peak: 0,
        }
    }

    /// A window that stays at `limit` records.
    pub fn fixed(limit: u64) -> Self {
        Self { limit, fixed: true, ..Self::new() }
    }

    /// Records allowed in flight now.
    #[inline]
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Acks observed since the last call: total latency and count.
    pub fn observe(&mut self, sum_ns: u128, n: u64) {
        self.sum_ns += sum_ns;
        self.n += n;
    }

    /// Notes how many records are in flight (the interval's peak says whether the window was
    /// used).
    #[inline]
    pub fn note_in_flight(&mut self, in_flight: u64) {
        self.peak = self.peak.max(in_flight);
    }

    /// Decides the limit for the next interval; `breaker_closed` false freezes it.
    pub fn decide(&mut self, breaker_closed: bool) -> u64 {
        let (sum, n, peak) = (self.sum_ns, self.n, self.peak);
        self.sum_ns = 0;
        self.n = 0;
        self.peak = 0;
        if !breaker_closed {
            self.recent = [u64::MAX; BASE_INTERVALS];
            return self.limit;
        }
        if self.fixed {
            return self.limit;
        }
        if n == 0 {
            return self.limit;
        }
        let rtt = (sum / u128::from(n)) as u64;
        self.recent[self.next] = rtt;
        self.next = (self.next + 1) % BASE_INTERVALS;
        let base = self.recent.iter().copied().min().unwrap_or(rtt);
        let near = ((base as f64 * TOLERANCE) as u64).max(base.saturating_add(SLACK_NS));
        if rtt > near {
            self.limit = ((self.limit as f64 * DECREASE) as u64).max(MIN);
        } else if peak * 2 >= self.limit {
            self.limit = (self.limit + (self.limit / 8).max(64)).min(MAX);
        }
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u128 = 1_000_000;

    fn interval(w: &mut InflightWindow, rtt_ms: u128, in_flight: u64) -> u64 {
        w.observe(rtt_ms * MS * 100, 100);
        w.note_in_flight(in_flight);
        w.decide(true)
    }

    #[test]
    fn grows_while_latency_stays_near_its_minimum_and_the_window_is_used() {
        let mut w = InflightWindow::new();
        let mut last = w.limit();
        for _ in 0..20 {
            let l = interval(&mut w, 3, last);
            assert!(l > last || l == MAX, "{l} after {last}");
            last = l;
        }
        // A window the run does not fill does not grow.
        let l = interval(&mut w, 3, 10);
        assert_eq!(l, last);
    }

    #[test]
    fn shrinks_when_latency_climbs_and_never_below_min() {
        let mut w = InflightWindow::new();
        interval(&mut w, 4, INITIAL);
        let before = w.limit();
        let after = interval(&mut w, 40, before);
        assert_eq!(after, (before as f64 * DECREASE) as u64);
        // Within the base's memory (3 s) a lasting climb takes the window to its floor.
        for _ in 0..20 {
            interval(&mut w, 400, MAX);
        }
        assert_eq!(w.limit(), MIN);
        // Once the low figures have aged out, the higher latency is the new normal (a slower
        // path, not a queue) and the window may grow again.
        for _ in 0..BASE_INTERVALS {
            interval(&mut w, 400, MAX);
        }
        assert!(interval(&mut w, 400, MAX) > MIN);
    }

    #[test]
    fn a_small_rise_on_a_fast_broker_is_noise() {
        let mut w = InflightWindow::new();
        interval(&mut w, 1, INITIAL);
        let l = w.limit();
        // 1 ms -> 5 ms is 5x the minimum but within the 5 ms slack: grows.
        assert!(interval(&mut w, 5, l) > l);
    }

    #[test]
    fn frozen_while_the_breaker_is_not_closed_and_without_acks() {
        let mut w = InflightWindow::new();
        interval(&mut w, 2, INITIAL);
        let l = w.limit();
        w.observe(500 * MS, 1);
        w.note_in_flight(MAX);
        assert_eq!(w.decide(false), l, "breaker open: frozen");
        assert_eq!(w.decide(true), l, "no acks: no change");
        // After the outage the old minimum is forgotten: a higher latency is the new base.
        assert!(interval(&mut w, 30, l) > l);
    }

    #[test]
    fn a_fixed_window_never_moves() {
        let mut w = InflightWindow::fixed(20_000);
        for rtt in [1, 100, 1, 100] {
            w.observe(rtt * MS, 1);
            w.note_in_flight(20_000);
            assert_eq!(w.decide(true), 20_000);
        }
    }
}
