//! The PostgreSQL sink: events into a table with `COPY ... FROM STDIN (FORMAT binary)`, in
//! transactions of up to `commit_rows` events (several batches; 32,768 by default, or what came
//! within 100 ms) that also record the transaction's id in `spate_batches`, so that one whose
//! commit was in doubt when the connection broke is looked up, not sent again.
//!
//! - `copy.rs` encodes a batch as binary COPY rows (no allocation per event);
//! - `typed.rs` is the typed layout: a column per field of the sources' records;
//! - `sink.rs` is the sink: connection, table check, transactions, retries, the DLQ file;
//! - `config.rs` is `sink: {postgres: ...}` and its `postgres://...?table=T` shorthand.
//!
//! The table has typed columns for the envelope and the event as JSONB:
//! `ts timestamptz, source text, id text, traceparent text, body jsonb` (or, with
//! `layout: typed`, a column per field instead of `body`).

mod breaker;
pub mod config;
mod conn;
mod copy;
mod rows;
mod sink;
pub mod typed;

pub use config::PgConfig;
pub use sink::PgSink;
