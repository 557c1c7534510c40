//! The PostgreSQL sink: events into a table with `COPY ... FROM STDIN (FORMAT binary)`, in
//! transactions of up to `commit_rows` events (several batches; 32,768 by default, or what came
//! within 100 ms) that also record the transaction's id in `spate_batches`, so that one whose
//! commit was in doubt when the connection broke is looked up, not sent again.
//!
//! - `copy.rs` encodes a batch as binary COPY rows (no allocation per event);
//! - `typed.rs` is the typed layout: a column per field of the sources' records;
//! - `sink.rs` is the sink: connection, table check, transactions, retries, the DLQ file.
//!
//! Target: `postgres://USER[:PASSWORD]@HOST:PORT/DB?table=T[&dlq_file=PATH][&commit_rows=N]
//! [&layout=jsonb|typed]` (`${ENV}` expanded; default table `spate_events`, DLQ file
//! `spate-dlq.jsonl`, 32,768 rows, `jsonb`). The table has typed columns for
//! the envelope and the event as JSONB:
//! `ts timestamptz, source text, id text, traceparent text, body jsonb`.

mod copy;
mod sink;
pub mod typed;

use std::path::PathBuf;

use crate::error::ConfigError;

pub use sink::PgSink;

/// Where the PostgreSQL sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// The connection URL, spate's own parameters removed (may hold a password).
    pub url: String,
    pub table: String,
    pub dlq_file: PathBuf,
    /// Most events per transaction (one commit, one fsync, for this many).
    pub commit_rows: usize,
    /// The event as a JSONB `body` (false), or a column per field of the records (true).
    pub typed: bool,
}

/// Default events per transaction: a commit per 32,768 rows costs about 1 % of a 1M-row load
/// in commits and fsyncs, where one per 8,192 cost 17 % (tuning.md).
pub const DEFAULT_COMMIT_ROWS: usize = 32_768;

impl PgTarget {
    /// Parses `postgres://...?table=T&dlq_file=P` (after `${ENV}` expansion).
    pub fn parse(s: &str) -> Result<PgTarget, ConfigError> {
        let s = crate::secret::expand(s, "sink")?;
        let (base, query) = s.split_once('?').unwrap_or((&s, ""));
        let mut table = "spate_events".to_string();
        let mut dlq_file = PathBuf::from("spate-dlq.jsonl");
        let mut commit_rows = DEFAULT_COMMIT_ROWS;
        let mut typed = false;
        let mut rest = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("table", t)) => table = t.to_string(),
                Some(("dlq_file", p)) => dlq_file = PathBuf::from(p),
                Some(("commit_rows", n)) => {
                    commit_rows = n.parse().ok().filter(|n| (1..=1_000_000).contains(n)).ok_or_else(|| {
                        ConfigError::new(
                            "sink",
                            format!("commit_rows={n} is not a number of events from 1 to 1000000"),
                            "e.g. ?commit_rows=32768 (the default), fewer for shorter transactions",
                        )
                    })?
                }
                Some(("layout", "jsonb")) => typed = false,
                Some(("layout", "typed")) => typed = true,
                Some(("layout", l)) => {
                    return Err(ConfigError::new(
                        "sink",
                        format!("layout={l} is not a table layout spate writes"),
                        "use layout=jsonb (the event in a body column, the default) or layout=typed (a column per field)",
                    ))
                }
                _ => rest.push(kv),
            }
        }
        if !valid_table(&table) {
            return Err(ConfigError::new(
                "sink",
                format!("`{table}` is not a table name spate writes to"),
                "use letters, digits and `_` (optionally schema.table), e.g. ?table=spate_events",
            ));
        }
        let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
        let parsed: postgres::Config = url.parse().map_err(|e| {
            ConfigError::new("sink", format!("the PostgreSQL URL does not parse: {e}"), "write postgres://USER@HOST:PORT/DB?table=T")
        })?;
        if parsed.get_user().is_none() {
            return Err(ConfigError::new("sink", "no user in the PostgreSQL URL", "write postgres://USER@HOST:PORT/DB?table=T"));
        }
        Ok(PgTarget { url, table, dlq_file, commit_rows, typed })
    }

    /// The URL with its password masked, for messages and the summary.
    pub fn display(&self) -> String {
        let shown = match self.url.split_once("://").and_then(|(s, r)| Some((s, r.split_once('@')?))) {
            Some((scheme, (userinfo, host))) if userinfo.contains(':') => {
                format!("{scheme}://{}:{}@{host}", userinfo.split(':').next().unwrap_or(""), crate::secret::REDACTED)
            }
            _ => self.url.clone(),
        };
        let sep = if shown.contains('?') { '&' } else { '?' };
        format!("{shown}{sep}table={}", self.table)
    }
}

/// Shown (status, summaries) with its password masked.
impl serde::Serialize for PgTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.display())
    }
}

/// `name` or `schema.name`, each `[A-Za-z_][A-Za-z0-9_]*`: safe to write into SQL unquoted.
fn valid_table(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| crate::avro::valid_name(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_hide_their_password() {
        let t = PgTarget::parse("postgres://u:pw@127.0.0.1:5432/db?table=ev&dlq_file=/tmp/d.jsonl&sslmode=disable").unwrap();
        assert_eq!((t.table.as_str(), t.dlq_file.to_str().unwrap()), ("ev", "/tmp/d.jsonl"));
        assert_eq!(t.url, "postgres://u:pw@127.0.0.1:5432/db?sslmode=disable");
        assert_eq!(t.display(), "postgres://u:<redacted>@127.0.0.1:5432/db?sslmode=disable&table=ev");
        assert!(PgTarget::parse("postgres://u@h/db?table=a;drop").is_err());
        assert!(PgTarget::parse("postgres://h/db").is_err());
        assert_eq!(PgTarget::parse("postgres://u@h/db").unwrap().table, "spate_events");
        assert_eq!(PgTarget::parse("postgres://u@h/db").unwrap().commit_rows, DEFAULT_COMMIT_ROWS);
        assert_eq!(PgTarget::parse("postgres://u@h/db?commit_rows=500").unwrap().commit_rows, 500);
        assert!(PgTarget::parse("postgres://u@h/db?layout=typed").unwrap().typed);
        assert!(PgTarget::parse("postgres://u@h/db?layout=wide").unwrap_err().to_string().contains("layout=wide"));
        for bad in ["0", "x", "2000000"] {
            let e = PgTarget::parse(&format!("postgres://u@h/db?commit_rows={bad}")).unwrap_err();
            assert!(e.to_string().contains("commit_rows"), "{e}");
        }
    }
}
