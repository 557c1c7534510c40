//! Kafka settings: the raw `kafka:` section as written (unknown keys rejected), and the
//! validated `KafkaConfig` the sink uses, plus the librdkafka client configuration built from it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rdkafka::config::ClientConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use spate_core::breaker::{BreakerConfig, RawBreaker};
use spate_core::conf::{ByteSize, DataPath};
use spate_core::ConfigError;

use super::security::{RawSasl, RawTls, Security};

/// `sink: {kafka: ...}` as written (also the deprecated top-level `kafka:` section).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Bootstrap servers, `host:port[,host:port...]` (`${NAME}` reads the environment). Unset:
    /// an embedded in-memory mock cluster, for trying things out.
    pub brokers: Option<String>,
    /// Topic, or a template with `{source}`, e.g. `logs.{source}` (default `spate`).
    pub topic: Option<String>,
    /// Record key: `none` (default), `source`, `trace_id` or `round_robin` (explicit partitions).
    pub key: Option<String>,
    /// `all` (default), `1` or `0`.
    pub acks: Option<String>,
    /// `none`, `lz4` (default), `zstd`, `snappy` or `gzip`.
    pub compression: Option<String>,
    /// Idempotent producer (default true): no duplicates from retries.
    pub idempotence: Option<bool>,
    /// Add `traceparent` and `spate-id` headers to every record (default true).
    pub headers: Option<bool>,
    /// librdkafka `linger.ms`, 0 to 900000 (default 5).
    pub linger_ms: Option<u64>,
    /// librdkafka `message.timeout.ms`: how long librdkafka retries a record, 1 to 2147483647
    /// (default 30000).
    pub message_timeout_ms: Option<u64>,
    /// Application retries after librdkafka gave up (only with idempotence), 0 to 100 (default 5).
    pub retries: Option<u32>,
    /// Dead-letter topic (default `spate.dlq`).
    pub dlq_topic: Option<String>,
    /// Dead-letter file (JSON lines) for records Kafka did not take (default `spate-dlq.jsonl`).
    pub dlq_file: Option<DataPath>,
    /// Cap on bytes held in rings and in librdkafka's queue, at least 1MiB (default 256MiB).
    pub max_inflight_bytes: Option<ByteSize>,
    /// Adaptive batcher: ack latency to stay under, in ms, 1 to 60000 (default 50).
    pub latency_target_ms: Option<u64>,
    /// Records awaiting their ack: unset, the ack-driven window (`inflight.rs`) chooses;
    /// a number (2,048 to 1,000,000) fixes it.
    pub inflight_records: Option<u64>,
    /// Partitions per topic of the embedded cluster, 1 to 1024 (default 4).
    pub partitions: Option<i32>,
    /// The sink's circuit breaker (each produce call is a call).
    pub breaker: Option<RawBreaker>,
    /// TLS to the brokers (present: on).
    pub tls: Option<RawTls>,
    /// SASL authentication.
    pub sasl: Option<RawSasl>,
    /// Any other librdkafka property (`--kafka-opt key=value`).
    pub options: Option<BTreeMap<String, String>>,
}

/// What each record's key is (`sink.kafka.key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStrategy {
    /// No key.
    None,
    /// The event's source name.
    Source,
    /// The event's trace id.
    TraceId,
    /// No key: each source's records go to its topic's partitions in turn.
    RoundRobin,
}

/// Validated Kafka settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KafkaConfig {
    /// Bootstrap servers, `${NAME}` expanded; None: the embedded mock cluster.
    pub brokers: Option<String>,
    /// Topic, or a template with `{source}`.
    pub topic: String,
    /// What each record's key is.
    pub key: KeyStrategy,
    /// `all`, `1` or `0`.
    pub acks: String,
    /// `none`, `lz4`, `zstd`, `snappy` or `gzip`.
    pub compression: String,
    /// Idempotent producer: no duplicates from retries.
    pub idempotence: bool,
    /// Add `traceparent` and `spate-id` headers to every record.
    pub headers: bool,
    /// librdkafka `linger.ms`.
    pub linger_ms: u64,
    /// librdkafka `message.timeout.ms`: how long librdkafka retries a record.
    pub message_timeout_ms: u64,
    /// Application retries after librdkafka gave up (only with idempotence).
    pub retries: u32,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Dead-letter file (JSON lines) for records Kafka did not take.
    pub dlq_file: PathBuf,
    /// Cap on bytes held in rings and in librdkafka's queue.
    pub max_inflight_bytes: u64,
    /// Ack latency the adaptive batcher stays under, in ms.
    pub latency_target_ms: u64,
    /// A fixed in-flight window, or None for the ack-driven one.
    pub inflight_records: Option<u64>,
    /// Partitions per topic of the embedded cluster.
    pub partitions: i32,
    /// The sink's circuit breaker.
    pub breaker: BreakerConfig,
    /// TLS and SASL to the brokers.
    pub security: Security,
    /// Other librdkafka properties, passed through as given.
    pub options: Vec<(String, String)>,
}

