//! The `redis:` config section: `RawRedis` as read from the file and flags, and the validated
//! `RedisConfig`, including the limit key's rules and the window Redis counts.
//!
//! ## The guard
//!
//! The window Redis counts is `window_ms` plus a **guard** `G = clamp(window / limit, 2 ms,
//! 50 ms)` (one token interval of the global rate, within those bounds): a slot freed in Redis
//! is re-granted at least `window + G` after it was first granted. The guard absorbs the jitter
//! between "granted" and "spent" (thread wake-ups on a loaded machine), so that at low rates,
//! where one event more is a large error, no window of `window_ms` sees more than the limit.
//! Cost: when the window is saturated the throughput is `W / (W + G)` of the limit: 0.2 % for
//! limits of 500 per window and more, up to 5 % for limits of 20 and fewer (e.g. 10/s gives
//! about 9.5/s).
//!
//! ## Security
//!
//! Passwords never reach a log: `RedisConfig` and `RawRedis` print the URL through [`redact`]
//! and the password as a [`Secret`] (Debug, Serialize, error messages). The password may be in
//! the URL, in `password` (`${ENV}` allowed) or in `password_file`; an ACL user in the URL or
//! `username`. `rediss://` is TLS (rustls, see ADR 011): the server's certificate is checked
//! against `tls.ca_file` (else the system's CAs) and its host name, unless
//! `tls.verify_hostname: false` (logged at start); `tls.cert_file` / `key_file` give a client
//! certificate.

use std::num::NonZeroU64;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use spate_core::conf::{SecretFile, SecretText, SecretUrl};

use crate::redis::redact::{redact, scrub};
use crate::Rate;
use spate_core::breaker::BreakerConfig;
use spate_core::secret::{self, Secret};
use spate_core::ConfigError;

/// Default smallest lease in events (see `RawRedis::lease_min_events`).
pub const DEFAULT_LEASE_MIN_EVENTS: u64 = 2000;

/// Bounds of the guard added to the Redis window (µs); see the module doc.
const GUARD_MIN_US: u64 = 2_000;
const GUARD_MAX_US: u64 = 50_000;

/// The `redis:` section of the config file. Every field is optional; `validate` checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS (`${NAME}` reads the
    /// environment). Printed with its password masked.
    pub url: Option<SecretUrl>,
    /// Events per second for all instances sharing the key together, 1 to 10,000,000.
    pub global_rate: Option<u64>,
    /// Name of the shared limit (1-64 chars of `[A-Za-z0-9_.:-]`); the Redis key is
    /// `spate:limit:{NAME}`.
    pub limit_key: Option<String>,
    /// Instances expected to share the key, 1 to 100000: sets the default fallback rate.
    pub expected_instances: Option<u64>,
    /// Events per second for this instance while Redis is unreachable (default: the global rate
    /// over the instances seen).
    pub fallback_rate: Option<u64>,
    /// Target lease period in ms, 5 to a quarter of the window (default 50).
    pub lease_ms: Option<u64>,
    /// Smallest lease in events, 1 to 1000000 (default 2000), so Redis sees at most about one
    /// call per 2,000 events at any rate high enough to fill it within a quarter window.
    pub lease_min_events: Option<u64>,
    /// Sliding window in ms, 100 to 60000 (default 1000).
    pub window_ms: Option<u64>,
    /// ACL user (instead of the URL's user part).
    pub username: Option<String>,
    /// Password (instead of the URL's); `${ENV}` allowed. Never printed.
    pub password: Option<SecretText>,
    /// File holding the password.
    pub password_file: Option<SecretFile>,
    /// TLS settings for `rediss://`.
    pub tls: Option<RawRedisTls>,
}

/// `redis.tls`: only with a `rediss://` URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRedisTls {
    /// CA bundle (PEM) that signed the server's certificate. Unset: the system's store.
    pub ca_file: Option<SecretFile>,
    /// Client certificate (PEM), for a Redis with `tls-auth-clients yes`.
    pub cert_file: Option<SecretFile>,
    /// The client certificate's key (PEM).
    pub key_file: Option<SecretFile>,
    /// Check the server's certificate names the host (default true; false is logged).
    pub verify_hostname: Option<bool>,
}

