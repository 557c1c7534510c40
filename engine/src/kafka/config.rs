//! Kafka settings: the raw `kafka:` section as written (unknown keys rejected), and the
//! validated `KafkaConfig` the sink uses, plus the librdkafka client configuration built from it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use serde::{Deserialize, Serialize};

use super::security::{RawSasl, RawTls, Security};
use crate::breaker::BreakerConfig;
use crate::error::ConfigError;

/// Kafka settings as written in the config file (`kafka:`) or set by flags.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// Bootstrap servers. Unset: an embedded in-memory mock cluster (for trying things out).
    pub brokers: Option<String>,
    /// Topic, or a template with `{source}`, e.g. `logs.{source}`. Default `spate`.
    pub topic: Option<String>,
    /// Record key: `none` (default), `source`, `trace_id` or `round_robin` (explicit partitions).
    pub key: Option<String>,
    /// `all` (default), `1` or `0`.
    pub acks: Option<String>,
    /// `none`, `lz4` (default), `zstd`, `snappy` or `gzip`.
    pub compression: Option<String>,
    /// Idempotent producer (default true): no duplicates from retries.
    pub idempotence: Option<bool>,
    /// Add `traceparent` and `spate-id` headers to every record (default true). They cost
    /// about a third of the producer's throughput (librdkafka allocates each header).
    pub headers: Option<bool>,
    /// librdkafka `linger.ms` (default 5).
    pub linger_ms: Option<u64>,
    /// librdkafka `message.timeout.ms` (default 30000): how long librdkafka retries a record.
    pub message_timeout_ms: Option<u64>,
    /// Application retries after librdkafka gave up (only with idempotence). Default 5.
    pub retries: Option<u32>,
    /// Dead-letter topic. Default `spate.dlq`.
    pub dlq_topic: Option<String>,
    /// Dead-letter file (JSON lines) for when Kafka itself is unreachable. Default `spate-dlq.jsonl`.
    pub dlq_file: Option<PathBuf>,
    /// Cap on bytes held in rings and in librdkafka's queue. Default 256 MiB.
    pub max_inflight_bytes: Option<u64>,
    /// Adaptive batcher: ack latency to stay under (ms). Default 50.
    pub latency_target_ms: Option<u64>,
    /// Records awaiting their ack: unset, the ack-driven window (`inflight.rs`) chooses;
    /// a number (2,048 to 1,000,000) fixes it.
    pub inflight_records: Option<u64>,
    /// Partitions per topic of the embedded cluster. Default 4.
    pub partitions: Option<i32>,
    /// Circuit breaker settings.
    pub breaker: Option<RawBreaker>,
    /// TLS to the brokers (present: on).
    pub tls: Option<RawTls>,
    /// SASL authentication.
    pub sasl: Option<RawSasl>,
    /// Any other librdkafka property (`--kafka-opt key=value`).
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub window: Option<usize>,
    pub min_calls: Option<usize>,
    pub failure_rate: Option<f64>,
    pub slow_call_ms: Option<u64>,
    pub slow_rate: Option<f64>,
    pub open_wait_ms: Option<u64>,
    pub half_open_calls: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStrategy {
    None,
    Source,
    TraceId,
    RoundRobin,
}

/// Validated Kafka settings.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaConfig {
    pub brokers: Option<String>,
    pub topic: String,
    pub key: KeyStrategy,
    pub acks: String,
    pub compression: String,
    pub idempotence: bool,
    pub headers: bool,
    pub linger_ms: u64,
    pub message_timeout_ms: u64,
    pub retries: u32,
    pub dlq_topic: String,
    pub dlq_file: PathBuf,
    pub max_inflight_bytes: u64,
    pub latency_target_ms: u64,
    /// A fixed in-flight window, or None for the ack-driven one.
    pub inflight_records: Option<u64>,
    pub partitions: i32,
    pub breaker: BreakerConfig,
    pub security: Security,
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
    ("enable.idempotence", "--idempotence / kafka.idempotence"),
    ("linger.ms", "kafka.linger_ms"),
    ("queue.buffering.max.ms", "kafka.linger_ms"),
    ("message.timeout.ms", "--message-timeout-ms / kafka.message_timeout_ms"),
    ("delivery.timeout.ms", "--message-timeout-ms / kafka.message_timeout_ms"),
];

