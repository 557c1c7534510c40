//! Global rate across instances: a Redis sliding-window limiter that hands out **leased quota
//! chunks**, so Redis sees about one call per lease period (tens of ms), never one per event.
//!
//! ## Redis side: a sliding-window log of leases
//!
//! Every instance sharing a Redis and a limit key (`spate:limit:{NAME}`) together produces at
//! most `global_rate` events/s. The key is a sorted set; each member is one lease
//! (`"{tokens}:{instance}:{seq}"`, score = grant time in µs of the *Redis server's* clock, read
//! with `redis.call('TIME')` so the instances' clocks do not matter). One Lua script (below,
//! loaded once with `SCRIPT LOAD`, called by SHA with `EVALSHA`, reloaded on `NOSCRIPT`) does,
//! atomically: drop leases older than the window, sum what is still in the window, grant the
//! largest chunk that fits (possibly less than asked, possibly nothing plus a retry-after: the
//! time until the oldest lease leaves the window), and report how many distinct instances hold
//! leases in the window. The key is always passed as `KEYS[1]`, never interpolated into the
//! script, and the limit key name is validated (1-64 chars of `[A-Za-z0-9_.:-]`).
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
//! ## Instance side: one lease thread, lock-free workers
//!
//! A background **lease thread** (sync `redis` client, short connect/read/write timeouts) keeps
//! a queue of granted leases and releases their tokens into a shared pool: an `AtomicU64` of
//! tokens. It asks for the next lease `lease_ms / 2` before the queued ones run out (the
//! low-water mark), so workers normally never wait on Redis.
//!
//! Workers take tokens with a **CAS loop on the pool** (`compare_exchange_weak`, taking
//! `min(available, want)`; the lease thread adds with `fetch_add` and expires with a saturating
//! CAS). All counter operations are `Relaxed`: a token is a permit, not a pointer to data, so
//! there is nothing else to publish with it, and the CAS alone makes a take exact (no token is
//! handed out twice). The limiter **mode** (redis / fallback) is stored with `Release` by the
//! lease thread and loaded with `Acquire` by workers, so a worker that sees the mode change also
//! sees the pool that was reset before it. Nothing on the worker path locks, allocates or calls
//! Redis; a worker makes one CAS per batch.
//!
//! **Lease size adapts** to the instance's rate: the instance's target rate is
//! `R = global_rate / k × 1.05`, where `k` is the number of instances Redis reports in the
//! window (before the first answer: `expected_instances`, default 1), and a lease asks for
//! `ceil(R × lease_ms)` tokens (at least 1). The 5 % headroom keeps the Redis window saturated
//! so the aggregate reaches the global rate even when `k` is briefly wrong (instances starting or
//! stopping); Redis, not the instances, is what caps the total.
//!
//! ## Pacing inside a lease
//!
//! Tokens of a lease are not handed out at once: the lease thread **releases them into the pool
//! over the lease period** at rate `R` (on a ~1 ms tick, the same ~1 ms chunking as the local
//! `TokenBucket`), and each lease starts releasing where the previous one ends. Workers take
//! whatever is released; when the pool is empty they wait until the next release tick. (Chosen
//! over a per-worker bucket because one schedule per instance is exact however many workers
//! share it, and a token never sits in the pool waiting for some worker's bucket.) Small leases
//! (below 8 tokens, i.e. low rates) are not prefetched: they are asked for when due and released
//! as soon as they arrive, so a token is spent within about a millisecond of its grant.
//!
//! ## Precision and the overshoot bound
//!
//! Redis grants at most `limit = global_rate × window` tokens in any window (exact, server
//! time). Events lag their grant by the prefetch margin plus the release period, at most
//! `lease_ms` + 1 ms, and released tokens not taken within `lease_ms` (e.g. workers blocked by
//! backpressure) are dropped: **unused tokens of an expired lease are never carried over**, and
//! the pool is emptied on every switch to fallback. So the events of any window come from grants
//! made in that window plus at most the leases outstanding at its start: the worst-case overshoot
//! is `instances × lease size` = about `1.05 × global_rate × lease_ms` in total (5 % of the
//! limit per 1 s window at 50 ms leases; e.g. 1,575 events on 30,000/s), and 0 over a long run.
//!
//! ## Failure handling (Doorman-style "safe" mode)
//!
//! Each Redis call is recorded in a circuit breaker (`crate::breaker`, the same component as
//! Kafka's; window 10 calls, opens at 3+ calls with >= 50 % failed or slow (>= 100 ms)). A failed
//! call is retried every 20 ms while a lease is needed, so a dead Redis opens the breaker in about
//! 60 ms (at worst 3 × the 200 ms timeout). While the breaker is not closed the instance runs on
//! a **local token bucket at `fallback_rate`** (default `global_rate / expected_instances`, or,
//! when `expected_instances` is not set, `global_rate /` the instance count Redis last reported).
//! After 1 s open the breaker lets one trial call through; when it succeeds leases resume.
//! Mode, transitions, lease size, Redis calls, lease waits and granted tokens are published in
//! `RunShared::limiter` (`LimiterStats`). Redis being unreachable at start is not an error: the
//! run starts in fallback after the breaker opens.
//!
//! When `redis` is configured, the instance's own `rate` is irrelevant (the global rate rules;
//! the run's rate is reported as the global rate), and `PUT /v1/rate` does not change it.
//!
//! ## Security
//!
//! Passwords in the URL never reach a log: `RedisConfig` and `RawRedis` print the URL through
//! [`redact`] (Debug, Serialize, error messages). `rediss://` (TLS) is rejected with a config
//! error: this build has no TLS support for Redis (it would pull in rustls and its crypto
//! backend); use a TLS tunnel (e.g. stunnel) to a `redis://` loopback address.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::breaker::{Breaker, BreakerConfig, BreakerWindow, State};
use crate::clock::Clock;
use crate::error::{ConfigError, EngineError};
use crate::limiter::{Acquire, LimiterStats, Rate, RateLimiter, TokenBucket};

