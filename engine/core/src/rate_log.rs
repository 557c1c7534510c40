//! Rate-limited warnings per call site (after Quickwit's `rate_limited_tracing`): a failing hot
//! loop cannot flood the log. At most one event per site per 5 s, carrying the count of what
//! was suppressed since the last one. Events go through `tracing` (target `spate`); the binary
//! decides where they are written, and a closed or full stderr never stops the caller (see the
//! binary's `logs.rs`).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

static SITES: Mutex<Option<HashMap<&'static str, (Instant, u64)>>> = Mutex::new(None);
const EVERY: Duration = Duration::from_secs(5);

/// Logs `msg` as a warning unless `site` logged within the last 5 s (then only counts it).
pub fn warn(site: &'static str, msg: &str) {
    let suppressed = {
        let mut g = SITES.lock();
        let map = g.get_or_insert_with(HashMap::new);
        let now = Instant::now();
        match map.get_mut(site) {
            Some((last, suppressed)) if now.duration_since(*last) < EVERY => {
                *suppressed += 1;
                return;
            }
            Some((last, suppressed)) => {
                *last = now;
                std::mem::take(suppressed)
            }
            None => {
                map.insert(site, (now, 0));
                0
            }
        }
    };
    if suppressed > 0 {
        tracing::warn!(target: "spate", site, suppressed, "{msg} ({suppressed} similar suppressed)");
    } else {
        tracing::warn!(target: "spate", site, "{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_speaks_once_per_interval() {
        // No subscriber: events go nowhere; the counting is what is checked.
        warn("rate_log_test", "first");
        warn("rate_log_test", "second");
        warn("rate_log_test", "third");
        let g = SITES.lock();
        assert_eq!(g.as_ref().and_then(|m| m.get("rate_log_test")).map(|s| s.1), Some(2));
    }
}
