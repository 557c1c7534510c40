//! Error types of the engine. Messages are lowercase and say what to do.

use thiserror::Error;

pub use spate_core::ConfigError;

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

impl From<spate_limit::LimitError> for EngineError {
    fn from(e: spate_limit::LimitError) -> Self {
        match e {
            spate_limit::LimitError::Config(c) => EngineError::Config(c),
            spate_limit::LimitError::Spawn { name, source } => EngineError::Spawn { name, source },
        }
    }
}
