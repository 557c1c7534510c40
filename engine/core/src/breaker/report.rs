//! How a breaker's changes are told: stderr and the run's notes.

use super::state::{Breaker, State, Transition};
use super::window::BreakerWindow;

/// Says a breaker's changes: on stderr, once per state entered (rate-limited per state, so a
/// flapping breaker cannot flood), and to the run's [`Notes`](crate::notes::Notes) (the audit
/// trail). One reporter per breaker: `kafka`, `postgres`, `redis`.
#[derive(Clone)]
pub struct BreakerReporter {
    name: &'static str,
    notes: crate::notes::SharedNotes,
}

impl BreakerReporter {
    /// A reporter for the breaker of sink or client `name`, noting changes to `notes`.
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

    /// Reports one change: a line on stderr (rate-limited per state) and a note.
    pub fn report(&self, t: &Transition) {
        let site = match t.to {
            State::Closed => "breaker_closed",
            State::Open => "breaker_open",
            State::HalfOpen => "breaker_half_open",
        };
        crate::rate_log::warn(
            site,
            &format!(
                "{}: circuit breaker {} -> {}: {}",
                self.name,
                t.from.as_str(),
                t.to.as_str(),
                t.why
            ),
        );
        self.notes.note("breaker", serde_json::json!({"sink": self.name, "from": t.from.as_str(), "to": t.to.as_str(), "why": t.why}));
    }
}

impl std::fmt::Debug for BreakerReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakerReporter").field("name", &self.name).finish_non_exhaustive()
    }
}
