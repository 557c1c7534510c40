//! Injectable monotonic clock (as in governor's `clock.rs`): the limiter and the workers ask
//! a `Clock` for "now" in nanoseconds, so tests drive time by hand instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic nanoseconds since an arbitrary origin fixed when the clock was made.
pub trait Clock: Send + Sync + 'static {
    /// Now, in nanoseconds since the clock's origin.
    fn now_ns(&self) -> u64;
    /// Waits until `deadline_ns` (or returns at once if it has passed).
    fn sleep_until(&self, deadline_ns: u64);
}

/// The real clock: `Instant` (CLOCK_MONOTONIC via the vDSO: no syscall).
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
    fn sleep_until(&self, deadline_ns: u64) {
        let now = self.now_ns();
        if deadline_ns > now {
            std::thread::sleep(Duration::from_nanos(deadline_ns - now));
        }
    }
}

/// A clock that only moves when told to. `sleep_until` jumps time forward, so a limiter
/// driven by it behaves as if it had slept exactly as long as it asked.
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    now: Arc<AtomicU64>,
}

impl FakeClock {
    /// A clock at 0 that moves only when told.
    pub fn new() -> Self {
        Self::default()
    }
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
    /// Sets the clock to `ns`.
    pub fn set_ns(&self, ns: u64) {
        self.now.store(ns, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
    fn sleep_until(&self, deadline_ns: u64) {
        self.now.fetch_max(deadline_ns, Ordering::SeqCst);
    }
}

/// Maps monotonic nanoseconds to Unix-epoch nanoseconds for event timestamps. Taken once at
/// start, so events never read the wall clock themselves.
#[derive(Debug, Clone, Copy)]
pub struct WallAnchor {
    unix_ns_at_zero: u64,
}

impl WallAnchor {
    /// Anchors `clock`'s time to the wall clock now.
    pub fn new(clock: &dyn Clock) -> Self {
        let unix =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        Self { unix_ns_at_zero: unix.saturating_sub(clock.now_ns()) }
    }
    /// Unix time in ns of monotonic time `mono_ns`.
    #[inline]
    pub fn unix_ns(&self, mono_ns: u64) -> u64 {
        self.unix_ns_at_zero + mono_ns
    }
}
