//! The PostgreSQL sink against a real PostgreSQL of the test's own: every event once (checked
//! by `spate verify --postgres`), through a server restart mid-run; bad targets refused at
//! start with one message and exit code 2.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use spate_test_support::{eventually, Postgres};

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
    let mut args =
        vec!["verify".to_string(), "--postgres".into(), pg.url(), "--table".into(), table.into()];
    if let Some(e) = expect {
        args.extend(["--expect".into(), e.to_string()]);
    }
    let o = Command::new(BIN).args(&args).output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)))
}

/// A run at 20,000/s for 8 s into `sink` with the server stopped from 2 s to 5 s: its stderr,
/// this machine's clock just before the restart (the sink may commit before psql could ask),
/// and its summary, whose identity is checked, with nothing failed, shed or left in flight.
fn through_an_outage(
    pg: &Postgres,
    sink: &str,
    summary: &std::path::Path,
    extra: &[&str],
) -> (String, f64, Value) {
    let child = Command::new(BIN)
        .args([
            "run",
            "--sink",
            sink,
            "--rate",
            "20000",
            "--duration",
            "8s",
            "--drain-timeout",
            "10s",
        ])
        .args(extra)
        .args(["--summary-json", summary.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The outage comes mid-run: once rows are committed.
    let table = sink
        .split("table=")
        .nth(1)
        .and_then(|t| t.split('&').next())
        .expect("the sink names its table");
    eventually(Duration::from_secs(20), "rows committed before the outage", || {
        let n: u64 = pg.try_psql(&format!("SELECT count(*) FROM {table}")).ok()?.parse().ok()?;
        (n >= 1000).then_some(())
    });
    pg.stop();
    // The outage's length is the fault under test, not synchronisation.
    std::thread::sleep(Duration::from_secs(3));
    let resumed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    pg.resume();
    let o = child.wait_with_output().unwrap();
    let code = o.status.code();
    assert!(code == Some(0) || code == Some(3), "exit {code:?}: {}", stderr(&o));
    let s: Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    let (g, d, l, f, sh, i) = (
        n("generated"),
        n("delivered"),
        n("dead_lettered"),
        n("failed"),
        n("shed"),
        n("in_flight"),
    );
    assert_eq!(g, d + l + f + sh + i, "{s}");
    assert_eq!((f, sh, i), (0, 0, 0), "{s}");
    (stderr(&o), resumed, s)
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
    assert_eq!(
        (s["generated"].as_u64(), s["delivered"].as_u64()),
        (Some(50_000), Some(50_000)),
        "{s}"
    );
    let r = verify(&pg, "ev", Some(50_000));
    assert_eq!(
        (
            r["unique"].as_u64(),
            r["missing"].as_u64(),
            r["duplicated"].as_u64(),
            r["malformed"].as_u64()
        ),
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
    let (_, resumed, s) = through_an_outage(&pg, &sink, &summary, &["--quiet"]);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    let (g, d, l) = (n("generated"), n("delivered"), n("dead_lettered"));
    // Workers wait while the server is down (`backpressure: block`), so fewer than 8 s of the
    // rate are generated; the sink reconnected and went on after the restart.
    assert!(g > 10_000, "{s}");
    let after =
        pg.psql(&format!("SELECT count(*) FROM spate_batches WHERE at > to_timestamp({resumed})"));
    assert_ne!(after, "0", "no batch committed after the restart");
    let r = verify(&pg, "ev", None);
    assert_eq!(
        (r["unique"].as_u64(), r["duplicated"].as_u64(), r["malformed"].as_u64()),
        (Some(d), Some(0), Some(0)),
        "{r}"
    );
    let dlq_lines =
        std::fs::read_to_string(tmp("dlq.jsonl")).map_or(0, |t| t.lines().count() as u64);
    assert_eq!(dlq_lines, l, "dead-lettered events are lines of the DLQ file");
}

/// `layout=typed`: a column per field of the sources' records, typed as their Avro schemas
/// type them (NULL where a source lacks the field), strings unescaped; verify works on it; a
/// table of the other layout is refused at start.
#[test]
fn the_typed_layout_has_a_column_per_field() {
    let pg = Postgres::start();
    let o = spate(&[
        "run",
        "--sink",
        &format!("{}?table=typ&layout=typed", pg.url()),
        "--source",
        "web=2,app=1",
        "--count",
        "20000",
        "--rate",
        "max",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ty = |col: &str| {
        pg.psql(&format!(
            "SELECT data_type || ':' || is_nullable FROM information_schema.columns WHERE table_name = 'typ' AND column_name = '{col}'"
        ))
    };
    assert_eq!(ty("ts"), "timestamp with time zone:NO");
    assert_eq!(ty("status"), "bigint:YES", "web has it, app does not");
    assert_eq!(ty("latency_ms"), "double precision:YES");
    assert_eq!(ty("message"), "text:YES");
    assert_eq!(ty("body"), "", "no body column in the typed layout");
    let web = pg.psql("SELECT count(*) FROM typ WHERE source = 'web'");
    assert_eq!(pg.psql("SELECT count(*) FROM typ WHERE status IS NOT NULL AND latency_ms > 0 AND method IS NOT NULL"), web);
    assert_eq!(pg.psql("SELECT count(*) FROM typ WHERE source = 'app' AND (status IS NOT NULL OR message IS NULL)"), "0");
    assert_eq!(
        pg.psql("SELECT count(*) FROM typ WHERE source = 'web' AND (status < 100 OR status > 599)"),
        "0"
    );
    // JSON escapes in the generated messages (`\"`) are plain quotes in the column.
    assert_ne!(pg.psql("SELECT count(*) FROM typ WHERE message LIKE '%\"%'"), "0");
    assert_eq!(pg.psql("SELECT count(*) FROM typ WHERE message LIKE '%\\\\%'"), "0");
    let r = verify(&pg, "typ", Some(20_000));
    assert_eq!(
        (r["unique"].as_u64(), r["duplicated"].as_u64(), r["malformed"].as_u64()),
        (Some(20_000), Some(0), Some(0)),
        "{r}"
    );
    // A JSONB-layout table is not a typed one.
    let o = spate(&[
        "run",
        "--sink",
        &format!("{}?table=js", pg.url()),
        "--count",
        "10",
        "--rate",
        "max",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = spate(&[
        "run",
        "--sink",
        &format!("{}?table=js&layout=typed", pg.url()),
        "--count",
        "10",
        "--rate",
        "max",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("table js has no column `client_ip`"), "{}", stderr(&o));
}

/// The sink's circuit breaker opens when the server is gone (the first reconnect fails), and
/// under `backpressure: spill` the batches go to the DLQ file while it is open; after the
/// restart its trial transactions close it and the rest lands in the table.
#[test]
fn an_outage_opens_the_breaker_and_spill_sends_batches_to_the_dlq() {
    let pg = Postgres::start();
    let dlq = tmp("spill.jsonl");
    let _ = std::fs::remove_file(&dlq);
    let sink = format!("{}?table=sp&dlq_file={}", pg.url(), dlq.display());
    let summary = tmp("s3.json");
    let (err, resumed, s) = through_an_outage(&pg, &sink, &summary, &["--backpressure", "spill"]);
    assert!(err.contains("postgres: circuit breaker closed -> open"), "{err}");
    assert!(err.contains("-> closed"), "the breaker did not close after the restart: {err}");
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    let (d, l) = (n("delivered"), n("dead_lettered"));
    // Spilled, not paused: generation went on at the rate while the server was down.
    assert!(l >= 20_000, "only {l} events spilled during a 3 s outage at 20,000/s: {s}");
    let after =
        pg.psql(&format!("SELECT count(*) FROM spate_batches WHERE at > to_timestamp({resumed})"));
    assert_ne!(after, "0", "nothing committed after the restart: {s}");
    assert!(n("breaker_transitions") >= 3, "{s}");
    let dlq_lines = std::fs::read_to_string(&dlq).map_or(0, |t| t.lines().count() as u64);
    assert_eq!(dlq_lines, l, "dead-lettered events are lines of the DLQ file");
    let r = verify(&pg, "sp", None);
    assert_eq!(
        (r["unique"].as_u64(), r["duplicated"].as_u64(), r["malformed"].as_u64()),
        (Some(d), Some(0), Some(0)),
        "{r}"
    );
}

/// A TCP relay to PostgreSQL that, on the `break_at`-th COMMIT, forwards it, lets the server
/// commit, swallows the answer and closes the connection: a commit whose outcome the client
/// cannot know. Every other byte passes both ways.
fn commit_breaking_relay(server_port: u16, break_at: usize) -> u16 {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    // A simple-query message: 'Q', length 11 (itself and "COMMIT\0"), "COMMIT\0".
    const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let commits = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", server_port)) else { return };
            let swallow = Arc::new(AtomicBool::new(false));
            let (mut c2, mut s2, sw, commits) = (
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                swallow.clone(),
                commits.clone(),
            );
            // Server to client, until the connection is to break.
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = s2.read(&mut buf) {
                    if n == 0 || sw.load(Ordering::Acquire) || c2.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = client.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let chunk = &buf[..n];
                    let breaks = chunk.windows(COMMIT.len()).any(|w| w == COMMIT)
                        && commits.fetch_add(1, Ordering::Relaxed) + 1 == break_at;
                    if breaks {
                        swallow.store(true, Ordering::Release);
                    }
                    if server.write_all(chunk).is_err() {
                        break;
                    }
                    if breaks {
                        // The relay's fault: the COMMIT's answer never comes while the client
                        // waits; this holds the connection open for that wait, then cuts it.
                        std::thread::sleep(Duration::from_millis(500));
                        break;
                    }
                }
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

/// A COMMIT whose answer is lost: the sink looks the batch up after reconnecting, finds it
/// committed, and neither resends nor loses it.
#[test]
fn a_commit_in_doubt_is_looked_up_not_resent() {
    let pg = Postgres::start();
    let relay = commit_breaking_relay(pg.port, 3);
    let url = pg.url().replace(&format!(":{}/", pg.port), &format!(":{relay}/"));
    assert_ne!(url, pg.url());
    let summary = tmp("s4.json");
    let o = spate(&[
        "run",
        "--sink",
        // A transaction per batch of 5,000: the third of ten is the one whose answer is lost.
        &format!("{url}?table=doubt&commit_rows=5000"),
        "--rate",
        "max",
        "--count",
        "50000",
        "--batch-size",
        "5000",
        "--threads",
        "1",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("whose COMMIT got no answer, is in spate_batches: committed, not sent again"),
        "{err}"
    );
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        (s["generated"].as_u64(), s["delivered"].as_u64(), s["dead_lettered"].as_u64()),
        (Some(50_000), Some(50_000), Some(0)),
        "{s}"
    );
    let r = verify(&pg, "doubt", Some(50_000));
    assert_eq!(
        (r["unique"].as_u64(), r["missing"].as_u64(), r["duplicated"].as_u64()),
        (Some(50_000), Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(pg.psql("SELECT sum(rows) FROM spate_batches"), "50000");
}

/// The sink's breaker in status and metrics, named `postgres` (promtool checks the exposition),
/// open while the server is down and closed again after it is back.
#[test]
fn the_breaker_shows_in_status_and_metrics() {
    let pg = Postgres::start();
    let sink = format!("{}?table=mx&dlq_file={}", pg.url(), tmp("mx.jsonl").display());
    let r = common::Proc::spawn(
        &[
            "run",
            "--sink",
            &sink,
            "--rate",
            "5000",
            "--duration",
            "60s",
            "--quiet",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        "metrics on",
    );
    let state = |want: &str| {
        let m = common::get(&r.addr, "/metrics").body;
        m.contains(&format!("spate_breaker_state{{breaker=\"postgres\",state=\"{want}\"}} 1"))
            .then_some(m)
    };
    let m = spate_test_support::eventually(
        Duration::from_secs(20),
        "a closed postgres breaker in /metrics",
        || state("closed"),
    );
    common::promtool_check_metrics(&m);
    let st = common::get(&r.addr, "/v1/status").json();
    assert_eq!(st["breakers"][0]["name"], "postgres", "{st}");
    pg.stop();
    spate_test_support::eventually(Duration::from_secs(20), "the breaker to open", || {
        state("open")
    });
    pg.resume();
    spate_test_support::eventually(Duration::from_secs(30), "the breaker to close again", || {
        state("closed")
    });
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
    assert!(
        stderr(&o).contains("password authentication failed") && !stderr(&o).contains("wrong-pass"),
        "{}",
        stderr(&o)
    );
    pg.psql("CREATE TABLE odd (ts text, source text, id text, traceparent text, body jsonb)");
    let o = run(&format!("{}?table=odd", pg.url()));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("column `ts` of type text"), "{}", stderr(&o));
    // A user who may not create tables (PostgreSQL 15+ grants no CREATE on `public`).
    pg.psql("CREATE ROLE limited LOGIN PASSWORD 'limited-pass'; REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let o =
        run(&format!("postgres://limited:limited-pass@127.0.0.1:{}/postgres?table=ev9", pg.port));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot create table ev9") && stderr(&o).contains("permission denied"),
        "{}",
        stderr(&o)
    );
    let o = spate(&["run", "--sink", &pg.url(), "--format", "logfmt", "--count", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A table the user may see but not write: said as such, not as a table without columns.
    pg.psql(
        "CREATE TABLE theirs (ts timestamptz NOT NULL, source text NOT NULL, id text NOT NULL, \
         traceparent text, body jsonb NOT NULL); GRANT CREATE, USAGE ON SCHEMA public TO limited",
    );
    let o = run(&format!(
        "postgres://limited:limited-pass@127.0.0.1:{}/postgres?table=theirs",
        pg.port
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("may not insert into table theirs"), "{}", stderr(&o));
}

/// Rows the server refuses (here a CHECK constraint) are not resent: they go to the DLQ file
/// with the server's reason, and the reason is said on stderr too.
#[test]
fn a_batch_the_server_refuses_is_dead_lettered_and_said() {
    let pg = Postgres::start();
    pg.psql(
        "CREATE TABLE refusing (ts timestamptz NOT NULL, source text NOT NULL, id text NOT NULL, \
         traceparent text, body jsonb NOT NULL, CHECK (source <> 'web'))",
    );
    let (dlq, summary) = (tmp("refused.jsonl"), tmp("refused.json"));
    let sink = format!("{}?table=refusing&dlq_file={}", pg.url(), dlq.display());
    let o = spate(&[
        "run",
        "--sink",
        &sink,
        "--source",
        "web",
        "--count",
        "1000",
        "--summary-json",
        summary.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("postgres refused the batch") && e.contains("23514"), "{e}");
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        (s["generated"].as_u64(), s["dead_lettered"].as_u64()),
        (Some(1000), Some(1000)),
        "{s}"
    );
    let lines = std::fs::read_to_string(&dlq).unwrap();
    assert_eq!(lines.lines().count(), 1000);
    assert!(
        lines.lines().all(|l| l.contains("violates check constraint")),
        "{}",
        &lines[..300.min(lines.len())]
    );
}
