//! The PostgreSQL sink (see `mod.rs`). Synchronous on the flush thread: `write` runs a batch's
//! transaction and reports it delivered once committed. While the database is unreachable it
//! takes nothing (`Ok(0)`): the flush thread holds the batch and the rings fill, so workers
//! wait (`backpressure: block`) or shed; it retries with a backoff of 0.1 s doubling to 2 s.
//! Events not written by the drain timeout go to the DLQ file, as with Kafka.
//!
//! Exactly once through a restart: each transaction writes the batch's rows and its id
//! (`{run}-{worker}-{first seq}-{count}`) into `spate_batches`. If the connection breaks while
//! `COMMIT` is in flight, the outcome is unknown; the batch is kept, and after reconnecting its
//! id is looked up: found, it was committed (counted delivered, not sent again); missing, it
//! was rolled back and is sent again.

use std::io::Write;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::batch::Batch;
use crate::dlq::{DlqFile, DlqLineRef};
use crate::error::{ConfigError, EngineError};
use crate::event::EventMeta;
use crate::sink::Sink;
use crate::stats::LocalFlush;

use super::copy;
use super::PgTarget;

/// Columns spate writes, with PostgreSQL's names of their types.
const COLUMNS: [(&str, &str); 5] =
    [("ts", "timestamp with time zone"), ("source", "text"), ("id", "text"), ("traceparent", "text"), ("body", "jsonb")];

pub struct PgSink {
    target: PgTarget,
    client: Option<Client>,
    copy_sql: String,
    source_names: Vec<String>,
    run_id: String,
    buf: Vec<u8>,
    /// The id of a batch whose COMMIT got no answer.
    in_doubt: Option<String>,
    retry_at: Instant,
    backoff: Duration,
    dlq: DlqFile,
}

fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn connect(target: &PgTarget, timeout: Duration) -> Result<Client, postgres::Error> {
    let mut pc: postgres::Config = target.url.parse()?;
    pc.connect_timeout(timeout);
    pc.application_name("spate");
    pc.options("-c statement_timeout=30000");
    pc.connect(NoTls)
}

impl PgSink {
    /// Connects, creates the table (and `spate_batches`) if missing and checks its columns if
    /// present: every problem is one message now, before any event is generated.
    pub fn open(target: &PgTarget, source_names: &[String], run_id: &str) -> Result<PgSink, EngineError> {
        let bad = |what: String, fix: &str| EngineError::Config(ConfigError::new("sink", what, fix));
        let mut c = connect(target, Duration::from_secs(5)).map_err(|e| match e.as_db_error() {
            Some(_) => bad(
                format!("PostgreSQL at {} refused spate: {}", target.display(), describe(&e)),
                "check the user, the password (in the URL or ${ENV}) and the database name",
            ),
            None => bad(
                format!("PostgreSQL at {} does not answer: {}", target.display(), describe(&e)),
                "check the host and port, and that the server is up",
            ),
        })?;
        let t = &target.table;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {t} (ts timestamptz NOT NULL, source text NOT NULL, id text NOT NULL, traceparent text, body jsonb NOT NULL);
             CREATE TABLE IF NOT EXISTS spate_batches (batch_id text PRIMARY KEY, rows integer NOT NULL, at timestamptz NOT NULL DEFAULT now());"
        );
        c.batch_execute(&create).map_err(|e| {
            bad(
                format!("cannot create table {t} (or spate_batches) at {}: {}", target.display(), describe(&e)),
                "create the tables beforehand, or grant the user CREATE on the schema",
            )
        })?;
        let (schema, name) = t.split_once('.').map_or((None, t.as_str()), |(s, n)| (Some(s), n));
        let rows = c
            .query(
                "SELECT column_name::text, data_type::text, is_nullable = 'YES' FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = coalesce($2, current_schema())",
                &[&name, &schema],
            )
            .map_err(|e| bad(format!("cannot read the columns of {t}: {}", describe(&e)), "grant the user SELECT on information_schema"))?;
        let have: Vec<(String, String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        for (col, ty) in COLUMNS {
            match have.iter().find(|h| h.0 == col) {
                Some((_, t2, _)) if t2 == ty => {}
                Some((_, t2, _)) => {
                    return Err(bad(
                        format!("table {t} has column `{col}` of type {t2}; spate writes {ty}"),
                        "point ?table= at a new table (spate creates it), or change the column's type",
                    ))
                }
                None => {
                    return Err(bad(
                        format!("table {t} has no column `{col}` ({ty}); spate writes ts, source, id, traceparent, body"),
                        "point ?table= at a new table (spate creates it), or add the column",
                    ))
                }
            }
        }
        if let Some((col, ..)) = have.iter().find(|h| !h.2 && !COLUMNS.iter().any(|c| c.0 == h.0)) {
            return Err(bad(
                format!("table {t} has a NOT NULL column `{col}` that spate does not write"),
                "make it nullable or give it a default",
            ));
        }
        Ok(PgSink {
            copy_sql: format!("COPY {t} (ts, source, id, traceparent, body) FROM STDIN (FORMAT binary)"),
            target: target.clone(),
            client: Some(c),
            source_names: source_names.to_vec(),
            run_id: run_id.to_string(),
            buf: Vec::with_capacity(1 << 20),
            in_doubt: None,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(100),
            dlq: DlqFile::new(target.dlq_file.clone()),
        })
    }

