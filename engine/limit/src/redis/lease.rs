//! The lease thread: asks Redis for leases of the global rate with the grant script
//! (`grant.lua`), releases their tokens into the pool (`pool.rs`) at a steady pace, expires
//! what nobody took, and switches the instance to fallback while Redis is unavailable.
//!
//! ## Redis side: a sliding-window log of leases
//!
//! Every instance sharing a Redis and a limit key (`spate:limit:{NAME}`) together produces at
//! most `global_rate` events/s. The key is a sorted set; each member is one lease
//! (`"{tokens}:{instance}:{seq}"`, score = grant time in µs of the *Redis server's* clock, read
//! with `redis.call('TIME')` so the instances' clocks do not matter). One Lua script
//! ([`GRANT_SCRIPT`](super::grant::GRANT_SCRIPT), loaded with `SCRIPT LOAD`, called by SHA with `EVALSHA`, reloaded on
//! `NOSCRIPT`) does, atomically: drop leases older than the window, sum what is still in the
//! window, grant the largest chunk that fits (possibly less than asked, possibly nothing plus a
//! retry-after: the time until the oldest lease leaves the window), and report how many
//! distinct instances hold leases in the window. The key is always passed as `KEYS[1]`, never
//! interpolated into the script, and the limit key name is validated (`config.rs`). The window
//! it counts includes a small guard (see `config.rs`).
//!
//! ## Instance side: one lease thread
//!
//! A background thread keeps a queue of granted leases and releases their tokens into the shared
//! pool. It asks for the next lease `lease_ms / 2` before the queued ones run out (the low-water
//! mark), so workers normally never wait on Redis. The calls themselves are made by a second
//! thread (`io.rs`, sync `redis` client, every call with a deadline), so the lease thread never
//! blocks on Redis: it keeps releasing while a call is in flight.
//!
//! **Lease size adapts** to the instance's rate: the instance's target rate is
//! `R = global_rate / k × 1.05`, where `k` is the number of instances Redis reports in the
//! window (before the first answer: `expected_instances`, default 1), and a lease asks for
//! `ceil(R × lease_ms)` tokens, but at least `lease_min_events` (default 2,000) as long as that
//! is no more than a quarter window at `R` (`R × window / 4`). So Redis sees at most about one
//! call per 2,000 events at any rate that fills such a lease in a quarter window (8,000/s per
//! instance with the 1 s window), one call per `lease_ms` at rates above 40,000/s, and four
//! calls per window per instance at low rates. Sized in events, as Doorman sizes grants from
//! demand: a lease period in time alone makes the calls grow with the instance count, not
//! with the events. The 5 % headroom keeps the Redis window saturated
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
//! (below 8 tokens, i.e. low rates) are not prefetched: they are asked for when due (a lease
//! period after the previous one) and released whole as soon as they arrive, so a token is spent
//! within about a millisecond of its grant. Paced out instead, the last tokens of a lease would
//! be spent up to a quarter window after Redis counted them, and when lease sizes change
//! (instances joining) the re-grant of their slots could land less than a window after they were
//! spent: at 10/s, 11 events in a second.
//!
//! ## Failure handling (Doorman-style "safe" mode)
//!
//! The instance runs on a **local token bucket at `fallback_rate`** (default `global_rate /
//! expected_instances`, or, when `expected_instances` is not set, `global_rate /` the instance
//! count Redis last reported) whenever leases cannot be had:
//!
//! - at once when it has **run dry** (no leased token left to release) and the last call failed
//!   or has gone unanswered for the call timeout (200 ms). A dead Redis (connection refused) is
//!   noticed within one call, a hung one (accepts, never answers) within the timeout: either way
//!   workers wait on Redis for at most about 200 ms;
//! - while the circuit breaker is not closed. Each Redis call is recorded in the breaker
//!   (`crate::breaker`, the same component as Kafka's; window 10 calls, opens at 3+ calls with
//!   at least 50 % failed or slow, i.e. 100 ms or more). While it is open no call is made; after
//!   1 s it lets one trial call through.
//!
//! A failed call is retried every 20 ms while the breaker is closed; the first call that succeeds
//! (and a closed breaker) brings leases back. Each switch is logged once on stderr (rate-limited)
//! with the redacted URL, the reason and the fallback rate. Mode, transitions, lease size, Redis
//! calls, lease waits and granted tokens are published in `LimiterStats`, the breaker in
//! `LimiterStats::redis_breaker`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Weak};

