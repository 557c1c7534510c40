//! # spate-core
//!
//! What every other crate of spate builds on, and nothing that does I/O beyond a log line:
//!
//! - [`ConfigError`]: the one error a configuration problem is reported as (key, what, fix);
//! - [`conf`]: typed config values (durations, sizes, data paths, secret files and texts);
//! - [`duration`]: durations as configs write them;
//! - [`clock`]: the injectable monotonic clock (and a fake one for tests);
//! - [`breaker`]: the circuit breaker, lock-free for readers, owned by one recording thread;
//! - [`backoff`]: exponential backoff with full jitter, for every retry and reconnect;
//! - [`secret`]: secrets that never print, from the config, the environment or a file;
//! - [`notes`]: where a run's rare changes are told (the audit trail);
//! - [`rng`]: the PRNG (wyrand seeded by splitmix64);
//! - [`rate_log`]: rate-limited warnings.
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod conf;
pub mod duration;
mod error;
pub mod notes;
pub mod rate_log;
pub mod resident;
pub mod rng;
pub mod secret;

pub use error::ConfigError;
