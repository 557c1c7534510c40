//! Run configuration: YAML (or JSON) is deserialized into `RawConfig`, which rejects unknown
//! keys, then `RawConfig::validate` turns it into a typed `RunConfig` the engine never
//! re-checks. Every problem is reported once, naming the key and the fix.
//!
//! CLI flags are a second `RawConfig` laid over the file's (`overlay`): flags win.

use std::collections::BTreeMap;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::event::{EventConfig, Format, RawTemplate, TraceContext};
use crate::kafka::config::{KafkaConfig, RawKafka};
use crate::limit::redis::config::{RawRedis, RedisConfig};
use crate::limit::Rate;
use crate::spans::{RawTracing, TracingConfig};

fn explicit_null_is_null_sink<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?.unwrap_or_else(|| "null".to_string())))
}

/// A rate as written: a number of events per second, or `max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawRate {
    Num(u64),
    Text(String),
}

/// By hand rather than `untagged`, so a wrong type says what a rate is instead of "did not
/// match any variant".
impl<'de> Deserialize<'de> for RawRate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawRate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("events per second as a whole number (e.g. 5000) or `max`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawRate, E> {
                Ok(RawRate::Num(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawRate, E> {
                u64::try_from(v).map(RawRate::Num).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawRate, E> {
                Ok(RawRate::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The configuration file's schema. Every field is optional; defaults apply in `validate`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Events per second for this instance (1 to 10,000,000) or `max`. Default 1000.
    pub rate: Option<RawRate>,
    /// Extra events that may be sent at once above the steady rate. Default 0.
    pub burst: Option<u64>,
    /// How long to run, e.g. `30s`, `5m`, `250ms`. Default: until stopped or `count` reached.
    pub duration: Option<String>,
    /// Stop after this many events.
    pub count: Option<u64>,
    /// Worker threads. Default: one per available core.
    pub threads: Option<usize>,
    /// Pin workers to cores. Default true.
    pub pin: Option<bool>,
    /// `stdout` (default), `null`, `file:PATH` or `kafka`. YAML reads a bare `null` as "no
    /// value", so an explicit `sink: null` is taken to mean the null sink.
    #[serde(default, deserialize_with = "explicit_null_is_null_sink")]
    pub sink: Option<String>,
    /// Event format: json (default), logfmt, apache_common, apache_combined, rfc5424, rfc3164.
    pub format: Option<String>,
    /// Source weights, e.g. `{web: 70, app: 20, payment: 10}`. Default `{web: 1}`.
    pub sources: Option<BTreeMap<String, u32>>,
    /// User-defined sources.
    pub templates: Option<BTreeMap<String, RawTemplate>>,
    /// Events of about this many bytes: padded, or with fields left out (last first) when
    /// they would be larger.
    pub size: Option<usize>,
    /// The trace context in each line: `traceparent` (default without `size`), `ids`
    /// (`trace_id` and `span_id`) or `none` (default with `size`).
    pub trace_context: Option<String>,
    /// The fields events carry (json and logfmt); default all.
    pub fields: Option<Vec<String>>,
    /// PRNG seed: same seed, same events (apart from timestamps, ids and trace context).
    /// Default: a random seed, reported in the summary and status so the run can be repeated.
    pub seed: Option<u64>,
    /// How long the sink may take to settle what is in flight once generation stops (at the
    /// duration, the count, or a stop). Whatever is unsettled then is dead-lettered (Kafka: the
    /// DLQ file) or counted failed. Default `10s`.
    pub drain_timeout: Option<String>,
    /// After a stall, how much missed schedule the limiter makes up at full speed, as time
    /// (e.g. `1s`, the default; `0s` makes up only sleep overshoot). Longer stalls are lost.
    pub catch_up: Option<String>,
    /// How long after the sink is ready acks count as warm-up: their latency is reported apart
    /// (`warmup_latency_ms`) and kept out of `latency_ms`, as kafka-producer-perf-test's
    /// `--warmup-records` does. Default `1s`; `0s` for none.
    pub warmup: Option<String>,
    /// `block` (default: nothing is lost) or `shed` (drop batches when a ring is full, counted).
    pub backpressure: Option<String>,
    /// Batches each worker ring holds. Default 16.
    pub ring_capacity: Option<usize>,
    /// Most events per batch. Default 1024 (8192 with the postgres sink: a batch is a transaction).
    pub batch_size: Option<usize>,
    /// Kafka sink settings.
    pub kafka: Option<RawKafka>,
    /// Global rate across instances through Redis (`limit/redis/`). When set, `rate` is
    /// irrelevant: the global rate rules.
    pub redis: Option<RawRedis>,
    /// Sampled batch spans to a Zipkin v2 collector (`spans.rs`). Off unless `endpoint` is set.
    pub tracing: Option<RawTracing>,
    /// Avro framing, container codec and Schema Registry (`format: avro`).
    pub avro: Option<crate::avro::config::RawAvro>,
    /// An Avro schema file (`.avsc`) or a JSON Schema: generate records that conform to it
    /// (hints in each Avro type's `arg.properties`, as kafka-connect-datagen reads them)
    /// instead of `sources`. The format is then `avro` (default for Avro) or `json`.
    pub schema: Option<std::path::PathBuf>,
    /// The audit trail in PostgreSQL (`audit.rs`): a row per run and its changes.
    pub audit: Option<crate::audit::RawAudit>,
}

/// What to do when a ring (or the in-flight byte budget) is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backpressure {
    Block,
    Shed,
    /// Kafka and PostgreSQL: while the sink's circuit breaker is OPEN, events keep being
    /// generated and go to the DLQ file (counted dead-lettered) instead of the sink; a full ring
    /// blocks as `block`.
    Spill,
}

/// Where events go.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkTarget {
    Stdout,
    Null,
    File(PathBuf),
    Kafka,
    /// `tcp://HOST:PORT[?framing=octet]`
    Tcp(String, crate::tcp::Framing),
    /// `postgres://USER@HOST:PORT/DB?table=T`
    Postgres(crate::pg::PgTarget),
}

impl std::fmt::Display for SinkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkTarget::Stdout => f.write_str("stdout"),
            SinkTarget::Null => f.write_str("null"),
            SinkTarget::File(p) => write!(f, "file:{}", p.display()),
            SinkTarget::Kafka => f.write_str("kafka"),
            SinkTarget::Tcp(a, crate::tcp::Framing::Newline) => write!(f, "tcp://{a}"),
            SinkTarget::Tcp(a, crate::tcp::Framing::Octet) => write!(f, "tcp://{a}?framing=octet"),
            SinkTarget::Postgres(t) => f.write_str(&t.display()),
        }
    }
}