use crate::redis::config::RedisConfig;
use crate::redis::io::{self, Answer};
use crate::redis::pool::LeasePool;
use crate::redis::redact::redact;
use crate::stats::{LimiterStats, MODE_FALLBACK, MODE_REDIS};
use spate_core::breaker::{BreakerWindow, State};
use spate_core::clock::Clock;
use spate_core::notes::SharedNotes;

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

/// Starts the lease thread for `pool`, and the Redis thread it asks (`io.rs`) with `conn`, the
/// connection made at start. The lease thread holds the pool weakly and stops (within
/// `MAX_SLEEP_NS`) once every handle and limiter sharing the pool is dropped; the Redis thread
/// stops after it.
pub(super) fn spawn(
    pool: &Arc<LeasePool>,
    cfg: &RedisConfig,
    (client, conn): (redis::Client, redis::Connection),
    instances: u64,
    stats: Arc<LimiterStats>,
    clock: Arc<dyn Clock>,
    notes: SharedNotes,
) -> Result<(), (&'static str, std::io::Error)> {
    let (asks, answers) = io::spawn(cfg, client, conn, instance_id(), stats.clone())
        .map_err(|e| ("spate-redis", e))?;
    let lease = LeaseThread {
        pool: Arc::downgrade(pool),
        cfg: cfg.clone(),
        url: redact(&cfg.url),
        clock,
        asks,
        answers,
        asked_at: None,
        failing: None,
        fallback_since: 0,
        window: BreakerWindow::new(cfg.breaker),
        breaker_why: None,
        leases: VecDeque::new(),
        released: VecDeque::new(),
        instances,
        paced_until: 0,
        retry_at: 0,
        in_gap: false,
        stats,
        notes,
    };
    std::thread::Builder::new()
        .name("spate-lease".into())
        .spawn(move || lease.run())
        .map(drop)
        .map_err(|e| ("spate-lease", e))
}

/// The lease size at instance rate `r` (events/s): see "Lease size adapts" in the module doc.
fn lease_size(r: u64, cfg: &RedisConfig) -> u64 {
    let per =
        |d: std::time::Duration| (u128::from(r) * d.as_nanos()).div_ceil(1_000_000_000) as u64;
    let quarter_window = per(cfg.window / 4);
    per(cfg.lease).max(cfg.lease_min_events.min(quarter_window)).clamp(1, cfg.limit())
}

/// A random id for this instance's leases (distinguishes instances in the lease log).
fn instance_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let x = t ^ u64::from(std::process::id()).rotate_left(32) ^ (&raw const t as u64);
    // splitmix64 spreads the bits of time, pid and a stack address.
    format!("{:016x}", spate_core::rng::splitmix64(x))
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
        self.start_ns + (u128::from(self.n) * 1_000_000_000 / u128::from(self.rate)) as u64
    }
    /// Tokens due by `now`: the first at `start`, then one every `1/rate`.
    fn due(&self, now: u64) -> u64 {
        if now < self.start_ns {
            return 0;
        }
        (u128::from(now - self.start_ns) * u128::from(self.rate) / 1_000_000_000 + 1)
            .min(u128::from(self.n)) as u64
    }
    /// When the next token after `released` is due.
    fn next_ns(&self) -> u64 {
        self.start_ns
            + (u128::from(self.released) * 1_000_000_000).div_ceil(u128::from(self.rate)) as u64
    }
}

