//! Command-line interface: flags map onto the same `RawConfig` schema as the config file, and
//! are laid over it (flags win).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use spate_engine::config::{Flags, Target};
use spate_engine::ConfigError;

#[derive(Debug, Parser)]
#[command(name = "spate", version, about = "Thread-per-core event generator and Kafka load driver")]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
    /// Log level: error, warn, info (default), debug or trace (or the SPATE_LOG variable).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log lines as text (`spate: warning: ...`, default) or JSON objects.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: crate::logs::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Generate events at a rate into a sink.
    // Boxed: its dozens of flags would make every `Cmd` as large as itself.
    Run(Box<RunArgs>),
    /// Print the Avro schema of the events a run would make (flags and --config as for
    /// `run`; the format is Avro whatever they say).
    Schema(Box<RunArgs>),
    /// The configuration's key reference and JSON Schema.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Validate a config file without running anything.
    CheckConfig {
        /// The YAML config file.
        file: PathBuf,
    },
    /// Serve the embedded (in-memory) Kafka mock cluster on loopback until Ctrl-C.
    Broker(BrokerArgs),
    /// Consume a topic and audit it: every event parses, no gaps, no duplicates.
    Verify(VerifyArgs),
    /// HTTP control plane: start, retune and stop runs; /metrics for Prometheus.
    Serve(crate::serve::ServeArgs),
    /// Dead-letter file tools.
    Dlq {
        #[command(subcommand)]
        cmd: DlqCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print every key of the config (Markdown: the committed docs/config.md).
    Reference,
    /// Print the config's JSON Schema (for editors and validators).
    JsonSchema,
}

#[derive(Debug, Subcommand)]
pub enum DlqCmd {
    /// Re-send every record of a DLQ file to its original topic.
    Replay {
        file: PathBuf,
        /// Bootstrap servers (or kafka.brokers of --config).
        #[arg(long)]
        brokers: Option<String>,
        /// Send to this topic instead of each record's original topic.
        #[arg(long)]
        topic: Option<String>,
        /// A run config whose `kafka:` connection settings (brokers, tls, sasl) to use.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        security: KafkaSecurityArgs,
    },
}

/// TLS and SASL flags for every Kafka client spate makes (run, verify, dlq replay); the rest of
/// the settings, and secrets given inline or as `${ENV}`, are in `kafka.tls` / `kafka.sasl`.
#[derive(Debug, Args, Default, Clone)]
pub struct KafkaSecurityArgs {
    /// Connect to the brokers over TLS (certificates checked against the system's CAs unless
    /// --kafka-ca is given).
    #[arg(long)]
    pub kafka_tls: bool,
    /// CA bundle (PEM) that signed the brokers' certificates (implies --kafka-tls).
    #[arg(long, value_name = "PEM")]
    pub kafka_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS (implies --kafka-tls; needs --kafka-key).
    #[arg(long, value_name = "PEM")]
    pub kafka_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM")]
    pub kafka_key: Option<PathBuf>,
    /// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
    #[arg(long, value_name = "MECHANISM")]
    pub kafka_sasl_mechanism: Option<String>,
    #[arg(long, value_name = "USER")]
    pub kafka_sasl_username: Option<String>,
    /// File holding the SASL password (never pass a password on the command line).
    #[arg(long, value_name = "FILE")]
    pub kafka_sasl_password_file: Option<PathBuf>,
}

