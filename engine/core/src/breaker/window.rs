//! The recording side of a breaker: the sliding window of calls and its transitions.

use std::time::Duration;

use super::config::BreakerConfig;
use super::state::{Breaker, State, Transition};

/// The recording side, owned by one thread.
#[derive(Debug)]
pub struct BreakerWindow {
    cfg: BreakerConfig,
    /// Ring of (failed, slow) outcomes.
    calls: Vec<(bool, bool)>,
    next: usize,
    filled: usize,
    failures: usize,
    slows: usize,
    opened_at_ns: u64,
    trials: usize,
    /// The state before the first change not yet taken, and why the state last changed.
    changed: Option<(State, String)>,
}

impl BreakerWindow {
    /// An empty window judged by `cfg`.
    pub fn new(cfg: BreakerConfig) -> Self {
        let w = cfg.window.max(1);
        Self {
            cfg,
            calls: vec![(false, false); w],
            next: 0,
            filled: 0,
            failures: 0,
            slows: 0,
            opened_at_ns: 0,
            trials: 0,
            changed: None,
        }
    }

    fn reset_window(&mut self) {
        self.next = 0;
        self.filled = 0;
        self.failures = 0;
        self.slows = 0;
    }

    /// Moves `b` to `to` and remembers why, for `take_transition`.
    fn set(&mut self, b: &Breaker, to: State, why: String) {
        match &mut self.changed {
            Some((_, last)) => *last = why,
            None => self.changed = Some((b.state(), why)),
        }
        b.set(to);
    }

    /// The change of state since the last call, if the state is not what it was then. Changes
    /// in between are folded into one (closed -> open -> half_open reads closed -> half_open,
    /// with the last reason).
    pub fn take_transition(&mut self, b: &Breaker) -> Option<Transition> {
        let (from, why) = self.changed.take()?;
        let to = b.state();
        (from != to).then_some(Transition { from, to, why })
    }

    /// Time-driven transition OPEN -> HALF_OPEN; call regularly.
    pub fn tick(&mut self, b: &Breaker, now_ns: u64) {
        if b.state() == State::Open
            && now_ns.saturating_sub(self.opened_at_ns) >= self.cfg.open_wait.as_nanos() as u64
        {
            self.trials = 0;
            self.set(
                b,
                State::HalfOpen,
                format!("open for {:?}: letting trial calls through", self.cfg.open_wait),
            );
        }
    }

    /// Records one call: `failed`, and its duration.
    pub fn record(&mut self, b: &Breaker, failed: bool, took: Duration, now_ns: u64) {
        let slow = took >= self.cfg.slow_call;
        match b.state() {
            // A late success while OPEN (a call made before opening that the recovered
            // service has now answered) is evidence of recovery: start the trials at once
            // instead of waiting out `open_wait`. Failures while OPEN are ignored.
            State::Open if !failed && !slow => {
                self.trials = 1;
                self.set(b, State::HalfOpen, "a call succeeded while open".into());
                if self.trials >= self.cfg.half_open_calls {
                    self.reset_window();
                    self.set(b, State::Closed, "a call succeeded while open".into());
                }
            }
            State::Open => {}
            State::HalfOpen => {
                if failed || slow {
                    let why = if failed {
                        "a trial call failed".to_string()
                    } else {
                        format!("a trial call took {took:?}")
                    };
                    self.open(b, now_ns, why);
                } else {
                    self.trials += 1;
                    if self.trials >= self.cfg.half_open_calls {
                        self.reset_window();
                        self.set(
                            b,
                            State::Closed,
                            format!("{} trial call(s) succeeded", self.trials),
                        );
                    }
                }
            }
            State::Closed => {
                let w = self.calls.len();
                if self.filled == w {
                    let (f, s) = self.calls[self.next];
                    self.failures -= usize::from(f);
                    self.slows -= usize::from(s);
                } else {
                    self.filled += 1;
                }
                self.calls[self.next] = (failed, slow);
                self.failures += usize::from(failed);
                self.slows += usize::from(slow);
                self.next = (self.next + 1) % w;
                if self.filled >= self.cfg.min_calls {
                    let n = self.filled as f64;
                    if self.failures as f64 / n >= self.cfg.failure_rate
                        || self.slows as f64 / n >= self.cfg.slow_rate
                    {
                        let why = if self.failures as f64 / n >= self.cfg.failure_rate {
                            format!("{} of the last {} calls failed", self.failures, self.filled)
                        } else {
                            format!(
                                "{} of the last {} calls took {:?} or more",
                                self.slows, self.filled, self.cfg.slow_call
                            )
                        };
                        self.open(b, now_ns, why);
                    }
                }
            }
        }
    }

    /// Records many successful calls at once (`fast` quick ones, `slow` slow ones), as
    /// `record` would one by one; only the last `window` of them can matter.
    pub fn record_successes(&mut self, b: &Breaker, fast: u64, slow: u64, now_ns: u64) {
        let w = self.calls.len() as u64;
        let slow_n = slow.min(w);
        let fast_n = fast.min(w - slow_n);
        let took_slow = self.cfg.slow_call;
        for _ in 0..slow_n {
            self.record(b, false, took_slow, now_ns);
        }
        for _ in 0..fast_n {
            self.record(b, false, Duration::ZERO, now_ns);
        }
    }

    /// Opens at once (e.g. the client reports that all brokers are down), saying why.
    pub fn force_open(&mut self, b: &Breaker, now_ns: u64, why: &str) {
        if b.state() != State::Open {
            self.open(b, now_ns, why.to_string());
        }
    }

    fn open(&mut self, b: &Breaker, now_ns: u64, why: String) {
        self.opened_at_ns = now_ns;
        self.reset_window();
        self.set(b, State::Open, why);
    }
}
