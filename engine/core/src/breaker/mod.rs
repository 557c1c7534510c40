//! Circuit breaker (CLOSED / OPEN / HALF_OPEN), after Resilience4j's count-based sliding window.
//!
//! Split in two so the hot path stays lock-free:
//! - `Breaker` is shared: the state is one `AtomicU8`. Workers read it once per batch
//!   (`Acquire`, pairing with the recorder's `Release` store on a transition, so a worker that
//!   sees OPEN also sees the transition count and open time written before it).
//! - `BreakerWindow` is owned by the one thread that observes outcomes (Kafka's flush thread,
//!   Redis's lease thread): plain fields, no atomics. It records each call's outcome in a ring of
//!   the last `window` calls and decides transitions:
//!   - CLOSED -> OPEN when at least `min_calls` are in the window and the failure rate or the
//!     slow-call rate reaches its threshold;
//!   - OPEN -> HALF_OPEN after `open_wait`;
//!   - HALF_OPEN -> CLOSED after `half_open_calls` trial calls succeed, -> OPEN on a failure
//!     or a slow trial.
//!
//! The window also remembers why the state last changed; its owner takes that with
//! `take_transition` and logs it, off the workers' path.

mod config;
mod report;
mod state;
mod window;

pub use config::{BreakerConfig, RawBreaker};
pub use report::BreakerReporter;
pub use state::{Breaker, State, Transition};
pub use window::BreakerWindow;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            window: 10,
            min_calls: 5,
            failure_rate: 0.5,
            slow_call: Duration::from_millis(100),
            slow_rate: 0.5,
            open_wait: Duration::from_millis(500),
            half_open_calls: 3,
        }
    }

    #[test]
    fn opens_on_failure_rate_after_min_calls() {
        let b = Breaker::new();
        let mut w = BreakerWindow::new(cfg());
        for _ in 0..4 {
            w.record(&b, true, Duration::ZERO, 0);
        }
        assert_eq!(b.state(), State::Closed, "below min_calls");
        w.record(&b, true, Duration::ZERO, 0);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.opened(), 1);
    }

    #[test]
    fn stays_closed_below_threshold() {
        let b = Breaker::new();
        let mut w = BreakerWindow::new(cfg());
        for i in 0..100 {
            w.record(&b, i % 3 == 0, Duration::ZERO, 0);
        }
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn opens_on_slow_calls() {
        let b = Breaker::new();
        let mut w = BreakerWindow::new(cfg());
        for _ in 0..5 {
            w.record(&b, false, Duration::from_millis(200), 0);
        }
        assert_eq!(b.state(), State::Open);
        let why = w.take_transition(&b).expect("opened").why;
        assert_eq!(why, "5 of the last 5 calls took 100ms or more");
    }

    #[test]
    fn half_open_then_closed_or_reopened() {
        let b = Breaker::new();
        let mut w = BreakerWindow::new(cfg());
        w.force_open(&b, 0, "test");
        w.tick(&b, 100 * MS);
        assert_eq!(b.state(), State::Open, "still waiting");
        w.tick(&b, 500 * MS);
        assert_eq!(b.state(), State::HalfOpen);
        w.record(&b, true, Duration::ZERO, 600 * MS);
        assert_eq!(b.state(), State::Open, "failed trial reopens");
        w.tick(&b, 1100 * MS);
        assert_eq!(b.state(), State::HalfOpen);
        for _ in 0..3 {
            w.record(&b, false, Duration::ZERO, 1200 * MS);
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.transitions(), 5);
    }

    #[test]
    fn transitions_are_taken_once_with_their_reason() {
        let b = Breaker::new();
        let mut w = BreakerWindow::new(cfg());
        assert_eq!(w.take_transition(&b), None);
        for _ in 0..5 {
            w.record(&b, true, Duration::ZERO, 0);
        }
        let t = w.take_transition(&b).expect("opened");
        assert_eq!((t.from, t.to), (State::Closed, State::Open));
        assert!(t.why.contains("5 of the last 5 calls failed"), "{}", t.why);
        assert_eq!(w.take_transition(&b), None, "taken once");
        w.tick(&b, 500 * MS);
        for _ in 0..3 {
            w.record(&b, false, Duration::ZERO, 600 * MS);
        }
        let t = w.take_transition(&b).expect("recovered");
        assert_eq!((t.from, t.to), (State::Open, State::Closed), "half_open in between is folded");
        assert!(t.why.contains("3 trial call(s) succeeded"), "{}", t.why);
        // Out and back between two takes: no change to report.
        w.force_open(&b, 700 * MS, "forced");
        w.record(&b, false, Duration::ZERO, 800 * MS);
        w.record(&b, false, Duration::ZERO, 800 * MS);
        w.record(&b, false, Duration::ZERO, 800 * MS);
        assert_eq!(b.state(), State::Closed);
        assert_eq!(w.take_transition(&b), None);
    }

    /// Stress: while one thread flips the breaker through every state, readers on other
    /// threads see only valid states (`from_u8` panics on any other byte), see each of the three
    /// states, and, having seen a state other than CLOSED, also see the transition counter that
    /// was incremented before it was published (`set`'s Release pairs with `state`'s Acquire).
    #[test]
    fn concurrent_readers_see_valid_states() {
        use std::sync::atomic::{AtomicBool, AtomicU8};
        use std::sync::Arc;
        let b = Arc::new(Breaker::new());
        let stop = Arc::new(AtomicBool::new(false));
        // Bit `state` set once a reader has seen that state.
        let masks: Arc<[AtomicU8; 2]> = Arc::new([AtomicU8::new(0), AtomicU8::new(0)]);
        let readers: Vec<_> = (0..2)
            .map(|i| {
                let (b, stop, masks) = (b.clone(), stop.clone(), masks.clone());
                std::thread::spawn(move || {
                    let mut last_t = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let s = b.state();
                        let t = b.transitions();
                        assert!(
                            s == State::Closed || t >= 1,
                            "saw {s:?} before its transition was counted"
                        );
                        assert!(t >= last_t, "the transition count went back: {t} < {last_t}");
                        last_t = t;
                        masks[i].fetch_or(1 << s as u8, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut w = BreakerWindow::new(cfg());
        // Flip until both readers have seen every state, with a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let all_seen = || masks.iter().all(|m| m.load(Ordering::Relaxed) == 0b111);
        let mut cycles = 0u64;
        while !all_seen() && std::time::Instant::now() < deadline {
            for _ in 0..100 {
                let t0 = cycles * 1000 * MS;
                w.force_open(&b, t0, "test");
                w.tick(&b, t0 + 600 * MS);
                for _ in 0..3 {
                    w.record(&b, false, Duration::ZERO, t0 + 700 * MS);
                }
                cycles += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        let seen: Vec<u8> = masks.iter().map(|m| m.load(Ordering::Relaxed)).collect();
        assert!(
            all_seen(),
            "a reader missed a state within 20 s (bits closed/open/half_open): {seen:?}"
        );
        assert_eq!(b.transitions(), 3 * cycles);
    }
}
