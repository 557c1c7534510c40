//! `sink: {postgres: ...}`: the connection, the table and its layout, transactions, the breaker
//! and the dead-letter file; and the `postgres://...?table=T` shorthand.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use spate_core::breaker::{BreakerConfig, RawBreaker};
use spate_core::conf::{DataPath, HumanDuration, SecretUrl};
use spate_core::ConfigError;

/// Default events per transaction: a commit per 32,768 rows costs about 1 % of a 1M-row load
/// in commits and fsyncs, where one per 8,192 cost 17 % (tuning.md).
pub const DEFAULT_COMMIT_ROWS: usize = 32_768;

/// Default wait for one call: above the 1 s a 32,768-row COPY takes here, far below a
/// drain timeout of runs that matter.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How events become rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// The envelope in typed columns and the event as JSONB (`body`).
    #[default]
    Jsonb,
    /// The envelope and a column per field of the sources' records.
    Typed,
}

/// `sink: {postgres: ...}` as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DB[?libpq parameters]` (`${NAME}` reads the
    /// environment).
    pub url: SecretUrl,
    /// The table (`name` or `schema.name`), created if missing, checked if present (default
    /// `spate_events`).
    pub table: Option<String>,
    /// `jsonb` (default) or `typed`.
    #[serde(default)]
    pub layout: Layout,
    /// Most events per transaction, 1 to 1,000,000 (default 32768).
    pub commit_rows: Option<usize>,
    /// Where events that cannot be committed go (JSON lines; default `spate-dlq.jsonl`).
    pub dlq_file: Option<DataPath>,
    /// The sink's circuit breaker (each transaction is a call).
    pub breaker: Option<RawBreaker>,
    /// How long one call (connect, COPY, COMMIT, a query) waits for the server before the
    /// server counts as hung: the call fails like a lost connection (default `10s`).
    pub call_timeout: Option<HumanDuration>,
}

/// A checked PostgreSQL sink.
#[derive(Debug, Clone, PartialEq)]
pub struct PgConfig {
    /// The connection URL, `${NAME}` expanded (may hold a password: use [`PgConfig::display`]).
    pub url: String,
    /// The table (`name` or `schema.name`).
    pub table: String,
    /// Where events that cannot be committed go (JSON lines).
    pub dlq_file: PathBuf,
    /// Most events per transaction (one commit, one fsync, for this many).
    pub commit_rows: usize,
    /// The event as a JSONB `body` (false), or a column per field of the records (true).
    pub typed: bool,
    /// The sink's circuit breaker (each transaction is a call).
    pub breaker: BreakerConfig,
    /// How long one call waits for the server.
    pub call_timeout: Duration,
}

impl RawPostgres {
    /// Checks the settings; deprecated keys in use are pushed to `deprecated`.
    pub fn validate_with(&self, deprecated: &mut Vec<String>) -> Result<PgConfig, ConfigError> {
        let url = spate_core::secret::expand(self.url.as_str(), "sink.postgres.url")?;
        let table = self.table.clone().unwrap_or_else(|| "spate_events".to_string());
        if !valid_table(&table) {
            return Err(ConfigError::new(
                "sink.postgres.table",
                format!("`{table}` is not a table name spate writes to"),
                "use letters, digits and `_` (optionally schema.table), e.g. spate_events",
            ));
        }
        let parsed: postgres::Config = url.parse().map_err(|e| {
            ConfigError::new(
                "sink.postgres.url",
                format!("the PostgreSQL URL does not parse: {e}"),
                "write postgres://USER@HOST:PORT/DB",
            )
        })?;
        if parsed.get_user().is_none() {
            return Err(ConfigError::new(
                "sink.postgres.url",
                "no user in the PostgreSQL URL",
                "write postgres://USER@HOST:PORT/DB",
            ));
        }
        let commit_rows = match self.commit_rows {
            None => DEFAULT_COMMIT_ROWS,
            Some(n @ 1..=1_000_000) => n,
            Some(n) => {
                return Err(ConfigError::new(
                    "sink.postgres.commit_rows",
                    format!("{n} is not a number of events from 1 to 1000000"),
                    "e.g. 32768 (the default), fewer for shorter transactions",
                ))
            }
        };
        let breaker = self
            .breaker
            .clone()
            .unwrap_or_default()
            .validate("sink.postgres.breaker", deprecated)?;
        let call_timeout = self.call_timeout.map_or(DEFAULT_CALL_TIMEOUT, HumanDuration::get);
        if call_timeout < Duration::from_millis(100) {
            return Err(ConfigError::new(
                "sink.postgres.call_timeout",
                format!("{call_timeout:?} is too short for any server to answer"),
                "give at least 100ms, e.g. 10s (the default)",
            ));
        }
        Ok(PgConfig {
            url,
            table,
            dlq_file: self
                .dlq_file
                .as_ref()
                .map_or_else(|| PathBuf::from("spate-dlq.jsonl"), |p| p.0.clone()),
            commit_rows,
            typed: self.layout == Layout::Typed,
            breaker,
            call_timeout,
        })
    }