impl RawKafka {
    pub fn overlay(self, top: RawKafka) -> RawKafka {
        RawKafka {
            brokers: top.brokers.or(self.brokers),
            topic: top.topic.or(self.topic),
            key: top.key.or(self.key),
            acks: top.acks.or(self.acks),
            compression: top.compression.or(self.compression),
            idempotence: top.idempotence.or(self.idempotence),
            headers: top.headers.or(self.headers),
            linger_ms: top.linger_ms.or(self.linger_ms),
            message_timeout_ms: top.message_timeout_ms.or(self.message_timeout_ms),
            retries: top.retries.or(self.retries),
            dlq_topic: top.dlq_topic.or(self.dlq_topic),
            dlq_file: top.dlq_file.or(self.dlq_file),
            max_inflight_bytes: top.max_inflight_bytes.or(self.max_inflight_bytes),
            latency_target_ms: top.latency_target_ms.or(self.latency_target_ms),
            inflight_records: top.inflight_records.or(self.inflight_records),
            partitions: top.partitions.or(self.partitions),
            breaker: top.breaker.or(self.breaker),
            tls: match (self.tls, top.tls) {
                (Some(a), Some(b)) => Some(RawTls {
                    enabled: b.enabled.or(a.enabled),
                    ca_file: b.ca_file.or(a.ca_file),
                    cert_file: b.cert_file.or(a.cert_file),
                    key_file: b.key_file.or(a.key_file),
                    key_password: b.key_password.or(a.key_password),
                    key_password_file: b.key_password_file.or(a.key_password_file),
                    verify_hostname: b.verify_hostname.or(a.verify_hostname),
                }),
                (a, b) => b.or(a),
            },
            sasl: match (self.sasl, top.sasl) {
                (Some(a), Some(b)) => {
                    // A password given on top replaces both forms below it.
                    let top_pw = b.password.is_some() || b.password_file.is_some();
                    Some(RawSasl {
                        mechanism: b.mechanism.or(a.mechanism),
                        username: b.username.or(a.username),
                        password: if top_pw { b.password } else { a.password },
                        password_file: if top_pw { b.password_file } else { a.password_file },
                        oauth: b.oauth.or(a.oauth),
                    })
                }
                (a, b) => b.or(a),
            },
            options: match (self.options, top.options) {
                (Some(mut a), Some(b)) => {
                    a.extend(b);
                    Some(a)
                }
                (a, b) => b.or(a),
            },
        }
    }
}

