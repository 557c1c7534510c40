//! Helpers shared by the integration tests. Tests wait for conditions, never for a fixed time:
//! a sleep long enough on a loaded machine is wasted on an idle one, and still not enough on a
//! busier one.

use std::time::{Duration, Instant};

/// Polls `f` every 50 ms until it returns Some, for at most `limit`; panics naming `what` then.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
