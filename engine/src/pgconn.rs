//! PostgreSQL connections whose every call has a deadline on the client's side.
//!
//! A server that accepts and never answers (its processes stopped, a proxy that lost its
//! backend, a listener that is not PostgreSQL) must be a fault like a dead one, not a thread
//! blocked forever: the kernel acknowledges a stopped process's packets, so TCP keepalives and
//! `tcp_user_timeout` never fire, and `statement_timeout` is the server's own clock. So each
//! call here (connect with its handshake, a statement, a COPY) runs on a current-thread tokio
//! runtime owned by the connection, under `tokio::time::timeout`; when the time is up the call
//! ends with [`PgError::TimedOut`] and the connection is dropped (its socket closed). Used by
//! the PostgreSQL sink, the audit writer and `spate verify`.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::error::DbError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

/// Why a call failed.
#[derive(Debug)]
pub enum PgError {
    /// The server refused the statement, or the connection broke.
    Pg(tokio_postgres::Error),
    /// No answer within the deadline: the server is hung, overloaded or unreachable.
    TimedOut {
        /// What was waited for (`connect`, `query`, `copy`, ...).
        what: &'static str,
        /// The deadline.
        after: Duration,
    },
    /// The connection's runtime could not start (out of file descriptors).
    Runtime(std::io::Error),
}

impl PgError {
    /// The server's error, if the server answered with one (a refusal: permission, a constraint,
    /// bad data); None when the connection broke or timed out.
    pub fn as_db_error(&self) -> Option<&DbError> {
        match self {
            PgError::Pg(e) => e.as_db_error(),
            _ => None,
        }
    }

    /// Whether the connection is unusable now (broken or timed out): reconnect before retrying.
    pub fn is_lost(&self) -> bool {
        match self {
            PgError::Pg(e) => e.is_closed() || e.as_db_error().is_none(),
            PgError::TimedOut { .. } | PgError::Runtime(_) => true,
        }
    }

    /// The server's message and code when there is one (wrong password, missing permission),
    /// else the client's.
    pub fn describe(&self) -> String {
        match self {
            PgError::Pg(e) => match e.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => e.to_string(),
            },
            PgError::TimedOut { what, after } => {
                format!("no answer to {what} within {after:?} (the server is hung or unreachable)")
            }
            PgError::Runtime(e) => format!("cannot start the connection's runtime: {e}"),
        }
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::error::Error for PgError {}

/// A connection; every call waits at most the connection's deadline.
pub struct PgConn {
    rt: tokio::runtime::Runtime,
    client: Client,
    deadline: Duration,
}

/// Runs `fut` on `rt` for at most `after`.
fn bounded<T>(
    rt: &tokio::runtime::Runtime,
    what: &'static str,
    after: Duration,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, PgError> {
    // The timer is made inside the runtime (it needs its time driver).
    match rt.block_on(async move { tokio::time::timeout(after, fut).await }) {
        Ok(r) => r.map_err(PgError::Pg),
        Err(_) => Err(PgError::TimedOut { what, after }),
    }
}

impl PgConn {
    /// Connects (TCP, startup, authentication) within `deadline`; later calls get the same
    /// deadline each.
    pub fn connect(config: &tokio_postgres::Config, deadline: Duration) -> Result<PgConn, PgError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(PgError::Runtime)?;
        let (client, connection) = bounded(&rt, "connect", deadline, config.connect(NoTls))?;
        // The connection's I/O task runs whenever a call blocks on the runtime.
        rt.spawn(async move {
            let _ = connection.await;
        });
        Ok(PgConn { rt, client, deadline })
    }

    /// Changes the deadline of the calls that follow.
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.deadline = deadline;
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), PgError> {
        bounded(&self.rt, "a statement", self.deadline, self.client.batch_execute(sql))
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, PgError> {
        bounded(&self.rt, "a statement", self.deadline, self.client.execute(sql, params))
    }

    /// Runs one query; returns its rows.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        bounded(&self.rt, "a query", self.deadline, self.client.query(sql, params))
    }

    /// `COPY ... FROM STDIN` of `data` (already in the statement's format); returns the rows
    /// copied.
    pub fn copy_in(&mut self, sql: &str, data: Vec<Bytes>) -> Result<u64, PgError> {
        let client = &self.client;
        let fut = async move {
            let sink = client.copy_in::<_, Bytes>(sql).await?;
            let mut sink = std::pin::pin!(sink);
            for chunk in data {
                sink.send(chunk).await?;
            }
            sink.finish().await
        };
        bounded(&self.rt, "a COPY", self.deadline, fut)
    }

    /// Whether the connection is known to be broken.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
