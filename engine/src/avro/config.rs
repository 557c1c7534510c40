//! The `avro:` section: how datums are framed in Kafka records and TCP frames, the container
//! codec for files, and the Schema Registry.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use schemars::JsonSchema;
use spate_core::conf::{HumanDuration, SecretFile, SecretText};
use spate_core::secret::{self, Secret};
use spate_core::ConfigError;

use spate_gen::avro::Codec;

/// `avro:` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAvro {
    /// Codec of container-file blocks (file and stdout sinks): `null` (default), `deflate`,
    /// `zstandard` (or `zstd`).
    pub codec: Option<String>,
    /// How a Kafka record value (or TCP frame) holds a datum: `raw` (the default without a
    /// schema id), `confluent` (magic byte 0, the schema id, the datum: the default with
    /// `schema_id` or `schema_registry`), or `container` (an object container file holding
    /// the one record: what tansu's schema validation reads).
    pub framing: Option<String>,
    /// The schema id for `confluent` framing, without asking a registry.
    pub schema_id: Option<u32>,
    /// Register (or look up) the schema in a Confluent-compatible Schema Registry.
    pub schema_registry: Option<RawRegistry>,
    /// Record keys (`kafka.key`): `string` (default: the key's text) or `avro` (an Avro
    /// `string`, Confluent-framed with the id of schema `"string"` under the key subject).
    pub key_format: Option<String>,
}

/// `avro.schema_registry:` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    /// `http://host:port` or `https://…` (base path allowed).
    pub url: String,
    /// Subject naming: `topic` (default, `{topic}-value`), `record` (`{namespace.name}`) or
    /// `topic_record` (`{topic}-{namespace.name}`).
    pub subject_strategy: Option<String>,
    /// Register the schema (default true); false only looks it up, and a schema the registry
    /// does not have is an error at start.
    pub auto_register: Option<bool>,
    /// Basic auth user; the password inline (`${ENV}` allowed) or in `password_file`.
    pub username: Option<String>,
    /// The basic auth password (`${ENV}` allowed).
    pub password: Option<SecretText>,
    /// A file holding the password.
    pub password_file: Option<SecretFile>,
    /// Bearer token, inline (`${ENV}` allowed) or in `token_file`.
    pub token: Option<SecretText>,
    /// A file holding the token.
    pub token_file: Option<SecretFile>,
    /// CA certificate (PEM) for an `https` registry; default: the system's roots.
    pub ca_file: Option<SecretFile>,
    /// Per-request timeout. Default `10s`.
    pub timeout: Option<HumanDuration>,
}

/// How each Kafka record value or TCP frame holds a datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The datum alone.
    Raw,
    /// Magic byte 0 and this schema id (known after the registry answered).
    Confluent,
    /// A one-record object container.
    Container,
}

/// Subject naming strategies, as Confluent's serializers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStrategy {
    /// `{topic}-value` (or `{topic}-key`).
    Topic,
    /// The record's full name, `{namespace.name}`.
    Record,
    /// `{topic}-{namespace.name}`.
    TopicRecord,
}

/// Registry credentials.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    /// No credentials.
    None,
    /// Basic auth with a user and its password.
    Basic {
        /// The user.
        username: String,
        /// The user's password.
        password: Secret,
    },
    /// A bearer token.
    Bearer(Secret),
}

/// A checked `avro.schema_registry`.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Base URL, `http(s)://host:port` with any base path, without a trailing `/`.
    pub url: String,
    /// How subjects are named.
    pub strategy: SubjectStrategy,
    /// Register the schema; false only looks it up.
    pub auto_register: bool,
    /// Credentials sent with each request.
    pub auth: RegistryAuth,
    /// CA certificate (PEM) for an `https` registry; `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Per-request timeout (default 10 s).
    pub timeout: Duration,
}

/// A checked `avro:` section.
#[derive(Debug, Clone)]
pub struct AvroConfig {
    /// Codec of container-file blocks (file and stdout sinks).
    pub codec: Codec,
    /// How each Kafka record value or TCP frame holds a datum.
    pub framing: Framing,
    /// The schema id for `confluent` framing, given without a registry.
    pub schema_id: Option<u32>,
    /// The Schema Registry to register (or look up) the schema in.
    pub registry: Option<RegistryConfig>,
    /// Keys as Confluent-framed Avro strings.
    pub avro_keys: bool,
}

impl Default for AvroConfig {
    fn default() -> Self {
        Self {
            codec: Codec::Null,
            framing: Framing::Raw,
            schema_id: None,
            registry: None,
            avro_keys: false,
        }
    }
}

