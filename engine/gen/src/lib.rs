//! # spate-gen: event generation
//!
//! Sources, formats, user templates and schema-driven records, compiled at start-up into op
//! programs that a worker runs per event. No I/O and no threads: the engine owns those.
//!
//! One file (a little over 600 lines) for the spec and the per-worker generator: the generator's
//! per-event code reads the spec's private tables (variants, trace slots, dynamic values)
//! directly, and splitting them would only widen those tables' visibility.
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

pub mod avro;
mod dist;
mod format;
mod program;
mod schema;
mod sources;
mod template;
mod time;
mod values;

pub mod hex;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::BytesMut;

use spate_core::ConfigError;
use spate_core::rng::{fnv1a, Rng};

pub use format::{Format, TraceContext, UnknownFormat};
pub use schema::{is_json_schema, strip_comments};
pub use template::{RawField, RawTemplate};

use program::{Builder, Emitter, Op, SessionDef, TABLE};
use sources::SourceGen;

/// Names of the built-in sources.
pub(crate) const BUILTIN: [&str; 4] = ["web", "app", "payment", "syslog"];

/// Pre-rendered variants per source (a power of two).
pub const VARIANTS: usize = 1024;

/// Largest `size`.
pub const MAX_SIZE: usize = 1 << 20;

/// What to generate.
#[derive(Debug, Clone)]
pub struct EventConfig {
    pub format: Format,
    /// Source name and weight, e.g. `[("web", 70), ("app", 20), ("payment", 10)]`.
    pub sources: Vec<(String, u32)>,
    /// User-defined sources by name.
    pub templates: BTreeMap<String, RawTemplate>,
    /// Pad each event to about this many bytes (newline included); fields that do not fit
    /// are left out, last first.
    pub size: Option<usize>,
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
        }
    }
}

/// Identity of one generated event (for Kafka keys and headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMeta {
    pub seq: u64,
    pub trace_id: u128,
    pub span_id: u64,
    /// Index into [`EventSpec::source_names`].
    pub source: u16,
    pub worker: u16,
    /// Where the event's id and its `traceparent` (55 bytes) are in its own line, when the
    /// format writes them ([`EventMeta::NONE`] otherwise): the Kafka sink reuses those bytes
    /// for its headers instead of formatting them again.
    pub id_at: u32,
    pub id_len: u32,
    pub tp_at: u32,
}

impl Default for EventMeta {
    fn default() -> Self {
        Self { seq: 0, trace_id: 0, span_id: 0, source: 0, worker: 0, id_at: Self::NONE, id_len: 0, tp_at: Self::NONE }
    }
}

impl EventMeta {
    /// "Not in the line" for `id_at` and `tp_at`.
    pub const NONE: u32 = u32::MAX;

    /// The event id, if `line` (this event's line) carries it.
    #[inline]
    pub fn id_in<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        line.get(self.id_at as usize..(self.id_at as usize).checked_add(self.id_len as usize)?)
    }

    /// The `traceparent` text, if `line` carries it.
    #[inline]
    pub fn traceparent_in<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        line.get(self.tp_at as usize..(self.tp_at as usize).checked_add(55)?)
    }
}

/// Identifies one run: every event id starts with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunId(pub u64);

