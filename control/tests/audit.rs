//! The audit trail against a real PostgreSQL of the test's own (`initdb` on a free loopback
//! port): rows for CLI and API runs with their origin, summary and changes; no secret in them;
//! rows kept while the database is down and written when it is back; a refused login is one
//! clear error at start.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use spate_test_support::{eventually, Postgres};

const BIN: &str = env!("CARGO_BIN_EXE_spate");

fn count(pg: &Postgres, sql: &str) -> i64 {
    pg.psql(sql).parse().unwrap_or_else(|_| panic!("{sql}"))
}

/// No audit table holds `secret` anywhere.
fn assert_no_secret(pg: &Postgres, secret: &str) {
    let n = count(
        pg,
        &format!(
            "SELECT (SELECT count(*) FROM spate_runs WHERE origin::text || config::text || coalesce(summary::text, '') LIKE '%{secret}%') \
             + (SELECT count(*) FROM spate_run_changes WHERE detail::text LIKE '%{secret}%')"
        ),
    );
    assert_eq!(n, 0, "the secret appears in the audit tables");
}

#[test]
fn cli_runs_are_audited_with_origin_summary_and_no_secret() {
    let pg = Postgres::start();
    let dir = std::env::temp_dir().join(format!("spate-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("run.yaml");
    // The database password is in the config (the audit URL): it must not reach the tables.
    std::fs::write(
        &cfg,
        format!("sink: null\nrate: max\ncount: 5000\nseed: 77\naudit: {{url: '{}'}}\n", pg.url()),
    )
    .unwrap();
    let o = Command::new(BIN).args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("audit: 2 rows written"), "{err}");
    let row = pg.psql("SELECT origin->>'via', seed, summary->>'delivered', exit_status, ended_at > started_at FROM spate_runs");
    assert_eq!(row, "cli|77|5000|0|t");
    assert_eq!(pg.psql("SELECT config->>'sink' FROM spate_runs"), "null");
    assert_no_secret(&pg, Postgres::PASSWORD);
    // A second run, and a schema already in place: one more row, the version table untouched.
    let summary = dir.join("summary.json");
    let o = Command::new(BIN)
        .args([
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(count(&pg, "SELECT count(*) FROM spate_runs"), 2);
    // The summary file says what the audit wrote and dropped.
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        s["audit"],
        serde_json::json!({"written": 2, "dropped": 0, "not_written": 0, "last_error": null}),
        "{s}"
    );
    assert_eq!(pg.psql("SELECT string_agg(version::text, ',') FROM spate_schema_version"), "1");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn api_runs_are_audited_with_their_changes() {
    let pg = Postgres::start();
    let serve = Proc::serve(&["--audit", &pg.url()]);
    let r = post(&serve.addr, "/v1/start", r#"{"sink": "null", "rate": 2000, "duration": "60s"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let run_id = r.json()["run_id"].as_str().unwrap().to_string();
    assert_eq!(put(&serve.addr, "/v1/rate", r#"{"rate": 3000}"#).status, 200);
    let s = post(&serve.addr, "/v1/stop", "");
    assert!(s.status == 200 || s.status == 202, "{}", s.body);
    eventually(Duration::from_secs(15), "the run's end in spate_runs", || {
        let v = pg.try_psql(&format!(
            "SELECT count(*) FROM spate_runs WHERE run_id = '{run_id}' AND summary IS NOT NULL"
        ));
        (v.as_deref() == Ok("1")).then_some(())
    });
    assert_eq!(
        pg.psql(&format!(
            "SELECT origin->>'via', origin->>'remote' FROM spate_runs WHERE run_id = '{run_id}'"
        )),
        "api|127.0.0.1"
    );
    let kinds = pg.psql(&format!("SELECT string_agg(kind || ':' || coalesce(detail->>'to', detail->>'by'), ',' ORDER BY at) FROM spate_run_changes WHERE run_id = '{run_id}'"));
    assert_eq!(kinds, "rate:3000/s,stop:api");
    // A run may not point the audit elsewhere.
    let r = post(
        &serve.addr,
        "/v1/start",
        r#"{"sink": "null", "audit": {"url": "postgres://x@127.0.0.1:1/x"}}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn rows_wait_while_the_database_is_down_and_a_refused_login_stops_the_start() {
    let pg = Postgres::start();
    pg.psql("SELECT 1");
    pg.stop();
    let serve = Proc::serve(&["--audit", &pg.url()]);
    let r = post(&serve.addr, "/v1/start", r#"{"sink": "null", "rate": "max", "count": 1000}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let run_id = r.json()["run_id"].as_str().unwrap().to_string();
    // The run ends while the database is down; its rows wait in the writer.
    eventually(Duration::from_secs(10), "the run to finish", || {
        (get(&serve.addr, "/v1/status").json()["state"] == "finished").then_some(())
    });
    pg.resume();
    eventually(Duration::from_secs(20), "the waiting rows to be written", || {
        let v = pg.try_psql(&format!("SELECT count(*) FROM spate_runs WHERE run_id = '{run_id}' AND summary->>'delivered' = '1000'"));
        (v.as_deref() == Ok("1")).then_some(())
    });
    drop(serve);
    // A wrong password: one message naming the key, exit 2, before any event.
    let bad = pg.url().replace(Postgres::PASSWORD, "wrong-password");
    let o = Command::new(BIN)
        .args(["run", "--sink", "null", "--count", "10", "--audit", &bad])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("audit.url") && err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
}