impl RawAvro {
    /// Checks the section; `is_avro`: the run's format is Avro (otherwise the section is an
    /// error: it would silently do nothing).
    pub fn validate(&self, is_avro: bool) -> Result<AvroConfig, ConfigError> {
        if !is_avro && *self != RawAvro::default() {
            return Err(ConfigError::new(
                "avro",
                "the `avro` section applies to `format: avro` only",
                "set `format: avro`, or remove the section",
            ));
        }
        let codec = match &self.codec {
            None => Codec::Null,
            Some(c) => c.parse().map_err(|_| {
                ConfigError::new(
                    "avro.codec",
                    format!("unknown codec `{c}`"),
                    "use null, deflate or zstandard",
                )
            })?,
        };
        let registry = self.schema_registry.as_ref().map(RawRegistry::validate).transpose()?;
        if registry.is_some() && self.schema_id.is_some() {
            return Err(ConfigError::new(
                "avro.schema_id",
                "both `schema_id` and `schema_registry` are set",
                "give `schema_id` to skip the registry, or `schema_registry` to ask it, not both",
            ));
        }
        let framing = match self.framing.as_deref() {
            None if registry.is_some() || self.schema_id.is_some() => Framing::Confluent,
            None | Some("raw") => Framing::Raw,
            Some("confluent") => Framing::Confluent,
            Some("container") => Framing::Container,
            Some(o) => {
                return Err(ConfigError::new(
                    "avro.framing",
                    format!("unknown framing `{o}`"),
                    "use raw (the datum alone), confluent (magic byte and schema id) or container (one-record object container)",
                ))
            }
        };
        if framing == Framing::Confluent && registry.is_none() && self.schema_id.is_none() {
            return Err(ConfigError::new(
                "avro.framing",
                "`confluent` framing needs a schema id",
                "set `avro.schema_id` or `avro.schema_registry.url` (--schema-id / --schema-registry)",
            ));
        }
        if framing != Framing::Confluent && (registry.is_some() || self.schema_id.is_some()) {
            return Err(ConfigError::new(
                "avro.framing",
                format!(
                    "a schema id is only written with `confluent` framing, not `{}`",
                    self.framing.as_deref().unwrap_or("raw")
                ),
                "use `framing: confluent`, or drop schema_id / schema_registry",
            ));
        }
        let avro_keys = match self.key_format.as_deref() {
            None | Some("string") => false,
            Some("avro") if registry.is_some() => true,
            Some("avro") => {
                return Err(ConfigError::new(
                    "avro.key_format",
                    "Avro keys need the key schema's id from a registry",
                    "set `avro.schema_registry`, or use `key_format: string`",
                ))
            }
            Some(o) => {
                return Err(ConfigError::new(
                    "avro.key_format",
                    format!("unknown key format `{o}`"),
                    "use string or avro",
                ))
            }
        };
        Ok(AvroConfig { codec, framing, schema_id: self.schema_id, registry, avro_keys })
    }
}

impl RawRegistry {
    fn validate(&self) -> Result<RegistryConfig, ConfigError> {
        let key = "avro.schema_registry.url";
        let u = self.url.trim();
        let rest = u.strip_prefix("http://").or_else(|| u.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(ConfigError::new(
                key,
                format!("`{u}` is not an http(s) URL"),
                "write http://HOST:PORT or https://HOST:PORT",
            ));
        }
        let strategy = match self.subject_strategy.as_deref() {
            None | Some("topic") => SubjectStrategy::Topic,
            Some("record") => SubjectStrategy::Record,
            Some("topic_record") => SubjectStrategy::TopicRecord,
            Some(o) => {
                return Err(ConfigError::new(
                    "avro.schema_registry.subject_strategy",
                    format!("unknown strategy `{o}`"),
                    "use topic ({topic}-value), record ({namespace.name}) or topic_record ({topic}-{namespace.name})",
                ))
            }
        };
        let password = secret::resolve(
            self.password.as_ref().map(SecretText::as_str),
            self.password_file.as_ref().map(SecretFile::path),
            "avro.schema_registry.password",
            "avro.schema_registry.password_file",
        )?;
        let token = secret::resolve(
            self.token.as_ref().map(SecretText::as_str),
            self.token_file.as_ref().map(SecretFile::path),
            "avro.schema_registry.token",
            "avro.schema_registry.token_file",
        )?;
        let auth = match (&self.username, password, token) {
            (Some(_), _, Some(_)) => {
                return Err(ConfigError::new(
                    "avro.schema_registry.token",
                    "both basic auth (username) and a bearer token are set",
                    "use one: username with password, or token",
                ))
            }
            (Some(u), Some(p), None) => RegistryAuth::Basic { username: u.clone(), password: p },
            (Some(_), None, None) => {
                return Err(ConfigError::new(
                    "avro.schema_registry.password",
                    "a username without a password",
                    "set password_file (or password with ${ENV})",
                ))
            }
            (None, Some(_), _) => {
                return Err(ConfigError::new(
                    "avro.schema_registry.username",
                    "a password without a username",
                    "set username",
                ))
            }
            (None, None, Some(t)) => RegistryAuth::Bearer(t),
            (None, None, None) => RegistryAuth::None,
        };
        if let Some(p) = &self.ca_file {
            secret::check_file(p.path(), "avro.schema_registry.ca_file", "CA certificate")?;
        }
        let timeout = self.timeout.map_or(Duration::from_secs(10), HumanDuration::get);
        if timeout.is_zero() || timeout > Duration::from_secs(300) {
            return Err(ConfigError::new(
                "avro.schema_registry.timeout",
                format!("{timeout:?} is out of range"),
                "use a duration above 0 and at most 5m (default 10s)",
            ));
        }
        Ok(RegistryConfig {
            url: u.trim_end_matches('/').to_string(),
            strategy,
            auto_register: self.auto_register.unwrap_or(true),
            auth,
            ca_file: self.ca_file.as_ref().map(|p| p.0.clone()),
            timeout,
        })
    }
}