impl KafkaConfig {
    pub fn from_raw(raw: Option<&RawKafka>, _used: bool) -> Result<Self, ConfigError> {
        let d = RawKafka::default();
        let r = raw.unwrap_or(&d);
        let topic = r.topic.clone().unwrap_or_else(|| "spate".into());
        check_topic(&topic.replace("{source}", "x"), "kafka.topic")?;
        let key = match r.key.as_deref().unwrap_or("none") {
            "none" => KeyStrategy::None,
            "source" => KeyStrategy::Source,
            "trace_id" => KeyStrategy::TraceId,
            "round_robin" => KeyStrategy::RoundRobin,
            o => {
                return Err(ConfigError::new(
                    "kafka.key",
                    format!("unknown key strategy `{o}`"),
                    "use none, source, trace_id or round_robin",
                ))
            }
        };
        let acks = match r.acks.as_deref().unwrap_or("all") {
            "all" | "-1" => "all".to_string(),
            a @ ("0" | "1") => a.to_string(),
            o => return Err(ConfigError::new("kafka.acks", format!("unknown acks `{o}`"), "use all, 1 or 0")),
        };
        let compression = match r.compression.as_deref().unwrap_or("lz4") {
            c @ ("none" | "lz4" | "zstd" | "snappy" | "gzip") => c.to_string(),
            o => {
                return Err(ConfigError::new(
                    "kafka.compression",
                    format!("unknown compression `{o}`"),
                    "use none, lz4, zstd, snappy or gzip",
                ))
            }
        };
        let idempotence = r.idempotence.unwrap_or(true);
        if idempotence && acks != "all" {
            return Err(ConfigError::new(
                "kafka.acks",
                format!("acks={acks} cannot be used with idempotence"),
                "use acks all, or turn idempotence off (--no-idempotence)",
            ));
        }
        let mut options = Vec::new();
        for (k, v) in r.options.clone().unwrap_or_default() {
            if let Some((_, instead)) = TYPED.iter().chain(super::security::TYPED).find(|(t, _)| *t == k) {
                return Err(ConfigError::new(
                    format!("kafka.options.{k}"),
                    format!("`{k}` has a typed option"),
                    format!("set it with {instead} instead of --kafka-opt"),
                ));
            }
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') {
                return Err(ConfigError::new(
                    "kafka.options",
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
                    format!("kafka.options.{k}"),
                    format!("librdkafka refuses `{k}`: {e}"),
                    "check the property name and value against librdkafka's CONFIGURATION.md",
                ));
            }
        }
        let b = r.breaker.clone().unwrap_or_default();
        let dflt = BreakerConfig::default();
        let rate = |v: Option<f64>, d: f64, key: &str| -> Result<f64, ConfigError> {
            match v {
                None => Ok(d),
                Some(x) if x > 0.0 && x <= 1.0 => Ok(x),
                Some(x) => Err(ConfigError::new(key, format!("{x} is not a share"), "give a number above 0 and at most 1, e.g. 0.5")),
            }
        };
        let breaker = BreakerConfig {
            window: b.window.unwrap_or(dflt.window).max(1),
            min_calls: b.min_calls.unwrap_or(dflt.min_calls).max(1),
            failure_rate: rate(b.failure_rate, dflt.failure_rate, "kafka.breaker.failure_rate")?,
            slow_call: b.slow_call_ms.map(Duration::from_millis).unwrap_or(dflt.slow_call),
            slow_rate: rate(b.slow_rate, dflt.slow_rate, "kafka.breaker.slow_rate")?,
            open_wait: b.open_wait_ms.map(Duration::from_millis).unwrap_or(dflt.open_wait),
            half_open_calls: b.half_open_calls.unwrap_or(dflt.half_open_calls).max(1),
        };
        let partitions = r.partitions.unwrap_or(4);
        if !(1..=1024).contains(&partitions) {
            return Err(ConfigError::new("kafka.partitions", format!("{partitions} partitions is out of range"), "use 1 to 1024"));
        }
        let max_inflight_bytes = r.max_inflight_bytes.unwrap_or(256 << 20);
        if max_inflight_bytes < 1 << 20 {
            return Err(ConfigError::new(
                "kafka.max_inflight_bytes",
                format!("{max_inflight_bytes} bytes is too small to hold a batch"),
                "use at least 1048576 (1 MiB); the default is 268435456",
            ));
        }
        let inflight_records = match r.inflight_records {
            None => None,
            Some(n @ super::inflight::MIN..=super::inflight::MAX) => Some(n),
            Some(n) => {
                return Err(ConfigError::new(
                    "kafka.inflight_records",
                    format!("{n} records is out of range"),
                    format!("use {} to {}, or omit it for the ack-driven window", super::inflight::MIN, super::inflight::MAX),
                ))
            }
        };
        let security = Security::from_raw(r.tls.as_ref(), r.sasl.as_ref())?;
        let brokers = r.brokers.as_deref().map(|b| crate::secret::expand(b, "kafka.brokers")).transpose()?;
        Ok(Self {
            brokers: brokers.filter(|b| !b.is_empty()),
            topic,
            key,
            acks,
            compression,
            idempotence,
            headers: r.headers.unwrap_or(true),
            linger_ms: r.linger_ms.unwrap_or(5),
            message_timeout_ms: r.message_timeout_ms.unwrap_or(30_000).max(1),
            retries: r.retries.unwrap_or(5),
            dlq_topic: r.dlq_topic.clone().unwrap_or_else(|| "spate.dlq".into()),
            dlq_file: r.dlq_file.clone().unwrap_or_else(|| PathBuf::from("spate-dlq.jsonl")),
            max_inflight_bytes,
            latency_target_ms: r.latency_target_ms.unwrap_or(50).max(1),
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
            .set("queue.buffering.max.kbytes", (self.max_inflight_bytes / 1024).clamp(1024, 2_097_151).to_string())
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
    if t.is_empty() || t.len() > 249 || !t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return Err(ConfigError::new(
            key,
            format!("`{t}` is not a valid topic name"),
            "use 1 to 249 characters from a-z A-Z 0-9 . _ - (and `{source}`)",
        ));
    }
    Ok(())
}