/// librdkafka properties that have a typed option, and the option to use instead.
const TYPED: &[(&str, &str)] = &[
    ("bootstrap.servers", "--brokers"),
    ("metadata.broker.list", "--brokers"),
    ("acks", "--acks"),
    ("request.required.acks", "--acks"),
    ("compression.type", "--compression"),
    ("compression.codec", "--compression"),
    ("enable.idempotence", "--idempotence / sink.kafka.idempotence"),
    ("linger.ms", "sink.kafka.linger_ms"),
    ("queue.buffering.max.ms", "sink.kafka.linger_ms"),
    ("message.timeout.ms", "--message-timeout-ms / sink.kafka.message_timeout_ms"),
    ("delivery.timeout.ms", "--message-timeout-ms / sink.kafka.message_timeout_ms"),
];

impl KafkaConfig {
    /// Checks every setting.
    pub fn from_raw(r: &RawKafka) -> Result<Self, ConfigError> {
        Self::from_raw_with(r, &mut Vec::new())
    }

    /// Checks every setting; deprecated keys in use are pushed to `deprecated`.
    pub fn from_raw_with(r: &RawKafka, deprecated: &mut Vec<String>) -> Result<Self, ConfigError> {
        let topic = r.topic.clone().unwrap_or_else(|| "spate".into());
        check_topic(&topic.replace("{source}", "x"), "sink.kafka.topic")?;
        let key = match r.key.as_deref().unwrap_or("none") {
            "none" => KeyStrategy::None,
            "source" => KeyStrategy::Source,
            "trace_id" => KeyStrategy::TraceId,
            "round_robin" => KeyStrategy::RoundRobin,
            o => {
                return Err(ConfigError::new(
                    "sink.kafka.key",
                    format!("unknown key strategy `{o}`"),
                    "use none, source, trace_id or round_robin",
                ))
            }
        };
        let acks = match r.acks.as_deref().unwrap_or("all") {
            "all" | "-1" => "all".to_string(),
            a @ ("0" | "1") => a.to_string(),
            o => {
                return Err(ConfigError::new(
                    "sink.kafka.acks",
                    format!("unknown acks `{o}`"),
                    "use all, 1 or 0",
                ))
            }
        };
        let compression = match r.compression.as_deref().unwrap_or("lz4") {
            c @ ("none" | "lz4" | "zstd" | "snappy" | "gzip") => c.to_string(),
            o => {
                return Err(ConfigError::new(
                    "sink.kafka.compression",
                    format!("unknown compression `{o}`"),
                    "use none, lz4, zstd, snappy or gzip",
                ))
            }
        };
        let idempotence = r.idempotence.unwrap_or(true);
        if idempotence && acks != "all" {
            return Err(ConfigError::new(
                "sink.kafka.acks",
                format!("acks={acks} cannot be used with idempotence"),
                "use acks all, or turn idempotence off (--no-idempotence)",
            ));
        }
        let mut options = Vec::new();
        for (k, v) in r.options.clone().unwrap_or_default() {
            if let Some((_, instead)) =
                TYPED.iter().chain(super::security::TYPED).find(|(t, _)| *t == k)
            {
                return Err(ConfigError::new(
                    format!("sink.kafka.options.{k}"),
                    format!("`{k}` has a typed option"),
                    format!("set it with {instead} instead of --kafka-opt"),
                ));
            }
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                return Err(ConfigError::new(
                    "sink.kafka.options",
                    format!("`{k}` is not a librdkafka property name"),
                    "write --kafka-opt key=value, e.g. batch.size=1000000",
                ));
            }
            options.push((k, v));
        }
        // librdkafka knows its own properties: let it judge each passthrough option now (no
        // connection is made), so a misspelt one is a config error, not a failed start.
        for (k, v) in &options {
            let mut c = ClientConfig::new();
            c.set(k, v);
            if let Err(e) = c.create_native_config() {
                return Err(ConfigError::new(
                    format!("sink.kafka.options.{k}"),
                    format!("librdkafka refuses `{k}`: {e}"),
                    "check the property name and value against librdkafka's CONFIGURATION.md",
                ));
            }
        }
        let breaker =
            r.breaker.clone().unwrap_or_default().validate("sink.kafka.breaker", deprecated)?;
        let partitions = r.partitions.unwrap_or(4);
        if !(1..=1024).contains(&partitions) {
            return Err(ConfigError::new(
                "sink.kafka.partitions",
                format!("{partitions} partitions is out of range"),
                "use 1 to 1024",
            ));
        }
        let max_inflight_bytes = r.max_inflight_bytes.map_or(256 << 20, |b| b.0);
        if max_inflight_bytes < 1 << 20 {
            return Err(ConfigError::new(
                "sink.kafka.max_inflight_bytes",
                format!("{max_inflight_bytes} bytes is too small to hold a batch"),
                "use at least 1MiB (the default is 256MiB)",
            ));
        }
        let inflight_records = match r.inflight_records {
            None => None,
            Some(n @ super::inflight::MIN..=super::inflight::MAX) => Some(n),
            Some(n) => {
                return Err(ConfigError::new(
                    "sink.kafka.inflight_records",
                    format!("{n} records is out of range"),
                    format!(
                        "use {} to {}, or omit it for the ack-driven window",
                        super::inflight::MIN,
                        super::inflight::MAX
                    ),
                ))
            }
        };
        let security = Security::from_raw(r.tls.as_ref(), r.sasl.as_ref())?;
        let ranged = |v: Option<u64>, dflt: u64, lo: u64, hi: u64, key: &str| match v {
            None => Ok(dflt),
            Some(n) if (lo..=hi).contains(&n) => Ok(n),
            Some(n) => Err(ConfigError::new(
                key,
                format!("{n} is out of range"),
                format!("use {lo} to {hi} (default {dflt})"),
            )),
        };
        let linger_ms = ranged(r.linger_ms, 5, 0, 900_000, "sink.kafka.linger_ms")?;
        let message_timeout_ms = ranged(
            r.message_timeout_ms,
            30_000,
            1,
            2_147_483_647,
            "sink.kafka.message_timeout_ms",
        )?;
        let latency_target_ms =
            ranged(r.latency_target_ms, 50, 1, 60_000, "sink.kafka.latency_target_ms")?;
        let retries = ranged(r.retries.map(u64::from), 5, 0, 100, "sink.kafka.retries")? as u32;
        let brokers = r
            .brokers
            .as_deref()
            .map(|b| spate_core::secret::expand(b, "sink.kafka.brokers"))
            .transpose()?;
        Ok(Self {
            brokers: brokers.filter(|b| !b.is_empty()),
            topic,
            key,
            acks,
            compression,
            idempotence,
            headers: r.headers.unwrap_or(true),
            linger_ms,
            message_timeout_ms,
            retries,
            dlq_topic: r.dlq_topic.clone().unwrap_or_else(|| "spate.dlq".into()),
            dlq_file: r
                .dlq_file
                .as_ref()
                .map_or_else(|| PathBuf::from("spate-dlq.jsonl"), |p| p.0.clone()),
            max_inflight_bytes,
            latency_target_ms,
            inflight_records,
            partitions,
            breaker,
            security,
            options,
        })
    }

    /// The librdkafka producer configuration.
    pub fn client_config(&self, bootstrap: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap)
            .set("acks", &self.acks)
            .set("compression.type", &self.compression)
            .set("enable.idempotence", if self.idempotence { "true" } else { "false" })
            .set("linger.ms", self.linger_ms.to_string())
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            // Large local queue: the in-flight byte budget is the real cap.
            .set("queue.buffering.max.messages", "1000000")
            .set(
                "queue.buffering.max.kbytes",
                (self.max_inflight_bytes / 1024).clamp(1024, 2_097_151).to_string(),
            )
            .set("batch.num.messages", "10000")
            .set("batch.size", "1000000")
            .set("statistics.interval.ms", "0");
        self.security.apply(&mut c);
        super::security::log_failures(&mut c);
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }
}

fn check_topic(t: &str, key: &str) -> Result<(), ConfigError> {
    if t.is_empty()
        || t.len() > 249
        || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(ConfigError::new(
            key,
            format!("`{t}` is not a valid topic name"),
            "use 1 to 249 characters from a-z A-Z 0-9 . _ - (and `{source}`)",
        ));
    }
    Ok(())
}