/// Index of "redis" in `limiter::MODES`.
pub const MODE_REDIS: usize = 2;
/// Index of "fallback" in `limiter::MODES`.
pub const MODE_FALLBACK: usize = 3;

/// Bounds of the guard added to the Redis window (µs); see the module doc.
const GUARD_MIN_US: u64 = 2_000;
const GUARD_MAX_US: u64 = 50_000;
/// Headroom over the instance's share of the global rate (see the module doc).
const HEADROOM: f64 = 1.05;
/// Retry interval after a failed Redis call while a lease is needed.
const RETRY_NS: u64 = 20_000_000;
/// Release tick of the lease thread.
const TICK_NS: u64 = 1_000_000;
/// Longest sleep of the lease thread (so it notices the end of the run promptly).
const MAX_SLEEP_NS: u64 = 10_000_000;
/// Leases smaller than this are not prefetched (see "Pacing inside a lease").
const PREFETCH_MIN_TOKENS: u64 = 8;

/// The grant script. KEYS[1]: the lease log. ARGV: want, limit (tokens per window), window (µs),
/// instance id, lease sequence number. Returns {granted, retry_after_us, instances, used}.
///
/// Scores are written with `string.format('%d')`: Lua would print a µs timestamp as `%.14g`
/// and lose precision.
pub const GRANT_SCRIPT: &str = r"
local key = KEYS[1]
local want = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local me = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - window))
local members = redis.call('ZRANGE', key, 0, -1)
local used = 0
local seen = {}
local instances = 0
for i = 1, #members do
  local n, inst = string.match(members[i], '^(%d+):([^:]+):')
  if n then
    used = used + tonumber(n)
    if not seen[inst] then
      seen[inst] = true
      instances = instances + 1
    end
  end
end
if not seen[me] then
  instances = instances + 1
end
local grant = limit - used
if grant > want then
  grant = want
end
if grant > 0 then
  redis.call('ZADD', key, string.format('%d', now), string.format('%d', grant) .. ':' .. me .. ':' .. ARGV[5])
  redis.call('PEXPIRE', key, string.format('%d', math.floor(window / 1000) + 1000))
  return {grant, 0, instances, used + grant}
end
local retry = 1000
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if #oldest == 2 then
  retry = tonumber(oldest[2]) + window - now
end
if retry < 1 then
  retry = 1
