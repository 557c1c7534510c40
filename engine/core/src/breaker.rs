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

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            // Only `Breaker::set` writes the byte, always from a `State`.
            _ => unreachable!("breaker state byte {v} was never written by `set`"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

/// A change of state seen by the owning thread: from, to, and why (for its log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub why: String,
}

/// Breaker thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakerConfig {
    /// Calls in the sliding window.
    pub window: usize,
    /// Calls needed in the window before rates are judged.
    pub min_calls: usize,
    /// Open when this share of calls failed (0..=1).
    pub failure_rate: f64,
    /// A call slower than this is slow.
    pub slow_call: Duration,
    /// Open when this share of calls was slow (0..=1).
    pub slow_rate: f64,
    /// Time in OPEN before trying again.
    pub open_wait: Duration,
    /// Trial calls in HALF_OPEN.
    pub half_open_calls: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: 100,
            min_calls: 20,
            failure_rate: 0.5,
            slow_call: Duration::from_secs(5),
            slow_rate: 0.8,
            open_wait: Duration::from_secs(2),
            half_open_calls: 10,
        }
    }
}

/// A sink's `breaker:` settings as written (every sink with a breaker takes the same section).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Calls in the sliding window (default 100).
    pub window: Option<usize>,
    /// Calls needed in the window before rates are judged (default 20; at most `window`).
    pub min_calls: Option<usize>,
    /// Open when this share of the window's calls failed, above 0 and at most 1 (default 0.5).
    pub failure_rate: Option<f64>,
    /// A call at least this slow is slow (default `5s`).
    pub slow_call: Option<crate::conf::HumanDuration>,
    /// Open when this share of the window's calls was slow, above 0 and at most 1 (default 0.8).
    pub slow_rate: Option<f64>,
    /// Time open before trial calls are let through (default `2s`).
    pub open_wait: Option<crate::conf::HumanDuration>,
    /// Trial calls that must succeed to close again (default 10).
    pub half_open_calls: Option<usize>,
    /// Deprecated: `slow_call` in milliseconds.
    pub slow_call_ms: Option<u64>,
    /// Deprecated: `open_wait` in milliseconds.
    pub open_wait_ms: Option<u64>,
}

impl RawBreaker {
    /// Checks every value; `at` is the section's key (e.g. `sink.kafka.breaker`). Deprecated
    /// keys in use are pushed to `deprecated`.
    pub fn validate(&self, at: &str, deprecated: &mut Vec<String>) -> Result<BreakerConfig, crate::ConfigError> {
        use crate::ConfigError;
        let d = BreakerConfig::default();
        let key = |k: &str| format!("{at}.{k}");
        let count = |v: Option<usize>, dflt: usize, k: &str| -> Result<usize, ConfigError> {
            match v {
                None => Ok(dflt),
                Some(n @ 1..=100_000) => Ok(n),
                Some(n) => Err(ConfigError::new(key(k), format!("{n} calls is out of range"), format!("use 1 to 100000 (default {dflt})"))),
            }
        };
        let share = |v: Option<f64>, dflt: f64, k: &str| -> Result<f64, ConfigError> {
            match v {
                None => Ok(dflt),
                Some(x) if x > 0.0 && x <= 1.0 => Ok(x),
                Some(x) => Err(ConfigError::new(key(k), format!("{x} is not a share"), "give a number above 0 and at most 1, e.g. 0.5")),
            }
        };
        let time = |v: Option<crate::conf::HumanDuration>, ms: Option<u64>, dflt: Duration, k: &str, deprecated: &mut Vec<String>| {
            let t = match (v, ms) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        key(&format!("{k}_ms")),
                        format!("both {k} and {k}_ms are set"),
                        format!("keep {k} (a duration, e.g. 5s)"),
                    ))
                }
                (Some(v), None) => v.get(),
                (None, Some(ms)) => {
                    deprecated.push(format!("`{}` is deprecated: write `{}: {ms}ms`", key(&format!("{k}_ms")), key(k)));
                    Duration::from_millis(ms)
                }
                (None, None) => dflt,
            };
            if t.is_zero() {
                return Err(ConfigError::new(key(k), "a zero duration", "give a duration above 0, e.g. 2s"));
            }
            Ok(t)
        };
        let window = count(self.window, d.window, "window")?;
        let min_calls = count(self.min_calls, d.min_calls.min(window), "min_calls")?;
        if min_calls > window {
            return Err(ConfigError::new(
                key("min_calls"),
                format!("{min_calls} calls is more than the window of {window}"),
                "give at most `window` calls",
            ));
        }
        Ok(BreakerConfig {
            window,
            min_calls,
            failure_rate: share(self.failure_rate, d.failure_rate, "failure_rate")?,
            slow_call: time(self.slow_call, self.slow_call_ms, d.slow_call, "slow_call", deprecated)?,
            slow_rate: share(self.slow_rate, d.slow_rate, "slow_rate")?,
            open_wait: time(self.open_wait, self.open_wait_ms, d.open_wait, "open_wait", deprecated)?,
            half_open_calls: count(self.half_open_calls, d.half_open_calls, "half_open_calls")?,
        })
    }
}