impl KafkaSecurityArgs {
    /// Adds the flags given to `f`, as settings of the Kafka sink.
    pub fn add_to(&self, f: &mut Flags) {
        use serde_yaml_ng::Value;
        let p =
            |v: &Option<PathBuf>| v.as_ref().map(|p| Value::from(p.to_string_lossy().into_owned()));
        let at = |path: &'static [&'static str]| Target::Sink { kinds: KAFKA, path };
        let tls = self.kafka_tls
            || self.kafka_ca.is_some()
            || self.kafka_cert.is_some()
            || self.kafka_key.is_some();
        f.set("--kafka-tls", at(&["tls", "enabled"]), tls.then_some(Value::from(true)));
        f.set("--kafka-ca", at(&["tls", "ca_file"]), p(&self.kafka_ca));
        f.set("--kafka-cert", at(&["tls", "cert_file"]), p(&self.kafka_cert));
        f.set("--kafka-key", at(&["tls", "key_file"]), p(&self.kafka_key));
        f.set(
            "--kafka-sasl-mechanism",
            at(&["sasl", "mechanism"]),
            self.kafka_sasl_mechanism.clone().map(Value::from),
        );
        f.set(
            "--kafka-sasl-username",
            at(&["sasl", "username"]),
            self.kafka_sasl_username.clone().map(Value::from),
        );
        f.set(
            "--kafka-sasl-password-file",
            at(&["sasl", "password_file"]),
            p(&self.kafka_sasl_password_file),
        );
    }
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Mock brokers in the cluster.
    #[arg(long, default_value_t = 1)]
    pub brokers: i32,
    /// Topics to create up front (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub topic: Vec<String>,
    /// Partitions per created topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Write the bootstrap address to this file too (for scripts).
    #[arg(long)]
    pub bootstrap_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Bootstrap servers (or kafka.brokers of --config).
    #[arg(long)]
    pub brokers: Option<String>,
    /// A run config whose `kafka:` connection settings (brokers, tls, sasl) to use.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub security: KafkaSecurityArgs,
    /// The topic to audit (Kafka).
    #[arg(long, required_unless_present = "postgres")]
    pub topic: Option<String>,
    /// Audit a PostgreSQL sink's table instead: postgres://USER@HOST:PORT/DB (with --table).
    #[arg(long)]
    pub postgres: Option<String>,
    /// The table of --postgres (default spate_events).
    #[arg(long, requires = "postgres")]
    pub table: Option<String>,
    /// Events expected in total (missing ones are counted).
    #[arg(long)]
    pub expect: Option<u64>,
    /// Give up waiting for more records after this long, e.g. 30s.
    #[arg(long, default_value = "30s")]
    pub timeout: String,
    /// Only audit events of this run id (default: every run found).
    #[arg(long)]
    pub run_id: Option<String>,
    /// Payloads are JSON (parsed with simd-json); otherwise only the id header is audited.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub json: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// YAML config file (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Events per second for this instance (1 to 10000000) or `max`.
    #[arg(long)]
    pub rate: Option<String>,
    /// Extra events that may go at once above the steady rate.
    #[arg(long)]
    pub burst: Option<u64>,
    /// How long to run, e.g. 30s, 5m.
    #[arg(long)]
    pub duration: Option<String>,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// Once generation stops, how long the sink may settle what is in flight (default 10s);
    /// what is left then is dead-lettered (Kafka) or counted failed.
    #[arg(long)]
    pub drain_timeout: Option<String>,
    /// After a stall, how much missed schedule to make up at full speed (default 1s; 0s: none).
    #[arg(long)]
    pub catch_up: Option<String>,
    /// Acks of the first DURATION after the sink is ready are warm-up: their latency is
    /// reported apart (default 1s; 0s: none)
    #[arg(long)]
    pub warmup: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Do not pin workers to cores.
    #[arg(long)]
    pub no_pin: bool,
    /// stdout, null, file:PATH, tcp://HOST:PORT[?framing=octet], kafka, or
    /// postgres://USER@HOST:PORT/DB?table=T (a config file's `sink:` has every setting of each).
    #[arg(long)]
    pub sink: Option<String>,
    /// json, logfmt, apache_common, apache_combined, rfc5424, rfc3164 or avro.
    #[arg(long)]
    pub format: Option<String>,
    /// Record the run in this PostgreSQL database's audit tables (spate_runs,
    /// spate_run_changes), e.g. postgres://spate@127.0.0.1:5432/spate.
    #[arg(long)]
    pub audit: Option<String>,
    /// Generate records conforming to this Avro schema (.avsc; datagen-style `arg.properties`
    /// hints) instead of the built-in sources; written as avro (default) or json.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Avro: register the schema in this Confluent-compatible Schema Registry and frame every
    /// record with its id (magic byte 0 + 4-byte id + datum).
    #[arg(long)]
    pub schema_registry: Option<String>,
    /// Avro: frame records with this schema id without asking a registry.
    #[arg(long)]
    pub schema_id: Option<u32>,
    /// Avro: raw (default without a schema id), confluent or container (one-record container).
    #[arg(long)]
    pub avro_framing: Option<String>,
    /// Avro container files (file and stdout sinks): null (default), deflate or zstandard.
    #[arg(long)]
    pub avro_codec: Option<String>,
    /// Source weights, e.g. web=70,app=20,payment=10.
    #[arg(long)]
    pub source: Option<String>,
    /// Events of about this many bytes (padded, or fields left out last first)
    #[arg(long)]
    pub size: Option<usize>,
    /// Trace context in each line: traceparent (default without --size), ids, none (default with --size)
    #[arg(long)]
    pub trace_context: Option<String>,
    /// The fields events carry, e.g. method,path,status (json, logfmt; default all)
    #[arg(long, value_delimiter = ',')]
    pub fields: Option<Vec<String>>,
    /// PRNG seed (same seed, same events apart from timestamps, ids and trace context).
    /// Default: random, printed in the summary.
    #[arg(long)]
    pub seed: Option<u64>,
    /// block (default: wait, lose nothing), shed (drop and count) or, with Kafka or PostgreSQL, spill (while the
    /// circuit breaker is open, events go to the DLQ file instead of waiting).
    #[arg(long)]
    pub backpressure: Option<String>,
    /// Batches per worker ring.
    #[arg(long)]
    pub ring_capacity: Option<usize>,
    /// Most events per batch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Memory the run may use, e.g. 512MiB (default: half of the cgroup's or machine's memory);
    /// above 80 % of it generation is held back (block) or shed (shed, spill).
    #[arg(long)]
    pub memory_budget: Option<String>,
    /// Write the final summary as JSON here.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Kafka bootstrap servers (default: an embedded in-memory cluster).
    #[arg(long)]
    pub brokers: Option<String>,
    /// Kafka topic or template, e.g. logs.{source}.
    #[arg(long)]
    pub topic: Option<String>,
    /// Record key: none, source, trace_id, round_robin.
    #[arg(long)]
    pub key: Option<String>,
    /// all, 1 or 0.
    #[arg(long)]
    pub acks: Option<String>,
    /// none, lz4, zstd, snappy, gzip.
    #[arg(long)]
    pub compression: Option<String>,
    /// Turn the idempotent producer off.
    #[arg(long)]
    pub no_idempotence: bool,
    /// No `traceparent`/`spate-id` headers on Kafka records (faster; the verifier then reads
    /// ids from the JSON payload).
    #[arg(long)]
    pub no_headers: bool,
    /// Any librdkafka property, key=value (repeatable).
    #[arg(long = "kafka-opt")]
    pub kafka_opt: Vec<String>,
    /// Cap on bytes in rings and librdkafka's queue.
    #[arg(long)]
    pub max_inflight_bytes: Option<u64>,
    /// How long librdkafka keeps trying to deliver a record (librdkafka `message.timeout.ms`,
    /// default 30000).
    #[arg(long)]
    pub message_timeout_ms: Option<u64>,
    /// Dead-letter file for when Kafka is unreachable.
    #[arg(long)]
    pub dlq_file: Option<PathBuf>,
    #[command(flatten)]
    pub kafka_security: KafkaSecurityArgs,
    /// Serve Prometheus /metrics and /v1/status on this address while running. An address
    /// other hosts can reach needs --metrics-token-file (or --metrics-token).
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on /metrics and /v1/status (not /healthz).
    /// Prefer --metrics-token-file: a token on the command line shows in the process list.
    #[arg(long)]
    pub metrics_token: Option<String>,
    /// Read the metrics bearer token from this file (its contents, trimmed).
    #[arg(long, conflicts_with = "metrics_token")]
    pub metrics_token_file: Option<PathBuf>,
    /// Another name the metrics server answers to in the `Host` header, `name` or `name:port`
    /// (repeatable), e.g. the name Prometheus scrapes it by.
    #[arg(long = "metrics-allowed-host")]
    pub metrics_allowed_hosts: Vec<String>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
    /// Seconds between progress lines when stderr is not a terminal (default 10; 0: none).
    #[arg(long, value_name = "SECONDS")]
    pub progress: Option<u64>,
    /// Share a global rate with every instance using this Redis and limit key:
    /// redis://[user:password@]host:port[/db], or rediss:// for TLS. Then --rate is ignored.
    #[arg(long)]
    pub redis: Option<String>,
    /// Redis ACL user (instead of the URL's user part).
    #[arg(long, value_name = "USER")]
    pub redis_user: Option<String>,
    /// File holding the Redis password (instead of the URL's).
    #[arg(long, value_name = "FILE")]
    pub redis_password_file: Option<PathBuf>,
    /// CA bundle (PEM) that signed the Redis server's certificate (rediss://).
    #[arg(long, value_name = "PEM")]
    pub redis_ca: Option<PathBuf>,
    /// Client certificate (PEM) for a Redis that asks for one (rediss://; needs --redis-key).
    #[arg(long, value_name = "PEM")]
    pub redis_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM")]
    pub redis_key: Option<PathBuf>,
    /// Events per second for all instances sharing --limit-key together.
    #[arg(long)]
    pub global_rate: Option<u64>,
    /// Name of the shared limit (1-64 chars of A-Za-z0-9_.:-).
    #[arg(long)]
    pub limit_key: Option<String>,
    /// Instances expected to share the limit (sets the default fallback rate).
    #[arg(long)]
    pub expected_instances: Option<u64>,
    /// Events per second for this instance while Redis is unreachable.
    #[arg(long)]
    pub fallback_rate: Option<u64>,
    /// Export sampled batch spans (generate, ring, produce, ack) to this Zipkin v2 collector,
    /// e.g. http://127.0.0.1:9411/api/v2/spans. Off when unset.
    #[arg(long)]
    pub trace_endpoint: Option<String>,
    /// Fraction of batches traced (0.000001 to 1, default 0.01).
    #[arg(long)]
    pub trace_sample: Option<f64>,
}

