//! A breaker's state and its shared, lock-free face.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use serde::Serialize;

/// A breaker's state (Resilience4j's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Calls go through; outcomes are judged over the window.
    Closed = 0,
    /// Calls are refused until the open wait is over.
    Open = 1,
    /// A few trial calls go through; their outcomes close or reopen the breaker.
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
    /// The state's name in status, metrics and logs (`closed`, `open`, `half_open`).
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
    /// The state before the change.
    pub from: State,
    /// The state after the change.
    pub to: State,
    /// Why it changed, in words (e.g. `50 of the last 100 calls failed`).
    pub why: String,
}

/// The shared, lock-free face of a breaker.
#[derive(Debug, Default)]
pub struct Breaker {
    state: AtomicU8,
    transitions: AtomicU64,
    opened: AtomicU64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    #[inline]
    pub fn state(&self) -> State {
        // Acquire pairs with the Release store in `set`.
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// State changes so far.
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// Times the breaker went to OPEN.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, s: State) {
        self.transitions.fetch_add(1, Ordering::Relaxed);
        if s == State::Open {
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        // Release: the counters above are visible to whoever observes the new state.
        self.state.store(s as u8, Ordering::Release);
    }
}