/// A validated run configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub rate: Rate,
    pub burst: u64,
    pub duration: Option<Duration>,
    /// Once generation stops, how long the sink may take to settle what is in flight.
    pub drain_timeout: Duration,
    /// Missed schedule the limiter makes up after a stall.
    pub catch_up: Duration,
    /// Acks of events scheduled this long after the sink is ready are warm-up.
    pub warmup: Duration,
    /// False when the seed was drawn at random (`events.seed` holds it either way).
    pub seed_given: bool,
    pub count: Option<NonZeroU64>,
    pub threads: NonZeroUsize,
    pub pin: bool,
    pub sink: SinkTarget,
    pub events: EventConfig,
    pub backpressure: Backpressure,
    pub ring_capacity: NonZeroUsize,
    pub batch_size: NonZeroUsize,
    pub kafka: KafkaConfig,
    /// The Redis global limiter, if configured (then `rate` is the global rate, for display).
    pub redis: Option<RedisConfig>,
    /// Batch spans, if an endpoint is configured.
    pub tracing: Option<TracingConfig>,
    /// Avro framing, codec and registry (defaults unless the format is Avro).
    pub avro: crate::avro::config::AvroConfig,
    /// The audit trail, if configured.
    pub audit: Option<crate::audit::AuditConfig>,
    /// The raw form it was built from, echoed by status.
    pub raw: RawConfig,
}

pub mod duration;
mod nesting;
pub use duration::{parse_duration, parse_duration_or_zero};
pub use nesting::{check_nesting, MAX_NESTING};

