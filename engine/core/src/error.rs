//! The configuration error every crate of spate reports: which key, what is wrong, the fix.

use thiserror::Error;

/// A configuration problem: which key, what is wrong, and how to fix it.
///
/// Rendered as one line: `config error at `key`: message (fix: ...)`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("config error at `{key}`: {message} (fix: {fix})")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `templates.checkout.fields[2].gen`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
    /// What the user should do.
    pub fix: String,
}

impl ConfigError {
    /// A problem with setting `key`: what is wrong and how to fix it.
    pub fn new(key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into(), fix: fix.into() }
    }
}