    fn batch_id(&self, batch: &Batch, from: usize) -> String {
        let m = &batch.metas[from];
        format!("{}-{}-{}-{}", self.run_id, m.worker, m.seq, batch.len() - from)
    }

    /// Encodes `batch[from..]` as binary COPY data into `self.buf`.
    fn encode(&mut self, batch: &Batch, from: usize) {
        self.buf.clear();
        self.buf.extend_from_slice(copy::HEADER);
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        let (mut tp, mut idb) = ([0u8; 55], [0u8; 64]);
        for i in from..batch.len() {
            let m: &EventMeta = &batch.metas[i];
            let line = batch.payload(i);
            // json events start with {"ts":"<RFC 3339>".
            let ts = line.get(7..34).and_then(copy::rfc3339_us).unwrap_or(now_us);
            let id = match m.id_in(line) {
                Some(x) => x,
                None => {
                    let n = crate::hex::event_id(&mut idb, &self.run_id, m.worker, m.seq);
                    &idb[..n]
                }
            };
            let tpv = match m.traceparent_in(line) {
                Some(t) => t,
                None => {
                    crate::hex::traceparent(&mut tp, m.trace_id, m.span_id);
                    &tp[..]
                }
            };
            let src = self.source_names.get(m.source as usize).map_or(&b""[..], |s| s.as_bytes());
            copy::row(&mut self.buf, ts, src, id, Some(tpv), line);
        }
        self.buf.extend_from_slice(copy::TRAILER);
    }

    fn lost(&mut self, e: &postgres::Error, in_doubt: Option<String>) {
        crate::rate_log::warn(
            "pg_lost",
            &format!("postgres sink: {}: {}; holding the batch and retrying", self.target.display(), describe(e)),
        );
        self.client = None;
        self.in_doubt = in_doubt;
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
    }

    /// The batch's transaction; `Err((e, committing))`.
    fn transact(&mut self, id: &str, rows: i32) -> Result<(), (postgres::Error, bool)> {
        let c = self.client.as_mut().expect("connected");
        let mut tx = c.transaction().map_err(|e| (e, false))?;
        let mut w = tx.copy_in(&self.copy_sql).map_err(|e| (e, false))?;
        if let Err(io) = w.write_all(&self.buf) {
            // The writer's error is an io::Error; finish() reports the connection's.
            drop(io);
        }
        w.finish().map_err(|e| (e, false))?;
        tx.execute("INSERT INTO spate_batches (batch_id, rows) VALUES ($1, $2)", &[&id, &rows]).map_err(|e| (e, false))?;
        tx.commit().map_err(|e| (e, true))
    }
}

