//! Where a run's rare changes are told: breaker transitions, limiter fallbacks and returns. The
//! audit trail listens (a row in `spate_run_changes`); without it nobody does. Passed to the
//! components that make such changes, never a global, so each can be tested with its own.

use std::sync::Arc;

use serde_json::Value;

/// A listener for a run's changes. Rare events only: an implementation may take a lock.
pub trait Notes: Send + Sync {
    /// `kind` names the change (`breaker`, `limiter`), `detail` says what changed and why.
    fn note(&self, kind: &str, detail: Value);
}

/// Nobody listens.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNotes;

impl Notes for NoNotes {
    fn note(&self, _kind: &str, _detail: Value) {}
}

/// A shared listener, or nobody.
pub type SharedNotes = Arc<dyn Notes>;

/// The listener that ignores everything.
pub fn none() -> SharedNotes {
    Arc::new(NoNotes)
}
