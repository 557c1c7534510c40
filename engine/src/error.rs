//! Error types of the engine. Messages are lowercase and say what to do.

use thiserror::Error;

pub use spate_core::ConfigError;

/// Errors raised while starting or running the engine.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The configuration is invalid; the error names the key and the fix.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The sink could not be opened or connected.
    #[error("cannot open sink `{target}`: {source}")]
    SinkOpen {
        /// The sink as the user named it (`tcp://host:port`, `file:path`).
        target: String,
        /// The I/O error behind the failure.
        #[source]
        source: std::io::Error,
    },
    /// The sink failed while writing events.
    #[error("sink `{target}` failed while writing: {source}")]
    SinkWrite {
        /// The sink as the user named it (`tcp://host:port`, `file:path`).
        target: String,
        /// The I/O error behind the failure.
        #[source]
        source: std::io::Error,
    },
    /// The Kafka client or the embedded cluster failed; holds the message.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The Avro container header for `--avro-framing container` could not be written.
    #[error("avro container framing: {0}")]
    AvroContainer(#[source] std::io::Error),
    /// Redis failed; holds the message.
    #[error("redis: {0}")]
    Redis(String),
    /// The schema registry at `url` refused or failed a request.
    #[error("schema registry {url}: {message}")]
    Registry {
        /// The registry's base URL.
        url: String,
        /// What went wrong, with the registry's `error_code` and message when it sent them.
        message: String,
    },
    /// A worker or helper thread could not be spawned.
    #[error("cannot spawn thread `{name}`: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The I/O error the spawn returned.
        #[source]
        source: std::io::Error,
    },
    /// A run was started while another one is still in progress.
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