/// The sink kinds a flag of the Kafka sink applies to.
const KAFKA: &[&str] = &["kafka"];
/// Sinks with a dead-letter file.
const DLQ: &[&str] = &["kafka", "postgres"];

impl RunArgs {
    /// The flags as one layer of the config (see `spate_engine::config::Flags`): each flag sets
    /// the key it names, laid over `--config` by the one merge.
    pub fn flags(&self) -> Result<Flags, ConfigError> {
        use serde_yaml_ng::Value;
        let s = |v: &Option<String>| v.clone().map(Value::from);
        let n = |v: Option<u64>| v.map(Value::from);
        let b = |v: bool, when: bool| v.then_some(Value::from(when));
        let p =
            |v: &Option<PathBuf>| v.as_ref().map(|p| Value::from(p.to_string_lossy().into_owned()));
        let mut f = Flags::default();
        f.set("--rate", Target::Path(&["rate"]), s(&self.rate));
        f.set("--burst", Target::Path(&["burst"]), n(self.burst));
        f.set("--duration", Target::Path(&["duration"]), s(&self.duration));
        f.set("--count", Target::Path(&["count"]), n(self.count));
        f.set("--drain-timeout", Target::Path(&["drain_timeout"]), s(&self.drain_timeout));
        f.set("--catch-up", Target::Path(&["catch_up"]), s(&self.catch_up));
        f.set("--warmup", Target::Path(&["warmup"]), s(&self.warmup));
        f.set("--threads", Target::Path(&["threads"]), self.threads.map(|t| Value::from(t as u64)));
        f.set("--no-pin", Target::Path(&["pin"]), b(self.no_pin, false));
        f.set("--sink", Target::Path(&["sink"]), s(&self.sink));
        f.set("--format", Target::Path(&["format"]), s(&self.format));
        f.set("--audit", Target::Path(&["audit", "url"]), s(&self.audit));
        f.set("--schema", Target::Path(&["schema"]), p(&self.schema));
        f.set(
            "--schema-registry",
            Target::Path(&["avro", "schema_registry", "url"]),
            s(&self.schema_registry),
        );
        f.set(
            "--schema-id",
            Target::Path(&["avro", "schema_id"]),
            self.schema_id.map(|i| Value::from(u64::from(i))),
        );
        f.set("--avro-framing", Target::Path(&["avro", "framing"]), s(&self.avro_framing));
        f.set("--avro-codec", Target::Path(&["avro", "codec"]), s(&self.avro_codec));
        if let Some(src) = &self.source {
            let m = parse_sources(src)?;
            f.set(
                "--source",
                Target::Path(&["sources"]),
                Some(serde_yaml_ng::to_value(m).unwrap_or(Value::Null)),
            );
        }
        f.set("--size", Target::Path(&["size"]), self.size.map(|v| Value::from(v as u64)));
        f.set("--trace-context", Target::Path(&["trace_context"]), s(&self.trace_context));
        f.set(
            "--fields",
            Target::Path(&["fields"]),
            self.fields
                .as_ref()
                .map(|v| Value::Sequence(v.iter().map(|x| Value::from(x.as_str())).collect())),
        );
        f.set("--seed", Target::Path(&["seed"]), n(self.seed));
        f.set("--backpressure", Target::Path(&["backpressure"]), s(&self.backpressure));
        f.set("--memory-budget", Target::Path(&["memory_budget"]), s(&self.memory_budget));
        f.set(
            "--ring-capacity",
            Target::Path(&["ring_capacity"]),
            self.ring_capacity.map(|v| Value::from(v as u64)),
        );
        f.set(
            "--batch-size",
            Target::Path(&["batch_size"]),
            self.batch_size.map(|v| Value::from(v as u64)),
        );
        let kafka = |path| Target::Sink { kinds: KAFKA, path };
        f.set("--brokers", kafka(&["brokers"]), s(&self.brokers));
        f.set("--topic", kafka(&["topic"]), s(&self.topic));
        f.set("--key", kafka(&["key"]), s(&self.key));
        f.set("--acks", kafka(&["acks"]), s(&self.acks));
        f.set("--compression", kafka(&["compression"]), s(&self.compression));
        f.set("--no-idempotence", kafka(&["idempotence"]), b(self.no_idempotence, false));
        f.set("--no-headers", kafka(&["headers"]), b(self.no_headers, false));
        f.set("--max-inflight-bytes", kafka(&["max_inflight_bytes"]), n(self.max_inflight_bytes));
        f.set("--message-timeout-ms", kafka(&["message_timeout_ms"]), n(self.message_timeout_ms));
        f.set("--dlq-file", Target::Sink { kinds: DLQ, path: &["dlq_file"] }, p(&self.dlq_file));
        if !self.kafka_opt.is_empty() {
            let mut m = serde_yaml_ng::Mapping::new();
            for kv in &self.kafka_opt {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    ConfigError::new(
                        "--kafka-opt",
                        format!("`{kv}` is not key=value"),
                        "write --kafka-opt key=value, e.g. --kafka-opt batch.size=1000000",
                    )
                })?;
                m.insert(Value::from(k.trim()), Value::from(v.trim()));
            }
            f.set("--kafka-opt", kafka(&["options"]), Some(Value::Mapping(m)));
        }
        self.kafka_security.add_to(&mut f);
        f.set("--redis", Target::Path(&["redis", "url"]), s(&self.redis));
        f.set("--redis-user", Target::Path(&["redis", "username"]), s(&self.redis_user));
        f.set(
            "--redis-password-file",
            Target::Path(&["redis", "password_file"]),
            p(&self.redis_password_file),
        );
        f.set("--redis-ca", Target::Path(&["redis", "tls", "ca_file"]), p(&self.redis_ca));
        f.set("--redis-cert", Target::Path(&["redis", "tls", "cert_file"]), p(&self.redis_cert));
        f.set("--redis-key", Target::Path(&["redis", "tls", "key_file"]), p(&self.redis_key));
        f.set("--global-rate", Target::Path(&["redis", "global_rate"]), n(self.global_rate));
        f.set("--limit-key", Target::Path(&["redis", "limit_key"]), s(&self.limit_key));
        f.set(
            "--expected-instances",
            Target::Path(&["redis", "expected_instances"]),
            n(self.expected_instances),
        );
        f.set("--fallback-rate", Target::Path(&["redis", "fallback_rate"]), n(self.fallback_rate));
        f.set("--trace-endpoint", Target::Path(&["tracing", "endpoint"]), s(&self.trace_endpoint));
        f.set(
            "--trace-sample",
            Target::Path(&["tracing", "sample"]),
            self.trace_sample.map(Value::from),
        );
        Ok(f)
    }
}

/// `web=70,app=20` (a bare name means weight 1).
pub fn parse_sources(s: &str) -> Result<BTreeMap<String, u32>, ConfigError> {
    let mut m = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, w) = match part.split_once('=') {
            Some((n, w)) => (
                n.trim(),
                w.trim().parse::<u32>().map_err(|_| {
                    ConfigError::new(
                        "--source",
                        format!("weight `{w}` of `{n}` is not a whole number"),
                        "write --source web=70,app=20,payment=10",
                    )
                })?,
            ),
            None => (part, 1),
        };
        m.insert(name.to_string(), w);
    }
    if m.is_empty() {
        return Err(ConfigError::new(
            "--source",
            "no source given",
            "write --source web=70,app=20,payment=10",
        ));
    }
    Ok(m)
}