impl RawRedis {
    /// Checks every field and builds a `RedisConfig`. Errors name the key (`redis.url`, ...).
    pub fn validate(&self) -> Result<RedisConfig, ConfigError> {
        let url = secret::expand(self.url.as_ref().map_or("", |u| u.as_str().trim()), "redis.url")?;
        let url = url.as_str();
        if url.is_empty() {
            return Err(ConfigError::new(
                "redis.url",
                "no Redis URL given",
                "set redis.url (or --redis) to redis://host:port",
            ));
        }
        let tls_url = url.starts_with("rediss://");
        if !url.starts_with("redis://") && !tls_url {
            return Err(ConfigError::new(
                "redis.url",
                format!("`{}` is not a redis:// or rediss:// URL", redact(url)),
                "write redis://[user:password@]host:port[/db], or rediss:// for TLS",
            ));
        }
        let tls = match (&self.tls, tls_url) {
            (Some(_), false) => {
                return Err(ConfigError::new(
                    "redis.tls",
                    "TLS settings with a redis:// URL",
                    "write the URL as rediss://host:port for TLS, or remove redis.tls",
                ))
            }
            (t, true) => Some(RedisTls::from_raw(&t.clone().unwrap_or_default())?),
            (None, false) => None,
        };
        let username = self
            .username
            .as_deref()
            .map(|u| secret::expand(u, "redis.username"))
            .transpose()?
            .filter(|u| !u.is_empty());
        let password = secret::resolve(
            self.password.as_ref().map(SecretText::as_str),
            self.password_file.as_ref().map(SecretFile::path),
            "redis.password",
            "redis.password_file",
        )?;
        if let Err(e) = redis::Client::open(url) {
            return Err(ConfigError::new(
                "redis.url",
                format!(
                    "`{}` is not a valid Redis URL: {}",
                    redact(url),
                    scrub(&e.to_string(), url)
                ),
                "write redis://[user:password@]host:port[/db]",
            ));
        }
        let rate_fix = "give events per second from 1 to 10000000";
        let global_rate = match self.global_rate {
            None => {
                return Err(ConfigError::new(
                    "redis.global_rate",
                    "no global rate given",
                    "set redis.global_rate (or --global-rate): events per second for all instances together",
                ))
            }
            Some(0) => return Err(ConfigError::new("redis.global_rate", "a global rate of 0 would never send anything", rate_fix)),
            Some(n) if n > Rate::MAX_PER_SEC => {
                return Err(ConfigError::new("redis.global_rate", format!("{n}/s is above the 10000000/s limit"), rate_fix))
            }
            Some(n) => NonZeroU64::new(n).expect("checked above"),
        };
        let Some(name) = self.limit_key.as_deref() else {
            return Err(ConfigError::new(
                "redis.limit_key",
                "no limit key given",
                "set redis.limit_key (or --limit-key): the name the instances sharing the limit agree on",
            ));
        };
        validate_key(name)?;
        let expected_instances = match self.expected_instances {
            None => None,
            Some(n @ 1..=100_000) => NonZeroU64::new(n),
            Some(n) => {
                return Err(ConfigError::new(
                    "redis.expected_instances",
                    format!("{n} instances is out of range"),
                    "use 1 to 100000",
                ))
            }
        };
        let fallback_rate = match self.fallback_rate {
            None => None,
            Some(0) => {
                return Err(ConfigError::new(
                    "redis.fallback_rate",
                    "a fallback rate of 0 would stop the run whenever Redis is down",
                    "give events per second from 1 up to the global rate",
                ))
            }
            Some(n) if n > global_rate.get() => {
                return Err(ConfigError::new(
                    "redis.fallback_rate",
                    format!("{n}/s is above the global rate of {global_rate}/s"),
                    "give events per second from 1 up to the global rate",
                ))
            }
            Some(n) => NonZeroU64::new(n),
        };
        let window_ms = match self.window_ms.unwrap_or(1000) {
            n @ 100..=60_000 => n,
            n => {
                return Err(ConfigError::new(
                    "redis.window_ms",
                    format!("{n} ms is out of range"),
                    "use 100 to 60000 (default 1000)",
                ))
            }
        };
        let lease_ms = match self.lease_ms.unwrap_or(50) {
            n @ 5..=1000 if n * 4 <= window_ms => n,
            n => {
                return Err(ConfigError::new(
                    "redis.lease_ms",
                    format!("{n} ms is out of range"),
                    format!(
                        "use 5 ms up to a quarter of the window ({} ms); default 50",
                        window_ms / 4
                    ),
                ))
            }
        };
        let lease_min_events = match self.lease_min_events.unwrap_or(DEFAULT_LEASE_MIN_EVENTS) {
            n @ 1..=1_000_000 => n,
            n => {
                return Err(ConfigError::new(
                    "redis.lease_min_events",
                    format!("{n} is out of range"),
                    format!("use 1 to 1000000 events (default {DEFAULT_LEASE_MIN_EVENTS})"),
                ))
            }
        };
        Ok(RedisConfig {
            url: url.to_string(),
            username,
            password,
            tls,
            global_rate,
            limit_key: name.to_string(),
            key: format!("spate:limit:{{{name}}}"),
            expected_instances,
            fallback_rate,
            lease: Duration::from_millis(lease_ms),
            lease_min_events,
            window: Duration::from_millis(window_ms),
            timeout: Duration::from_millis(200),
            breaker: BreakerConfig {
                window: 10,
                min_calls: 3,
                failure_rate: 0.5,
                slow_call: Duration::from_millis(100),
                slow_rate: 0.5,
                open_wait: Duration::from_secs(1),
                half_open_calls: 1,
            },
        })
    }
}

