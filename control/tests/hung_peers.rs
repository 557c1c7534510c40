//! The fault matrix for hung peers: a PostgreSQL that accepts connections and never answers (a
//! stopped server, a proxy without its backend), at start and in the middle of a run. A hung
//! peer is a fault like a dead one: the run ends within duration + drain timeout + a margin,
//! with exact accounting and its documented exit code. Loopback only; every wait is bounded.

mod common;

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::faults::*;
use spate_test_support::Postgres;

/// A listener that accepts every connection and never sends a byte: a hung server.
struct Silent {
    addr: String,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    fn start() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (stop.clone(), held.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => h.lock().unwrap().push(c),
                    // Polling the listener (it is non-blocking so the thread can end).
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Silent { addr, stop, held }
    }

    fn connections(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn postgres_sink_that_never_answers_at_start() {
    let silent = Silent::start();
    let dir = Dir::new("pg-silent-start");
    let sum = dir.join("s.json");
    let sink = format!("postgres://u@{}/db?table=ev&call_timeout=1s", silent.addr);
    let t = Instant::now();
    let c = spate(&["run", "--sink", &sink, "--rate", "1000", "--duration", "2s"], &sum)
        .spawn()
        .unwrap();
    let (code, elapsed, stderr) = finish(c, t, Duration::from_secs(30));
    eprintln!(
        "FAULT | PostgreSQL sink accepts, never answers, at start | {:.1} s | exit {code}",
        elapsed.as_secs_f64()
    );
    assert!(silent.connections() > 0, "spate never connected");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no answer"), "{stderr}");
    assert!(elapsed < Duration::from_secs(1 + 3), "{elapsed:?}");
}

#[test]
fn audit_database_that_never_answers() {
    let silent = Silent::start();
    let dir = Dir::new("audit-silent");
    let sum = dir.join("s.json");
    let audit = format!("postgres://u@{}/db", silent.addr);
    let t = Instant::now();
    let c = spate(
        &["run", "--sink", "null", "--rate", "1000", "--duration", "2s", "--audit", &audit],
        &sum,
    )
    .spawn()
    .unwrap();
    let o = outcome(c, t, Duration::from_secs(40), &sum);
    o.report("audit database accepts, never answers (2 s run)");
    o.balanced();
    assert!(silent.connections() > 0, "spate never connected");
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("does not answer"), "{}", o.stderr);
    // At start: one bounded check (3 s); at the end no flush wait (the database is away), at
    // most the writer's last bounded connect (2 s).
    assert!(o.elapsed < Duration::from_secs(3 + 2 + 2 + 2), "{:?}", o.elapsed);
    assert!(o.stderr.contains("not written"), "{}", o.stderr);
}

/// The server's processes stopped (SIGSTOP) mid-run, longer than the run and its drain: the
/// open transaction and what follows go to the DLQ file (nothing failed), nothing is left in
/// flight.
#[test]
fn postgres_sink_server_stopped_mid_run() {
    let pg = Postgres::start();
    let dir = Dir::new("pg-stopped");
    let (sum, dlq) = (dir.join("s.json"), dir.join("dlq.jsonl"));
    let sink = format!("{}?table=hung&call_timeout=1s&dlq_file={}", pg.url(), dlq.display());
    let t = Instant::now();
    let c = Watched::start(spate(
        &["run", "--sink", &sink, "--rate", "5000", "--duration", "4s", "--drain-timeout", "2s"],
        &sum,
    ));
    c.totals_until("rows committed", Duration::from_secs(20), |t| {
        t["delivered"].as_u64() >= Some(1000)
    });
    pg.pause();
    let o = c.outcome(t, Duration::from_secs(40), &sum);
    pg.unpause();
    o.report("PostgreSQL stopped (SIGSTOP) mid-run until the end (4 s run, 2 s drain)");
    o.balanced();
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.n("delivered") > 0 && o.n("dead_lettered") > 0, "{}", o.s);
    // What the workers still held when the drain ran out goes to the DLQ file too.
    assert_eq!(o.n("failed"), 0, "{}", o.s);
    assert_eq!(
        dlq_lines(&dlq),
        o.n("dead_lettered"),
        "the DLQ file holds every dead-lettered event"
    );
    assert!(o.elapsed < Duration::from_secs(4 + 2 + 1 + 3), "{:?}", o.elapsed);
}

