//! Talking to Redis: the check at start, and the thread that makes the grant calls for the lease
//! thread (`lease.rs`).
//!
//! Every call has a deadline: connecting (including `AUTH`) is bounded by `RedisConfig::timeout`,
//! and a grant's round trips by what is left of the same timeout. The calls run on a thread of
//! their own, so a Redis that hangs blocks only that thread: the lease thread keeps releasing
//! what was already granted and, once the instance has run dry, falls back as soon as the call
//! is overdue, without waiting for it.
//!
//! At start the limiter connects and loads the grant script once, synchronously: a wrong
//! password or a Redis that is not there is a configuration error (the run does not start),
//! not a silent fallback. A Redis that goes away later is handled by the lease thread.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::redis::config::RedisConfig;
use crate::redis::grant::{call_grant_until, Grant, GRANT_SCRIPT};
use crate::redis::redact::{redact, scrub};
use crate::stats::LimiterStats;
use spate_core::ConfigError;

/// The shortest read timeout set for the rest of a call (a zero timeout means none).
const MIN_LEFT: Duration = Duration::from_millis(1);

/// Opens a connection with every step bounded by `timeout`: connect, the `AUTH` of the setup
/// (the crate's `CLIENT SETINFO` is compiled out, see the workspace manifest, so no other
/// command runs before ours), and the reads and writes that follow.
pub(super) fn connect(
    client: &redis::Client,
    timeout: Duration,
) -> redis::RedisResult<redis::Connection> {
    let con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    Ok(con)
}

/// What is wrong with the credentials, if that is what Redis said: it turned them down (the
/// client reports any failed `AUTH` as `AuthenticationFailed`, without the server's
/// `WRONGPASS`), or it wants some and the URL has none (`NOAUTH`).
fn auth_problem(e: &redis::RedisError) -> Option<&'static str> {
    if e.kind() == redis::ErrorKind::AuthenticationFailed || e.code() == Some("WRONGPASS") {
        Some("refused the credentials (AUTH failed: wrong password, unknown user, or no password set there)")
    } else if e.code() == Some("NOAUTH") {
        Some("requires a password and none was given (NOAUTH)")
    } else {
        None
    }
}