impl RunId {
    /// A fresh id from the wall clock and the process id (not from the seed: runs differ).
    pub fn random() -> RunId {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        RunId(spate_core::rng::splitmix64(now ^ ((std::process::id() as u64) << 40)))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for RunId {
    type Err = std::num::ParseIntError;
    /// Parses the 16-hex-digit form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(RunId)
    }
}

/// One pre-rendered variant: its ops, and its longest literal (touched one event ahead).
#[derive(Clone, Copy, Debug)]
struct Variant {
    start: u32,
    len: u32,
    hot: u32,
    hot_len: u32,
}

impl Variant {
    /// The variant of program `(start, len)`, with its longest literal.
    fn of(b: &Builder, (start, len): (u32, u32)) -> Variant {
        let (hot, hot_len) = b.ops[start as usize..(start + len) as usize]
            .iter()
            .filter_map(|op| match *op {
                Op::Lit { len, off } => Some((off, len as u32)),
                _ => None,
            })
            .max_by_key(|l| l.1)
            .unwrap_or((0, 0));
        Variant { start, len, hot, hot_len }
    }
}

#[derive(Debug)]
struct CompiledSource {
    variants: Vec<Variant>,
}

/// Compiled sources for one format: immutable, shared by all workers.
#[derive(Debug)]
pub struct EventSpec {
    format: Format,
    seed: u64,
    names: Vec<String>,
    sources: Vec<CompiledSource>,
    /// Cumulative source weights scaled to 2^32, for a pick from 32 random bits.
    thresholds: Vec<u64>,
    blob: Vec<u8>,
    ops: Vec<Op>,
    tables: Vec<i64>,
    pool_entries: Vec<(u32, u32)>,
    sessions: Vec<SessionDef>,
    /// The format's trace-context block and its (offset, is_trace) hex slots.
    trace_block: Vec<u8>,
    trace_slots: Vec<(usize, bool)>,
    /// Offset of the `traceparent` text (`00-...-01`) in the trace block, if it has one.
    tp_in_block: u32,
    /// Target size (0: no padding) and where the filler bytes are in the blob.
    size: usize,
    pad_off: usize,
    /// The writer schema of Avro datums (JSON text).
    avro_schema: Option<String>,
    /// Each source's record schema (Avro).
    avro_records: Vec<String>,
}

fn known_sources(templates: &BTreeMap<String, RawTemplate>) -> String {
    let mut v: Vec<&str> = BUILTIN.to_vec();
    v.extend(templates.keys().map(String::as_str));
    v.join(", ")
}

impl EventSpec {
    /// Checks `cfg` and compiles every source into its variants.
    pub fn build(cfg: &EventConfig) -> Result<EventSpec, ConfigError> {
        let format = cfg.format;
        let mut b = Builder::default();
        // A user's schema is the run's one source, named after its record.
        let user_schema = match &cfg.schema {
            None => None,
            Some(text) => {
                if !matches!(format, Format::Avro | Format::Json) {
                    return Err(ConfigError::new(
                        "format",
                        format!("records of a schema are written as avro or json, not {format}"),
                        "use --format avro or --format json with --schema",
                    ));
                }
                for (key, set) in [("size", cfg.size.is_some()), ("fields", cfg.fields.is_some())] {
                    if set {
                        return Err(ConfigError::new(
                            key,
                            format!("`{key}` applies to the built-in sources and templates, not to a schema's records"),
                            format!("drop `{key}`; the schema decides what a record holds"),
                        ));
                    }
                }
                let src = schema::compile(text, &mut b)?;
                src.check()?;
                if src.json_schema && format != Format::Json {
                    return Err(ConfigError::new(
                        "format",
                        "records of a JSON Schema are written as json",
                        "use --format json with a JSON Schema, or give an Avro schema (.avsc) for avro",
                    ));
                }
                Some(src)
            }
        };
        let schema_sources;
        let cfg = match &user_schema {
            Some(src) => {
                schema_sources = EventConfig { sources: vec![(src.name.clone(), 1)], ..cfg.clone() };
                &schema_sources
            }
            None => cfg,
        };
        if cfg.sources.is_empty() {
            return Err(ConfigError::new(
                "sources",
                "no sources given",
                format!("list at least one with a weight, e.g. `{{web: 1}}`; known: {}", known_sources(&cfg.templates)),
            ));
        }
        if cfg.sources.len() > u16::MAX as usize {
            return Err(ConfigError::new("sources", "too many sources", "use fewer than 65536 sources"));
        }
        for (i, (name, w)) in cfg.sources.iter().enumerate() {
            let key = format!("sources.{name}");
            if cfg.sources[..i].iter().any(|(n, _)| n == name) {
                return Err(ConfigError::new(key, format!("source `{name}` is listed twice"), "list each source once"));
            }
            if user_schema.is_none() && !BUILTIN.contains(&name.as_str()) && !cfg.templates.contains_key(name) {
                return Err(ConfigError::new(
                    key,
                    format!("unknown source `{name}`"),
                    format!("use one of: {}, or define it under `templates`", known_sources(&cfg.templates)),
                ));
            }
            if *w == 0 {
                return Err(ConfigError::new(
                    key,
                    format!("weight 0 would never pick `{name}`"),
                    "give a weight of 1 or more, or remove the source",
                ));
            }
            if format.is_apache() && name != "web" {
                return Err(ConfigError::new(
                    key,
                    format!("{format} only applies to the `web` source, not `{name}`"),
                    format!("use json, logfmt, rfc5424 or rfc3164 for `{name}`, or remove it"),
                ));
            }
        }
        let size = match cfg.size {
            None => 0,
            Some(_) if format.is_apache() => {
                return Err(ConfigError::new(
                    "size",
                    format!("{format} has no field that could hold padding"),
                    "omit `size`, or use json, logfmt, rfc5424 or rfc3164",
                ))
            }
            Some(0) => return Err(ConfigError::new("size", "size must be at least 1 byte", "omit `size` for natural event sizes")),
            Some(s) if s > MAX_SIZE => {
                return Err(ConfigError::new(
                    "size",
                    format!("size {s} is above the {MAX_SIZE}-byte limit"),
                    format!("use at most {MAX_SIZE} (1 MiB)"),
                ))
            }
            Some(s) => s,
        };

        if let Some(fields) = &cfg.fields {
            if !matches!(format, Format::Json | Format::Logfmt | Format::Avro) {
                return Err(ConfigError::new(
                    "fields",
                    format!("{format} has a fixed layout: it cannot choose fields"),
                    "omit `fields`, or use json, logfmt or avro",
                ));
            }
            if fields.is_empty() {
                return Err(ConfigError::new("fields", "no fields listed", "list at least one field, or omit `fields` for all"));
            }
        }
        // Compile every template, used or not, so mistakes surface now.
        let mut compiled = BTreeMap::new();
        for (name, raw) in &cfg.templates {
            let mut rng = Rng::derive(cfg.seed, fnv1a(format!("template:{name}").as_bytes()));
            compiled.insert(name.clone(), template::compile(name, raw, &mut b, &mut rng)?);
        }

        let mut names = Vec::new();
        let mut sources = Vec::new();
        let mut estimates = Vec::new();
        let mut seen_fields = std::collections::BTreeSet::new();
        let mut schemas = Vec::new();
        for (name, _) in &cfg.sources {
            let mut rng = Rng::derive(cfg.seed, fnv1a(name.as_bytes()));
            if let Some(src) = &user_schema {
                let enc = if format == Format::Avro { schema::Enc::Avro } else { schema::Enc::Json };
                let prefix = cfg.wire_prefix.first().map_or(&[][..], Vec::as_slice);
                let mut variants = Vec::with_capacity(VARIANTS);
                for _ in 0..VARIANTS {
                    let mut e = Emitter::new(&mut b);
                    src.render(enc, prefix, cfg.container_sync, &mut rng, &mut e);
                    let v = e.finish();
                    variants.push(Variant::of(&b, v));
                }
                names.push(name.clone());
                sources.push(CompiledSource { variants });
                estimates.push(0);
                if format == Format::Avro {
                    schemas.push(serde_json::from_str(cfg.schema.as_deref().unwrap_or("null")).unwrap_or(serde_json::Value::Null));
                }
                continue;
            }
            let gen = match SourceGen::builtin(name, &mut b, &mut rng) {
                Some(g) => g,
                None => SourceGen::Template(compiled.remove(name).expect("checked above")),
            };
            let mut variants = Vec::with_capacity(VARIANTS);
            let mut smallest = usize::MAX;
            let tb_len = format::trace_block(format, cfg.trace).0.len();
            let mut records: Vec<program::Record> = (0..VARIANTS)
                .map(|_| {
                    let mut rec = gen.record(&mut rng);
                    if let Some(keep) = &cfg.fields {
                        rec.fields.retain(|(k, _)| keep.iter().any(|f| f == k));
                        for (k, _) in &rec.fields {
                            seen_fields.insert(k.clone());
                        }
                    }
                    rec
                })
                .collect();
            // Avro: one record schema per source, from all its variants; the datum starts with
            // the wire prefix and, when several sources share the run, the union branch.
            let mut avro_fields = Vec::new();
            let mut branch = Vec::new();
            if format == Format::Avro {
                avro::record::check_source_name(name)?;
                avro_fields = avro::record::infer(name, &records, &b)?;
                schemas.push(avro::record::record_schema(name, &avro_fields, cfg.trace, size > 0));
                if cfg.sources.len() > 1 && !cfg.avro_records_apart {
                    crate::avro::push_long(&mut branch, names.len() as i64);
                }
            }
            let prefix = cfg.wire_prefix.get(names.len()).or(cfg.wire_prefix.first()).map_or(&[][..], Vec::as_slice);
            let frame = avro::record::Frame { prefix, branch: &branch, sync: cfg.container_sync };
            for rec in &mut records {
                let mut v = if format == Format::Avro {
                    let mut e = Emitter::new(&mut b);
                    avro::record::render(name, &avro_fields, rec, &frame, size > 0, &mut e);
                    e.finish()
                } else {
                    render_variant(&mut b, format, name, rec, size)
                };
                // Under `size`, fields that do not fit are left out, last first (json, logfmt).
                while size > 0 && format != Format::Avro && estimate(&b, v, tb_len) > size && !rec.fields.is_empty() {
                    rec.fields.pop();
                    v = render_variant(&mut b, format, name, rec, size);
                }
                // Avro records keep every field (the schema is fixed): the largest must fit.
                let est = estimate(&b, v, tb_len);
                smallest = if format == Format::Avro {
                    if smallest == usize::MAX {
                        est
                    } else {
                        smallest.max(est)
                    }
                } else {
                    smallest.min(est)
                };
                variants.push(Variant::of(&b, v));
            }
            names.push(name.clone());
            sources.push(CompiledSource { variants });
            estimates.push(smallest);
        }
        if let Some(keep) = &cfg.fields {
            if let Some(missing) = keep.iter().find(|f| !seen_fields.contains(*f)) {
                return Err(ConfigError::new(
                    "fields",
                    format!("no source of this run has a field `{missing}`"),
                    "list fields the sources have (see the events `spate run --sink stdout` prints), or omit `fields`",
                ));
            }
        }
        if size > 0 {
            for (name, &est) in names.iter().zip(&estimates) {
                if size < est {
                    let hint = if cfg.trace != TraceContext::None {
                        format!("use at least {est}, or `trace_context: none` for a smaller envelope")
                    } else {
                        format!("use at least {est}, or omit `size`")
                    };
                    return Err(ConfigError::new(
                        "size",
                        if format == Format::Avro {
                            format!("size {size} is smaller than the largest `{name}` record in avro (about {est} bytes)")
                        } else {
                            format!("size {size} is smaller than the smallest `{name}` event in {format} (about {est} bytes)")
                        },
                        hint,
                    ));
                }
            }
        }
        // Filler: a repeating lowercase pattern, valid unquoted in every format.
        let pad_off = b.blob.len();
        b.blob.extend((0..size).map(|i| b"spatepadding"[i % 12]));
        // Slack so that every blob copy can move whole chunks (see `put_chunked`).
        b.blob.extend_from_slice(&[0; CHUNK]);

        let total: u64 = cfg.sources.iter().map(|(_, w)| *w as u64).sum();
        let mut acc = 0u64;
        let thresholds = cfg
            .sources
            .iter()
            .map(|(_, w)| {
                acc += *w as u64;
                ((acc as u128) << 32).div_ceil(total as u128) as u64
            })
            .collect();

        let (trace_block, trace_slots) = format::trace_block(format, cfg.trace);
        // `traceparent` is `00-` before the last trace slot (the block's other copy of the trace
        // id, if any, comes first).
        let tp_in_block = trace_slots
            .iter()
            .rev()
            .find(|s| s.1)
            .and_then(|&(pos, _)| pos.checked_sub(3))
            .filter(|&p| trace_block.get(p..p + 55).is_some_and(|t| t.starts_with(b"00-") && t.ends_with(b"-01")))
            .map_or(EventMeta::NONE, |p| p as u32);
        let avro_records: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
        let avro_schema = match schemas.len() {
            0 => None,
            1 => Some(schemas.pop().expect("one").to_string()),
            _ => Some(serde_json::Value::Array(schemas).to_string()),
        };
        if let Some(text) = &avro_schema {
            apache_avro::Schema::parse_str(text).map_err(|e| {
                ConfigError::new("format", format!("the derived Avro schema does not parse: {e}"), "report this schema as a bug")
            })?;
        }
        Ok(EventSpec {
            avro_schema,
            avro_records,
            format,
            seed: cfg.seed,
            names,
            sources,
            thresholds,
            blob: b.blob,
            ops: b.ops,
            tables: b.tables,
            pool_entries: b.pool_entries,
            sessions: b.sessions,
            trace_block,
            trace_slots,
            tp_in_block,
            size,
            pad_off,
        })
    }

