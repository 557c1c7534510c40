//! The run configuration: one tree of settings.
//!
//! - `layer.rs`: each source of settings (a file, a request body, the command line) is a YAML
//!   tree; they are merged into one ([`layer::merge`], [`layer::Flags`]), older forms moved into
//!   place, then deserialized once into [`RawConfig`], which refuses unknown keys;
//! - `validate.rs`: [`RawConfig::validate`] checks every value and builds the typed
//!   [`RunConfig`] the engine never checks again; a problem is one [`ConfigError`] naming the
//!   key and the fix, never a silent correction;
//! - `walk.rs`: the config's JSON Schema (derived from these types) and walks over a tree by it:
//!   which values are data paths, secret files, secrets;
//! - `reference.rs`: the key reference (`spate config reference`, `docs/config.md`), generated
//!   from the same schema and the types' doc comments;
//! - `nesting.rs`: deep documents refused before parsing.
//!
//! Each section's types live with the component that reads them: `sink:` in `sink/config.rs`
//! (and each sink's folder), `redis:` in spate-limit, `templates` in spate-gen, `avro:` in
//! `avro/config.rs`, `tracing:` in `spans.rs`, `audit:` in `audit/`.

mod layer;
mod nesting;
pub mod reference;
mod validate;
pub mod walk;

use std::collections::BTreeMap;
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use spate_core::conf::{DataPath, HumanDuration};
use spate_core::ConfigError;
use spate_gen::{EventConfig, RawTemplate};
use spate_limit::redis::config::{RawRedis, RedisConfig};
use spate_limit::Rate;

use crate::audit::{AuditConfig, RawAudit};
use crate::avro::config::{AvroConfig, RawAvro};
use crate::sink::config::{RawSink, SinkConfig};
use crate::spans::{RawTracing, TracingConfig};

pub use layer::{merge, normalize, parse, set_path, FlagSetting, Flags, Target};
pub use nesting::{check_nesting, MAX_NESTING};
pub use spate_core::duration::{parse_duration, parse_duration_or_zero};
pub use validate::parse_rate;

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

impl JsonSchema for RawRate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["integer", "string"], "examples": [5000, "max"]})
    }
}

/// The tree the config was read from (layers merged), kept to find the secrets it holds. Its
/// `Debug` prints nothing of it, and it never compares (it is not part of the config's meaning).
#[derive(Clone, Default)]
pub struct SourceTree(pub Value);

impl std::fmt::Debug for SourceTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceTree(..)")
    }
}

impl PartialEq for SourceTree {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The configuration file's schema (also a request body's, and the flags'). Settings not given
/// take the default their doc states.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Events per second for this instance (1 to 10,000,000) or `max` (default 1000).
    pub rate: Option<RawRate>,
    /// Extra events that may be sent at once above the steady rate (default 0; at most 10 s of
    /// the rate).
    pub burst: Option<u64>,
    /// How long to generate, e.g. `30s`, `5m` (default: until stopped or `count` reached).
    pub duration: Option<HumanDuration>,
    /// Stop after this many events.
    pub count: Option<u64>,
    /// Worker threads, 1 to 1024 (default: one per core; with Kafka one less, for the flush
    /// thread; with PostgreSQL one).
    pub threads: Option<usize>,
    /// Pin workers to cores (default true).
    pub pin: Option<bool>,
    /// Where events go: one kind and its settings, e.g. `sink: {kafka: {brokers: ..., topic:
    /// ...}}`, or a shorthand: `stdout` (default), `null`, `kafka`, `file:PATH`,
    /// `tcp://HOST:PORT[?framing=octet]`, `postgres://USER@HOST:PORT/DB?table=T`.
    #[serde(default)]
    #[schemars(schema_with = "sink_schema")]
    pub sink: RawSink,
    /// Event format: `json` (default), `logfmt`, `apache_common`, `apache_combined`, `rfc5424`,
    /// `rfc3164` or `avro`.
    pub format: Option<String>,
    /// Source weights, e.g. `{web: 70, app: 20, payment: 10}` (default `{web: 1}`).
    pub sources: Option<BTreeMap<String, u32>>,
    /// User-defined sources, by name.
    pub templates: Option<BTreeMap<String, RawTemplate>>,
    /// Events of this many bytes: padded, or with fields left out (last first) when they would
    /// be larger.
    pub size: Option<usize>,
    /// The trace context in each event: `traceparent` (default without `size`), `ids`
    /// (`trace_id` and `span_id`) or `none` (default with `size`).
    pub trace_context: Option<String>,
    /// The fields events carry (json and logfmt; default all).
    pub fields: Option<Vec<String>>,
    /// PRNG seed: same seed, same events (apart from timestamps, ids and trace context).
    /// Default: random, reported in the summary and status so the run can be repeated.
    pub seed: Option<u64>,
    /// Once generation stops, how long the sink may settle what is in flight; what is unsettled
    /// then is dead-lettered or counted failed (0s to 1h, default `10s`).
    pub drain_timeout: Option<HumanDuration>,
    /// After a stall, how much missed schedule the limiter makes up at full speed (0s to 60s,
    /// default `1s`). Longer stalls are lost.
    pub catch_up: Option<HumanDuration>,
    /// Acks of events scheduled this long after the sink is ready are warm-up: reported apart
    /// (`warmup_latency_ms`), out of `latency_ms` (0s to 1h, default `1s`).
    pub warmup: Option<HumanDuration>,
    /// `block` (default: nothing is lost), `shed` (drop what does not fit, counted) or `spill`
    /// (Kafka and PostgreSQL: to the DLQ file while the sink's breaker is open).
    pub backpressure: Option<String>,
    /// Batches each worker ring holds, 2 to 65536 (default 16).
    pub ring_capacity: Option<usize>,
    /// Most events per batch, 1 to 65536 (default 1024; 8192 with the postgres sink).
    pub batch_size: Option<usize>,
    /// A global rate shared by every instance through Redis; `rate` is then ignored.
    pub redis: Option<RawRedis>,
    /// Sampled batch spans to a Zipkin v2 collector (off unless `endpoint` is set).
    pub tracing: Option<RawTracing>,
    /// Avro framing, container codec and Schema Registry (`format: avro`).
    pub avro: Option<RawAvro>,
    /// Generate records of this Avro schema (`.avsc`) or JSON Schema instead of `sources`.
    pub schema: Option<DataPath>,
    /// The audit trail in PostgreSQL: a row per run and its changes.
    pub audit: Option<RawAudit>,
    /// Deprecation notes from reading the config (older forms moved into place).
    #[serde(skip)]
    #[schemars(skip)]
    pub deprecated: Vec<String>,
    /// The merged tree it was read from (see [`SourceTree`]).
    #[serde(skip)]
    #[schemars(skip)]
    pub source: Option<SourceTree>,
}