    /// Checks the settings, ignoring deprecation notes.
    pub fn validate(&self) -> Result<PgConfig, ConfigError> {
        self.validate_with(&mut Vec::new())
    }
}

impl PgConfig {
    /// `url` with `table`, the rest by default (for `spate verify --postgres`).
    pub fn for_table(url: &str, table: &str) -> Result<PgConfig, ConfigError> {
        RawPostgres {
            url: SecretUrl(url.to_string()),
            table: Some(table.to_string()),
            layout: Layout::Jsonb,
            commit_rows: None,
            dlq_file: None,
            breaker: None,
            call_timeout: None,
        }
        .validate()
    }

    /// The URL with its password masked and the table, for messages and the summary.
    pub fn display(&self) -> String {
        let shown = spate_core::conf::mask_url_password(&self.url);
        let sep = if shown.contains('?') { '&' } else { '?' };
        format!("{shown}{sep}table={}", self.table)
    }
}

/// `name` or `schema.name`, each `[A-Za-z_][A-Za-z0-9_]*`: safe to write into SQL unquoted.
fn valid_table(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| spate_gen::avro::valid_name(p))
}

/// `postgres://...?table=T&dlq_file=P&commit_rows=N&layout=L&call_timeout=D&...` as the settings of the tagged
/// form: spate's own parameters become keys, the others stay in the URL (libpq's).
pub fn shorthand(s: &str, key: &str) -> Result<Mapping, ConfigError> {
    let (base, query) = s.split_once('?').unwrap_or((s, ""));
    let mut m = Mapping::new();
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("table", t)) => {
                m.insert("table".into(), Value::from(t));
            }
            Some(("dlq_file", p)) => {
                m.insert("dlq_file".into(), Value::from(p));
            }
            Some(("layout", l)) => {
                m.insert("layout".into(), Value::from(l));
            }
            Some(("call_timeout", d)) => {
                m.insert("call_timeout".into(), Value::from(d));
            }
            Some(("commit_rows", n)) => {
                let n: u64 = n.parse().map_err(|_| {
                    ConfigError::new(
                        key,
                        format!("commit_rows={n} is not a number of events from 1 to 1000000"),
                        "e.g. ?commit_rows=32768 (the default), fewer for shorter transactions",
                    )
                })?;
                m.insert("commit_rows".into(), Value::from(n));
            }
            _ => rest.push(kv),
        }
    }
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    m.insert("url".into(), Value::from(url));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawPostgres {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn settings_are_checked_and_the_password_hidden() {
        let c = raw("{url: 'postgres://u:pw@127.0.0.1:5432/db?sslmode=disable', table: ev, dlq_file: /tmp/d.jsonl}").validate().unwrap();
        assert_eq!((c.table.as_str(), c.dlq_file.to_str().unwrap()), ("ev", "/tmp/d.jsonl"));
        assert_eq!(c.url, "postgres://u:pw@127.0.0.1:5432/db?sslmode=disable");
        assert_eq!(
            c.display(),
            "postgres://u:<redacted>@127.0.0.1:5432/db?sslmode=disable&table=ev"
        );
        assert_eq!(c.commit_rows, DEFAULT_COMMIT_ROWS);
        assert!(!c.typed);
        assert!(raw("{url: 'postgres://u@h/db', layout: typed}").validate().unwrap().typed);
        assert_eq!(raw("{url: 'postgres://u@h/db'}").validate().unwrap().table, "spate_events");
        for (yaml, key) in [
            ("{url: 'postgres://u@h/db', table: 'a;drop'}", "sink.postgres.table"),
            ("{url: 'postgres://h/db'}", "sink.postgres.url"),
            ("{url: 'postgres://u@h/db', commit_rows: 0}", "sink.postgres.commit_rows"),
            ("{url: 'postgres://u@h/db', commit_rows: 2000000}", "sink.postgres.commit_rows"),
            ("{url: 'postgres://u@h/db', breaker: {window: 0}}", "sink.postgres.breaker.window"),
            ("{url: 'postgres://u@h/db', call_timeout: 10ms}", "sink.postgres.call_timeout"),
        ] {
            assert_eq!(raw(yaml).validate().unwrap_err().key, key, "{yaml}");
        }
        let e = serde_yaml_ng::from_str::<RawPostgres>("{url: 'postgres://u@h/db', layout: wide}")
            .unwrap_err();
        assert!(e.to_string().contains("unknown variant `wide`"), "{e}");
    }
}