    /// Source names; the index is [`EventMeta::source`].
    pub fn source_names(&self) -> &[String] {
        &self.names
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The Avro schema (JSON) of the events, when the format is Avro: the source's record, or
    /// a union of the sources' records.
    pub fn avro_schema(&self) -> Option<&str> {
        self.avro_schema.as_deref()
    }

    /// Source `i`'s record schema (Avro): the schema of its datums under
    /// [`EventConfig::avro_records_apart`].
    pub fn avro_record(&self, i: usize) -> Option<&str> {
        self.avro_records.get(i).map(String::as_str)
    }

    /// Source (by weight, from the low 32 bits) and variant (from the high bits) for `r`.
    #[inline]
    fn pick(&self, r: u64) -> (usize, &Variant) {
        let src = if self.thresholds.len() == 1 {
            0
        } else {
            let x = r & 0xffff_ffff;
            self.thresholds.iter().position(|&t| x < t).unwrap_or(self.thresholds.len() - 1)
        };
        (src, &self.sources[src].variants[(r >> 32) as usize & (VARIANTS - 1)])
    }

    /// A per-event number from quantile table `table`: a point of a random cell.
    #[inline]
    fn draw(&self, rng: &mut Rng, table: u32) -> i64 {
        let t = &self.tables[table as usize * (TABLE + 1)..][..TABLE + 1];
        let r = rng.next_u64();
        let i = (r as usize) & (TABLE - 1);
        let (lo, hi) = (t[i], t[i + 1]);
        // The top 52 bits scaled onto [lo, hi].
        lo + (((r >> 12) as u128 * ((hi - lo) as u128 + 1)) >> 52) as i64
    }

    /// The blob (offset, length) of session field `slot`'s id for this event; `st` is the
    /// generator's (current id, events left on it).
    #[inline]
    fn session_entry(&self, st: &mut (u32, u32), rng: &mut Rng, slot: u32) -> (u32, u32) {
        let d = self.sessions[slot as usize];
        if st.1 == 0 {
            st.0 = rng.below(d.n as u64) as u32;
            // Run lengths 1..=2*reuse-1: about `reuse` on average.
            st.1 = 1 + rng.below(2 * d.reuse as u64 - 1) as u32;
        }
        st.1 -= 1;
        self.pool_entries[(d.base + st.0) as usize]
    }

    /// Loads the first op and the main literal of `v` so they are in cache when `v` runs:
    /// variants are picked at random, and a cold variant would otherwise cost a chain of
    /// cache misses (variant -> ops -> blob) on the critical path.
    #[inline]
    fn touch(&self, v: &Variant) {
        std::hint::black_box(self.ops[v.start as usize]);
        let end = (v.hot + v.hot_len) as usize;
        let mut o = v.hot as usize;
        while o < end {
            std::hint::black_box(self.blob[o]);
            o += 64;
        }
    }
}

/// Renders one variant of `rec` as a program; returns its ops' (start, len).
fn render_variant(b: &mut Builder, format: Format, source: &str, rec: &program::Record, size: usize) -> (u32, u32) {
    let mut e = Emitter::new(b);
    format::render(format, source, rec, size > 0, &mut e);
    e.finish()
}

/// Estimated length of a variant without padding (dynamic slots at typical widths).
fn estimate(b: &Builder, (start, len): (u32, u32), trace_block: usize) -> usize {
    let mut n = 0;
    for op in &b.ops[start as usize..(start + len) as usize] {
        n += match *op {
            Op::Lit { len, .. } => len as usize,
            Op::Ts3339 => 27,
            Op::TsApache => 26,
            Op::TsBsd => 15,
            Op::Id => 16 + 2 + 1 + 6,
            Op::Trace => trace_block,
            Op::Num { table, decimals } => {
                let mid = b.tables[table as usize * (TABLE + 1) + TABLE / 2];
                dist::NumGen::format(mid, decimals).len()
            }
            Op::Pool { base } => b.pool_avg_len(base, TABLE as u32),
            Op::Uuid => 36,
            Op::Seq => 6,
            Op::Session { slot } => {
                let d = b.sessions[slot as usize];
                b.pool_avg_len(d.base, d.n)
            }
            Op::Pad { .. } | Op::AvroPad { .. } | Op::BlockEnd => 0,
            Op::BlockStart => 3,
            Op::Iter { .. } | Op::Epoch { .. } => 8,
            Op::AvroTs => 8,
            Op::AvroId => 26,
            Op::AvroLong { table } => crate::avro::long_len(b.tables[table as usize * (TABLE + 1) + TABLE / 2]),
            Op::AvroDouble { .. } => 8,
            Op::AvroSeq => 3,
            Op::AvroSession { slot } => {
                let d = b.sessions[slot as usize];
                b.pool_avg_len(d.base, d.n) + 1
            }
        };
    }
    n
}

/// Two decimal digits of 0..100.
const DEC_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Copy granule of [`put_chunked`]; every copy source has this much slack after its end.
const CHUNK: usize = 32;

/// Appends `src[..len]` in fixed 32-byte chunks, then trims the overshoot. Constant-size
/// copies compile to a couple of vector moves, where a short variable-length copy would be a
/// `memcpy` call per literal. `src` must extend at least to the next multiple of 32 past `len`.
#[inline(always)]
fn put_chunked(out: &mut BytesMut, src: &[u8], len: usize) {
    let end = out.len() + len;
    let mut o = 0;
    while o < len {
        let c: &[u8; CHUNK] = src[o..o + CHUNK].try_into().expect("copy sources have chunk slack");
        out.extend_from_slice(c);
        o += CHUNK;
    }
    out.truncate(end);
}

/// Writes `v` in decimal at the start of `out`; returns the number of digits.
#[inline]
fn put_u64(out: &mut [u8], mut v: u64) -> usize {
    let n = v.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut i = n;
    while v >= 100 {
        i -= 2;
        out[i..i + 2].copy_from_slice(&DEC_PAIRS[(v % 100) as usize]);
        v /= 100;
    }
    if v >= 10 {
        out[..2].copy_from_slice(&DEC_PAIRS[v as usize]);
    } else {
        out[0] = b'0' + v as u8;
    }
    n
}

/// Appends `v / 10^decimals` with exactly `decimals` fraction digits, in one copy.
#[inline]
fn put_scaled(out: &mut BytesMut, v: i64, decimals: u8) {
    let mut b = [0u8; CHUNK];
    let mut p = usize::from(v < 0);
    b[0] = b'-';
    let a = v.unsigned_abs();
    // Constant divisors for the common cases: multiplications instead of a division.
    let (int, frac) = match decimals {
        0 => (a, 0),
        2 => (a / 100, a % 100),
        3 => (a / 1000, a % 1000),
        d => (a / dist::POW10[d as usize], a % dist::POW10[d as usize]),
    };
    p += put_u64(&mut b[p..], int);
    if decimals > 0 {
        b[p] = b'.';
        let mut f = frac;
        for i in (1..=decimals as usize).rev() {
            b[p + i] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        p += decimals as usize + 1;
    }
    put_chunked(out, &b, p);
}

/// Per-worker generator: owns its PRNG and its cached timestamp and id prefixes.
pub struct Generator {
    spec: Arc<EventSpec>,
    rng: Rng,
    /// Trace and span ids (see `new`).
    trace_rng: Rng,
    worker: u16,
    /// Random bits that pick the next event's source and variant.
    next: u64,
    /// `{run}-{worker}-` then room for the sequence number.
    id: [u8; 64],
    id_len: usize,
    /// Unix second the cached timestamp texts are for.
    sec: u64,
    /// `2026-11-25T12:59:00.000000Z`: the micros are rewritten per event.
    ts3339: [u8; 27],
    ts_apache: [u8; 26],
    ts_bsd: [u8; 15],
    /// Copy of the spec's trace block (plus chunk slack); the hex slots are rewritten per event.
    trace: Vec<u8>,
    trace_len: usize,
    /// Per session field: (current id index, events left on it).
    sessions: Vec<(u32, u32)>,
}

impl Generator {
    pub fn new(spec: Arc<EventSpec>, worker: u16, run_id: RunId) -> Generator {
        let mut rng = Rng::derive(spec.seed, 0x5eed_0000_0000 | worker as u64);
        let next = rng.next_u64();
        let mut id = [0u8; 64];
        let p = format!("{run_id}-{worker}-");
        id[..p.len()].copy_from_slice(p.as_bytes());
        let sessions = vec![(0, 0); spec.sessions.len()];
        let trace_len = spec.trace_block.len();
        let mut trace = spec.trace_block.clone();
        trace.extend_from_slice(&[0; CHUNK]);
        // Trace context has its own stream, keyed by the run as well as the seed: two runs with
        // the same seed make the same events but never share a trace id.
        let trace_rng = Rng::derive(spec.seed ^ spate_core::rng::splitmix64(run_id.0), 0x7ace_0000_0000 | worker as u64);
        let mut g = Generator {
            spec,
            rng,
            trace_rng,
            worker,
            next,
            id,
            id_len: p.len(),
            sec: u64::MAX,
            ts3339: *b"1970-01-01T00:00:00.000000Z",
            ts_apache: [0; 26],
            ts_bsd: [0; 15],
            trace,
            trace_len,
            sessions,
        };
        g.set_second(0);
        g
    }

    /// Re-renders the cached timestamp texts for Unix second `sec` (once per second).
    #[cold]
    fn set_second(&mut self, sec: u64) {
        self.sec = sec;
        let c = time::Civil::from_unix(sec);
        let mut p = [0u8; 19];
        time::rfc3339_prefix(&c, &mut p);
        self.ts3339[..19].copy_from_slice(&p);
        time::apache(&c, &mut self.ts_apache);
        time::bsd(&c, &mut self.ts_bsd);
    }

    /// Appends one complete event, terminated by `b'\n'` (a separator that is not part of
    /// the event: binary formats may hold that byte inside), to `out`, and fills `meta`.
    #[inline]
    pub fn write_event(&mut self, seq: u64, ts_unix_ns: u64, out: &mut BytesMut, meta: &mut EventMeta) {
        let sec = ts_unix_ns / 1_000_000_000;
        if sec != self.sec {
            self.set_second(sec);
        }
        let spec = &*self.spec;
        // Variants are drawn one event ahead, so the next one can be pulled into cache now.
        let r = self.next;
        self.next = self.rng.next_u64();
        let (src, v) = spec.pick(r);
        let (start, len) = (v.start, v.len);
        spec.touch(spec.pick(self.next).1);
        let trace = ((self.trace_rng.next_u64() as u128) << 64 | self.trace_rng.next_u64() as u128).max(1);
        let span = self.trace_rng.next_u64().max(1);
        *meta = EventMeta {
            seq,
            trace_id: trace,
            span_id: span,
            source: src as u16,
            worker: self.worker,
            id_at: EventMeta::NONE,
            id_len: 0,
            tp_at: EventMeta::NONE,
        };
        if let Some(&(t0, _)) = spec.trace_slots.first() {
            // The first slot is the trace, the second the span; repeats are 32/16-byte copies.
            let mut th = [0u8; 32];
            crate::hex::bytes_into(&mut th, &trace.to_be_bytes());
            let mut sh = [0u8; 16];
            crate::hex::bytes_into(&mut sh, &span.to_be_bytes());
            debug_assert!(spec.trace_slots[0].1 && t0 == spec.trace_slots[0].0);
            for &(pos, is_trace) in &spec.trace_slots {
                if is_trace {
                    self.trace[pos..pos + 32].copy_from_slice(&th);
                } else {
                    self.trace[pos..pos + 16].copy_from_slice(&sh);
                }
            }
        }
        let begin = out.len();
        let mut block_at = begin;
        for op in &spec.ops[start as usize..(start + len) as usize] {
            match *op {
                Op::Lit { len, off } => put_chunked(out, &spec.blob[off as usize..], len as usize),
                Op::Ts3339 => {
                    let us = (ts_unix_ns % 1_000_000_000 / 1_000) as usize;
                    self.ts3339[20..22].copy_from_slice(&DEC_PAIRS[us / 10_000]);
                    self.ts3339[22..24].copy_from_slice(&DEC_PAIRS[us / 100 % 100]);
                    self.ts3339[24..26].copy_from_slice(&DEC_PAIRS[us % 100]);
                    out.extend_from_slice(&self.ts3339);
                }
                Op::TsApache => out.extend_from_slice(&self.ts_apache),
                Op::TsBsd => out.extend_from_slice(&self.ts_bsd),
                Op::Id => {
                    let n = put_u64(&mut self.id[self.id_len..], seq);
                    meta.id_at = (out.len() - begin) as u32;
                    meta.id_len = (self.id_len + n) as u32;
                    put_chunked(out, &self.id, self.id_len + n);
                }
                Op::Trace => {
                    if spec.tp_in_block != EventMeta::NONE {
                        meta.tp_at = (out.len() - begin) as u32 + spec.tp_in_block;
                    }
                    put_chunked(out, &self.trace, self.trace_len)
                }
                Op::Num { table, decimals } => {
                    let v = spec.draw(&mut self.rng, table);
                    put_scaled(out, v, decimals);
                }
                Op::Pool { base } => {
                    let (off, len) = spec.pool_entries[base as usize + (self.rng.next_u64() as usize & (TABLE - 1))];
                    put_chunked(out, &spec.blob[off as usize..], len as usize);
                }
                Op::Uuid => {
                    let hi = (self.rng.next_u64() & !0xf000) | 0x4000;
                    let lo = (self.rng.next_u64() & !(0b11 << 62)) | (0b10 << 62);
                    let mut raw = [0u8; 32];
                    crate::hex::bytes_into(&mut raw[..16], &hi.to_be_bytes());
                    crate::hex::bytes_into(&mut raw[16..], &lo.to_be_bytes());
                    let mut u = [b'-'; 36];
                    u[..8].copy_from_slice(&raw[..8]);
                    u[9..13].copy_from_slice(&raw[8..12]);
                    u[14..18].copy_from_slice(&raw[12..16]);
                    u[19..23].copy_from_slice(&raw[16..20]);
                    u[24..].copy_from_slice(&raw[20..]);
                    out.extend_from_slice(&u);
                }
                Op::Seq => {
                    let mut b = [0u8; CHUNK];
                    let n = put_u64(&mut b, seq);
                    put_chunked(out, &b, n);
                }
                Op::Session { slot } => {
                    let (off, len) = spec.session_entry(&mut self.sessions[slot as usize], &mut self.rng, slot);
                    put_chunked(out, &spec.blob[off as usize..], len as usize);
                }
                Op::Pad { tail } => {
                    let have = out.len() - begin + tail as usize;
                    if spec.size > have {
                        out.extend_from_slice(&spec.blob[spec.pad_off..spec.pad_off + (spec.size - have)]);
                    }
                }
                Op::AvroTs => {
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, (ts_unix_ns / 1_000) as i64);
                    out.extend_from_slice(&b[..n]);
                }
                Op::AvroId => {
                    let n = put_u64(&mut self.id[self.id_len..], seq);
                    let mut b = [0u8; 10];
                    let p = crate::avro::put_long(&mut b, (self.id_len + n) as i64);
                    out.extend_from_slice(&b[..p]);
                    meta.id_at = (out.len() - begin) as u32;
                    meta.id_len = (self.id_len + n) as u32;
                    put_chunked(out, &self.id, self.id_len + n);
                }
                Op::AvroLong { table } => {
                    let v = spec.draw(&mut self.rng, table);
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, v);
                    out.extend_from_slice(&b[..n]);
                }
                Op::AvroDouble { table, decimals } => {
                    let v = spec.draw(&mut self.rng, table) as f64 / dist::POW10[decimals as usize] as f64;
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Op::AvroSeq => {
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, seq as i64);
                    out.extend_from_slice(&b[..n]);
                }
                Op::AvroSession { slot } => {
                    let (off, len) = spec.session_entry(&mut self.sessions[slot as usize], &mut self.rng, slot);
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, len as i64);
                    out.extend_from_slice(&b[..n]);
                    put_chunked(out, &spec.blob[off as usize..], len as usize);
                }
                Op::Iter { table, decimals, avro } => {
                    let t = &spec.tables[table as usize * (TABLE + 1)..];
                    let v = t[0].wrapping_add(t[1].wrapping_mul(seq as i64));
                    if !avro {
                        put_scaled(out, v, decimals);
                    } else if decimals == 0 {
                        let mut b = [0u8; 10];
                        let n = crate::avro::put_long(&mut b, v);
                        out.extend_from_slice(&b[..n]);
                    } else {
                        out.extend_from_slice(&(v as f64 / dist::POW10[decimals as usize] as f64).to_le_bytes());
                    }
                }
                Op::Epoch { millis, avro } => {
                    let v = if millis { ts_unix_ns / 1_000_000 } else { ts_unix_ns / 1_000 };
                    if avro {
                        let mut b = [0u8; 10];
                        let n = crate::avro::put_long(&mut b, v as i64);
                        out.extend_from_slice(&b[..n]);
                    } else {
                        let mut b = [0u8; CHUNK];
                        let n = put_u64(&mut b, v);
                        put_chunked(out, &b, n);
                    }
                }
                Op::BlockStart => {
                    // The datum's length goes here once it is written: 3 bytes, a padded
                    // varint (readers take non-minimal varints), enough for 1 MiB.
                    block_at = out.len();
                    out.extend_from_slice(&[0x80, 0x80, 0]);
                }
                Op::BlockEnd => {
                    let n = out.len() - block_at - 3;
                    let z = crate::avro::zigzag(n as i64);
                    out[block_at..block_at + 3].copy_from_slice(&[0x80 | (z & 0x7f) as u8, 0x80 | (z >> 7 & 0x7f) as u8, (z >> 14) as u8]);
                }
                Op::AvroPad { tail } => {
                    // A string whose length prefix plus bytes fill the datum up to `size`. Where
                    // the prefix grows a byte (63 -> 64) no length fits exactly: one byte short.
                    let left = spec.size.saturating_sub(out.len() - begin + tail as usize);
                    let n = (1..=4).map(|k| left.saturating_sub(k)).find(|&n| crate::avro::long_len(n as i64) + n <= left).unwrap_or(0);
                    let mut b = [0u8; 10];
                    let p = crate::avro::put_long(&mut b, n as i64);
                    out.extend_from_slice(&b[..p]);
                    out.extend_from_slice(&spec.blob[spec.pad_off..spec.pad_off + n]);
                }
            }
        }
    }
}
