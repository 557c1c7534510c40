//! Errors of starting a limiter.

use thiserror::Error;

/// Why a limiter could not start.
#[derive(Debug, Error)]
pub enum LimitError {
    /// A setting to fix (an unreachable Redis or refused credentials are reported here, at the
    /// key that names them: better no run than one that ignores the global rate).
    #[error(transparent)]
    Config(#[from] spate_core::ConfigError),
    /// A thread of the limiter could not be started.
    #[error("cannot spawn thread `{name}`: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}