/// The audit database stopped (SIGSTOP) after the run began: the run ends on time with exit 0;
/// what the writer could not write is reported, not waited for.
#[test]
fn audit_database_stopped_mid_run() {
    let pg = Postgres::start();
    let dir = Dir::new("audit-stopped");
    let sum = dir.join("s.json");
    let t = Instant::now();
    let c = Watched::start(spate(
        &["run", "--sink", "null", "--rate", "1000", "--duration", "3s", "--audit", &pg.url()],
        &sum,
    ));
    c.totals_until("the run to be under way", Duration::from_secs(20), |t| {
        t["generated"].as_u64() >= Some(500)
    });
    pg.pause();
    let o = c.outcome(t, Duration::from_secs(40), &sum);
    pg.unpause();
    o.report("audit database stopped (SIGSTOP) mid-run (3 s run)");
    o.balanced();
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("not written"), "{}", o.stderr);
    // The run, then at most the audit's flush timeout (5 s by default) for the rows left.
    assert!(o.elapsed < Duration::from_secs(3 + 5 + 1), "{:?}", o.elapsed);
}

/// A Schema Registry that accepts and never answers: the run is refused at start, within the
/// registry's timeout, naming it.
#[test]
fn schema_registry_that_never_answers() {
    let silent = Silent::start();
    let dir = Dir::new("registry-silent");
    let (sum, cfg) = (dir.join("s.json"), dir.join("c.yaml"));
    std::fs::write(
        &cfg,
        format!(
            "format: avro\nsink: kafka\nduration: 2s\navro: {{schema_registry: {{url: 'http://{}', timeout: 1s}}}}\n",
            silent.addr
        ),
    )
    .unwrap();
    let t = Instant::now();
    let c = spate(&["run", "--config", cfg.to_str().unwrap()], &sum).spawn().unwrap();
    let (code, elapsed, stderr) = finish(c, t, Duration::from_secs(30));
    eprintln!(
        "FAULT | Schema Registry accepts, never answers (timeout 1s) | {:.1} s | exit {code}",
        elapsed.as_secs_f64()
    );
    assert!(silent.connections() > 0, "spate never connected");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no reply within") || stderr.contains("no whole reply"), "{stderr}");
    assert!(elapsed < Duration::from_secs(1 + 3), "{elapsed:?}");
}

/// SIGTERM while the sink opens (a Kafka broker, or a PostgreSQL server, that accepts and never
/// answers), or while the schema is fetched from a registry that never answers: the run ends
/// within a second or two of the signal, not after the open's (or the fetch's) own wait.
#[test]
fn sigterm_while_the_sink_opens() {
    for kind in ["kafka", "postgres", "registry"] {
        let silent = Silent::start();
        let dir = Dir::new(&format!("open-{kind}"));
        let sum = dir.join("s.json");
        let cfg = dir.join("c.yaml");
        std::fs::write(
            &cfg,
            format!(
                "format: avro\nsink: null\navro: {{schema_registry: {{url: 'http://{}', timeout: 30s}}}}\n",
                silent.addr
            ),
        )
        .unwrap();
        let args: Vec<String> = match kind {
            "kafka" => ["--sink", "kafka", "--brokers", &silent.addr].map(String::from).to_vec(),
            "registry" => vec!["--config".into(), cfg.to_str().unwrap().into()],
            _ => vec![
                "--sink".into(),
                format!("postgres://u@{}/db?table=ev&call_timeout=30s", silent.addr),
            ],
        };
        let mut all = vec!["run", "--rate", "1000", "--duration", "2s", "--drain-timeout", "30s"];
        all.extend(args.iter().map(String::as_str));
        let t = Instant::now();
        let c = spate(&all, &sum).spawn().unwrap();
        spate_test_support::eventually(Duration::from_secs(10), "spate to connect", || {
            (silent.connections() > 0).then_some(())
        });
        let signalled = Instant::now();
        signal(&c, libc::SIGTERM);
        let (code, _, stderr) = finish(c, t, Duration::from_secs(60));
        let after = signalled.elapsed();
        eprintln!(
            "FAULT | SIGTERM during start, {kind} peer accepts and never answers | {:.1} s after the signal | exit {code}",
            after.as_secs_f64()
        );
        assert!(after < Duration::from_secs(3), "{kind}: {after:?} after SIGTERM: {stderr}");
        assert_eq!(code, 5, "{kind}: {stderr}");
        assert!(stderr.contains("while the run was starting"), "{kind}: {stderr}");
    }
}