/// What is wrong with the TLS connection, if that is what failed (rustls' words).
fn tls_problem(reason: &str) -> Option<(&'static str, &'static str, &'static str)> {
    let r = reason.to_ascii_lowercase();
    if r.contains("notvalidforname") || r.contains("not valid for name") {
        Some((
            "redis.tls.verify_hostname",
            "presented a certificate for another host name",
            "connect by a name its certificate carries, or, only on a trusted network, set redis.tls.verify_hostname: false",
        ))
    } else if r.contains("expired") && r.contains("certificate") {
        Some((
            "redis.tls.ca_file",
            "presented an expired certificate",
            "renew the server's certificate (or check this machine's clock)",
        ))
    } else if r.contains("invalid peer certificate") || r.contains("unknownissuer") {
        Some((
            "redis.tls.ca_file",
            "presented a certificate spate does not trust",
            "set redis.tls.ca_file (--redis-ca) to the PEM file of the CA that signed it",
        ))
    } else if r.contains("certificaterequired")
        || r.contains("certificate required")
        || r.contains("handshakefailure")
    {
        Some((
            "redis.tls.cert_file",
            "asked for a client certificate it did not get or accept",
            "set redis.tls.cert_file and key_file (--redis-cert/--redis-key)",
        ))
    } else if r.contains("corrupt message")
        || r.contains("invalidcontenttype")
        || r.contains("received corrupt")
    {
        Some((
            "redis.url",
            "does not speak TLS on that port",
            "use redis:// for a plaintext port, or the server's TLS port",
        ))
    } else {
        None
    }
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

/// Connects and loads the grant script, or says what is wrong with `redis.url` and how to fix
/// it. Counts its round trips in `stats`.
pub(super) fn check_at_start(
    cfg: &RedisConfig,
    client: &redis::Client,
    stats: &LimiterStats,
) -> Result<redis::Connection, ConfigError> {
    stats.redis_calls.fetch_add(2, Ordering::Relaxed);
    let loaded = connect(client, cfg.timeout).and_then(|mut con| {
        let _: String = redis::cmd("SCRIPT").arg("LOAD").arg(GRANT_SCRIPT).query(&mut con)?;
        Ok(con)
    });
    let e = match loaded {
        Ok(con) => return Ok(con),
        Err(e) => e,
    };
    let url = redact(&cfg.url);
    let reason = scrub(&e.to_string(), &cfg.url);
    let later =
        "; once a run is going, losing Redis only makes it fall back to redis.fallback_rate";
    Err(if let Some(problem) = auth_problem(&e) {
        ConfigError::new(
            "redis.url",
            format!("Redis at `{url}` {problem}"),
            "give the password Redis expects: redis.password_file (--redis-password-file), redis.password: ${ENV}, or the URL's user info; an ACL user in redis.username (--redis-user) or the URL",
        )
    } else if let Some((key, problem, fix)) = tls_problem(&reason) {
        ConfigError::new(key, format!("Redis at `{url}` {problem} ({reason})"), fix)
    } else if e.is_timeout() {
        ConfigError::new(
            "redis.url",
            format!(
                "Redis at `{url}` did not answer within {} ms{}",
                cfg.timeout.as_millis(),
                if cfg.tls.is_some() { " (a plaintext Redis leaves a TLS handshake unanswered: is that port its TLS port?)" } else { "" }
            ),
            format!("check that Redis is up and not overloaded there, or point redis.url (--redis) at one that is{later}"),
        )
    } else if e.is_io_error() {
        ConfigError::new(
            "redis.url",
            format!(
                "cannot reach Redis at `{url}`: {reason}{}",
                if cfg.tls.is_none() && reason.contains("reset by peer") {
                    " (a TLS port resets plaintext clients: use rediss://)"
                } else {
                    ""
                }
            ),
            format!("start Redis there, or point redis.url (--redis) at a running one{later}"),
        )
    } else {
        ConfigError::new(
            "redis.url",
            format!("Redis at `{url}` refused the limiter's commands: {reason}"),
            "use a Redis (6 or later) where this user may run SCRIPT LOAD and EVALSHA",
        )
    })
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
    /// Redis's clock less this thread's (`anchor`), in µs, from the last answer: each call
    /// tells Redis when it goes stale by Redis's own clock (no clock sync needed). It errs
    /// early by at most the round trip of that answer.
    offset_us: Option<i128>,
    anchor: Instant,
}

/// Starts the Redis thread with the connection made at start. It answers each `want` sent on
/// the returned sender with one `Answer`, and stops when the sender is dropped (after the call
/// in progress, if any).
pub(super) fn spawn(
    cfg: &RedisConfig,
    client: redis::Client,
    conn: redis::Connection,
    instance: String,
    stats: Arc<LimiterStats>,
) -> std::io::Result<(Sender<u64>, Receiver<Answer>)> {
    let (ask_tx, ask_rx) = mpsc::channel::<u64>();
    let (answer_tx, answer_rx) = mpsc::channel();
    let mut io = RedisIo {
        cfg: cfg.clone(),
        client,
        conn: Some(conn),
        script: redis::Script::new(GRANT_SCRIPT),
        instance,
        seq: 0,
        stats,
        offset_us: None,
        anchor: Instant::now(),
    };
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
        // Half a lease at least: slivers of the window would cost a call each (see lease.rs).
        let local_us = |at: Instant| at.duration_since(self.anchor).as_micros() as i128;
        let expires_us =
            self.offset_us.map_or(0, |off| u64::try_from(local_us(deadline) + off).unwrap_or(0));
        let g = call_grant_until(
            con,
            &self.script,
            &c.key,
            want,
            want.div_ceil(2),
            c.limit(),
            window_us,
            &self.instance,
            self.seq,
            expires_us,
            &self.stats.redis_calls,
        )?;
        self.offset_us = Some(i128::from(g.redis_now_us) - local_us(Instant::now()));
        Ok(g)
    }
}
