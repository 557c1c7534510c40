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
//! Passwords in the URL never reach a log: `RedisConfig` and `RawRedis` print the URL through
//! [`redact`] (Debug, Serialize, error messages). `rediss://` (TLS) is rejected with a config
//! error: this build has no TLS support for Redis (it would pull in rustls and its crypto
//! backend); use a TLS tunnel (e.g. stunnel) to a `redis://` loopback address.

use std::num::NonZeroU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::breaker::BreakerConfig;
use crate::error::ConfigError;
use crate::limit::redis::redact::{redact, scrub};
use crate::limit::Rate;

/// Bounds of the guard added to the Redis window (µs); see the module doc.
const GUARD_MIN_US: u64 = 2_000;
const GUARD_MAX_US: u64 = 50_000;

/// The `redis:` section of the config file. Every field is optional; `validate` checks them.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://[user:password@]host:port[/db]`. Never printed unredacted.
    #[serde(serialize_with = "serialize_redacted")]
    pub url: Option<String>,
    /// Events per second for all instances sharing the key together.
    pub global_rate: Option<u64>,
    /// Name of the shared limit (1-64 chars of `[A-Za-z0-9_.:-]`); the Redis key is
    /// `spate:limit:{NAME}`.
    pub limit_key: Option<String>,
    /// Instances expected to share the key: sets the default fallback rate.
    pub expected_instances: Option<u64>,
    /// Events per second for this instance while Redis is unreachable.
    pub fallback_rate: Option<u64>,
    /// Target lease period in ms (default 50).
    pub lease_ms: Option<u64>,
    /// Sliding window in ms (default 1000).
    pub window_ms: Option<u64>,
}

fn serialize_redacted<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(u) => s.serialize_some(&redact(u)),
        None => s.serialize_none(),
    }
}

impl std::fmt::Debug for RawRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRedis")
            .field("url", &self.url.as_deref().map(redact))
            .field("global_rate", &self.global_rate)
            .field("limit_key", &self.limit_key)
            .field("expected_instances", &self.expected_instances)
            .field("fallback_rate", &self.fallback_rate)
            .field("lease_ms", &self.lease_ms)
            .field("window_ms", &self.window_ms)
            .finish()
    }
}

impl RawRedis {
    /// Lays `top` over `self`: every field `top` sets wins.
    pub fn overlay(self, top: RawRedis) -> RawRedis {
        RawRedis {
            url: top.url.or(self.url),
            global_rate: top.global_rate.or(self.global_rate),
            limit_key: top.limit_key.or(self.limit_key),
            expected_instances: top.expected_instances.or(self.expected_instances),
            fallback_rate: top.fallback_rate.or(self.fallback_rate),
            lease_ms: top.lease_ms.or(self.lease_ms),
            window_ms: top.window_ms.or(self.window_ms),
        }
    }

    /// Checks every field and builds a `RedisConfig`. Errors name the key (`redis.url`, ...).
    pub fn validate(&self) -> Result<RedisConfig, ConfigError> {
        let url = self.url.as_deref().map(str::trim).unwrap_or("");
        if url.is_empty() {
            return Err(ConfigError::new("redis.url", "no Redis URL given", "set redis.url (or --redis) to redis://host:port"));
        }
        if url.starts_with("rediss://") {
            return Err(ConfigError::new(
                "redis.url",
                format!("`{}` asks for TLS, which this build does not support for Redis", redact(url)),
                "use redis:// (e.g. through a TLS tunnel such as stunnel on loopback)",
            ));
        }
        if !url.starts_with("redis://") {
            return Err(ConfigError::new(
                "redis.url",
                format!("`{}` is not a redis:// URL", redact(url)),
                "write redis://[user:password@]host:port[/db]",
            ));
        }
        if let Err(e) = redis::Client::open(url) {
            return Err(ConfigError::new(
                "redis.url",
                format!("`{}` is not a valid Redis URL: {}", redact(url), scrub(&e.to_string(), url)),
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
        let name = match self.limit_key.as_deref() {
            None => {
                return Err(ConfigError::new(
                    "redis.limit_key",
                    "no limit key given",
                    "set redis.limit_key (or --limit-key): the name the instances sharing the limit agree on",
                ))
            }
            Some(k) => k,
        };
        validate_key(name)?;
        let expected_instances = match self.expected_instances {
            None => None,
            Some(n @ 1..=100_000) => NonZeroU64::new(n),
            Some(n) => {
                return Err(ConfigError::new("redis.expected_instances", format!("{n} instances is out of range"), "use 1 to 100000"))
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
            n => return Err(ConfigError::new("redis.window_ms", format!("{n} ms is out of range"), "use 100 to 60000 (default 1000)")),
        };
        let lease_ms = match self.lease_ms.unwrap_or(50) {
            n @ 5..=1000 if n * 4 <= window_ms => n,
            n => {
                return Err(ConfigError::new(
                    "redis.lease_ms",
                    format!("{n} ms is out of range"),
                    format!("use 5 ms up to a quarter of the window ({} ms); default 50", window_ms / 4),
                ))
            }
        };
        Ok(RedisConfig {
            url: url.to_string(),
            global_rate,
            limit_key: name.to_string(),
            key: format!("spate:limit:{{{name}}}"),
            expected_instances,
            fallback_rate,
            lease: Duration::from_millis(lease_ms),
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

/// A limit key name: 1-64 chars of `[A-Za-z0-9_.:-]`.
pub fn validate_key(name: &str) -> Result<(), ConfigError> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
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
    pub global_rate: NonZeroU64,
    /// The name as given.
    pub limit_key: String,
    /// The namespaced Redis key, `spate:limit:{NAME}`.
    pub key: String,
    pub expected_instances: Option<NonZeroU64>,
    pub fallback_rate: Option<NonZeroU64>,
    /// Target lease period.
    pub lease: Duration,
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
    /// The URL with any password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// Tokens per window: the global rate times the window.
    pub(super) fn limit(&self) -> u64 {
        (self.global_rate.get() as u128 * self.window.as_millis() / 1000).max(1) as u64
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
        let k = self.expected_instances.map(|n| n.get()).unwrap_or(seen_instances.max(1));
        NonZeroU64::new(self.global_rate.get() / k).unwrap_or(NonZeroU64::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: &str) -> RawRedis {
        RawRedis { url: Some(url.into()), global_rate: Some(1000), limit_key: Some("k".into()), ..Default::default() }
    }

    #[test]
    fn secrets_never_printed() {
        let mut r = raw("redis://u:s3cret@127.0.0.1:1");
        let c = r.validate().unwrap();
        for text in [format!("{c:?}"), c.to_string(), format!("{r:?}"), serde_json::to_string(&r).unwrap(), c.redacted_url()] {
            assert!(!text.contains("s3cret"), "{text}");
        }
        r.url = Some("rediss://u:s3cret@h:1".into());
        let e = r.validate().unwrap_err();
        assert_eq!(e.key, "redis.url");
        assert!(!e.to_string().contains("s3cret") && e.message.contains("TLS"), "{e}");
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
            (RawRedis { expected_instances: Some(0), ..raw("redis://h") }, "redis.expected_instances"),
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
