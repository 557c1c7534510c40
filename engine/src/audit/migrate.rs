//! The audit schema, versioned: `spate_schema_version` holds the versions applied. Each
//! migration is idempotent (`IF NOT EXISTS`) and runs in one transaction under an advisory
//! lock, so instances starting together, and databases made by older versions of spate, end
//! at the same schema. A database at a newer version than this spate knows is left alone.

use crate::pgconn::{PgConn, PgError};

/// The schema version this spate writes.
pub const SCHEMA_VERSION: i32 = 1;

/// Migration `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: [&str; 1] = ["
CREATE TABLE IF NOT EXISTS spate_runs (
    run_id       text PRIMARY KEY,
    origin       jsonb NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    seed         numeric(20, 0) NOT NULL,
    config       jsonb NOT NULL,
    summary      jsonb,
    exit_status  integer
);
CREATE TABLE IF NOT EXISTS spate_run_changes (
    id      bigserial PRIMARY KEY,
    run_id  text NOT NULL,
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    detail  jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS spate_run_changes_run ON spate_run_changes (run_id, at);
"];

/// Brings the schema to [`SCHEMA_VERSION`].
pub(super) fn migrate(c: &mut PgConn) -> Result<(), PgError> {
    c.batch_execute("BEGIN")?;
    let res = steps(c);
    if res.is_err() && !res.as_ref().err().is_some_and(PgError::is_lost) {
        let _ = c.batch_execute("ROLLBACK");
    }
    res?;
    c.batch_execute("COMMIT")
}

/// The migration's statements, inside its transaction.
fn steps(c: &mut PgConn) -> Result<(), PgError> {
    // One migrator at a time (the key is "spate" in ASCII).
    c.execute("SELECT pg_advisory_xact_lock(495806674021)", &[])?;
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS spate_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )?;
    let rows = c.query("SELECT coalesce(max(version), 0) FROM spate_schema_version", &[])?;
    let have: i32 = rows.first().map_or(0, |r| r.get(0));
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let v = i as i32 + 1;
        if v > have {
            c.batch_execute(sql)?;
            c.execute(
                "INSERT INTO spate_schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&v],
            )?;
        }
    }
    Ok(())
}
