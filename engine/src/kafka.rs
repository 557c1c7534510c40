//! The Kafka sink: an rdkafka `BaseProducer` owned and polled by the flush thread (no hidden
//! polling thread), with delivery accounting, produce-to-ack latency, the circuit breaker,
//! application retries (only with idempotence), a dead-letter topic and a dead-letter file.
//!
//! Outcomes: every record handed to librdkafka ends as exactly one of delivered,
//! dead-lettered (DLQ topic acked, or written to the DLQ file) or failed (not even the DLQ
//! file could take it). Until then it is in flight, and its bytes count against the in-flight
//! byte budget. Retriable failures go to a retry queue and are produced again after an
//! exponential backoff with jitter, while the breaker allows; poison records (too large,
//! not authorised, invalid) and records whose retries are exhausted go to the DLQ.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::batcher::Aimd;
use crate::breaker::{Breaker, BreakerConfig, BreakerWindow, State};
use crate::error::{ConfigError, EngineError};
use crate::event::EventMeta;
use crate::hex;
use crate::latency::LatencyStats;
use crate::run::RunShared;
use crate::sink::Sink;
use crate::stats::LocalFlush;

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
    /// Partitions per topic of the embedded cluster. Default 4.
    pub partitions: Option<i32>,
    /// Circuit breaker settings.
    pub breaker: Option<RawBreaker>,
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
    pub partitions: i32,
    pub breaker: BreakerConfig,
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
    ("message.timeout.ms", "kafka.message_timeout_ms"),
    ("delivery.timeout.ms", "kafka.message_timeout_ms"),
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
            partitions: top.partitions.or(self.partitions),
            breaker: top.breaker.or(self.breaker),
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
            if let Some((_, instead)) = TYPED.iter().find(|(t, _)| *t == k) {
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
        Ok(Self {
            brokers: r.brokers.clone().filter(|b| !b.is_empty()),
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
            partitions,
            breaker,
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

/// An in-process librdkafka mock cluster: a real Kafka protocol endpoint on loopback, kept in
/// memory. Each partition keeps at most 5 MiB or 100,000 message sets (librdkafka trims the
/// oldest beyond that), so a long run cannot exhaust memory; old data is forgotten instead.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
}

// SAFETY: `MockCluster` holds a raw `rd_kafka_mock_cluster_t*` and an rdkafka `Client`
// (itself Send + Sync). librdkafka's mock cluster runs on its own thread and every
// `rd_kafka_mock_*` control call is serialised onto that thread through its op queue
// (rdkafka_mock.c: `rd_kafka_op_req(mcluster->ops, ...)`), so the handle may be used and dropped from any
// thread. We only call those functions and `bootstrap_servers` (an immutable string).
unsafe impl Send for EmbeddedBroker {}
// SAFETY: as above: concurrent control calls are queued to the mock cluster's own thread.
unsafe impl Sync for EmbeddedBroker {}

impl EmbeddedBroker {
    pub fn start(brokers: i32) -> Result<Self, EngineError> {
        let cluster = MockCluster::new(brokers).map_err(|e| EngineError::Kafka(format!("cannot start the embedded mock cluster: {e}")))?;
        let bootstrap = cluster.bootstrap_servers();
        Ok(Self { cluster, bootstrap })
    }
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }
    /// Creates a topic; one that exists already is fine.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EngineError> {
        match self.cluster.create_topic(topic, partitions, 1) {
            Ok(()) => Ok(()),
            Err(KafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
            Err(e) => Err(EngineError::Kafka(format!("cannot create topic `{topic}` on the embedded cluster: {e}"))),
        }
    }
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery reports

/// Opaque per record: the schedule time (ns since run start, 48 bits: 78 hours), the attempt
/// number (8 bits) and a DLQ flag. Packed in a `usize`, so librdkafka carries it for free.
const SCHED_MASK: usize = (1 << 48) - 1;
const DLQ_BIT: usize = 1 << 63;
/// Marks the last record of a traced batch: its delivery report ends the batch's span.
const TRACE_BIT: usize = 1 << 62;

fn opaque(sched_ns: u64, attempt: u8, dlq: bool) -> usize {
    (sched_ns as usize & SCHED_MASK) | ((attempt as usize) << 48) | if dlq { DLQ_BIT } else { 0 }
}

/// A record kept by the sink for a later attempt (retry queue) or for the DLQ.
#[derive(Debug, Clone)]
struct Held {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    sched_ns: u64,
    attempt: u8,
    due_ns: u64,
    error: String,
}

/// What the delivery callback learned; read and cleared by the sink after each poll.
#[derive(Default)]
struct Outcomes {
    delivered: u64,
    delivered_bytes: u64,
    dead_lettered: u64,
    released_bytes: u64,
    settled: u64,
    /// Set by the sink before each poll: delivery reports read the clock once per poll, not
    /// once per record.
    now_ns: u64,
    /// Successful calls, fast and slow, for the breaker (counted, not listed).
    ok_fast: u64,
    ok_slow: u64,
    /// (failed, took_ns) per failed call, for the breaker.
    calls: Vec<(bool, u64)>,
    retry: Vec<Held>,
    to_dlq: Vec<Held>,
    to_dlq_file: Vec<Held>,
    lat: LatencyStats,
    lat_sum_ns: u128,
    lat_n: u64,
    /// Delivery reports of traced records: (schedule time, error).
    traced: Vec<(u64, Option<String>)>,
    /// A record was refused with `UnknownProducerId`: the producer needs replacing.
    pid_lost: bool,
}

/// The producer context. Delivery reports are served only inside `poll`/`flush`, which only
/// the flush thread calls, so `outcomes` is never touched by two threads at once (see the
/// `Sync` impl). The error callback, which can also only fire from `poll`, uses atomics.
pub struct SinkContext {
    outcomes: RefCell<Outcomes>,
    slow_ns: u64,
    max_attempts: u8,
    app_retries: bool,
    all_brokers_down: AtomicBool,
    errors: AtomicU64,
}

// SAFETY: the only non-Sync field is `outcomes`, a RefCell touched solely from
// `ProducerContext::delivery`. rdkafka invokes `delivery` only from `BaseProducer::poll` and
// `flush` (it dispatches RD_KAFKA_EVENT_DR events from the main queue it polls); the producer
// lives inside `KafkaSink`, which is owned by the flush thread and never shared, so every call
// happens on that one thread. The other fields are atomics or immutable.
unsafe impl Sync for SinkContext {}

impl ClientContext for SinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.fetch_add(1, Relaxed);
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown)) {
            self.all_brokers_down.store(true, Relaxed);
        }
        crate::rate_log::warn("kafka_client_error", &format!("kafka: {error}: {reason}"));
    }
}