impl Sink for PgSink {
    fn write(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush) -> Result<usize, EngineError> {
        let n = batch.len() - from;
        if self.client.is_none() {
            if Instant::now() < self.retry_at {
                return Ok(0);
            }
            match connect(&self.target, Duration::from_secs(2)) {
                Ok(c) => {
                    self.client = Some(c);
                    self.backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    let doubt = self.in_doubt.take();
                    self.lost(&e, doubt);
                    return Ok(0);
                }
            }
        }
        let id = self.batch_id(batch, from);
        if self.in_doubt.as_deref() == Some(id.as_str()) {
            let c = self.client.as_mut().expect("connected above");
            match c.query_opt("SELECT 1 FROM spate_batches WHERE batch_id = $1", &[&id]) {
                Ok(found) => {
                    self.in_doubt = None;
                    if found.is_some() {
                        // Committed before the connection broke: delivered, not sent again.
                        acct.delivered += n as u64;
                        acct.delivered_bytes += batch.bytes_from(from).len() as u64;
                        return Ok(n);
                    }
                }
                Err(e) => {
                    self.lost(&e, Some(id));
                    return Ok(0);
                }
            }
        }
        self.encode(batch, from);
        match self.transact(&id, n as i32) {
            Ok(()) => {
                acct.delivered += n as u64;
                acct.delivered_bytes += batch.bytes_from(from).len() as u64;
                Ok(n)
            }
            // The server refused the batch itself (not the connection): it will not get
            // better by resending; it goes to the DLQ file with the server's reason.
            Err((e, false)) if e.as_db_error().is_some() && self.client.as_ref().is_some_and(|c| !c.is_closed()) => {
                let why = format!("postgres refused the batch: {}", describe(&e));
                self.abandon(batch, from, acct, &why);
                Ok(n)
            }
            Err((e, committing)) => {
                self.lost(&e, committing.then_some(id));
                Ok(0)
            }
        }
    }

    fn poll(&mut self, _acct: &mut LocalFlush, timeout_ms: u64) {
        // Waiting for a reconnect: sleep toward it, within the flush thread's timeout.
        if self.client.is_none() {
            let left = self.retry_at.saturating_duration_since(Instant::now()).min(Duration::from_millis(timeout_ms));
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
    }

    fn finish(&mut self, _acct: &mut LocalFlush, _timeout_ms: u64) -> Result<(), EngineError> {
        Ok(())
    }

    fn abandon(&mut self, batch: &Batch, from: usize, acct: &mut LocalFlush, reason: &str) {
        let n = (batch.len() - from) as u64;
        let ids: Vec<([u8; 55], [u8; 64], usize)> = batch.metas[from..]
            .iter()
            .map(|m| {
                let (mut tp, mut id) = ([0u8; 55], [0u8; 64]);
                crate::hex::traceparent(&mut tp, m.trace_id, m.span_id);
                let k = crate::hex::event_id(&mut id, &self.run_id, m.worker, m.seq);
                (tp, id, k)
            })
            .collect();
        let pairs: Vec<[(&str, &[u8]); 2]> =
            ids.iter().map(|(tp, id, k)| [(crate::kafka::H_TRACEPARENT, &tp[..]), (crate::kafka::H_SPATE_ID, &id[..*k])]).collect();
        let lines = (from..batch.len()).map(|i| DlqLineRef {
            topic: &self.target.table,
            key: None,
            headers: &pairs[i - from],
            payload: batch.payload(i),
            error: reason,
            attempts: 0,
        });
        match self.dlq.append(lines) {
            Ok(_) => acct.dead_lettered += n,
            Err(e) => {
                crate::rate_log::warn("dlq_file", &format!("cannot write the DLQ file {}: {e}", self.dlq.path().display()));
                acct.failed += n;
            }
        }
    }
}
