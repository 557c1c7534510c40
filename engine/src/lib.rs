//! # spate engine
//!
//! The hot path of spate, a thread-per-core event generator and Kafka load driver.
//!
//! ## What flows where
//!
//! ```text
//!  worker 0 (pinned) ─┐ batches            ┌─> sink/: kafka | postgres | tcp | file | stdout | null
//!  worker 1 (pinned) ─┼─ SPSC rings ─> flush thread ─┤
//!  worker N (pinned) ─┘ <─ return rings ─┘           └─ acks, breaker, DLQ files
//! ```
//!
//! - A **worker** (`worker.rs`) is an OS thread pinned to a core before it allocates anything.
//!   It owns a PRNG and compiled sources (a `spate_gen::Generator`), a pool of batches (the arena, `batch.rs`)
//!   and the producer end of its ring (`ring.rs`). Per batch it asks its limiter
//!   (spate-limit: a local token bucket, or the Redis leased limiter) how many events are due, formats them into the
//!   batch, and pushes the whole batch.
//! - The **flush thread** (`flush.rs`) drains the rings round-robin, hands batches to the sink
//!   (`sink/`), polls it (Kafka's delivery reports, PostgreSQL's commits arrive on this thread)
//!   and sends emptied batches back to their worker through a return ring.
//!
//! ## What is shared, and what never is
//!
//! Per-core state is plain fields owned by one thread. Shared state (`run.rs`) is atomics
//! written rarely: stop flags, the current rate, the breaker state, counters that each thread
//! publishes once per batch with plain stores (`stats.rs`). No lock, allocation, syscall, Redis
//! call or metrics call happens per event.
//!
//! ## Invariants
//!
//! - Accounting: `generated = delivered + dead_lettered + shed + failed + in_flight`, always;
//!   at the end of a run `in_flight` is 0 unless the sink could not settle in time.
//! - Under backpressure policy `block` nothing is dropped: a full ring (or the in-flight byte
//!   budget, or an open breaker, or memory above the budget's high-water mark) makes workers
//!   wait.
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod audit;
pub mod avro;
pub mod batch;
pub mod budget;
pub mod config;
pub mod error;
pub mod flush;
pub mod latency;
pub mod lifecycle;
pub mod memory;
pub mod pgconn;
pub mod ring;
pub mod run;
pub mod sink;
pub mod spans;
mod start;
pub mod stats;
pub(crate) mod sync;
pub mod worker;

pub use config::{RawConfig, RunConfig};
pub use error::{ConfigError, EngineError};
pub use run::{Outcome, Run, Summary};
pub use start::{start, StartOptions};