/// The shared, lock-free face of a breaker.
#[derive(Debug, Default)]
pub struct Breaker {
    state: AtomicU8,
    transitions: AtomicU64,
    opened: AtomicU64,
}

impl Breaker {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn state(&self) -> State {
        // Acquire pairs with the Release store in `set`.
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// Times the breaker went to OPEN.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    fn set(&self, s: State) {
        self.transitions.fetch_add(1, Ordering::Relaxed);
        if s == State::Open {
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        // Release: the counters above are visible to whoever observes the new state.
        self.state.store(s as u8, Ordering::Release);
    }
}

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
    pub fn new(cfg: BreakerConfig) -> Self {
        let w = cfg.window.max(1);
        Self { cfg, calls: vec![(false, false); w], next: 0, filled: 0, failures: 0, slows: 0, opened_at_ns: 0, trials: 0, changed: None }
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
        if b.state() == State::Open && now_ns.saturating_sub(self.opened_at_ns) >= self.cfg.open_wait.as_nanos() as u64 {
            self.trials = 0;
            self.set(b, State::HalfOpen, format!("open for {:?}: letting trial calls through", self.cfg.open_wait));
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
                    let why = if failed { "a trial call failed".to_string() } else { format!("a trial call took {took:?}") };
                    self.open(b, now_ns, why);
                } else {
                    self.trials += 1;
                    if self.trials >= self.cfg.half_open_calls {
                        self.reset_window();
                        self.set(b, State::Closed, format!("{} trial call(s) succeeded", self.trials));
                    }
                }
            }
            State::Closed => {
                let w = self.calls.len();
                if self.filled == w {
                    let (f, s) = self.calls[self.next];
                    self.failures -= f as usize;
                    self.slows -= s as usize;
                } else {
                    self.filled += 1;
                }
                self.calls[self.next] = (failed, slow);
                self.failures += failed as usize;
                self.slows += slow as usize;
                self.next = (self.next + 1) % w;
                if self.filled >= self.cfg.min_calls {
                    let n = self.filled as f64;
                    if self.failures as f64 / n >= self.cfg.failure_rate || self.slows as f64 / n >= self.cfg.slow_rate {
                        let why = if self.failures as f64 / n >= self.cfg.failure_rate {
                            format!("{} of the last {} calls failed", self.failures, self.filled)
                        } else {
                            format!("{} of the last {} calls took {:?} or more", self.slows, self.filled, self.cfg.slow_call)
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

/// Says a breaker's changes: on stderr, once per state entered (rate-limited per state, so a
/// flapping breaker cannot flood), and to the run's [`Notes`](crate::notes::Notes) (the audit
/// trail). One reporter per breaker: `kafka`, `postgres`, `redis`.
#[derive(Clone)]
pub struct BreakerReporter {
    name: &'static str,
    notes: crate::notes::SharedNotes,
}

impl BreakerReporter {
    pub fn new(name: &'static str, notes: crate::notes::SharedNotes) -> Self {
        Self { name, notes }
    }

    /// The breaker's name in messages, status and metrics.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Reports the change `window` saw since it was last asked, if any.
    pub fn take_and_report(&self, window: &mut BreakerWindow, b: &Breaker) {
        if let Some(t) = window.take_transition(b) {
            self.report(&t);
        }
    }

    pub fn report(&self, t: &Transition) {
        let site = match t.to {
            State::Closed => "breaker_closed",
            State::Open => "breaker_open",
            State::HalfOpen => "breaker_half_open",
        };
        crate::rate_log::warn(site, &format!("{}: circuit breaker {} -> {}: {}", self.name, t.from.as_str(), t.to.as_str(), t.why));
        self.notes.note("breaker", serde_json::json!({"sink": self.name, "from": t.from.as_str(), "to": t.to.as_str(), "why": t.why}));
    }
}

impl std::fmt::Debug for BreakerReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerReporter").field("name", &self.name).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                        assert!(s == State::Closed || t >= 1, "saw {s:?} before its transition was counted");
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
        assert!(all_seen(), "a reader missed a state within 20 s (bits closed/open/half_open): {seen:?}");
        assert_eq!(b.transitions(), 3 * cycles);
    }
}
