//! Support for spate's benchmarks and soak runs: process resource sampling (RSS, CPU time)
//! and time-window counting, shared by the `spate-bench` binary.

use std::time::{Duration, Instant};

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// User + system CPU seconds used by this process so far (`/proc/self/stat`, clock ticks).
pub fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; here indexes 11 and 12 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Samples a counter on a fixed grid of absolute deadlines, so sampling drift does not
/// accumulate, and returns the count in each window.
pub fn sample_windows(
    mut read: impl FnMut() -> u64,
    window: Duration,
    total: Duration,
    mut stop: impl FnMut() -> bool,
) -> Vec<u64> {
    let start = Instant::now();
    let mut last = read();
    let mut out = Vec::new();
    let mut k = 1u32;
    while start.elapsed() < total && !stop() {
        let due = start + window * k;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let v = read();
        out.push(v - last);
        last = v;
        k += 1;
    }
    out
}

/// p-quantile of a sorted slice.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
