//! The PostgreSQL sink (see `mod.rs`). Synchronous on the flush thread: `write` adds a batch's
//! rows (binary COPY) to the open transaction, which is committed once it holds `commit_rows`
//! events or has waited 100 ms for more (`poll`); its events are in flight until then, and
//! delivered once committed. One transaction per batch would cost a commit (and an fsync) per
//! batch: a sixth of a 1M-row load at 8,192 events per batch. While the database is
//! unreachable the open transaction is kept and the sink takes nothing more (`Ok(0)`): the flush
//! thread holds the batch and the rings fill, so workers wait (`backpressure: block`) or shed;
//! it reconnects with full-jitter backoff (`spate_core::backoff`: below 0.1 s doubling to 2 s). Events not committed by the drain
//! timeout go to the DLQ file, as with Kafka.
//!
//! The sink's circuit breaker (`crate::breaker`, the run's breaker as with Kafka): each
//! transaction is a call (failed when the connection breaks, slow past `breaker.slow_call`), and
//! a reconnect that fails opens it at once (the server is known to be down). While it is open
//! no connection is tried; workers pause (`block`) or count what the schedule grants as
//! rejected (`shed`), and under `spill` the flush thread writes the batches to the DLQ file.
//! After `open_wait` the next batch is the trial; `half_open_calls` committed transactions
//! close it again.
//!
//! Exactly once through a restart: each transaction writes its rows and its id
//! (`{run}-{worker}-{seq}-{count}` of its first event and its size, fixed at the first attempt)
//! into `spate_batches`. If the connection breaks while `COMMIT` is in flight, the outcome is
//! unknown; the rows are kept, and after reconnecting the id is looked up: found, it was
//! committed (counted delivered, not sent again); missing, it was rolled back and is sent again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::batch::Batch;
use crate::error::{ConfigError, EngineError};
use crate::pgconn::{PgConn, PgError};
use crate::sink::dlq::DlqFile;
use crate::sink::{Outcomes, Sink};
use spate_core::backoff::Backoff;
use spate_core::breaker::{Breaker, BreakerConfig, BreakerReporter, BreakerWindow, State};
use spate_core::clock::Clock;
use spate_gen::EventMeta;

use super::breaker::SinkBreaker;
use super::config::PgConfig;
use super::conn::{connect, describe};
use super::copy;
use super::rows::{dead_letter, typed_values};
use super::typed::{Column, Raw};

/// How long an open transaction waits for more batches before it is committed.
const LINGER: Duration = Duration::from_millis(100);

/// PostgreSQL's name of `timestamptz` in `information_schema`.
const TIMESTAMPTZ: &str = "timestamp with time zone";

/// The PostgreSQL sink: binary COPY into one open transaction at a time, on the flush thread.
pub struct PgSink {
    target: PgConfig,
    client: Option<PgConn>,
    copy_sql: String,
    source_names: Vec<String>,
    run_id: String,
    /// The typed layout's columns (None: the JSONB body), a value slot per column for the
    /// event being encoded, and room to unescape its strings.
    typed: Option<Vec<Column>>,
    slots: Vec<Raw>,
    scratch: Vec<u8>,
    /// The open transaction's events as generated (payloads, their ends, their identities),
    /// for the DLQ file if it cannot be committed.
    lines: Vec<u8>,
    ends: Vec<u32>,
    metas: Vec<EventMeta>,
    /// The open transaction: its rows in binary COPY form (header and trailer apart), their
    /// count and payload bytes, the (worker, seq) of its first event, when it was opened.
    buf: Vec<u8>,
    rows: usize,
    payload_bytes: u64,
    first: (u16, u64),
    /// The run's clock (ns): linger, reconnect times, call durations, the drain deadline.
    clock: Arc<dyn Clock>,
    since: u64,
    /// Its id once a commit was tried (then nothing is added until it is settled).
    attempt: Option<String>,
    /// Its COMMIT got no answer: look its id up before trying again.
    in_doubt: bool,
    retry_at: u64,
    backoff: Backoff,
    dlq: DlqFile,
    breaker: Option<SinkBreaker>,
}

