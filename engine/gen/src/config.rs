//! What to generate ([`EventConfig`]) and the limits every part of generation shares.

use std::collections::BTreeMap;

use crate::format::{Format, TraceContext};
use crate::template::RawTemplate;

/// Names of the built-in sources.
pub(crate) const BUILTIN: [&str; 4] = ["web", "app", "payment", "syslog"];

/// Pre-rendered variants per source (a power of two).
pub const VARIANTS: usize = 1024;

/// Levels a recursive schema type expands by default.
pub const DEFAULT_SCHEMA_DEPTH: usize = 3;
/// Most levels `schema_depth` may ask for.
pub const MAX_SCHEMA_DEPTH: usize = 16;

/// Largest `size`.
pub const MAX_SIZE: usize = 1 << 20;

/// What to generate.
#[derive(Debug, Clone)]
pub struct EventConfig {
    /// The output format.
    pub format: Format,
    /// Source name and weight, e.g. `[("web", 70), ("app", 20), ("payment", 10)]`.
    pub sources: Vec<(String, u32)>,
    /// User-defined sources by name.
    pub templates: BTreeMap<String, RawTemplate>,
    /// Pad each event to about this many bytes (newline included); fields that do not fit
    /// are left out, last first.
    pub size: Option<usize>,
    /// The seed every variant and worker PRNG derives from.
    pub seed: u64,
    /// The trace context each line carries.
    pub trace: TraceContext,
    /// The fields events carry (json and logfmt), in their source's order; None: all.
    pub fields: Option<Vec<String>>,
    /// Bytes every event starts with, per source index (one entry: all sources). Avro: the
    /// Confluent wire header, or a container's header.
    pub wire_prefix: Vec<Vec<u8>>,
    /// Avro with several sources: each source's datum is its own record (each goes to a topic
    /// of its own), instead of a branch of the union of all sources' records.
    pub avro_records_apart: bool,
    /// Avro: wrap each datum in a one-record container block with this sync marker (the
    /// container's header is `wire_prefix`).
    pub container_sync: Option<[u8; 16]>,
    /// A user's Avro schema (JSON text): the run's one source, records generated to match it
    /// (see `schema.rs`); `sources` and `templates` are then unused.
    pub schema: Option<String>,
    /// How many times a recursive type of `schema` may appear inside itself (1 to 16).
    pub schema_depth: usize,
    /// Bytes the pre-rendered events may take (0: no limit): a source that would need more is
    /// refused at start, naming `memory_budget`.
    pub memory_limit: usize,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            format: Format::Json,
            sources: vec![("web".to_string(), 1)],
            templates: BTreeMap::new(),
            size: None,
            seed: 0,
            trace: TraceContext::Traceparent,
            fields: None,
            wire_prefix: Vec::new(),
            avro_records_apart: false,
            container_sync: None,
            schema: None,
            schema_depth: DEFAULT_SCHEMA_DEPTH,
            memory_limit: 0,
        }
    }
}

/// Copy granule of [`put_chunked`]; every copy source has this much slack after its end.
pub(crate) const CHUNK: usize = 32;