end
return {0, string.format('%d', retry), instances, used}
";

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
    /// Kept private: it may hold a password. Printed only through `redact`.
    url: String,
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
    fn limit(&self) -> u64 {
        (self.global_rate.get() as u128 * self.window.as_millis() / 1000).max(1) as u64
    }

    /// The window Redis counts, in µs: the window plus the guard (see the module doc).
    pub fn window_with_guard_us(&self) -> u64 {
        let w = self.window.as_micros() as u64;
        w + (w / self.limit()).clamp(GUARD_MIN_US, GUARD_MAX_US)
    }

    /// The fallback rate given the instance count Redis last reported.
    fn fallback_rate_for(&self, seen_instances: u64) -> NonZeroU64 {
        if let Some(r) = self.fallback_rate {
            return r;
        }
        let k = self.expected_instances.map(|n| n.get()).unwrap_or(seen_instances.max(1));
        NonZeroU64::new(self.global_rate.get() / k).unwrap_or(NonZeroU64::MIN)
    }
}

/// Replaces the password (or a lone user-info part, which Redis URLs use as a password) and any
/// `password=`/`pass=` query value of a URL with `***`. Never fails; text that is not a URL is
/// returned as is.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str("***"),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[auth_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let query = &tail[q + 1..];
            let (query, frag) = match query.find('#') {
                Some(h) => (&query[..h], &query[h..]),
                None => (query, ""),
            };
            let parts: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") => {
                        format!("{k}=***")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            out.push_str(&parts.join("&"));
            out.push_str(frag);
        }
        None => out.push_str(tail),
    }
    out
}

/// Removes any secret of `url` from an error message (a client error may quote the URL).
fn scrub(msg: &str, url: &str) -> String {
    let mut m = msg.replace(url, &redact(url));
    if let Ok(info) = redis::IntoConnectionInfo::into_connection_info(url) {
        if let Some(pw) = info.redis.password.as_deref().filter(|p| !p.is_empty()) {
            m = m.replace(pw, "***");
        }
    }
    m
}

/// State shared by the lease thread and the workers' limiters.
#[derive(Debug)]
pub struct LeasePool {
    /// Released tokens not yet taken.
    tokens: AtomicU64,
    /// `MODE_REDIS` or `MODE_FALLBACK`; Release by the lease thread, Acquire by workers.
    mode: AtomicUsize,
    /// Instance rate (events/s) while in fallback.
    fallback_rate: AtomicU64,
    /// Monotonic ns of the next release tick or Redis call (a hint for waiting workers).
    next_ns: AtomicU64,
    breaker: Breaker,
}

