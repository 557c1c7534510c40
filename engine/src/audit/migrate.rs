//! The audit schema, versioned: `spate_schema_version` holds the versions applied. Each
//! migration is idempotent (`IF NOT EXISTS`) and runs in one transaction under an advisory
//! lock, so instances starting together, and databases made by older versions of spate, end
//! at the same schema. A database at a newer version than this spate knows is left alone.

use postgres::Client;

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
pub(super) fn migrate(c: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    // One migrator at a time (the key is "spate" in ASCII).
    tx.execute("SELECT pg_advisory_xact_lock(495806674021)", &[])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS spate_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )?;
    let have: i32 =
        tx.query_one("SELECT coalesce(max(version), 0) FROM spate_schema_version", &[])?.get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let v = i as i32 + 1;
        if v > have {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO spate_schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&v],
            )?;
        }
    }
    tx.commit()
}
