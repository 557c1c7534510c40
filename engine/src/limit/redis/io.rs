//! Talking to Redis: the thread that makes the grant calls for the lease thread (`lease.rs`).
//!
//! Every call has a deadline: connecting (including `AUTH`) is bounded by `RedisConfig::timeout`,
//! and a grant's round trips by what is left of the same timeout. The calls run on a thread of
//! their own, so a Redis that hangs blocks only that thread: the lease thread keeps releasing
//! what was already granted and, once the instance has run dry, falls back as soon as the call
//! is overdue, without waiting for it.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limit::redis::config::RedisConfig;
use crate::limit::redis::lease::{call_grant, Grant, GRANT_SCRIPT};
use crate::limit::redis::redact::scrub;
use crate::limit::stats::LimiterStats;

/// The shortest read timeout set for the rest of a call (a zero timeout means none).
const MIN_LEFT: Duration = Duration::from_millis(1);

/// Opens a connection with every step bounded by `timeout`: connect, the `AUTH` of the setup
/// (the crate's `CLIENT SETINFO` is compiled out, see the workspace manifest, so no other
/// command runs before ours), and the reads and writes that follow.
pub(super) fn connect(client: &redis::Client, timeout: Duration) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    Ok(con)
}

/// A short reason for a failed call, fit for a log line: no password.
pub(super) fn describe(e: &redis::RedisError, cfg: &RedisConfig) -> String {
    if e.is_timeout() {
        format!("no answer within {} ms", cfg.timeout.as_millis())
    } else if e.is_connection_refusal() {
        "connection refused".to_string()
    } else {
        scrub(&e.to_string(), &cfg.url)
    }
}

/// The outcome of one grant call, and how long it took.
pub(super) struct Answer {
    pub res: redis::RedisResult<Grant>,
    pub took: Duration,
}

/// What the Redis thread needs to make grant calls.
struct RedisIo {
    cfg: RedisConfig,
    client: redis::Client,
    conn: Option<redis::Connection>,
    script: redis::Script,
    instance: String,
    seq: u64,
    stats: Arc<LimiterStats>,
}

/// Starts the Redis thread; it connects on the first call. It answers each `want` sent on
/// the returned sender with one `Answer`, and stops when the sender is dropped (after the call
/// in progress, if any).
pub(super) fn spawn(
    cfg: &RedisConfig,
    client: redis::Client,
    instance: String,
    stats: Arc<LimiterStats>,
) -> std::io::Result<(Sender<u64>, Receiver<Answer>)> {
    let (ask_tx, ask_rx) = mpsc::channel::<u64>();
    let (answer_tx, answer_rx) = mpsc::channel();
    let mut io =
        RedisIo { cfg: cfg.clone(), client, conn: None, script: redis::Script::new(GRANT_SCRIPT), instance, seq: 0, stats };
    std::thread::Builder::new().name("spate-redis".into()).spawn(move || {
        while let Ok(want) = ask_rx.recv() {
            let started = Instant::now();
            let res = io.grant(want, started + io.cfg.timeout);
            if res.is_err() {
                // A timed-out reply may still arrive: never read it as the next call's.
                io.conn = None;
            }
            if answer_tx.send(Answer { res, took: started.elapsed() }).is_err() {
                return;
            }
        }
    })?;
    Ok((ask_tx, answer_rx))
}

impl RedisIo {
    fn grant(&mut self, want: u64, deadline: Instant) -> redis::RedisResult<Grant> {
        if self.conn.is_none() {
            self.stats.redis_calls.fetch_add(1, Ordering::Relaxed);
            self.conn = Some(connect(&self.client, self.cfg.timeout)?);
        }
        let con = self.conn.as_mut().expect("connected above");
        let left = deadline.saturating_duration_since(Instant::now()).max(MIN_LEFT);
        con.set_read_timeout(Some(left))?;
        con.set_write_timeout(Some(left))?;
        self.seq += 1;
        let window_us = self.cfg.window_with_guard_us();
        let c = &self.cfg;
        call_grant(con, &self.script, &c.key, want, c.limit(), window_us, &self.instance, self.seq, &self.stats.redis_calls)
    }
}