impl LeasePool {
    /// Takes up to `want` tokens: a CAS loop, `Relaxed` (see the module doc).
    #[inline]
    pub fn take(&self, want: u32) -> u32 {
        let mut cur = self.tokens.load(Ordering::Relaxed);
        loop {
            if cur == 0 || want == 0 {
                return 0;
            }
            let n = cur.min(want as u64);
            match self.tokens.compare_exchange_weak(cur, cur - n, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return n as u32,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Adds released tokens.
    pub fn put(&self, n: u64) {
        self.tokens.fetch_add(n, Ordering::Relaxed);
    }

    /// Removes up to `n` tokens (expiry), never going below 0.
    fn remove(&self, n: u64) {
        let _ = self.tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| Some(cur.saturating_sub(n)));
    }

    /// Tokens currently in the pool.
    pub fn available(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }

    /// A pool in redis mode with `tokens` in it and no lease thread (tests, benchmarks).
    pub fn standalone(tokens: u64) -> Arc<Self> {
        Arc::new(Self::new(tokens))
    }

    fn new(tokens: u64) -> Self {
        Self {
            tokens: AtomicU64::new(tokens),
            mode: AtomicUsize::new(MODE_REDIS),
            fallback_rate: AtomicU64::new(1),
            next_ns: AtomicU64::new(0),
            breaker: Breaker::new(),
        }
    }

    /// The breaker of the Redis calls (state for status and tests).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

/// A worker's limiter: takes leased tokens from the pool, or runs a local token bucket at its
/// share of the fallback rate while Redis is unavailable.
pub struct LeasedLimiter {
    pool: Arc<LeasePool>,
    worker: usize,
    workers: usize,
    fallback: Option<TokenBucket>,
    fallback_rate: u64,
}

/// How long past the lease thread's next tick a waiting worker looks again.
const POLL_SLACK_NS: u64 = 100_000;

impl LeasedLimiter {
    pub fn new(pool: Arc<LeasePool>, worker: usize, workers: usize) -> Self {
        Self { pool, worker, workers, fallback: None, fallback_rate: 0 }
    }
}

impl RateLimiter for LeasedLimiter {
    #[inline]
    fn acquire(&mut self, want: u32, now_ns: u64) -> Acquire {
        if self.pool.mode.load(Ordering::Acquire) == MODE_FALLBACK {
            let r = self.pool.fallback_rate.load(Ordering::Relaxed).max(1);
            if self.fallback.is_none() || r != self.fallback_rate {
                // A fresh schedule from now: no credit from before the switch.
                self.fallback_rate = r;
                self.fallback =
                    Some(TokenBucket::for_worker(NonZeroU64::new(r).unwrap_or(NonZeroU64::MIN), 0, self.worker, self.workers, now_ns));
            }
            if let Some(b) = &mut self.fallback {
                return b.acquire(want, now_ns);
            }
        }
        self.fallback = None;
        match self.pool.take(want) {
            0 => Acquire::Wait { until_ns: self.pool.next_ns.load(Ordering::Relaxed).max(now_ns) + POLL_SLACK_NS },
            n => Acquire::Granted(n),
        }
    }

    /// The global rate rules: a run-time rate change does not apply to a Redis-limited run.
    fn set_rate(&mut self, _rate: Rate, _now_ns: u64) {}

    fn mode(&self) -> &'static str {
        if self.pool.mode.load(Ordering::Relaxed) == MODE_FALLBACK {
            "fallback"
        } else {
            "redis"
        }
    }
}

/// A running Redis limiter: the pool the workers share. The lease thread stops on its own
/// (within ~10 ms) once every handle and limiter built from it is dropped.
#[derive(Clone)]
pub struct RedisLimiter {
    pool: Arc<LeasePool>,
}

impl RedisLimiter {
    /// Starts the lease thread. Does not wait for Redis: an unreachable Redis opens the breaker
    /// and the run goes on in fallback.
    pub fn start(cfg: &RedisConfig, stats: Arc<LimiterStats>, clock: Arc<dyn Clock>) -> Result<Self, EngineError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(|e| {
            EngineError::Redis(format!("cannot use {}: {}; check redis.url", redact(&cfg.url), scrub(&e.to_string(), &cfg.url)))
        })?;
        let pool = Arc::new(LeasePool::new(0));
        stats.mode.store(MODE_REDIS, Ordering::Relaxed);
        let seen = cfg.expected_instances.map(|n| n.get()).unwrap_or(1);
        pool.fallback_rate.store(cfg.fallback_rate_for(seen).get(), Ordering::Relaxed);
        let lease = LeaseThread {
            pool: Arc::downgrade(&pool),
            cfg: cfg.clone(),
            clock,
            client,
            conn: None,
            script: redis::Script::new(GRANT_SCRIPT),
            window: BreakerWindow::new(cfg.breaker),
            instance: instance_id(),
            seq: 0,
            leases: VecDeque::new(),
            released: VecDeque::new(),
            instances: seen,
            paced_until: 0,
            retry_at: 0,
            in_gap: false,
            stats,
        };
        std::thread::Builder::new()
            .name("spate-lease".into())
            .spawn(move || lease.run())
            .map_err(|source| EngineError::Spawn { name: "spate-lease".into(), source })?;
        Ok(Self { pool })
    }

    /// The limiter for worker `worker` of `workers`.
    pub fn limiter(&self, worker: usize, workers: usize) -> Box<dyn RateLimiter> {
        Box::new(LeasedLimiter::new(self.pool.clone(), worker, workers))
    }

    pub fn pool(&self) -> &Arc<LeasePool> {
        &self.pool
    }

    /// The engine's limiter factory for this limiter.
    pub fn factory(&self) -> crate::engine::LimiterFactory {
        let me = self.clone();
        Arc::new(move |w, n, _now| me.limiter(w, n))
    }
}

/// A random id for this instance's leases (distinguishes instances in the lease log).
fn instance_id() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let x = t ^ (std::process::id() as u64).rotate_left(32) ^ (&t as *const u64 as u64);
    // splitmix64 finalizer: spreads the bits of time, pid and a stack address.
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", z ^ (z >> 31))
}