impl PgSink {
    /// Connects, creates the table (and `spate_batches`) if missing and checks its columns if
    /// present: every problem is one message now, before any event is generated. `typed`: the
    /// typed layout's columns (None: the JSONB body).
    pub fn open(
        target: &PgConfig,
        source_names: &[String],
        run_id: &str,
        typed: Option<Vec<Column>>,
        clock: Arc<dyn Clock>,
    ) -> Result<PgSink, EngineError> {
        let bad =
            |what: String, fix: &str| EngineError::Config(ConfigError::new("sink", what, fix));
        let mut c = connect(target, target.call_timeout).map_err(|e| match e.as_db_error() {
            Some(_) => bad(
                format!("PostgreSQL at {} refused spate: {}", target.display(), describe(&e)),
                "check the user, the password (in the URL or ${ENV}) and the database name",
            ),
            None => bad(
                format!("PostgreSQL at {} does not answer: {}", target.display(), describe(&e)),
                "check the host and port, and that the server is up",
            ),
        })?;
        // (name, type, NOT NULL) of every column spate writes, in COPY order.
        let mut want: Vec<(String, &'static str, bool)> = vec![
            ("ts".into(), TIMESTAMPTZ, true),
            ("source".into(), "text", true),
            ("id".into(), "text", true),
            ("traceparent".into(), "text", false),
        ];
        match &typed {
            None => want.push(("body".into(), "jsonb", true)),
            Some(cols) => {
                want.extend(cols.iter().map(|c| (c.name.clone(), c.ty.sql(), !c.nullable)));
            }
        }
        let t = &target.table;
        let defs: Vec<String> = want
            .iter()
            .map(|(n, ty, nn)| format!("\"{n}\" {ty}{}", if *nn { " NOT NULL" } else { "" }))
            .collect();
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {t} ({});
             CREATE TABLE IF NOT EXISTS spate_batches (batch_id text PRIMARY KEY, rows integer NOT NULL, at timestamptz NOT NULL DEFAULT now());",
            defs.join(", ")
        );
        c.batch_execute(&create).map_err(|e| {
            bad(
                format!(
                    "cannot create table {t} (or spate_batches) at {}: {}",
                    target.display(),
                    describe(&e)
                ),
                "create the tables beforehand, or grant the user CREATE on the schema",
            )
        })?;
        // information_schema shows only the columns the user has rights on: without INSERT the
        // table would read as one with no columns. Say what is missing instead.
        let may_insert = c
            .query("SELECT has_table_privilege($1, 'INSERT')", &[&t.as_str()])
            .map_err(|e| {
                bad(
                    format!("cannot check the rights on {t}: {}", describe(&e)),
                    "grant the user access to the table",
                )
            })?
            .first()
            .is_some_and(|r| r.get::<_, bool>(0));
        if !may_insert {
            return Err(bad(
                format!("the user may not insert into table {t} at {}", target.display()),
                "GRANT INSERT ON the table TO the user, or point ?table= at a table it may write",
            ));
        }
        let (schema, name) = t.split_once('.').map_or((None, t.as_str()), |(s, n)| (Some(s), n));
        let rows = c
            .query(
                "SELECT column_name::text, data_type::text, is_nullable = 'YES' FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = coalesce($2, current_schema())",
                &[&name, &schema],
            )
            .map_err(|e| bad(format!("cannot read the columns of {t}: {}", describe(&e)), "grant the user SELECT on information_schema"))?;
        let have: Vec<(String, String, bool)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        let names: Vec<&str> = want.iter().map(|w| w.0.as_str()).collect();
        for (col, ty, _) in &want {
            match have.iter().find(|h| &h.0 == col) {
                Some((_, t2, _)) if t2 == ty => {}
                Some((_, t2, _)) => return Err(bad(
                    format!("table {t} has column `{col}` of type {t2}; spate writes {ty}"),
                    "point ?table= at a new table (spate creates it), or change the column's type",
                )),
                None => {
                    return Err(bad(
                        format!(
                            "table {t} has no column `{col}` ({ty}); spate writes {}",
                            names.join(", ")
                        ),
                        "point ?table= at a new table (spate creates it), or add the column",
                    ))
                }
            }
        }
        if let Some((col, ..)) = have.iter().find(|h| !h.2 && !names.contains(&h.0.as_str())) {
            return Err(bad(
                format!("table {t} has a NOT NULL column `{col}` that spate does not write"),
                "make it nullable or give it a default",
            ));
        }
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        let slots = typed.as_ref().map_or(0, Vec::len);
        Ok(PgSink {
            copy_sql: format!("COPY {t} ({}) FROM STDIN (FORMAT binary)", quoted.join(", ")),
            target: target.clone(),
            client: Some(c),
            source_names: source_names.to_vec(),
            run_id: run_id.to_string(),
            typed,
            slots: vec![Raw::Null; slots],
            scratch: Vec::new(),
            buf: Vec::with_capacity(1 << 20),
            lines: Vec::with_capacity(1 << 20),
            ends: Vec::new(),
            metas: Vec::new(),
            rows: 0,
            payload_bytes: 0,
            first: (0, 0),
            since: clock.now_ns(),
            attempt: None,
            in_doubt: false,
            retry_at: clock.now_ns(),
            clock,
            backoff: Backoff::reconnects(
                Duration::from_millis(100),
                Duration::from_secs(2),
                &target.display(),
            ),
            dlq: DlqFile::new(target.dlq_file.clone()),
            breaker: None,
        })
    }

    /// Drives the run's circuit breaker `shared` with `cfg` (see the module doc); `spill`: the
    /// DLQ file takes the batches while it is open.
    pub fn with_breaker(
        mut self,
        shared: Arc<Breaker>,
        cfg: BreakerConfig,
        reporter: BreakerReporter,
        clock: Arc<dyn Clock>,
        spill: bool,
    ) -> Self {
        self.breaker =
            Some(SinkBreaker { shared, window: BreakerWindow::new(cfg), reporter, clock, spill });
        self
    }

    /// Time since `t` (clock ns).
    fn since_ns(&self, t: u64) -> Duration {
        Duration::from_nanos(self.clock.now_ns().saturating_sub(t))
    }

    /// Appends events `from..` of `batch` as binary COPY rows to the open transaction.
    fn append(&mut self, batch: &Batch, from: usize) {
        if self.rows == 0 {
            let m = &batch.metas[from];
            self.first = (m.worker, m.seq);
            self.since = self.clock.now_ns();
        }
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let (mut tp, mut idb) = ([0u8; 55], [0u8; 64]);
        for i in from..batch.len() {
            let m: &EventMeta = &batch.metas[i];
            let line = batch.payload(i);
            // json events start with {"ts":"<RFC 3339>".
            let ts = line.get(7..34).and_then(copy::rfc3339_us).unwrap_or(now_us);
            let id = match m.id_in(line) {
                Some(x) => x,
                None => {
                    let n = spate_gen::hex::event_id(&mut idb, &self.run_id, m.worker, m.seq);
                    &idb[..n]
                }
            };
            let tpv = match m.traceparent_in(line) {
                Some(t) => t,
                None => {
                    spate_gen::hex::traceparent(&mut tp, m.trace_id, m.span_id);
                    &tp[..]
                }
            };
            let src = self.source_names.get(m.source as usize).map_or(&b""[..], |s| s.as_bytes());
            match &self.typed {
                None => copy::row(&mut self.buf, ts, src, id, Some(tpv), line),
                Some(cols) => {
                    copy::envelope(&mut self.buf, 4 + cols.len() as i16, ts, src, id, Some(tpv));
                    typed_values(&mut self.buf, cols, &mut self.slots, &mut self.scratch, line);
                }
            }
            self.lines.extend_from_slice(line);
            self.ends.push(self.lines.len() as u32);
            self.metas.push(*m);
        }
        self.rows += batch.len() - from;
        self.payload_bytes += batch.bytes_from(from).len() as u64;
    }

    /// Empties the open transaction (committed, or settled otherwise).
    fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.ends.clear();
        self.metas.clear();
        self.rows = 0;
        self.payload_bytes = 0;
        self.attempt = None;
        self.in_doubt = false;
    }

    fn deliver(&mut self, acct: &mut Outcomes) {
        acct.delivered += self.rows as u64;
        acct.delivered_bytes += self.payload_bytes;
        self.clear();
    }

    fn lost(&mut self, e: &PgError, in_doubt: bool, took: Duration) {
        if let Some(b) = &mut self.breaker {
            b.record(true, took);
        }
        spate_core::rate_log::warn(
            "pg_lost",
            &format!(
                "postgres sink: {}: {}; holding {} events and retrying",
                self.target.display(),
                describe(e),
                self.rows
            ),
        );
        self.client = None;
        self.in_doubt = in_doubt;
        self.retry_at = self.clock.now_ns() + self.backoff.failed().as_nanos() as u64;
    }

    /// Connected, or reconnected now; false while the server is away (backoff, breaker).
    fn connected(&mut self) -> bool {
        if self.client.is_some() {
            return true;
        }
        if self.clock.now_ns() < self.retry_at {
            return false;
        }
        let t = self.clock.now_ns();
        match connect(&self.target, self.target.call_timeout) {
            Ok(c) => {
                self.client = Some(c);
                self.backoff.succeeded();
                true
            }
            Err(e) => {
                let took = self.since_ns(t);
                if let Some(b) = &mut self.breaker {
                    b.down(
                        &format!("cannot reconnect to {}: {}", self.target.display(), describe(&e)),
                        took,
                    );
                }
                let doubt = self.in_doubt;
                self.lost(&e, doubt, Duration::ZERO);
                false
            }
        }
    }

    /// Commits the open transaction's rows; true when nothing is left open (committed, found
    /// committed after a commit in doubt, or refused by the server and dead-lettered).
    fn commit(&mut self, acct: &mut Outcomes) -> bool {
        if self.rows == 0 {
            return true;
        }
        if self.breaker.as_mut().is_some_and(|b| b.tick() == State::Open) || !self.connected() {
            return false;
        }
        // The id is fixed at the first attempt: a retry (or the lookup after a commit in doubt)
        // is of the very same rows.
        let (w, seq) = self.first;
        let id = self
            .attempt
            .get_or_insert_with(|| format!("{}-{}-{}-{}", self.run_id, w, seq, self.rows))
            .clone();
        if self.in_doubt {
            let c = self.client.as_mut().expect("connected above");
            match c
                .query("SELECT 1 FROM spate_batches WHERE batch_id = $1", &[&id])
                .map(|r| r.into_iter().next())
            {
                Ok(Some(_)) => {
                    spate_core::rate_log::warn(
                        "pg_in_doubt",
                        &format!("postgres sink: batch {id}, whose COMMIT got no answer, is in spate_batches: committed, not sent again"),
                    );
                    self.deliver(acct);
                    return true;
                }
                Ok(None) => {
                    spate_core::rate_log::warn(
                        "pg_in_doubt",
                        &format!(
                            "postgres sink: batch {id}, whose COMMIT got no answer, is not in spate_batches: rolled back, sending it again"
                        ),
                    );
                    self.in_doubt = false;
                }
                Err(e) => {
                    self.lost(&e, true, Duration::ZERO);
                    return false;
                }
            }
        }
        let t = self.clock.now_ns();
        match self.transact(&id) {
            Ok(()) => {
                let took = self.since_ns(t);
                if let Some(b) = &mut self.breaker {
                    b.record(false, took);
                }
                self.deliver(acct);
                true
            }
            // The server refused the rows themselves (not the connection): resending will not
            // help; they go to the DLQ file with the server's reason.
            Err((e, false))
                if !e.is_lost() && self.client.as_ref().is_some_and(|c| !c.is_closed()) =>
            {
                let why = format!("postgres refused the batch: {}", describe(&e));
                // Said where the operator looks, not only in the DLQ file's lines.
                spate_core::rate_log::warn(
                    "pg_refused",
                    &format!(
                        "postgres sink: {why}; its {} events go to the DLQ file {}",
                        self.rows,
                        self.target.dlq_file.display()
                    ),
                );
                self.dead_letter_open(acct, &why);
                true
            }
            Err((e, committing)) => {
                let took = self.since_ns(t);
                self.lost(&e, committing, took);
                false
            }
        }
    }

    /// The open transaction's COPY and its id; `Err((e, committing))`.
    fn transact(&mut self, id: &str) -> Result<(), (PgError, bool)> {
        let rows = self.rows as i32;
        let data = vec![
            Bytes::from_static(copy::HEADER),
            Bytes::copy_from_slice(&self.buf),
            Bytes::from_static(copy::TRAILER),
        ];
        let copy_sql = &self.copy_sql;
        let c = self.client.as_mut().expect("connected");
        let rows_in = || -> Result<(), PgError> {
            c.batch_execute("BEGIN")?;
            c.copy_in(copy_sql, data)?;
            c.execute("INSERT INTO spate_batches (batch_id, rows) VALUES ($1, $2)", &[&id, &rows])?;
            Ok(())
        };
        if let Err(e) = rows_in() {
            if !e.is_lost() {
                // The server refused a statement: end the transaction, keep the connection.
                let _ = c.batch_execute("ROLLBACK");
            }
            return Err((e, false));
        }
        c.batch_execute("COMMIT").map_err(|e| (e, true))
    }

    /// The open transaction's events into the DLQ file.
    fn dead_letter_open(&mut self, acct: &mut Outcomes, reason: &str) {
        let mut start = 0;
        let rows: Vec<(&EventMeta, &[u8])> = self
            .metas
            .iter()
            .zip(&self.ends)
            .map(|(m, &end)| {
                let line = &self.lines[start..end as usize];
                start = end as usize;
                (m, line)
            })
            .collect();
        dead_letter(&mut self.dlq, &self.target.table, &self.run_id, &rows, acct, reason);
        self.clear();
    }
}

