//! The `sink:` section: one key naming the kind, with that kind's own settings
//! (`sink: {kafka: {brokers: ..., topic: ...}}`), and the shorthands people write on the command
//! line and in older files (`kafka`, `file:PATH`, `tcp://HOST:PORT?framing=octet`,
//! `postgres://USER@HOST:PORT/DB?table=T`), which [`expand_shorthand`] turns into that form
//! before anything else reads the config.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use spate_core::conf::DataPath;
use spate_core::ConfigError;

use super::kafka::config::{KafkaConfig, RawKafka};
use super::postgres::config::{PgConfig, RawPostgres};
use super::tcp::config::{RawTcp, TcpConfig};

/// Where events go: exactly one kind.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSink {
    /// Standard output (the default); `spate run | head` ends quietly. Shorthand `stdout`.
    Stdout(RawNoSettings),
    /// Discards events (counted delivered): measures generation alone. Shorthand `null`.
    Null(RawNoSettings),
    /// A file, created or truncated at start. Shorthand `file:PATH`.
    File(RawFile),
    /// A TCP collector (Vector, Fluent Bit, syslog-ng). Shorthand `tcp://HOST:PORT[?framing=octet]`.
    Tcp(RawTcp),
    /// Kafka. Shorthand `kafka` (the settings then come from flags, or the deprecated top-level
    /// `kafka:` section).
    Kafka(Box<RawKafka>),
    /// A PostgreSQL table, by binary COPY. Shorthand `postgres://USER@HOST:PORT/DB?table=T`.
    Postgres(Box<RawPostgres>),
}

/// Kinds without settings print as their shorthand (`"null"`), the others as the tagged form.
impl Serialize for RawSink {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Configs are small, and this runs only when one is shown.
        let json = |v: &dyn erased_json::ToJson| v.to_json();
        let (kind, settings) = match self {
            RawSink::Stdout(_) => return s.serialize_str("stdout"),
            RawSink::Null(_) => return s.serialize_str("null"),
            RawSink::File(f) => ("file", json(f)),
            RawSink::Tcp(t) => ("tcp", json(t)),
            RawSink::Kafka(k) => ("kafka", json(k.as_ref())),
            RawSink::Postgres(p) => ("postgres", json(p.as_ref())),
        };
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(kind, &settings)?;
        m.end()
    }
}

mod erased_json {
    /// Any settings type, as JSON.
    pub(super) trait ToJson {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> ToJson for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}

impl Default for RawSink {
    fn default() -> Self {
        RawSink::Stdout(RawNoSettings {})
    }
}

/// A sink without settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNoSettings {}

/// `sink: {file: ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The file to write (created, or truncated if it exists).
    pub path: DataPath,
}

/// A checked sink.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    /// Lines (or an Avro container) on standard output.
    Stdout,
    /// Discards events (counted as delivered).
    Null,
    /// A file, created or truncated.
    File(DataPath),
    /// A TCP connection.
    Tcp(TcpConfig),
    /// A Kafka topic.
    Kafka(Box<KafkaConfig>),
    /// A PostgreSQL table.
    Postgres(Box<PgConfig>),
}

impl SinkConfig {
    /// The kind's name, as the `sink:` key writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Stdout => "stdout",
            SinkConfig::Null => "null",
            SinkConfig::File(_) => "file",
            SinkConfig::Tcp(_) => "tcp",
            SinkConfig::Kafka(_) => "kafka",
            SinkConfig::Postgres(_) => "postgres",
        }
    }

    /// Whether the sink is Kafka.
    pub fn is_kafka(&self) -> bool {
        matches!(self, SinkConfig::Kafka(_))
    }

    /// Whether the sink is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, SinkConfig::Postgres(_))
    }

    /// The Kafka settings, when the sink is Kafka.
    pub fn kafka(&self) -> Option<&KafkaConfig> {
        match self {
            SinkConfig::Kafka(k) => Some(k),
            _ => None,
        }
    }
}

/// Shown in summaries and status: the kind and where (passwords masked).
impl std::fmt::Display for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkConfig::Stdout => f.write_str("stdout"),
            SinkConfig::Null => f.write_str("null"),
            SinkConfig::File(p) => write!(f, "file:{}", p.path().display()),
            SinkConfig::Tcp(t) => f.write_str(&t.display()),
            SinkConfig::Kafka(_) => f.write_str("kafka"),
            SinkConfig::Postgres(p) => f.write_str(&p.display()),
        }
    }
}

impl RawSink {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            RawSink::Stdout(_) => "stdout",
            RawSink::Null(_) => "null",
            RawSink::File(_) => "file",
            RawSink::Tcp(_) => "tcp",
            RawSink::Kafka(_) => "kafka",
            RawSink::Postgres(_) => "postgres",
        }
    }

    /// Checks the kind's settings. `kafka_needed`: the Kafka settings are checked as those of
    /// the run's sink (an embedded cluster is started when no brokers are given).
    pub fn validate(&self) -> Result<SinkConfig, ConfigError> {
        Ok(match self {
            RawSink::Stdout(_) => SinkConfig::Stdout,
            RawSink::Null(_) => SinkConfig::Null,
            RawSink::File(f) => {
                if f.path.path().as_os_str().is_empty() {
                    return Err(ConfigError::new(
                        "sink.file.path",
                        "the path is empty",
                        "give the file to write, e.g. file:events.jsonl",
                    ));
                }
                SinkConfig::File(f.path.clone())
            }
            RawSink::Tcp(t) => SinkConfig::Tcp(t.validate()?),
            RawSink::Kafka(k) => SinkConfig::Kafka(Box::new(KafkaConfig::from_raw(k)?)),
            RawSink::Postgres(p) => SinkConfig::Postgres(Box::new(p.validate()?)),
        })
    }
}

