//! Checking a [`RawConfig`] into a [`RunConfig`]: every value, every combination; a problem is
//! one [`ConfigError`] naming the key and the fix.

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use spate_core::conf::HumanDuration;
use spate_core::ConfigError;
use spate_gen::{EventConfig, Format, TraceContext};
use spate_limit::redis::config::RawRedis;
use spate_limit::Rate;

use super::raw::{RawConfig, RawRate};
use super::run_config::{Backpressure, RunConfig};
use crate::sink::config::{RawSink, SinkConfig};
use crate::sink::kafka::config::KafkaConfig;

impl RawConfig {
    /// Checks everything and builds typed values.
    pub fn validate(&self) -> Result<RunConfig, ConfigError> {
        let rate = match &self.rate {
            None => Rate::PerSec(NonZeroU64::new(1000).unwrap_or(NonZeroU64::MIN)),
            Some(r) => parse_rate(r, "rate")?,
        };
        let duration = match self.duration {
            None => None,
            Some(d) if d.get().is_zero() => {
                return Err(ConfigError::new(
                    "duration",
                    "a duration of 0 would generate nothing",
                    "give a duration above 0, or omit it",
                ))
            }
            Some(d) => Some(d.get()),
        };
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
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mut deprecated = self.deprecated.clone();
        let mut sink = match &self.sink {
            RawSink::Kafka(k) => {
                SinkConfig::Kafka(Box::new(KafkaConfig::from_raw_with(k, &mut deprecated)?))
            }
            RawSink::Postgres(p) => {
                SinkConfig::Postgres(Box::new(p.validate_with(&mut deprecated)?))
            }
            other => other.validate()?,
        };
        let threads = match self.threads {
            // One worker per core, except that the Kafka sink keeps a core for the flush thread
            // and librdkafka's broker threads (see tuning.md).
            None if sink.is_kafka() => {
                NonZeroUsize::new(cores.saturating_sub(1)).unwrap_or(NonZeroUsize::MIN)
            }
            // One worker generates millions of events/s, many times what a PostgreSQL backend
            // loads; more would only take CPU from a server on the same machine.
            None if sink.is_postgres() => NonZeroUsize::MIN,
            None => NonZeroUsize::new(cores).unwrap_or(NonZeroUsize::MIN),
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
            Some(n) => NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN), // 0 is refused above
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
                let text = std::fs::read_to_string(p.path()).map_err(|e| {
                    ConfigError::new(
                        "schema",
                        format!("cannot read `{}`: {e}", p.path().display()),
                        "give the path of a readable .avsc file",
                    )
                })?;
                let text = spate_gen::strip_comments(&text);
                // Avro names checked (and `error` read as `record`) before any parser runs.
                Some(if spate_gen::is_json_schema(&text) {
                    text
                } else {
                    spate_gen::prepare_avro(&text)?
                })
            }
        };
        let schema_depth = match self.schema_depth {
            None => spate_gen::DEFAULT_SCHEMA_DEPTH,
            Some(d) if (1..=spate_gen::MAX_SCHEMA_DEPTH).contains(&d) => d,
            Some(d) => {
                return Err(ConfigError::new(
                    "schema_depth",
                    format!("{d} is not between 1 and {}", spate_gen::MAX_SCHEMA_DEPTH),
                    "give how many levels a recursive type expands, e.g. schema_depth: 3",
                ))
            }
        };
        let format: Format = match &self.format {
            // A schema's records: Avro for an Avro schema, JSON for a JSON Schema.
            None if schema.as_deref().is_some_and(spate_gen::is_json_schema) => Format::Json,
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
                return Err(ConfigError::new(
                    "size",
                    "size must be at least 1 byte",
                    "omit `size` for natural event sizes",
                ));
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
        let mut events = EventConfig {
            memory_limit: 0,
            wire_prefix: Vec::new(),
            avro_records_apart: false,
            container_sync: None,
            schema,
            schema_depth,
            trace,
            fields: self.fields.clone(),
            format,
            sources,
            templates: self.templates.clone().unwrap_or_default(),
            size: self.size,
            seed: self.seed.unwrap_or_else(random_seed),
        };
        let drain_timeout = self.drain_timeout.map_or(Duration::from_secs(10), HumanDuration::get);
        if drain_timeout > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "drain_timeout",
                format!("{drain_timeout:?} is longer than an hour"),
                "use 0s to 1h (default 10s)",
            ));
        }
        let catch_up = self.catch_up.map_or(Duration::from_secs(1), HumanDuration::get);
        if catch_up > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "catch_up",
                format!("{catch_up:?} is longer than a minute"),
                "use 0s to 60s (default 1s)",
            ));
        }
        let warmup = self.warmup.map_or(Duration::from_secs(1), HumanDuration::get);
        if warmup > Duration::from_secs(3600) {
            return Err(ConfigError::new(
                "warmup",
                format!("{warmup:?} is longer than an hour"),
                "use 0s to 1h (default 1s)",
            ));
        }
        let burst = self.burst.unwrap_or(0);
        // A burst is a catch-up allowance, not a second rate: at most 10 s of the rate.
        let burst_max =
            rate.per_sec().unwrap_or(Rate::MAX_PER_SEC).saturating_mul(10).min(Rate::MAX_PER_SEC);
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
            Some("spill") if sink.is_kafka() || sink.is_postgres() => Backpressure::Spill,
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
            n @ 2..=65_536 => NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN),
            n => {
                return Err(ConfigError::new(
                    "ring_capacity",
                    format!("{n} batches is out of range"),
                    "use 2 to 65536 (default 16)",
                ))
            }
        };
        // A PostgreSQL batch is a transaction, and each commit waits for the WAL flush: larger
        // batches by default (tuning.md: 1,024 gave 76k rows/s, 8,192 gave 107k, 32,768 139k).
        let default_batch = if sink.is_postgres() { 8192 } else { 1024 };
        let batch_size = match self.batch_size.unwrap_or(default_batch) {
            n @ 1..=65_536 => NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN),
            n => {
                return Err(ConfigError::new(
                    "batch_size",
                    format!("{n} events is out of range"),
                    "use 1 to 65536 (default 1024)",
                ))
            }
        };
        let avro = self.avro.clone().unwrap_or_default().validate(format == Format::Avro)?;
        if format == Format::Avro {
            check_avro_sink(&sink, &avro)?;
        }
        if sink.is_postgres() && format != Format::Json {
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
        let memory_budget = memory_budget(self, &mut sink, &events)?;
        // The pre-rendered events may take a quarter of it (`memory.rs`).
        events.memory_limit = usize::try_from(memory_budget / 4).unwrap_or(usize::MAX);
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
            memory_budget,
            redis,
            tracing,
            avro,
            audit: self.audit.as_ref().map(crate::audit::RawAudit::validate).transpose()?.flatten(),
            deprecated,
            raw: self.clone(),
        })
    }
}