/// Validated `redis.tls`: the PEM files read at start, so a missing one is a config error.
#[derive(Clone, PartialEq)]
pub struct RedisTls {
    pub(super) ca: Option<Vec<u8>>,
    pub(super) client: Option<(Vec<u8>, Vec<u8>)>,
    /// Whether the server's certificate must name the host (default true).
    pub verify_hostname: bool,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca.is_some())
            .field("client_cert", &self.client.is_some())
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

impl RedisTls {
    fn from_raw(r: &RawRedisTls) -> Result<Self, ConfigError> {
        let read = |p: &SecretFile, key: &str, what: &str| -> Result<Vec<u8>, ConfigError> {
            let p = p.path();
            let b = std::fs::read(p).map_err(|e| {
                ConfigError::new(
                    key,
                    format!("cannot read the {what} `{}`: {e}", p.display()),
                    format!("give the path of a readable PEM file for {key}"),
                )
            })?;
            if !b.windows(11).any(|w| w == b"-----BEGIN ") {
                return Err(ConfigError::new(
                    key,
                    format!("`{}` is not a PEM file", p.display()),
                    "give a PEM file (-----BEGIN ...)",
                ));
            }
            Ok(b)
        };
        let ca = r.ca_file.as_ref().map(|p| read(p, "redis.tls.ca_file", "CA file")).transpose()?;
        let client = match (&r.cert_file, &r.key_file) {
            (Some(c), Some(k)) => Some((
                read(c, "redis.tls.cert_file", "client certificate")?,
                read(k, "redis.tls.key_file", "client key")?,
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "redis.tls.key_file",
                    "a client certificate without its key",
                    "set redis.tls.key_file too",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "redis.tls.cert_file",
                    "a client key without its certificate",
                    "set redis.tls.cert_file too",
                ))
            }
        };
        Ok(RedisTls { ca, client, verify_hostname: r.verify_hostname.unwrap_or(true) })
    }
}

/// A limit key name: 1-64 chars of `[A-Za-z0-9_.:-]`.
pub fn validate_key(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "redis.limit_key",
            format!("`{}` is not a valid limit key", name.escape_debug()),
            "use 1 to 64 characters of A-Z a-z 0-9 _ . : -",
        ))
    }
}

