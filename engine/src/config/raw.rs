//! [`RawConfig`]: the config tree as written, every key of it; unknown keys are refused.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use spate_core::conf::{ByteSize, DataPath, HumanDuration};
use spate_gen::RawTemplate;
use spate_limit::redis::config::RawRedis;

use crate::audit::RawAudit;
use crate::avro::config::RawAvro;
use crate::sink::config::RawSink;
use crate::spans::RawTracing;

/// A rate as written: a number of events per second, or `max`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawRate {
    /// Events per second.
    Num(u64),
    /// Text: `max`, or a number such as `5_000/s`.
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
                u64::try_from(v)
                    .map(RawRate::Num)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
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
    /// Memory the run may use, e.g. `512MiB` (default: half of the cgroup's limit or of the
    /// machine's memory, whichever is smaller). Batches and the sink's in-flight bytes are sized
    /// within it; above 80 % of it (or of the cgroup's limit) generation is held back (`block`)
    /// or shed (`shed`, `spill`) until memory falls below 70 %.
    pub memory_budget: Option<ByteSize>,
    /// A global rate shared by every instance through Redis; `rate` is then ignored.
    pub redis: Option<RawRedis>,
    /// Sampled batch spans to a Zipkin v2 collector (off unless `endpoint` is set).
    pub tracing: Option<RawTracing>,
    /// Avro framing, container codec and Schema Registry (`format: avro`).
    pub avro: Option<RawAvro>,
    /// Generate records of this Avro schema (`.avsc`) or JSON Schema instead of `sources`.
    pub schema: Option<DataPath>,
    /// Levels a recursive type of `schema` expands (1 to 16, default 3): below them a union
    /// takes another branch and an array or map is empty.
    pub schema_depth: Option<usize>,
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