impl Sink for PgSink {
    fn write(
        &mut self,
        batch: &Batch,
        from: usize,
        acct: &mut Outcomes,
    ) -> Result<usize, EngineError> {
        let n = batch.len() - from;
        if let Some(b) = &mut self.breaker {
            if b.tick() == State::Open {
                if b.spill {
                    self.abandon(
                        batch,
                        from,
                        acct,
                        "circuit breaker open: spilled (backpressure: spill)",
                    );
                    return Ok(n);
                }
                // Fail fast: no connection attempt until the breaker lets a trial through.
                return Ok(0);
            }
        }
        // A transaction that failed is retried as it was before anything is added to it; a
        // full one is committed first.
        if (self.attempt.is_some() || (self.rows > 0 && self.rows + n > self.target.commit_rows))
            && !self.commit(acct)
        {
            return Ok(0);
        }
        self.append(batch, from);
        // The rows are in the transaction's buffer now: the batch can go back to its worker.
        acct.taken(batch, from, n, None);
        if self.rows >= self.target.commit_rows {
            // If this fails the rows stay open (in flight) and the next call retries.
            self.commit(acct);
        }
        Ok(n)
    }

    fn poll(&mut self, acct: &mut Outcomes, timeout_ms: u64) {
        // Commit what has waited long enough for more batches.
        if self.rows > 0 && self.since_ns(self.since) >= LINGER {
            self.commit(acct);
        }
        if self.breaker.as_ref().is_some_and(|b| b.shared.state() == State::Open) {
            // Nothing to try until the breaker's open wait is over.
            self.clock.sleep_until(self.clock.now_ns() + timeout_ms.min(20) * 1_000_000);
            return;
        }
        // Waiting for a reconnect: sleep toward it, within the flush thread's timeout.
        if self.client.is_none() {
            let wake = self
                .retry_at
                .min(self.clock.now_ns().saturating_add(timeout_ms.saturating_mul(1_000_000)));
            self.clock.sleep_until(wake);
        }
    }

