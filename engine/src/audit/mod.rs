//! The audit trail: one row per run in PostgreSQL (`spate_runs`: origin, times, seed, the
//! redacted config, the summary, the exit status) and its changes (`spate_run_changes`: rate
//! changes, stops, breaker transitions, limiter fallbacks), written by a thread of its own.
//!
//! Nothing here is on the hot path: records are handed to the writer through a bounded
//! channel (`try_send`: a full queue drops the record and counts it). While PostgreSQL is
//! unreachable the writer keeps records in memory, up to `audit.queue`, and writes them when
//! it is back; what it had to drop is counted ([`AuditReport`]) and the summary says so.
//!
//! - `migrate.rs`: the versioned schema (`spate_schema_version`), applied at connect;
//! - `writer.rs`: the writer thread.

mod migrate;
mod writer;

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConfigError;
use spate_core::conf::{HumanDuration, SecretFile, SecretUrl};
use spate_core::secret::Secret;

pub use migrate::SCHEMA_VERSION;
pub use writer::ConnectError;

/// `audit:` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `postgres://user@host:port/db` (the password inline, `${ENV}` expanded, or in
    /// `password_file`).
    pub url: Option<SecretUrl>,
    /// A file holding the password.
    pub password_file: Option<SecretFile>,
    /// Records kept while PostgreSQL is unreachable, 1 to 10000000 (default 10000).
    pub queue: Option<usize>,
    /// How long a finishing `spate run` waits for the audit rows to be written (default `5s`).
    pub flush_timeout: Option<HumanDuration>,
}

/// A checked `audit:` section.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The connection URL (with its password, if written there).
    pub url: String,
    /// The URL as messages show it: its password masked.
    pub display: String,
    pub password: Option<Secret>,
    pub queue: usize,
    pub flush_timeout: Duration,
}

impl RawAudit {
    /// None when no URL is set (the audit is off).
    pub fn validate(&self) -> Result<Option<AuditConfig>, ConfigError> {
        let Some(url) = &self.url else {
            if *self != RawAudit::default() {
                return Err(ConfigError::new("audit.url", "audit settings without a URL", "set audit.url (--audit postgres://...)"));
            }
            return Ok(None);
        };
        let url = spate_core::secret::expand(url.as_str(), "audit.url")?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::new(
                "audit.url",
                "not a PostgreSQL URL",
                "write postgres://USER@HOST:PORT/DATABASE (password in password_file or ${ENV})",
            ));
        }
        let parsed: postgres::Config = url.parse().map_err(|e| {
            ConfigError::new("audit.url", format!("the URL does not parse: {e}"), "write postgres://USER@HOST:PORT/DATABASE")
        })?;
        if parsed.get_user().is_none() {
            return Err(ConfigError::new("audit.url", "no user in the URL", "write postgres://USER@HOST:PORT/DATABASE"));
        }
        let password = spate_core::secret::resolve(None, self.password_file.as_ref().map(SecretFile::path), "audit.password", "audit.password_file")?;
        let queue = self.queue.unwrap_or(10_000);
        if !(1..=10_000_000).contains(&queue) {
            return Err(ConfigError::new("audit.queue", format!("{queue} records is out of range"), "use 1 to 10000000 (default 10000)"));
        }
        let flush_timeout = self.flush_timeout.map_or(Duration::from_secs(5), HumanDuration::get);
        if flush_timeout > Duration::from_secs(600) {
            return Err(ConfigError::new("audit.flush_timeout", format!("{flush_timeout:?} is longer than 10 minutes"), "use 0s to 10m (default 5s)"));
        }
        let display = spate_core::conf::mask_url_password(&url);
        Ok(Some(AuditConfig { url, display, password, queue, flush_timeout }))
    }
}

/// One record for the audit tables.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    Started { run_id: String, at: SystemTime, origin: Value, seed: u64, config: Value },
    Change { run_id: String, at: SystemTime, kind: String, detail: Value },
    Ended { run_id: String, at: SystemTime, summary: Value, exit_status: i32 },
}

/// What the audit writer did, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub written: u64,
    /// Dropped: the queue was full (PostgreSQL down for long), or refused by the database.
    pub dropped: u64,
    /// Not written when the writer was asked to finish.
    pub pending: u64,
}