/// A validated Redis limiter configuration.
#[derive(Clone, PartialEq)]
pub struct RedisConfig {
    /// Kept inside the Redis limiter: it may hold a password. Printed only through `redact`.
    pub(super) url: String,
    /// ACL user and password given beside the URL (they win over the URL's).
    pub(super) username: Option<String>,
    pub(super) password: Option<Secret>,
    /// Set for `rediss://`.
    pub tls: Option<RedisTls>,
    /// Events per second shared by every instance on the key.
    pub global_rate: NonZeroU64,
    /// The name as given.
    pub limit_key: String,
    /// The namespaced Redis key, `spate:limit:{NAME}`.
    pub key: String,
    /// Instances expected to share the key (sets the default fallback rate).
    pub expected_instances: Option<NonZeroU64>,
    /// This instance's rate while Redis is unreachable.
    pub fallback_rate: Option<NonZeroU64>,
    /// Target lease period.
    pub lease: Duration,
    /// Smallest lease in events (capped at a quarter window of the instance's rate).
    pub lease_min_events: u64,
    /// The sliding window Redis counts (before its guard).
    pub window: Duration,
    /// Connect, read and write timeout of the Redis connection.
    pub timeout: Duration,
    /// Circuit breaker thresholds for Redis calls.
    pub breaker: BreakerConfig,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("global_rate", &self.global_rate)
            .field("key", &self.key)
            .field("expected_instances", &self.expected_instances)
            .field("fallback_rate", &self.fallback_rate)
            .field("lease", &self.lease)
            .field("lease_min_events", &self.lease_min_events)
            .field("window", &self.window)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl std::fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} key {} at {}/s", redact(&self.url), self.key, self.global_rate)
    }
}

