//! Error types of the engine. Messages are lowercase and say what to do.

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
    pub fn new(key: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into(), fix: fix.into() }
    }
}

/// Errors raised while starting or running the engine.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open sink `{target}`: {source}")]
    SinkOpen {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sink `{target}` failed while writing: {source}")]
    SinkWrite {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("schema registry {url}: {message}")]
    Registry { url: String, message: String },
    #[error("cannot spawn thread `{name}`: {source}")]
    Spawn {
        name: String,
        #[source]
        source: std::io::Error,
    },
    /// The reader of stdout closed the pipe: the run ends quietly.
    #[error("the reader of stdout went away")]
    ReaderGone,
    #[error("a run is already in progress")]
    AlreadyRunning,
}