/// Where Avro can go: files and stdout get object containers, Kafka and TCP (with octet
/// framing: a datum may hold newline bytes) get one datum per record or frame.
/// The memory budget, and what it bounds at once: the Kafka sink's in-flight bytes (by default a
/// quarter of the budget, at most 256 MiB; set, at most half of it) and events larger than the
/// Kafka producer accepts (`message.max.bytes`), refused here rather than dead-lettered by the
/// million.
fn memory_budget(
    raw: &RawConfig,
    sink: &mut SinkConfig,
    events: &EventConfig,
) -> Result<u64, ConfigError> {
    let budget =
        match raw.memory_budget {
            Some(b) if b.0 < 16 << 20 => return Err(ConfigError::new(
                "memory_budget",
                format!("{} bytes is too little to run in", b.0),
                "give at least 16MiB, or omit it for half of the machine's (or cgroup's) memory",
            )),
            Some(b) => match crate::memory::cgroup_limit() {
                // The kernel would kill the run before the watch could hold it back.
                Some(limit) if b.0 > limit => {
                    return Err(ConfigError::new(
                        "memory_budget",
                        format!(
                            "{} MiB is above this process's cgroup memory limit of {} MiB",
                            b.0 >> 20,
                            limit >> 20
                        ),
                        "give at most the cgroup's limit, or omit it for half of it",
                    ))
                }
                _ => b.0,
            },
            None => crate::memory::default_budget(),
        };
    let SinkConfig::Kafka(k) = sink else { return Ok(budget) };
    let set = matches!(&raw.sink, RawSink::Kafka(r) if r.max_inflight_bytes.is_some());
    if set && k.max_inflight_bytes > budget / 2 {
        return Err(ConfigError::new(
            "sink.kafka.max_inflight_bytes",
            format!(
                "{} MiB in flight is over half of the memory budget of {} MiB",
                k.max_inflight_bytes >> 20,
                budget >> 20
            ),
            "lower sink.kafka.max_inflight_bytes, or raise memory_budget",
        ));
    }
    if !set {
        k.max_inflight_bytes = k.max_inflight_bytes.min(budget / 4).max(1 << 20);
    }
    let option = k.options.iter().find(|(key, _)| key == "message.max.bytes");
    let max = option.and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(1_000_000);
    if let Some(size) = events.size {
        // librdkafka counts the record's framing, key and headers too: leave them 1 KiB.
        if size + 1024 > max {
            return Err(ConfigError::new(
                "size",
                format!(
                    "events of {size} bytes do not fit the Kafka producer's message.max.bytes of {max} (records of about {} bytes with key and headers)",
                    size + 1024
                ),
                format!(
                    "use a size of at most {}, or raise sink.kafka.options.message.max.bytes (and the broker's and topic's max.message.bytes)",
                    max.saturating_sub(1024)
                ),
            ));
        }
    }
    Ok(budget)
}

