//! The PostgreSQL sink against a real PostgreSQL of the test's own: every event once (checked
//! by `spate verify --postgres`), through a server restart mid-run; bad targets refused at
//! start with one message and exit code 2.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use spate_test_support::Postgres;

const BIN: &str = env!("CARGO_BIN_EXE_spate");

fn spate(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("spate-pgsink-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// `spate verify --postgres` of `table`, as its JSON report.
fn verify(pg: &Postgres, table: &str, expect: Option<u64>) -> Value {
    let mut args = vec!["verify".to_string(), "--postgres".into(), pg.url(), "--table".into(), table.into()];
    if let Some(e) = expect {
        args.extend(["--expect".into(), e.to_string()]);
    }
    let o = Command::new(BIN).args(&args).output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)))
}

#[test]
fn every_event_lands_once_with_its_envelope() {
    let pg = Postgres::start();
    let sink = format!("{}?table=ev", pg.url());
    let summary = tmp("s1.json");
    let o = spate(&[
        "run",
        "--sink",
        &sink,
        "--rate",
        "max",
        "--count",
        "50000",
        "--source",
        "web=2,app=1",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains(Postgres::PASSWORD), "the password is shown: {}", stderr(&o));
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!((s["generated"].as_u64(), s["delivered"].as_u64()), (Some(50_000), Some(50_000)), "{s}");
    let r = verify(&pg, "ev", Some(50_000));
    assert_eq!(
        (r["unique"].as_u64(), r["missing"].as_u64(), r["duplicated"].as_u64(), r["malformed"].as_u64()),
        (Some(50_000), Some(0), Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(pg.psql("SELECT sum(rows) FROM spate_batches"), "50000");
    // Typed envelope columns agree with the JSONB body.
    let bad = pg.psql(
        "SELECT count(*) FROM ev WHERE source <> body->>'source' OR traceparent <> body->>'traceparent' \
         OR ts <> (body->>'ts')::timestamptz OR source NOT IN ('web', 'app')",
    );
    assert_eq!(bad, "0");
}

#[test]
fn a_restart_of_the_server_loses_and_duplicates_nothing() {
    let pg = Postgres::start();
    let sink = format!("{}?table=ev&dlq_file={}", pg.url(), tmp("dlq.jsonl").display());
    let summary = tmp("s2.json");
    let _ = std::fs::remove_file(tmp("dlq.jsonl"));
    let child = Command::new(BIN)
        .args(["run", "--sink", &sink, "--rate", "20000", "--duration", "8s", "--drain-timeout", "10s", "--quiet"])
        .args(["--summary-json", summary.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    pg.stop();
    std::thread::sleep(Duration::from_secs(3));
    // This machine's clock just before the restart (the sink may commit before psql could ask).
    let resumed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    pg.resume();
    let o = child.wait_with_output().unwrap();
    let code = o.status.code();
    assert!(code == Some(0) || code == Some(3), "exit {code:?}: {}", stderr(&o));
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    let (g, d, l, f, sh, i) = (n("generated"), n("delivered"), n("dead_lettered"), n("failed"), n("shed"), n("in_flight"));
    assert_eq!(g, d + l + f + sh + i, "{s}");
    assert_eq!((f, sh, i), (0, 0, 0), "{s}");
    // Workers wait while the server is down (`backpressure: block`), so fewer than 8 s of the
    // rate are generated; the sink reconnected and went on after the restart.
    assert!(g > 10_000, "{s}");
    let after = pg.psql(&format!("SELECT count(*) FROM spate_batches WHERE at > to_timestamp({resumed})"));
    assert_ne!(after, "0", "no batch committed after the restart");
    let r = verify(&pg, "ev", None);
    assert_eq!((r["unique"].as_u64(), r["duplicated"].as_u64(), r["malformed"].as_u64()), (Some(d), Some(0), Some(0)), "{r}");
    let dlq_lines = std::fs::read_to_string(tmp("dlq.jsonl")).map(|t| t.lines().count() as u64).unwrap_or(0);
    assert_eq!(dlq_lines, l, "dead-lettered events are lines of the DLQ file");
}

#[test]
fn bad_targets_are_refused_at_start() {
    let pg = Postgres::start();
    let run = |sink: &str| spate(&["run", "--sink", sink, "--count", "10", "--rate", "max"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = run(&format!("postgres://postgres@127.0.0.1:{port}/postgres?table=ev"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not answer"), "{}", stderr(&o));
    let o = run(&pg.url().replace(Postgres::PASSWORD, "wrong-pass"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("password authentication failed") && !stderr(&o).contains("wrong-pass"), "{}", stderr(&o));
    pg.psql("CREATE TABLE odd (ts text, source text, id text, traceparent text, body jsonb)");
    let o = run(&format!("{}?table=odd", pg.url()));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("column `ts` of type text"), "{}", stderr(&o));
    // A user who may not create tables (PostgreSQL 15+ grants no CREATE on `public`).
    pg.psql("CREATE ROLE limited LOGIN PASSWORD 'limited-pass'; REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let o = run(&format!("postgres://limited:limited-pass@127.0.0.1:{}/postgres?table=ev9", pg.port));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot create table ev9") && stderr(&o).contains("permission denied"), "{}", stderr(&o));
    let o = spate(&["run", "--sink", &pg.url(), "--format", "logfmt", "--count", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
