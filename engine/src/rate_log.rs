//! Rate-limited warnings to stderr, per call site (after Quickwit's `rate_limited_tracing`):
//! a failing hot loop cannot flood the terminal. At most one line per site per 5 s, with a
//! count of what was suppressed.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

static SITES: Mutex<Option<HashMap<&'static str, (Instant, u64)>>> = Mutex::new(None);
const EVERY: Duration = Duration::from_secs(5);

/// Prints `msg` unless `site` printed within the last 5 s (then only counts it).
pub fn warn(site: &'static str, msg: &str) {
    let mut g = SITES.lock();
    let map = g.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    match map.get_mut(site) {
        Some((last, suppressed)) if now.duration_since(*last) < EVERY => *suppressed += 1,
        Some((last, suppressed)) => {
            eprintln!("spate: warning: {msg} ({} similar suppressed)", *suppressed);
            *last = now;
            *suppressed = 0;
        }
        None => {
            eprintln!("spate: warning: {msg}");
            map.insert(site, (now, 0));
        }
    }
}
