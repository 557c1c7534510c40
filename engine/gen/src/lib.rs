//! # spate-gen: event generation
//!
//! Sources, formats, user templates and schema-driven records, compiled at start-up into op
//! programs that a worker runs per event. No I/O and no threads: the engine owns those.
//!
//! `spec.rs` compiles the sources into an [`EventSpec`]; `generator.rs` is the per-worker
//! [`Generator`] that runs it (it reads the spec's tables directly: they are `pub(crate)`);
//! `config.rs` says what to generate, `meta.rs` who each event is.
//!
//! # Design
//!
//! After DataDog lading's precomputation philosophy: everything decidable at start-up is
//! decided then. Each source is compiled, per format, into [`VARIANTS`] pre-rendered
//! *variants* drawn from the seed; a variant is a small program of ops: literal byte runs
//! (slices of one shared blob, already escaped for the format) and dynamic slots. Per event
//! the hot path ([`Generator::write_event`]) picks a source by weight and a variant with the
//! worker's PRNG, and executes the ops: copy literals, stamp the timestamp (the per-second
//! prefix is cached, only the microseconds change), the event id, the W3C trace context
//! (lookup-table hex), and draw the few per-event fields (`bytes`, `latency_ms`, `amount`,
//! and template fields marked `per_event`) from quantile tables or pools of pre-rendered
//! values. No allocation, lock or syscall happens per event: bytes go into the caller's
//! `BytesMut` with `extend_from_slice`.
//!
//! # Content
//!
//! Every event has a UTC timestamp, its source name, an id `{run_id}-{worker}-{seq}` (run id
//! 16 lowercase hex; the verifier parses it back), and W3C Trace Context: a trace id (32 hex,
//! never zero) and a span id (16 hex, never zero), written once in the form `trace_context`
//! asks for: `traceparent` `00-{trace}-{span}-01` (the default), `trace_id` + `span_id`, or
//! not at all (the default under `size`). `fields` chooses the fields (json, logfmt).
//! Built-in sources are `web`, `app`, `payment` and `syslog` (see `sources.rs`); users add
//! their own with templates (see [`RawTemplate`]).
//!
//! # Formats
//!
//! - `json`: `ts`, `source`, `id`, the trace context, then the fields.
//! - `logfmt`: the same keys as `key=value`; values quoted (with `\"`, `\\`) when needed.
//! - `apache_common` / `apache_combined`: Apache's `%h %l %u %t "%r" %>s %b` (plus
//!   `"%{Referer}i" "%{User-agent}i"`); `web` only. The lines have no room for the id and
//!   trace context: those travel in Kafka headers, which the Kafka sink adds from
//!   [`EventMeta`]. Padding (`size`) is rejected: the layout has no field for filler.
//! - `rfc5424`: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [spate@32473 id=".." traceparent=".."
//!   source=".."] MSG` (32473 is the IANA example enterprise number).
//! - `rfc3164`: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: id=.. traceparent=.. MSG`.
//!
//! With `size`, each event gets a filler field (`"pad":"…"`, `pad=…`) sized per event so the
//! line, newline included, is `size` bytes. A variant whose fields would not fit is rendered
//! again without its last field until it does (json, logfmt); syslog lines keep their message,
//! so those longer than `size` stay as they are.
//!
//! # Reproducibility
//!
//! Variants derive from the seed and the source name; each worker's PRNG (wyrand, see
//! [`spate_core::rng`]) from the seed and the worker index. Same seed, same events, apart from
//! timestamps and the run id.
#![warn(clippy::unwrap_used)]
#![warn(missing_docs)]

pub mod avro;
mod config;
mod dist;
mod format;
mod generator;
pub mod hex;
mod meta;
mod program;
mod room;
mod schema;
mod sources;
mod spec;
mod template;
mod time;
mod values;

#[cfg(test)]
mod tests;

pub use config::{EventConfig, DEFAULT_SCHEMA_DEPTH, MAX_SCHEMA_DEPTH, MAX_SIZE, VARIANTS};
pub use format::{Format, TraceContext, UnknownFormat};
pub use generator::Generator;
pub use meta::{EventMeta, RunId};
pub use schema::{is_json_schema, prepare_avro, strip_comments};
pub use spec::EventSpec;
pub use template::{RawField, RawTemplate};