/// One granted lease, releasing `n` tokens at `rate`/s from `start_ns`.
#[derive(Debug, Clone, Copy)]
struct Lease {
    start_ns: u64,
    n: u64,
    rate: u64,
    released: u64,
}

impl Lease {
    fn end_ns(&self) -> u64 {
        self.start_ns + (self.n as u128 * 1_000_000_000 / self.rate as u128) as u64
    }
    /// Tokens due by `now`: the first at `start`, then one every `1/rate`.
    fn due(&self, now: u64) -> u64 {
        if now < self.start_ns {
            return 0;
        }
        ((now - self.start_ns) as u128 * self.rate as u128 / 1_000_000_000 + 1).min(self.n as u128) as u64
    }
    /// When the next token after `released` is due.
    fn next_ns(&self) -> u64 {
        self.start_ns + (self.released as u128 * 1_000_000_000).div_ceil(self.rate as u128) as u64
    }
}

/// The answer of one grant call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub granted: u64,
    pub retry_after_us: u64,
    pub instances: u64,
    pub used: u64,
}

/// Calls the grant script by SHA, loading it when Redis does not know it (`NOSCRIPT`). Counts
/// every round trip in `calls`.
// The arguments are the script's KEYS and ARGV one for one: a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn call_grant(
    con: &mut redis::Connection,
    script: &redis::Script,
    key: &str,
    want: u64,
    limit: u64,
    window_us: u64,
    instance: &str,
    seq: u64,
    calls: &AtomicU64,
) -> redis::RedisResult<Grant> {
    let evalsha = |con: &mut redis::Connection| -> redis::RedisResult<(u64, u64, u64, u64)> {
        redis::cmd("EVALSHA").arg(script.get_hash()).arg(1).arg(key).arg(want).arg(limit).arg(window_us).arg(instance).arg(seq).query(con)
    };
    calls.fetch_add(1, Ordering::Relaxed);
    let r = match evalsha(con) {
        Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
            calls.fetch_add(2, Ordering::Relaxed);
            let _: String = redis::cmd("SCRIPT").arg("LOAD").arg(GRANT_SCRIPT).query(con)?;
            evalsha(con)?
        }
        other => other?,
    };
    Ok(Grant { granted: r.0, retry_after_us: r.1, instances: r.2, used: r.3 })
}

struct LeaseThread {
    pool: Weak<LeasePool>,
    cfg: RedisConfig,
    clock: Arc<dyn Clock>,
    client: redis::Client,
    conn: Option<redis::Connection>,
    script: redis::Script,
    window: BreakerWindow,
    instance: String,
    seq: u64,
    /// Granted leases not fully released, in release order.
    leases: VecDeque<Lease>,
    /// (release time, tokens) put into the pool, for expiry.
    released: VecDeque<(u64, u64)>,
    /// Instances Redis last reported in the window (or the expected count).
    instances: u64,
    /// End of the release period of the last lease granted (monotonic ns).
    paced_until: u64,
    /// No Redis call before this (retry-after or back-off after a failure).
    retry_at: u64,
    /// The instance ran out of leased tokens and is waiting for Redis (counted once per gap).
    in_gap: bool,
    stats: Arc<LimiterStats>,
}

impl LeaseThread {
    fn run(mut self) {
        loop {
            let Some(pool) = self.pool.upgrade() else {
                return;
            };
            let now = self.clock.now_ns();
            let wake = self.step(&pool, now);
            drop(pool);
            let now = self.clock.now_ns();
            self.clock.sleep_until(wake.clamp(now, now + MAX_SLEEP_NS));
        }
    }

    /// Instance target rate: its share of the global rate plus headroom.
    fn target_rate(&self) -> u64 {
        let g = self.cfg.global_rate.get();
        ((g as f64 / self.instances.max(1) as f64 * HEADROOM).ceil() as u64).clamp(1, g)
    }