fn check_avro_sink(
    sink: &SinkConfig,
    avro: &crate::avro::config::AvroConfig,
) -> Result<(), ConfigError> {
    use crate::avro::config::Framing;
    match sink {
        SinkConfig::Tcp(t) if t.framing == crate::sink::tcp::Framing::Newline => Err(ConfigError::new(
            "sink.tcp.framing",
            "Avro datums are binary and may hold newline bytes: newline framing would split them",
            "use framing: octet (or ?framing=octet on the tcp:// shorthand: RFC 6587 octet counting)",
        )),
        SinkConfig::Stdout | SinkConfig::File(_) if avro.framing != Framing::Raw => Err(ConfigError::new(
            "avro.framing",
            format!("files and stdout hold one Avro object container, not {:?}-framed records", avro.framing),
            "drop avro.framing, schema_id and schema_registry for file and stdout sinks (they apply to kafka and tcp)",
        )),
        _ if avro.avro_keys && !sink.is_kafka() => {
            Err(ConfigError::new("avro.key_format", "only Kafka records have keys", "drop avro.key_format, or use sink: kafka"))
        }
        _ => Ok(()),
    }
}

/// A seed for a run that was given none: different in every process and every call.
fn random_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    spate_core::rng::splitmix64(
        now ^ (u64::from(std::process::id()) << 32) ^ spate_core::rng::splitmix64(n),
    )
}

/// `max`, or 1 to 10,000,000 events per second.
pub fn parse_rate(r: &RawRate, key: &str) -> Result<Rate, ConfigError> {
    let fix = "give events per second from 1 to 10000000, or `max`";
    let n = match r {
        RawRate::Num(n) => *n,
        RawRate::Text(t) if t.trim() == "max" => return Ok(Rate::Max),
        RawRate::Text(t) => {
            let t = t.trim().trim_end_matches("/s").replace('_', "");
            t.parse::<u64>()
                .map_err(|_| ConfigError::new(key, format!("`{t}` is not a rate"), fix))?
        }
    };
    match n {
        0 => Err(ConfigError::new(key, "a rate of 0 would never send anything", fix)),
        n if n > Rate::MAX_PER_SEC => Err(ConfigError::new(
            key,
            format!("{n}/s is above the 10000000/s limit"),
            "use `max` for as fast as possible, or a lower rate",
        )),
        n => Ok(Rate::PerSec(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN))), // 0 is refused above
    }
}
