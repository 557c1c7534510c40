//! `--api-rate` shared through Redis: when `spate serve`'s base config names a Redis
//! (`redis.url`), every serve instance on it counts a client's requests in one sliding window
//! per client address (a sorted set of request times, trimmed to the last second, in one script
//! run atomically by Redis), so several instances behind one address limit a client together.
//! A Redis that does not answer within [`TIMEOUT`] leaves the request to the local token bucket
//! (said once): the API stays up without Redis, limited per instance.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use spate_limit::redis::config::RedisConfig;

/// How long a request waits for Redis before the local bucket decides.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(100);

/// KEYS[1]: the client's window. ARGV: limit (requests per window), window (µs), a unique
/// member. Returns {1, 0} when the request fits, else {0, µs until the oldest leaves}.
const SCRIPT: &str = r"
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - window))
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, string.format('%d', now), ARGV[3])
  redis.call('PEXPIRE', key, string.format('%d', math.floor(window / 1000) + 1000))
  return {1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, string.format('%d', tonumber(oldest[2]) + window - now)}
";

/// The shared window of one serve instance.
pub(crate) struct SharedRate {
    client: redis::Client,
    conn: Mutex<Option<redis::Connection>>,
    script: redis::Script,
    limit: u64,
    prefix: String,
    instance: String,
    seq: AtomicU64,
    said: AtomicBool,
}

impl SharedRate {
    /// Requests per second per client, counted in the Redis of `cfg`.
    pub(crate) fn new(cfg: &RedisConfig, rate: f64) -> redis::RedisResult<SharedRate> {
        Ok(SharedRate {
            client: cfg.client()?,
            conn: Mutex::new(None),
            script: redis::Script::new(SCRIPT),
            limit: (rate.ceil() as u64).max(1),
            prefix: format!("spate:api:{}", cfg.limit_key),
            instance: format!("{:016x}", rand_id()),
            seq: AtomicU64::new(0),
            said: AtomicBool::new(false),
        })
    }

    /// Whether a request of `ip` fits the shared window (`Err(wait)` when not); `None` when
    /// Redis did not answer in time (the caller's local bucket decides).
    pub(crate) fn take(&self, ip: IpAddr) -> Option<Result<(), Duration>> {
        match self.call(ip) {
            Ok(r) => Some(r),
            Err(e) => {
                *self.conn.lock() = None;
                if !self.said.swap(true, Ordering::Relaxed) {
                    spate_core::rate_log::warn(
                        "api_rate_redis",
                        &format!("--api-rate: Redis did not answer ({e}); each instance limits clients on its own until it does"),
                    );
                }
                None
            }
        }
    }

    fn call(&self, ip: IpAddr) -> redis::RedisResult<Result<(), Duration>> {
        // One call at a time per instance: the control plane's requests, not the hot path.
        let mut slot = self.conn.lock();
        if slot.is_none() {
            let c = self.client.get_connection_with_timeout(TIMEOUT)?;
            c.set_read_timeout(Some(TIMEOUT))?;
            c.set_write_timeout(Some(TIMEOUT))?;
            *slot = Some(c);
        }
        let con = slot.as_mut().expect("connected above");
        let member = format!("{}:{}", self.instance, self.seq.fetch_add(1, Ordering::Relaxed));
        let (ok, wait_us): (u64, u64) = self
            .script
            .key(format!("{}:{ip}", self.prefix))
            .arg(self.limit)
            .arg(1_000_000u64)
            .arg(member)
            .invoke(con)?;
        Ok(if ok == 1 { Ok(()) } else { Err(Duration::from_micros(wait_us.max(1))) })
    }
}

/// An id for this instance's members (not a secret: only tells instances' requests apart).
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}