    fn lease_tokens(&self) -> u64 {
        let r = self.target_rate();
        ((r as u128 * self.cfg.lease.as_nanos()).div_ceil(1_000_000_000) as u64).clamp(1, self.cfg.limit())
    }

    /// One round: breaker, mode, release, expiry, maybe a Redis call. Returns when to wake.
    fn step(&mut self, pool: &LeasePool, now: u64) -> u64 {
        self.window.tick(&pool.breaker, now);
        let state = pool.breaker.state();
        self.set_mode(pool, if state == State::Closed { MODE_REDIS } else { MODE_FALLBACK });
        let mut wake = now + MAX_SLEEP_NS;

        if state == State::Open {
            return wake;
        }
        // Release what is due.
        while let Some(l) = self.leases.front_mut() {
            let due = l.due(now);
            if due > l.released {
                let add = due - l.released;
                l.released = due;
                pool.put(add);
                self.released.push_back((now, add));
            }
            if l.released == l.n {
                self.leases.pop_front();
            } else {
                wake = wake.min(l.next_ns().max(now + TICK_NS));
                break;
            }
        }
        self.expire(pool, now);
        if let Some(&(t, _)) = self.released.front() {
            wake = wake.min(t + self.cfg.lease.as_nanos() as u64);
        }

        // Ask for the next lease at the low-water mark.
        // Not derived from the queue: a fully released lease is popped, but its period still
        // paces the next request (a one-token lease at 3/s is asked for every 333 ms).
        let end = self.paced_until;
        let want = self.lease_tokens();
        let prefetch = if want >= PREFETCH_MIN_TOKENS { self.cfg.lease.as_nanos() as u64 / 2 } else { 0 };
        let fetch_at = end.saturating_sub(prefetch).max(self.retry_at);
        if self.leases.is_empty() && pool.available() == 0 && !self.in_gap && end <= now {
            // Ran dry: this instance now waits for Redis (normal at low rates).
            self.in_gap = true;
            self.stats.lease_waits.fetch_add(1, Ordering::Relaxed);
        }
        if now >= fetch_at {
            self.fetch(pool, now, want, end);
            // Released right away if it starts now; the loop comes back within a tick.
            return now;
        }
        wake = wake.min(fetch_at);
        pool.next_ns.store(wake, Ordering::Relaxed);
        wake
    }

