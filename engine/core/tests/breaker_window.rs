//! Property tests of the breaker's sliding window against a plain model: the breaker opens on
//! the call that makes the last `window` calls (at least `min_calls` of them) fail or run slow
//! at the configured rates, not before; while open it ignores failures; after `open_wait` it
//! lets trials through, and `half_open_calls` successes close it with an empty window.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use spate_core::breaker::{Breaker, BreakerConfig, BreakerWindow, State};

/// One call: failed, slow.
fn call() -> impl Strategy<Value = (bool, bool)> {
    (prop::bool::weighted(0.3), prop::bool::weighted(0.2))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_window_opens_exactly_when_the_model_says(
        window in 1usize..40,
        min_frac in 0.0f64..=1.0,
        // Shares in twentieths, so windows that sit exactly on a threshold are common.
        failure_rate in (1u32..=20).prop_map(|k| f64::from(k) / 20.0),
        slow_rate in (1u32..=20).prop_map(|k| f64::from(k) / 20.0),
        half_open_calls in 1usize..5,
        calls in prop::collection::vec(call(), 1..400),
    ) {
        let min_calls = ((window as f64 * min_frac) as usize).clamp(1, window);
        let cfg = BreakerConfig {
            window,
            min_calls,
            failure_rate,
            slow_call: Duration::from_millis(100),
            slow_rate,
            open_wait: Duration::from_secs(1),
            half_open_calls,
        };
        let b = Breaker::new();
        let mut w = BreakerWindow::new(cfg);
        let mut model: VecDeque<(bool, bool)> = VecDeque::new();
        let mut now = 0u64;
        let mut trials = 0;
        for (failed, slow) in calls {
            now += 10_000_000;
            w.tick(&b, now);
            let took = if slow { Duration::from_millis(150) } else { Duration::from_millis(1) };
            let before = b.state();
            w.record(&b, failed, took, now);
            match before {
                State::Closed => {
                    model.push_back((failed, slow));
                    if model.len() > window {
                        model.pop_front();
                    }
                    let n = model.len() as f64;
                    let f = model.iter().filter(|c| c.0).count() as f64;
                    let s = model.iter().filter(|c| c.1).count() as f64;
                    let opens = model.len() >= min_calls && (f / n >= failure_rate || s / n >= slow_rate);
                    prop_assert_eq!(b.state(), if opens { State::Open } else { State::Closed }, "window {:?}", model);
                    if opens {
                        model.clear();
                    }
                }
                State::Open => {
                    // A success while open starts the trials; anything else is ignored.
                    let expect = if failed || slow {
                        State::Open
                    } else if half_open_calls == 1 {
                        State::Closed
                    } else {
                        State::HalfOpen
                    };
                    prop_assert_eq!(b.state(), expect);
                    trials = usize::from(expect == State::HalfOpen);
                }
                State::HalfOpen => {
                    if failed || slow {
                        prop_assert_eq!(b.state(), State::Open);
                    } else {
                        trials += 1;
                        let expect = if trials >= half_open_calls { State::Closed } else { State::HalfOpen };
                        prop_assert_eq!(b.state(), expect);
                    }
                }
            }
            if before != State::Closed && b.state() == State::Closed {
                // Closing starts from an empty window.
                model.clear();
            }
            if b.state() == State::Open {
                trials = 0;
            }
        }
    }
}