/// How a delivery error is handled.
#[derive(Debug, PartialEq, Eq)]
enum ErrorClass {
    Retriable,
    Poison,
}

fn classify(code: Option<RDKafkaErrorCode>) -> ErrorClass {
    use RDKafkaErrorCode::*;
    match code {
        Some(
            MessageTimedOut
            | RequestTimedOut
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | LeaderNotAvailable
            | NotLeaderForPartition
            | BrokerTransportFailure
            | AllBrokersDown
            | NetworkException
            | QueueFull
            | PurgeQueue
            | PurgeInflight
            | UnknownTopicOrPartition
            | PreferredLeaderNotAvailable
            // The broker lost this producer's state (e.g. a restarted in-memory broker): the
            // record was refused, not written; the sink starts a new producer (`rebuild`).
            | UnknownProducerId,
        ) => ErrorClass::Retriable,
        // MessageSizeTooLarge, InvalidMessageSize, TopicAuthorizationFailed, InvalidRecord,
        // RecordListTooLarge, and anything unknown: retrying cannot help.
        _ => ErrorClass::Poison,
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, op: usize) {
        let mut o = self.outcomes.borrow_mut();
        let now = o.now_ns;
        let sched = (op & SCHED_MASK) as u64;
        let attempt = ((op >> 48) & 0x7f) as u8;
        let is_dlq = op & DLQ_BIT != 0;
        let took = now.saturating_sub(sched);
        if op & TRACE_BIT != 0 {
            o.traced.push((sched, result.as_ref().err().map(|(e, _)| e.to_string())));
        }
        match result {
            Ok(m) => {
                let bytes = m.payload_len() as u64;
                o.released_bytes += bytes;
                o.settled += 1;
                if is_dlq {
                    o.dead_lettered += 1;
                } else {
                    o.delivered += 1;
                    o.delivered_bytes += bytes + 1;
                    o.lat.record_ns(took);
                    o.lat_sum_ns += took as u128;
                    o.lat_n += 1;
                    if took >= self.slow_ns {
                        o.ok_slow += 1;
                    } else {
                        o.ok_fast += 1;
                    }
                }
            }
            Err((e, m)) => {
                let held = Held {
                    topic: m.topic().to_string(),
                    key: m.key().map(|k| k.to_vec()),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers: m
                        .headers()
                        .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
                        .unwrap_or_default(),
                    sched_ns: sched,
                    attempt,
                    due_ns: 0,
                    error: e.to_string(),
                };
                o.settled += 1;
                o.pid_lost |= e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownProducerId);
                if is_dlq {
                    // The DLQ topic itself failed: the file is the last resort.
                    o.to_dlq_file.push(held);
                    return;
                }
                let class = classify(e.rdkafka_error_code());
                o.calls.push((class == ErrorClass::Retriable, took));
                // A record that may already be in the log (its request was sent, the answer was
                // lost) is not produced again: that could duplicate it. It goes to the DLQ file
                // instead, where nothing is lost and the user decides.
                // SAFETY: `m.ptr()` is the live `rd_kafka_message_t` of this delivery report,
                // valid for the duration of the callback; the call only reads its status.
                let status = unsafe { rdkafka::bindings::rd_kafka_message_status(m.ptr()) };
                let possibly_persisted = status == rdkafka::bindings::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
                if class == ErrorClass::Retriable && possibly_persisted {
                    let mut held = held;
                    held.error = format!("{} (possibly persisted: not retried, to avoid a duplicate)", held.error);
                    o.to_dlq_file.push(held);
                } else if class == ErrorClass::Retriable && self.app_retries && attempt < self.max_attempts {
                    o.retry.push(held);
                } else if class == ErrorClass::Retriable {
                    // Retries exhausted (or not allowed without idempotence): Kafka is not
                    // taking records, so the DLQ topic would fail too.
                    o.to_dlq_file.push(held);
                } else {
                    o.to_dlq.push(held);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sink

pub struct KafkaSink {
    /// librdkafka topic handles, one per source's topic. First field: fields drop in order,
    /// and the handles must be released before the producer (rd_kafka_destroy) goes.
    rkts: TopicHandles,
    producer: BaseProducer<SinkContext>,
    shared: Arc<RunShared>,
    cfg: KafkaConfig,
    /// Topic per source index.
    topics: Vec<String>,
    partitions: Vec<i32>,
    source_names: Vec<String>,
    rr: u64,
    run_id: String,
    in_flight: u64,
    retry: VecDeque<Held>,
    window: BreakerWindow,
    breaker: Arc<Breaker>,
    lat: LatencyStats,
    last_tick_ns: u64,
    /// When a record was last acknowledged.
    last_ack_ns: u64,
    aimd: Aimd,
    /// Traced batches written and waiting for their last record's delivery report.
    traced: Vec<crate::spans::SpanRecord>,
    /// Where the producer connects (kept for `rebuild`).
    bootstrap: String,
    /// Set when the broker no longer knows the producer id; cleared by `rebuild`.
    rebuild_pending: bool,
    /// Producers replaced by `rebuild` in this run.
    pub rebuilds: u64,
    /// Policy `spill`: while the breaker is OPEN, batches go to the DLQ file.
    pub spill_when_open: bool,
    spill_buf: Vec<u8>,
    dlq_file: Option<File>,
    rng: u64,
    /// Keeps the embedded broker alive as long as the producer (dropped after it).
    _embedded: Option<Arc<EmbeddedBroker>>,
}

impl KafkaSink {
    pub fn open(
        cfg: &KafkaConfig,
        shared: Arc<RunShared>,
        breaker: Arc<Breaker>,
        source_names: &[String],
        embedded: Option<Arc<EmbeddedBroker>>,
        batch_max: usize,
    ) -> Result<Self, EngineError> {
        let bootstrap = match (&cfg.brokers, &embedded) {
            (Some(b), _) => b.clone(),
            (None, Some(e)) => e.bootstrap().to_string(),
            (None, None) => return Err(EngineError::Kafka("no brokers given and no embedded cluster".into())),
        };
        let topics: Vec<String> = source_names.iter().map(|s| cfg.topic.replace("{source}", s)).collect();
        if let Some(e) = &embedded {
            let mut seen = std::collections::BTreeSet::new();
            for t in topics.iter().chain(std::iter::once(&cfg.dlq_topic)) {
                if seen.insert(t.clone()) {
                    e.create_topic(t, cfg.partitions)?;
                }
            }
        }
        let producer = make_producer(cfg, &bootstrap)?;
        let mut partitions = vec![-1; topics.len()];
        if cfg.key == KeyStrategy::RoundRobin {
            for (i, t) in topics.iter().enumerate() {
                let md = producer
                    .client()
                    .fetch_metadata(Some(t), Duration::from_secs(10))
                    .map_err(|e| EngineError::Kafka(format!("cannot read metadata of topic `{t}` for round_robin keys: {e}")))?;
                let n = md.topics().first().map(|t| t.partitions().len()).unwrap_or(0);
                if n == 0 {
                    return Err(EngineError::Kafka(format!("topic `{t}` has no partitions (does it exist?)")));
                }
                partitions[i] = n as i32;
            }
        }
        let now = shared.clock.now_ns();
        let rkts = TopicHandles::new(&producer, &topics)?;
        Ok(Self {
            rkts,
            producer,
            run_id: shared.run_id.to_string(),
            shared,
            topics,
            partitions,
            source_names: source_names.to_vec(),
            rr: 0,
            in_flight: 0,
            retry: VecDeque::new(),
            window: BreakerWindow::new(cfg.breaker),
            breaker,
            lat: LatencyStats::new(),
            last_tick_ns: now,
            last_ack_ns: now,
            aimd: Aimd::new(batch_max, Duration::from_millis(cfg.latency_target_ms)),
            traced: Vec::new(),
            bootstrap: bootstrap.clone(),
            rebuild_pending: false,
            rebuilds: 0,
            spill_when_open: false,
            spill_buf: Vec::new(),
            dlq_file: None,
            rng: now | 1,
            cfg: cfg.clone(),
            _embedded: embedded,
        })
    }

    fn ctx(&self) -> &SinkContext {
        self.producer.context()
    }

    /// Replaces the producer once the old one has nothing in flight. Needed when the broker
    /// answers `UnknownProducerId`: it lost the idempotent producer's state (a restarted
    /// in-memory broker does), librdkafka will not resend under that id, and every later record
    /// would be refused. The refused records wait in the retry queue (they were not written)
    /// and go out through the new producer, which gets a new id; nothing is duplicated.
    fn rebuild(&mut self) {
        let made = make_producer(&self.cfg, &self.bootstrap).and_then(|p| TopicHandles::new(&p, &self.topics).map(|r| (p, r)));
        match made {
            Ok((producer, rkts)) => {
                // Handles before their producer (rd_kafka_destroy expects its topics released).
                drop(std::mem::replace(&mut self.rkts, rkts));
                drop(std::mem::replace(&mut self.producer, producer));
                self.rebuild_pending = false;
                self.rebuilds += 1;
                self.shared.counters.flush.producer_restarts.store(self.rebuilds, Relaxed);
                crate::rate_log::warn(
                    "kafka_rebuild",
                    "the broker no longer knows this producer's id (UnknownProducerId): started a new producer",
                );
            }
            Err(e) => crate::rate_log::warn("kafka_rebuild", &format!("cannot start a new producer: {e} (retrying)")),
        }
    }

    /// Serves the producer's callbacks and, when the producer must be replaced and its last
    /// delivery report is in, replaces it.
    fn poll_producer(&mut self, acct: &mut LocalFlush, timeout: Duration) {
        self.stamp_now();
        self.producer.poll(timeout);
        self.settle(acct);
        if self.rebuild_pending && self.producer.in_flight_count() == 0 {
            self.rebuild();
        }
    }

    fn stamp_now(&self) {
        self.ctx().outcomes.borrow_mut().now_ns = self.shared.clock.now_ns();
    }

    /// Folds what the delivery callback learned into the counters and queues.
    fn settle(&mut self, acct: &mut LocalFlush) {
        let now = self.shared.clock.now_ns();
        let mut o = std::mem::take(&mut *self.ctx().outcomes.borrow_mut());
        self.ctx().outcomes.borrow_mut().now_ns = o.now_ns;
        acct.delivered += o.delivered;
        acct.delivered_bytes += o.delivered_bytes;
        acct.dead_lettered += o.dead_lettered;
        self.in_flight -= o.settled;
        if o.released_bytes > 0 && self.shared.max_inflight_bytes > 0 {
            self.shared.inflight_bytes.fetch_sub(o.released_bytes, Relaxed);
        }
        if o.ok_fast + o.ok_slow > 0 {
            self.last_ack_ns = now;
        }
        self.window.record_successes(&self.breaker, o.ok_fast, o.ok_slow, now);
        for &(failed, took) in &o.calls {
            self.window.record(&self.breaker, failed, Duration::from_nanos(took), now);
        }
        self.lat.merge_from(&mut o.lat);
        self.aimd.observe(o.lat_sum_ns, o.lat_n);
        self.rebuild_pending |= o.pid_lost && self.cfg.idempotence;
        for (sched, error) in o.traced.drain(..) {
            if let Some(i) = self.traced.iter().position(|r| r.sched_ns as usize & SCHED_MASK == sched as usize) {
                let mut r = self.traced.swap_remove(i);
                r.acked_ns = Some(o.now_ns.max(r.written_ns));
                r.error = error;
                if let Some(t) = &self.shared.tracer {
                    t.submit(r);
                }
            }
        }
        for mut h in o.retry.drain(..) {
            h.attempt += 1;
            acct.retried += 1;
            h.due_ns = now + self.backoff_ns(h.attempt);
            self.retry.push_back(h);
            self.in_flight += 1;
        }
        for h in o.to_dlq.drain(..) {
            self.in_flight += 1;
            self.send_dlq(h, acct);
        }
        for h in o.to_dlq_file.drain(..) {
            self.in_flight += 1;
            self.write_dlq_file(&h, acct);
        }
        // Give the emptied buffers back to the context for reuse.
        o.calls.clear();
        let mut keep = self.ctx().outcomes.borrow_mut();
        if keep.calls.capacity() < o.calls.capacity() {
            keep.calls = o.calls;
        }
    }

    /// Exponential backoff with full jitter: uniform in [0, min(30 s, 100 ms * 2^attempt)].
    fn backoff_ns(&mut self, attempt: u8) -> u64 {
        let cap = (100_000_000u64 << attempt.min(8)).min(30_000_000_000);
        // xorshift64: jitter only, quality does not matter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % cap.max(1)
    }

    fn send_dlq(&mut self, h: Held, acct: &mut LocalFlush) {
        let mut headers = OwnedHeaders::new_with_capacity(h.headers.len() + 2);
        for (k, v) in &h.headers {
            headers = headers.insert(Header { key: k, value: Some(v) });
        }
        headers = headers.insert(Header { key: "spate-error", value: Some(h.error.as_bytes()) });
        headers = headers.insert(Header { key: "spate-original-topic", value: Some(h.topic.as_bytes()) });
        // A poison record may be too large for the DLQ topic too; then it goes to the file.
        let mut rec =
            BaseRecord::with_opaque_to(&self.cfg.dlq_topic, opaque(h.sched_ns, h.attempt, true)).payload(&h.payload).headers(headers);
        if let Some(k) = &h.key {
            rec = rec.key(k);
        }
        if self.producer.send(rec).is_err() {
            self.write_dlq_file(&h, acct);
        }
    }

    /// Last resort: a JSON line in the DLQ file (`spate dlq replay` re-sends it).
    fn write_dlq_file(&mut self, h: &Held, acct: &mut LocalFlush) {
        self.in_flight -= 1;
        if self.shared.max_inflight_bytes > 0 {
            self.shared.inflight_bytes.fetch_sub(h.payload.len() as u64, Relaxed);
        }
        let line = DlqLine {
            topic: h.topic.clone(),
            key: h.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            headers: h.headers.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect(),
            payload: String::from_utf8_lossy(&h.payload).into_owned(),
            error: h.error.clone(),
            attempts: h.attempt as u32 + 1,
        };
        let ok = (|| -> std::io::Result<()> {
            if self.dlq_file.is_none() {
                self.dlq_file = Some(OpenOptions::new().create(true).append(true).open(&self.cfg.dlq_file)?);
            }
            let f = self.dlq_file.as_mut().expect("opened above");
            let mut s = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
            s.push(b'\n');
            f.write_all(&s)
        })();
        match ok {
            Ok(()) => acct.dead_lettered += 1,
            Err(e) => {
                crate::rate_log::warn("dlq_file", &format!("cannot write the DLQ file {}: {e}", self.cfg.dlq_file.display()));
                acct.failed += 1;
            }
        }
    }

    /// Re-produces due retries while the breaker allows (HALF_OPEN: these are the trials).
    fn drain_retries(&mut self) {
        if self.breaker.state() == State::Open || self.rebuild_pending {
            return;
        }
        let now = self.shared.clock.now_ns();
        while let Some(h) = self.retry.front() {
            if h.due_ns > now {
                break;
            }
            let h = self.retry.pop_front().expect("front exists");
            let mut headers = OwnedHeaders::new_with_capacity(h.headers.len());
            for (k, v) in &h.headers {
                headers = headers.insert(Header { key: k, value: Some(v) });
            }
            let mut rec = BaseRecord::with_opaque_to(&h.topic, opaque(h.sched_ns, h.attempt, false)).payload(&h.payload).headers(headers);
            if let Some(k) = &h.key {
                rec = rec.key(k);
            }
            if self.producer.send(rec).is_err() {
                // Queue full: try again on the next poll.
                self.retry.push_front(h);
                break;
            }
        }
    }

    /// Housekeeping a few times a second: breaker timers, latency merge, batch size.
    fn tick(&mut self, acct: &mut LocalFlush) {
        let now = self.shared.clock.now_ns();
        // librdkafka also reports "all brokers down" for stale connections while it reconnects;
        // it opens the breaker only from CLOSED and only when no record was acked for a second
        // (in HALF_OPEN the trial calls decide).
        if self.ctx().all_brokers_down.swap(false, Relaxed)
            && self.breaker.state() == State::Closed
            && now.saturating_sub(self.last_ack_ns) > 1_000_000_000
        {
            self.window.force_open(&self.breaker, now);
        }
        self.window.tick(&self.breaker, now);
        if now - self.last_tick_ns < 100_000_000 {
            return;
        }
        self.last_tick_ns = now;
        self.shared.latency.lock().merge_from(&mut self.lat);
        let queue = self.producer.in_flight_count().max(0) as u64;
        let size = self.aimd.decide(queue);
        self.shared.batch_target.store(size as u64, Relaxed);
        let f = &self.shared.counters.flush;
        f.batch_size.store(size as u64, Relaxed);
        f.producer_queue.store(queue, Relaxed);
        let _ = acct;
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DlqLine {
    pub topic: String,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub payload: String,
    pub error: String,
    pub attempts: u32,
}

/// A DLQ file line written straight from a batch (policy `spill`): borrows, so spilling
/// formats into one reused buffer. Reads back as a [`DlqLine`].
#[derive(Serialize)]
struct SpillLine<'a> {
    topic: &'a str,
    key: Option<&'a str>,
    headers: SpillHeaders<'a>,
    payload: &'a str,
    error: &'a str,
    attempts: u32,
}

#[derive(Serialize)]
struct SpillHeaders<'a> {
    traceparent: &'a str,
    #[serde(rename = "spate-id")]
    spate_id: &'a str,
}

impl KafkaSink {
    /// Policy `spill` with the breaker OPEN: `batch[from..]` goes to the DLQ file, not Kafka.
    fn spill(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush) {
        let (mut tp, mut id, mut key_hex) = ([0u8; 55], [0u8; 64], [0u8; 32]);
        let mut out = std::mem::take(&mut self.spill_buf);
        out.clear();
        for i in from..batch.len() {
            let m = &batch.metas[i];
            let src = m.source as usize;
            hex::traceparent(&mut tp, m.trace_id, m.span_id);
            let id_len = hex::event_id(&mut id, &self.run_id, m.worker, m.seq);
            let key = match self.cfg.key {
                KeyStrategy::Source => Some(self.source_names[src].as_str()),
                KeyStrategy::TraceId => {
                    hex::u128_into(&mut key_hex, m.trace_id);
                    std::str::from_utf8(&key_hex).ok()
                }
                KeyStrategy::None | KeyStrategy::RoundRobin => None,
            };
            let line = SpillLine {
                topic: &self.topics[src],
                key,
                headers: SpillHeaders {
                    traceparent: std::str::from_utf8(&tp).unwrap_or_default(),
                    spate_id: std::str::from_utf8(&id[..id_len]).unwrap_or_default(),
                },
                payload: std::str::from_utf8(batch.payload(i)).unwrap_or_default(),
                error: "circuit breaker open: spilled (backpressure: spill)",
                attempts: 0,
            };
            serde_json::to_writer(&mut out, &line).expect("a spill line serializes");
            out.push(b'\n');
        }
        let n = (batch.len() - from) as u64;
        let written = (|| -> std::io::Result<()> {
            if self.dlq_file.is_none() {
                self.dlq_file = Some(OpenOptions::new().create(true).append(true).open(&self.cfg.dlq_file)?);
            }
            self.dlq_file.as_mut().expect("opened above").write_all(&out)
        })();
        match written {
            Ok(()) => acct.dead_lettered += n,
            Err(e) => {
                crate::rate_log::warn("dlq_file", &format!("cannot write the DLQ file {}: {e}", self.cfg.dlq_file.display()));
                acct.failed += n;
            }
        }
        if self.shared.max_inflight_bytes > 0 {
            // Budgeted with the batch; no ack will release them.
            self.shared.inflight_bytes.fetch_sub(batch.bytes_from(from).len() as u64, Relaxed);
        }
        self.spill_buf = out;
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush) -> Result<usize, EngineError> {
        if self.spill_when_open && self.breaker.state() == State::Open {
            self.spill(batch, from, acct);
            return Ok(batch.len() - from);
        }
        if self.rebuild_pending {
            return Ok(0); // held by the flush thread until the new producer is up
        }
        let mut tp = [0u8; 55];
        let mut id = [0u8; 64];
        let mut key_hex = [0u8; 32];
        let mut taken = 0;
        for i in from..batch.len() {
            let m: &EventMeta = &batch.metas[i];
            let payload = batch.payload(i);
            let src = m.source as usize;
            let last_traced = batch.trace.sampled && i + 1 == batch.len();
            let op = opaque(batch.sched_ns, 0, false) | if last_traced { TRACE_BIT } else { 0 };
            let mut id_len = 0;
            let headers = if self.cfg.headers {
                hex::traceparent(&mut tp, m.trace_id, m.span_id);
                id_len = hex::event_id(&mut id, &self.run_id, m.worker, m.seq);
                Some((&tp[..], &id[..id_len]))
            } else {
                None
            };
            let (mut key, mut partition): (Option<&[u8]>, i32) = (None, -1);
            match self.cfg.key {
                KeyStrategy::None => {}
                KeyStrategy::Source => key = Some(self.source_names[src].as_bytes()),
                KeyStrategy::TraceId => {
                    hex::u128_into(&mut key_hex, m.trace_id);
                    key = Some(&key_hex[..]);
                }
                KeyStrategy::RoundRobin => {
                    self.rr += 1;
                    partition = (self.rr % self.partitions[src] as u64) as i32;
                }
            }
            match self.rkts.produce(&self.producer, src, partition, payload, key, op, headers) {
                Ok(()) => {
                    self.in_flight += 1;
                    taken += 1;
                    if last_traced {
                        let now = self.shared.clock.now_ns();
                        self.traced.push(crate::flush::span_record(batch, now, None, None));
                    }
                }
                Err(code) => match code {
                    RDKafkaErrorCode::QueueFull => break, // keep the rest; backpressure
                    code => {
                        let e = KafkaError::MessageProduction(code);
                        // Rejected before enqueueing (e.g. larger than message.max.bytes).
                        if !self.cfg.headers {
                            hex::traceparent(&mut tp, m.trace_id, m.span_id);
                            id_len = hex::event_id(&mut id, &self.run_id, m.worker, m.seq);
                        }
                        let held = Held {
                            topic: self.topics[src].clone(),
                            key: key.map(<[u8]>::to_vec),
                            payload: payload.to_vec(),
                            headers: vec![("traceparent".into(), tp.to_vec()), ("spate-id".into(), id[..id_len].to_vec())],
                            sched_ns: batch.sched_ns,
                            attempt: 0,
                            due_ns: 0,
                            error: e.to_string(),
                        };
                        self.in_flight += 1;
                        if self.shared.max_inflight_bytes > 0 {
                            // Its bytes were budgeted with the batch; `write_dlq_file` or the DLQ
                            // ack releases them.
                        }
                        if classify(Some(code)) == ErrorClass::Poison {
                            self.send_dlq(held, acct);
                        } else {
                            self.write_dlq_file(&held, acct);
                        }
                        taken += 1;
                    }
                },
            }
        }
        // Bytes of the part not taken stay budgeted with the batch; of the newline-less
        // payloads, librdkafka's acks release their length. Release the newlines now.
        if self.shared.max_inflight_bytes > 0 && taken > 0 {
            self.shared.inflight_bytes.fetch_sub(taken as u64, Relaxed);
        }
        Ok(taken)
    }

    fn poll(&mut self, acct: &mut LocalFlush, timeout_ms: u64) {
        self.poll_producer(acct, Duration::from_millis(timeout_ms));
        self.drain_retries();
        self.tick(acct);
    }

    fn finish(&mut self, acct: &mut LocalFlush, timeout_ms: u64) -> Result<(), EngineError> {
        let deadline = self.shared.clock.now_ns() + timeout_ms * 1_000_000;
        while (self.in_flight > 0) && self.shared.clock.now_ns() < deadline {
            self.poll_producer(acct, Duration::from_millis(10));
            // At the end, do not wait out long backoffs: retry as soon as the breaker allows.
            for h in self.retry.iter_mut() {
                h.due_ns = h.due_ns.min(self.shared.clock.now_ns());
            }
            self.drain_retries();
            self.tick(acct);
            if self.shared.abort.load(Relaxed) {
                break;
            }
        }
        // Whatever is still queued for retry goes to the DLQ file rather than being lost.
        while let Some(h) = self.retry.pop_front() {
            self.write_dlq_file(&h, acct);
        }
        self.shared.latency.lock().merge_from(&mut self.lat);
        if self.in_flight > 0 {
            return Err(EngineError::Kafka(format!(
                "{} records still unacknowledged after {} ms (counted as in flight)",
                self.in_flight, timeout_ms
            )));
        }
        Ok(())
    }

    fn in_flight(&self) -> u64 {
        self.in_flight
    }

    fn releases_budget_on_ack(&self) -> bool {
        true
    }

    fn traces_acks(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------------
// The produce call

/// Cached librdkafka topic handles, one per topic index. `BaseProducer::send` names the topic
/// per record, which costs a `CString` allocation and a locked topic lookup inside librdkafka
/// every time; with a handle (`RD_KAFKA_VTYPE_RKT`) a record costs neither.
struct TopicHandles {
    rkts: Vec<*mut rdkafka::bindings::rd_kafka_topic_t>,
}

// SAFETY: librdkafka topic handles are thread-safe reference-counted objects (rdkafka.h: "the
// returned handle may be used from any thread"); the sink only moves them with itself.
unsafe impl Send for TopicHandles {}

/// Header names (lengths passed explicitly to `rd_kafka_header_add`).
const H_TRACEPARENT: &[u8] = b"traceparent";
const H_SPATE_ID: &[u8] = b"spate-id";

impl TopicHandles {
    fn new(producer: &BaseProducer<SinkContext>, topics: &[String]) -> Result<Self, EngineError> {
        let mut rkts = Vec::with_capacity(topics.len());
        for t in topics {
            let name = std::ffi::CString::new(t.as_str()).map_err(|e| EngineError::Kafka(e.to_string()))?;
            // SAFETY: the client pointer is live for the producer's lifetime (which outlives
            // these handles: `Drop` below runs before the producer field is dropped); `name`
            // is a valid C string that librdkafka copies; a null conf means defaults.
            let rkt = unsafe { rdkafka::bindings::rd_kafka_topic_new(producer.client().native_ptr(), name.as_ptr(), std::ptr::null_mut()) };
            if rkt.is_null() {
                return Err(EngineError::Kafka(format!("cannot create a topic handle for `{t}`")));
            }
            rkts.push(rkt);
        }
        Ok(Self { rkts })
    }

    /// One record, copied by librdkafka (`RD_KAFKA_MSG_F_COPY`), with the opaque spate's
    /// delivery callback decodes and, if given, the `traceparent` and `spate-id` headers.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn produce(
        &self,
        producer: &BaseProducer<SinkContext>,
        topic: usize,
        partition: i32,
        payload: &[u8],
        key: Option<&[u8]>,
        op: usize,
        headers: Option<(&[u8], &[u8])>,
    ) -> Result<(), RDKafkaErrorCode> {
        use rdkafka::bindings::{
            rd_kafka_header_add, rd_kafka_headers_destroy, rd_kafka_headers_new, rd_kafka_producev, rd_kafka_resp_err_t,
            rd_kafka_vtype_t::*, RD_KAFKA_MSG_F_COPY,
        };
        use std::ffi::{c_char, c_void};
        let rk = producer.client().native_ptr();
        let rkt = self.rkts[topic];
        let (kp, kl) = key.map_or((std::ptr::null_mut(), 0), |k| (k.as_ptr() as *mut std::ffi::c_void, k.len()));
        let (vp, vl) = (payload.as_ptr() as *mut std::ffi::c_void, payload.len());
        let opaque = op as *mut std::ffi::c_void;
        // Why the call below is sound: `rk` and `rkt` are live (see `new`); every pointer/length pair points into a
        // slice that outlives the call, and librdkafka copies value and key before returning
        // (`RD_KAFKA_MSG_F_COPY`); `rd_kafka_header_add` copies names and values into the list,
        // which librdkafka owns after a successful produce and we destroy after a failed one (a
        // null list means none: the rdkafka crate's own `send` passes one). The variadic
        // arguments follow rdkafka.h's RD_KAFKA_V_* macros (int32 partition, int msgflags, size_t
        // lengths) and end with RD_KAFKA_VTYPE_END. The opaque is a plain integer librdkafka hands
        // back untouched in the delivery report, where `SinkContext` decodes it (`usize`).
        // SAFETY: as just said: live handles, borrowed slices outliving the call, owned headers.
        let err = unsafe {
            // A header list sized for exactly two: librdkafka owns it after a successful
            // produce; after a failed one it is ours to destroy. Null means no headers.
            let hdrs = match headers {
                Some((tp, id)) => {
                    let h = rd_kafka_headers_new(2);
                    rd_kafka_header_add(h, H_TRACEPARENT.as_ptr() as *const c_char, 11, tp.as_ptr() as *const c_void, tp.len() as isize);
                    rd_kafka_header_add(h, H_SPATE_ID.as_ptr() as *const c_char, 8, id.as_ptr() as *const c_void, id.len() as isize);
                    h
                }
                None => std::ptr::null_mut(),
            };
            let err = rd_kafka_producev(
                rk,
                RD_KAFKA_VTYPE_RKT,
                rkt,
                RD_KAFKA_VTYPE_PARTITION,
                partition,
                RD_KAFKA_VTYPE_MSGFLAGS,
                RD_KAFKA_MSG_F_COPY,
                RD_KAFKA_VTYPE_VALUE,
                vp,
                vl,
                RD_KAFKA_VTYPE_KEY,
                kp,
                kl,
                RD_KAFKA_VTYPE_OPAQUE,
                opaque,
                RD_KAFKA_VTYPE_HEADERS,
                hdrs,
                RD_KAFKA_VTYPE_END,
            );
            if err != rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !hdrs.is_null() {
                rd_kafka_headers_destroy(hdrs);
            }
            err
        };
        if err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(err.into())
        }
    }
}

impl Drop for TopicHandles {
    fn drop(&mut self) {
        for rkt in self.rkts.drain(..) {
            // SAFETY: each handle came from `rd_kafka_topic_new` and is released exactly once,
            // while the producer is still alive (see `KafkaSink`'s field order).
            unsafe { rdkafka::bindings::rd_kafka_topic_destroy(rkt) };
        }
    }
}

/// A producer with spate's delivery context, on `bootstrap`.
fn make_producer(cfg: &KafkaConfig, bootstrap: &str) -> Result<BaseProducer<SinkContext>, EngineError> {
    let ctx = SinkContext {
        outcomes: RefCell::new(Outcomes::default()),
        slow_ns: cfg.breaker.slow_call.as_nanos() as u64,
        max_attempts: cfg.retries.min(100) as u8,
        app_retries: cfg.idempotence,
        all_brokers_down: AtomicBool::new(false),
        errors: AtomicU64::new(0),
    };
    cfg.client_config(bootstrap).create_with_context(ctx).map_err(|e| EngineError::Kafka(format!("cannot create the producer: {e}")))
}