impl RedisConfig {
    /// The client for this config: the URL, with the user and password given beside it, and
    /// TLS with its certificates for `rediss://`.
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        let mut info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str())?;
        if let Some(u) = &self.username {
            info.redis.username = Some(u.clone());
        }
        if let Some(p) = &self.password {
            info.redis.password = Some(p.expose().to_string());
        }
        let Some(t) = &self.tls else { return redis::Client::open(info) };
        let certs = redis::TlsCertificates {
            client_tls: t.client.as_ref().map(|(c, k)| redis::ClientTlsConfig {
                client_cert: c.clone(),
                client_key: k.clone(),
            }),
            root_cert: t.ca.clone(),
        };
        let client = redis::Client::build_with_tls(info, certs)?;
        if t.verify_hostname {
            return Ok(client);
        }
        // build_with_tls resets the flag: set it on the finished address.
        let mut info = client.get_connection_info().clone();
        info.addr.set_danger_accept_invalid_hostnames(true);
        redis::Client::open(info)
    }

    /// What to say at start about settings that weaken the connection.
    pub fn warnings(&self) -> Vec<String> {
        match &self.tls {
            Some(t) if !t.verify_hostname => vec![format!(
                "redis: TLS hostname verification is off (redis.tls.verify_hostname: false) for {}: any certificate from the trusted CA is accepted",
                redact(&self.url)
            )],
            _ => Vec::new(),
        }
    }

    /// Where the client connects: `(host, port)`, or a Unix socket's path with no port.
    pub fn address(&self) -> redis::RedisResult<(String, Option<u16>)> {
        let info = redis::IntoConnectionInfo::into_connection_info(self.url.as_str())?;
        Ok(match &info.addr {
            redis::ConnectionAddr::Tcp(h, p)
            | redis::ConnectionAddr::TcpTls { host: h, port: p, .. } => (h.clone(), Some(*p)),
            redis::ConnectionAddr::Unix(path) => (path.to_string_lossy().into_owned(), None),
        })
    }

    /// The URL with any password replaced by `<redacted>`.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// Tokens per window: the global rate times the window.
    pub(super) fn limit(&self) -> u64 {
        (u128::from(self.global_rate.get()) * self.window.as_millis() / 1000).max(1) as u64
    }

    /// The window Redis counts, in µs: the window plus the guard (see the module doc).
    pub fn window_with_guard_us(&self) -> u64 {
        let w = self.window.as_micros() as u64;
        w + (w / self.limit()).clamp(GUARD_MIN_US, GUARD_MAX_US)
    }

    /// The fallback rate given the instance count Redis last reported.
    pub(super) fn fallback_rate_for(&self, seen_instances: u64) -> NonZeroU64 {
        if let Some(r) = self.fallback_rate {
            return r;
        }
        let k = self.expected_instances.map_or(seen_instances.max(1), std::num::NonZero::get);
        NonZeroU64::new(self.global_rate.get() / k).unwrap_or(NonZeroU64::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: &str) -> RawRedis {
        RawRedis {
            url: Some(url.into()),
            global_rate: Some(1000),
            limit_key: Some("k".into()),
            ..Default::default()
        }
    }

    #[test]
    fn secrets_never_printed() {
        let mut r = raw("redis://u:s3cret@127.0.0.1:1");
        let c = r.validate().unwrap();
        for text in [
            format!("{c:?}"),
            c.to_string(),
            format!("{r:?}"),
            serde_json::to_string(&r).unwrap(),
            c.redacted_url(),
        ] {
            assert!(!text.contains("s3cret"), "{text}");
        }
        r.url = Some("rediss://u:s3cret@h:1".into());
        r.password = Some("pw-s3cret".into());
        let c = r.validate().unwrap();
        assert!(
            c.tls.as_ref().is_some_and(|t| t.verify_hostname),
            "rediss:// is TLS, host names checked"
        );
        for text in
            [format!("{c:?}"), c.to_string(), format!("{r:?}"), serde_json::to_string(&r).unwrap()]
        {
            assert!(!text.contains("s3cret"), "{text}");
        }
        r.password = None;
        r.tls =
            Some(RawRedisTls { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() });
        assert_eq!(r.validate().unwrap_err().key, "redis.tls.ca_file");
        r.url = Some("redis://u:s3cret@h:1".into());
        assert_eq!(r.validate().unwrap_err().key, "redis.tls", "TLS settings need rediss://");
        r.tls = None;
        r.url = Some("http://u:s3cret@h:1".into());
        assert!(!r.validate().unwrap_err().to_string().contains("s3cret"));
    }

    #[test]
    fn validation_names_keys() {
        let ok = raw("redis://127.0.0.1:1").validate().unwrap();
        assert_eq!(ok.key, "spate:limit:{k}");
        assert_eq!(ok.lease, Duration::from_millis(50));
        assert_eq!(ok.window, Duration::from_secs(1));
        assert_eq!(ok.window_with_guard_us(), 1_002_000, "1000/s: 2 ms guard");
        let low = RawRedis { global_rate: Some(10), ..raw("redis://h") };
        assert_eq!(low.validate().unwrap().window_with_guard_us(), 1_050_000, "10/s: 50 ms");
        let mid = RawRedis { global_rate: Some(100), ..raw("redis://h") };
        assert_eq!(mid.validate().unwrap().window_with_guard_us(), 1_010_000, "100/s: 10 ms");
        let cases: Vec<(RawRedis, &str)> = vec![
            (RawRedis { url: None, ..raw("") }, "redis.url"),
            (RawRedis { global_rate: None, ..raw("redis://h") }, "redis.global_rate"),
            (RawRedis { global_rate: Some(0), ..raw("redis://h") }, "redis.global_rate"),
            (RawRedis { limit_key: None, ..raw("redis://h") }, "redis.limit_key"),
            (RawRedis { limit_key: Some("a b".into()), ..raw("redis://h") }, "redis.limit_key"),
            (RawRedis { limit_key: Some("x{y}".into()), ..raw("redis://h") }, "redis.limit_key"),
            (RawRedis { limit_key: Some("k".repeat(65)), ..raw("redis://h") }, "redis.limit_key"),
            (RawRedis { limit_key: Some(String::new()), ..raw("redis://h") }, "redis.limit_key"),
            (RawRedis { fallback_rate: Some(2000), ..raw("redis://h") }, "redis.fallback_rate"),
            (
                RawRedis { expected_instances: Some(0), ..raw("redis://h") },
                "redis.expected_instances",
            ),
            (RawRedis { lease_ms: Some(600), ..raw("redis://h") }, "redis.lease_ms"),
            (RawRedis { window_ms: Some(10), ..raw("redis://h") }, "redis.window_ms"),
        ];
        for (r, key) in cases {
            let e = r.validate().unwrap_err();
            assert_eq!(e.key, key, "{r:?}: {e}");
            assert!(e.to_string().contains("fix:"), "{e}");
        }
        assert!(validate_key("a-Z_0.9:x").is_ok());
    }

    #[test]
    fn fallback_rate_defaults() {
        let c = raw("redis://h").validate().unwrap();
        assert_eq!(c.fallback_rate_for(4).get(), 250);
        let c = RawRedis { expected_instances: Some(3), ..raw("redis://h") }.validate().unwrap();
        assert_eq!(c.fallback_rate_for(4).get(), 333);
        let c = RawRedis { fallback_rate: Some(7), ..raw("redis://h") }.validate().unwrap();
        assert_eq!(c.fallback_rate_for(4).get(), 7);
    }
}