pub(crate) struct Shared {
    pub written: std::sync::atomic::AtomicU64,
    pub dropped: std::sync::atomic::AtomicU64,
    pub pending: std::sync::atomic::AtomicU64,
    pub last_error: Mutex<Option<String>>,
    pub stop: std::sync::atomic::AtomicBool,
}

/// The audit writer of this process.
#[derive(Clone)]
pub struct Auditor {
    tx: SyncSender<Record>,
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    flush_timeout: Duration,
}

/// The auditor of the run in progress, for changes noted deep in the engine (breaker, limiter).
static CURRENT: Mutex<Option<(Auditor, String)>> = Mutex::new(None);

/// Notes a change of the run in progress, if it is audited (breaker transitions, limiter
/// fallbacks). Rare events only: it takes a lock.
pub fn note(kind: &str, detail: Value) {
    if let Some((a, run)) = CURRENT.lock().as_ref() {
        a.change(run, kind, detail);
    }
}

impl Auditor {
    /// Starts the writer thread. It connects (and migrates the schema) in the background: an
    /// unreachable database delays the rows, never the run.
    pub fn start(cfg: &AuditConfig) -> Result<Auditor, crate::EngineError> {
        let (tx, rx) = sync_channel(cfg.queue);
        let shared = Arc::new(Shared {
            written: Default::default(),
            dropped: Default::default(),
            pending: Default::default(),
            last_error: Mutex::new(None),
            stop: Default::default(),
        });
        let w = writer::Writer::new(cfg, rx, shared.clone());
        let thread = std::thread::Builder::new()
            .name("spate-audit".into())
            .spawn(move || w.run())
            .map_err(|source| crate::EngineError::Spawn { name: "spate-audit".into(), source })?;
        Ok(Auditor { tx, shared, thread: Arc::new(Mutex::new(Some(thread))), flush_timeout: cfg.flush_timeout })
    }

    /// Connects and migrates now, within `timeout`. A refusal (wrong password, no permission
    /// to create the tables) is a setting to fix before the run; an unreachable server is not
    /// (the writer keeps the rows until it answers).
    pub fn check(cfg: &AuditConfig, timeout: Duration) -> Result<(), ConnectError> {
        writer::connect(cfg, timeout).map(|_| ())
    }

    fn send(&self, r: Record) {
        match self.tx.try_send(r) {
            Ok(()) => {
                self.shared.pending.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// A run began; it becomes the run that [`note`] records changes for.
    pub fn run_started(&self, run_id: &str, origin: Value, seed: u64, config: Value) {
        self.send(Record::Started { run_id: run_id.into(), at: SystemTime::now(), origin, seed, config });
        *CURRENT.lock() = Some((self.clone(), run_id.to_string()));
    }

    pub fn change(&self, run_id: &str, kind: &str, detail: Value) {
        self.send(Record::Change { run_id: run_id.into(), at: SystemTime::now(), kind: kind.into(), detail });
    }

    pub fn run_ended(&self, run_id: &str, summary: Value, exit_status: i32) {
        {
            let mut c = CURRENT.lock();
            if c.as_ref().is_some_and(|(_, r)| r == run_id) {
                *c = None;
            }
        }
        self.send(Record::Ended { run_id: run_id.into(), at: SystemTime::now(), summary, exit_status });
    }

    /// Counts so far.
    pub fn report(&self) -> AuditReport {
        use std::sync::atomic::Ordering::Relaxed;
        AuditReport {
            written: self.shared.written.load(Relaxed),
            dropped: self.shared.dropped.load(Relaxed),
            pending: self.shared.pending.load(Relaxed),
        }
    }

    /// The last error of the writer (connection or statement), if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().clone()
    }

    /// Waits up to `flush_timeout` for every record to be written, then stops the writer;
    /// returns the counts (records still pending are lost with the process).
    pub fn finish(&self) -> AuditReport {
        let deadline = std::time::Instant::now() + self.flush_timeout;
        while self.report().pending > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.shared.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.lock().take() {
            // The writer checks `stop` at least every 100 ms, and bounds each statement.
            let _ = t.join();
        }
        self.report()
    }
}