impl RawConfig {
    /// Parses YAML (JSON is YAML too). Errors name the key path and the position. A document
    /// nested deeper than [`MAX_NESTING`] is refused before parsing.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        check_nesting(text)?;
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.to_string();
            let fix = if msg.contains("unknown field") {
                "remove or rename the key; the accepted keys are listed above".to_string()
            } else if msg.contains("invalid type") {
                "give the value the type shown".to_string()
            } else {
                "correct the YAML at the position shown".to_string()
            };
            ConfigError::new(if path == "." { "(document)".into() } else { path }, msg, fix)
        })
    }

    /// Reads and parses a config file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("--config", format!("cannot read `{}`: {e}", path.display()), "give the path of a readable YAML file")
        })?;
        Self::from_yaml(&text)
    }

    /// Lays `top` over `self`: every field `top` sets wins.
    pub fn overlay(self, top: RawConfig) -> RawConfig {
        RawConfig {
            rate: top.rate.or(self.rate),
            burst: top.burst.or(self.burst),
            duration: top.duration.or(self.duration),
            count: top.count.or(self.count),
            threads: top.threads.or(self.threads),
            pin: top.pin.or(self.pin),
            sink: top.sink.or(self.sink),
            format: top.format.or(self.format),
            sources: top.sources.or(self.sources),
            templates: match (self.templates, top.templates) {
                (Some(mut a), Some(b)) => {
                    a.extend(b);
                    Some(a)
                }
                (a, b) => b.or(a),
            },
            size: top.size.or(self.size),
            trace_context: top.trace_context.or(self.trace_context),
            fields: top.fields.or(self.fields),
            seed: top.seed.or(self.seed),
            drain_timeout: top.drain_timeout.or(self.drain_timeout),
            catch_up: top.catch_up.or(self.catch_up),
            warmup: top.warmup.or(self.warmup),
            backpressure: top.backpressure.or(self.backpressure),
            ring_capacity: top.ring_capacity.or(self.ring_capacity),
            batch_size: top.batch_size.or(self.batch_size),
            kafka: match (self.kafka, top.kafka) {
                (Some(a), Some(b)) => Some(a.overlay(b)),
                (a, b) => b.or(a),
            },
            redis: match (self.redis, top.redis) {
                (Some(a), Some(b)) => Some(a.overlay(b)),
                (a, b) => b.or(a),
            },
            tracing: match (self.tracing, top.tracing) {
                (Some(a), Some(b)) => Some(a.overlay(b)),
                (a, b) => b.or(a),
            },
            schema: top.schema.or(self.schema),
            audit: match (self.audit, top.audit) {
                (Some(a), Some(b)) => Some(a.overlay(b)),
                (a, b) => b.or(a),
            },
            avro: match (self.avro, top.avro) {
                (Some(a), Some(b)) => Some(a.overlay(b)),
                (a, b) => b.or(a),
            },
        }
    }

    /// Checks everything and builds typed values.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let rate = match &self.rate {
            None => Rate::PerSec(NonZeroU64::new(1000).unwrap()),
            Some(r) => parse_rate(r, "rate")?,
        };
        let duration = self.duration.as_deref().map(|d| parse_duration(d, "duration")).transpose()?;
        let count = match self.count {
            None => None,
            Some(0) => {
                return Err(ConfigError::new(
                    "count",
                    "count must be at least 1",
                    "omit `count` to run until the duration ends or the run is stopped",
                ))
            }
            Some(n) => NonZeroU64::new(n),
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let sink = parse_sink(self.sink.as_deref().unwrap_or("stdout"))?;
        let threads = match self.threads {
            // One worker per core, except that the Kafka sink keeps a core for the flush thread
            // and librdkafka's broker threads (see tuning.md).
            None if sink == SinkTarget::Kafka => NonZeroUsize::new(cores.saturating_sub(1).max(1)).unwrap(),
            // One worker generates millions of events/s, many times what a PostgreSQL backend
            // loads; more would only take CPU from a server on the same machine.
            None if matches!(sink, SinkTarget::Postgres(_)) => NonZeroUsize::MIN,
            None => NonZeroUsize::new(cores).unwrap(),
            Some(0) => {
                return Err(ConfigError::new(
                    "threads",
                    "threads must be at least 1",
                    format!("use 1 to 1024 (about one per core: {cores} here)"),
                ))
            }
            Some(n) if n > 1024 => {
                return Err(ConfigError::new(
                    "threads",
                    format!("{n} threads is more than 1024"),
                    format!("use about one per core ({cores} here)"),
                ))
            }
            Some(n) => NonZeroUsize::new(n).unwrap(),
        };
        let schema = match &self.schema {
            None => None,
            Some(p) => {
                if self.sources.is_some() || self.templates.is_some() {
                    return Err(ConfigError::new(
                        "schema",
                        "`schema` and `sources`/`templates` are both set",
                        "use the schema's records, or the sources: drop one of them",
                    ));
                }
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ConfigError::new("schema", format!("cannot read `{}`: {e}", p.display()), "give the path of a readable .avsc file")
                })?;
                Some(crate::event::strip_comments(&text))
            }
        };
        let format: Format = match &self.format {
            // A schema's records: Avro for an Avro schema, JSON for a JSON Schema.
            None if schema.as_deref().is_some_and(crate::event::is_json_schema) => Format::Json,
            None if schema.is_some() => Format::Avro,
            None => Format::Json,
            Some(f) => f.parse().map_err(|_| {
                ConfigError::new(
                    "format",
                    format!("unknown format `{f}`"),
                    format!("use one of: {}", Format::ALL.map(|f| f.to_string()).join(", ")),
                )
            })?,
        };
        let sources: Vec<(String, u32)> = match &self.sources {
            None => vec![("web".to_string(), 1)],
            Some(m) => m.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        };
        if let Some(s) = self.size {
            if s == 0 {
                return Err(ConfigError::new("size", "size must be at least 1 byte", "omit `size` for natural event sizes"));
            }
        }
        // With `size` the envelope is the smallest one unless trace context is asked for.
        let trace = match &self.trace_context {
            None if self.size.is_some() => TraceContext::None,
            None => TraceContext::Traceparent,
            Some(t) => t.parse().map_err(|_| {
                ConfigError::new(
                    "trace_context",
                    format!("unknown trace context `{t}`"),
                    "use traceparent (W3C, one field), ids (trace_id and span_id) or none",
                )
            })?,
        };
        let events = EventConfig {
            wire_prefix: Vec::new(),
            avro_records_apart: false,
            container_sync: None,
            schema,
            trace,
            fields: self.fields.clone(),
            format,
            sources,
            templates: self.templates.clone().unwrap_or_default(),
            size: self.size,
            seed: self.seed.unwrap_or_else(random_seed),
        };
        let drain_timeout = match self.drain_timeout.as_deref() {
            None => Duration::from_secs(10),
            Some(d) => parse_duration_or_zero(d, "drain_timeout")?,
        };
        if drain_timeout > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "drain_timeout",
                format!("{drain_timeout:?} is longer than an hour"),
                "use 0s to 1h (default 10s)",
            ));
        }
        let catch_up = match self.catch_up.as_deref() {
            None => Duration::from_secs(1),
            Some(d) => parse_duration_or_zero(d, "catch_up")?,
        };
        if catch_up > Duration::from_secs(60) {
            return Err(ConfigError::new("catch_up", format!("{catch_up:?} is longer than a minute"), "use 0s to 60s (default 1s)"));
        }
        let warmup = match self.warmup.as_deref() {
            None => Duration::from_secs(1),
            Some(d) => parse_duration_or_zero(d, "warmup")?,
        };
        if warmup > Duration::from_secs(3600) {
            return Err(ConfigError::new("warmup", format!("{warmup:?} is longer than an hour"), "use 0s to 1h (default 1s)"));
        }
        let burst = self.burst.unwrap_or(0);
        // A burst is a catch-up allowance, not a second rate: at most 10 s of the rate.
        let burst_max = rate.per_sec().unwrap_or(Rate::MAX_PER_SEC).saturating_mul(10).min(Rate::MAX_PER_SEC);
        if burst > burst_max {
            return Err(ConfigError::new(
                "burst",
                format!("a burst of {burst} events is more than 10 s of the rate"),
                format!("use 0 to {burst_max}"),
            ));
        }
        let backpressure = match self.backpressure.as_deref() {
            None | Some("block") => Backpressure::Block,
            Some("shed") => Backpressure::Shed,
            Some("spill") if sink == SinkTarget::Kafka || matches!(sink, SinkTarget::Postgres(_)) => Backpressure::Spill,
            Some("spill") => {
                return Err(ConfigError::new(
                    "backpressure",
                    format!("`spill` writes to the DLQ file while the sink's circuit breaker is open; the `{sink}` sink has neither"),
                    "use `spill` with the kafka or postgres sink, or `block` / `shed`",
                ))
            }
            Some(o) => {
                return Err(ConfigError::new(
                    "backpressure",
                    format!("unknown policy `{o}`"),
                    "use `block` (wait, lose nothing), `shed` (drop and count) or, with Kafka or PostgreSQL, `spill` (to the DLQ file while the breaker is open)",
                ))
            }
        };
        let ring_capacity = match self.ring_capacity.unwrap_or(16) {
            n @ 2..=65_536 => NonZeroUsize::new(n).unwrap(),
            n => return Err(ConfigError::new("ring_capacity", format!("{n} batches is out of range"), "use 2 to 65536 (default 16)")),
        };
        // A PostgreSQL batch is a transaction, and each commit waits for the WAL flush: larger
        // batches by default (tuning.md: 1,024 gave 76k rows/s, 8,192 gave 107k, 32,768 139k).
        let default_batch = if matches!(sink, SinkTarget::Postgres(_)) { 8192 } else { 1024 };
        let batch_size = match self.batch_size.unwrap_or(default_batch) {
            n @ 1..=65_536 => NonZeroUsize::new(n).unwrap(),
            n => return Err(ConfigError::new("batch_size", format!("{n} events is out of range"), "use 1 to 65536 (default 1024)")),
        };
        let kafka = KafkaConfig::from_raw(self.kafka.as_ref(), matches!(sink, SinkTarget::Kafka))?;
        let avro = self.avro.clone().unwrap_or_default().validate(format == Format::Avro)?;
        if format == Format::Avro {
            check_avro_sink(&sink, &avro)?;
        }
        if matches!(sink, SinkTarget::Postgres(_)) && format != Format::Json {
            return Err(ConfigError::new(
                "format",
                format!("the postgres sink stores each event as JSONB: {format} is not JSON"),
                "use format: json with a postgres sink",
            ));
        }
        let redis = self.redis.as_ref().map(RawRedis::validate).transpose()?;
        let tracing = match &self.tracing {
            Some(t) => t.validate()?,
            None => None,
        };
        // With a global limit the instance rate is irrelevant; report the global rate.
        let rate = match &redis {
            Some(r) => Rate::PerSec(r.global_rate),
            None => rate,
        };
        Ok(RunConfig {
            rate,
            burst,
            duration,
            drain_timeout,
            catch_up,
            warmup,
            seed_given: self.seed.is_some(),
            count,
            threads,
            pin: self.pin.unwrap_or(true),
            sink,
            events,
            backpressure,
            ring_capacity,
            batch_size,
            kafka,
            redis,
            tracing,
            avro,
            audit: self.audit.as_ref().map(crate::audit::RawAudit::validate).transpose()?.flatten(),
            raw: self.clone(),
        })
    }
}