    /// Commits what is open within `timeout_ms` (reconnecting as needed); what cannot be
    /// committed by then goes to the DLQ file.
    fn finish(&mut self, acct: &mut Outcomes, timeout_ms: u64) -> Result<(), EngineError> {
        // No call may outlast the drain: a hung server costs at most what is left of it.
        let left = Duration::from_millis(timeout_ms).max(Duration::from_millis(100));
        self.target.call_timeout = self.target.call_timeout.min(left);
        if let Some(c) = &mut self.client {
            c.set_deadline(self.target.call_timeout);
        }
        let deadline = self.clock.now_ns().saturating_add(timeout_ms.saturating_mul(1_000_000));
        while !self.commit(acct) && self.clock.now_ns() < deadline && !acct.is_aborting() {
            self.clock
                .sleep_until(self.retry_at.min(self.clock.now_ns() + 20_000_000).min(deadline));
        }
        if self.rows > 0 {
            self.dead_letter_open(
                acct,
                "not committed before the drain timeout (PostgreSQL unreachable)",
            );
        }
        Ok(())
    }

    fn in_flight(&self) -> u64 {
        self.rows as u64
    }

    fn abandon(&mut self, batch: &Batch, from: usize, acct: &mut Outcomes, reason: &str) {
        let rows: Vec<(&EventMeta, &[u8])> =
            (from..batch.len()).map(|i| (&batch.metas[i], batch.payload(i))).collect();
        dead_letter(&mut self.dlq, &self.target.table, &self.run_id, &rows, acct, reason);
        acct.taken(batch, from, batch.len() - from, Some(reason.to_string()));
    }
}
