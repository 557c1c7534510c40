//! One call of the grant script (`grant.lua`): by SHA, loading the script when Redis does not
//! know it. Used by the Redis thread (`io.rs`), the tests and the limiter bench.

use std::sync::atomic::{AtomicU64, Ordering};

/// The grant script (`grant.lua`). KEYS[1]: the lease log. ARGV: want, limit (tokens per
/// window), window (µs), instance id, lease sequence number, least (the smallest grant worth a
/// lease), and optionally the Redis time (µs) after which the call is stale. Returns {granted,
/// retry_after_us, instances, used, redis_now_us}: `granted` is `want` or whatever is left of
/// the limit, if that is at least `least`; else 0 and the time until enough of the oldest
/// leases have left the window. A stale call grants nothing and records nothing: a client that
/// gave up on a frozen Redis does not find its window spent by calls run after the thaw.
///
/// Scores are written with `string.format('%d')`: Lua would print a µs timestamp as `%.14g`
/// and lose precision.
pub const GRANT_SCRIPT: &str = include_str!("grant.lua");

/// The answer of one grant call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Events granted (0: none now).
    pub granted: u64,
    /// When nothing was granted: µs until enough old leases leave the window.
    pub retry_after_us: u64,
    /// Instances seen leasing in the window.
    pub instances: u64,
    /// Events leased in the window, this grant included.
    pub used: u64,
    /// Redis's clock when it ran the call, in µs since the epoch.
    pub redis_now_us: u64,
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
    least: u64,
    limit: u64,
    window_us: u64,
    instance: &str,
    seq: u64,
    calls: &AtomicU64,
) -> redis::RedisResult<Grant> {
    call_grant_until(con, script, key, want, least, limit, window_us, instance, seq, 0, calls)
}

/// [`call_grant`] that Redis runs only until its clock passes `expires_us` (0: always).
#[allow(clippy::too_many_arguments)]
pub fn call_grant_until(
    con: &mut redis::Connection,
    script: &redis::Script,
    key: &str,
    want: u64,
    least: u64,
    limit: u64,
    window_us: u64,
    instance: &str,
    seq: u64,
    expires_us: u64,
    calls: &AtomicU64,
) -> redis::RedisResult<Grant> {
    type Reply = (u64, u64, u64, u64, u64);
    let evalsha = |con: &mut redis::Connection| -> redis::RedisResult<Reply> {
        redis::cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(1)
            .arg(key)
            .arg(want)
            .arg(limit)
            .arg(window_us)
            .arg(instance)
            .arg(seq)
            .arg(least)
            .arg(expires_us)
            .query(con)
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
    Ok(Grant { granted: r.0, retry_after_us: r.1, instances: r.2, used: r.3, redis_now_us: r.4 })
}