struct LeaseThread {
    pool: Weak<LeasePool>,
    cfg: RedisConfig,
    /// The URL without its password, for the log.
    url: String,
    clock: Arc<dyn Clock>,
    /// Grant requests (tokens wanted) to the Redis thread, and its answers.
    asks: Sender<u64>,
    answers: Receiver<Answer>,
    /// When the call in flight was asked for (at most one is).
    asked_at: Option<u64>,
    /// Why the last call failed; None once one succeeds.
    failing: Option<String>,
    /// When the instance last switched to fallback (monotonic ns).
    fallback_since: u64,
    window: BreakerWindow,
    /// Why the breaker last left closed, for the log.
    breaker_why: Option<String>,
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
    /// Where fallbacks and returns are told (the audit trail).
    notes: SharedNotes,
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

    /// Tokens to ask for: a lease period's worth at the target rate, at least
    /// `lease_min_events`, but never more than a quarter window's worth (see the module doc).
    fn lease_tokens(&self) -> u64 {
        lease_size(self.target_rate(), &self.cfg)
    }

    /// One round: the answer of a call, breaker, mode, release, expiry, maybe a call. Returns
    /// when to wake.
    fn step(&mut self, pool: &LeasePool, now: u64) -> u64 {
        match self.answers.try_recv() {
            Ok(a) => self.answered(pool, a, now),
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                self.asked_at = None;
                self.failing = Some("the Redis thread stopped".into());
            }
        }
        self.window.tick(&pool.breaker, now);
        if let Some(t) = self.window.take_transition(&pool.breaker) {
            if t.from == State::Closed {
                self.breaker_why = Some(t.why);
            }
        }
        let state = pool.breaker.state();
        // Dry: the workers have nothing leased left to take. Overdue: the call in flight has had
        // its timeout; it may still fail later, but the workers do not wait for that.
        let dry = self.leases.is_empty() && pool.available() == 0;
        let overdue = self
            .asked_at
            .is_some_and(|t| now.saturating_sub(t) >= self.cfg.timeout.as_nanos() as u64);
        let unavailable = state != State::Closed || (dry && (self.failing.is_some() || overdue));
        self.set_mode(pool, now, if unavailable { MODE_FALLBACK } else { MODE_REDIS }, state);
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
        let prefetch =
            if want >= PREFETCH_MIN_TOKENS { self.cfg.lease.as_nanos() as u64 / 2 } else { 0 };
        let fetch_at = end.saturating_sub(prefetch).max(self.retry_at);
        if self.leases.is_empty() && pool.available() == 0 && !self.in_gap && end <= now {
            // Ran dry: this instance now waits for Redis (normal at low rates).
            self.in_gap = true;
            self.stats.lease_waits.fetch_add(1, Ordering::Relaxed);
        }
        if self.asked_at.is_none() && now >= fetch_at {
            match self.asks.send(want) {
                Ok(()) => self.asked_at = Some(now),
                Err(_) => self.failing = Some("the Redis thread stopped".into()),
            }
        }
        if self.asked_at.is_some() {
            // Look for the answer every tick (a call takes well under a millisecond).
            wake = wake.min(now + TICK_NS);
        } else {
            // (Not before the next tick if the ask could not be sent.)
            wake = wake.min(if fetch_at > now { fetch_at } else { now + TICK_NS });
        }
        pool.next_ns.store(wake, Ordering::Relaxed);
        wake
    }

    fn set_mode(&mut self, pool: &LeasePool, now: u64, mode: usize, state: State) {
        if pool.mode.load(Ordering::Relaxed) == mode {
            return;
        }
        if mode == MODE_FALLBACK {
            // Leases are not carried over a switch: empty the pool first.
            pool.tokens.store(0, Ordering::Relaxed);
            self.leases.clear();
            self.released.clear();
            self.paced_until = 0;
            let rate = self.cfg.fallback_rate_for(self.instances).get();
            pool.fallback_rate.store(rate, Ordering::Relaxed);
            self.stats.lease_size.store(0, Ordering::Relaxed);
            self.fallback_since = now;
            let why = match (state, &self.failing) {
                (State::Closed, Some(e)) => e.clone(),
                (State::Closed, None) => {
                    format!("no answer within {} ms", self.cfg.timeout.as_millis())
                }
                (s, e) => format!(
                    "circuit breaker {}: {}{}",
                    s.as_str(),
                    self.breaker_why.as_deref().unwrap_or("calls failed or were slow"),
                    e.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
                ),
            };
            spate_core::rate_log::warn(
                "redis_fallback",
                &format!("redis limiter: no lease from {} ({why}); this instance falls back to {rate}/s (redis.fallback_rate)", self.url),
            );
            self.notes
                .note("limiter", serde_json::json!({"mode": "fallback", "rate": rate, "why": why}));
        } else {
            let secs = now.saturating_sub(self.fallback_since) as f64 / 1e9;
            spate_core::rate_log::warn(
                "redis_recovered",
                &format!("redis limiter: leases from {} again after {secs:.1} s at the fallback rate; back on the global rate", self.url),
            );
            self.notes
                .note("limiter", serde_json::json!({"mode": "redis", "after_fallback_s": secs}));
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

    /// Takes in the answer of the call in flight.
    fn answered(&mut self, pool: &LeasePool, a: Answer, now: u64) {
        self.asked_at = None;
        match a.res {
            Ok(g) => {
                self.window.record(&pool.breaker, false, a.took, now);
                self.failing = None;
                self.instances = g.instances.max(1);
                if g.granted > 0 {
                    self.in_gap = false;
                    self.stats.granted.fetch_add(g.granted, Ordering::Relaxed);
                    self.stats.lease_size.store(g.granted, Ordering::Relaxed);
                    // Start where the queued leases end, or now: never before the grant.
                    let start = self.paced_until.max(now);
                    let lease = Lease {
                        start_ns: start,
                        n: g.granted,
                        rate: self.target_rate(),
                        released: 0,
                    };
                    self.paced_until = lease.end_ns();
                    if g.granted < PREFETCH_MIN_TOKENS {
                        // A small lease is released whole, now: Redis counts its tokens at the
                        // grant, so paced out over its period (up to a quarter window) its last
                        // tokens would be spent that much later, and a re-grant of their slots
                        // a window after the grant (as a smaller lease once more instances
                        // share the rate) would put more than the limit in one window.
                        pool.put(g.granted);
                        self.released.push_back((now, g.granted));
                    } else {
                        self.leases.push_back(lease);
                    }
                    self.retry_at = 0;
                } else {
                    self.retry_at = now + g.retry_after_us.max(1) * 1000;
                }
            }
            Err(e) => {
                self.window.record(&pool.breaker, true, a.took, now);
                self.failing = Some(io::describe(&e, &self.cfg));
                self.retry_at = now + RETRY_NS;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_size_has_a_floor_in_events_capped_at_a_quarter_window() {
        let cfg = |min: u64| {
            let raw = crate::redis::config::RawRedis {
                url: Some("redis://127.0.0.1:1".into()),
                global_rate: Some(1_000_000),
                limit_key: Some("k".into()),
                lease_min_events: Some(min),
                ..Default::default()
            };
            raw.validate().unwrap()
        };
        let c = cfg(2000);
        assert_eq!(lease_size(10_500, &c), 2000, "10,500/s: the floor (525 by time)");
        assert_eq!(lease_size(105_000, &c), 5250, "105,000/s: 50 ms by time");
        assert_eq!(lease_size(1050, &c), 263, "1,050/s: a quarter window caps the floor");
        assert_eq!(lease_size(3, &c), 1, "at least one token");
        assert_eq!(lease_size(10_500, &cfg(1)), 525, "floor 1: by time alone");
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
}