    fn set_mode(&mut self, pool: &LeasePool, mode: usize) {
        if pool.mode.load(Ordering::Relaxed) == mode {
            return;
        }
        if mode == MODE_FALLBACK {
            // Leases are not carried over a switch: empty the pool first.
            pool.tokens.store(0, Ordering::Relaxed);
            self.leases.clear();
            self.released.clear();
            self.paced_until = 0;
            pool.fallback_rate.store(self.cfg.fallback_rate_for(self.instances).get(), Ordering::Relaxed);
            self.stats.lease_size.store(0, Ordering::Relaxed);
        }
        self.in_gap = false;
        // Release: a worker that sees the new mode also sees the emptied pool.
        pool.mode.store(mode, Ordering::Release);
        self.stats.mode.store(mode, Ordering::Relaxed);
        self.stats.transitions.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops released tokens nobody took within a lease period (not carried over).
    fn expire(&mut self, pool: &LeasePool, now: u64) {
        let ttl = self.cfg.lease.as_nanos() as u64;
        while let Some(&(t, _)) = self.released.front() {
            if now < t + ttl {
                break;
            }
            self.released.pop_front();
            // Workers take oldest first in effect: what is left beyond the newer releases is old.
            let newer: u64 = self.released.iter().map(|r| r.1).sum();
            let stale = pool.available().saturating_sub(newer);
            if stale > 0 {
                pool.remove(stale);
            }
        }
    }

    fn fetch(&mut self, pool: &LeasePool, now: u64, want: u64, prev_end: u64) {
        let started = Instant::now();
        let res = self.call(want);
        let took = started.elapsed();
        let after = self.clock.now_ns();
        match res {
            Ok(g) => {
                self.window.record(&pool.breaker, false, took, after);
                self.instances = g.instances.max(1);
                if g.granted > 0 {
                    self.in_gap = false;
                    self.stats.granted.fetch_add(g.granted, Ordering::Relaxed);
                    self.stats.lease_size.store(g.granted, Ordering::Relaxed);
                    // Start where the queued leases end, or now: never before the grant.
                    let start = prev_end.max(now);
                    let lease = Lease { start_ns: start, n: g.granted, rate: self.target_rate(), released: 0 };
                    self.paced_until = lease.end_ns();
                    self.leases.push_back(lease);
                    self.retry_at = 0;
                } else {
                    self.retry_at = after + g.retry_after_us.max(1) * 1000;
                }
            }
            Err(_) => {
                self.conn = None;
                self.window.record(&pool.breaker, true, took, after);
                self.retry_at = after + RETRY_NS;
            }
        }
    }

    fn call(&mut self, want: u64) -> redis::RedisResult<Grant> {
        if self.conn.is_none() {
            self.stats.redis_calls.fetch_add(1, Ordering::Relaxed);
            let con = self.client.get_connection_with_timeout(self.cfg.timeout)?;
            con.set_read_timeout(Some(self.cfg.timeout))?;
            con.set_write_timeout(Some(self.cfg.timeout))?;
            self.conn = Some(con);
        }
        let con = self.conn.as_mut().expect("connected above");
        self.seq += 1;
        let window_us = self.cfg.window_with_guard_us();
        call_grant(con, &self.script, &self.cfg.key, want, self.cfg.limit(), window_us, &self.instance, self.seq, &self.stats.redis_calls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: &str) -> RawRedis {
        RawRedis { url: Some(url.into()), global_rate: Some(1000), limit_key: Some("k".into()), ..Default::default() }
    }

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(redact("redis://user:s3cret@host:6379/0"), "redis://user:***@host:6379/0");
        assert_eq!(redact("redis://:s3cret@host:6379"), "redis://:***@host:6379");
        assert_eq!(redact("redis://s3cret@host"), "redis://***@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact("redis://h/0?password=s3cret&db=1"), "redis://h/0?password=***&db=1");
        assert_eq!(redact("redis://u:p@ss@h"), "redis://u:***@h");
        assert_eq!(redact("not a url"), "not a url");
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

    #[test]
    fn take_is_exact_under_contention() {
        let pool = LeasePool::standalone(1_000_000);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let p = pool.clone();
                std::thread::spawn(move || {
                    let mut got = 0u64;
                    loop {
                        match p.take(7) {
                            0 => return got,
                            n => got += n as u64,
                        }
                    }
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1_000_000);
        assert_eq!(pool.available(), 0);
        pool.put(5);
        pool.remove(9);
        assert_eq!(pool.available(), 0);
    }

    #[test]
    fn lease_releases_smoothly() {
        let l = Lease { start_ns: 1_000, n: 500, rate: 10_000, released: 0 };
        assert_eq!(l.due(0), 0);
        assert_eq!(l.due(1_000), 1);
        assert_eq!(l.due(1_000 + 1_000_000), 11);
        assert_eq!(l.due(1_000 + 60_000_000), 500);
        assert_eq!(l.end_ns(), 1_000 + 50_000_000);
    }

    #[test]
    fn worker_falls_back_and_returns() {
        let pool = LeasePool::standalone(10);
        let mut l = LeasedLimiter::new(pool.clone(), 0, 1);
        assert_eq!(l.acquire(4, 0), Acquire::Granted(4));
        assert_eq!(l.acquire(100, 0), Acquire::Granted(6));
        assert!(matches!(l.acquire(1, 0), Acquire::Wait { .. }));
        pool.fallback_rate.store(1000, Ordering::Relaxed);
        pool.mode.store(MODE_FALLBACK, Ordering::Release);
        assert_eq!(l.mode(), "fallback");
        assert_eq!(l.acquire(100, 5_000_000_000), Acquire::Granted(1));
        assert_eq!(l.acquire(100, 5_010_000_000), Acquire::Granted(10));
        pool.mode.store(MODE_REDIS, Ordering::Release);
        pool.put(3);
        assert_eq!(l.acquire(100, 5_020_000_000), Acquire::Granted(3));
    }
}