/// Where Avro can go: files and stdout get object containers, Kafka and TCP (with octet
/// framing: a datum may hold newline bytes) get one datum per record or frame.
fn check_avro_sink(sink: &SinkTarget, avro: &crate::avro::config::AvroConfig) -> Result<(), ConfigError> {
    use crate::avro::config::Framing;
    match sink {
        SinkTarget::Tcp(_, crate::tcp::Framing::Newline) => Err(ConfigError::new(
            "sink",
            "Avro datums are binary and may hold newline bytes: newline framing would split them",
            "add ?framing=octet to the tcp:// sink (RFC 6587 octet counting)",
        )),
        SinkTarget::Stdout | SinkTarget::File(_) if avro.framing != Framing::Raw => Err(ConfigError::new(
            "avro.framing",
            format!("files and stdout hold one Avro object container, not {:?}-framed records", avro.framing),
            "drop avro.framing, schema_id and schema_registry for file and stdout sinks (they apply to kafka and tcp)",
        )),
        _ if avro.avro_keys && *sink != SinkTarget::Kafka => {
            Err(ConfigError::new("avro.key_format", "only Kafka records have keys", "drop avro.key_format, or use sink: kafka"))
        }
        _ => Ok(()),
    }
}

/// A seed for a run that was given none: different in every process and every call.
fn random_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    crate::rng::splitmix64(now ^ (u64::from(std::process::id()) << 32) ^ crate::rng::splitmix64(n))
}

