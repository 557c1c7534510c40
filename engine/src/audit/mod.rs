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

mod config;
mod migrate;
mod record;
mod writer;

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde_json::Value;
use spate_core::notes::{Notes, SharedNotes};

use record::{Record, Shared};

pub use config::{AuditConfig, RawAudit};
pub use migrate::SCHEMA_VERSION;
pub use record::AuditReport;
pub use writer::ConnectError;

/// The audit writer of this process.
#[derive(Clone)]
pub struct Auditor {
    tx: SyncSender<Record>,
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
    flush_timeout: Duration,
}

/// One run's changes, recorded by its auditor.
struct RunNotes {
    auditor: Auditor,
    run_id: String,
}

impl Notes for RunNotes {
    fn note(&self, kind: &str, detail: Value) {
        self.auditor.change(&self.run_id, kind, detail);
    }
}

impl Auditor {
    /// Starts the writer thread. It connects (and migrates the schema) in the background: an
    /// unreachable database delays the rows, never the run.
    pub fn start(cfg: &AuditConfig) -> Result<Auditor, crate::error::EngineError> {
        Self::start_with_clock(cfg, Arc::new(spate_core::clock::MonotonicClock::new()))
    }

    /// As [`Auditor::start`], with the writer's reconnect times read from `clock`.
    pub fn start_with_clock(
        cfg: &AuditConfig,
        clock: Arc<dyn spate_core::clock::Clock>,
    ) -> Result<Auditor, crate::error::EngineError> {
        let (tx, rx) = sync_channel(cfg.queue);
        let shared = Arc::new(Shared {
            written: Default::default(),
            dropped: Default::default(),
            pending: Default::default(),
            last_error: Mutex::new(None),
            stop: Default::default(),
            connected: Default::default(),
        });
        let w = writer::Writer::new(cfg, rx, shared.clone(), clock);
        let thread =
            std::thread::Builder::new().name("spate-audit".into()).spawn(move || w.run()).map_err(
                |source| crate::error::EngineError::Spawn { name: "spate-audit".into(), source },
            )?;
        Ok(Auditor {
            tx,
            shared,
            thread: Arc::new(Mutex::new(Some(thread))),
            flush_timeout: cfg.flush_timeout,
        })
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
        self.send(Record::Started {
            run_id: run_id.into(),
            at: SystemTime::now(),
            origin,
            seed,
            config,
        });
    }

    /// The listener of run `run_id`'s rare changes (breaker transitions, limiter fallbacks), to
    /// give the engine (`StartOptions::notes`).
    pub fn notes_for(&self, run_id: &str) -> SharedNotes {
        Arc::new(RunNotes { auditor: self.clone(), run_id: run_id.to_string() })
    }

    /// Records a change of run `run_id` (a `spate_run_changes` row): `kind` names it, `detail`
    /// holds its fields.
    pub fn change(&self, run_id: &str, kind: &str, detail: Value) {
        self.send(Record::Change {
            run_id: run_id.into(),
            at: SystemTime::now(),
            kind: kind.into(),
            detail,
        });
    }

    /// Run `run_id` ended, with its summary and exit status.
    pub fn run_ended(&self, run_id: &str, summary: Value, exit_status: i32) {
        self.send(Record::Ended {
            run_id: run_id.into(),
            at: SystemTime::now(),
            summary,
            exit_status,
        });
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

    /// Waits up to `flush_timeout` for every record to be written, then stops the writer (not
    /// waiting past `flush_timeout` for one stuck in a statement); returns the counts (records
    /// still pending are lost with the process).
    pub fn finish(&self) -> AuditReport {
        let deadline = std::time::Instant::now() + self.flush_timeout;
        // Waiting is worth it only while rows can go out: with the database away, the rows left
        // are counted as not written at once instead of after the whole flush timeout.
        while self.report().pending > 0
            && std::time::Instant::now() < deadline
            && self.shared.connected.load(std::sync::atomic::Ordering::Acquire)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.shared.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.lock().take() {
            // The writer checks `stop` at least every 100 ms between statements; one hung in a
            // statement (a stopped server) is not waited for past the flush timeout: it is left
            // to end with the process, its rows counted as not written.
            let grace = deadline.max(std::time::Instant::now() + Duration::from_millis(200));
            while !t.is_finished() && std::time::Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.report()
    }
}