fn sink_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let tagged = g.subschema_for::<RawSink>();
    schemars::json_schema!({
        "anyOf": [
            {"type": ["string", "null"], "description": "A shorthand: stdout, null, kafka, file:PATH, tcp://HOST:PORT[?framing=octet], postgres://USER@HOST:PORT/DB?table=T"},
            tagged,
        ]
    })
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
    pub sink: SinkConfig,
    pub events: EventConfig,
    pub backpressure: Backpressure,
    pub ring_capacity: NonZeroUsize,
    pub batch_size: NonZeroUsize,
    /// The Redis global limiter, if configured (then `rate` is the global rate, for display).
    pub redis: Option<RedisConfig>,
    /// Batch spans, if an endpoint is configured.
    pub tracing: Option<TracingConfig>,
    /// Avro framing, codec and registry (defaults unless the format is Avro).
    pub avro: AvroConfig,
    /// The audit trail, if configured.
    pub audit: Option<AuditConfig>,
    /// Deprecated forms the config used (a warning each, at start).
    pub deprecated: Vec<String>,
    /// The raw form it was built from, echoed by status.
    pub raw: RawConfig,
}

impl RunConfig {
    /// Bytes the run may hold in rings and in the sink's queue (0: no cap).
    pub fn max_inflight_bytes(&self) -> u64 {
        self.sink.kafka().map_or(0, |k| k.max_inflight_bytes)
    }
}

impl RawConfig {
    /// Parses one YAML (or JSON) document. Errors name the key's path. A document nested deeper
    /// than [`MAX_NESTING`] is refused before parsing.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        layer::finish(layer::parse(text)?)
    }

    /// Reads and parses a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_yaml(&read_file(path)?)
    }

    /// The file (if any) with the command line's flags laid over it: the one merge.
    pub fn load(file: Option<&Path>, flags: &Flags) -> Result<Self, ConfigError> {
        let below = match file {
            Some(p) => layer::parse(&read_file(p)?)?,
            None => Value::Null,
        };
        layer::finish(flags.apply(below)?)
    }

    /// A config from a merged tree (layers parsed with [`parse`] and laid with [`merge`]).
    pub fn from_tree(tree: Value) -> Result<Self, ConfigError> {
        layer::finish(tree)
    }

    /// The tree this config was read from, or (built in code) its serialized form (read through
    /// JSON's data model, so the sink is a key, not a YAML tag; unset keys left out).
    pub fn tree(&self) -> Value {
        match &self.source {
            Some(t) => t.0.clone(),
            None => {
                let mut json = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
                if let serde_json::Value::Object(m) = &mut json {
                    m.retain(|_, v| !v.is_null());
                }
                serde_yaml_ng::to_value(json).unwrap_or(Value::Null)
            }
        }
    }
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("--config", format!("cannot read `{}`: {e}", path.display()), "give the path of a readable YAML file")
    })
}

#[cfg(test)]
mod tests;