/// The kinds, as `sink:` names them.
pub const KINDS: [&str; 6] = ["stdout", "null", "file", "tcp", "kafka", "postgres"];

/// Turns a shorthand into the tagged form: `stdout`, `-`, `null`, `kafka`, `file:PATH`,
/// `tcp://HOST:PORT[?framing=F]`, `postgres://...?table=T&...` (a YAML `null` is the null
/// sink). A map is returned as it is. Errors name `key`.
pub fn expand_shorthand(v: &Value, key: &str) -> Result<Value, ConfigError> {
    let tagged = |kind: &str, settings: Mapping| {
        let mut m = Mapping::new();
        m.insert(Value::from(kind), Value::Mapping(settings));
        Ok(Value::Mapping(m))
    };
    let s = match v {
        // YAML reads a bare `null` as "no value": `sink: null` means the null sink.
        Value::Null => return tagged("null", Mapping::new()),
        // YAML reads the key of `{null: {}}` as null too.
        Value::Mapping(m) if m.len() == 1 && m.contains_key(Value::Null) => return tagged("null", Mapping::new()),
        Value::Mapping(_) => return Ok(v.clone()),
        Value::String(s) => s.trim(),
        _ => {
            return Err(ConfigError::new(
                key,
                "a sink is a name (stdout, null, kafka, file:PATH, tcp://..., postgres://...) or a table with one key naming the kind",
                "write e.g. `sink: kafka` or `sink: {kafka: {brokers: 127.0.0.1:9092, topic: logs}}`",
            ))
        }
    };
    match s {
        "stdout" | "-" => tagged("stdout", Mapping::new()),
        "null" => tagged("null", Mapping::new()),
        "kafka" => tagged("kafka", Mapping::new()),
        s if s.starts_with("file:") && s.len() > 5 => {
            let mut m = Mapping::new();
            m.insert("path".into(), Value::from(&s[5..]));
            tagged("file", m)
        }
        s if s.starts_with("tcp://") => tagged("tcp", super::tcp::config::shorthand(s, key)?),
        s if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
            tagged("postgres", super::postgres::config::shorthand(s, key)?)
        }
        s => Err(ConfigError::new(
            key,
            format!("unknown sink `{s}`"),
            "use stdout, null, file:PATH, tcp://HOST:PORT, kafka or postgres://USER@HOST:PORT/DB?table=T",
        )),
    }
}

/// The kind a tagged `sink:` value names (after [`expand_shorthand`]).
pub fn kind_of(v: &Value) -> Option<&str> {
    match v {
        Value::Mapping(m) if m.len() == 1 => m.keys().next().and_then(Value::as_str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(s: &str) -> Value {
        expand_shorthand(&Value::from(s), "sink").unwrap()
    }

    #[test]
    fn shorthands_expand_to_the_tagged_form() {
        assert_eq!(kind_of(&expand("stdout")), Some("stdout"));
        assert_eq!(kind_of(&expand("-")), Some("stdout"));
        assert_eq!(kind_of(&expand_shorthand(&Value::Null, "sink").unwrap()), Some("null"));
        assert_eq!(
            expand("file:/tmp/x.jsonl"),
            serde_yaml_ng::from_str::<Value>("file: {path: /tmp/x.jsonl}").unwrap()
        );
        assert_eq!(
            expand("tcp://127.0.0.1:5140?framing=octet"),
            serde_yaml_ng::from_str::<Value>("tcp: {address: '127.0.0.1:5140', framing: octet}")
                .unwrap()
        );
        let pg = expand("postgres://u@h:5432/db?table=ev&commit_rows=500&layout=typed&dlq_file=d.jsonl&sslmode=disable");
        assert_eq!(
            pg,
            serde_yaml_ng::from_str::<Value>(
                "postgres: {url: 'postgres://u@h:5432/db?sslmode=disable', table: ev, commit_rows: 500, layout: typed, dlq_file: d.jsonl}"
            )
            .unwrap()
        );
        for bad in ["tcp", "file:", "http://x", "kafka://b"] {
            let e = expand_shorthand(&Value::from(bad), "sink").unwrap_err();
            assert_eq!(e.key, "sink", "{bad}: {e}");
        }
    }

    #[test]
    fn the_tagged_form_is_checked_per_kind() {
        let s: RawSink =
            serde_json::from_value(serde_json::to_value(expand("file:out.jsonl")).unwrap())
                .unwrap();
        assert_eq!(s.validate().unwrap(), SinkConfig::File("out.jsonl".into()));
        let e = crate::config::RawConfig::from_yaml("sink: {file: {path: x, mode: append}}")
            .unwrap_err();
        assert!(e.message.contains("unknown field `mode`") && e.key == "sink.file.mode", "{e}");
        let e = crate::config::RawConfig::from_yaml("sink: {ftp: {}}").unwrap_err();
        assert!(e.message.contains("unknown variant `ftp`") && e.key == "sink", "{e}");
    }
}
