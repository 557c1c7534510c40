//! The audit writer thread: connects (migrating the schema), then writes records as they come.
//! While the database is unreachable it keeps them, oldest first, up to the queue bound, and
//! retries the connection with full-jitter backoff (below 0.5 s doubling to 5 s); a record the database
//! refuses (an error that is not a lost connection) is dropped and counted, so one bad record
//! cannot block the trail.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use crate::pgconn::{PgConn, PgError};
use spate_core::backoff::Backoff;
use spate_core::clock::Clock;

use super::config::AuditConfig;
use super::record::{Record, Shared};

pub(super) struct Writer {
    cfg: AuditConfig,
    rx: Receiver<Record>,
    shared: Arc<Shared>,
    held: VecDeque<Record>,
    /// Reconnect times (ns).
    clock: Arc<dyn Clock>,
}

/// Why a connection could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// No answer (down, wrong address): worth retrying.
    Unreachable(String),
    /// The server answered no (password, permission, database): a setting to fix.
    Refused(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Unreachable(m) | ConnectError::Refused(m) => f.write_str(m),
        }
    }
}

fn classify(e: &PgError) -> ConnectError {
    if e.as_db_error().is_some() {
        ConnectError::Refused(describe(e))
    } else {
        ConnectError::Unreachable(describe(e))
    }
}

/// A connection with the schema migrated, within `timeout`.
pub(super) fn connect(cfg: &AuditConfig, timeout: Duration) -> Result<PgConn, ConnectError> {
    let mut pc: tokio_postgres::Config =
        cfg.url.parse().map_err(|e| ConnectError::Refused(format!("{e}")))?;
    if let Some(p) = &cfg.password {
        pc.password(p.expose());
    }
    pc.connect_timeout(timeout.max(Duration::from_millis(100)));
    pc.application_name("spate-audit");
    // Every statement bounded: a stalled server cannot hold the writer (or its stop).
    pc.options("-c statement_timeout=5000");
    let mut c =
        PgConn::connect(&pc, timeout.max(Duration::from_millis(100))).map_err(|e| classify(&e))?;
    // A statement waits at most as long as the server's own limit, plus a margin.
    c.set_deadline(Duration::from_secs(6));
    super::migrate::migrate(&mut c).map_err(|e| match classify(&e) {
        ConnectError::Refused(m) => {
            ConnectError::Refused(format!("cannot create the audit tables: {m}"))
        }
        u => u,
    })?;
    Ok(c)
}

/// The server's message when there is one (wrong password, missing permission), else the
/// client's.
fn describe(e: &PgError) -> String {
    e.describe()
}

impl Writer {
    pub(super) fn new(
        cfg: &AuditConfig,
        rx: Receiver<Record>,
        shared: Arc<Shared>,
        clock: Arc<dyn Clock>,
    ) -> Writer {
        Writer { cfg: cfg.clone(), rx, shared, held: VecDeque::new(), clock }
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Acquire)
    }

    /// Takes what the channel holds into `held`, dropping the oldest beyond the bound.
    fn take(&mut self, wait: Duration) {
        match self.rx.recv_timeout(wait) {
            Ok(r) => self.held.push_back(r),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        while let Ok(r) = self.rx.try_recv() {
            self.held.push_back(r);
        }
        while self.held.len() > self.cfg.queue {
            self.held.pop_front();
            self.shared.dropped.fetch_add(1, Relaxed);
            self.shared.pending.fetch_sub(1, Relaxed);
        }
    }

    pub(super) fn run(mut self) {
        let mut client: Option<PgConn> = None;
        let mut backoff = Backoff::reconnects(
            Duration::from_millis(500),
            Duration::from_secs(5),
            &self.cfg.display,
        );
        let mut next_try = self.clock.now_ns();
        loop {
            self.take(Duration::from_millis(100));
            if self.stopping() && (self.held.is_empty() || client.is_none()) {
                return;
            }
            if client.is_none() {
                if self.clock.now_ns() < next_try || self.held.is_empty() {
                    continue;
                }
                match connect(&self.cfg, Duration::from_secs(2)) {
                    Ok(c) => {
                        client = Some(c);
                        self.shared.connected.store(true, Release);
                        backoff.succeeded();
                    }
                    Err(e) => {
                        self.fail(format!("audit: cannot reach {}: {e}; rows are kept and written when it answers", self.cfg.display));
                        next_try = self.clock.now_ns() + backoff.failed().as_nanos() as u64;
                        continue;
                    }
                }
            }
            let c = client.as_mut().expect("connected above");
            while let Some(r) = self.held.front() {
                match write(c, r) {
                    Ok(()) => {
                        self.held.pop_front();
                        self.shared.written.fetch_add(1, Relaxed);
                        self.shared.pending.fetch_sub(1, Relaxed);
                    }
                    Err(e) if e.is_lost() => {
                        // The connection is gone: keep the record, reconnect.
                        self.fail(format!(
                            "audit: lost the connection to {}: {}; retrying",
                            self.cfg.display,
                            describe(&e)
                        ));
                        client = None;
                        self.shared.connected.store(false, Release);
                        next_try = self.clock.now_ns() + backoff.failed().as_nanos() as u64;
                        break;
                    }
                    Err(e) => {
                        self.fail(format!(
                            "audit: the database refused a record: {}",
                            describe(&e)
                        ));
                        self.held.pop_front();
                        self.shared.dropped.fetch_add(1, Relaxed);
                        self.shared.pending.fetch_sub(1, Relaxed);
                    }
                }
            }
        }
    }

    fn fail(&self, msg: String) {
        spate_core::rate_log::warn("audit", &msg);
        *self.shared.last_error.lock() = Some(msg);
    }
}

fn write(c: &mut PgConn, r: &Record) -> Result<(), PgError> {
    match r {
        Record::Started { run_id, at, origin, seed, config } => c
            .execute(
                "INSERT INTO spate_runs (run_id, origin, started_at, seed, config) VALUES ($1, $2, $3, $4::text::numeric, $5) \
                 ON CONFLICT (run_id) DO NOTHING",
                &[run_id, origin, at, &seed.to_string(), config],
            )
            .map(drop),
        Record::Change { run_id, at, kind, detail } => c
            .execute("INSERT INTO spate_run_changes (run_id, at, kind, detail) VALUES ($1, $2, $3, $4)", &[run_id, at, kind, detail])
            .map(drop),
        Record::Ended { run_id, at, summary, exit_status } => c
            .execute(
                "UPDATE spate_runs SET ended_at = $2, summary = $3, exit_status = $4 WHERE run_id = $1",
                &[run_id, at, summary, exit_status],
            )
            .map(drop),
    }
}