/// `max`, or 1 to 10,000,000 events per second.
pub fn parse_rate(r: &RawRate, key: &str) -> Result<Rate, ConfigError> {
    let fix = "give events per second from 1 to 10000000, or `max`";
    let n = match r {
        RawRate::Num(n) => *n,
        RawRate::Text(t) if t.trim() == "max" => return Ok(Rate::Max),
        RawRate::Text(t) => {
            let t = t.trim().trim_end_matches("/s").replace('_', "");
            t.parse::<u64>().map_err(|_| ConfigError::new(key, format!("`{t}` is not a rate"), fix))?
        }
    };
    match n {
        0 => Err(ConfigError::new(key, "a rate of 0 would never send anything", fix)),
        n if n > Rate::MAX_PER_SEC => {
            Err(ConfigError::new(key, format!("{n}/s is above the 10000000/s limit"), "use `max` for as fast as possible, or a lower rate"))
        }
        n => Ok(Rate::PerSec(NonZeroU64::new(n).unwrap())),
    }
}

pub fn parse_sink(s: &str) -> Result<SinkTarget, ConfigError> {
    match s {
        "stdout" | "-" => Ok(SinkTarget::Stdout),
        "null" => Ok(SinkTarget::Null),
        "kafka" => Ok(SinkTarget::Kafka),
        s if s.starts_with("file:") && s.len() > 5 => Ok(SinkTarget::File(PathBuf::from(&s[5..]))),
        s if s.starts_with("tcp://") => crate::tcp::parse_target(s).map(|(a, f)| SinkTarget::Tcp(a, f)),
        s if s.starts_with("postgres://") || s.starts_with("postgresql://") => crate::pg::PgTarget::parse(s).map(SinkTarget::Postgres),
        _ => Err(ConfigError::new(
            "sink",
            format!("unknown sink `{s}`"),
            "use stdout, null, file:PATH, tcp://HOST:PORT, kafka or postgres://USER@HOST:PORT/DB?table=T",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let e = RawConfig::from_yaml("rate: 10\nratee: 5\n").unwrap_err();
        assert!(e.message.contains("unknown field `ratee`"), "{e}");
        let e = RawConfig::from_yaml("kafka:\n  topik: x\n").unwrap_err();
        assert_eq!(e.key, "kafka.topik");
        assert!(e.message.contains("topik"), "{e}");
    }

    #[test]
    fn yaml_null_sink_means_the_null_sink() {
        let c = RawConfig::from_yaml("sink: null\n").unwrap().validate().unwrap();
        assert_eq!(c.sink, SinkTarget::Null);
        let c = RawConfig::from_yaml("rate: 5\n").unwrap().validate().unwrap();
        assert_eq!(c.sink, SinkTarget::Stdout);
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate(&RawRate::Text("max".into()), "rate").unwrap(), Rate::Max);
        assert_eq!(parse_rate(&RawRate::Num(5), "rate").unwrap().per_sec(), Some(5));
        assert!(parse_rate(&RawRate::Num(0), "rate").unwrap_err().message.contains("rate of 0"));
        assert!(parse_rate(&RawRate::Num(10_000_001), "rate").is_err());
        assert!(parse_rate(&RawRate::Text("fast".into()), "rate").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms", "d").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m", "d").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("3", "d").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s", "d").is_err());
        assert!(parse_duration("5 parsecs", "d").is_err());
    }

    #[test]
    fn flags_override_file() {
        let file = RawConfig::from_yaml("rate: 10\nformat: logfmt\n").unwrap();
        let flags = RawConfig { rate: Some(RawRate::Text("max".into())), ..Default::default() };
        let c = file.overlay(flags).validate().unwrap();
        assert_eq!(c.rate, Rate::Max);
        assert_eq!(c.events.format, Format::Logfmt);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (yaml, key) in [
            ("threads: 0", "threads"),
            ("backpressure: drop", "backpressure"),
            ("sink: tcp", "sink"),
            ("format: xml", "format"),
            ("count: 0", "count"),
            ("ring_capacity: 1", "ring_capacity"),
        ] {
            let e = RawConfig::from_yaml(yaml).unwrap().validate().unwrap_err();
            assert_eq!(e.key, key, "{yaml}: {e}");
            assert!(e.to_string().contains("fix:"), "{e}");
        }
    }
}
